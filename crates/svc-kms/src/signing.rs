//! The asymmetric-key operations: Sign, Verify, GetPublicKey and DeriveSharedSecret. Like the
//! other cryptographic operations they read the key from the cache and write nothing; the
//! private key (PKCS#8 in the key's material) is parsed per request by `citadel_crypto`.

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::asymmetric::{self, Input, KeyKind, PrivateKey, SigningAlgorithm};
use citadel_model::kms;
use citadel_model::{Blob, SensitiveBlob};

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::material::{Material, MaterialFormat};
use crate::repo::Resolved;
use crate::specs::{self, KeySpec};
use crate::state::{self, KeyOp};
use crate::{Kms, errors};

const RAW: &str = "RAW";
const DIGEST: &str = "DIGEST";
const EXTERNAL_MU: &str = "EXTERNAL_MU";
const ECDH: &str = "ECDH";

/// `KMSInvalidSignatureException` with an empty message, as AWS answers a signature that does
/// not verify.
fn invalid_signature() -> AwsError {
    AwsError {
        code: "KMSInvalidSignatureException".into(),
        message: Some(String::new()),
        status: 400,
    }
}

/// AWS's `<arn> key usage is <usage> which is not valid for <operation>.` unless the key is an
/// asymmetric key of `usage`; the key's spec row and asymmetric kind otherwise.
fn check_usage(
    key: &LoadedKey,
    usage: &str,
    operation: &str,
) -> Result<(&'static KeySpec, KeyKind), AwsError> {
    let rec = &key.record;
    match rec.spec() {
        Some(spec) if spec.is_asymmetric() && rec.key_usage == usage => {
            Ok((spec, specs::asymmetric_kind(spec)?))
        }
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

/// The key's current material, which must be a private key. Asymmetric keys do not rotate, so
/// it is the only one.
fn private_material(key: &LoadedKey) -> Result<&Material, AwsError> {
    let material = key.current_material().ok_or_else(|| {
        tracing::error!(key = %key.record.arn(), "KMS asymmetric key has no current material");
        errors::internal()
    })?;
    if material.format() != MaterialFormat::PrivateKey {
        tracing::error!(key = %key.record.arn(), "KMS asymmetric key holds material of another format");
        return Err(errors::internal());
    }
    Ok(material)
}

/// The key's private key, parsed once per cached material.
fn private_key(key: &LoadedKey, kind: KeyKind) -> Result<&PrivateKey, AwsError> {
    private_material(key)?
        .private_key(kind)
        .map_err(|e| errors::crypto(&e))
}

/// What Sign and Verify are given to sign: the message, or a digest of exactly the length the
/// algorithm's hash produces. Ed25519 and ML-DSA sign whole messages only; EXTERNAL_MU (an
/// ML-DSA µ computed by the caller) is not available.
fn signing_input<'a>(
    algorithm: SigningAlgorithm,
    message_type: &str,
    message: &'a [u8],
) -> Result<Input<'a>, AwsError> {
    match message_type {
        DIGEST => match algorithm.digest_len() {
            Some(len) if len == message.len() => Ok(Input::Digest(message)),
            Some(_) => Err(AwsError::validation(format!(
                "Digest is invalid length for algorithm {}.",
                algorithm.name()
            ))),
            // Unconfirmed AWS wording.
            None => Err(AwsError::validation(format!(
                "Message type DIGEST is incompatible with algorithm {}.",
                algorithm.name()
            ))),
        },
        EXTERNAL_MU if algorithm == SigningAlgorithm::MlDsaShake256 => Err(errors::unsupported(
            "Citadel does not support MessageType EXTERNAL_MU: its cryptographic library (aws-lc-rs) cannot sign or verify an externally computed ML-DSA mu.",
        )),
        // Unconfirmed AWS wording.
        EXTERNAL_MU => Err(AwsError::validation(format!(
            "Message type EXTERNAL_MU is incompatible with algorithm {}.",
            algorithm.name()
        ))),
        // RAW (the default); other values were refused by the model's enum check.
        _ => Ok(Input::Message(message)),
    }
}

/// The members Sign and Verify share.
struct SignatureRequest<'a> {
    key_id: Option<&'a str>,
    algorithm: Option<&'a str>,
    message_type: Option<&'a str>,
    grant_tokens: Option<&'a Vec<String>>,
    action: &'static str,
    op: KeyOp,
    operation: &'static str,
}

