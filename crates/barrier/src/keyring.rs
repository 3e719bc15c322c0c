//! The keyring (data keys by term) and the envelope every stored value is sealed in.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use citadel_crypto::{AES_256_GCM_KEY_LEN, AES_GCM_NONCE_LEN, AES_GCM_TAG_LEN, Aes256GcmKey};
use zeroize::Zeroizing;

use crate::{BarrierError, Result, RootKey};

/// Version byte of the value envelope. Bumped if the layout or the AAD construction changes, so
/// old values stay readable by dispatching on it.
pub const ENVELOPE_VERSION: u8 = 0x01;

/// Length of the envelope header: version byte and big-endian term.
const ENVELOPE_HEADER_LEN: usize = 1 + 4;

/// Bytes an envelope adds to a plaintext: header, nonce and tag.
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_HEADER_LEN + AES_GCM_NONCE_LEN + AES_GCM_TAG_LEN;

/// Version byte in front of the sealed keyring, bound into its AAD.
const SEALED_KEYRING_VERSION: u8 = 0x01;

/// AAD of the sealed keyring. A fixed, distinct context so that no other ciphertext made under
/// the root key could ever be mistaken for a keyring.
const KEYRING_AAD: &[u8] = b"citadel/keyring";

/// Magic and format of the serialized (plaintext) keyring.
const KEYRING_MAGIC: &[u8; 4] = b"CKR\x01";

/// Serialized size of one term: term (4), created-at (8), key (32).
const TERM_RECORD_LEN: usize = 4 + 8 + AES_256_GCM_KEY_LEN;

/// Upper bound on terms accepted when parsing, so a malformed count cannot drive a huge
/// allocation. Far above any realistic rotation history.
const MAX_TERMS: usize = 1 << 20;

/// Heap-allocated, wiped-on-drop data key bytes.
type KeyBytes = Box<Zeroizing<[u8; AES_256_GCM_KEY_LEN]>>;

fn zeroed_key() -> KeyBytes {
    Box::new(Zeroizing::new([0u8; AES_256_GCM_KEY_LEN]))
}

/// One data key of the keyring, with its AES-GCM key schedule computed once.
pub struct DataKey {
    term: u32,
    created_at: u64,
    /// Kept (wiped on drop) only so the keyring can be serialized again when it is re-sealed.
    /// Boxed and filled in place so the key is never copied around by moves.
    key_bytes: KeyBytes,
    aead: Aes256GcmKey,
}

impl DataKey {
    fn new(term: u32, created_at: u64, key_bytes: KeyBytes) -> Result<Self> {
        let aead = Aes256GcmKey::new(key_bytes.as_slice())?;
        Ok(Self {
            term,
            created_at,
            key_bytes,
            aead,
        })
    }

    /// The term this key belongs to.
    #[must_use]
    pub fn term(&self) -> u32 {
        self.term
    }

    /// When the term was created, in seconds since the Unix epoch (for rotation policies).
    #[must_use]
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("term", &self.term)
            .field("created_at", &self.created_at)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The keyring: every data-key term ever created, and which one encrypts new values.
///
/// Cloning is cheap (data keys are shared), which is what lets a store build a rotated keyring
/// next to the live one and swap it in atomically.
#[derive(Clone)]
pub struct Keyring {
    terms: BTreeMap<u32, Arc<DataKey>>,
    active: Arc<DataKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .field("active_term", &self.active.term)
            .finish()
    }
}

fn now_unix() -> u64 {
    // A clock before 1970 is a misconfiguration, not a reason to fail sealing; 0 marks it.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fresh_key(term: u32) -> Result<Arc<DataKey>> {
    let mut bytes = zeroed_key();
    citadel_crypto::fill_random(bytes.as_mut_slice())?;
    Ok(Arc::new(DataKey::new(term, now_unix(), bytes)?))
}

