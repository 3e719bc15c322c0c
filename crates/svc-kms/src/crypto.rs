//! The cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext)
//! and GenerateRandom. None of them writes to the store; keys and materials come from the cache.

use std::collections::BTreeMap;

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::{Zeroizing, random_bytes};
use citadel_model::kms;
use citadel_model::{Blob, SensitiveBlob};

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::ciphertext::{self, Header};
use crate::names::PackedKeyId;
use crate::record;
use crate::repo::Resolved;
use crate::rsa::{self, RsaOperation};
use crate::specs::{self, SYMMETRIC_DEFAULT as ENCRYPTION_ALGORITHM};
use crate::state::{self, KeyOp};
use crate::{Kms, errors};

/// Symmetric keys know one algorithm; anything else is refused as AWS refuses it.
fn check_algorithm(algorithm: Option<&str>) -> Result<(), AwsError> {
    match algorithm {
        None | Some(ENCRYPTION_ALGORITHM) => Ok(()),
        Some(other) => Err(AwsError::new(
            400,
            "InvalidKeyUsageException",
            format!(
                "Algorithm {other} is incompatible with key spec {}.",
                specs::SYMMETRIC_DEFAULT
            ),
        )),
    }
}

/// `Ok` for a symmetric encryption key; else AWS's `InvalidKeyUsageException`.
pub(crate) fn check_usage(key: &LoadedKey, operation: &str) -> Result<(), AwsError> {
    let rec = &key.record;
    if rec.key_usage == specs::ENCRYPT_DECRYPT && rec.key_spec == specs::SYMMETRIC_DEFAULT {
        Ok(())
    } else if rec.key_usage == specs::ENCRYPT_DECRYPT {
        // An RSA encryption key where only a symmetric key will do (data keys).
        // Unconfirmed AWS wording.
        Err(AwsError::new(
            400,
            "InvalidKeyUsageException",
            format!(
                "{} key KeySpec is {} which is not valid for {operation}.",
                rec.arn(),
                rec.key_spec
            ),
        ))
    } else {
        Err(usage_error(rec, operation))
    }
}

/// `<arn> key usage is <usage> which is not valid for <operation>.`
pub(crate) fn usage_error(rec: &record::KeyRecord, operation: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidKeyUsageException",
        format!(
            "{} key usage is {} which is not valid for {operation}.",
            rec.arn(),
            rec.key_usage
        ),
    )
}

pub(crate) fn unsupported_recipient() -> AwsError {
    errors::unsupported(
        "Citadel does not support the Recipient parameter (Nitro Enclaves attestation) yet.",
    )
}

/// The data key length GenerateDataKey* asks for: exactly one of KeySpec and NumberOfBytes.
fn data_key_len(key_spec: Option<&str>, number_of_bytes: Option<i32>) -> Result<usize, AwsError> {
    let len = match (key_spec, number_of_bytes) {
        (Some("AES_256"), None) => 32,
        (Some("AES_128"), None) => 16,
        (None, Some(n)) => usize::try_from(n).unwrap_or(0),
        // Other KeySpec values were refused by the model's enum check.
        _ => {
            return Err(AwsError::validation(
                "Please specify either number of bytes or key spec.",
            ));
        }
    };
    if (1..=1024).contains(&len) {
        Ok(len)
    } else {
        Err(AwsError::validation(
            "Please specify either number of bytes or key spec.",
        ))
    }
}

/// What [`Kms::open_blob`] needs to decrypt a blob.
pub(crate) struct Opening<'a> {
    pub(crate) blob: &'a [u8],
    pub(crate) key_id: Option<&'a str>,
    pub(crate) context: Option<&'a BTreeMap<String, String>>,
    pub(crate) action: &'static str,
    pub(crate) op: KeyOp,
    pub(crate) conditions: RequestConditions,
}

/// The members GenerateDataKey and GenerateDataKeyWithoutPlaintext share.
pub(crate) struct DataKeyRequest<'a> {
    pub(crate) key_id: Option<&'a str>,
    pub(crate) context: Option<&'a BTreeMap<String, String>>,
    pub(crate) key_spec: Option<&'a str>,
    pub(crate) number_of_bytes: Option<i32>,
    pub(crate) grant_tokens: Option<&'a Vec<String>>,
    pub(crate) dry_run: bool,
    pub(crate) action: &'static str,
    pub(crate) op: KeyOp,
}

