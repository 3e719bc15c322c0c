//! Value types the generated shapes are made of: blobs, secrets, enum parse errors.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Base64 text → bytes; the error never echoes the input (it may be a secret).
fn decode_base64<E: serde::de::Error>(text: &str) -> Result<Vec<u8>, E> {
    STANDARD
        .decode(text)
        .map_err(|_| E::custom("invalid base64 in a blob member"))
}

/// Binary data; base64 (standard alphabet, padded) on the JSON wire.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Blob(bytes.into())
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(v)
    }
}

impl From<&[u8]> for Blob {
    fn from(v: &[u8]) -> Self {
        Blob(v.to_vec())
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        decode_base64(&text).map(Blob)
    }
}

/// Binary secret (plaintext, private key, passphrase): like [`Blob`] on the wire, zeroized on
/// drop, and never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SensitiveBlob(Zeroizing<Vec<u8>>);

impl SensitiveBlob {
    pub fn new(bytes: Vec<u8>) -> Self {
        SensitiveBlob(Zeroizing::new(bytes))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The bytes, still zeroized when the returned value drops.
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        std::mem::take(&mut self.0)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SensitiveBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl From<Vec<u8>> for SensitiveBlob {
    fn from(v: Vec<u8>) -> Self {
        SensitiveBlob::new(v)
    }
}

impl From<Zeroizing<Vec<u8>>> for SensitiveBlob {
    fn from(v: Zeroizing<Vec<u8>>) -> Self {
        SensitiveBlob(v)
    }
}

impl Serialize for SensitiveBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(STANDARD.encode(self.0.as_slice()));
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for SensitiveBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        decode_base64(&text).map(SensitiveBlob::new)
    }
}

/// Text secret (secret string, parameter value, password): a plain JSON string on the wire,
/// zeroized on drop, and never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SensitiveString(Zeroizing<String>);

impl SensitiveString {
    pub fn new(s: String) -> Self {
        SensitiveString(Zeroizing::new(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The text, still zeroized when the returned value drops.
    pub fn into_zeroizing(mut self) -> Zeroizing<String> {
        std::mem::take(&mut self.0)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SensitiveString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl From<String> for SensitiveString {
    fn from(s: String) -> Self {
        SensitiveString::new(s)
    }
}

impl From<&str> for SensitiveString {
    fn from(s: &str) -> Self {
        SensitiveString::new(s.to_owned())
    }
}

impl Serialize for SensitiveString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SensitiveString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SensitiveString::new)
    }
}

/// `FromStr` error of the generated enums: the text is not one of the model's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownVariant;

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of the enum's values")
    }
}

impl std::error::Error for UnknownVariant {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_base64_and_bad_base64_is_a_serde_error() {
        let b: Blob = serde_json::from_str("\"aGVsbG8=\"").unwrap();
        assert_eq!(b.as_bytes(), b"hello");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
        for bad in ["\"aGVsbG8\"", "\"!!!!\"", "\"aGVs bG8=\"", "12"] {
            assert!(serde_json::from_str::<Blob>(bad).is_err(), "{bad}");
        }
        let e = serde_json::from_str::<SensitiveBlob>("\"c2VjcmV0*\"").unwrap_err();
        assert!(!e.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn secrets_do_not_debug() {
        let s = SensitiveString::from("hunter2");
        assert_eq!(format!("{s:?}"), "**redacted**");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"");
        let b: SensitiveBlob = serde_json::from_str("\"aHVudGVyMg==\"").unwrap();
        assert_eq!(format!("{b:?}"), "**redacted**");
        assert_eq!(b.as_bytes(), b"hunter2");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aHVudGVyMg==\"");
    }
}
