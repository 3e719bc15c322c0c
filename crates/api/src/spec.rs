//! Static descriptions of services and operations. Instances are generated from the botocore
//! models by `cargo xtask codegen` into `citadel-model`; nothing here is hand-kept per service.

/// The AWS wire protocol a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    AwsJson1_0,
    AwsJson1_1,
    AwsQuery,
    RestJson1,
}

impl Protocol {
    pub fn json_content_type(self) -> &'static str {
        match self {
            Protocol::AwsJson1_0 => "application/x-amz-json-1.0",
            Protocol::AwsJson1_1 => "application/x-amz-json-1.1",
            Protocol::AwsQuery => "text/xml",
            Protocol::RestJson1 => "application/json",
        }
    }
}

/// The name of the human-readable member in a service's error shapes: AWS is not consistent
/// (`message` in KMS, `Message` in Secrets Manager, and both within SSM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageField {
    Lower,
    Upper,
}

impl MessageField {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageField::Lower => "message",
            MessageField::Upper => "Message",
        }
    }
}

#[derive(Debug)]
pub struct ServiceSpec {
    /// Short name used in ARNs and IAM actions, e.g. `kms`, `secretsmanager`.
    pub name: &'static str,
    /// The service name in the SigV4 credential scope.
    pub signing_name: &'static str,
    /// The model's endpoint prefix (`kms`, `ssm`, …).
    pub endpoint_prefix: &'static str,
    pub protocol: Protocol,
    /// `X-Amz-Target` prefix for the awsJson protocols.
    pub target_prefix: Option<&'static str>,
    /// Model API version, e.g. `2014-11-01`; awsQuery requests carry it as `Version`.
    pub api_version: &'static str,
    /// Casing of the message member for errors not declared in the model.
    pub default_message_field: MessageField,
    pub operations: &'static [OperationSpec],
    pub errors: &'static [ErrorSpec],
}

impl ServiceSpec {
    pub fn operation(&self, name: &str) -> Option<&'static OperationSpec> {
        // Operation tables are sorted by name by the generator.
        self.operations
            .binary_search_by(|op| op.name.cmp(name))
            .ok()
            .and_then(|i| self.operations.get(i))
    }

    pub fn error(&self, code: &str) -> Option<&'static ErrorSpec> {
        self.errors
            .binary_search_by(|e| e.code.cmp(code))
            .ok()
            .and_then(|i| self.errors.get(i))
    }

    /// The message member name an error with this code uses on the wire.
    pub fn message_field_for(&self, code: &str) -> MessageField {
        self.error(code)
            .and_then(|e| e.message_field)
            .unwrap_or(self.default_message_field)
    }
}

#[derive(Debug)]
pub struct OperationSpec {
    pub name: &'static str,
    /// restJson1 only: HTTP method and URI template (`/detector/{detectorId}`).
    pub http_method: &'static str,
    pub request_uri: &'static str,
    /// Input and output shape names, if any.
    pub input: Option<&'static str>,
    pub output: Option<&'static str>,
    /// Error codes the model lists for this operation.
    pub errors: &'static [&'static str],
}

#[derive(Debug)]
pub struct ErrorSpec {
    /// The wire code (`__type`), which is the shape name unless the model's `awsQueryError`
    /// trait renames it.
    pub code: &'static str,
    pub http_status: u16,
    /// `fault: true` in the model: the service is at fault (5xx).
    pub server_fault: bool,
    /// `None` when the shape has no message member.
    pub message_field: Option<MessageField>,
}
