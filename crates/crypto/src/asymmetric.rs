//! Asymmetric keys as KMS uses them: generation (PKCS#8 DER), public keys (X.509
//! SubjectPublicKeyInfo DER), signatures (RSA PSS / PKCS#1 v1.5, ECDSA, Ed25519, ML-DSA) and
//! ECDH key agreement.
//!
//! Private keys travel as PKCS#8 DER in [`Zeroizing`] buffers. A caller that signs often keeps a
//! [`PrivateKey`]: parsed once (an RSA-4096 parse validates the key, which costs far more than a
//! signature), with its public key derived once too. Signatures are in the encodings AWS KMS
//! returns: DER for ECDSA, raw for the others.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{agreement, digest, rsa};
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// The asymmetric key kinds of KMS (its `KeySpec` values other than symmetric, HMAC and SM2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
    Ed25519,
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

impl KeyKind {
    /// Every kind, in KMS's order.
    pub const ALL: [KeyKind; 11] = [
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::EccNistP256,
        KeyKind::EccNistP384,
        KeyKind::EccNistP521,
        KeyKind::EccSecgP256k1,
        KeyKind::Ed25519,
        KeyKind::MlDsa44,
        KeyKind::MlDsa65,
        KeyKind::MlDsa87,
    ];

    /// The kind of a KMS `KeySpec` name (`RSA_2048`, `ECC_NIST_EDWARDS25519`, `ML_DSA_44`, ...).
    #[must_use]
    pub fn from_key_spec(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key_spec() == name)
    }

    /// The KMS `KeySpec` name of this kind.
    #[must_use]
    pub fn key_spec(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "RSA_2048",
            KeyKind::Rsa3072 => "RSA_3072",
            KeyKind::Rsa4096 => "RSA_4096",
            KeyKind::EccNistP256 => "ECC_NIST_P256",
            KeyKind::EccNistP384 => "ECC_NIST_P384",
            KeyKind::EccNistP521 => "ECC_NIST_P521",
            KeyKind::EccSecgP256k1 => "ECC_SECG_P256K1",
            KeyKind::Ed25519 => "ECC_NIST_EDWARDS25519",
            KeyKind::MlDsa44 => "ML_DSA_44",
            KeyKind::MlDsa65 => "ML_DSA_65",
            KeyKind::MlDsa87 => "ML_DSA_87",
        }
    }

    /// The modulus size in bits of an RSA kind.
    fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyKind::Rsa2048 => Some(2048),
            KeyKind::Rsa3072 => Some(3072),
            KeyKind::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The ECDSA algorithm (with the hash KMS pairs with the curve) of an elliptic-curve kind.
    fn ecdsa(self) -> Option<(&'static signature::EcdsaSigningAlgorithm, SigningAlgorithm)> {
        match self {
            KeyKind::EccNistP256 => Some((
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                SigningAlgorithm::EcdsaSha256,
            )),
            KeyKind::EccNistP384 => Some((
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                SigningAlgorithm::EcdsaSha384,
            )),
            KeyKind::EccNistP521 => Some((
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                SigningAlgorithm::EcdsaSha512,
            )),
            KeyKind::EccSecgP256k1 => Some((
                &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                SigningAlgorithm::EcdsaSha256,
            )),
            _ => None,
        }
    }

    fn ml_dsa(self) -> Option<&'static signature::PqdsaSigningAlgorithm> {
        match self {
            KeyKind::MlDsa44 => Some(&signature::ML_DSA_44_SIGNING),
            KeyKind::MlDsa65 => Some(&signature::ML_DSA_65_SIGNING),
            KeyKind::MlDsa87 => Some(&signature::ML_DSA_87_SIGNING),
            _ => None,
        }
    }

    /// The ECDH algorithm of a kind that can agree keys (the NIST curves; secp256k1 cannot in
    /// KMS).
    fn ecdh(self) -> Option<&'static agreement::Algorithm> {
        match self {
            KeyKind::EccNistP256 => Some(&agreement::ECDH_P256),
            KeyKind::EccNistP384 => Some(&agreement::ECDH_P384),
            KeyKind::EccNistP521 => Some(&agreement::ECDH_P521),
            _ => None,
        }
    }

    /// Whether `algorithm` is one this kind signs with.
    #[must_use]
    pub fn signs_with(self, algorithm: SigningAlgorithm) -> bool {
        if self.rsa_bits().is_some() {
            return algorithm.rsa().is_some();
        }
        if let Some((_, ecdsa)) = self.ecdsa() {
            return algorithm == ecdsa;
        }
        match self {
            KeyKind::Ed25519 => algorithm == SigningAlgorithm::Ed25519Sha512,
            _ => algorithm == SigningAlgorithm::MlDsaShake256,
        }
    }
}

