//! RSAES-OAEP (RFC 8017) as KMS offers it: `RSAES_OAEP_SHA_1` and `RSAES_OAEP_SHA_256`, each
//! with MGF1 over the same hash and an empty label, so that ciphertexts interoperate with
//! `openssl pkeyutl -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:<hash>`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// The hash of an OAEP algorithm (used for both OAEP and MGF1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
}

impl OaepHash {
    /// The algorithm a KMS `EncryptionAlgorithmSpec` names (`None` for the others).
    #[must_use]
    pub fn from_kms_name(name: &str) -> Option<Self> {
        match name {
            "RSAES_OAEP_SHA_1" => Some(OaepHash::Sha1),
            "RSAES_OAEP_SHA_256" => Some(OaepHash::Sha256),
            _ => None,
        }
    }

    fn hash_len(self) -> usize {
        match self {
            OaepHash::Sha1 => 20,
            OaepHash::Sha256 => 32,
        }
    }

    fn algorithm(self) -> &'static OaepAlgorithm {
        match self {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }
}

/// The longest plaintext OAEP with `hash` can encrypt under a modulus of `modulus_len` bytes
/// (k − 2·hLen − 2): 214/190 bytes for RSA 2048, 342/318 for 3072, 470/446 for 4096.
#[must_use]
pub fn max_plaintext_len(modulus_len: usize, hash: OaepHash) -> usize {
    modulus_len.saturating_sub(2 * hash.hash_len() + 2)
}

/// An RSA public key for encryption.
#[derive(Debug)]
pub struct RsaPublicKey(OaepPublicEncryptingKey);

impl RsaPublicKey {
    /// From a DER `SubjectPublicKeyInfo`.
    pub fn from_spki(der: &[u8]) -> Result<Self> {
        let key = PublicEncryptingKey::from_der(der).map_err(|_| CryptoError::InvalidPublicKey)?;
        OaepPublicEncryptingKey::new(key)
            .map(RsaPublicKey)
            .map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// The modulus length in bytes, which is also the ciphertext length.
    #[must_use]
    pub fn modulus_len(&self) -> usize {
        self.0.key_size_bytes()
    }

    /// Encrypts `plaintext`; fails with [`CryptoError::Seal`] when it is longer than
    /// [`max_plaintext_len`].
    pub fn encrypt(&self, hash: OaepHash, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > max_plaintext_len(self.modulus_len(), hash) {
            return Err(CryptoError::Seal);
        }
        let mut out = vec![0u8; self.0.ciphertext_size()];
        let len = self
            .0
            .encrypt(hash.algorithm(), plaintext, &mut out, None)
            .map_err(|_| CryptoError::Seal)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

/// An RSA private key for decryption. Its `Debug` shows nothing of the key.
pub struct RsaPrivateKey(PrivateDecryptingKey);

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.0.key_size_bits())
            .finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    /// From a PKCS#8 DER `PrivateKeyInfo` holding an RSA key (2048 to 8192 bits).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        PrivateDecryptingKey::from_pkcs8(der)
            .map(RsaPrivateKey)
            .map_err(|_| CryptoError::InvalidKey)
    }

    /// The modulus length in bytes: the length of every ciphertext for this key.
    #[must_use]
    pub fn modulus_len(&self) -> usize {
        self.0.key_size_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> Result<RsaPublicKey> {
        OaepPublicEncryptingKey::new(self.0.public_key())
            .map(RsaPublicKey)
            .map_err(|_| CryptoError::InvalidKey)
    }

    /// The public half as a DER `SubjectPublicKeyInfo`.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        self.0
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| CryptoError::InvalidKey)
    }

    /// Decrypts `ciphertext`. Every failure (wrong length, wrong padding, wrong key or hash) is
    /// the same opaque [`CryptoError::Open`].
    pub fn decrypt(&self, hash: OaepHash, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != self.modulus_len() {
            return Err(CryptoError::Open);
        }
        let key = OaepPrivateDecryptingKey::new(self.0.clone()).map_err(|_| CryptoError::Open)?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let len = key
            .decrypt(hash.algorithm(), ciphertext, &mut out, None)
            .map_err(|_| CryptoError::Open)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::KeySize;

    fn key(size: KeySize) -> Zeroizing<Vec<u8>> {
        let k = PrivateDecryptingKey::generate(size).unwrap();
        Zeroizing::new(k.as_der().unwrap().as_ref().to_vec())
    }

    #[test]
    fn limits_match_aws() {
        for (bytes, sha1, sha256) in [(256, 214, 190), (384, 342, 318), (512, 470, 446)] {
            assert_eq!(max_plaintext_len(bytes, OaepHash::Sha1), sha1);
            assert_eq!(max_plaintext_len(bytes, OaepHash::Sha256), sha256);
        }
    }

    #[test]
    fn round_trip_with_public_and_private_key() {
        let pkcs8 = key(KeySize::Rsa2048);
        let private = RsaPrivateKey::from_pkcs8(&pkcs8).unwrap();
        let public = RsaPublicKey::from_spki(&private.public_key_der().unwrap()).unwrap();
        assert_eq!(public.modulus_len(), 256);
        for hash in [OaepHash::Sha1, OaepHash::Sha256] {
            let max = max_plaintext_len(256, hash);
            for len in [0, 1, max] {
                let pt = vec![0x5a; len];
                let ct = public.encrypt(hash, &pt).unwrap();
                assert_eq!(ct.len(), 256);
                assert_eq!(*private.decrypt(hash, &ct).unwrap(), pt);
                let ct2 = private.public_key().unwrap().encrypt(hash, &pt).unwrap();
                assert_eq!(*private.decrypt(hash, &ct2).unwrap(), pt);
            }
            assert_eq!(
                public.encrypt(hash, &vec![0; max + 1]).unwrap_err(),
                CryptoError::Seal
            );
        }
    }

    #[test]
    fn wrong_hash_length_or_bytes_do_not_decrypt() {
        let private = RsaPrivateKey::from_pkcs8(&key(KeySize::Rsa2048)).unwrap();
        let ct = private
            .public_key()
            .unwrap()
            .encrypt(OaepHash::Sha256, b"secret")
            .unwrap();
        assert_eq!(
            private.decrypt(OaepHash::Sha1, &ct).unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(
            private.decrypt(OaepHash::Sha256, &ct[1..]).unwrap_err(),
            CryptoError::Open
        );
        let mut bad = ct.clone();
        bad[100] ^= 1;
        assert!(private.decrypt(OaepHash::Sha256, &bad).is_err());
    }

    #[test]
    fn garbage_keys_are_rejected_and_debug_is_redacted() {
        assert_eq!(
            RsaPrivateKey::from_pkcs8(b"nope").unwrap_err(),
            CryptoError::InvalidKey
        );
        assert_eq!(
            RsaPublicKey::from_spki(b"nope").unwrap_err(),
            CryptoError::InvalidPublicKey
        );
        let private = RsaPrivateKey::from_pkcs8(&key(KeySize::Rsa2048)).unwrap();
        assert_eq!(format!("{private:?}"), "RsaPrivateKey { bits: 2048, .. }");
        assert_eq!(
            OaepHash::from_kms_name("RSAES_OAEP_SHA_256"),
            Some(OaepHash::Sha256)
        );
        assert_eq!(OaepHash::from_kms_name("SYMMETRIC_DEFAULT"), None);
    }
}
