//! Key material: the secret of one version of a key, and its public 32-byte id.
//!
//! A key's material is 256 random bits for symmetric encryption keys, the HMAC key for HMAC
//! keys, and the private key (PKCS#8 DER) for asymmetric keys. It is stored in its own record as
//! one format byte followed by the secret (see [`crate::record`]), so a key record never holds a
//! secret.

use std::fmt;

use std::sync::OnceLock;

use citadel_crypto::asymmetric::{KeyKind, PrivateKey};
use citadel_crypto::{CryptoError, Zeroizing, constant_time_eq, hmac_sha256, random_bytes};

use crate::names::PackedKeyId;

pub(crate) const MATERIAL_ID_LEN: usize = 32;
const SYMMETRIC_LEN: usize = 32;

/// Binds a material id to its key so that the id reveals nothing about the material (HMAC is
/// one-way) yet identifies it uniquely.
const MATERIAL_ID_LABEL: &[u8] = b"citadel kms key material id v1";

/// What the secret bytes of a material are. The discriminant is the format byte in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaterialFormat {
    /// 32 bytes: the root of every message key of a `SYMMETRIC_DEFAULT` key.
    Symmetric = 1,
    /// The key of an HMAC key (as long as the key spec says).
    Hmac = 2,
    /// An asymmetric private key, PKCS#8 DER.
    PrivateKey = 3,
}

impl MaterialFormat {
    pub fn byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(MaterialFormat::Symmetric),
            2 => Some(MaterialFormat::Hmac),
            3 => Some(MaterialFormat::PrivateKey),
            _ => None,
        }
    }
}

/// One version of a key's material.
pub struct Material {
    id: [u8; MATERIAL_ID_LEN],
    format: MaterialFormat,
    secret: Zeroizing<Vec<u8>>,
    /// The private key parsed on first use (asymmetric materials): materials live in the key
    /// cache, so Sign, Verify and GetPublicKey parse nothing per request.
    parsed: OnceLock<PrivateKey>,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("id", &self.id_hex())
            .field("format", &self.format)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn material_id(key_id: &PackedKeyId, secret: &[u8]) -> [u8; MATERIAL_ID_LEN] {
    let mut data = Vec::with_capacity(MATERIAL_ID_LABEL.len() + 16);
    data.extend_from_slice(MATERIAL_ID_LABEL);
    data.extend_from_slice(&key_id.bytes);
    hmac_sha256(secret, &data)
}

impl Material {
    /// Fresh random material for the symmetric encryption key `key_id`.
    pub fn generate(key_id: &PackedKeyId) -> Result<Self, CryptoError> {
        Ok(Self::new(
            key_id,
            MaterialFormat::Symmetric,
            random_bytes(SYMMETRIC_LEN)?,
        ))
    }

    /// Material of `format` with the given secret (generated or imported). The id depends on
    /// the key id and the secret only, so a multi-Region key's replicas, which share the key id,
    /// give the same material the same id, and re-imported material is recognised.
    pub fn new(key_id: &PackedKeyId, format: MaterialFormat, secret: Zeroizing<Vec<u8>>) -> Self {
        Material {
            id: material_id(key_id, &secret),
            format,
            secret,
            parsed: OnceLock::new(),
        }
    }

    /// Material read back from storage. `None` when the secret does not fit its format or does
    /// not match the id it was stored under (a record moved between keys or material slots).
    pub fn restore(
        key_id: &PackedKeyId,
        id: &[u8],
        format: MaterialFormat,
        secret: &[u8],
    ) -> Option<Self> {
        if format == MaterialFormat::Symmetric && secret.len() != SYMMETRIC_LEN {
            return None;
        }
        let secret = Zeroizing::new(secret.to_vec());
        let expected = material_id(key_id, &secret);
        if !constant_time_eq(&expected, id) {
            return None;
        }
        Some(Material {
            id: expected,
            format,
            secret,
            parsed: OnceLock::new(),
        })
    }

    pub fn id(&self) -> &[u8; MATERIAL_ID_LEN] {
        &self.id
    }

    /// The `KeyMaterialId` AWS shows: 64 lowercase hex digits.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub fn format(&self) -> MaterialFormat {
        self.format
    }

    /// The raw secret: for the store, and for the cryptographic operation of its format.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The asymmetric private key of this material, a key of `kind`, parsed once.
    pub fn private_key(&self, kind: KeyKind) -> Result<&PrivateKey, CryptoError> {
        if self.format != MaterialFormat::PrivateKey {
            return Err(CryptoError::InvalidKey);
        }
        let key = match self.parsed.get() {
            Some(k) => k,
            None => {
                let parsed = PrivateKey::from_pkcs8(kind, &self.secret)?;
                self.parsed.get_or_init(|| parsed)
            }
        };
        if key.kind() == kind {
            Ok(key)
        } else {
            Err(CryptoError::InvalidKey)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PackedKeyId = PackedKeyId {
        kind: PackedKeyId::UUID,
        bytes: [7u8; 16],
    };

    #[test]
    fn restore_checks_key_length_and_id() {
        let m1 = Material::generate(&KEY).unwrap();
        let other_key = PackedKeyId {
            bytes: [8u8; 16],
            ..KEY
        };
        assert!(Material::restore(&other_key, m1.id(), m1.format(), m1.secret()).is_none());
        let back = Material::restore(&KEY, m1.id(), m1.format(), m1.secret()).unwrap();
        assert_eq!(back.id(), m1.id());
        assert!(Material::restore(&KEY, m1.id(), m1.format(), &m1.secret()[..31]).is_none());
        let hmac = Material::new(&KEY, MaterialFormat::Hmac, Zeroizing::new(vec![1u8; 64]));
        assert!(Material::restore(&KEY, hmac.id(), MaterialFormat::Hmac, &[1u8; 64]).is_some());
    }

    #[test]
    fn same_key_id_and_secret_give_the_same_id() {
        let s = || Zeroizing::new(vec![3u8; 32]);
        let a = Material::new(&KEY, MaterialFormat::Symmetric, s());
        let b = Material::new(&KEY, MaterialFormat::Symmetric, s());
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn format_bytes_round_trip() {
        for f in [
            MaterialFormat::Symmetric,
            MaterialFormat::Hmac,
            MaterialFormat::PrivateKey,
        ] {
            assert_eq!(MaterialFormat::from_byte(f.byte()), Some(f));
        }
        assert_eq!(MaterialFormat::from_byte(0), None);
    }

    #[test]
    fn a_private_key_is_parsed_once_and_only_as_its_kind() {
        let pkcs8 = citadel_crypto::asymmetric::generate(KeyKind::EccNistP256).unwrap();
        let m = Material::new(&KEY, MaterialFormat::PrivateKey, pkcs8);
        let first: *const PrivateKey = m.private_key(KeyKind::EccNistP256).unwrap();
        let again: *const PrivateKey = m.private_key(KeyKind::EccNistP256).unwrap();
        assert_eq!(first, again, "the parsed key is kept");
        assert!(m.private_key(KeyKind::EccNistP384).is_err());
        let symmetric = Material::generate(&KEY).unwrap();
        assert!(symmetric.private_key(KeyKind::EccNistP256).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let m = Material::new(&KEY, MaterialFormat::Hmac, Zeroizing::new(vec![0xab; 40]));
        let shown = format!("{m:?}");
        assert!(!shown.contains("ab, ab") && !shown.contains("abab"));
        assert!(shown.contains("redacted"));
    }
}
