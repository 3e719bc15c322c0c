//! The ciphertext blob of symmetric encryption (see `docs/KMS_CIPHERTEXT.md`).
//!
//! ```text
//! offset len  field
//! 0      3    magic "CKM"
//! 3      1    format version (1)
//! 4      1    key id kind (1 = UUID, 2 = multi-Region `mrk-` id)
//! 5      16   key id (the UUID's 16 bytes or the mrk- id's 32 hex digits as 16 bytes; never
//!             the region-bearing ARN, so every replica of a multi-Region key opens it)
//! 21     32   key material id
//! 53     16   derivation salt (random per message)
//! 69     12   AES-GCM nonce (random per message)
//! 81     n    AES-256-GCM ciphertext
//! 81+n   16   AES-GCM tag
//! ```
//!
//! The first 69 bytes are the header. Each message is encrypted under its own key,
//! `HKDF-SHA256(salt = derivation salt, ikm = key material, info = header)`, so no material key is
//! ever used for more than one AES-GCM message and the 2^32-messages-per-key bound of random GCM
//! nonces never applies. The AAD is the header followed by the canonical encoding of the
//! encryption context, so the key id, the material id, the salt and the context are all
//! authenticated: changing any byte of the blob, or the context, fails the tag.

use std::collections::BTreeMap;

use citadel_crypto::{
    AES_256_GCM_KEY_LEN, AES_GCM_NONCE_LEN, AES_GCM_TAG_LEN, Aes256GcmKey, CryptoError, Zeroizing,
    constant_time_eq, hkdf_sha256, random_array,
};

use crate::material::{MATERIAL_ID_LEN, Material};
use crate::names::PackedKeyId;

const MAGIC: [u8; 3] = *b"CKM";
const VERSION: u8 = 1;

const KEY_ID_LEN: usize = 16;
const SALT_LEN: usize = 16;

const KEY_ID_AT: usize = 5;
const MATERIAL_ID_AT: usize = KEY_ID_AT + KEY_ID_LEN;
const SALT_AT: usize = MATERIAL_ID_AT + MATERIAL_ID_LEN;
/// Length of the cleartext header.
pub const HEADER_LEN: usize = SALT_AT + SALT_LEN;
/// Bytes a ciphertext blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + AES_GCM_NONCE_LEN + AES_GCM_TAG_LEN;

// Encrypt takes up to 4096 bytes of plaintext; the blob must fit Decrypt's 6144-byte limit.
const _: () = assert!(4096 + OVERHEAD <= 6144);

/// The canonical encoding of an encryption context: the number of pairs, then each pair sorted by
/// key (UTF-8 byte order), every field a big-endian u32 length followed by the UTF-8 bytes.
/// Unlike a plain concatenation, `{"ab":"c"}` and `{"a":"bc"}` encode differently. An absent and
/// an empty context encode the same, as in AWS.
pub fn encode_context(context: Option<&BTreeMap<String, String>>) -> Result<Vec<u8>, CryptoError> {
    fn put_len(out: &mut Vec<u8>, n: usize) -> Result<(), CryptoError> {
        let n = u32::try_from(n).map_err(|_| CryptoError::Seal)?;
        out.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }
    let mut out = Vec::new();
    let Some(context) = context else {
        put_len(&mut out, 0)?;
        return Ok(out);
    };
    put_len(&mut out, context.len())?;
    // BTreeMap<String, _> iterates in byte order of the keys, which is the canonical order.
    for (k, v) in context {
        put_len(&mut out, k.len())?;
        out.extend_from_slice(k.as_bytes());
        put_len(&mut out, v.len())?;
        out.extend_from_slice(v.as_bytes());
    }
    Ok(out)
}

/// The parts of a blob's header that name the key and material it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key_id: PackedKeyId,
    pub material_id: [u8; MATERIAL_ID_LEN],
    raw: &'a [u8],
    body: &'a [u8],
}

impl Header<'_> {
    /// The key id as AWS writes it.
    pub fn key_id_string(&self) -> String {
        self.key_id.to_id_string()
    }
}

