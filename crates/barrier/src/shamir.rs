//! Shamir secret sharing of the root key, for operator unseal.
//!
//! The arithmetic (GF(256) polynomials, Lagrange interpolation) comes from the audited
//! `vsss-rs` crate; this module only validates parameters, supplies randomness from aws-lc-rs and
//! encodes shares as printable strings.
//!
//! # Share format
//!
//! A share is standard base64 (with padding) of `index (1 byte, 1..=255) ‖ 32 share bytes`,
//! i.e. 44 printable characters. Surrounding whitespace is ignored when parsing.
//!
//! Shares carry no integrity of their own: a mistyped share that still decodes combines into a
//! wrong key. That is caught where it matters, by the keyring's AEAD tag at unseal.
//!
//! # Parameters
//!
//! `1 <= threshold <= shares <= 255`, and `threshold >= 2` whenever `shares >= 2` (with a
//! threshold of 1 every share would simply be the root key, which defeats splitting it).
//! `shares = threshold = 1` is allowed: the single share is then the root key itself (the
//! degree-0 polynomial), which is what a one-operator deployment wants.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vsss_rs::Gf256;
use zeroize::Zeroizing;

use crate::{BarrierError, ROOT_KEY_LEN, Result, RootKey};

/// Decoded length of a share: the index byte and one byte per root key byte.
const SHARE_LEN: usize = 1 + ROOT_KEY_LEN;

/// Randomness for `vsss-rs`, drawn from aws-lc-rs.
///
/// `rand_core::CryptoRng` demands an infallible generator, but the system generator can fail.
/// Instead of panicking or inventing bytes we remember the failure and zero the output; the
/// caller checks [`AwsLcRng::failed`] after the split and discards everything it produced.
struct AwsLcRng {
    failed: bool,
}

impl AwsLcRng {
    fn fill(&mut self, dst: &mut [u8]) {
        if citadel_crypto::fill_random(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
    }
}

impl rand_core::TryRng for AwsLcRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for AwsLcRng {}

/// Checks Shamir parameters (see the module documentation for the rules).
pub fn validate_params(shares: u8, threshold: u8) -> Result<()> {
    if threshold == 0 || shares == 0 {
        return Err(BarrierError::InvalidShamirParams(
            "shares and threshold must be at least 1".into(),
        ));
    }
    if threshold > shares {
        return Err(BarrierError::InvalidShamirParams(format!(
            "threshold {threshold} is larger than the number of shares {shares}"
        )));
    }
    if shares >= 2 && threshold < 2 {
        return Err(BarrierError::InvalidShamirParams(
            "threshold must be at least 2 when there are 2 or more shares".into(),
        ));
    }
    Ok(())
}

/// One parsed unseal share. `Debug` shows only the index.
///
/// Boxed so that collecting shares (moves, vector growth) never leaves unwiped copies behind.
#[derive(Clone)]
pub struct UnsealShare {
    bytes: Box<Zeroizing<[u8; SHARE_LEN]>>,
}

impl UnsealShare {
    /// Parses the printable form. Errors never echo the input.
    pub fn parse(s: &str) -> Result<Self> {
        let decoded = Zeroizing::new(STANDARD.decode(s.trim()).map_err(|_| {
            BarrierError::InvalidShare("not valid base64 (expected 44 characters)".into())
        })?);
        if decoded.len() != SHARE_LEN {
            return Err(BarrierError::InvalidShare(format!(
                "decodes to {} bytes, expected {SHARE_LEN}",
                decoded.len()
            )));
        }
        let mut bytes = Box::new(Zeroizing::new([0u8; SHARE_LEN]));
        bytes.copy_from_slice(&decoded);
        let share = Self { bytes };
        if share.index() == 0 {
            return Err(BarrierError::InvalidShare(
                "share index 0 is invalid".into(),
            ));
        }
        Ok(share)
    }

    /// The share's x-coordinate (1..=255). Distinct shares of one split have distinct indexes.
    #[must_use]
    pub fn index(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(0)
    }

    /// The printable form (see the module documentation).
    #[must_use]
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_slice()))
    }

    fn y(&self) -> &[u8] {
        self.bytes.get(1..).unwrap_or(&[])
    }
}

impl fmt::Debug for UnsealShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnsealShare(index {}, <redacted>)", self.index())
    }
}

/// Splits the root key into `shares` printable shares, any `threshold` of which recombine it.
///
/// The returned strings are wiped from memory when the returned vector is dropped; show them to
/// the operator once and drop them.
pub fn split(root: &RootKey, shares: u8, threshold: u8) -> Result<Zeroizing<Vec<String>>> {
    validate_params(shares, threshold)?;
    if shares == 1 {
        // Degree-0 polynomial: the only share is the key itself at x = 1.
        let mut bytes = Box::new(Zeroizing::new([0u8; SHARE_LEN]));
        if let Some((first, rest)) = bytes.split_first_mut() {
            *first = 1;
            rest.copy_from_slice(root.expose_secret());
        }
        let share = UnsealShare { bytes };
        return Ok(Zeroizing::new(vec![share.encode().to_string()]));
    }
    let mut rng = AwsLcRng { failed: false };
    let raw = Gf256::split_bytes(
        usize::from(threshold),
        usize::from(shares),
        root.expose_secret(),
        &mut rng,
    )
    .map_err(|e| BarrierError::InvalidShamirParams(format!("secret sharing failed: {e:?}")))?;
    // Wrap at once so the raw shares are wiped on every path out of this function.
    let raw = Zeroizing::new(raw);
    if rng.failed {
        return Err(BarrierError::Crypto(citadel_crypto::CryptoError::Random));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(raw.len()));
    for share in raw.iter() {
        if share.len() != SHARE_LEN {
            return Err(BarrierError::InvalidShamirParams(
                "secret sharing produced a share of unexpected length".into(),
            ));
        }
        out.push(STANDARD.encode(share));
    }
    Ok(out)
}