impl Kms {
    /// Encrypts under the key's current material and returns the blob.
    pub(crate) fn seal_with(
        key: &LoadedKey,
        context: Option<&BTreeMap<String, String>>,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, String), AwsError> {
        let material = key.current_material().ok_or_else(|| {
            tracing::error!(key = %key.record.arn(), "KMS key has no current material");
            errors::internal()
        })?;
        let key_id = PackedKeyId::parse(&key.record.id).ok_or_else(errors::internal)?;
        let blob = ciphertext::seal(&key_id, material, context, plaintext)
            .map_err(|e| errors::crypto(&e))?;
        Ok((blob, material.id_hex()))
    }

    /// Finds the key a ciphertext header names: the one `key_id` designates when given (and then
    /// it must be that key), otherwise the key with the header's id in the caller's account and
    /// region. A header naming no existing key is indistinguishable from a damaged blob.
    async fn key_for_ciphertext(
        &self,
        ctx: &RequestContext,
        header: &Header<'_>,
        key_id: Option<&str>,
    ) -> Result<Resolved, AwsError> {
        let id = header.key_id_string();
        match key_id {
            Some(k) => {
                let r = self.resolve(ctx, k).await?;
                if r.key.record.id != id {
                    return Err(errors::incorrect_key());
                }
                Ok(r)
            }
            None => {
                // The caller's own key, already in memory (the hot path), or else the key's
                // owner from the index: another account, whose key policy decides next. Keys
                // made before the owner index existed are the caller's.
                let own = record::key_path(&ctx.principal.account_id, &ctx.region, &id);
                if let Some(key) = self.cache.key(&own) {
                    return Ok(Resolved { key, alias: None });
                }
                let account = self
                    .owner_of(&ctx.region, &id)
                    .await?
                    .unwrap_or_else(|| ctx.principal.account_id.clone());
                let key = self
                    .key_at(&record::key_path(&account, &ctx.region, &id))
                    .await?
                    .ok_or_else(errors::invalid_ciphertext)?;
                Ok(Resolved { key, alias: None })
            }
        }
    }

    /// The key a Decrypt or ReEncrypt names for its ciphertext when that key is asymmetric and
    /// the algorithm is not the symmetric one (then the ciphertext is raw RSA output, with no
    /// header to parse); `None` when the request goes the symmetric way.
    async fn asymmetric_source(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        algorithm: &str,
    ) -> Result<Option<Resolved>, AwsError> {
        let Some(key_id) = key_id else {
            return Ok(None);
        };
        if algorithm == ENCRYPTION_ALGORITHM {
            return Ok(None);
        }
        let r = self.resolve(ctx, key_id).await?;
        Ok((!r.key.record.is_symmetric()).then_some(r))
    }

    /// Decrypts a blob with the key it names, after authorization and the state check.
    pub(crate) async fn open_blob(
        &self,
        ctx: &RequestContext,
        o: Opening<'_>,
    ) -> Result<(Resolved, Zeroizing<Vec<u8>>, String), AwsError> {
        let Opening {
            blob,
            key_id,
            context,
            action,
            op,
            conditions,
        } = o;
        let header = ciphertext::parse(blob).ok_or_else(errors::invalid_ciphertext)?;
        let r = self.key_for_ciphertext(ctx, &header, key_id).await?;
        let rec = &r.key.record;
        self.authorize(
            ctx,
            action,
            Target::Key(&r.key),
            conditions
                .encryption_context(context)
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        state::check(rec.state, op, &rec.arn())?;
        check_usage(&r.key, "Decrypt")?;
        let material_id = hex::encode(header.material_id);
        let material = r
            .key
            .materials
            .get(&material_id)
            .ok_or_else(errors::invalid_ciphertext)?;
        let plaintext = ciphertext::open(&header, material, context)
            .map_err(|_| errors::invalid_ciphertext())?;
        Ok((r, plaintext, material_id))
    }

    pub(crate) async fn encrypt(
        &self,
        ctx: &RequestContext,
        req: kms::EncryptRequest,
    ) -> Result<kms::EncryptResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        let algorithm = req
            .encryption_algorithm
            .as_deref()
            .unwrap_or(ENCRYPTION_ALGORITHM);
        self.authorize(
            ctx,
            "kms:Encrypt",
            Target::Key(&r.key),
            RequestConditions::new()
                .encryption_context(req.encryption_context.as_ref())
                .set("kms:EncryptionAlgorithm", algorithm)
                .request_alias(r.alias.as_deref())
                .grant_tokens(req.grant_tokens.as_ref()),
        )
        .await?;
        state::check(rec.state, KeyOp::Encrypt, &rec.arn())?;
        let plaintext = req.plaintext.unwrap_or_default();
        if rsa::is_rsa_encryption_key(rec) {
            let op = RsaOperation::prepare(&r.key, algorithm, req.encryption_context.as_ref())?;
            op.check_length(rec, plaintext.as_bytes().len())?;
            if req.dry_run == Some(true) {
                return Err(errors::dry_run());
            }
            return Ok(kms::EncryptResponse {
                ciphertext_blob: Some(Blob::new(op.encrypt(plaintext.as_bytes())?)),
                key_id: Some(rec.arn()),
                encryption_algorithm: Some(op.algorithm().to_owned()),
            });
        }
        check_usage(&r.key, "Encrypt")?;
        check_algorithm(req.encryption_algorithm.as_deref())?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let (blob, _) = Self::seal_with(
            &r.key,
            req.encryption_context.as_ref(),
            plaintext.as_bytes(),
        )?;
        Ok(kms::EncryptResponse {
            ciphertext_blob: Some(Blob::new(blob)),
            key_id: Some(rec.arn()),
            encryption_algorithm: Some(ENCRYPTION_ALGORITHM.to_owned()),
        })
    }