/// Reads the header of a blob. `None` for anything that is not a complete version-1 blob; the
/// caller answers `InvalidCiphertextException` without saying why.
pub fn parse(blob: &[u8]) -> Option<Header<'_>> {
    if blob.len() < OVERHEAD {
        return None;
    }
    let (raw, body) = blob.split_at(HEADER_LEN);
    if raw.get(..3)? != MAGIC || *raw.get(3)? != VERSION {
        return None;
    }
    Some(Header {
        key_id: PackedKeyId::from_parts(*raw.get(4)?, raw.get(KEY_ID_AT..MATERIAL_ID_AT)?)?,
        material_id: raw.get(MATERIAL_ID_AT..SALT_AT)?.try_into().ok()?,
        raw,
        body,
    })
}

fn message_key(material: &Material, header: &[u8]) -> Result<Aes256GcmKey, CryptoError> {
    let salt = header.get(SALT_AT..HEADER_LEN).ok_or(CryptoError::Seal)?;
    let okm = hkdf_sha256(salt, material.secret(), header, AES_256_GCM_KEY_LEN)?;
    Aes256GcmKey::new(&okm)
}

fn aad(header: &[u8], context: Option<&BTreeMap<String, String>>) -> Result<Vec<u8>, CryptoError> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 64);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&encode_context(context)?);
    Ok(aad)
}

/// Encrypts `plaintext` under `material` of the key `key_id`, bound to `context`.
pub fn seal(
    key_id: &PackedKeyId,
    material: &Material,
    context: Option<&BTreeMap<String, String>>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let salt: Zeroizing<[u8; SALT_LEN]> = random_array()?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(key_id.kind);
    out.extend_from_slice(&key_id.bytes);
    out.extend_from_slice(material.id());
    out.extend_from_slice(salt.as_slice());
    let key = message_key(material, &out)?;
    let aad = aad(&out, context)?;
    key.seal_append(&aad, plaintext, &mut out)?;
    Ok(out)
}

