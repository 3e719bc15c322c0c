//! Requests signed by botocore 1.43.11 (`SigV4Auth` and `SigV4QueryAuth`), recorded as a server
//! receives them by tests/gen_botocore.py into tests/fixtures/botocore.json. No Python is needed
//! to run this test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use citadel_sigv4::{SecretKey, SigningKeyCache, check_scope, parse, verify};
use common::OwnedRequest;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn str_of<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {case}"))
}

fn request_of(case: &Value) -> OwnedRequest {
    let headers: Vec<(&str, &str)> = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_str().unwrap(), pair[1].as_str().unwrap()))
        .collect();
    OwnedRequest::new(
        str_of(case, "method"),
        str_of(case, "path"),
        str_of(case, "query"),
        &headers,
        str_of(case, "body").as_bytes(),
    )
}

#[test]
fn botocore_signed_requests_verify() {
    let fixtures: Value = serde_json::from_str(include_str!("fixtures/botocore.json")).unwrap();
    assert_eq!(fixtures["botocore_version"], "1.43.11");
    let cases = fixtures["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let cache = SigningKeyCache::new();
    let mut seen_valid = 0;
    for case in cases {
        let name = str_of(case, "name");
        let req = request_of(case);
        let parts = req.parts();
        let now = OffsetDateTime::parse(str_of(case, "now"), &Rfc3339).unwrap();
        let secret = SecretKey::from(str_of(case, "secret"));
        let outcome = parse(&parts, now).and_then(|info| {
            assert_eq!(info.access_key_id, str_of(case, "access_key_id"), "{name}");
            assert_eq!(info.region, str_of(case, "region"), "{name}");
            check_scope(&info, str_of(case, "service"))?;
            verify(&parts, &info, &secret, &cache)?;
            Ok(info)
        });
        if case["valid"].as_bool().unwrap() {
            let info = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.contains("session-token") {
                assert!(info.security_token.is_some(), "{name}");
            }
            assert_eq!(info.presigned, name.contains("presigned"), "{name}");
            seen_valid += 1;
        } else {
            let err = outcome.expect_err(name);
            assert_eq!(
                err.to_aws_error(false).code,
                str_of(case, "json_error_code"),
                "{name}: {err}"
            );
            assert_eq!(
                err.to_aws_error(true).code,
                str_of(case, "query_error_code"),
                "{name}: {err}"
            );
        }
    }
    assert!(seen_valid >= 8);
}

/// The same fixtures fail once anything signed is touched.
#[test]
fn tampered_botocore_requests_fail() {
    let fixtures: Value = serde_json::from_str(include_str!("fixtures/botocore.json")).unwrap();
    let cache = SigningKeyCache::new();
    for case in fixtures["cases"].as_array().unwrap() {
        if !case["valid"].as_bool().unwrap() {
            continue;
        }
        let name = str_of(case, "name");
        let now = OffsetDateTime::parse(str_of(case, "now"), &Rfc3339).unwrap();
        let secret = SecretKey::from(str_of(case, "secret"));

        let mut req = request_of(case);
        req.method = if req.method == "GET" {
            "HEAD".into()
        } else {
            "PUT".into()
        };
        let parts = req.parts();
        let info = parse(&parts, now).unwrap();
        assert!(
            verify(&parts, &info, &secret, &cache).is_err(),
            "{name}: method"
        );

        let mut req = request_of(case);
        req.headers
            .insert("host", "evil.example.com".parse().unwrap());
        let parts = req.parts();
        let info = parse(&parts, now).unwrap();
        assert!(
            verify(&parts, &info, &secret, &cache).is_err(),
            "{name}: host"
        );

        let mut req = request_of(case);
        req.query = if req.query.is_empty() {
            "extra=1".to_owned()
        } else {
            format!("{}&extra=1", req.query)
        };
        let parts = req.parts();
        let info = parse(&parts, now).unwrap();
        assert!(
            verify(&parts, &info, &secret, &cache).is_err(),
            "{name}: query"
        );

        if !req.body.is_empty() {
            let mut req = request_of(case);
            req.body.push(b' ');
            let parts = req.parts();
            let info = parse(&parts, now).unwrap();
            assert!(
                verify(&parts, &info, &secret, &cache).is_err(),
                "{name}: body"
            );
        }
    }
}
