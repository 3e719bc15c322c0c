//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh asymmetric key pair for
//! the caller's own use, its private key returned encrypted under a symmetric KMS key exactly as
//! Encrypt would encrypt it (so `Decrypt` of `PrivateKeyCiphertextBlob` gives the PKCS#8 DER).

use std::collections::BTreeMap;

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::Zeroizing;
use citadel_crypto::asymmetric::{self, KeyKind};
use citadel_model::kms;
use citadel_model::{Blob, SensitiveBlob};

use crate::authz::{RequestConditions, Target};
use crate::crypto::{check_usage, unsupported_recipient};
use crate::specs::SYMMETRIC_DEFAULT;
use crate::state::{self, KeyOp};
use crate::{Kms, errors};

/// The members both operations share.
struct PairRequest<'a> {
    key_id: Option<&'a str>,
    pair_spec: Option<&'a str>,
    context: Option<&'a BTreeMap<String, String>>,
    grant_tokens: Option<&'a Vec<String>>,
    dry_run: bool,
    action: &'static str,
    op: KeyOp,
    operation: &'static str,
}

/// A generated pair, its private key encrypted.
struct Pair {
    private_key: Zeroizing<Vec<u8>>,
    public_key: Vec<u8>,
    blob: Vec<u8>,
    key_arn: String,
    material_id: String,
    spec: &'static str,
}

impl Kms {
    async fn data_key_pair(
        &self,
        ctx: &RequestContext,
        p: PairRequest<'_>,
    ) -> Result<Pair, AwsError> {
        // The model requires KeyPairSpec and limits it to DataKeyPairSpec values.
        let spec_name = p.pair_spec.unwrap_or_default();
        let r = self.resolve(ctx, p.key_id.unwrap_or_default()).await?;
        let rec = &r.key.record;
        self.authorize(
            ctx,
            p.action,
            Target::Key(&r.key),
            RequestConditions::new()
                .encryption_context(p.context)
                .set("kms:EncryptionAlgorithm", SYMMETRIC_DEFAULT)
                .set("kms:DataKeyPairSpec", spec_name)
                .request_alias(r.alias.as_deref())
                .grant_tokens(p.grant_tokens),
        )
        .await?;
        state::check(rec.state, p.op, &rec.arn())?;
        check_usage(&r.key, p.operation)?;
        // SM2 is the only DataKeyPairSpec without a kind: AWS offers it in China Regions only.
        let kind = KeyKind::from_key_spec(spec_name).ok_or_else(|| {
            errors::unsupported(format!(
                "Citadel does not support KeyPairSpec {spec_name}: it is available in the AWS China Regions only."
            ))
        })?;
        if p.dry_run {
            return Err(errors::dry_run());
        }
        let private_key = asymmetric::generate(kind).map_err(|e| errors::crypto(&e))?;
        let public_key =
            asymmetric::public_key_der(kind, &private_key).map_err(|e| errors::crypto(&e))?;
        let (blob, material_id) = Self::seal_with(&r.key, p.context, &private_key)?;
        Ok(Pair {
            private_key,
            public_key,
            blob,
            key_arn: rec.arn(),
            material_id,
            spec: kind.key_spec(),
        })
    }

    pub(crate) async fn generate_data_key_pair(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateDataKeyPairRequest,
    ) -> Result<kms::GenerateDataKeyPairResponse, AwsError> {
        if req.recipient.is_some() {
            return Err(unsupported_recipient());
        }
        let pair = self
            .data_key_pair(
                ctx,
                PairRequest {
                    key_id: req.key_id.as_deref(),
                    pair_spec: req.key_pair_spec.as_deref(),
                    context: req.encryption_context.as_ref(),
                    grant_tokens: req.grant_tokens.as_ref(),
                    dry_run: req.dry_run == Some(true),
                    action: "kms:GenerateDataKeyPair",
                    op: KeyOp::GenerateDataKeyPair,
                    operation: "GenerateDataKeyPair",
                },
            )
            .await?;
        Ok(kms::GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: Some(Blob::new(pair.blob)),
            private_key_plaintext: Some(SensitiveBlob::from(pair.private_key)),
            public_key: Some(Blob::new(pair.public_key)),
            key_id: Some(pair.key_arn),
            key_pair_spec: Some(pair.spec.to_owned()),
            ciphertext_for_recipient: None,
            key_material_id: Some(pair.material_id),
        })
    }

    pub(crate) async fn generate_data_key_pair_without_plaintext(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> Result<kms::GenerateDataKeyPairWithoutPlaintextResponse, AwsError> {
        let pair = self
            .data_key_pair(
                ctx,
                PairRequest {
                    key_id: req.key_id.as_deref(),
                    pair_spec: req.key_pair_spec.as_deref(),
                    context: req.encryption_context.as_ref(),
                    grant_tokens: req.grant_tokens.as_ref(),
                    dry_run: req.dry_run == Some(true),
                    action: "kms:GenerateDataKeyPairWithoutPlaintext",
                    op: KeyOp::GenerateDataKeyPairWithoutPlaintext,
                    operation: "GenerateDataKeyPairWithoutPlaintext",
                },
            )
            .await?;
        Ok(kms::GenerateDataKeyPairWithoutPlaintextResponse {
            private_key_ciphertext_blob: Some(Blob::new(pair.blob)),
            public_key: Some(Blob::new(pair.public_key)),
            key_id: Some(pair.key_arn),
            key_pair_spec: Some(pair.spec.to_owned()),
            key_material_id: Some(pair.material_id),
        })
    }
}
