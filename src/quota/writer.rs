//! The background task that keeps `usage.json` current while `serve` runs: it waits for the
//! [`AccountBook`] to change, lets further changes gather for a moment, then writes the whole
//! file off the runtime thread. A failed write is logged and retried on the next change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::book::AccountBook;
use super::file::{UsageError, save};

/// How long the writer waits for more changes before writing.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Runs the debounced writer until `shutdown`, then writes once more.
pub async fn run_writer(book: Arc<AccountBook>, data_dir: PathBuf, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = book.changed() => {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
                write(&book, &data_dir).await;
            }
        }
    }
    write(&book, &data_dir).await;
}

async fn write(book: &AccountBook, data_dir: &Path) {
    let file = book.to_usage();
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

fn e_source(e: &UsageError) -> String {
    std::error::Error::source(e).map_or_else(String::new, ToString::to_string)
}