    pub(crate) async fn decrypt(
        &self,
        ctx: &RequestContext,
        req: kms::DecryptRequest,
    ) -> Result<kms::DecryptResponse, AwsError> {
        if req.recipient.is_some() {
            return Err(unsupported_recipient());
        }
        let blob = req
            .ciphertext_blob
            .as_ref()
            .ok_or_else(|| errors::missing_member("ciphertextBlob"))?;
        let algorithm = req
            .encryption_algorithm
            .as_deref()
            .unwrap_or(ENCRYPTION_ALGORITHM);
        // An RSA ciphertext names no key: the caller names the key and an RSA algorithm. Any
        // other request goes the symmetric way, which parses the blob first.
        if let Some(r) = self
            .asymmetric_source(ctx, req.key_id.as_deref(), algorithm)
            .await?
        {
            let (plaintext, algorithm, material_id) = self
                .open_rsa(
                    ctx,
                    &r,
                    Opening {
                        blob: blob.as_bytes(),
                        key_id: req.key_id.as_deref(),
                        context: req.encryption_context.as_ref(),
                        action: "kms:Decrypt",
                        op: KeyOp::Decrypt,
                        conditions: RequestConditions::new()
                            .set("kms:EncryptionAlgorithm", algorithm)
                            .grant_tokens(req.grant_tokens.as_ref()),
                    },
                    algorithm,
                )
                .await?;
            if req.dry_run == Some(true) {
                return Err(errors::dry_run());
            }
            return Ok(kms::DecryptResponse {
                key_id: Some(r.key.record.arn()),
                plaintext: Some(SensitiveBlob::from(plaintext)),
                encryption_algorithm: Some(algorithm.to_owned()),
                ciphertext_for_recipient: None,
                key_material_id: Some(material_id),
            });
        }
        let (r, plaintext, material_id) = self
            .open_blob(
                ctx,
                Opening {
                    blob: blob.as_bytes(),
                    key_id: req.key_id.as_deref(),
                    context: req.encryption_context.as_ref(),
                    action: "kms:Decrypt",
                    op: KeyOp::Decrypt,
                    conditions: RequestConditions::new()
                        .set("kms:EncryptionAlgorithm", algorithm)
                        .grant_tokens(req.grant_tokens.as_ref()),
                },
            )
            .await?;
        check_algorithm(req.encryption_algorithm.as_deref())?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        Ok(kms::DecryptResponse {
            key_id: Some(r.key.record.arn()),
            plaintext: Some(SensitiveBlob::from(plaintext)),
            encryption_algorithm: Some(ENCRYPTION_ALGORITHM.to_owned()),
            ciphertext_for_recipient: None,
            key_material_id: Some(material_id),
        })
    }

