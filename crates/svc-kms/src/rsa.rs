//! Encryption with RSA keys of usage `ENCRYPT_DECRYPT`: `RSAES_OAEP_SHA_1` and
//! `RSAES_OAEP_SHA_256`. The ciphertext is the raw RSA-OAEP output (as long as the modulus), as
//! AWS returns it, so anyone holding the public key (GetPublicKey) can encrypt for the key with
//! standard tools and Decrypt accepts it. Encrypt, Decrypt and ReEncrypt (in `crypto.rs`) call
//! these helpers when the key is an RSA key.

use std::collections::BTreeMap;

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::Zeroizing;
use citadel_crypto::rsa_encryption::{OaepHash, RsaPrivateKey, max_plaintext_len};

use crate::authz::Target;
use crate::cache::LoadedKey;
use crate::crypto::Opening;
use crate::material::MaterialFormat;
use crate::record::KeyRecord;
use crate::repo::Resolved;
use crate::specs;
use crate::state;
use crate::{Kms, errors};

/// Whether `rec` is an asymmetric key for encryption (an RSA key: no other asymmetric spec
/// offers `ENCRYPT_DECRYPT` among those Citadel creates).
pub(crate) fn is_rsa_encryption_key(rec: &KeyRecord) -> bool {
    !rec.is_symmetric()
        && rec.key_usage == specs::ENCRYPT_DECRYPT
        && rec.spec().is_some_and(specs::KeySpec::is_asymmetric)
}

/// The key, algorithm and material of one RSA operation, checked and ready.
pub(crate) struct RsaOperation {
    key: RsaPrivateKey,
    hash: OaepHash,
    algorithm: &'static str,
    material_id: String,
}

impl std::fmt::Debug for RsaOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaOperation")
            .field("algorithm", &self.algorithm)
            .field("material_id", &self.material_id)
            .finish_non_exhaustive()
    }
}

impl RsaOperation {
    /// Checks `algorithm` against the key's spec and refuses an encryption context, then loads
    /// the key's private key.
    pub(crate) fn prepare(
        key: &LoadedKey,
        algorithm: &str,
        context: Option<&BTreeMap<String, String>>,
    ) -> Result<Self, AwsError> {
        let rec = &key.record;
        let spec = rec.spec().ok_or_else(errors::internal)?;
        specs::check_algorithm(spec, specs::ENCRYPT_DECRYPT, algorithm)?;
        let (algorithm, hash) = match algorithm {
            "RSAES_OAEP_SHA_1" => ("RSAES_OAEP_SHA_1", OaepHash::Sha1),
            "RSAES_OAEP_SHA_256" => ("RSAES_OAEP_SHA_256", OaepHash::Sha256),
            other => {
                tracing::error!(
                    algorithm = other,
                    "the key-spec table offers an unknown RSA algorithm"
                );
                return Err(errors::internal());
            }
        };
        if context.is_some_and(|c| !c.is_empty()) {
            // Unconfirmed AWS wording.
            return Err(AwsError::validation(
                "EncryptionContext is not supported when encrypting/decrypting with asymmetric CMKs.",
            ));
        }
        let material = key.current_material().ok_or_else(|| {
            tracing::error!(key = %rec.arn(), "KMS key has no current material");
            errors::internal()
        })?;
        if material.format() != MaterialFormat::PrivateKey {
            tracing::error!(key = %rec.arn(), "KMS RSA key holds material of another format");
            return Err(errors::internal());
        }
        let private =
            RsaPrivateKey::from_pkcs8(material.secret()).map_err(|e| errors::crypto(&e))?;
        Ok(RsaOperation {
            key: private,
            hash,
            algorithm,
            material_id: material.id_hex(),
        })
    }

    /// AWS's limit on the plaintext: `ValidationException: Algorithm RSAES_OAEP_SHA_256 and key
    /// spec RSA_2048 cannot encrypt data larger than 190 bytes.`
    pub(crate) fn check_length(&self, rec: &KeyRecord, len: usize) -> Result<(), AwsError> {
        let max = max_plaintext_len(self.key.modulus_len(), self.hash);
        if len > max {
            return Err(AwsError::validation(format!(
                "Algorithm {} and key spec {} cannot encrypt data larger than {max} bytes.",
                self.algorithm, rec.key_spec
            )));
        }
        Ok(())
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, AwsError> {
        self.key
            .public_key()
            .and_then(|p| p.encrypt(self.hash, plaintext))
            .map_err(|e| errors::crypto(&e))
    }

    /// Any failure is AWS's `InvalidCiphertextException` with an empty message.
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        self.key
            .decrypt(self.hash, ciphertext)
            .map_err(|_| errors::invalid_ciphertext())
    }

    pub(crate) fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    pub(crate) fn material_id(&self) -> &str {
        &self.material_id
    }
}

impl Kms {
    /// Decrypts a raw RSA-OAEP ciphertext with the RSA key `r` (Decrypt, and the source side of
    /// ReEncrypt): authorization, state, usage and algorithm checks, then the decryption.
    /// Returns the plaintext, the algorithm and the material id.
    pub(crate) async fn open_rsa(
        &self,
        ctx: &RequestContext,
        r: &Resolved,
        o: Opening<'_>,
        algorithm: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, &'static str, String), AwsError> {
        let rec = &r.key.record;
        self.authorize(
            ctx,
            o.action,
            Target::Key(&r.key),
            o.conditions
                .encryption_context(o.context)
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        state::check(rec.state, o.op, &rec.arn())?;
        if rec.key_usage != specs::ENCRYPT_DECRYPT {
            return Err(crate::crypto::usage_error(rec, "Decrypt"));
        }
        let op = RsaOperation::prepare(&r.key, algorithm, o.context)?;
        let plaintext = op.decrypt(o.blob)?;
        Ok((plaintext, op.algorithm(), op.material_id().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_debug_shows_no_key() {
        let pkcs8 =
            citadel_crypto::asymmetric::generate(citadel_crypto::asymmetric::KeyKind::Rsa2048)
                .unwrap();
        let op = RsaOperation {
            key: RsaPrivateKey::from_pkcs8(&pkcs8).unwrap(),
            hash: OaepHash::Sha256,
            algorithm: "RSAES_OAEP_SHA_256",
            material_id: "ab".into(),
        };
        let shown = format!("{op:?}");
        assert!(shown.contains("RSAES_OAEP_SHA_256") && !shown.contains("key:"));
    }
}
