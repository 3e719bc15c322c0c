//! The errors KMS answers with, worded as AWS words them (see `reference/kms.md`), and the
//! internal error type of the crate's non-request entry points.
//!
//! No message here may carry plaintext, key material or a ciphertext's contents.

use citadel_api::AwsError;
use citadel_store::StoreError;

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "NotFoundException", message)
}

/// `Key 'arn:aws:kms:…:key/<id>' does not exist`
pub(crate) fn key_does_not_exist(arn: &str) -> AwsError {
    not_found(format!("Key '{arn}' does not exist"))
}

/// `Invalid keyId 'fake-key-id'`
pub(crate) fn invalid_key_id(key_id: &str) -> AwsError {
    not_found(format!("Invalid keyId '{key_id}'"))
}

/// `Alias arn:aws:kms:us-west-2:111122223333:alias/x is not found.`
pub(crate) fn alias_not_found(alias_arn: &str) -> AwsError {
    not_found(format!("Alias {alias_arn} is not found."))
}

pub(crate) fn disabled(arn: &str) -> AwsError {
    AwsError::new(400, "DisabledException", format!("{arn} is disabled."))
}

pub(crate) fn invalid_state(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "KMSInvalidStateException", message)
}

/// AWS answers every ciphertext that does not open (tampered, truncated, wrong context, unknown
/// key or material) with this exception and an *empty* message: the reason is not disclosed.
pub(crate) fn invalid_ciphertext() -> AwsError {
    AwsError {
        code: "InvalidCiphertextException".into(),
        message: Some(String::new()),
        status: 400,
    }
}

pub(crate) fn incorrect_key() -> AwsError {
    AwsError::new(
        400,
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
    )
}

pub(crate) fn unsupported(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "UnsupportedOperationException", message)
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "LimitExceededException", message)
}

pub(crate) fn tag_error(message: &str) -> AwsError {
    AwsError::new(400, "TagException", message)
}

pub(crate) fn malformed_policy(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "MalformedPolicyDocumentException", message)
}

pub(crate) fn dry_run() -> AwsError {
    AwsError::new(
        400,
        "DryRunOperationException",
        "The request would have succeeded, but the DryRun option is set.",
    )
}

/// A required member the model leaves optional (it became optional for `DryRunModifiers`), in
/// the model's own wording.
pub(crate) fn missing_member(path: &str) -> AwsError {
    let mut errs = citadel_api::ValidationErrors::new();
    errs.push_missing(path);
    errs.into_result()
        .err()
        .unwrap_or_else(|| AwsError::validation(path.to_owned()))
}

/// `KMSInternalException` (500): the cause goes to the log, never to the caller.
pub(crate) fn internal() -> AwsError {
    AwsError::new(
        500,
        "KMSInternalException",
        "The request was rejected because an internal exception occurred. The request can be retried.",
    )
}

/// Maps a storage failure to what the caller sees. A sealed store is the documented 503; anything
/// else is logged (the store's messages name keys, never values) and hidden behind
/// `KMSInternalException`.
pub(crate) fn store(e: StoreError) -> AwsError {
    match e {
        StoreError::Sealed | StoreError::NotInitialized => AwsError::sealed(),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "KMS storage is unavailable");
            AwsError::storage_unavailable()
        }
        other => {
            tracing::error!(error = %other, "KMS storage operation failed");
            internal()
        }
    }
}

pub(crate) fn crypto(e: &citadel_crypto::CryptoError) -> AwsError {
    tracing::error!(error = %e, "KMS cryptographic operation failed");
    internal()
}

/// Failures of the crate's background entry points ([`crate::Kms::run_due`]).
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] citadel_crypto::CryptoError),
    /// A stored record did not have the expected shape.
    #[error("corrupt KMS record at {key}: {reason}")]
    Corrupt { key: String, reason: String },
}