impl Kms {
    /// Everything Sign and Verify check before the cryptography: the key exists, the caller may
    /// use it with this algorithm and message type, its state allows the operation, it is a
    /// signing key, and the algorithm is one of its spec's.
    async fn prepare_signature(
        &self,
        ctx: &RequestContext,
        s: SignatureRequest<'_>,
    ) -> Result<(Resolved, KeyKind, SigningAlgorithm), AwsError> {
        let r = self.resolve(ctx, s.key_id.unwrap_or_default()).await?;
        // The model requires SigningAlgorithm; validation has refused a request without it.
        let algorithm = s.algorithm.unwrap_or_default();
        self.authorize(
            ctx,
            s.action,
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:SigningAlgorithm", algorithm)
                .set("kms:MessageType", s.message_type.unwrap_or(RAW))
                .request_alias(r.alias.as_deref())
                .grant_tokens(s.grant_tokens),
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, s.op, &rec.arn())?;
        let (spec, kind) = check_usage(&r.key, specs::SIGN_VERIFY, s.operation)?;
        specs::check_algorithm(spec, specs::SIGN_VERIFY, algorithm)?;
        let algorithm = SigningAlgorithm::from_name(algorithm).ok_or_else(|| {
            // The spec table offers an algorithm the crypto facade lacks: a build mistake.
            tracing::error!(
                algorithm,
                "the key-spec table names an unknown signing algorithm"
            );
            errors::internal()
        })?;
        Ok((r, kind, algorithm))
    }

    pub(crate) async fn sign(
        &self,
        ctx: &RequestContext,
        req: kms::SignRequest,
    ) -> Result<kms::SignResponse, AwsError> {
        let message_type = req.message_type.as_deref().unwrap_or(RAW);
        let (r, kind, algorithm) = self
            .prepare_signature(
                ctx,
                SignatureRequest {
                    key_id: req.key_id.as_deref(),
                    algorithm: req.signing_algorithm.as_deref(),
                    message_type: Some(message_type),
                    grant_tokens: req.grant_tokens.as_ref(),
                    action: "kms:Sign",
                    op: KeyOp::Sign,
                    operation: "Sign",
                },
            )
            .await?;
        let message = req
            .message
            .as_ref()
            .map(|m| m.as_bytes())
            .unwrap_or_default();
        let input = signing_input(algorithm, message_type, message)?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let signature = private_key(&r.key, kind)?
            .sign(algorithm, input)
            .map_err(|e| errors::crypto(&e))?;
        Ok(kms::SignResponse {
            key_id: Some(r.key.record.arn()),
            signature: Some(Blob::new(signature)),
            signing_algorithm: Some(algorithm.name().to_owned()),
        })
    }

    pub(crate) async fn verify(
        &self,
        ctx: &RequestContext,
        req: kms::VerifyRequest,
    ) -> Result<kms::VerifyResponse, AwsError> {
        let message_type = req.message_type.as_deref().unwrap_or(RAW);
        let (r, kind, algorithm) = self
            .prepare_signature(
                ctx,
                SignatureRequest {
                    key_id: req.key_id.as_deref(),
                    algorithm: req.signing_algorithm.as_deref(),
                    message_type: Some(message_type),
                    grant_tokens: req.grant_tokens.as_ref(),
                    action: "kms:Verify",
                    op: KeyOp::Verify,
                    operation: "Verify",
                },
            )
            .await?;
        let message = req
            .message
            .as_ref()
            .map(|m| m.as_bytes())
            .unwrap_or_default();
        let input = signing_input(algorithm, message_type, message)?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let public = private_key(&r.key, kind)?.public_key_der();
        let signature = req
            .signature
            .as_ref()
            .map(|s| s.as_bytes())
            .unwrap_or_default();
        // AWS never answers SignatureValid=false: a signature that does not verify is an
        // exception.
        if !asymmetric::verify(kind, algorithm, public, input, signature) {
            return Err(invalid_signature());
        }
        Ok(kms::VerifyResponse {
            key_id: Some(r.key.record.arn()),
            signature_valid: Some(true),
            signing_algorithm: Some(algorithm.name().to_owned()),
        })
    }

