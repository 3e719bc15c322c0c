//! Randomness, always from the operating-system-seeded generator of AWS-LC.

use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// Fills `dest` with cryptographically secure random bytes.
pub fn fill_random(dest: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Random)
}

/// Returns `n` cryptographically secure random bytes in a container that is wiped on drop,
/// because callers mostly use random bytes as key material.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    fill_random(out.as_mut_slice())?;
    Ok(out)
}

/// Returns `N` cryptographically secure random bytes as a fixed-size array wiped on drop.
pub fn random_array<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    fill_random(out.as_mut_slice())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_have_requested_length_and_differ() {
        let a = random_bytes(32).unwrap();
        let b = random_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        // Two equal 256-bit random strings would mean a broken generator.
        assert_ne!(*a, *b);
        assert!(random_bytes(0).unwrap().is_empty());
    }

    #[test]
    fn random_array_is_filled() {
        let a: Zeroizing<[u8; 32]> = random_array().unwrap();
        let b: Zeroizing<[u8; 32]> = random_array().unwrap();
        assert_ne!(*a, *b);
    }
}
