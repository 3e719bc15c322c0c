use std::borrow::Cow;
use std::fmt;

/// An error as AWS returns it: a wire code, a message, an HTTP status.
///
/// The message is shown to the caller, so it must never contain plaintexts, secrets or key
/// material, and for 5xx errors never internal details (those go to the log instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: Cow<'static, str>,
    /// `None` means the error carries no message member at all (some AWS errors, e.g. KMS
    /// `InvalidCiphertextException`, answer with an empty one: use `Some(String::new())` there).
    pub message: Option<String>,
    pub status: u16,
}

impl AwsError {
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            code: code.into(),
            message: Some(message.into()),
            status,
        }
    }

    pub fn without_message(status: u16, code: impl Into<Cow<'static, str>>) -> Self {
        AwsError {
            code: code.into(),
            message: None,
            status,
        }
    }

    pub fn is_server_fault(&self) -> bool {
        self.status >= 500
    }

    /// `ValidationException` (400) with a ready message.
    pub fn validation(message: impl Into<String>) -> Self {
        AwsError::new(400, "ValidationException", message)
    }

    /// `SerializationException` (400): the body could not be parsed as the operation's input.
    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(400, "SerializationException", message)
    }

    /// An operation the model lists that Citadel does not implement yet. 400 rather than 5xx so
    /// SDKs do not retry it, and a name that says exactly what is missing.
    pub fn unsupported_operation(service: &str, operation: &str) -> Self {
        AwsError::new(
            400,
            "UnsupportedOperationException",
            format!("Citadel does not implement {service}:{operation} yet."),
        )
    }

    /// `InternalFailure` (500). The message is deliberately generic; log the cause separately.
    pub fn internal() -> Self {
        AwsError::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// The storage backend (the PostgreSQL server) cannot be reached right now. Transient: the
    /// client retries (AWS SDKs retry 503s), and calls succeed again once the database is back.
    pub fn storage_unavailable() -> Self {
        AwsError::new(
            503,
            "ServiceUnavailableException",
            "Citadel cannot reach its database right now. Retry the request later.",
        )
    }

    /// The API is sealed: nothing can be read or written until an operator unseals it.
    pub fn sealed() -> Self {
        AwsError::new(
            503,
            "ServiceUnavailableException",
            "Citadel is sealed. An operator must unseal it (citadel operator unseal) before it can serve requests.",
        )
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, "{} ({}): {}", self.code, self.status, m),
            _ => write!(f, "{} ({})", self.code, self.status),
        }
    }
}

impl std::error::Error for AwsError {}

/// Collects constraint violations in AWS's Coral style and turns them into one
/// `ValidationException`:
/// `1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024`.
#[derive(Debug, Default)]
pub struct ValidationErrors {
    items: Vec<String>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the member at `path` (lowerCamel, dotted for nesting) with the rendered
    /// `value` breaks `constraint` ("Member must …").
    pub fn push(&mut self, value: &str, path: &str, constraint: &str) {
        self.items.push(format!(
            "Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Like [`push`](Self::push) for a sensitive member (plaintext, secret value): AWS leaves the
    /// value out of the message, and so do we.
    pub fn push_redacted(&mut self, path: &str, constraint: &str) {
        self.items.push(format!(
            "Value at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Records a missing required member (AWS renders the value as `null`).
    pub fn push_missing(&mut self, path: &str) {
        self.items.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_result(self) -> Result<(), AwsError> {
        let n = self.items.len();
        if n == 0 {
            return Ok(());
        }
        let noun = if n == 1 { "error" } else { "errors" };
        Err(AwsError::validation(format!(
            "{n} validation {noun} detected: {}",
            self.items.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_validation_error_reads_like_aws() {
        let mut v = ValidationErrors::new();
        v.push(
            "1025",
            "numberOfBytes",
            "Member must have value less than or equal to 1024",
        );
        let e = v.into_result().unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert_eq!(
            e.message.as_deref(),
            Some(
                "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
            )
        );
    }

    #[test]
    fn several_errors_are_joined_with_semicolons() {
        let mut v = ValidationErrors::new();
        v.push_missing("keyId");
        v.push(
            "0",
            "numberOfBytes",
            "Member must have value greater than or equal to 1",
        );
        let msg = v.into_result().unwrap_err().message.unwrap();
        assert!(msg.starts_with("2 validation errors detected: Value null at 'keyId'"));
        assert!(msg.contains("; Value '0' at 'numberOfBytes'"));
    }
}