/// The KMS `SigningAlgorithmSpec` values this facade implements (all but SM2DSA and
/// ED25519_PH_SHA_512, which aws-lc-rs does not offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Ed25519Sha512,
    MlDsaShake256,
}

/// The RSA encodings and verification parameters of one RSA algorithm.
type RsaAlgorithm = (
    &'static dyn signature::RsaEncoding,
    &'static signature::RsaParameters,
);

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 11] = [
        SigningAlgorithm::RsaPssSha256,
        SigningAlgorithm::RsaPssSha384,
        SigningAlgorithm::RsaPssSha512,
        SigningAlgorithm::RsaPkcs1Sha256,
        SigningAlgorithm::RsaPkcs1Sha384,
        SigningAlgorithm::RsaPkcs1Sha512,
        SigningAlgorithm::EcdsaSha256,
        SigningAlgorithm::EcdsaSha384,
        SigningAlgorithm::EcdsaSha512,
        SigningAlgorithm::Ed25519Sha512,
        SigningAlgorithm::MlDsaShake256,
    ];

    /// The algorithm of a KMS `SigningAlgorithmSpec` name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The KMS `SigningAlgorithmSpec` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RsaPssSha256 => "RSASSA_PSS_SHA_256",
            SigningAlgorithm::RsaPssSha384 => "RSASSA_PSS_SHA_384",
            SigningAlgorithm::RsaPssSha512 => "RSASSA_PSS_SHA_512",
            SigningAlgorithm::RsaPkcs1Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
            SigningAlgorithm::RsaPkcs1Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
            SigningAlgorithm::RsaPkcs1Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
            SigningAlgorithm::EcdsaSha256 => "ECDSA_SHA_256",
            SigningAlgorithm::EcdsaSha384 => "ECDSA_SHA_384",
            SigningAlgorithm::EcdsaSha512 => "ECDSA_SHA_512",
            SigningAlgorithm::Ed25519Sha512 => "ED25519_SHA_512",
            SigningAlgorithm::MlDsaShake256 => "ML_DSA_SHAKE_256",
        }
    }

    /// The hash a precomputed digest must have been made with; `None` for the algorithms that
    /// sign whole messages only (Ed25519 and ML-DSA hash internally).
    fn digest_algorithm(self) -> Option<&'static digest::Algorithm> {
        match self {
            SigningAlgorithm::RsaPssSha256
            | SigningAlgorithm::RsaPkcs1Sha256
            | SigningAlgorithm::EcdsaSha256 => Some(&digest::SHA256),
            SigningAlgorithm::RsaPssSha384
            | SigningAlgorithm::RsaPkcs1Sha384
            | SigningAlgorithm::EcdsaSha384 => Some(&digest::SHA384),
            SigningAlgorithm::RsaPssSha512
            | SigningAlgorithm::RsaPkcs1Sha512
            | SigningAlgorithm::EcdsaSha512 => Some(&digest::SHA512),
            SigningAlgorithm::Ed25519Sha512 | SigningAlgorithm::MlDsaShake256 => None,
        }
    }

    /// The length in bytes of the digest this algorithm signs in DIGEST mode; `None` when it
    /// has no DIGEST mode.
    #[must_use]
    pub fn digest_len(self) -> Option<usize> {
        self.digest_algorithm().map(|d| d.output_len())
    }

    /// PSS uses a salt as long as the hash (aws-lc-rs's `RSA_PSS_*` and AWS KMS agree on that).
    fn rsa(self) -> Option<RsaAlgorithm> {
        match self {
            SigningAlgorithm::RsaPssSha256 => Some((
                &signature::RSA_PSS_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
            )),
            SigningAlgorithm::RsaPssSha384 => Some((
                &signature::RSA_PSS_SHA384,
                &signature::RSA_PSS_2048_8192_SHA384,
            )),
            SigningAlgorithm::RsaPssSha512 => Some((
                &signature::RSA_PSS_SHA512,
                &signature::RSA_PSS_2048_8192_SHA512,
            )),
            SigningAlgorithm::RsaPkcs1Sha256 => Some((
                &signature::RSA_PKCS1_SHA256,
                &signature::RSA_PKCS1_2048_8192_SHA256,
            )),
            SigningAlgorithm::RsaPkcs1Sha384 => Some((
                &signature::RSA_PKCS1_SHA384,
                &signature::RSA_PKCS1_2048_8192_SHA384,
            )),
            SigningAlgorithm::RsaPkcs1Sha512 => Some((
                &signature::RSA_PKCS1_SHA512,
                &signature::RSA_PKCS1_2048_8192_SHA512,
            )),
            _ => None,
        }
    }

    /// The verification algorithm for a key of `kind` (which must sign with `self`).
    fn verification(self, kind: KeyKind) -> &'static dyn signature::VerificationAlgorithm {
        if let Some((_, params)) = self.rsa() {
            return params;
        }
        match kind {
            KeyKind::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyKind::EccNistP521 => &signature::ECDSA_P521_SHA512_ASN1,
            KeyKind::EccSecgP256k1 => &signature::ECDSA_P256K1_SHA256_ASN1,
            KeyKind::Ed25519 => &signature::ED25519,
            KeyKind::MlDsa44 => &signature::ML_DSA_44,
            KeyKind::MlDsa65 => &signature::ML_DSA_65,
            KeyKind::MlDsa87 => &signature::ML_DSA_87,
            // The RSA kinds were answered above; P-256 is the remaining ECDSA curve.
            _ => &signature::ECDSA_P256_SHA256_ASN1,
        }
    }
}

