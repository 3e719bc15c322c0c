//! [`KeyService`]: KMS for Citadel's other services, called in-process on a caller's behalf.
//!
//! Each method is the corresponding KMS operation with the same validation, authorization,
//! key-state checks and cryptography as a direct call — only the context differs: it names the
//! forwarding service (`ctx.called_via`), which becomes `kms:ViaService`. Naming the calling
//! service's own `alias/aws/<service>` creates that AWS-managed key first if needed.

use std::collections::BTreeMap;

use citadel_api::{AwsError, DataKey, Decrypted, Encrypted, KeyService, RequestContext};
use citadel_model::{SensitiveBlob, kms};

use crate::crypto::{DataKeyRequest, Opening};
use crate::specs::SYMMETRIC_DEFAULT as ENCRYPTION_ALGORITHM;
use crate::state::KeyOp;
use crate::{Kms, authz::RequestConditions, managed};

impl Kms {
    /// Creates the forwarding service's AWS-managed key when `key_id` names it.
    async fn prepare(&self, ctx: &RequestContext, key_id: &str) -> Result<(), AwsError> {
        match (ctx.called_via, managed::service_of_alias(key_id)) {
            (Some(via), Some(service)) if via == service => {
                self.ensure_managed_key(ctx, service).await
            }
            _ => Ok(()),
        }
    }
}

fn context_arg(context: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!context.is_empty()).then(|| context.clone())
}

#[async_trait::async_trait]
impl KeyService for Kms {
    async fn describe_key(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError> {
        self.prepare(ctx, key_id).await?;
        let req = kms::DescribeKeyRequest {
            key_id: Some(key_id.to_owned()),
            grant_tokens: None,
        };
        req.validate()?;
        let out = self
            .metered(ctx, "DescribeKey", Kms::describe_key(self, ctx, req))
            .await?;
        out.key_metadata
            .and_then(|m| m.arn)
            .ok_or_else(crate::errors::internal)
    }

    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Encrypted, AwsError> {
        self.prepare(ctx, key_id).await?;
        let req = kms::EncryptRequest {
            key_id: Some(key_id.to_owned()),
            plaintext: Some(SensitiveBlob::from(plaintext.to_vec())),
            encryption_context: context_arg(context),
            grant_tokens: None,
            encryption_algorithm: None,
            dry_run: None,
        };
        req.validate()?;
        let out = self
            .metered(ctx, "Encrypt", Kms::encrypt(self, ctx, req))
            .await?;
        match (out.ciphertext_blob, out.key_id) {
            (Some(blob), Some(key_arn)) => Ok(Encrypted {
                ciphertext: blob.into_vec(),
                key_arn,
            }),
            _ => Err(crate::errors::internal()),
        }
    }

    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Decrypted, AwsError> {
        let context = context_arg(context);
        let opening = Opening {
            blob: ciphertext,
            key_id: None,
            context: context.as_ref(),
            action: "kms:Decrypt",
            op: KeyOp::Decrypt,
            conditions: RequestConditions::new()
                .set("kms:EncryptionAlgorithm", ENCRYPTION_ALGORITHM),
        };
        let (resolved, plaintext, _) = self
            .metered(ctx, "Decrypt", self.open_blob(ctx, opening))
            .await?;
        Ok(Decrypted {
            plaintext,
            key_arn: resolved.key.record.arn(),
        })
    }

    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, AwsError> {
        self.prepare(ctx, key_id).await?;
        let context = context_arg(context);
        let request = DataKeyRequest {
            key_id: Some(key_id),
            context: context.as_ref(),
            key_spec: Some("AES_256"),
            number_of_bytes: None,
            grant_tokens: None,
            dry_run: false,
            action: "kms:GenerateDataKey",
            op: KeyOp::GenerateDataKey,
        };
        let (plaintext, ciphertext, key_arn, _) = self
            .metered(ctx, "GenerateDataKey", self.data_key(ctx, request))
            .await?;
        Ok(DataKey {
            plaintext,
            ciphertext,
            key_arn,
        })
    }
}
