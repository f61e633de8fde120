//! User-facing output: human text and progress go to stderr (hidden by `--quiet`), data such as
//! `--json` documents, completions and man pages go to stdout.

use std::io::{self, Write};

/// How much the user asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Normal output.
    Normal,
    /// Extra detail (`-v`).
    Verbose,
}

/// Writes user-facing text to the right stream.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    verbosity: Verbosity,
}

impl Printer {
    /// A printer at this verbosity.
    #[must_use]
    pub fn new(verbosity: Verbosity) -> Self {
        Printer { verbosity }
    }

    /// A line of human text on stderr, unless quiet.
    pub fn info(&self, line: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            let _ = writeln!(io::stderr().lock(), "{line}");
        }
    }

    /// A warning on stderr, shown even when quiet.
    pub fn warn(&self, line: impl std::fmt::Display) {
        let _ = writeln!(io::stderr().lock(), "warning: {line}");
    }

    /// Data on stdout (never hidden by `--quiet`).
    pub fn data(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// One JSON document on stdout.
    pub fn json(&self, value: &serde_json::Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.data(&text)
    }
}