/// What is signed or verified: the message itself, or its digest (KMS `MessageType` RAW or
/// DIGEST).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Message(&'a [u8]),
    Digest(&'a [u8]),
}

/// Shows only the kind and length: messages may be confidential.
impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Message(m) => write!(f, "Message({} bytes)", m.len()),
            Input::Digest(d) => write!(f, "Digest({} bytes)", d.len()),
        }
    }
}

impl<'a> Input<'a> {
    /// The message, for algorithms that sign whole messages only.
    fn whole_message(self) -> Result<&'a [u8]> {
        match self {
            Input::Message(m) => Ok(m),
            Input::Digest(_) => Err(CryptoError::Unsupported(
                "Ed25519 and ML-DSA sign whole messages only",
            )),
        }
    }

    /// The digest as aws-lc-rs wants it, checked against the algorithm's hash length.
    fn digest(d: &[u8], algorithm: SigningAlgorithm) -> Result<digest::Digest> {
        let alg = algorithm
            .digest_algorithm()
            .ok_or(CryptoError::Unsupported(
                "this signing algorithm signs whole messages only",
            ))?;
        digest::Digest::import_less_safe(d, alg)
            .map_err(|_| CryptoError::Unsupported("the digest length does not fit the algorithm"))
    }
}

fn rsa_key(kind: KeyKind, pkcs8: &[u8]) -> Result<rsa::KeyPair> {
    let bits = kind.rsa_bits().ok_or(CryptoError::InvalidKey)?;
    let key = rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
    if key.public_modulus_len() * 8 != bits {
        return Err(CryptoError::InvalidKey);
    }
    Ok(key)
}

