//! The request history: one row per request that reached a proxy endpoint and one per quota
//! snapshot, in an embedded SQLite database (`$XDG_DATA_HOME/bitrouter/history.sqlite3`, mode
//! 0600). Never prompt or answer text, never a credential: the records ([`record`]) have no
//! field for them.
//!
//! - [`record`]: what a row holds, and token counts read from any API's `usage`.
//! - [`client`]: which tool sent a request, from its `User-Agent` and `originator`.
//! - [`scan`]: token counts from an answer passed on untouched.
//! - [`db`]: the file: created private, WAL, migrated ([`schema`]), moved aside when damaged.
//! - [`sink`]: the [`Sink`] the request path hands records to (never blocking); requests wait
//!   in per-thread lanes ([`lanes`]), packed as bytes ([`packed`]).
//! - [`writer`]: the one thread that stores them in batches, with retention.
//! - [`store`]: the SQL that stores records.
//! - [`report`]: totals, breakdowns, series and recent rows for `bitrouter usage` and the
//!   dashboard.

pub mod client;
pub mod db;
mod lanes;
mod packed;
pub mod record;
pub mod report;
pub mod scan;
mod schema;
mod sink;
pub mod store;
pub mod writer;

use std::path::Path;

pub use db::{FILE_NAME, HistoryError, path_in};
pub use record::{QuotaRecord, QuotaWindow, RequestRecord, Tokens};
pub use sink::{Sink, Stats};
pub use writer::{Writer, WriterOptions};

use crate::config::HistoryConfig;

/// Starts history for `serve`: a writer thread on `data_dir`'s database, or a disabled sink
/// when `history: off`, when there is no data directory, or when the thread cannot start (said
/// in a warning; requests are served either way).
#[must_use]
pub fn start(data_dir: Option<&Path>, config: &HistoryConfig) -> (Sink, Option<Writer>) {
    let (true, Some(dir)) = (config.enabled, data_dir) else {
        return (Sink::disabled(), None);
    };
    let options = WriterOptions {
        path: path_in(dir),
        keep_days: config.keep_days,
        capacity: writer::CHANNEL_CAPACITY,
    };
    match writer::start(options) {
        Ok((sink, writer)) => (sink, Some(writer)),
        Err(e) => {
            tracing::warn!(
                "history: cannot start the writer thread ({e}); history is off for this run"
            );
            (Sink::disabled(), None)
        }
    }
}
