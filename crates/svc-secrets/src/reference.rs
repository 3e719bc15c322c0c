//! [`SecretReader`] for other services (Parameter Store's `/aws/reference/secretsmanager/`
//! references): a GetSecretValue by the caller through the very same code path as the
//! operation itself ([`Inner::get_value`]), so authorization, resource policies, KMS
//! decryption and errors cannot drift apart.

use citadel_api::{
    AwsError, RequestContext, SecretPayload, SecretReader, SecretValue, SecretVersion,
};

use crate::{Inner, SecretsManager};

impl Inner {
    /// Reads one version for another service. A `…:<suffix>` names a VersionId when the secret
    /// has a version with that id, and a staging label otherwise.
    pub(crate) async fn read_for_reference(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<SecretValue, AwsError> {
        let (version_id, version_stage) = match version {
            SecretVersion::Current => (None, None),
            SecretVersion::IdOrStage(selector) => {
                // Only which request parameter the suffix fills is decided here; get_value
                // authorizes (and answers a missing secret) as GetSecretValue does.
                let found = self
                    .find(ctx, secret_id, "secretsmanager:GetSecretValue")
                    .await?;
                if found.record.versions.contains_key(selector.as_str()) {
                    (Some(selector.as_str()), None)
                } else {
                    (None, Some(selector.as_str()))
                }
            }
        };
        let out = self
            .get_value(ctx, secret_id, version_id, version_stage)
            .await?;
        let payload = match (out.secret_string, out.secret_binary) {
            (Some(text), _) => SecretPayload::Text(text.into_zeroizing()),
            (None, Some(bytes)) => SecretPayload::Binary(bytes.into_zeroizing()),
            (None, None) => {
                tracing::error!("GetSecretValue returned a version without a value");
                return Err(crate::errors::internal());
            }
        };
        Ok(SecretValue {
            arn: out.arn.unwrap_or_default(),
            name: out.name.unwrap_or_default(),
            version_id: out.version_id.unwrap_or_default(),
            version_stages: out.version_stages.unwrap_or_default(),
            created_ms: out.created_date.map_or(0, |t| t.epoch_millis()),
            payload,
        })
    }
}

#[async_trait::async_trait]
impl SecretReader for SecretsManager {
    async fn get_secret_value(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<SecretValue, AwsError> {
        if self.inner.store.is_sealed() {
            return Err(AwsError::sealed());
        }
        self.inner.read_for_reference(ctx, secret_id, version).await
    }
}