fn ecdsa_key(kind: KeyKind, pkcs8: &[u8]) -> Result<signature::EcdsaKeyPair> {
    let (alg, _) = kind.ecdsa().ok_or(CryptoError::InvalidKey)?;
    signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| CryptoError::InvalidKey)
}

fn ed25519_key(pkcs8: &[u8]) -> Result<signature::Ed25519KeyPair> {
    signature::Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)
}

fn ml_dsa_key(kind: KeyKind, pkcs8: &[u8]) -> Result<signature::PqdsaKeyPair> {
    let alg = kind.ml_dsa().ok_or(CryptoError::InvalidKey)?;
    signature::PqdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| CryptoError::InvalidKey)
}

fn secret(der: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(der.to_vec())
}

/// A fresh private key of `kind`, as PKCS#8 v1 DER.
///
/// # Errors
/// [`CryptoError::Random`] when aws-lc-rs fails to generate or serialize the key.
pub fn generate(kind: KeyKind) -> Result<Zeroizing<Vec<u8>>> {
    let failed = |_| CryptoError::Random;
    if let Some(bits) = kind.rsa_bits() {
        let size = match bits {
            2048 => rsa::KeySize::Rsa2048,
            3072 => rsa::KeySize::Rsa3072,
            _ => rsa::KeySize::Rsa4096,
        };
        let key = rsa::KeyPair::generate(size).map_err(failed)?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(failed)?;
        return Ok(secret(der.as_ref()));
    }
    if let Some((alg, _)) = kind.ecdsa() {
        let key = signature::EcdsaKeyPair::generate(alg).map_err(failed)?;
        return Ok(secret(key.to_pkcs8v1().map_err(failed)?.as_ref()));
    }
    if let Some(alg) = kind.ml_dsa() {
        let key = signature::PqdsaKeyPair::generate(alg).map_err(failed)?;
        return Ok(secret(key.to_pkcs8v1().map_err(failed)?.as_ref()));
    }
    let key = signature::Ed25519KeyPair::generate().map_err(failed)?;
    Ok(secret(key.to_pkcs8v1().map_err(failed)?.as_ref()))
}

/// The public key of the PKCS#8 private key `pkcs8` of `kind`, as X.509 SubjectPublicKeyInfo
/// DER (what KMS GetPublicKey returns and `openssl pkey -pubin -inform DER` reads).
///
/// # Errors
/// [`CryptoError::InvalidKey`] when `pkcs8` is not a private key of `kind`.
pub fn public_key_der(kind: KeyKind, pkcs8: &[u8]) -> Result<Vec<u8>> {
    Ok(PrivateKey::from_pkcs8(kind, pkcs8)?
        .public_key_der()
        .to_vec())
}

/// Signs `input` with the PKCS#8 private key `pkcs8` of `kind` under `algorithm` (see
/// [`PrivateKey::sign`]).
///
/// # Errors
/// As [`PrivateKey::from_pkcs8`] and [`PrivateKey::sign`].
pub fn sign(
    kind: KeyKind,
    algorithm: SigningAlgorithm,
    pkcs8: &[u8],
    input: Input<'_>,
) -> Result<Vec<u8>> {
    PrivateKey::from_pkcs8(kind, pkcs8)?.sign(algorithm, input)
}

/// A parsed signing key with its public key (X.509 SubjectPublicKeyInfo DER).
pub struct PrivateKey {
    kind: KeyKind,
    key: Parsed,
    public: Vec<u8>,
}

