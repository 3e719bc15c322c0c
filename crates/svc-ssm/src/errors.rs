//! The errors Parameter Store answers with, worded as AWS words them where the wording is known
//! (see `reference/secrets_ssm.md` §3.2), and the internal error type of the crate's background
//! entry point.
//!
//! No message here may carry a parameter value (plaintext or ciphertext).

use citadel_api::AwsError;
use citadel_store::StoreError;

fn e(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message)
}

/// `ParameterNotFound` as GetParameter and DeleteParameter answer it: with an empty message.
pub(crate) fn parameter_not_found_silent() -> AwsError {
    e("ParameterNotFound", "")
}

/// `ParameterNotFound` naming the parameter (history, labels, policies).
pub(crate) fn parameter_not_found(name: &str) -> AwsError {
    e("ParameterNotFound", format!("Parameter {name} not found."))
}

pub(crate) fn version_not_found(name: &str, selector: &str) -> AwsError {
    e(
        "ParameterVersionNotFound",
        format!(
            "Systems Manager could not find version {selector} of {name}. Verify the version and try again."
        ),
    )
}

pub(crate) fn already_exists() -> AwsError {
    e(
        "ParameterAlreadyExists",
        "The parameter already exists. To overwrite this request, set the overwrite option in the request to true.",
    )
}

pub(crate) fn max_versions(name: &str, oldest: u64) -> AwsError {
    e(
        "ParameterMaxVersionLimitExceeded",
        format!(
            "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {oldest}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again."
        ),
    )
}

pub(crate) fn label_limit() -> AwsError {
    e(
        "ParameterVersionLabelLimitExceeded",
        "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.",
    )
}

pub(crate) fn hierarchy_level(limit: usize) -> AwsError {
    e(
        "HierarchyLevelLimitExceededException",
        format!("A hierarchy can have a maximum of {limit} levels."),
    )
}

pub(crate) fn hierarchy_type_mismatch() -> AwsError {
    e(
        "HierarchyTypeMismatchException",
        "The parameter type can't be changed. To use a different type, delete the parameter and create a new one.",
    )
}

pub(crate) fn pattern_mismatch(pattern: &str) -> AwsError {
    e(
        "ParameterPatternMismatchException",
        format!("Parameter value, cannot be validated against allowedPattern: {pattern}"),
    )
}

pub(crate) fn invalid_allowed_pattern(reason: &str) -> AwsError {
    e(
        "InvalidAllowedPatternException",
        format!("The allowed pattern is not a valid regular expression: {reason}"),
    )
}

pub(crate) fn parameter_limit(tier: &str, limit: u64) -> AwsError {
    e(
        "ParameterLimitExceeded",
        format!(
            "You have reached the maximum number of {tier} parameters ({limit}) in this account and Region. Delete parameters or use the advanced-parameter tier, and try again."
        ),
    )
}

pub(crate) fn invalid_key_id(message: impl Into<String>) -> AwsError {
    e("InvalidKeyId", message)
}

pub(crate) fn unsupported_parameter_type(t: &str) -> AwsError {
    e(
        "UnsupportedParameterType",
        format!("The parameter type {t} isn't supported."),
    )
}

pub(crate) fn validation(message: impl Into<String>) -> AwsError {
    AwsError::validation(message)
}

pub(crate) fn invalid_filter_key(_message: &str) -> AwsError {
    // The model gives InvalidFilterKey no message member.
    AwsError::without_message(400, "InvalidFilterKey")
}

pub(crate) fn invalid_filter_option(message: impl Into<String>) -> AwsError {
    e("InvalidFilterOption", message)
}

pub(crate) fn invalid_filter_value(message: impl Into<String>) -> AwsError {
    e("InvalidFilterValue", message)
}

pub(crate) fn invalid_next_token() -> AwsError {
    e("InvalidNextToken", "The specified token is not valid.")
}

pub(crate) fn too_many_tags() -> AwsError {
    AwsError::without_message(400, "TooManyTagsError")
}

pub(crate) fn invalid_resource_id() -> AwsError {
    AwsError::without_message(400, "InvalidResourceId")
}

pub(crate) fn invalid_resource_type() -> AwsError {
    AwsError::without_message(400, "InvalidResourceType")
}

pub(crate) fn policy_type(message: impl Into<String>) -> AwsError {
    e("InvalidPolicyTypeException", message)
}

pub(crate) fn policy_attribute(message: impl Into<String>) -> AwsError {
    e("InvalidPolicyAttributeException", message)
}

pub(crate) fn incompatible_policy(message: impl Into<String>) -> AwsError {
    e("IncompatiblePolicyException", message)
}

pub(crate) fn policies_limit(limit: usize) -> AwsError {
    e(
        "PoliciesLimitExceededException",
        format!(
            "You specified more than the maximum number of allowed policies for the parameter. The maximum is {limit}."
        ),
    )
}

pub(crate) fn setting_not_found(id: &str) -> AwsError {
    e(
        "ServiceSettingNotFound",
        format!("The service setting {id} was not found."),
    )
}

pub(crate) fn too_many_updates() -> AwsError {
    e(
        "TooManyUpdates",
        "There are concurrent updates for the resource that you're trying to update. Try again.",
    )
}

pub(crate) fn throttled() -> AwsError {
    e("ThrottlingException", "Rate exceeded")
}

pub(crate) fn access_denied(message: impl Into<String>) -> AwsError {
    e("AccessDeniedException", message)
}

pub(crate) fn unsupported(message: impl Into<String>) -> AwsError {
    e("UnsupportedOperationException", message)
}

/// `InternalServerError` (500): the cause goes to the log, never to the caller.
pub(crate) fn internal() -> AwsError {
    AwsError::new(
        500,
        "InternalServerError",
        "An error occurred on the server side.",
    )
}

/// Maps a storage failure to what the caller sees: a sealed store is the documented 503; a
/// lost compare-and-swap is `TooManyUpdates`; anything else is logged and hidden.
pub(crate) fn store(e: StoreError) -> AwsError {
    match e {
        StoreError::Sealed | StoreError::NotInitialized => AwsError::sealed(),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "SSM storage is unavailable");
            AwsError::storage_unavailable()
        }
        StoreError::Conflict { .. } => too_many_updates(),
        other => {
            tracing::error!(error = %other, "Parameter Store storage operation failed");
            internal()
        }
    }
}

pub(crate) fn crypto(e: &citadel_crypto::CryptoError) -> AwsError {
    tracing::error!(error = %e, "Parameter Store cryptographic operation failed");
    internal()
}

/// Failures of the crate's background entry point ([`crate::Ssm::run_due`]).
#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    #[error(transparent)]
    Store(#[from] StoreError),
}
