//! AWS's key-spec table: for every `KeySpec`, the key usages it allows and the algorithms each
//! usage offers. CreateKey validates against it, DescribeKey reports from it, and every
//! cryptographic operation checks its algorithm with [`check_algorithm`].

use citadel_api::AwsError;

use crate::errors;
use crate::material::{Material, MaterialFormat};
use crate::names::PackedKeyId;

pub const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
pub const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
pub const SIGN_VERIFY: &str = "SIGN_VERIFY";
pub const GENERATE_VERIFY_MAC: &str = "GENERATE_VERIFY_MAC";
pub const KEY_AGREEMENT: &str = "KEY_AGREEMENT";

/// The algorithms one usage of a key spec offers.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub name: &'static str,
    pub algorithms: &'static [&'static str],
}

/// One row of the table.
#[derive(Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub usages: &'static [Usage],
    /// What the key's material is.
    pub material: MaterialFormat,
}

impl KeySpec {
    pub fn usage(&self, name: &str) -> Option<&'static Usage> {
        self.usages.iter().find(|u| u.name == name)
    }

    /// The algorithms a key of this spec and `usage` offers (empty for a usage it lacks).
    pub fn algorithms(&self, usage: &str) -> &'static [&'static str] {
        self.usage(usage).map_or(&[], |u| u.algorithms)
    }

    pub fn is_symmetric(&self) -> bool {
        self.name == SYMMETRIC_DEFAULT
    }

    pub fn is_hmac(&self) -> bool {
        self.material == MaterialFormat::Hmac
    }

    pub fn is_asymmetric(&self) -> bool {
        self.material == MaterialFormat::PrivateKey
    }
}

const RSA_ENCRYPTION: Usage = Usage {
    name: ENCRYPT_DECRYPT,
    algorithms: &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
};
const RSA_SIGNING: Usage = Usage {
    name: SIGN_VERIFY,
    algorithms: &[
        "RSASSA_PKCS1_V1_5_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_512",
        "RSASSA_PSS_SHA_256",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_512",
    ],
};
const ECDH: Usage = Usage {
    name: KEY_AGREEMENT,
    algorithms: &["ECDH"],
};
const ML_DSA: Usage = Usage {
    name: SIGN_VERIFY,
    algorithms: &["ML_DSA_SHAKE_256"],
};

/// Every key spec Citadel creates. `SM2` (China Regions only) is not among them.
///
/// `ECC_NIST_EDWARDS25519` offers `ED25519_SHA_512` only: AWS also lists `ED25519_PH_SHA_512`
/// (pre-hashed Ed25519ph), which aws-lc-rs does not provide.
pub static KEY_SPECS: &[KeySpec] = &[
    KeySpec {
        name: SYMMETRIC_DEFAULT,
        usages: &[Usage {
            name: ENCRYPT_DECRYPT,
            algorithms: &[SYMMETRIC_DEFAULT],
        }],
        material: MaterialFormat::Symmetric,
    },
    KeySpec {
        name: "RSA_2048",
        usages: &[RSA_ENCRYPTION, RSA_SIGNING],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "RSA_3072",
        usages: &[RSA_ENCRYPTION, RSA_SIGNING],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "RSA_4096",
        usages: &[RSA_ENCRYPTION, RSA_SIGNING],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ECC_NIST_P256",
        usages: &[
            Usage {
                name: SIGN_VERIFY,
                algorithms: &["ECDSA_SHA_256"],
            },
            ECDH,
        ],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ECC_NIST_P384",
        usages: &[
            Usage {
                name: SIGN_VERIFY,
                algorithms: &["ECDSA_SHA_384"],
            },
            ECDH,
        ],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ECC_NIST_P521",
        usages: &[
            Usage {
                name: SIGN_VERIFY,
                algorithms: &["ECDSA_SHA_512"],
            },
            ECDH,
        ],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ECC_SECG_P256K1",
        usages: &[Usage {
            name: SIGN_VERIFY,
            algorithms: &["ECDSA_SHA_256"],
        }],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ECC_NIST_EDWARDS25519",
        usages: &[Usage {
            name: SIGN_VERIFY,
            algorithms: &["ED25519_SHA_512"],
        }],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ML_DSA_44",
        usages: &[ML_DSA],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ML_DSA_65",
        usages: &[ML_DSA],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "ML_DSA_87",
        usages: &[ML_DSA],
        material: MaterialFormat::PrivateKey,
    },
    KeySpec {
        name: "HMAC_224",
        usages: &[Usage {
            name: GENERATE_VERIFY_MAC,
            algorithms: &["HMAC_SHA_224"],
        }],
        material: MaterialFormat::Hmac,
    },
    KeySpec {
        name: "HMAC_256",
        usages: &[Usage {
            name: GENERATE_VERIFY_MAC,
            algorithms: &["HMAC_SHA_256"],
        }],
        material: MaterialFormat::Hmac,
    },
    KeySpec {
        name: "HMAC_384",
        usages: &[Usage {
            name: GENERATE_VERIFY_MAC,
            algorithms: &["HMAC_SHA_384"],
        }],
        material: MaterialFormat::Hmac,
    },
    KeySpec {
        name: "HMAC_512",
        usages: &[Usage {
            name: GENERATE_VERIFY_MAC,
            algorithms: &["HMAC_SHA_512"],
        }],
        material: MaterialFormat::Hmac,
    },
];

