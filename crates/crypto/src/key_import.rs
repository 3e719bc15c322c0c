//! Importing key material (AWS KMS "bring your own key"): the RSA wrapping key pairs that
//! GetParametersForImport hands out, and unwrapping of the material the customer encrypted under
//! their public half.
//!
//! Two families of wrapping algorithms exist:
//! - `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the material is RSA-OAEP encrypted directly
//!   (MGF1 uses the same hash as OAEP, as openssl's `rsa_mgf1_md` is set in AWS's instructions).
//! - `RSA_AES_KEY_WRAP_SHA_1` / `_SHA_256` (PKCS#11 `CKM_RSA_AES_KEY_WRAP`): an ephemeral 256-bit
//!   AES key, RSA-OAEP encrypted, followed by the material wrapped under that AES key with AES
//!   Key Wrap with Padding (RFC 5649). This carries material longer than OAEP can, such as RSA
//!   private keys.
//!
//! `RSAES_PKCS1_V1_5` is refused: AWS stopped accepting it, and PKCS#1 v1.5 decryption invites
//! padding-oracle attacks.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// Length of the ephemeral AES key of the `RSA_AES_KEY_WRAP_*` algorithms.
const AES_KEY_LEN: usize = 32;

/// The RSA size of a wrapping key (AWS's `WrappingKeySpec`; `SM2` is China-only and absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappingKeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl WrappingKeySpec {
    /// From AWS's name (`RSA_2048`, …); `None` for names this module does not support.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RSA_2048" => Some(Self::Rsa2048),
            "RSA_3072" => Some(Self::Rsa3072),
            "RSA_4096" => Some(Self::Rsa4096),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
        }
    }

    fn key_size(self) -> KeySize {
        match self {
            Self::Rsa2048 => KeySize::Rsa2048,
            Self::Rsa3072 => KeySize::Rsa3072,
            Self::Rsa4096 => KeySize::Rsa4096,
        }
    }

    fn bits(self) -> usize {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }
}

/// How the material is wrapped (AWS's `AlgorithmSpec`, minus the unsupported ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    /// From AWS's name; `None` for `RSAES_PKCS1_V1_5`, `SM2PKE` and anything unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RSAES_OAEP_SHA_1" => Some(Self::RsaesOaepSha1),
            "RSAES_OAEP_SHA_256" => Some(Self::RsaesOaepSha256),
            "RSA_AES_KEY_WRAP_SHA_1" => Some(Self::RsaAesKeyWrapSha1),
            "RSA_AES_KEY_WRAP_SHA_256" => Some(Self::RsaAesKeyWrapSha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            Self::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        }
    }

    /// Whether the material is AES-key-wrapped under an RSA-encrypted AES key.
    pub fn is_key_wrap(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }

    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => &OAEP_SHA1_MGF1SHA1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }

    /// The longest material `spec` can carry with this algorithm (`None`: no practical limit).
    pub fn max_material_len(self, spec: WrappingKeySpec) -> Option<usize> {
        if self.is_key_wrap() {
            return None;
        }
        let hash_len = match self {
            Self::RsaesOaepSha1 => 20,
            _ => 32,
        };
        Some(spec.bits() / 8 - 2 * hash_len - 2)
    }
}

/// An RSA wrapping key pair. The private half is PKCS#8 DER in a wiped container; `Debug` shows
/// nothing of it.
pub struct WrappingKeyPair {
    pkcs8: Zeroizing<Vec<u8>>,
    public_der: Vec<u8>,
}

impl fmt::Debug for WrappingKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappingKeyPair")
            .field("public_key_len", &self.public_der.len())
            .finish_non_exhaustive()
    }
}

impl WrappingKeyPair {
    /// A fresh key pair of `spec`. RSA key generation takes a while (up to seconds for 4096
    /// bits): async callers should run it on a blocking thread.
    pub fn generate(spec: WrappingKeySpec) -> Result<Self> {
        let key =
            PrivateDecryptingKey::generate(spec.key_size()).map_err(|_| CryptoError::Random)?;
        Self::from_key(&key)
    }

