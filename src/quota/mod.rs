//! Quota state per account, shared by `serve` and the commands that report it without a
//! server (`status`, `route`, `models`): cooldowns and quota snapshots in memory
//! ([`AccountBook`]), their file `usage.json` ([`mod@file`]) and its writer, the `x-codex-*` quota
//! headers ([`headers`]), the backend's usage endpoint ([`endpoint`]), and what clients are
//! told about the serving account's quota in their own conventions ([`report`]).

pub mod book;
pub mod endpoint;
pub mod file;
pub mod headers;
pub mod report;
pub mod writer;

pub use book::AccountBook;
pub use file::{AccountUsage, QuotaSource, UsageError, UsageFile};
pub use headers::{Snapshot, Window};
