//! Opening the sign-in page in the user's browser, and knowing when this machine has none (a
//! server reached over SSH, a container): there `login` prints the URL once and points at the
//! device-code sign-in instead of failing through a launcher that cannot work.

use crate::env::{self, Env};

/// Whether a browser can be opened here. On Linux and the BSDs that takes a graphical session
/// (`DISPLAY` or `WAYLAND_DISPLAY`), a `BROWSER` the user chose, or WSL (which opens the Windows
/// browser); macOS and Windows always have one.
#[must_use]
pub fn available(env: &Env) -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    [
        env::DISPLAY,
        env::WAYLAND_DISPLAY,
        env::BROWSER,
        env::WSL_DISTRO_NAME,
    ]
    .iter()
    .any(|name| env.get(name).is_some_and(|v| !v.is_empty()))
}

/// Opens `url` in the browser when one is [`available`]. Returns whether a browser was
/// launched; the launcher's error (which repeats the whole URL) is not shown.
pub fn open(url: &str, env: &Env) -> bool {
    if !available(env) {
        return false;
    }
    match open::that_detached(url) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e.kind(), "no browser launcher worked");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    fn a_browser_needs_a_graphical_session_or_a_choice() {
        assert!(!available(&Env::from_pairs([("HOME", "/home/u")])));
        assert!(!available(&Env::from_pairs([("DISPLAY", "")])));
        for name in ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "WSL_DISTRO_NAME"] {
            assert!(available(&Env::from_pairs([(name, "x")])), "{name}");
        }
    }
}
