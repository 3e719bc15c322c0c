//! SecureString values: encrypted by KMS on the caller's behalf with the encryption context
//! `{"PARAMETER_ARN": <arn>}`. Values up to 4096 bytes are `kms:Encrypt`ed directly; larger
//! (Advanced-tier) values are sealed under a data key from `kms:GenerateDataKey`, as AWS does.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citadel_api::{AwsError, KeyService, RequestContext};
use citadel_crypto::{Aes256GcmKey, Zeroizing};

use crate::errors;
use crate::record::StoredValue;

/// The key SSM uses when the caller names none.
pub const DEFAULT_KEY: &str = "alias/aws/ssm";

/// Largest plaintext `kms:Encrypt` takes.
const DIRECT_MAX: usize = 4096;

fn context(arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("PARAMETER_ARN".to_owned(), arn.to_owned())])
}

/// KMS's answer as SSM presents it: a key that does not exist or cannot be used is SSM's
/// `InvalidKeyId` (with KMS's explanation); access denials and everything else pass through.
fn kms_error(e: AwsError) -> AwsError {
    match e.code.as_ref() {
        "NotFoundException"
        | "DisabledException"
        | "KMSInvalidStateException"
        | "InvalidKeyUsageException"
        | "IncorrectKeyException" => {
            errors::invalid_key_id(e.message.unwrap_or_else(|| "Invalid KeyId.".to_owned()))
        }
        _ => e,
    }
}

pub async fn seal(
    keys: &dyn KeyService,
    ctx: &RequestContext,
    key_id: &str,
    arn: &str,
    plaintext: &[u8],
) -> Result<StoredValue, AwsError> {
    let via = ctx.via("ssm");
    let context = context(arn);
    if plaintext.len() <= DIRECT_MAX {
        let enc = keys
            .encrypt(&via, key_id, plaintext, &context)
            .await
            .map_err(kms_error)?;
        return Ok(StoredValue::Kms {
            blob: B64.encode(enc.ciphertext),
        });
    }
    let data_key = keys
        .generate_data_key(&via, key_id, &context)
        .await
        .map_err(kms_error)?;
    let aead = Aes256GcmKey::new(&data_key.plaintext).map_err(|e| errors::crypto(&e))?;
    let sealed = aead
        .seal(arn.as_bytes(), plaintext)
        .map_err(|e| errors::crypto(&e))?;
    Ok(StoredValue::Envelope {
        key: B64.encode(&data_key.ciphertext),
        sealed: B64.encode(sealed),
    })
}

fn unb64(text: &str) -> Result<Vec<u8>, AwsError> {
    B64.decode(text).map_err(|_| {
        tracing::error!("a stored SecureString ciphertext is not base64");
        errors::internal()
    })
}

/// The plaintext of a stored value (`kms:Decrypt` for SecureStrings).
pub async fn open(
    keys: &dyn KeyService,
    ctx: &RequestContext,
    arn: &str,
    value: &StoredValue,
) -> Result<Zeroizing<String>, AwsError> {
    let via = ctx.via("ssm");
    let bytes: Zeroizing<Vec<u8>> = match value {
        StoredValue::Plain { text } => return Ok(Zeroizing::new(text.clone())),
        StoredValue::Kms { blob } => {
            keys.decrypt(&via, &unb64(blob)?, &context(arn))
                .await
                .map_err(kms_error)?
                .plaintext
        }
        StoredValue::Envelope { key, sealed } => {
            let data_key = keys
                .decrypt(&via, &unb64(key)?, &context(arn))
                .await
                .map_err(kms_error)?;
            let aead = Aes256GcmKey::new(&data_key.plaintext).map_err(|e| errors::crypto(&e))?;
            aead.open(arn.as_bytes(), &unb64(sealed)?)
                .map_err(|e| errors::crypto(&e))?
        }
    };
    match std::str::from_utf8(&bytes) {
        Ok(s) => Ok(Zeroizing::new(s.to_owned())),
        Err(_) => {
            tracing::error!("a decrypted SecureString is not UTF-8");
            Err(errors::internal())
        }
    }
}

/// What AWS returns for a SecureString read without decryption: the ciphertext, in base64.
pub fn opaque(value: &StoredValue) -> Zeroizing<String> {
    Zeroizing::new(match value {
        StoredValue::Plain { text } => text.clone(),
        StoredValue::Kms { blob } => blob.clone(),
        StoredValue::Envelope { key, sealed } => {
            // One opaque blob: length of the encrypted data key (2 bytes, big-endian) ‖ data
            // key ‖ sealed value.
            let (Ok(k), Ok(s)) = (B64.decode(key), B64.decode(sealed)) else {
                return Zeroizing::new(String::new());
            };
            let len = u16::try_from(k.len()).unwrap_or(u16::MAX);
            let mut out = Vec::with_capacity(2 + k.len() + s.len());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(&s);
            B64.encode(out)
        }
    })
}
