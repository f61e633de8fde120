//! Quota per account: the `x-codex-*` quota headers read into a snapshot ([`headers`]) and what
//! clients are told about the serving account's quota in their own conventions ([`report`]).

pub mod headers;
pub mod report;

pub use headers::{Snapshot, Window};
