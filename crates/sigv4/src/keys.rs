//! Secrets and the signing keys derived from them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// An AWS secret access key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(Zeroizing::new(secret.into()))
    }

    /// The secret itself. Callers must not log it or keep copies that outlive this value.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Compares two secrets without revealing, through timing, where they first differ.
    pub fn ct_eq(&self, other: &SecretKey) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }

    /// A one-way digest that identifies the secret in the key cache, so that a rotated secret
    /// never meets a key derived from the old one while the secret itself stays out of the map.
    fn fingerprint(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"citadel-sigv4 signing-key cache v1\0");
        ctx.update(self.0.as_bytes());
        let mut out = [0u8; 32];
        copy_32(&mut out, ctx.finish().as_ref());
        out
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        SecretKey::new(secret)
    }
}

impl From<&str> for SecretKey {
    fn from(secret: &str) -> Self {
        SecretKey::new(secret)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(**redacted**)")
    }
}

/// Copies a SHA-256 sized output without the length assertion of `copy_from_slice`; SHA-256
/// and HMAC-SHA256 outputs are always exactly 32 bytes.
fn copy_32(out: &mut [u8; 32], input: &[u8]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o = *i;
    }
}

/// `kSigning`, the last key of the SigV4 derivation chain.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SigningKey([u8; 32]);

impl SigningKey {
    /// HMAC("AWS4" + secret, date) → region → service → "aws4_request".
    pub(crate) fn derive(secret: &SecretKey, date: &str, region: &str, service: &str) -> Self {
        let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.0.len()));
        seed.extend_from_slice(b"AWS4");
        seed.extend_from_slice(secret.0.as_bytes());
        let step = |key_bytes: &[u8], data: &str| -> Zeroizing<[u8; 32]> {
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
                data.as_bytes(),
            );
            let mut next = Zeroizing::new([0u8; 32]);
            copy_32(&mut next, tag.as_ref());
            next
        };
        let k_date = step(&seed, date);
        let k_region = step(k_date.as_ref(), region);
        let k_service = step(k_region.as_ref(), service);
        let k_signing = step(k_service.as_ref(), "aws4_request");
        SigningKey(*k_signing)
    }

    /// The lowercase hex HMAC-SHA256 of `string_to_sign` under this key: the signature.
    pub(crate) fn sign(&self, string_to_sign: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        hex::encode(hmac::sign(&key, string_to_sign.as_bytes()))
    }
}

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    access_key_id: String,
    secret_fingerprint: [u8; 32],
    date: String,
    region: String,
    service: String,
}

/// A bounded, thread-safe cache of derived signing keys.
///
/// Deriving a key costs four HMACs; a busy client signs thousands of requests a day with the
/// same key id, date, region and service, so the server keeps the result. Entries are keyed by
/// a fingerprint of the secret as well, so a changed secret derives a fresh key. When the cache
/// is full, keys for earlier dates go first; if that frees nothing, the cache starts over.
pub struct SigningKeyCache {
    entries: Mutex<HashMap<CacheKey, Arc<SigningKey>>>,
    capacity: usize,
}

impl SigningKeyCache {
    pub const DEFAULT_CAPACITY: usize = 10_000;

    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A cache holding at most `capacity` keys (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        SigningKeyCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every cached key (zeroizing it once no verification still uses it).
    pub fn clear(&self) {
        self.lock().clear();
    }

    // A panic while holding the lock leaves the map intact (every mutation is a single call),
    // so a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, HashMap<CacheKey, Arc<SigningKey>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn signing_key(
        &self,
        access_key_id: &str,
        secret: &SecretKey,
        date: &str,
        region: &str,
        service: &str,
    ) -> Arc<SigningKey> {
        let key = CacheKey {
            access_key_id: access_key_id.to_owned(),
            secret_fingerprint: secret.fingerprint(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        };
        if let Some(found) = self.lock().get(&key) {
            return Arc::clone(found);
        }
        // Derived outside the lock so a slow derivation never stalls other requests.
        let derived = Arc::new(SigningKey::derive(secret, date, region, service));
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|k, _| k.date.as_str() >= date);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        Arc::clone(entries.entry(key).or_insert(derived))
    }
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signing key of AWS's documentation example (secret
    // wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam).
    #[test]
    fn derivation_matches_the_documented_example() {
        let secret = SecretKey::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let key = SigningKey::derive(&secret, "20120215", "us-east-1", "iam");
        assert_eq!(
            hex::encode(key.0),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let secret = SecretKey::from("super-secret");
        assert_eq!(format!("{secret:?}"), "SecretKey(**redacted**)");
        assert!(secret.ct_eq(&SecretKey::from("super-secret".to_owned())));
        assert!(!secret.ct_eq(&SecretKey::from("super-secreT")));
    }

    #[test]
    fn cache_reuses_and_separates_keys() {
        let cache = SigningKeyCache::new();
        let a = SecretKey::from("a");
        let b = SecretKey::from("b");
        let k1 = cache.signing_key("AK", &a, "20240101", "us-east-1", "kms");
        let k2 = cache.signing_key("AK", &a, "20240101", "us-east-1", "kms");
        assert!(Arc::ptr_eq(&k1, &k2));
        let k3 = cache.signing_key("AK", &b, "20240101", "us-east-1", "kms");
        assert!(!Arc::ptr_eq(&k1, &k3));
        assert_ne!(k1.0, k3.0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn cache_stays_bounded_and_drops_old_dates_first() {
        let cache = SigningKeyCache::with_capacity(3);
        let s = SecretKey::from("s");
        cache.signing_key("AK", &s, "20240101", "r", "kms");
        cache.signing_key("AK", &s, "20240102", "r", "kms");
        cache.signing_key("AK", &s, "20240102", "r", "sts");
        cache.signing_key("AK", &s, "20240102", "r", "ssm");
        assert_eq!(cache.len(), 3);
        for i in 0..50 {
            cache.signing_key(&format!("AK{i}"), &s, "20240102", "r", "kms");
            assert!(cache.len() <= 3);
        }
        cache.clear();
        assert!(cache.is_empty());
    }
}
