//! The background task that keeps `usage.json` current while `serve` runs: it waits for the
//! [`AccountBook`] to change, lets further changes gather for a moment, then writes the whole
//! file off the runtime thread. A failed write is logged and retried on the next change.
//!
//! The same task hands each quota snapshot read since its last write to the request history
//! ([`Sink::quota`], which never waits), so quota trends are kept: the one place quota reaches
//! [`crate::history`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::book::AccountBook;
use super::file::{UsageError, UsageFile, save};
use crate::history::Sink;
use crate::ids::{Label, ProviderId};

/// How long the writer waits for more changes before writing.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Runs the debounced writer until `shutdown`, then writes once more.
pub async fn run_writer(
    book: Arc<AccountBook>,
    data_dir: PathBuf,
    history: Sink,
    shutdown: CancellationToken,
) {
    let mut recorded = Recorded::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = book.changed() => {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
                write(&book, &data_dir, &history, &mut recorded).await;
            }
        }
    }
    write(&book, &data_dir, &history, &mut recorded).await;
}

/// When each account's quota was last handed to the history.
type Recorded = HashMap<(ProviderId, Label), i64>;

async fn write(book: &AccountBook, data_dir: &Path, history: &Sink, recorded: &mut Recorded) {
    let file = book.to_usage();
    record_quotas(&file, history, recorded);
    if file.accounts.is_empty() {
        return;
    }
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || save(&dir, &file)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("{e}: {}", e_source(&e)),
        Err(e) => tracing::warn!("usage writer task failed: {e}"),
    }
}

/// Hands the history each account's quota snapshot read since the last one it got.
fn record_quotas(file: &UsageFile, history: &Sink, recorded: &mut Recorded) {
    if !history.is_enabled() {
        return;
    }
    for account in &file.accounts {
        let Some(checked_at) = account.quota_checked_at else {
            continue;
        };
        let key = (account.provider.clone(), account.label.clone());
        if recorded.get(&key) == Some(&checked_at) {
            continue;
        }
        if let Some(record) = account.quota_record() {
            history.quota(record);
        }
        recorded.insert(key, checked_at);
    }
}

fn e_source(e: &UsageError) -> String {
    std::error::Error::source(e).map_or_else(String::new, ToString::to_string)
}