    pub(crate) async fn re_encrypt(
        &self,
        ctx: &RequestContext,
        req: kms::ReEncryptRequest,
    ) -> Result<kms::ReEncryptResponse, AwsError> {
        let blob = req
            .ciphertext_blob
            .as_ref()
            .ok_or_else(|| errors::missing_member("ciphertextBlob"))?;
        let dest = self
            .resolve(ctx, req.destination_key_id.as_deref().unwrap_or_default())
            .await?;
        let src_algorithm = req
            .source_encryption_algorithm
            .as_deref()
            .unwrap_or(ENCRYPTION_ALGORITHM);
        let dst_algorithm = req
            .destination_encryption_algorithm
            .as_deref()
            .unwrap_or(ENCRYPTION_ALGORITHM);
        let source_opening = |same_key: bool| Opening {
            blob: blob.as_bytes(),
            key_id: req.source_key_id.as_deref(),
            context: req.source_encryption_context.as_ref(),
            action: "kms:ReEncryptFrom",
            op: KeyOp::ReEncryptFrom,
            conditions: RequestConditions::new()
                .set("kms:EncryptionAlgorithm", src_algorithm)
                .set("kms:ReEncryptOnSameKey", same_key.to_string())
                .grant_tokens(req.grant_tokens.as_ref()),
        };
        // The source is an RSA key named with its algorithm (raw RSA ciphertext), or else the
        // key the symmetric blob's header names.
        let (src, plaintext, src_material, src_algorithm, same_key) = match self
            .asymmetric_source(ctx, req.source_key_id.as_deref(), src_algorithm)
            .await?
        {
            Some(src) => {
                let same_key = src.key.record.id == dest.key.record.id;
                let (plaintext, algorithm, material) = self
                    .open_rsa(ctx, &src, source_opening(same_key), src_algorithm)
                    .await?;
                (src, plaintext, material, algorithm, same_key)
            }
            None => {
                let header =
                    ciphertext::parse(blob.as_bytes()).ok_or_else(errors::invalid_ciphertext)?;
                let same_key = header.key_id_string() == dest.key.record.id;
                let (src, plaintext, material) =
                    self.open_blob(ctx, source_opening(same_key)).await?;
                check_algorithm(req.source_encryption_algorithm.as_deref())?;
                (src, plaintext, material, ENCRYPTION_ALGORITHM, same_key)
            }
        };
        let drec = &dest.key.record;
        self.authorize(
            ctx,
            "kms:ReEncryptTo",
            Target::Key(&dest.key),
            RequestConditions::new()
                .encryption_context(req.destination_encryption_context.as_ref())
                .set("kms:EncryptionAlgorithm", dst_algorithm)
                .set("kms:ReEncryptOnSameKey", same_key.to_string())
                .request_alias(dest.alias.as_deref())
                .grant_tokens(req.grant_tokens.as_ref()),
        )
        .await?;
        state::check(drec.state, KeyOp::ReEncryptTo, &drec.arn())?;
        let (out, dst_material, dst_algorithm) = if rsa::is_rsa_encryption_key(drec) {
            let op = RsaOperation::prepare(
                &dest.key,
                dst_algorithm,
                req.destination_encryption_context.as_ref(),
            )?;
            op.check_length(drec, plaintext.len())?;
            if req.dry_run == Some(true) {
                return Err(errors::dry_run());
            }
            (
                op.encrypt(&plaintext)?,
                op.material_id().to_owned(),
                op.algorithm(),
            )
        } else {
            check_usage(&dest.key, "ReEncrypt")?;
            check_algorithm(req.destination_encryption_algorithm.as_deref())?;
            if req.dry_run == Some(true) {
                return Err(errors::dry_run());
            }
            let (out, material) = Self::seal_with(
                &dest.key,
                req.destination_encryption_context.as_ref(),
                &plaintext,
            )?;
            (out, material, ENCRYPTION_ALGORITHM)
        };
        Ok(kms::ReEncryptResponse {
            ciphertext_blob: Some(Blob::new(out)),
            source_key_id: Some(src.key.record.arn()),
            key_id: Some(drec.arn()),
            source_encryption_algorithm: Some(src_algorithm.to_owned()),
            destination_encryption_algorithm: Some(dst_algorithm.to_owned()),
            source_key_material_id: Some(src_material),
            destination_key_material_id: Some(dst_material),
        })
    }

    /// GenerateDataKey and GenerateDataKeyWithoutPlaintext: a fresh random data key, returned
    /// encrypted under the KMS key (and in plaintext for the former).
    pub(crate) async fn data_key(
        &self,
        ctx: &RequestContext,
        d: DataKeyRequest<'_>,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>, String, String), AwsError> {
        let DataKeyRequest {
            key_id,
            context,
            key_spec,
            number_of_bytes,
            grant_tokens,
            dry_run,
            action,
            op,
        } = d;
        let len = data_key_len(key_spec, number_of_bytes)?;
        let r = self.resolve(ctx, key_id.unwrap_or_default()).await?;
        let rec = &r.key.record;
        let mut conditions = RequestConditions::new()
            .encryption_context(context)
            .set("kms:EncryptionAlgorithm", ENCRYPTION_ALGORITHM)
            .request_alias(r.alias.as_deref())
            .grant_tokens(grant_tokens);
        if let Some(spec) = key_spec {
            conditions = conditions.set("kms:DataKeySpec", spec);
        }
        self.authorize(ctx, action, Target::Key(&r.key), conditions)
            .await?;
        state::check(rec.state, op, &rec.arn())?;
        check_usage(
            &r.key,
            match op {
                KeyOp::GenerateDataKey => "GenerateDataKey",
                _ => "GenerateDataKeyWithoutPlaintext",
            },
        )?;
        if dry_run {
            return Err(errors::dry_run());
        }
        let data_key = random_bytes(len).map_err(|e| errors::crypto(&e))?;
        let (blob, material_id) = Self::seal_with(&r.key, context, &data_key)?;
        Ok((data_key, blob, rec.arn(), material_id))
    }

