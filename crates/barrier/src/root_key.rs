//! The root key: the one secret that unlocks the keyring.

use std::fmt;

use citadel_crypto::constant_time_eq;
use zeroize::Zeroizing;

use crate::{BarrierError, Result};

/// Length of a root key in bytes (an AES-256 key).
pub const ROOT_KEY_LEN: usize = 32;

/// The root key. Wiped from memory when dropped; `Debug` never shows it.
///
/// It only ever seals and opens the [`crate::Keyring`]; data is encrypted under keyring terms,
/// so rotating data keys never requires the root key to change.
///
/// The bytes live on the heap and are written there in place, so moving a `RootKey` moves a
/// pointer and leaves no unwiped copy of the key behind on the stack.
#[derive(Clone)]
pub struct RootKey(Box<Zeroizing<[u8; ROOT_KEY_LEN]>>);

impl RootKey {
    /// A fresh random root key from the system generator.
    pub fn generate() -> Result<Self> {
        let mut key = Box::new(Zeroizing::new([0u8; ROOT_KEY_LEN]));
        citadel_crypto::fill_random(key.as_mut_slice())?;
        Ok(Self(key))
    }

    /// Takes exactly [`ROOT_KEY_LEN`] bytes. The caller keeps responsibility for wiping `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != ROOT_KEY_LEN {
            return Err(BarrierError::Crypto(
                citadel_crypto::CryptoError::InvalidKeyLength {
                    expected: ROOT_KEY_LEN,
                    actual: bytes.len(),
                },
            ));
        }
        let mut key = Box::new(Zeroizing::new([0u8; ROOT_KEY_LEN]));
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key bytes, for sealing the keyring or writing the key file. Named loudly so every
    /// use is easy to find in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; ROOT_KEY_LEN] {
        &self.0
    }
}

impl PartialEq for RootKey {
    /// Constant-time, so comparing a candidate key leaks nothing through timing.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_slice(), other.0.as_slice())
    }
}

impl Eq for RootKey {}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_from_bytes_and_debug() {
        let a = RootKey::generate().unwrap();
        let b = RootKey::generate().unwrap();
        assert_ne!(a, b);
        let c = RootKey::from_bytes(a.expose_secret()).unwrap();
        assert_eq!(a, c);
        assert_eq!(format!("{a:?}"), "RootKey(<redacted>)");
        assert!(RootKey::from_bytes(&[0u8; 31]).is_err());
        assert!(RootKey::from_bytes(&[0u8; 33]).is_err());
    }
}
