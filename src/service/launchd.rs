//! The launchd agent: `~/Library/LaunchAgents/dev.bitrouter.serve.plist`, loaded into the
//! user's GUI domain, run at load and kept alive when it exits unsuccessfully; its output goes to
//! `serve.log` in the state directory. The property list is written by hand (a fixed shape, every
//! string XML-escaped).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::ServiceSpec;
use crate::env::Env;

/// The agent's label.
pub const LABEL: &str = "dev.bitrouter.serve";

/// Where the agent goes.
#[must_use]
pub fn plist_path(env: &Env) -> Option<PathBuf> {
    crate::paths::home_dir(env).map(|h| {
        h.join("Library")
            .join("LaunchAgents")
            .join(format!("{LABEL}.plist"))
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The property list's text.
#[must_use]
pub fn plist(spec: &ServiceSpec) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    let _ = writeln!(out, "  <key>Label</key>\n  <string>{LABEL}</string>");
    out.push_str("  <key>ProgramArguments</key>\n  <array>\n");
    for arg in &spec.argv {
        let _ = writeln!(out, "    <string>{}</string>", escape(arg));
    }
    out.push_str("  </array>\n");
    if !spec.env.is_empty() {
        out.push_str("  <key>EnvironmentVariables</key>\n  <dict>\n");
        for (name, value) in &spec.env {
            let _ = writeln!(
                out,
                "    <key>{}</key>\n    <string>{}</string>",
                escape(name),
                escape(value)
            );
        }
        out.push_str("  </dict>\n");
    }
    out.push_str(
        "  <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>ProcessType</key>\n  <string>Background</string>\n",
    );
    if let Some(log) = &spec.log {
        let log = escape(&log.display().to_string());
        let _ = writeln!(
            out,
            "  <key>StandardOutPath</key>\n  <string>{log}</string>\n  <key>StandardErrorPath</key>\n  <string>{log}</string>"
        );
    }
    out.push_str("</dict>\n</plist>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent is a valid property list with the intended values: parsed back by Python's
    /// `plistlib` (an independent parser).
    #[test]
    #[ignore = "needs python3"]
    fn plist_parses_back_with_the_intended_values() {
        use std::io::Write as _;
        let spec = ServiceSpec {
            argv: vec!["/Users/a & b/bin/bitrouter".into(), "serve".into()],
            env: vec![("XDG_DATA_HOME".into(), "/Users/a/<data>".into())],
            log: Some("/Users/a/state/serve.log".into()),
        };
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(plist(&spec).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            plist(&spec),
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "Label": "dev.bitrouter.serve",
                "ProgramArguments": ["/Users/a & b/bin/bitrouter", "serve"],
                "EnvironmentVariables": {"XDG_DATA_HOME": "/Users/a/<data>"},
                "RunAtLoad": true,
                "KeepAlive": {"SuccessfulExit": false},
                "ProcessType": "Background",
                "StandardOutPath": "/Users/a/state/serve.log",
                "StandardErrorPath": "/Users/a/state/serve.log",
            })
        );
    }
}
