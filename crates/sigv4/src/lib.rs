//! AWS Signature Version 4: parse, canonicalise, verify (header and presigned forms) and sign.
//!
//! The crate is pure: no I/O, no async, no clock. The caller passes the request as it came off the
//! wire and the current time, and gets back either the parsed signature or an error that renders
//! as the exact error AWS would answer ([`SigV4Error::to_aws_error`]).
//!
//! Verification is two steps so that the server can look the credentials up in between:
//!
//! 1. [`parse`] checks everything that needs no secret (which mechanism, the shape of the
//!    credential scope, which headers are signed, the clock) and returns a [`SignatureInfo`].
//! 2. The server resolves `info.access_key_id` to a secret (a miss is
//!    [`SigV4Error::UnknownAccessKey`]), checks the scope against the service it routed to with
//!    [`check_scope`], and calls [`verify`], which recomputes the signature and compares it in
//!    constant time.
//!
//! Canonicalisation follows AWS's rules for every service except S3: the path has its dot
//! segments and duplicate slashes removed and is then URI-encoded as received, so an
//! already-encoded path is encoded a second time; query parameters are decoded and re-encoded
//! with the RFC 3986 unreserved set and sorted.
//!
//! [`sign`] and [`presign`] produce requests that [`verify`] accepts; the CLI, the tests and the
//! benchmark use them.
//!
//! # For the server
//!
//! * Pass `path` and `query` exactly as received (`uri.path()`, `uri.query().unwrap_or("")`):
//!   not decoded, not normalised. Routing may normalise its own copy.
//! * `headers` must contain `host`. HTTP/2 requests carry it as `:authority`, which hyper puts
//!   in the URI: insert it as `host` before calling [`parse`].
//! * The whole body is hashed: buffer it (with the server's size limit) before [`verify`].
//! * Flow: [`parse`] → look up `info.access_key_id` (miss: [`SigV4Error::UnknownAccessKey`]) →
//!   [`check_scope`] with the signing name the request was routed to (and [`check_region`] if
//!   the deployment limits regions) → [`verify`] with one shared [`SigningKeyCache`].
//!   `info.security_token`, when present, is the server's to validate against the temporary
//!   credentials of that key id.
//! * Render failures with [`SigV4Error::to_aws_error`], `query_protocol = true` for awsQuery
//!   services (STS, IAM).
//! * [`parse_authorization_header`] is a pure entry point for fuzzing; no input panics any
//!   function of this crate.

mod canonical;
mod datetime;
mod error;
mod keys;
mod parse;
mod sign;
mod verify;

pub use canonical::{
    canonical_query, canonical_request, canonical_uri, sha256_hex, string_to_sign,
};
pub use error::SigV4Error;
pub use keys::{SecretKey, SigningKeyCache};
pub use parse::{
    AuthorizationHeader, RequestParts, SignatureInfo, parse, parse_authorization_header,
};
pub use sign::{SigningParams, presign, sign};
pub use verify::{check_region, check_scope, verify};

/// The only algorithm this crate speaks.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The literal payload hash of a request whose body is not covered by the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// How far the request time may drift from the server clock, in either direction.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// The longest validity a presigned URL may ask for (seven days), as AWS allows.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;