enum Parsed {
    Rsa(rsa::KeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
    MlDsa(signature::PqdsaKeyPair),
}

/// Shows the kind only.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Parses the PKCS#8 private key `pkcs8` of `kind`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when `pkcs8` is not a private key of `kind`.
    pub fn from_pkcs8(kind: KeyKind, pkcs8: &[u8]) -> Result<PrivateKey> {
        let invalid = |_| CryptoError::InvalidKey;
        let (key, public): (Parsed, PublicKeyX509Der<'static>) = if kind.rsa_bits().is_some() {
            let k = rsa_key(kind, pkcs8)?;
            let public = k.public_key().as_der().map_err(invalid)?;
            (Parsed::Rsa(k), public)
        } else if kind.ecdsa().is_some() {
            let k = ecdsa_key(kind, pkcs8)?;
            let public = k.public_key().as_der().map_err(invalid)?;
            (Parsed::Ecdsa(k), public)
        } else if kind.ml_dsa().is_some() {
            let k = ml_dsa_key(kind, pkcs8)?;
            let public = k.public_key().as_der().map_err(invalid)?;
            (Parsed::MlDsa(k), public)
        } else {
            let k = ed25519_key(pkcs8)?;
            let public = k.public_key().as_der().map_err(invalid)?;
            (Parsed::Ed25519(k), public)
        };
        Ok(PrivateKey {
            kind,
            key,
            public: public.as_ref().to_vec(),
        })
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public key, X.509 SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public
    }

    /// Signs `input` under `algorithm`. ECDSA signatures are DER-encoded; the others are raw.
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] when the key does not sign with `algorithm`, when a digest
    /// is given to Ed25519 or ML-DSA, or when the digest has the wrong length;
    /// [`CryptoError::Asymmetric`] when aws-lc-rs fails to sign.
    pub fn sign(&self, algorithm: SigningAlgorithm, input: Input<'_>) -> Result<Vec<u8>> {
        if !self.kind.signs_with(algorithm) {
            return Err(CryptoError::Unsupported(
                "the key kind does not sign with this algorithm",
            ));
        }
        let failed = |_| CryptoError::Asymmetric;
        match &self.key {
            Parsed::Rsa(key) => {
                let (encoding, _) = algorithm.rsa().ok_or(CryptoError::Unsupported(
                    "the key kind does not sign with this algorithm",
                ))?;
                let mut sig = vec![0u8; key.public_modulus_len()];
                match input {
                    Input::Message(m) => key
                        .sign(encoding, &SystemRandom::new(), m, &mut sig)
                        .map_err(failed)?,
                    Input::Digest(d) => key
                        .sign_digest(encoding, &Input::digest(d, algorithm)?, &mut sig)
                        .map_err(failed)?,
                }
                Ok(sig)
            }
            Parsed::Ecdsa(key) => {
                let sig = match input {
                    Input::Message(m) => key.sign(&SystemRandom::new(), m).map_err(failed)?,
                    Input::Digest(d) => key
                        .sign_digest(&Input::digest(d, algorithm)?)
                        .map_err(failed)?,
                };
                Ok(sig.as_ref().to_vec())
            }
            Parsed::Ed25519(key) => Ok(key.sign(input.whole_message()?).as_ref().to_vec()),
            Parsed::MlDsa(key) => {
                let m = input.whole_message()?;
                let mut sig = vec![0u8; key.algorithm().signature_len()];
                let len = key.sign(m, &mut sig).map_err(failed)?;
                sig.truncate(len);
                Ok(sig)
            }
        }
    }
}

/// Whether `signature` is a valid `algorithm` signature of `input` under `public_key` (X.509
/// SubjectPublicKeyInfo DER) of `kind`. Any malformed input is simply "not valid".
#[must_use]
pub fn verify(
    kind: KeyKind,
    algorithm: SigningAlgorithm,
    public_key: &[u8],
    input: Input<'_>,
    signature: &[u8],
) -> bool {
    if !kind.signs_with(algorithm) {
        return false;
    }
    let key = signature::UnparsedPublicKey::new(algorithm.verification(kind), public_key);
    match input {
        Input::Message(m) => key.verify(m, signature).is_ok(),
        Input::Digest(d) => match Input::digest(d, algorithm) {
            Ok(digest) => key.verify_digest(&digest, signature).is_ok(),
            Err(_) => false,
        },
    }
}