    /// The key pair from its PKCS#8 private key (as [`Self::pkcs8`] gave it).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| CryptoError::InvalidKey)?;
        Self::from_key(&key)
    }

    fn from_key(key: &PrivateDecryptingKey) -> Result<Self> {
        let pkcs8: Pkcs8V1Der<'static> = key.as_der().map_err(|_| CryptoError::InvalidKey)?;
        let public: PublicKeyX509Der<'static> = key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(WrappingKeyPair {
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            public_der: public.as_ref().to_vec(),
        })
    }

    /// The private key, PKCS#8 DER: a secret, for sealed storage only.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a DER X.509 SubjectPublicKeyInfo (GetParametersForImport's `PublicKey`).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Recovers the material from `wrapped`. Every failure (wrong key, wrong algorithm, damaged
    /// data) is the same [`CryptoError::Open`].
    pub fn unwrap(
        &self,
        algorithm: WrappingAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key =
            PrivateDecryptingKey::from_pkcs8(&self.pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let modulus_len = key.key_size_bytes();
        let rsa = OaepPrivateDecryptingKey::new(key).map_err(|_| CryptoError::InvalidKey)?;
        let oaep_decrypt = |ciphertext: &[u8]| -> Result<Zeroizing<Vec<u8>>> {
            let mut out = Zeroizing::new(vec![0u8; rsa.min_output_size()]);
            let len = rsa
                .decrypt(algorithm.oaep(), ciphertext, out.as_mut_slice(), None)
                .map_err(|_| CryptoError::Open)?
                .len();
            out.truncate(len);
            Ok(out)
        };
        if !algorithm.is_key_wrap() {
            return oaep_decrypt(wrapped);
        }
        let (encrypted_aes_key, kwp) = wrapped
            .split_at_checked(modulus_len)
            .ok_or(CryptoError::Open)?;
        let aes_key = oaep_decrypt(encrypted_aes_key)?;
        if aes_key.len() != AES_KEY_LEN || kwp.is_empty() {
            return Err(CryptoError::Open);
        }
        let kek = KeyEncryptionKey::new(&AES_256, &aes_key).map_err(|_| CryptoError::Open)?;
        let mut out = Zeroizing::new(vec![0u8; kwp.len()]);
        let len = kek
            .unwrap_with_padding(kwp, out.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

/// What the customer does with GetParametersForImport's public key (DER SubjectPublicKeyInfo):
/// wraps `material` with `algorithm`, with a fresh AES key for the key-wrap algorithms. Citadel
/// itself only unwraps; this is the client side, for tools and tests.
pub fn wrap(public_der: &[u8], algorithm: WrappingAlgorithm, material: &[u8]) -> Result<Vec<u8>> {
    let public =
        PublicEncryptingKey::from_der(public_der).map_err(|_| CryptoError::InvalidPublicKey)?;
    let public = OaepPublicEncryptingKey::new(public).map_err(|_| CryptoError::InvalidPublicKey)?;
    let oaep = |plaintext: &[u8]| -> Result<Vec<u8>> {
        let mut out = vec![0u8; public.ciphertext_size()];
        let n = public
            .encrypt(algorithm.oaep(), plaintext, &mut out, None)
            .map_err(|_| CryptoError::Seal)?
            .len();
        out.truncate(n);
        Ok(out)
    };
    if !algorithm.is_key_wrap() {
        return oaep(material);
    }
    let aes_key = crate::random_bytes(AES_KEY_LEN)?;
    let kek = KeyEncryptionKey::new(&AES_256, &aes_key).map_err(|_| CryptoError::Seal)?;
    let mut kwp = vec![0u8; material.len() + 16];
    let n = kek
        .wrap_with_padding(material, &mut kwp)
        .map_err(|_| CryptoError::Seal)?
        .len();
    kwp.truncate(n);
    let mut out = oaep(&aes_key)?;
    out.extend_from_slice(&kwp);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(public_der: &[u8], algorithm: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
        super::wrap(public_der, algorithm, material).unwrap()
    }

    const ALL: [WrappingAlgorithm; 4] = [
        WrappingAlgorithm::RsaesOaepSha1,
        WrappingAlgorithm::RsaesOaepSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
    ];

    #[test]
    fn every_algorithm_round_trips_and_the_wrong_key_fails() {
        let pair = WrappingKeyPair::generate(WrappingKeySpec::Rsa2048).unwrap();
        let other = WrappingKeyPair::generate(WrappingKeySpec::Rsa2048).unwrap();
        let material = [7u8; 32];
        for alg in ALL {
            let wrapped = wrap(pair.public_key_der(), alg, &material);
            assert_eq!(
                pair.unwrap(alg, &wrapped).unwrap().as_slice(),
                material,
                "{alg:?}"
            );
            assert_eq!(
                other.unwrap(alg, &wrapped),
                Err(CryptoError::Open),
                "{alg:?}"
            );
            let mut damaged = wrapped.clone();
            if let Some(b) = damaged.last_mut() {
                *b ^= 1;
            }
            assert_eq!(
                pair.unwrap(alg, &damaged),
                Err(CryptoError::Open),
                "{alg:?}"
            );
            assert_eq!(pair.unwrap(alg, &wrapped[..10]), Err(CryptoError::Open));
        }
        // The hash is part of the algorithm: SHA-1 OAEP does not open as SHA-256.
        let wrapped = wrap(
            pair.public_key_der(),
            WrappingAlgorithm::RsaesOaepSha1,
            &material,
        );
        assert!(
            pair.unwrap(WrappingAlgorithm::RsaesOaepSha256, &wrapped)
                .is_err()
        );
    }

    #[test]
    fn key_wrap_carries_long_material_and_the_pair_survives_pkcs8() {
        let pair = WrappingKeyPair::generate(WrappingKeySpec::Rsa3072).unwrap();
        let back = WrappingKeyPair::from_pkcs8(pair.pkcs8()).unwrap();
        assert_eq!(back.public_key_der(), pair.public_key_der());
        let material = vec![9u8; 1217];
        let wrapped = wrap(
            pair.public_key_der(),
            WrappingAlgorithm::RsaAesKeyWrapSha256,
            &material,
        );
        assert_eq!(
            back.unwrap(WrappingAlgorithm::RsaAesKeyWrapSha256, &wrapped)
                .unwrap()
                .as_slice(),
            material.as_slice()
        );
        assert!(WrappingKeyPair::from_pkcs8(b"not a key").is_err());
    }

    #[test]
    fn names_round_trip_and_pkcs1_is_refused() {
        for alg in ALL {
            assert_eq!(WrappingAlgorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(WrappingAlgorithm::from_name("RSAES_PKCS1_V1_5"), None);
        assert_eq!(WrappingAlgorithm::from_name("SM2PKE"), None);
        for s in ["RSA_2048", "RSA_3072", "RSA_4096"] {
            assert_eq!(
                WrappingKeySpec::from_name(s).map(WrappingKeySpec::name),
                Some(s)
            );
        }
        assert_eq!(WrappingKeySpec::from_name("SM2"), None);
        assert_eq!(
            WrappingAlgorithm::RsaesOaepSha256.max_material_len(WrappingKeySpec::Rsa2048),
            Some(190)
        );
        assert_eq!(
            WrappingAlgorithm::RsaesOaepSha1.max_material_len(WrappingKeySpec::Rsa4096),
            Some(470)
        );
    }

    #[test]
    fn debug_shows_no_private_key() {
        let pair = WrappingKeyPair::generate(WrappingKeySpec::Rsa2048).unwrap();
        let shown = format!("{pair:?}");
        assert!(!shown.contains(&format!("{:?}", &pair.pkcs8()[..8])));
        assert!(shown.len() < 100);
    }
}