    pub(crate) async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateDataKeyRequest,
    ) -> Result<kms::GenerateDataKeyResponse, AwsError> {
        if req.recipient.is_some() {
            return Err(unsupported_recipient());
        }
        let (plaintext, blob, arn, material_id) = self
            .data_key(
                ctx,
                DataKeyRequest {
                    key_id: req.key_id.as_deref(),
                    context: req.encryption_context.as_ref(),
                    key_spec: req.key_spec.as_deref(),
                    number_of_bytes: req.number_of_bytes,
                    grant_tokens: req.grant_tokens.as_ref(),
                    dry_run: req.dry_run == Some(true),
                    action: "kms:GenerateDataKey",
                    op: KeyOp::GenerateDataKey,
                },
            )
            .await?;
        Ok(kms::GenerateDataKeyResponse {
            ciphertext_blob: Some(Blob::new(blob)),
            plaintext: Some(SensitiveBlob::from(plaintext)),
            key_id: Some(arn),
            ciphertext_for_recipient: None,
            key_material_id: Some(material_id),
        })
    }

    pub(crate) async fn generate_data_key_without_plaintext(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateDataKeyWithoutPlaintextRequest,
    ) -> Result<kms::GenerateDataKeyWithoutPlaintextResponse, AwsError> {
        let (_plaintext, blob, arn, material_id) = self
            .data_key(
                ctx,
                DataKeyRequest {
                    key_id: req.key_id.as_deref(),
                    context: req.encryption_context.as_ref(),
                    key_spec: req.key_spec.as_deref(),
                    number_of_bytes: req.number_of_bytes,
                    grant_tokens: req.grant_tokens.as_ref(),
                    dry_run: req.dry_run == Some(true),
                    action: "kms:GenerateDataKeyWithoutPlaintext",
                    op: KeyOp::GenerateDataKeyWithoutPlaintext,
                },
            )
            .await?;
        Ok(kms::GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: Some(Blob::new(blob)),
            key_id: Some(arn),
            key_material_id: Some(material_id),
        })
    }

    pub(crate) async fn generate_random(
        &self,
        ctx: &RequestContext,
        req: kms::GenerateRandomRequest,
    ) -> Result<kms::GenerateRandomResponse, AwsError> {
        self.authorize(
            ctx,
            "kms:GenerateRandom",
            Target::Account,
            RequestConditions::new(),
        )
        .await?;
        if req.recipient.is_some() {
            return Err(unsupported_recipient());
        }
        if let Some(id) = &req.custom_key_store_id {
            return Err(AwsError::new(
                400,
                "CustomKeyStoreNotFoundException",
                format!("Custom key store {id} does not exist."),
            ));
        }
        let n = req.number_of_bytes.ok_or_else(|| {
            AwsError::validation("Please specify either number of bytes or key spec.")
        })?;
        let n = usize::try_from(n).unwrap_or(0);
        let bytes = random_bytes(n).map_err(|e| errors::crypto(&e))?;
        Ok(kms::GenerateRandomResponse {
            plaintext: Some(SensitiveBlob::from(bytes)),
            ciphertext_for_recipient: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_needs_exactly_one_of_spec_and_length() {
        assert_eq!(data_key_len(Some("AES_256"), None).unwrap(), 32);
        assert_eq!(data_key_len(Some("AES_128"), None).unwrap(), 16);
        assert_eq!(data_key_len(None, Some(1)).unwrap(), 1);
        assert_eq!(data_key_len(None, Some(1024)).unwrap(), 1024);
        for (spec, n) in [(None, None), (Some("AES_256"), Some(32))] {
            let e = data_key_len(spec, n).unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert_eq!(
                e.message.unwrap(),
                "Please specify either number of bytes or key spec."
            );
        }
    }

    #[test]
    fn only_the_symmetric_algorithm_is_accepted() {
        assert!(check_algorithm(None).is_ok());
        assert!(check_algorithm(Some("SYMMETRIC_DEFAULT")).is_ok());
        let e = check_algorithm(Some("RSAES_OAEP_SHA_256")).unwrap_err();
        assert_eq!(e.code, "InvalidKeyUsageException");
    }
}
