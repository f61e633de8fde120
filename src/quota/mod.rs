//! Quota state per account, shared by `serve` and the commands that report it without a
//! server (`status`, `route`, `models`): cooldowns and quota snapshots in memory
//! ([`AccountBook`]), their file `usage.json` ([`file`]) and its writer, the `x-codex-*` quota
//! headers ([`headers`]) and the backend's usage endpoint ([`endpoint`]).

pub mod book;
pub mod endpoint;
pub mod file;
pub mod headers;
pub mod writer;

pub use book::AccountBook;
pub use file::{AccountUsage, QuotaSource, UsageError, UsageFile};
pub use headers::{Snapshot, Window};
