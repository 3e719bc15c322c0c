//! Property tests: whatever a client signs, the verifier accepts (in any header or query
//! order) and rejects once changed; and no input, however malformed, makes the parser panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use citadel_sigv4::{
    SecretKey, SigningKeyCache, SigningParams, parse, parse_authorization_header, presign, sign,
    verify,
};
use common::OwnedRequest;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use time::OffsetDateTime;

/// What a client puts on the wire: everything but the unreserved set percent-encoded.
const WIRE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn wire(s: &str) -> String {
    utf8_percent_encode(s, WIRE).to_string()
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    segments: Vec<String>,
    trailing_slash: bool,
    query: Vec<(String, String)>,
    headers: Vec<(String, Vec<String>)>,
    body: Vec<u8>,
    unix: i64,
    token: Option<String>,
    content_sha: bool,
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}".prop_map(|s| format!("x-h-{s}")),
        "[a-z][a-z0-9-]{0,12}".prop_map(|s| format!("x-amz-meta-{s}")),
        Just("content-type".to_owned()),
        Just("x-amz-target".to_owned()),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
        prop::collection::vec("\\PC{0,8}", 0..5),
        any::<bool>(),
        prop::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..6),
        prop::collection::vec(
            (header_name(), prop::collection::vec("[ -~\t]{0,24}", 1..3)),
            0..6,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
        946_684_800i64..4_102_444_800,
        prop::option::of("[A-Za-z0-9+/=]{8,40}"),
        any::<bool>(),
    )
        .prop_map(
            |(method, segments, trailing_slash, query, headers, body, unix, token, content_sha)| {
                // Presigning and the auth parameters own the X-Amz-* names.
                let query = query
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("X-Amz-"))
                    .collect();
                let mut seen = Vec::new();
                let headers = headers
                    .into_iter()
                    .filter(|(name, _)| {
                        let fresh = !seen.contains(name);
                        seen.push(name.clone());
                        fresh
                    })
                    .collect();
                Case {
                    method,
                    segments,
                    trailing_slash,
                    query,
                    headers,
                    body,
                    unix,
                    token,
                    content_sha,
                }
            },
        )
}

impl Case {
    fn path(&self) -> String {
        let mut path: String = self
            .segments
            .iter()
            .map(|s| format!("/{}", wire(s)))
            .collect();
        if path.is_empty() || self.trailing_slash {
            path.push('/');
        }
        path
    }

    fn query(&self, reversed: bool) -> String {
        let mut pairs: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", wire(k), wire(v)))
            .collect();
        if reversed {
            pairs.reverse();
        }
        pairs.join("&")
    }