/// Decrypts a blob whose header was read by [`parse`] with the material it names. Any change to
/// the blob or the context is [`CryptoError::Open`].
pub fn open(
    header: &Header<'_>,
    material: &Material,
    context: Option<&BTreeMap<String, String>>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if !constant_time_eq(material.id(), &header.material_id) {
        return Err(CryptoError::Open);
    }
    let key = message_key(material, header.raw).map_err(|_| CryptoError::Open)?;
    let aad = aad(header.raw, context).map_err(|_| CryptoError::Open)?;
    key.open(&aad, header.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: PackedKeyId = PackedKeyId {
        kind: PackedKeyId::UUID,
        bytes: [7u8; 16],
    };

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn decrypt(blob: &[u8], m: &Material, c: Option<&BTreeMap<String, String>>) -> Option<Vec<u8>> {
        let h = parse(blob)?;
        open(&h, m, c).ok().map(|p| p.to_vec())
    }

    #[test]
    fn round_trip_with_and_without_context() {
        let m = Material::generate(&KEY).unwrap();
        let c = ctx(&[("purpose", "test"), ("a", "b")]);
        let blob = seal(&KEY, &m, Some(&c), b"hello").unwrap();
        assert_eq!(blob.len(), OVERHEAD + 5);
        let h = parse(&blob).unwrap();
        assert_eq!(h.key_id, KEY);
        assert_eq!(&h.material_id, m.id());
        assert_eq!(decrypt(&blob, &m, Some(&c)).unwrap(), b"hello");

        let blob = seal(&KEY, &m, None, b"").unwrap();
        assert_eq!(decrypt(&blob, &m, None).unwrap(), b"");
        // An empty context and no context are the same thing.
        assert_eq!(decrypt(&blob, &m, Some(&BTreeMap::new())).unwrap(), b"");
        // Fresh salt and nonce every time.
        assert_ne!(
            seal(&KEY, &m, None, b"x").unwrap(),
            seal(&KEY, &m, None, b"x").unwrap()
        );
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_fails() {
        let m = Material::generate(&KEY).unwrap();
        let c = ctx(&[("k", "v")]);
        let blob = seal(&KEY, &m, Some(&c), b"attack at dawn").unwrap();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut t = blob.clone();
                t[i] ^= 1 << bit;
                assert!(decrypt(&t, &m, Some(&c)).is_none(), "byte {i} bit {bit}");
            }
        }
        for n in 0..blob.len() {
            assert!(
                decrypt(&blob[..n], &m, Some(&c)).is_none(),
                "truncated to {n}"
            );
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decrypt(&longer, &m, Some(&c)).is_none());
    }

    #[test]
    fn context_must_match_exactly() {
        let m = Material::generate(&KEY).unwrap();
        let c = ctx(&[("Purpose", "Test"), ("x", "y")]);
        let blob = seal(&KEY, &m, Some(&c), b"p").unwrap();
        for wrong in [
            None,
            Some(ctx(&[("purpose", "Test"), ("x", "y")])),
            Some(ctx(&[("Purpose", "test"), ("x", "y")])),
            Some(ctx(&[("Purpose", "Test")])),
            Some(ctx(&[("Purpose", "Test"), ("x", "y"), ("z", "")])),
        ] {
            assert!(decrypt(&blob, &m, wrong.as_ref()).is_none(), "{wrong:?}");
        }
        // Pair order never matters (a map has none).
        let reordered = ctx(&[("x", "y"), ("Purpose", "Test")]);
        assert_eq!(decrypt(&blob, &m, Some(&reordered)).unwrap(), b"p");
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        let a = encode_context(Some(&ctx(&[("ab", "c")]))).unwrap();
        let b = encode_context(Some(&ctx(&[("a", "bc")]))).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            encode_context(None).unwrap(),
            encode_context(Some(&BTreeMap::new())).unwrap()
        );
        assert_eq!(
            encode_context(Some(&ctx(&[("b", "2"), ("a", "1")]))).unwrap(),
            [
                &[0, 0, 0, 2][..],
                &[0, 0, 0, 1],
                b"a",
                &[0, 0, 0, 1],
                b"1",
                &[0, 0, 0, 1],
                b"b",
                &[0, 0, 0, 1],
                b"2"
            ]
            .concat()
        );
    }

    #[test]
    fn other_material_or_key_cannot_open() {
        let m1 = Material::generate(&KEY).unwrap();
        let m2 = Material::generate(&KEY).unwrap();
        let blob = seal(&KEY, &m1, None, b"p").unwrap();
        assert!(decrypt(&blob, &m2, None).is_none());
        let back = Material::restore(&KEY, m1.id(), m1.format(), m1.secret()).unwrap();
        assert_eq!(decrypt(&blob, &back, None).unwrap(), b"p");
    }

    #[test]
    fn multi_region_key_ids_round_trip_through_the_header() {
        let mrk = PackedKeyId::parse("mrk-0123456789abcdef0123456789abcdef").unwrap();
        let m = Material::generate(&mrk).unwrap();
        let blob = seal(&mrk, &m, None, b"p").unwrap();
        let h = parse(&blob).unwrap();
        assert_eq!(h.key_id_string(), "mrk-0123456789abcdef0123456789abcdef");
        assert_eq!(decrypt(&blob, &m, None).unwrap(), b"p");
        let mut unknown_kind = blob.clone();
        unknown_kind[4] = 9;
        assert!(parse(&unknown_kind).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_plaintext_and_context_round_trips_and_any_mutation_fails(
            plaintext in proptest::collection::vec(any::<u8>(), 0..4097),
            context in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..5),
            flip_at in any::<prop::sample::Index>(),
            flip_bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let m = Material::generate(&KEY).unwrap();
            let blob = seal(&KEY, &m, Some(&context), &plaintext).unwrap();
            prop_assert!(blob.len() <= 6144);
            prop_assert_eq!(decrypt(&blob, &m, Some(&context)).unwrap(), plaintext);

            let mut flipped = blob.clone();
            let i = flip_at.index(flipped.len());
            flipped[i] ^= 1 << flip_bit;
            prop_assert!(decrypt(&flipped, &m, Some(&context)).is_none());

            let n = cut.index(blob.len());
            prop_assert!(decrypt(&blob[..n], &m, Some(&context)).is_none());

            let mut other = context.clone();
            other.insert("extra-key".into(), "v".into());
            prop_assert!(decrypt(&blob, &m, Some(&other)).is_none());
        }
    }
}
