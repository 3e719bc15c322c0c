//! AES-256-GCM with the framing every Citadel ciphertext uses: `nonce (12) ‖ ciphertext ‖ tag (16)`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, Result, random::fill_random};

/// Length of an AES-256 key in bytes.
pub const AES_256_GCM_KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes.
pub const AES_GCM_NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag in bytes.
pub const AES_GCM_TAG_LEN: usize = 16;

/// An AES-256-GCM key with its key schedule already computed.
///
/// Building the key schedule once and reusing it is what keeps the hot path cheap, so callers
/// should keep an `Aes256GcmKey` rather than raw key bytes. The raw bytes are not retained here;
/// the expanded schedule lives inside AWS-LC, whose allocator cleanses memory when it is freed.
///
/// `LessSafeKey` is used (rather than a sealing key bound to a nonce sequence) because nonces are
/// random and travel with the ciphertext; [`Aes256GcmKey::seal`] is the only way to encrypt
/// without choosing a nonce yourself.
pub struct Aes256GcmKey {
    key: LessSafeKey,
}

impl fmt::Debug for Aes256GcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes256GcmKey(<redacted>)")
    }
}

impl Aes256GcmKey {
    /// Builds a key from exactly 32 bytes of key material.
    pub fn new(key_bytes: &[u8]) -> Result<Self> {
        if key_bytes.len() != AES_256_GCM_KEY_LEN {
            return Err(CryptoError::InvalidKeyLength {
                expected: AES_256_GCM_KEY_LEN,
                actual: key_bytes.len(),
            });
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key_bytes).map_err(|_| {
            CryptoError::InvalidKeyLength {
                expected: AES_256_GCM_KEY_LEN,
                actual: key_bytes.len(),
            }
        })?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce and returns
    /// `nonce ‖ ciphertext ‖ tag`.
    ///
    /// Random 96-bit nonces are safe for up to about 2^32 messages per key; callers that encrypt
    /// more than that under one key must rotate.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_append(aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`Aes256GcmKey::seal`] but appends `nonce ‖ ciphertext ‖ tag` to `out`, so a caller
    /// can put its own header in front without a second copy of the ciphertext.
    pub fn seal_append(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut nonce = [0u8; AES_GCM_NONCE_LEN];
        fill_random(&mut nonce)?;
        self.seal_into(nonce, aad, plaintext, out)
    }

    /// Encrypts under a caller-chosen nonce and returns `nonce ‖ ciphertext ‖ tag`.
    ///
    /// The caller must guarantee the nonce is never reused with this key: a repeated nonce
    /// reveals the XOR of plaintexts and the authentication key. Exists for known-answer tests
    /// and for protocols that dictate the nonce; everything else uses [`Aes256GcmKey::seal`].
    pub fn seal_with_nonce(
        &self,
        nonce: [u8; AES_GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_into(nonce, aad, plaintext, &mut out)?;
        Ok(out)
    }

    fn seal_into(
        &self,
        nonce: [u8; AES_GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        // Reserve everything up front so the plaintext copied into `out` is never left behind in
        // a reallocated (and freed, unwiped) buffer.
        out.reserve(AES_GCM_NONCE_LEN + plaintext.len() + AES_GCM_TAG_LEN);
        let header_end = out.len();
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let sealed = match out.get_mut(start..) {
            Some(in_out) => self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    in_out,
                )
                .ok(),
            None => None,
        };
        match sealed {
            Some(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(())
            }
            None => {
                // Never hand back a buffer that still holds the plaintext.
                if let Some(tail) = out.get_mut(header_end..) {
                    tail.zeroize();
                }
                out.truncate(header_end);
                Err(CryptoError::Seal)
            }
        }
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag` produced by [`Aes256GcmKey::seal`] with the same
    /// `aad`. Any alteration, a different AAD or a different key yields [`CryptoError::Open`].
    pub fn open(&self, aad: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if data.len() < AES_GCM_NONCE_LEN + AES_GCM_TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = data.split_at(AES_GCM_NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        buf.truncate(plaintext_len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn nonce(s: &str) -> [u8; 12] {
        h(s).try_into().unwrap()
    }

    // Known-answer tests from the GCM specification (McGrew & Viega, "The Galois/Counter Mode of
    // Operation", test cases 13-16, the AES-256 ones), which NIST's GCM validation also uses.
    #[test]
    fn aes256gcm_known_answers() {
        struct Case {
            key: &'static str,
            iv: &'static str,
            pt: &'static str,
            aad: &'static str,
            ct: &'static str,
            tag: &'static str,
        }
        let p15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                   1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
        let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                   8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
        let key15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
        let cases = [
            Case {
                key: "0000000000000000000000000000000000000000000000000000000000000000",
                iv: "000000000000000000000000",
                pt: "",
                aad: "",
                ct: "",
                tag: "530f8afbc74536b9a963b4f1c4cb738b",
            },
            Case {
                key: "0000000000000000000000000000000000000000000000000000000000000000",
                iv: "000000000000000000000000",
                pt: "00000000000000000000000000000000",
                aad: "",
                ct: "cea7403d4d606b6e074ec5d3baf39d18",
                tag: "d0d1c8a799996bf0265b98b5d48ab919",
            },
            Case {
                key: key15,
                iv: "cafebabefacedbaddecaf888",
                pt: p15,
                aad: "",
                ct: c15,
                tag: "b094dac5d93471bdec1a502270e3cc6c",
            },
            Case {
                key: key15,
                iv: "cafebabefacedbaddecaf888",
                pt: &p15[..120],
                aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                ct: &c15[..120],
                tag: "76fc6ece0f4e1768cddf8853bb2d551b",
            },
        ];
        for c in cases {
            let key = Aes256GcmKey::new(&h(c.key)).unwrap();
            let sealed = key
                .seal_with_nonce(nonce(c.iv), &h(c.aad), &h(c.pt))
                .unwrap();
            let expected = [h(c.iv), h(c.ct), h(c.tag)].concat();
            assert_eq!(hex::encode(&sealed), hex::encode(&expected));
            let opened = key.open(&h(c.aad), &sealed).unwrap();
            assert_eq!(*opened, h(c.pt));
        }
    }

    #[test]
    fn seal_open_round_trip_with_random_nonces() {
        let key = Aes256GcmKey::new(&[7u8; 32]).unwrap();
        let a = key.seal(b"ctx", b"hello").unwrap();
        let b = key.seal(b"ctx", b"hello").unwrap();
        assert_eq!(a.len(), 12 + 5 + 16);
        assert_ne!(a, b, "nonces must be fresh per message");
        assert_eq!(&*key.open(b"ctx", &a).unwrap(), b"hello");
        assert_eq!(&*key.open(b"ctx", &b).unwrap(), b"hello");
    }

    #[test]
    fn seal_append_keeps_prefix() {
        let key = Aes256GcmKey::new(&[7u8; 32]).unwrap();
        let mut out = b"HDR".to_vec();
        key.seal_append(b"", b"data", &mut out).unwrap();
        assert_eq!(&out[..3], b"HDR");
        assert_eq!(&*key.open(b"", &out[3..]).unwrap(), b"data");
    }

    #[test]
    fn tampering_wrong_aad_and_wrong_key_fail() {
        let key = Aes256GcmKey::new(&[1u8; 32]).unwrap();
        let other = Aes256GcmKey::new(&[2u8; 32]).unwrap();
        let sealed = key.seal(b"aad", b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(key.open(b"aad", &t).unwrap_err(), CryptoError::Open);
        }
        assert_eq!(key.open(b"aae", &sealed).unwrap_err(), CryptoError::Open);
        assert_eq!(other.open(b"aad", &sealed).unwrap_err(), CryptoError::Open);
        assert_eq!(
            key.open(b"aad", &sealed[..27]).unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(key.open(b"aad", &[]).unwrap_err(), CryptoError::Open);
    }

    #[test]
    fn key_length_is_checked_and_debug_is_redacted() {
        assert_eq!(
            Aes256GcmKey::new(&[0u8; 16]).unwrap_err(),
            CryptoError::InvalidKeyLength {
                expected: 32,
                actual: 16
            }
        );
        let key = Aes256GcmKey::new(&[0x42u8; 32]).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains("42"));
    }
}