    /// The headers, distinct names inserted in the given or reversed order; the values of one
    /// name always keep their order, which SigV4 signs.
    fn headers(&self, reversed: bool) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            "host",
            HeaderValue::from_static("kms.us-east-1.amazonaws.com"),
        );
        let mut list: Vec<&(String, Vec<String>)> = self.headers.iter().collect();
        if reversed {
            list.reverse();
        }
        for (name, values) in list {
            for v in values {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
        }
        map
    }

    fn time(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix).unwrap()
    }

    fn request(&self, reversed: bool) -> OwnedRequest {
        OwnedRequest {
            method: self.method.to_owned(),
            path: self.path(),
            query: self.query(reversed),
            headers: self.headers(reversed),
            body: self.body.clone(),
        }
    }
}

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn params<'a>(case: &'a Case, secret: &'a SecretKey) -> SigningParams<'a> {
    SigningParams {
        access_key_id: "AKIAIOSFODNN7EXAMPLE",
        secret,
        session_token: case.token.as_deref(),
        region: "eu-central-1",
        service: "kms",
        time: case.time(),
        sign_content_sha256: case.content_sha,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_signing_round_trips_in_any_order(case in case()) {
        let secret = SecretKey::from(SECRET);
        let cache = SigningKeyCache::new();
        let mut signed = case.request(false);
        let added = sign(&signed.parts(), &params(&case, &secret)).unwrap();
        signed.apply(added.clone());

        let now = case.time();
        let info = parse(&signed.parts(), now).unwrap();
        prop_assert_eq!(info.security_token.as_deref(), case.token.as_deref());
        verify(&signed.parts(), &info, &secret, &cache).unwrap();

        let mut reordered = case.request(true);
        reordered.apply(added);
        let info = parse(&reordered.parts(), now).unwrap();
        verify(&reordered.parts(), &info, &secret, &cache).unwrap();

        if !case.body.is_empty() {
            let mut tampered = signed.clone();
            tampered.body[0] ^= 1;
            let info = parse(&tampered.parts(), now).unwrap();
            prop_assert!(verify(&tampered.parts(), &info, &secret, &cache).is_err());
        }
        let other = SecretKey::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ");
        prop_assert!(verify(&signed.parts(), &info_of(&signed, now), &other, &cache).is_err());
    }

    #[test]
    fn presigning_round_trips_in_any_order(case in case(), expires in 1u64..=604_800) {
        let secret = SecretKey::from(SECRET);
        let cache = SigningKeyCache::new();
        let mut req = case.request(false);
        // Presigned requests carry no x-amz-* headers of their own in practice; keep them
        // signed if present, which presign does.
        req.query = presign(&req.parts(), &params(&case, &secret), expires).unwrap();
        let now = case.time();
        let info = parse(&req.parts(), now).unwrap();
        prop_assert!(info.presigned);
        verify(&req.parts(), &info, &secret, &cache).unwrap();

        let mut reversed = req.clone();
        let mut pairs: Vec<&str> = req.query.split('&').collect();
        pairs.reverse();
        reversed.query = pairs.join("&");
        reversed.headers = case.headers(true);
        let info = parse(&reversed.parts(), now).unwrap();
        verify(&reversed.parts(), &info, &secret, &cache).unwrap();
    }

    #[test]
    fn authorization_header_parser_never_panics(value in "\\PC*", raw in ".*") {
        let _ = parse_authorization_header(&value);
        let _ = parse_authorization_header(&raw);
    }

    #[test]
    fn parse_and_verify_never_panic(
        method in "[A-Z]{0,7}",
        path in ".{0,40}",
        query in prop::collection::vec(
            (
                prop_oneof![
                    Just("X-Amz-Algorithm".to_owned()),
                    Just("X-Amz-Credential".to_owned()),
                    Just("X-Amz-Date".to_owned()),
                    Just("X-Amz-Expires".to_owned()),
                    Just("X-Amz-SignedHeaders".to_owned()),
                    Just("X-Amz-Signature".to_owned()),
                    Just("X-Amz-Security-Token".to_owned()),
                    ".{0,10}",
                ],
                prop_oneof![
                    Just("AWS4-HMAC-SHA256".to_owned()),
                    Just("AK/20150830/us-east-1/kms/aws4_request".to_owned()),
                    Just("20150830T123600Z".to_owned()),
                    Just("host".to_owned()),
                    "[0-9]{0,25}",
                    ".{0,20}",
                ],
            ),
            0..9,
        ),
        headers in prop::collection::vec(
            (
                prop_oneof![
                    Just("authorization"),
                    Just("x-amz-date"),
                    Just("date"),
                    Just("host"),
                    Just("x-amz-content-sha256"),
                    Just("x-amz-security-token"),
                    Just("x-amz-other"),
                ],
                prop::collection::vec(any::<u8>(), 0..80),
            ),
            0..8,
        ),
        auth_words in prop::collection::vec(
            prop_oneof![
                Just("AWS4-HMAC-SHA256".to_owned()),
                Just("Credential=AK/20150830/us-east-1/kms/aws4_request,".to_owned()),
                Just("SignedHeaders=host;x-amz-date,".to_owned()),
                Just("Signature=00".to_owned()),
                ".{0,12}",
            ],
            0..6,
        ),
        body in prop::collection::vec(any::<u8>(), 0..64),
        unix in -100_000_000_000i64..100_000_000_000,
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                map.append(*name, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&auth_words.join(" ")) {
            map.append("authorization", v);
        }
        let query: String = query
            .iter()
            .map(|(k, v)| format!("{}={}", wire(k), wire(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = OwnedRequest { method, path, query, headers: map, body };
        let now = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        if let Ok(info) = parse(&req.parts(), now) {
            let _ = verify(&req.parts(), &info, &SecretKey::from("s"), &SigningKeyCache::new());
        }
        let _ = parse(&req.parts(), OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap());
    }
}

fn info_of(req: &OwnedRequest, now: OffsetDateTime) -> citadel_sigv4::SignatureInfo {
    parse(&req.parts(), now).unwrap()
}
