//! What the dashboard ([`crate::dashboard`]) sees of the running server: the stored accounts
//! with their live cooldowns and latest quota, the local-key check, and the history sink.

use axum::http::HeaderMap;

use super::security;
use super::state::AppState;
use super::usage::QuotaSource;
use crate::dashboard::{AccountView, DashboardSource};
use crate::history::{QuotaWindow, Sink};

impl DashboardSource for AppState {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.config().server.api_key {
            Some(key) => security::has_local_key(headers, key, true),
            None => true,
        }
    }

    fn accounts(&self) -> Vec<AccountView> {
        let config = self.config();
        let usage = self.book.to_usage();
        let mut views = Vec::new();
        for (provider, labels) in self.inventory(&config).labels {
            for label in labels {
                let saved = usage.get(&provider, &label);
                let window = |used_percent, window_minutes, reset_at| {
                    let w = QuotaWindow {
                        used_percent,
                        window_minutes,
                        reset_at,
                    };
                    (w != QuotaWindow::default()).then_some(w)
                };
                views.push(AccountView {
                    provider: provider.to_string(),
                    label: label.to_string(),
                    plan: saved.and_then(|u| u.plan_type.clone()),
                    cooling_until: saved.and_then(|u| u.cooling_until),
                    primary: saved.and_then(|u| {
                        window(
                            u.primary_used_percent,
                            u.primary_window_minutes,
                            u.primary_reset_at,
                        )
                    }),
                    secondary: saved.and_then(|u| {
                        window(
                            u.secondary_used_percent,
                            u.secondary_window_minutes,
                            u.secondary_reset_at,
                        )
                    }),
                    quota_checked_at: saved.and_then(|u| u.quota_checked_at),
                    quota_source: saved.and_then(|u| u.quota_source).map(|s| {
                        match s {
                            QuotaSource::Headers => "headers",
                            QuotaSource::UsageEndpoint => "usage_endpoint",
                        }
                        .to_owned()
                    }),
                });
            }
        }
        views
    }

    fn history(&self) -> Sink {
        self.history.clone()
    }
}
