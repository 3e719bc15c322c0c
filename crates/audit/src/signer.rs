//! The digest signing key: RSA-2048, generated once, kept in the sealed store (never on disk in
//! clear); its public half is exported next to the trail and served by `ListPublicKeys`.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, RSA_PKCS1_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use citadel_crypto::Zeroizing;
use citadel_store::{Expect, SealedStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::layout;

const SIGNING_KEY: &str = "audit/signing-key";
const PUBLIC_KEY_PREFIX: &str = "audit/public-key/";

/// The stored private key.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// Base64 PKCS #8.
    pkcs8: String,
    fingerprint: String,
}

/// A public key of the trail, as `ListPublicKeys` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub fingerprint: String,
    /// PKCS #1 `RSAPublicKey`, DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// Unix seconds.
    pub validity_start: i64,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text)
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// The fingerprint of a public key: 32 hex digits, the first 128 bits of the SHA-256 of its
/// DER (AWS uses 32 hex digits too; Citadel's crypto has no MD5).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = citadel_crypto::sha256(der);
    hex::encode(digest.get(..16).unwrap_or(&digest))
}

/// SHA256withRSA (RSASSA-PKCS1-v1_5) verification with a PKCS #1 DER public key.
pub fn verify(public_der: &[u8], data: &[u8], signature_bytes: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_der)
        .verify(data, signature_bytes)
        .is_ok()
}

/// The loaded signing key.
pub struct Signer {
    key: KeyPair,
    pub fingerprint: String,
    pub public_der: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn crypto(what: &str) -> AuditError {
    AuditError::Crypto(what.to_owned())
}

impl Signer {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Signer> {
        let key =
            KeyPair::from_pkcs8(pkcs8).map_err(|_| crypto("the stored signing key is invalid"))?;
        let public_der = key.public_key().as_ref().to_vec();
        Ok(Signer {
            fingerprint: fingerprint(&public_der),
            public_der,
            key,
        })
    }

    /// SHA256withRSA over `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, data, &mut sig)
            .map_err(|_| crypto("RSA signing failed"))?;
        Ok(sig)
    }

    /// The signing key from the store, created (and its public key published) on first use.
    /// The public key is (re)exported to `<audit_dir>/public-keys/<fingerprint>.der`.
    pub async fn load_or_create(
        store: &SealedStore,
        audit_dir: &Path,
        now_unix: i64,
    ) -> Result<Signer> {
        let signer = match store.get_json::<StoredKey>(SIGNING_KEY).await? {
            Some(stored) => Self::from_stored(&stored)?,
            None => {
                let key = KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| crypto("RSA key generation failed"))?;
                let pkcs8: Zeroizing<Vec<u8>> = Zeroizing::new(
                    key.as_der()
                        .map_err(|_| crypto("PKCS #8 encoding failed"))?
                        .as_ref()
                        .to_vec(),
                );
                let signer = Self::from_pkcs8(&pkcs8)?;
                let stored = StoredKey {
                    pkcs8: STANDARD.encode(&*pkcs8),
                    fingerprint: signer.fingerprint.clone(),
                };
                let public = PublicKeyInfo {
                    fingerprint: signer.fingerprint.clone(),
                    der: signer.public_der.clone(),
                    validity_start: now_unix,
                };
                store
                    .put_json(
                        &format!("{PUBLIC_KEY_PREFIX}{}", signer.fingerprint),
                        &public,
                        Expect::Any,
                    )
                    .await?;
                match store.put_json(SIGNING_KEY, &stored, Expect::Absent).await {
                    Ok(_) => {
                        tracing::info!(fingerprint = %signer.fingerprint, "created the audit digest signing key");
                        signer
                    }
                    // Another node created one first: use theirs.
                    Err(StoreError::Conflict { .. }) => {
                        let stored = store
                            .get_json::<StoredKey>(SIGNING_KEY)
                            .await?
                            .ok_or_else(|| crypto("the signing key vanished"))?;
                        Self::from_stored(&stored)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        export_public_key(audit_dir, &signer.fingerprint, &signer.public_der)?;
        Ok(signer)
    }

    fn from_stored(stored: &StoredKey) -> Result<Signer> {
        let pkcs8 = Zeroizing::new(
            STANDARD
                .decode(&stored.pkcs8)
                .map_err(|_| crypto("the stored signing key is not base64"))?,
        );
        Self::from_pkcs8(&pkcs8)
    }
}

fn export_public_key(audit_dir: &Path, fingerprint: &str, der: &[u8]) -> Result<()> {
    let dir = audit_dir.join(layout::PUBLIC_KEY_DIR);
    std::fs::create_dir_all(&dir).map_err(AuditError::io("creating", &dir))?;
    let path = dir.join(format!("{fingerprint}.der"));
    if std::fs::read(&path).ok().as_deref() != Some(der) {
        std::fs::write(&path, der).map_err(AuditError::io("writing", &path))?;
    }
    Ok(())
}

/// Every public key the trail has signed with, oldest first.
pub async fn public_keys(store: &SealedStore) -> Result<Vec<PublicKeyInfo>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(PUBLIC_KEY_PREFIX, after.as_deref(), 100).await?;
        let done = page.len() < 100;
        for (key, record) in &page {
            out.push(serde_json::from_slice::<PublicKeyInfo>(&record.value)?);
            after = Some(key.clone());
        }
        if done {
            break;
        }
    }
    out.sort_by_key(|k| k.validity_start);
    Ok(out)
}

/// The public keys exported under `<audit_dir>/public-keys/`, by fingerprint (what an offline
/// verifier trusts).
pub fn exported_public_keys(audit_dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = audit_dir.join(layout::PUBLIC_KEY_DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(AuditError::io("listing", &dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(AuditError::io("listing", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(fp) = name.strip_suffix(".der") {
            let der =
                std::fs::read(entry.path()).map_err(AuditError::io("reading", entry.path()))?;
            // The file name is only a hint: the fingerprint is recomputed from the key.
            if fingerprint(&der) == fp {
                out.push((fp.to_owned(), der));
            }
        }
    }
    Ok(out)
}
