//! The only door to cryptography: a small facade over aws-lc-rs.
