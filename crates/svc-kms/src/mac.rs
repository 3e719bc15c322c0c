//! GenerateMac and VerifyMac with HMAC keys (`HMAC_224` … `HMAC_512`, usage
//! `GENERATE_VERIFY_MAC`). Like the other cryptographic operations they read the key from the
//! cache and write nothing.

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::mac::{self, MacAlgorithm};
use citadel_model::Blob;
use citadel_model::kms;

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::repo::Resolved;
use crate::specs;
use crate::state::{self, KeyOp};
use crate::{Kms, errors};

/// `KMSInvalidMacException` with an empty message, as AWS answers a MAC that does not verify.
fn invalid_mac() -> AwsError {
    AwsError {
        code: "KMSInvalidMacException".into(),
        message: Some(String::new()),
        status: 400,
    }
}

/// Everything GenerateMac and VerifyMac check before computing: the key exists, the caller may
/// use it, its state allows the operation, it is an HMAC key, and the algorithm is its own.
struct MacRequest<'a> {
    key_id: Option<&'a str>,
    algorithm: Option<&'a str>,
    grant_tokens: Option<&'a Vec<String>>,
    action: &'static str,
    op: KeyOp,
    operation: &'static str,
}

impl Kms {
    async fn prepare_mac(
        &self,
        ctx: &RequestContext,
        m: MacRequest<'_>,
    ) -> Result<(Resolved, MacAlgorithm), AwsError> {
        let r = self.resolve(ctx, m.key_id.unwrap_or_default()).await?;
        // The model requires MacAlgorithm; validation has refused a request without it.
        let algorithm = m.algorithm.unwrap_or_default();
        self.authorize(
            ctx,
            m.action,
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:MacAlgorithm", algorithm)
                .request_alias(r.alias.as_deref())
                .grant_tokens(m.grant_tokens),
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, m.op, &rec.arn())?;
        let spec = check_usage(&r.key, m.operation)?;
        specs::check_algorithm(spec, specs::GENERATE_VERIFY_MAC, algorithm)?;
        let algorithm = MacAlgorithm::from_name(algorithm).ok_or_else(|| {
            tracing::error!(
                algorithm,
                "the key-spec table names an unknown MAC algorithm"
            );
            errors::internal()
        })?;
        Ok((r, algorithm))
    }

    pub(crate) async fn generate_mac(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateMacRequest,
    ) -> Result<kms::GenerateMacResponse, AwsError> {
        let (r, algorithm) = self
            .prepare_mac(
                ctx,
                MacRequest {
                    key_id: req.key_id.as_deref(),
                    algorithm: req.mac_algorithm.as_deref(),
                    grant_tokens: req.grant_tokens.as_ref(),
                    action: "kms:GenerateMac",
                    op: KeyOp::GenerateMac,
                    operation: "GenerateMac",
                },
            )
            .await?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let key = mac_key(&r.key)?;
        let message = req
            .message
            .as_ref()
            .map(|m| m.as_bytes())
            .unwrap_or_default();
        Ok(kms::GenerateMacResponse {
            mac: Some(Blob::new(mac::generate(algorithm, key, message))),
            mac_algorithm: Some(algorithm.name().to_owned()),
            key_id: Some(r.key.record.arn()),
        })
    }

    pub(crate) async fn verify_mac(
        &self,
        ctx: &RequestContext,
        req: kms::VerifyMacRequest,
    ) -> Result<kms::VerifyMacResponse, AwsError> {
        let (r, algorithm) = self
            .prepare_mac(
                ctx,
                MacRequest {
                    key_id: req.key_id.as_deref(),
                    algorithm: req.mac_algorithm.as_deref(),
                    grant_tokens: req.grant_tokens.as_ref(),
                    action: "kms:VerifyMac",
                    op: KeyOp::VerifyMac,
                    operation: "VerifyMac",
                },
            )
            .await?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let key = mac_key(&r.key)?;
        let message = req
            .message
            .as_ref()
            .map(|m| m.as_bytes())
            .unwrap_or_default();
        let tag = req.mac.as_ref().map(|m| m.as_bytes()).unwrap_or_default();
        // AWS never answers MacValid=false: a MAC that does not verify is an exception.
        if !mac::verify(algorithm, key, message, tag) {
            return Err(invalid_mac());
        }
        Ok(kms::VerifyMacResponse {
            key_id: Some(r.key.record.arn()),
            mac_valid: Some(true),
            mac_algorithm: Some(algorithm.name().to_owned()),
        })
    }
}

/// The key's row of the spec table when it is an HMAC key, else AWS's
/// `<arn> key usage is <usage> which is not valid for <operation>.`
fn check_usage(key: &LoadedKey, operation: &str) -> Result<&'static specs::KeySpec, AwsError> {
    let rec = &key.record;
    match rec.spec() {
        Some(spec) if spec.is_hmac() && rec.key_usage == specs::GENERATE_VERIFY_MAC => Ok(spec),
        _ => Err(AwsError::new(
            400,
            "InvalidKeyUsageException",
            format!(
                "{} key usage is {} which is not valid for {operation}.",
                rec.arn(),
                rec.key_usage
            ),
        )),
    }
}

/// The HMAC key: the key's current material (HMAC keys do not rotate, so it is the only one).
fn mac_key(key: &LoadedKey) -> Result<&[u8], AwsError> {
    let material = key.current_material().ok_or_else(|| {
        tracing::error!(key = %key.record.arn(), "KMS HMAC key has no current material");
        errors::internal()
    })?;
    if material.format() != crate::material::MaterialFormat::Hmac {
        tracing::error!(key = %key.record.arn(), "KMS HMAC key holds material of another format");
        return Err(errors::internal());
    }
    Ok(material.secret())
}
