//! Sealing at rest: root key providers (file, Shamir), the keyring of data-key terms and the AEAD envelope every stored value passes through.