/// The row of `name`; `None` for specs Citadel does not create (`SM2`).
pub fn key_spec(name: &str) -> Option<&'static KeySpec> {
    KEY_SPECS.iter().find(|s| s.name == name)
}

/// The usage a CreateKey without `KeyUsage` gets: only symmetric encryption keys have a default.
pub fn default_usage(spec: &KeySpec) -> Result<&'static str, AwsError> {
    if spec.is_symmetric() {
        Ok(ENCRYPT_DECRYPT)
    } else {
        Err(AwsError::validation(
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        ))
    }
}

/// Fresh material for a new key of `spec` with id `key_id`.
pub fn generate_material(spec: &KeySpec, key_id: &PackedKeyId) -> Result<Material, AwsError> {
    match spec.material {
        MaterialFormat::Symmetric => Material::generate(key_id).map_err(|e| errors::crypto(&e)),
        // AWS generates an HMAC key as long as the hash output: HMAC_224 → 28 bytes … 512 → 64.
        MaterialFormat::Hmac => {
            let len = hmac_algorithm(spec)
                .ok_or_else(|| {
                    errors::unsupported(format!("KeySpec {} has no MAC algorithm.", spec.name))
                })?
                .tag_len();
            let secret = citadel_crypto::random_bytes(len).map_err(|e| errors::crypto(&e))?;
            Ok(Material::new(key_id, MaterialFormat::Hmac, secret))
        }
        MaterialFormat::PrivateKey => {
            let kind = asymmetric_kind(spec)?;
            let pkcs8 =
                citadel_crypto::asymmetric::generate(kind).map_err(|e| errors::crypto(&e))?;
            Ok(Material::new(key_id, MaterialFormat::PrivateKey, pkcs8))
        }
    }
}

/// The asymmetric key kind of an asymmetric key spec.
pub fn asymmetric_kind(spec: &KeySpec) -> Result<citadel_crypto::asymmetric::KeyKind, AwsError> {
    citadel_crypto::asymmetric::KeyKind::from_key_spec(spec.name).ok_or_else(|| {
        errors::unsupported(format!(
            "Citadel does not support asymmetric KeySpec {}.",
            spec.name
        ))
    })
}

/// The one MAC algorithm of an HMAC key spec (`None` for other specs).
pub fn hmac_algorithm(spec: &KeySpec) -> Option<citadel_crypto::mac::MacAlgorithm> {
    spec.algorithms(GENERATE_VERIFY_MAC)
        .first()
        .and_then(|a| citadel_crypto::mac::MacAlgorithm::from_name(a))
}

/// `Ok` when `algorithm` is one a key of `spec` and `usage` offers, else AWS's
/// `InvalidKeyUsageException: Algorithm <alg> is incompatible with key spec <spec>.`
pub fn check_algorithm(spec: &KeySpec, usage: &str, algorithm: &str) -> Result<(), AwsError> {
    if spec.algorithms(usage).contains(&algorithm) {
        Ok(())
    } else {
        Err(AwsError::new(
            400,
            "InvalidKeyUsageException",
            format!(
                "Algorithm {algorithm} is incompatible with key spec {}.",
                spec.name
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_has_a_usage_with_algorithms() {
        for s in KEY_SPECS {
            assert!(!s.usages.is_empty(), "{}", s.name);
            for u in s.usages {
                assert!(!u.algorithms.is_empty(), "{} {}", s.name, u.name);
            }
        }
    }

    #[test]
    fn table_matches_aws() {
        let rsa = key_spec("RSA_3072").unwrap();
        assert_eq!(rsa.algorithms(SIGN_VERIFY).len(), 6);
        assert_eq!(
            rsa.algorithms(ENCRYPT_DECRYPT),
            ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
        );
        assert!(rsa.usage(KEY_AGREEMENT).is_none());
        assert_eq!(
            key_spec("HMAC_384")
                .unwrap()
                .algorithms(GENERATE_VERIFY_MAC),
            ["HMAC_SHA_384"]
        );
        assert_eq!(
            key_spec("ECC_NIST_P521").unwrap().algorithms(SIGN_VERIFY),
            ["ECDSA_SHA_512"]
        );
        assert!(
            key_spec("ECC_SECG_P256K1")
                .unwrap()
                .usage(KEY_AGREEMENT)
                .is_none()
        );
        assert!(key_spec("SM2").is_none());
        assert!(default_usage(rsa).is_err());
        assert_eq!(
            default_usage(key_spec(SYMMETRIC_DEFAULT).unwrap()).unwrap(),
            ENCRYPT_DECRYPT
        );
    }

    #[test]
    fn wrong_algorithm_gets_aws_message() {
        let e = check_algorithm(
            key_spec("HMAC_224").unwrap(),
            GENERATE_VERIFY_MAC,
            "HMAC_SHA_256",
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidKeyUsageException");
        assert_eq!(
            e.message.as_deref(),
            Some("Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.")
        );
    }
}
