//! What the dashboard ([`crate::dashboard`]) sees of the running server: the stored accounts
//! with their live cooldowns and latest quota, the local-key check, and the history sink.

use axum::http::HeaderMap;

use super::state::AppState;
use crate::dashboard::{AccountView, DashboardSource};
use crate::history::Sink;
use crate::quota::AccountUsage;
use crate::upstream::headers::has_local_key;

impl DashboardSource for AppState {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.proxy.config().server.api_key {
            Some(key) => has_local_key(headers, key, true),
            None => true,
        }
    }

    fn accounts(&self) -> Vec<AccountView> {
        let config = self.proxy.config();
        let usage = self.proxy.book.to_usage();
        let mut views = Vec::new();
        for (provider, labels) in &self.proxy.inventory(&config).labels {
            for label in labels {
                let saved = usage.get(provider, label);
                views.push(AccountView {
                    provider: provider.to_string(),
                    label: label.to_string(),
                    plan: saved.and_then(|u| u.plan_type.clone()),
                    cooling_until: saved.and_then(|u| u.cooling_until),
                    primary: saved.and_then(AccountUsage::primary),
                    secondary: saved.and_then(AccountUsage::secondary),
                    quota_checked_at: saved.and_then(|u| u.quota_checked_at),
                    quota_source: saved
                        .and_then(|u| u.quota_source)
                        .map(|s| s.as_str().to_owned()),
                });
            }
        }
        views
    }

    fn history(&self) -> Sink {
        self.history.clone()
    }
}
