//! Per-version envelope encryption through KMS (see the crate docs for the design).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citadel_api::{AwsError, RequestContext};
use citadel_crypto::Aes256GcmKey;
use zeroize::Zeroizing;

use crate::errors;
use crate::record::{DEFAULT_KEY_ALIAS, DEFAULT_KEY_MARKER, ValueRecord};
use crate::{Inner, record::SecretRecord};

/// A secret value in plaintext: `SecretString` (UTF-8) or `SecretBinary`. Wiped on drop,
/// never shown by `Debug`.
pub(crate) struct Plain {
    pub binary: bool,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plain")
            .field("binary", &self.binary)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl Plain {
    /// The value's fingerprint under `salt`: HMAC-SHA256 of the kind byte and the bytes.
    pub fn fingerprint(&self, salt: &[u8]) -> [u8; 32] {
        let mut data = Zeroizing::new(Vec::with_capacity(self.bytes.len() + 1));
        data.push(u8::from(self.binary));
        data.extend_from_slice(&self.bytes);
        citadel_crypto::hmac_sha256(salt, &data)
    }

    /// Whether the value matches a stored fingerprint, compared in constant time.
    pub fn matches(&self, salt_hex: &str, fingerprint_hex: &str) -> bool {
        let (Ok(salt), Ok(expected)) = (hex::decode(salt_hex), hex::decode(fingerprint_hex)) else {
            return false;
        };
        citadel_crypto::constant_time_eq(&self.fingerprint(&salt), &expected)
    }
}

/// A sealed value ready to store, with what the version metadata records about it.
#[derive(Clone)]
pub(crate) struct Sealed {
    pub record: ValueRecord,
    /// ListSecretVersionIds' `KmsKeyIds` entry.
    pub key_marker: String,
    pub salt_hex: String,
    pub fingerprint_hex: String,
}

pub(crate) fn encryption_context(arn: &str, version_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SecretARN".to_owned(), arn.to_owned()),
        ("SecretVersionId".to_owned(), version_id.to_owned()),
    ])
}

/// The AEAD's additional data: the encryption context and the value's kind.
fn aad(arn: &str, version_id: &str, binary: bool) -> Vec<u8> {
    format!(
        "SecretARN={arn}\nSecretVersionId={version_id}\nkind={}",
        if binary { "binary" } else { "string" }
    )
    .into_bytes()
}

/// The KeyId a secret's values are encrypted under.
pub(crate) fn key_spec(record: &SecretRecord) -> &str {
    record.kms_key_id.as_deref().unwrap_or(DEFAULT_KEY_ALIAS)
}

impl Inner {
    /// Encrypts `plain` as version `version_id` of the secret `arn` under `key_id`.
    pub(crate) async fn seal(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        arn: &str,
        version_id: &str,
        plain: &Plain,
    ) -> Result<Sealed, AwsError> {
        let context = encryption_context(arn, version_id);
        let data_key = self
            .keys
            .generate_data_key(&ctx.via("secretsmanager"), key_id, &context)
            .await
            .map_err(|e| errors::from_kms(e, true))?;
        let aead = Aes256GcmKey::new(&data_key.plaintext).map_err(|e| errors::crypto(&e))?;
        let sealed = aead
            .seal(&aad(arn, version_id, plain.binary), &plain.bytes)
            .map_err(|e| errors::crypto(&e))?;
        let salt = citadel_crypto::random_bytes(32).map_err(|e| errors::crypto(&e))?;
        let fingerprint = plain.fingerprint(&salt);
        let key_marker = if key_id == DEFAULT_KEY_ALIAS {
            DEFAULT_KEY_MARKER.to_owned()
        } else {
            data_key.key_arn.clone()
        };
        Ok(Sealed {
            record: ValueRecord {
                key_arn: data_key.key_arn.clone(),
                data_key: B64.encode(&data_key.ciphertext),
                sealed: B64.encode(sealed),
                binary: plain.binary,
            },
            key_marker,
            salt_hex: hex::encode(salt.as_slice()),
            fingerprint_hex: hex::encode(fingerprint),
        })
    }

    /// Decrypts a stored value of version `version_id` of the secret `arn`.
    pub(crate) async fn open(
        &self,
        ctx: &RequestContext,
        arn: &str,
        version_id: &str,
        value: &ValueRecord,
    ) -> Result<Plain, AwsError> {
        let corrupt = || {
            tracing::error!(secret = %arn, version = %version_id, "a stored secret value is malformed");
            errors::internal()
        };
        let data_key = B64.decode(&value.data_key).map_err(|_| corrupt())?;
        let sealed = B64.decode(&value.sealed).map_err(|_| corrupt())?;
        let context = encryption_context(arn, version_id);
        let key = self
            .keys
            .decrypt(&ctx.via("secretsmanager"), &data_key, &context)
            .await
            .map_err(|e| errors::from_kms(e, false))?;
        let aead = Aes256GcmKey::new(&key.plaintext).map_err(|e| errors::crypto(&e))?;
        let bytes = aead
            .open(&aad(arn, version_id, value.binary), &sealed)
            .map_err(|_| {
                tracing::error!(secret = %arn, version = %version_id, "a stored secret value failed authentication");
                AwsError::new(
                    400,
                    "DecryptionFailure",
                    "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
                )
            })?;
        Ok(Plain {
            binary: value.binary,
            bytes,
        })
    }

    /// Reads and decrypts the value of one version.
    pub(crate) async fn read_value(
        &self,
        ctx: &RequestContext,
        record: &SecretRecord,
        version_id: &str,
    ) -> Result<Plain, AwsError> {
        let path =
            crate::record::value_path(&record.account, &record.region, &record.uid, version_id);
        let value = self
            .store
            .get_json::<ValueRecord>(&path)
            .await
            .map_err(errors::store)?
            .ok_or_else(|| {
                tracing::error!(secret = %record.arn(), version = %version_id, "a version's value record is missing");
                errors::internal()
            })?;
        self.open(ctx, &record.arn(), version_id, &value).await
    }
}
