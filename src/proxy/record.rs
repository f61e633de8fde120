//! What is learned about one request on its way, for its access-log line and its history row:
//! the model asked for, each upstream attempt (who served it, tries and failovers), token
//! counts and the error the client got. The HTTP face creates one [`LogCell`] per request and
//! finishes the record when the answer ends; the request path fills it in.

use std::sync::{Arc, Mutex};

use crate::history::Tokens;
use crate::ids::ProviderId;

/// What the handlers learn about a request, for its log line and history row.
#[derive(Debug, Clone, Default)]
pub struct LogFields {
    /// The model the client asked for.
    pub model: Option<String>,
    /// The provider that served it (or was tried last).
    pub provider: Option<Arc<str>>,
    /// The upstream model it was sent as.
    pub upstream_model: Option<Arc<str>>,
    /// The account (label) that served it (or was tried last).
    pub account: Option<Arc<str>>,
    /// Upstream requests sent.
    pub tries: u32,
    /// Times another account or route entry took over after a failure.
    pub failovers: u32,
    /// Token counts the answer reported.
    pub tokens: Tokens,
    /// An error code if the answer failed (also midway, e.g. `upstream_disconnected`).
    pub error: Option<String>,
    /// The message of an error answer.
    pub error_message: Option<String>,
}

impl LogFields {
    /// Notes an upstream request to `provider`'s `model` with `account`: one more try, and a
    /// failover when it is not what the previous try used (a refresh-and-retry on the same
    /// account is a try, not a failover). The names are shared, not copied.
    pub fn attempt(&mut self, provider: &ProviderId, model: &Arc<str>, account: &Arc<str>) {
        let same = self.provider.as_deref() == Some(provider.as_str())
            && self.upstream_model.as_ref() == Some(model)
            && self.account.as_ref() == Some(account);
        if self.tries > 0 && !same {
            self.failovers += 1;
        }
        self.tries += 1;
        if !same {
            self.provider = Some(provider.shared());
            self.upstream_model = Some(Arc::clone(model));
            self.account = Some(Arc::clone(account));
        }
    }
}

/// A request's log fields, shared between the HTTP face and the request path. A disabled cell
/// (when nothing would read the fields) ignores updates, so the request path gathers nothing.
#[derive(Debug, Clone)]
pub struct LogCell(Option<Arc<Mutex<LogFields>>>);

impl Default for LogCell {
    /// A cell that keeps what it is told.
    fn default() -> Self {
        LogCell(Some(Arc::default()))
    }
}

impl LogCell {
    /// A cell that ignores updates.
    #[must_use]
    pub fn disabled() -> Self {
        LogCell(None)
    }

    /// Whether anything reads the fields (the request path skips work whose result only goes
    /// here when nothing does).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Updates the fields (nothing happens on a disabled cell).
    pub fn update(&self, f: impl FnOnce(&mut LogFields)) {
        if let Some(cell) = &self.0 {
            f(&mut cell
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// The fields, taken out (empty for a disabled cell); the request is over when they are.
    #[must_use]
    pub fn take(&self) -> LogFields {
        self.0.as_ref().map_or_else(LogFields::default, |cell| {
            std::mem::take(
                &mut *cell
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_tries_and_failovers() {
        let mut f = LogFields::default();
        let attempt = |f: &mut LogFields, provider: &str, model: &str, account: &str| {
            f.attempt(&provider.parse().unwrap(), &model.into(), &account.into());
        };
        attempt(&mut f, "openai-codex", "gpt", "work");
        // A refresh-and-retry on the same account is a try, not a failover.
        attempt(&mut f, "openai-codex", "gpt", "work");
        attempt(&mut f, "openai-codex", "gpt", "home");
        attempt(&mut f, "openai", "gpt-4.1", "config");
        assert_eq!((f.tries, f.failovers), (4, 2));
        assert_eq!(f.provider.as_deref(), Some("openai"));
        assert_eq!(f.upstream_model.as_deref(), Some("gpt-4.1"));
        assert_eq!(f.account.as_deref(), Some("config"));
    }

    #[test]
    fn a_disabled_cell_keeps_nothing() {
        let cell = LogCell::disabled();
        cell.update(|f| f.tries = 3);
        assert!(!cell.is_enabled());
        assert_eq!(cell.take().tries, 0);
        let cell = LogCell::default();
        cell.update(|f| f.tries = 3);
        assert_eq!(cell.take().tries, 3);
        assert_eq!(cell.take().tries, 0);
    }
}
