//! The in-process Secrets Manager client of the built-in rotators: the same four calls an AWS
//! rotation template makes (GetSecretValue, PutSecretValue, DescribeSecret,
//! UpdateSecretVersionStage), made through the service's own operations so authorization, KMS
//! envelope encryption and label rules are exactly those of a remote caller.
//!
//! The rotator acts as the root user of the secret's account — what a rotation function's
//! execution role is to AWS, without a role to configure. Values stay in `Zeroizing` buffers.

use std::collections::BTreeMap;
use std::sync::Arc;

use citadel_api::{AwsError, OperationOutput, Principal, RequestContext};
use citadel_model::SensitiveString;
use citadel_model::secretsmanager as sm;
use zeroize::Zeroizing;

use crate::Inner;
use crate::password;
use crate::record::AWSCURRENT;

/// A handle on this Secrets Manager for a rotator running inside the server.
#[derive(Clone)]
pub struct LocalSecrets {
    inner: Arc<Inner>,
    ctx: RequestContext,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecrets")
            .field("account", &self.ctx.principal.account_id)
            .field("region", &self.ctx.region)
            .finish_non_exhaustive()
    }
}

/// Whether an error means "no such secret or version value" (a rotation's placeholder version
/// has none until createSecret puts it).
pub fn is_not_found(e: &AwsError) -> bool {
    e.code == "ResourceNotFoundException"
}

/// An error's code and message, for a rotation failure record. Service errors never carry
/// secret values.
pub fn describe_error(e: &AwsError) -> String {
    match &e.message {
        Some(m) => format!("{}: {m}", e.code),
        None => e.code.to_string(),
    }
}

impl LocalSecrets {
    pub(crate) fn new(inner: Arc<Inner>, account: &str, region: &str) -> Self {
        let ctx = RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            region: region.to_owned(),
            principal: Principal::root(account, "citadel-rotation"),
            source_ip: None,
            user_agent: Some("citadel-builtin-rotator".to_owned()),
            dev_mode: false,
            secure_transport: true,
            authorized: Default::default(),
            called_via: None,
        };
        LocalSecrets { inner, ctx }
    }

    /// A fresh context per call: the authorized mark belongs to one request.
    fn ctx(&self) -> RequestContext {
        RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            authorized: Default::default(),
            ..self.ctx.clone()
        }
    }

    /// GetSecretValue's SecretString for a version and/or stage.
    pub async fn get_string(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Zeroizing<String>, AwsError> {
        let out = self
            .inner
            .get_value(&self.ctx(), secret_id, version_id, stage)
            .await?;
        out.secret_string
            .map(SensitiveString::into_zeroizing)
            .ok_or_else(|| {
                // Unconfirmed AWS wording (the templates' own check).
                AwsError::new(
                    400,
                    "InvalidRequestException",
                    "The secret holds SecretBinary; a database rotator needs a SecretString.",
                )
            })
    }

    /// PutSecretValue of `value` as version `token` with the AWSPENDING label.
    pub async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        mut value: Zeroizing<String>,
    ) -> Result<(), AwsError> {
        let req = sm::PutSecretValueRequest {
            secret_id: Some(secret_id.to_owned()),
            client_request_token: Some(token.to_owned()),
            // Moved, not copied: the text lives on only in the zeroizing request.
            secret_string: Some(SensitiveString::new(std::mem::take(&mut *value))),
            version_stages: Some(vec![crate::record::AWSPENDING.to_owned()]),
            ..Default::default()
        };
        self.inner.put_secret_value(&self.ctx(), req).await?;
        Ok(())
    }

    /// DescribeSecret's VersionIdsToStages.
    pub async fn version_stages(
        &self,
        secret_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        let req = sm::DescribeSecretRequest {
            secret_id: Some(secret_id.to_owned()),
        };
        let out = self.inner.describe_secret(&self.ctx(), req).await?;
        let OperationOutput::Json(value) = out else {
            return Err(AwsError::internal());
        };
        let described: sm::DescribeSecretResponse =
            serde_json::from_value(value).map_err(|_| AwsError::internal())?;
        Ok(described.version_ids_to_stages.unwrap_or_default())
    }

    /// finishSecret: AWSCURRENT moves to `token` (AWSPREVIOUS follows), unless it is there.
    pub async fn promote(&self, secret_id: &str, token: &str) -> Result<(), AwsError> {
        let stages = self.version_stages(secret_id).await?;
        let current = stages
            .iter()
            .find(|(_, s)| s.iter().any(|l| l == AWSCURRENT))
            .map(|(v, _)| v.clone());
        if current.as_deref() == Some(token) {
            return Ok(());
        }
        let req = sm::UpdateSecretVersionStageRequest {
            secret_id: Some(secret_id.to_owned()),
            version_stage: Some(AWSCURRENT.to_owned()),
            move_to_version_id: Some(token.to_owned()),
            remove_from_version_id: current,
        };
        self.inner
            .update_secret_version_stage(&self.ctx(), req)
            .await?;
        Ok(())
    }

    /// GetRandomPassword of `length` characters, none of them in `exclude`.
    pub fn random_password(
        &self,
        length: usize,
        exclude: &str,
    ) -> Result<Zeroizing<String>, AwsError> {
        password::generate(&password::Options {
            length,
            exclude_characters: exclude.to_owned(),
            ..password::Options::default()
        })
    }
}