/// Recombines a root key from printable shares. See [`combine_shares`].
pub fn combine<S: AsRef<str>>(shares: &[S]) -> Result<RootKey> {
    let parsed = shares
        .iter()
        .map(|s| UnsealShare::parse(s.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    combine_shares(&parsed)
}

/// Recombines a root key from parsed shares.
///
/// Rejects an empty set and repeated indexes. It cannot know whether the shares belong together
/// or reach the threshold: a wrong set yields a wrong key, which the keyring AEAD then refuses.
/// A single share is taken as a `1 of 1` split.
pub fn combine_shares(shares: &[UnsealShare]) -> Result<RootKey> {
    let mut seen = BTreeSet::new();
    for share in shares {
        if !seen.insert(share.index()) {
            return Err(BarrierError::InvalidShare(format!(
                "share {} was given more than once",
                share.index()
            )));
        }
    }
    match shares {
        [] => Err(BarrierError::InvalidShare("no shares given".into())),
        [only] => RootKey::from_bytes(only.y()),
        _ => {
            let raw: Zeroizing<Vec<Vec<u8>>> =
                Zeroizing::new(shares.iter().map(|s| s.bytes.to_vec()).collect());
            let secret = Zeroizing::new(
                Gf256::combine_bytes(raw.as_slice())
                    .map_err(|e| BarrierError::InvalidShare(format!("cannot combine: {e:?}")))?,
            );
            RootKey::from_bytes(&secret)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_validated() {
        assert!(validate_params(1, 1).is_ok());
        assert!(validate_params(2, 2).is_ok());
        assert!(validate_params(5, 3).is_ok());
        assert!(validate_params(255, 255).is_ok());
        assert!(validate_params(0, 0).is_err());
        assert!(validate_params(3, 0).is_err());
        assert!(validate_params(3, 4).is_err());
        assert!(validate_params(3, 1).is_err());
    }

    #[test]
    fn any_threshold_subset_recombines() {
        let root = RootKey::generate().unwrap();
        let shares = split(&root, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        for s in shares.iter() {
            assert_eq!(s.len(), 44);
        }
        for a in 0..5 {
            for b in (a + 1)..5 {
                for c in (b + 1)..5 {
                    let subset = [&shares[a], &shares[b], &shares[c]];
                    assert_eq!(combine(&subset).unwrap(), root, "{a}{b}{c}");
                }
            }
        }
        // All five also work; two give some other key (caught later by the keyring AEAD).
        assert_eq!(combine(&shares).unwrap(), root);
        assert_ne!(combine(&shares[..2]).unwrap(), root);
    }

    #[test]
    fn one_of_one_and_max_shares() {
        let root = RootKey::generate().unwrap();
        let one = split(&root, 1, 1).unwrap();
        assert_eq!(combine(&one).unwrap(), root);
        let many = split(&root, 255, 2).unwrap();
        assert_eq!(combine(&[&many[0], &many[254]]).unwrap(), root);
    }

    #[test]
    fn malformed_and_duplicate_shares_are_rejected() {
        let root = RootKey::generate().unwrap();
        let shares = split(&root, 3, 2).unwrap();
        let dup = combine(&[&shares[0], &shares[0]]).unwrap_err();
        assert!(matches!(dup, BarrierError::InvalidShare(_)), "{dup}");
        assert!(combine::<&str>(&[]).is_err());
        for bad in ["", "not base64!", "AAAA", &STANDARD.encode([0u8; 33])] {
            let err = UnsealShare::parse(bad).unwrap_err();
            assert!(matches!(err, BarrierError::InvalidShare(_)), "{err}");
            assert!(!err.to_string().contains(bad) || bad.is_empty());
        }
        // Whitespace around a share (copy and paste) is fine.
        let padded = format!("  {}\n", shares[1]);
        assert_eq!(UnsealShare::parse(&padded).unwrap().index(), 2);
        // A tampered share still combines, into a different key.
        let mut raw = STANDARD.decode(&shares[1]).unwrap();
        raw[5] ^= 1;
        let tampered = STANDARD.encode(raw);
        assert_ne!(combine(&[&shares[0], &tampered]).unwrap(), root);
    }

    #[test]
    fn debug_is_redacted() {
        let root = RootKey::generate().unwrap();
        let shares = split(&root, 2, 2).unwrap();
        let s = UnsealShare::parse(&shares[0]).unwrap();
        assert_eq!(format!("{s:?}"), "UnsealShare(index 1, <redacted>)");
    }
}
