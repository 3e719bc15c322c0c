//! The CloudTrail-compatible audit trail.
//!
//! - [`Record`]: one CloudTrail record (`eventVersion` 1.11) per API call, built by the
//!   dispatcher from the request context, the operation, the redacted input and output
//!   ([`redact`], driven by the AWS models' `sensitive` traits) and the error.
//! - [`AuditLog`]: the one writer. Records become durable (fsynced, group-committed) in hourly
//!   log files under `<data-dir>/audit/AWSLogs/…` before the response is sent, and are indexed
//!   in the sealed store for LookupEvents ([`index`]); hourly digest files chain and sign the
//!   log files exactly as CloudTrail's log file integrity validation does ([`digest`]).
//! - [`verify()`]: the offline `validate-logs`: names every modified, deleted or inserted log
//!   file and every digest whose chain or signature broke.
//!
//! See [`layout`] for the on-disk layout.

pub mod clock;
pub mod digest;
mod error;
pub mod index;
pub mod layout;
pub mod record;
pub mod redact;
pub mod signer;
pub mod verify;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AuditError, Result};
pub use record::{Call, Caller, Record, TlsDetails, UserIdentity};
pub use signer::{PublicKeyInfo, public_keys};
pub use verify::{FileKind, Finding, Report, verify};
pub use writer::{AuditConfig, AuditLog, DEFAULT_RETENTION_DAYS};

#[cfg(test)]
mod tests;
