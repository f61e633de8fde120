//! The systemd user unit: `$XDG_CONFIG_HOME/systemd/user/bitrouter.service` (where the user's
//! systemd looks), `Type=exec`, restarted on failure, enabled for the user's default target.
//! Values are quoted as systemd.syntax(7) and systemd.service(5) say: double quotes with
//! backslash escapes, `%` as `%%` (specifiers) and `$` as `$$` (variable expansion).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::ServiceSpec;
use crate::env::Env;

/// The unit's name.
pub const UNIT: &str = "bitrouter.service";

/// Where the unit goes: `$XDG_CONFIG_HOME/systemd/user/`, else `~/.config/systemd/user/`.
#[must_use]
pub fn unit_path(env: &Env) -> Option<PathBuf> {
    let base = env
        .absolute_path(crate::env::XDG_CONFIG_HOME)
        .or_else(|| crate::paths::home_dir(env).map(|h| h.join(".config")))?;
    Some(base.join("systemd").join("user").join(UNIT))
}

/// Quotes one word for a unit file.
fn quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The unit file's text.
#[must_use]
pub fn unit(spec: &ServiceSpec) -> String {
    let exec = spec
        .argv
        .iter()
        .map(|w| quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `bitrouter service install`; `bitrouter service uninstall` removes it.\n\
         [Unit]\n\
         Description=bitrouter local server (bitrouter serve)\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={exec}"
    );
    for (name, value) in &spec.env {
        let _ = writeln!(out, "Environment={}", quote(&format!("{name}={value}")));
    }
    let grace = crate::server::SHUTDOWN_GRACE.as_secs() + 5;
    let _ = write!(
        out,
        "Restart=on-failure\n\
         RestartSec=2\n\
         TimeoutStopSec={grace}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_quotes_paths_and_values() {
        let spec = ServiceSpec {
            argv: vec!["/opt/my apps/bitrouter".into(), "serve".into()],
            env: vec![("XDG_DATA_HOME".into(), "/home/u/100%$x".into())],
            log: None,
        };
        let text = unit(&spec);
        assert!(
            text.contains("ExecStart=\"/opt/my apps/bitrouter\" \"serve\"\n"),
            "{text}"
        );
        assert!(
            text.contains("Environment=\"XDG_DATA_HOME=/home/u/100%%$$x\"\n"),
            "{text}"
        );
        assert!(text.contains("Restart=on-failure\n"), "{text}");
        assert!(text.contains("WantedBy=default.target\n"), "{text}");
    }
}