    pub(crate) async fn get_public_key(
        &self,
        ctx: &RequestContext,
        req: kms::GetPublicKeyRequest,
    ) -> Result<kms::GetPublicKeyResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:GetPublicKey",
            Target::Key(&r.key),
            RequestConditions::new()
                .request_alias(r.alias.as_deref())
                .grant_tokens(req.grant_tokens.as_ref()),
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, KeyOp::GetPublicKey, &rec.arn())?;
        let spec = rec
            .spec()
            .filter(|s| s.is_asymmetric())
            .ok_or_else(|| {
                // Unconfirmed AWS wording.
                errors::unsupported(format!(
                    "{} key spec is {} which is not valid for GetPublicKey: only asymmetric keys have a public key.",
                    rec.arn(),
                    rec.key_spec
                ))
            })?;
        let kind = specs::asymmetric_kind(spec)?;
        let public = private_key(&r.key, kind)?.public_key_der();
        let algorithms = |usage: &str| {
            (rec.key_usage == usage).then(|| {
                spec.algorithms(usage)
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect::<Vec<_>>()
            })
        };
        // CustomerMasterKeySpec is the deprecated mirror of KeySpec, without the specs added
        // after its deprecation.
        let customer_master_key_spec = (!rec.key_spec.starts_with("ML_DSA_")
            && rec.key_spec != "ECC_NIST_EDWARDS25519")
            .then(|| rec.key_spec.clone());
        Ok(kms::GetPublicKeyResponse {
            key_id: Some(rec.arn()),
            public_key: Some(Blob::new(public.to_vec())),
            customer_master_key_spec,
            key_spec: Some(rec.key_spec.clone()),
            key_usage: Some(rec.key_usage.clone()),
            encryption_algorithms: algorithms(specs::ENCRYPT_DECRYPT),
            signing_algorithms: algorithms(specs::SIGN_VERIFY),
            key_agreement_algorithms: algorithms(specs::KEY_AGREEMENT),
        })
    }

    pub(crate) async fn derive_shared_secret(
        &self,
        ctx: &RequestContext,
        req: kms::DeriveSharedSecretRequest,
    ) -> Result<kms::DeriveSharedSecretResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        // The model requires KeyAgreementAlgorithm and limits it to ECDH.
        let algorithm = req.key_agreement_algorithm.as_deref().unwrap_or(ECDH);
        self.authorize(
            ctx,
            "kms:DeriveSharedSecret",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:KeyAgreementAlgorithm", algorithm)
                .request_alias(r.alias.as_deref())
                .grant_tokens(req.grant_tokens.as_ref()),
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, KeyOp::DeriveSharedSecret, &rec.arn())?;
        let (spec, kind) = check_usage(&r.key, specs::KEY_AGREEMENT, "DeriveSharedSecret")?;
        specs::check_algorithm(spec, specs::KEY_AGREEMENT, algorithm)?;
        if req.recipient.is_some() {
            return Err(errors::unsupported(
                "Citadel does not support the Recipient parameter (Nitro Enclaves attestation) yet.",
            ));
        }
        let peer = req
            .public_key
            .as_ref()
            .map(|p| p.as_bytes())
            .unwrap_or_default();
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let secret = asymmetric::ecdh(kind, private_material(&r.key)?.secret(), peer).map_err(|e| match e {
            citadel_crypto::CryptoError::InvalidPublicKey => {
                // Unconfirmed AWS wording.
                AwsError::validation(format!(
                    "PublicKey is not a valid DER-encoded X.509 public key (SubjectPublicKeyInfo) on the curve of key spec {}.",
                    rec.key_spec
                ))
            }
            other => errors::crypto(&other),
        })?;
        Ok(kms::DeriveSharedSecretResponse {
            key_id: Some(rec.arn()),
            shared_secret: Some(SensitiveBlob::from(secret)),
            ciphertext_for_recipient: None,
            key_agreement_algorithm: Some(algorithm.to_owned()),
            key_origin: Some(rec.origin.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_length_and_message_type_rules() {
        let ecdsa = SigningAlgorithm::EcdsaSha256;
        assert!(matches!(
            signing_input(ecdsa, DIGEST, &[0u8; 32]),
            Ok(Input::Digest(_))
        ));
        let e = signing_input(ecdsa, DIGEST, &[0u8; 31]).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert_eq!(
            e.message.as_deref(),
            Some("Digest is invalid length for algorithm ECDSA_SHA_256.")
        );
        assert!(signing_input(SigningAlgorithm::Ed25519Sha512, DIGEST, &[0u8; 64]).is_err());
        assert_eq!(
            signing_input(SigningAlgorithm::MlDsaShake256, EXTERNAL_MU, &[0u8; 64])
                .unwrap_err()
                .code,
            "UnsupportedOperationException"
        );
        assert_eq!(
            signing_input(ecdsa, EXTERNAL_MU, &[0u8; 64])
                .unwrap_err()
                .code,
            "ValidationException"
        );
        assert!(matches!(
            signing_input(SigningAlgorithm::Ed25519Sha512, RAW, b"m"),
            Ok(Input::Message(_))
        ));
    }
}
