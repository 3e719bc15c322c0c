//! The seed's client-side envelope encryption, done by the real AWS Encryption SDK for Python
//! with its KMS master key provider pointed at Citadel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};

#[test]
fn aws_encryption_sdk_round_trips_a_file_through_citadel_kms() {
    let server = Server::dev().start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    let payload: Vec<u8> = (0..250_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &payload).unwrap();

    let out = server.python("kms_esdk.py", "AKIDEXAMPLE", "s", &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["round_trip"], true, "{v}");
    assert_eq!(v["ciphertext_differs"], true);
    assert_eq!(v["context_kept"], true);
    assert_eq!(v["data_keys"][0], v["key_arn"]);
    assert_eq!(v["tamper_detected"], true);
    assert_eq!(v["disabled_key_refused"], true);
}
