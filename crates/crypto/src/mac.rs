//! HMAC with the hash functions KMS HMAC keys offer, named as KMS names them
//! (`MacAlgorithmSpec`: `HMAC_SHA_224`, `HMAC_SHA_256`, `HMAC_SHA_384`, `HMAC_SHA_512`).

use aws_lc_rs::hmac;

/// One of the HMAC algorithms of KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl MacAlgorithm {
    /// Every algorithm, shortest tag first.
    pub const ALL: [MacAlgorithm; 4] = [
        MacAlgorithm::HmacSha224,
        MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512,
    ];

    /// The algorithm a KMS `MacAlgorithmSpec` names.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The KMS `MacAlgorithmSpec` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MacAlgorithm::HmacSha224 => "HMAC_SHA_224",
            MacAlgorithm::HmacSha256 => "HMAC_SHA_256",
            MacAlgorithm::HmacSha384 => "HMAC_SHA_384",
            MacAlgorithm::HmacSha512 => "HMAC_SHA_512",
        }
    }

    /// Length of the tag, which is also the key length KMS generates for the matching
    /// `HMAC_<bits>` key spec.
    #[must_use]
    pub fn tag_len(self) -> usize {
        match self {
            MacAlgorithm::HmacSha224 => 28,
            MacAlgorithm::HmacSha256 => 32,
            MacAlgorithm::HmacSha384 => 48,
            MacAlgorithm::HmacSha512 => 64,
        }
    }

    fn lc(self) -> hmac::Algorithm {
        match self {
            MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
            MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
            MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
            MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }
}

/// The HMAC of `message` under `key`. The tag is public by design, so it is not zeroized.
#[must_use]
pub fn generate(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(algorithm.lc(), key);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// Whether `tag` is the HMAC of `message` under `key`, compared in constant time (a tag of the
/// wrong length is simply not valid).
#[must_use]
pub fn verify(algorithm: MacAlgorithm, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(algorithm.lc(), key);
    hmac::verify(&key, message, tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 4231 test cases 1, 2 and 6 for every hash.
    #[test]
    fn rfc4231_vectors() {
        let cases: [(Vec<u8>, &[u8], [&str; 4]); 3] = [
            (
                vec![0x0b; 20],
                b"Hi There",
                [
                    "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?",
                [
                    "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                [
                    "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
        ];
        for (key, data, tags) in &cases {
            for (alg, tag) in MacAlgorithm::ALL.into_iter().zip(tags) {
                let tag = h(tag);
                assert_eq!(generate(alg, key, data), tag, "{}", alg.name());
                assert_eq!(tag.len(), alg.tag_len());
                assert!(verify(alg, key, data, &tag));
            }
        }
    }

    #[test]
    fn verify_rejects_altered_or_truncated_tags() {
        for alg in MacAlgorithm::ALL {
            let key = [7u8; 32];
            let mut tag = generate(alg, &key, b"message");
            assert!(!verify(alg, &key, b"messagf", &tag));
            assert!(!verify(alg, &key, b"message", &tag[..tag.len() - 1]));
            assert!(!verify(alg, &key, b"message", &[]));
            tag[0] ^= 1;
            assert!(!verify(alg, &key, b"message", &tag));
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in MacAlgorithm::ALL {
            assert_eq!(MacAlgorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(MacAlgorithm::from_name("HMAC_SHA_1"), None);
    }
}
