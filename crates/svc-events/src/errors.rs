//! The errors EventBridge answers with, and the crate's internal error type.

use citadel_api::AwsError;
use citadel_store::StoreError;

pub(crate) fn validation(message: impl Into<String>) -> AwsError {
    AwsError::validation(message)
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", message)
}

pub(crate) fn already_exists(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceAlreadyExistsException", message)
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "LimitExceededException", message)
}

pub(crate) fn concurrent_modification() -> AwsError {
    AwsError::new(
        400,
        "ConcurrentModificationException",
        "Another request changed this resource at the same time. Retry the request.",
    )
}

pub(crate) fn invalid_pattern(e: &citadel_events::PatternError) -> AwsError {
    AwsError::new(400, "InvalidEventPatternException", e.to_string())
}

/// `Rule r does not exist on EventBus default.`
pub(crate) fn rule_not_found(name: &str) -> AwsError {
    not_found(format!("Rule {name} does not exist on EventBus default."))
}

pub(crate) fn bus_not_found(name: &str) -> AwsError {
    not_found(format!("Event bus {name} does not exist."))
}

/// `InternalException` (500): the cause goes to the log, never to the caller.
pub(crate) fn internal() -> AwsError {
    AwsError::new(
        500,
        "InternalException",
        "An internal error occurred. Retry the request.",
    )
}

/// A storage failure: sealed is the documented 503; a conflict is a concurrent change; the rest
/// is logged and hidden.
pub(crate) fn store(e: StoreError) -> AwsError {
    match e {
        StoreError::Sealed | StoreError::NotInitialized => AwsError::sealed(),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "EventBridge storage is unavailable");
            AwsError::storage_unavailable()
        }
        StoreError::Conflict { .. } => concurrent_modification(),
        other => {
            tracing::error!(error = %other, "EventBridge storage operation failed");
            internal()
        }
    }
}

/// Failures of the bus's in-process entry points ([`crate::Bus::publish`], delivery, redrive).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode an event record: {0}")]
    Encode(String),
}
