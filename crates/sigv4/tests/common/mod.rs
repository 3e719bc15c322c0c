//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use citadel_sigv4::{RequestParts, SigV4Error};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

/// A request owned by a test, lent out as `RequestParts`.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn new(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            append(&mut map, name, value);
        }
        OwnedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: map,
            body: body.to_vec(),
        }
    }

    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// Adds (or, with `replace`, replaces) headers as a client applies a signer's output.
    pub fn apply(&mut self, headers: Vec<(HeaderName, HeaderValue)>) {
        for (name, value) in headers {
            self.headers.insert(name, value);
        }
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }

    pub fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }
}

pub fn append(map: &mut HeaderMap, name: &str, value: &str) {
    map.append(
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
}

/// `YYYYMMDD'T'HHMMSS'Z'` → instant.
pub fn at(amz_date: &str) -> OffsetDateTime {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(amz_date, &fmt)
        .unwrap()
        .assume_utc()
}

/// Asserts both renderings of an error: `(status, code, message)` for JSON-protocol services
/// and for awsQuery services.
pub fn assert_aws(err: &SigV4Error, json: (u16, &str, &str), query: (u16, &str, &str)) {
    let j = err.to_aws_error(false);
    assert_eq!(
        (j.status, j.code.as_ref(), j.message.as_deref()),
        (json.0, json.1, Some(json.2)),
        "json rendering of {err:?}"
    );
    let q = err.to_aws_error(true);
    assert_eq!(
        (q.status, q.code.as_ref(), q.message.as_deref()),
        (query.0, query.1, Some(query.2)),
        "query rendering of {err:?}"
    );
}
