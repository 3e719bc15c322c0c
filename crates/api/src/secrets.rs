//! What other services ask of Secrets Manager on a caller's behalf: Parameter Store's
//! `/aws/reference/secretsmanager/<secret-id>` references. The Secrets Manager crate implements
//! [`SecretReader`]; Parameter Store holds an `Arc<dyn SecretReader>` so it depends on the
//! contract, not on Secrets Manager's internals.
//!
//! A read is exactly a `secretsmanager:GetSecretValue` by the caller: the same authorization
//! (identity and resource policies, condition keys), the same KMS decryption with the caller's
//! forwarded context (`kms:ViaService = secretsmanager.<region>.amazonaws.com`), the same
//! errors. `ctx` is the caller's context forwarded by the asking service (`ctx.via("ssm")`).

use zeroize::Zeroizing;

use crate::{AwsError, RequestContext};

/// Which version of a secret to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretVersion {
    /// The version labelled `AWSCURRENT`.
    Current,
    /// A `VersionId` when the secret has a version with that id, else a staging label — how a
    /// `…/<secret-id>:<suffix>` reference names a version.
    IdOrStage(String),
}

/// A secret's value: text (`SecretString`) or bytes (`SecretBinary`), zeroized on drop.
pub enum SecretPayload {
    Text(Zeroizing<String>),
    Binary(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for SecretPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretPayload::Text(_) => "Text(<redacted>)",
            SecretPayload::Binary(_) => "Binary(<redacted>)",
        })
    }
}

/// One version of a secret, as GetSecretValue returns it.
#[derive(Debug)]
pub struct SecretValue {
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub version_stages: Vec<String>,
    /// When the version was created, in milliseconds since the epoch.
    pub created_ms: i64,
    pub payload: SecretPayload,
}

/// Secrets Manager as other services see it. Errors are Secrets Manager's own
/// (`ResourceNotFoundException`, `AccessDeniedException`, `InvalidRequestException`, …): the
/// calling service decides how to present them.
#[async_trait::async_trait]
pub trait SecretReader: Send + Sync {
    /// `secretsmanager:GetSecretValue` of `secret_id` (a name or an ARN) by the caller.
    async fn get_secret_value(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<SecretValue, AwsError>;
}
