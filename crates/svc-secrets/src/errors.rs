//! The errors Secrets Manager answers with, worded as AWS words them (see
//! `reference/secrets_ssm.md` §2.2), and the internal error type of the background entry points.
//!
//! No message here may carry a secret value, a data key or a ciphertext.

use citadel_api::AwsError;
use citadel_store::StoreError;

pub(crate) const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
pub(crate) const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";
pub(crate) const NO_ROTATION_FUNCTION: &str =
    "No Lambda rotation function ARN is associated with this secret.";
pub(crate) const MODIFY_EXISTING_VERSION: &str =
    "You can't modify an existing version, you can only create a new version.";

pub(crate) fn not_found() -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", NOT_FOUND)
}

pub(crate) fn resource_not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", message)
}

/// `Secrets Manager can't find the specified secret value for staging label: AWSCURRENT`
pub(crate) fn no_value_for_stage(stage: &str) -> AwsError {
    resource_not_found(format!(
        "Secrets Manager can't find the specified secret value for staging label: {stage}"
    ))
}

/// `Secrets Manager can't find the specified secret value for VersionId: <id>`
pub(crate) fn no_value_for_version(version_id: &str) -> AwsError {
    resource_not_found(format!(
        "Secrets Manager can't find the specified secret value for VersionId: {version_id}"
    ))
}

pub(crate) fn invalid_request(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidRequestException", message)
}

pub(crate) fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message)
}

pub(crate) fn marked_for_deletion() -> AwsError {
    invalid_request(MARKED_FOR_DELETION)
}

pub(crate) fn exists(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceExistsException", message)
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "LimitExceededException", message)
}

pub(crate) fn invalid_next_token() -> AwsError {
    AwsError::new(
        400,
        "InvalidNextTokenException",
        "The NextToken value is invalid.",
    )
}

pub(crate) fn public_policy() -> AwsError {
    AwsError::new(
        400,
        "PublicPolicyException",
        "The resource policy has public access. Secrets Manager blocks public access to secrets with BlockPublicPolicy.",
    )
}

/// The name pattern error AWS answers (recorded in LocalStack's AWS snapshots).
pub(crate) fn invalid_name() -> AwsError {
    AwsError::validation(
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
    )
}

/// What AWS answers when the caller may call Secrets Manager but KMS refuses them the key.
pub(crate) fn kms_access_denied() -> AwsError {
    AwsError::new(400, "AccessDeniedException", "Access to KMS is not allowed")
}

/// `InternalServiceError` (500): the cause goes to the log, never to the caller.
pub(crate) fn internal() -> AwsError {
    AwsError::new(
        500,
        "InternalServiceError",
        "An error occurred on the server side.",
    )
}

/// Maps a storage failure to what the caller sees. A sealed store is the documented 503;
/// anything else is logged (the store's messages name keys, never values) and hidden.
pub(crate) fn store(e: StoreError) -> AwsError {
    match e {
        StoreError::Sealed | StoreError::NotInitialized => AwsError::sealed(),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "Secrets Manager storage is unavailable");
            AwsError::storage_unavailable()
        }
        other => {
            tracing::error!(error = %other, "Secrets Manager storage operation failed");
            internal()
        }
    }
}

pub(crate) fn crypto(e: &citadel_crypto::CryptoError) -> AwsError {
    tracing::error!(error = %e, "Secrets Manager cryptographic operation failed");
    internal()
}

/// What a KMS refusal looks like through Secrets Manager. `encrypting` picks between
/// `EncryptionFailure` and `DecryptionFailure` for key-state problems.
pub(crate) fn from_kms(e: AwsError, encrypting: bool) -> AwsError {
    if e.status >= 500 || e.code == "ServiceUnavailableException" {
        return e;
    }
    match e.code.as_ref() {
        "AccessDeniedException" => kms_access_denied(),
        "NotFoundException" if encrypting => resource_not_found(
            "Secrets Manager can't find the specified KMS key. Check the KmsKeyId value.",
        ),
        _ => {
            let what = match e.code.as_ref() {
                "DisabledException" => "the KMS key is disabled",
                "KMSInvalidStateException" => "the KMS key is not in a valid state",
                "NotFoundException" => "the KMS key does not exist",
                "InvalidCiphertextException" => "the encrypted value could not be opened",
                "IncorrectKeyException" | "InvalidKeyUsageException" => {
                    "the KMS key cannot be used for this operation"
                }
                _ => "KMS refused the request",
            };
            if encrypting {
                AwsError::new(
                    400,
                    "EncryptionFailure",
                    format!("Secrets Manager can't encrypt the protected secret text: {what}."),
                )
            } else {
                AwsError::new(
                    400,
                    "DecryptionFailure",
                    format!("Secrets Manager can't decrypt the protected secret text: {what}."),
                )
            }
        }
    }
}

/// Failures of the crate's background entry points (scheduled deletion, rotation).
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record did not have the expected shape.
    #[error("corrupt Secrets Manager record at {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{0}")]
    Aws(AwsError),
}

impl From<AwsError> for SecretsError {
    fn from(e: AwsError) -> Self {
        SecretsError::Aws(e)
    }
}
