//! Hashing, MACs, key derivation and constant-time comparison.

use aws_lc_rs::{constant_time, digest, hkdf, hmac};
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// Length of a SHA-256 digest and of an HMAC-SHA256 tag, in bytes.
pub const SHA256_LEN: usize = 32;

/// Copies a digest-sized slice into an array without a panicking path. aws-lc-rs guarantees the
/// length for SHA-256, so the zip always covers all 32 bytes.
fn to_array(bytes: &[u8]) -> [u8; SHA256_LEN] {
    let mut out = [0u8; SHA256_LEN];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    to_array(digest::digest(&digest::SHA256, data).as_ref())
}

/// SHA-256 computed incrementally, for data too large to hold in memory at once (backup files).
#[derive(Clone)]
pub struct Sha256(digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

impl Sha256 {
    /// A hash over no data yet.
    #[must_use]
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finish(self) -> [u8; SHA256_LEN] {
        to_array(self.0.finish().as_ref())
    }
}

/// HMAC-SHA256 of `data` under `key`.
///
/// The tag is not wrapped in `Zeroizing`: a MAC tag is public by design. Callers that use HMAC as
/// a key derivation step (SigV4 signing keys) should wrap the result themselves.
#[must_use]
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; SHA256_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    to_array(hmac::sign(&key, data).as_ref())
}

/// Verifies an HMAC-SHA256 `tag` over `data` in constant time.
#[must_use]
pub fn hmac_sha256_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, data, tag).is_ok()
}

/// Compares two byte strings in time independent of their contents (but not of their lengths,
/// which are treated as public). Use it for every comparison that involves a secret or a MAC.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// The output length wanted from HKDF-Expand; aws-lc-rs asks for it through a trait.
struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` from `ikm`, then expand `len` bytes bound to
/// `info`. `len` must be at most 255 * 32 bytes.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk
        .expand(&info, OutputLen(len))
        .map_err(|_| CryptoError::InvalidOutputLength(len))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(out.as_mut_slice())
        .map_err(|_| CryptoError::InvalidOutputLength(len))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // FIPS 180-2 appendix B examples.
    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha256(b"abc").to_vec(),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha256(b"").to_vec(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn incremental_sha256_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let mut h = Sha256::new();
        for chunk in data.chunks(777) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), sha256(&data));
        assert_eq!(Sha256::default().finish(), sha256(b""));
    }

    // RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (case 5 is a truncated tag, which we never use).
    #[test]
    fn hmac_sha256_rfc4231() {
        let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                (1u8..=25).collect(),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            let tag = hmac_sha256(&key, &data);
            assert_eq!(tag.to_vec(), h(expected));
            assert!(hmac_sha256_verify(&key, &data, &tag));
            let mut bad = tag;
            bad[31] ^= 1;
            assert!(!hmac_sha256_verify(&key, &data, &bad));
            assert!(!hmac_sha256_verify(&key, &data, &tag[..31]));
        }
    }

    // RFC 5869 test case 1.
    #[test]
    fn hkdf_sha256_rfc5869() {
        let okm = hkdf_sha256(
            &h("000102030405060708090a0b0c"),
            &[0x0b; 22],
            &h("f0f1f2f3f4f5f6f7f8f9"),
            42,
        )
        .unwrap();
        assert_eq!(
            okm.to_vec(),
            h(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
        assert_eq!(
            hkdf_sha256(b"s", b"k", b"i", 255 * 32 + 1).unwrap_err(),
            CryptoError::InvalidOutputLength(255 * 32 + 1)
        );
    }

    #[test]
    fn constant_time_eq_semantics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