/// Reads fixed-size fields front to back without any panicking index.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(BarrierError::MalformedKeyring("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?
            .try_into()
            .map_err(|_| BarrierError::MalformedKeyring("truncated"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

impl Keyring {
    /// A new keyring with one fresh data key at term 1.
    pub fn generate() -> Result<Self> {
        let active = fresh_key(1)?;
        let mut terms = BTreeMap::new();
        terms.insert(1, Arc::clone(&active));
        Ok(Self { terms, active })
    }

    /// Adds a fresh data key at the next term and makes it active; returns the new term.
    ///
    /// Nothing is re-encrypted: values sealed under older terms stay readable, new values use the
    /// new term.
    pub fn rotate(&mut self) -> Result<u32> {
        let last = self.terms.keys().next_back().copied().unwrap_or(0);
        let term = last.checked_add(1).ok_or(BarrierError::TermsExhausted)?;
        let key = fresh_key(term)?;
        self.terms.insert(term, Arc::clone(&key));
        self.active = key;
        Ok(term)
    }

    /// The term new values are encrypted under.
    #[must_use]
    pub fn active_term(&self) -> u32 {
        self.active.term
    }

    /// All terms, oldest first.
    pub fn terms(&self) -> impl Iterator<Item = &DataKey> {
        self.terms.values().map(AsRef::as_ref)
    }

    /// The highest term present (equal to the active term unless a future version activates an
    /// older one).
    #[must_use]
    pub fn latest_term(&self) -> u32 {
        self.terms.keys().next_back().copied().unwrap_or(0)
    }

    fn serialize(&self) -> Zeroizing<Vec<u8>> {
        // Written straight into a wiped buffer of the exact final size, so the key bytes never
        // sit in an intermediate representation (as they would with a JSON/base64 encoder).
        let mut out = Zeroizing::new(Vec::with_capacity(
            KEYRING_MAGIC.len() + 8 + self.terms.len() * TERM_RECORD_LEN,
        ));
        out.extend_from_slice(KEYRING_MAGIC);
        out.extend_from_slice(&self.active.term.to_be_bytes());
        // The count fits: parsing refuses more than MAX_TERMS, and rotate adds one at a time.
        let count = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for key in self.terms.values() {
            out.extend_from_slice(&key.term.to_be_bytes());
            out.extend_from_slice(&key.created_at.to_be_bytes());
            out.extend_from_slice(key.key_bytes.as_slice());
        }
        out
    }

    fn deserialize(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        if r.take(KEYRING_MAGIC.len())? != KEYRING_MAGIC {
            return Err(BarrierError::MalformedKeyring("unknown keyring format"));
        }
        let active_term = r.u32()?;
        let count = usize::try_from(r.u32()?)
            .map_err(|_| BarrierError::MalformedKeyring("term count out of range"))?;
        if count == 0 || count > MAX_TERMS {
            return Err(BarrierError::MalformedKeyring("term count out of range"));
        }
        let mut terms = BTreeMap::new();
        let mut previous = 0u32;
        for _ in 0..count {
            let term = r.u32()?;
            // Strictly ascending and non-zero: rejects duplicates and reordering.
            if term <= previous {
                return Err(BarrierError::MalformedKeyring("terms out of order"));
            }
            previous = term;
            let created_at = r.u64()?;
            let mut key = zeroed_key();
            key.copy_from_slice(r.take(AES_256_GCM_KEY_LEN)?);
            terms.insert(term, Arc::new(DataKey::new(term, created_at, key)?));
        }
        if !r.0.is_empty() {
            return Err(BarrierError::MalformedKeyring("trailing bytes"));
        }
        let active = terms
            .get(&active_term)
            .cloned()
            .ok_or(BarrierError::MalformedKeyring("active term missing"))?;
        Ok(Self { terms, active })
    }

    /// Serializes the keyring and encrypts it under the root key:
    /// `0x01 ‖ nonce ‖ AES-256-GCM(keyring) ‖ tag`, AAD = `0x01 ‖ "citadel/keyring"`.
    pub fn seal(&self, root: &RootKey) -> Result<Vec<u8>> {
        let plain = self.serialize();
        let key = Aes256GcmKey::new(root.expose_secret())?;
        let mut out = Vec::with_capacity(1 + AES_GCM_NONCE_LEN + plain.len() + AES_GCM_TAG_LEN);
        out.push(SEALED_KEYRING_VERSION);
        key.seal_append(&keyring_aad(SEALED_KEYRING_VERSION), &plain, &mut out)?;
        Ok(out)
    }

    /// Decrypts and parses a sealed keyring. A wrong root key (or an altered record) fails the
    /// AEAD tag and yields [`BarrierError::InvalidRootKey`]; it can never yield a keyring.
    pub fn open(sealed: &[u8], root: &RootKey) -> Result<Self> {
        let (&version, body) = sealed
            .split_first()
            .ok_or(BarrierError::MalformedKeyring("empty sealed keyring"))?;
        if version != SEALED_KEYRING_VERSION {
            return Err(BarrierError::MalformedKeyring(
                "unknown sealed keyring version",
            ));
        }
        let key = Aes256GcmKey::new(root.expose_secret())?;
        let plain = key
            .open(&keyring_aad(version), body)
            .map_err(|_| BarrierError::InvalidRootKey)?;
        Self::deserialize(&plain)
    }

    /// Seals `plaintext` under the active term:
    /// `0x01 ‖ term (u32 BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`,
    /// with AAD = `0x01 ‖ term ‖ aad`. Pass the storage key as `aad` so a value cannot be moved
    /// to another key unnoticed.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let term = self.active.term.to_be_bytes();
        let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&term);
        let full_aad = envelope_aad(ENVELOPE_VERSION, term, aad);
        self.active
            .aead
            .seal_append(&full_aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Opens an envelope made by [`Keyring::encrypt`] with the same `aad`.
    ///
    /// Errors: [`BarrierError::UnknownTerm`] if the term is not in this keyring (for example
    /// another node rotated and this one has not reloaded yet), otherwise
    /// [`BarrierError::Corrupt`] for any malformed or unauthenticated input.
    pub fn decrypt(&self, aad: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if data.len() < ENVELOPE_OVERHEAD {
            return Err(BarrierError::Corrupt);
        }
        let (header, body) = data.split_at(ENVELOPE_HEADER_LEN);
        let (&version, term_bytes) = header.split_first().ok_or(BarrierError::Corrupt)?;
        if version != ENVELOPE_VERSION {
            return Err(BarrierError::Corrupt);
        }
        let term_bytes: [u8; 4] = term_bytes.try_into().map_err(|_| BarrierError::Corrupt)?;
        let term = u32::from_be_bytes(term_bytes);
        let key = self
            .terms
            .get(&term)
            .ok_or(BarrierError::UnknownTerm(term))?;
        let full_aad = envelope_aad(version, term_bytes, aad);
        key.aead
            .open(&full_aad, body)
            .map_err(|_| BarrierError::Corrupt)
    }
}

fn keyring_aad(version: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + KEYRING_AAD.len());
    aad.push(version);
    aad.extend_from_slice(KEYRING_AAD);
    aad
}

/// Header fields are fixed-length, so `version ‖ term ‖ aad` is unambiguous.
fn envelope_aad(version: u8, term: [u8; 4], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(ENVELOPE_HEADER_LEN + aad.len());
    full.push(version);
    full.extend_from_slice(&term);
    full.extend_from_slice(aad);
    full
}

/// Term of an envelope without opening it, for diagnostics and re-encryption jobs.
#[must_use]
pub fn envelope_term(data: &[u8]) -> Option<u32> {
    match data {
        [ENVELOPE_VERSION, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_layout() {
        let kr = Keyring::generate().unwrap();
        let sealed = kr.encrypt(b"kms/key/1", b"material").unwrap();
        assert_eq!(sealed.len(), ENVELOPE_OVERHEAD + 8);
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert_eq!(&sealed[1..5], &1u32.to_be_bytes());
        assert_eq!(envelope_term(&sealed), Some(1));
        assert_eq!(&*kr.decrypt(b"kms/key/1", &sealed).unwrap(), b"material");
        let empty = kr.encrypt(b"k", b"").unwrap();
        assert!(kr.decrypt(b"k", &empty).unwrap().is_empty());
    }

    #[test]
    fn envelope_detects_tampering_and_moves() {
        let kr = Keyring::generate().unwrap();
        let sealed = kr.encrypt(b"a", b"value").unwrap();
        assert!(matches!(
            kr.decrypt(b"b", &sealed),
            Err(BarrierError::Corrupt)
        ));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x80;
            let err = kr.decrypt(b"a", &t).unwrap_err();
            if (1..5).contains(&i) {
                // A flipped term either names a term we lack or fails authentication.
                assert!(matches!(
                    err,
                    BarrierError::UnknownTerm(_) | BarrierError::Corrupt
                ));
            } else {
                assert!(matches!(err, BarrierError::Corrupt), "byte {i}: {err:?}");
            }
        }
        assert!(matches!(
            kr.decrypt(b"a", &sealed[..20]),
            Err(BarrierError::Corrupt)
        ));
        assert!(matches!(kr.decrypt(b"a", &[]), Err(BarrierError::Corrupt)));
        let other = Keyring::generate().unwrap();
        assert!(matches!(
            other.decrypt(b"a", &sealed),
            Err(BarrierError::Corrupt)
        ));
    }

    #[test]
    fn rotate_keeps_old_terms_readable() {
        let mut kr = Keyring::generate().unwrap();
        let old = kr.encrypt(b"k", b"old").unwrap();
        assert_eq!(kr.rotate().unwrap(), 2);
        assert_eq!(kr.active_term(), 2);
        let new = kr.encrypt(b"k", b"new").unwrap();
        assert_eq!(envelope_term(&new), Some(2));
        assert_eq!(&*kr.decrypt(b"k", &old).unwrap(), b"old");
        assert_eq!(&*kr.decrypt(b"k", &new).unwrap(), b"new");
        assert_eq!(
            kr.terms().map(DataKey::term).collect::<Vec<_>>(),
            vec![1, 2]
        );

        let fresh = Keyring::generate().unwrap();
        assert!(matches!(
            fresh.decrypt(b"k", &new),
            Err(BarrierError::UnknownTerm(2))
        ));
    }

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let root = RootKey::generate().unwrap();
        let mut kr = Keyring::generate().unwrap();
        kr.rotate().unwrap();
        let value = kr.encrypt(b"k", b"v").unwrap();
        let sealed = kr.seal(&root).unwrap();
        let opened = Keyring::open(&sealed, &root).unwrap();
        assert_eq!(opened.active_term(), 2);
        assert_eq!(opened.latest_term(), 2);
        assert_eq!(&*opened.decrypt(b"k", &value).unwrap(), b"v");

        let wrong = RootKey::generate().unwrap();
        assert!(matches!(
            Keyring::open(&sealed, &wrong),
            Err(BarrierError::InvalidRootKey)
        ));
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(matches!(
                Keyring::open(&t, &root),
                Err(BarrierError::InvalidRootKey)
            ));
        }
        let mut t = sealed.clone();
        t[0] = 9;
        assert!(matches!(
            Keyring::open(&t, &root),
            Err(BarrierError::MalformedKeyring(_))
        ));
        assert!(matches!(
            Keyring::open(&[], &root),
            Err(BarrierError::MalformedKeyring(_))
        ));
    }

    #[test]
    fn deserialize_rejects_malformed() {
        let kr = Keyring::generate().unwrap();
        let good = kr.serialize();
        assert!(Keyring::deserialize(&good).is_ok());
        assert!(Keyring::deserialize(&good[..good.len() - 1]).is_err());
        let mut extra = good.to_vec();
        extra.push(0);
        assert!(Keyring::deserialize(&extra).is_err());
        let mut bad_active = good.to_vec();
        bad_active[4..8].copy_from_slice(&7u32.to_be_bytes());
        assert!(Keyring::deserialize(&bad_active).is_err());
        let mut zero_count = good.to_vec();
        zero_count[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert!(Keyring::deserialize(&zero_count).is_err());
        let mut zero_term = good.to_vec();
        zero_term[12..16].copy_from_slice(&0u32.to_be_bytes());
        assert!(Keyring::deserialize(&zero_term).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let kr = Keyring::generate().unwrap();
        let s = format!("{kr:?} {:?}", kr.terms().next().unwrap());
        assert!(s.contains("redacted") || !s.contains("key_bytes"));
        assert!(!s.contains("key_bytes"));
    }
}