/// ECDH between the PKCS#8 private key `pkcs8` of `kind` (a NIST curve) and the peer's public
/// key `peer_spki` (X.509 SubjectPublicKeyInfo DER on the same curve). Returns the raw shared
/// secret, the x-coordinate of the shared point, as KMS DeriveSharedSecret does.
///
/// # Errors
/// [`CryptoError::Unsupported`] for a kind without ECDH; [`CryptoError::InvalidKey`] when
/// `pkcs8` is not a key of `kind`; [`CryptoError::InvalidPublicKey`] when the peer key is not an
/// SPKI of a point on the same curve.
pub fn ecdh(kind: KeyKind, pkcs8: &[u8], peer_spki: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let alg = kind
        .ecdh()
        .ok_or(CryptoError::Unsupported("the key kind has no ECDH"))?;
    let private = agreement::PrivateKey::from_private_key_der(alg, pkcs8)
        .map_err(|_| CryptoError::InvalidKey)?;
    let peer =
        agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(alg, peer_spki))
            .map_err(|_| CryptoError::InvalidPublicKey)?;
    // KMS takes the peer key as SubjectPublicKeyInfo only, not as a bare point.
    if peer.format() != agreement::ParsedPublicKeyFormat::X509 {
        return Err(CryptoError::InvalidPublicKey);
    }
    agreement::agree(&private, peer, CryptoError::InvalidPublicKey, |shared| {
        Ok(Zeroizing::new(shared.to_vec()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in KeyKind::ALL {
            assert_eq!(KeyKind::from_key_spec(k.key_spec()), Some(k));
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(SigningAlgorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(KeyKind::from_key_spec("SM2"), None);
        assert_eq!(KeyKind::from_key_spec("SYMMETRIC_DEFAULT"), None);
        assert_eq!(SigningAlgorithm::from_name("SM2DSA"), None);
        assert_eq!(SigningAlgorithm::EcdsaSha384.digest_len(), Some(48));
        assert_eq!(SigningAlgorithm::Ed25519Sha512.digest_len(), None);
    }

    fn sha(alg: SigningAlgorithm, m: &[u8]) -> Vec<u8> {
        match alg.digest_algorithm() {
            Some(d) => digest::digest(d, m).as_ref().to_vec(),
            None => Vec::new(),
        }
    }

    /// Every kind with every algorithm it signs with, RAW and (where it exists) DIGEST, and the
    /// digest signature verifies as a message signature and back.
    #[test]
    fn sign_verify_round_trips() {
        let msg = b"citadel asymmetric round trip";
        for kind in KeyKind::ALL {
            // One RSA size is enough for every algorithm; the others get one algorithm.
            if kind == KeyKind::Rsa4096 {
                continue;
            }
            let pkcs8 = generate(kind).unwrap();
            let spki = public_key_der(kind, &pkcs8).unwrap();
            for alg in SigningAlgorithm::ALL {
                if !kind.signs_with(alg) {
                    assert!(sign(kind, alg, &pkcs8, Input::Message(msg)).is_err());
                    continue;
                }
                let sig = sign(kind, alg, &pkcs8, Input::Message(msg)).unwrap();
                assert!(
                    verify(kind, alg, &spki, Input::Message(msg), &sig),
                    "{kind:?} {alg:?}"
                );
                assert!(!verify(kind, alg, &spki, Input::Message(b"other"), &sig));
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(!verify(kind, alg, &spki, Input::Message(msg), &bad));
                if alg.digest_len().is_some() {
                    let d = sha(alg, msg);
                    let dsig = sign(kind, alg, &pkcs8, Input::Digest(&d)).unwrap();
                    assert!(verify(kind, alg, &spki, Input::Message(msg), &dsig));
                    assert!(verify(kind, alg, &spki, Input::Digest(&d), &sig));
                    assert!(sign(kind, alg, &pkcs8, Input::Digest(&d[1..])).is_err());
                    assert!(!verify(kind, alg, &spki, Input::Digest(&d[1..]), &sig));
                } else {
                    assert_eq!(
                        sign(kind, alg, &pkcs8, Input::Digest(&[0u8; 64])),
                        Err(CryptoError::Unsupported(
                            "Ed25519 and ML-DSA sign whole messages only"
                        ))
                    );
                }
            }
        }
    }

    #[test]
    fn keys_of_another_kind_are_refused() {
        let p256 = generate(KeyKind::EccNistP256).unwrap();
        assert_eq!(
            public_key_der(KeyKind::EccNistP384, &p256),
            Err(CryptoError::InvalidKey)
        );
        assert_eq!(
            public_key_der(KeyKind::Rsa2048, &p256),
            Err(CryptoError::InvalidKey)
        );
        let rsa = generate(KeyKind::Rsa2048).unwrap();
        assert_eq!(
            public_key_der(KeyKind::Rsa3072, &rsa),
            Err(CryptoError::InvalidKey)
        );
        assert!(public_key_der(KeyKind::Ed25519, b"not a key").is_err());
    }

    /// RFC 8032 section 7.1, TEST 1: the empty message under a fixed Ed25519 key.
    #[test]
    fn ed25519_rfc8032_vector() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&seed);
        let sig = sign(
            KeyKind::Ed25519,
            SigningAlgorithm::Ed25519Sha512,
            &pkcs8,
            Input::Message(b""),
        )
        .unwrap();
        assert_eq!(
            hex::encode(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let spki = public_key_der(KeyKind::Ed25519, &pkcs8).unwrap();
        assert_eq!(
            hex::encode(&spki),
            "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    /// RFC 5903 section 8.1 (256-bit random ECP group): the initiator's private key `i`, the
    /// responder's public key `gr`, and the shared x-coordinate `girx`.
    #[test]
    fn ecdh_rfc5903_vector() {
        let i = "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433";
        let gi = "04dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180\
                  5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3";
        let gr = "04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63\
                  56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab";
        // PKCS#8 (RFC 5915 ECPrivateKey inside) and SubjectPublicKeyInfo wrappings for P-256.
        let pkcs8 = hex::decode(format!(
            "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420{i}a144034200{gi}"
        ))
        .unwrap();
        let peer = hex::decode(format!(
            "3059301306072a8648ce3d020106082a8648ce3d030107034200{gr}"
        ))
        .unwrap();
        let shared = ecdh(KeyKind::EccNistP256, &pkcs8, &peer).unwrap();
        assert_eq!(
            hex::encode(&*shared),
            "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"
        );
        // The bare point is not an SPKI: KMS refuses it.
        let point = hex::decode(gr).unwrap();
        assert_eq!(
            ecdh(KeyKind::EccNistP256, &pkcs8, &point),
            Err(CryptoError::InvalidPublicKey)
        );
    }

    #[test]
    fn ecdh_agrees_both_ways_and_checks_the_peer() {
        for kind in [
            KeyKind::EccNistP256,
            KeyKind::EccNistP384,
            KeyKind::EccNistP521,
        ] {
            let a = generate(kind).unwrap();
            let b = generate(kind).unwrap();
            let a_pub = public_key_der(kind, &a).unwrap();
            let b_pub = public_key_der(kind, &b).unwrap();
            let ab = ecdh(kind, &a, &b_pub).unwrap();
            let ba = ecdh(kind, &b, &a_pub).unwrap();
            assert_eq!(*ab, *ba);
            assert!(!ab.is_empty());
            assert_eq!(ecdh(kind, &a, b"junk"), Err(CryptoError::InvalidPublicKey));
        }
        let p256 = generate(KeyKind::EccNistP256).unwrap();
        let p384 = generate(KeyKind::EccNistP384).unwrap();
        let p384_pub = public_key_der(KeyKind::EccNistP384, &p384).unwrap();
        assert_eq!(
            ecdh(KeyKind::EccNistP256, &p256, &p384_pub),
            Err(CryptoError::InvalidPublicKey)
        );
        let k1 = generate(KeyKind::EccSecgP256k1).unwrap();
        assert!(matches!(
            ecdh(KeyKind::EccSecgP256k1, &k1, &p384_pub),
            Err(CryptoError::Unsupported(_))
        ));
    }

    #[test]
    fn debug_of_input_shows_no_bytes() {
        let shown = format!("{:?}", Input::Message(b"top secret"));
        assert_eq!(shown, "Message(10 bytes)");
    }
}
