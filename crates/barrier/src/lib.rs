//! Sealing at rest: root key providers (file, Shamir), the keyring of data-key terms and the AEAD
//! envelope every stored value passes through.
//!
//! The design follows HashiCorp Vault's barrier:
//!
//! * a [`RootKey`] (32 random bytes) never encrypts data itself; it only seals the [`Keyring`];
//! * the keyring holds one AES-256-GCM data key per *term*; [`Keyring::rotate`] adds a term and
//!   makes it active, older terms stay for reading;
//! * every stored value is an envelope `0x01 ‖ term (u32 BE) ‖ nonce (12) ‖ ciphertext ‖ tag`
//!   whose AAD binds the version, the term and the caller's context (the storage key), so a
//!   value moved to another key, or any altered byte, fails authentication;
//! * the root key comes from a provider: a local file ([`mod@file`]) or Shamir shares ([`shamir`]).
//!   Neither provider can tell a wrong key from a right one by itself; the keyring's AEAD tag is
//!   what decides ([`BarrierError::InvalidRootKey`]), so a wrong key is never accepted by luck.
//!
//! This crate is pure (no storage, no async): the store crate decides where the sealed keyring
//! lives.

mod error;
pub mod file;
mod keyring;
mod root_key;
pub mod shamir;

pub use error::BarrierError;
pub use keyring::{DataKey, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, Keyring, envelope_term};
pub use root_key::{ROOT_KEY_LEN, RootKey};

/// Re-exported so callers can name the plaintext container without their own `zeroize` import.
pub use zeroize::Zeroizing;

/// Result type of this crate.
pub type Result<T, E = BarrierError> = std::result::Result<T, E>;
