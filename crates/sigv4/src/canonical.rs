//! The canonical request and the string to sign, for every service except S3.

use aws_lc_rs::digest;
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

use crate::ALGORITHM;
use crate::parse::RequestParts;

/// Everything but the RFC 3986 unreserved characters is encoded.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As for the query, but `/` keeps separating segments.
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

/// Lowercase hex SHA-256, the form SigV4 uses for payload and canonical-request hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// Percent-encodes a query name or value with the unreserved set, as the canonical query does.
pub(crate) fn encode_query_component(value: &str) -> String {
    percent_encode(value.as_bytes(), QUERY_SET).to_string()
}

/// The canonical URI of a path as received on the wire.
///
/// Dot segments and empty segments are removed (AWS normalises paths for every service but
/// S3), then every byte outside the unreserved set and `/` is percent-encoded. The input is not
/// decoded first: a client encodes its path once for the wire and once more for the canonical
/// request, so `%20` on the wire becomes `%2520` here, and the server must do the same to agree.
pub fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    percent_encode(normalized.as_bytes(), PATH_SET).to_string()
}

/// Removes `.` and `..` segments and collapses runs of `/`, keeping a leading and a trailing
/// slash; an empty result is `/`.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query string of a raw query (without the `?`).
///
/// Each `name=value` pair is percent-decoded and re-encoded with the unreserved set, so that
/// equivalent encodings (`%7E` and `~`, lower- and uppercase hex) sign the same. A `+` is a
/// literal plus, not a space. Pairs are sorted by encoded name, then encoded value; a name
/// without `=` gets an empty value. With `exclude_signature`, `X-Amz-Signature` is left out, as
/// the presigned form requires.
pub fn canonical_query(query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|part| !part.is_empty())
        .filter_map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name: Vec<u8> = percent_decode_str(name).collect();
            if exclude_signature && name == b"X-Amz-Signature" {
                return None;
            }
            let value: Vec<u8> = percent_decode_str(value).collect();
            Some((
                percent_encode(&name, QUERY_SET).to_string(),
                percent_encode(&value, QUERY_SET).to_string(),
            ))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + pairs.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Appends the canonical value of header `name`: every occurrence trimmed, runs of spaces
/// collapsed to one, occurrences joined with `,` in the order received. A signed header that is
/// absent contributes an empty value, which can only make the signature mismatch.
fn push_header_value(headers: &HeaderMap, name: &str, out: &mut Vec<u8>) {
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let bytes = value.as_bytes();
        let trimmed = trim_ows(bytes);
        let mut previous_space = false;
        for &b in trimmed {
            if b == b' ' {
                if !previous_space {
                    out.push(b' ');
                }
                previous_space = true;
            } else {
                out.push(b);
                previous_space = false;
            }
        }
    }
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The canonical request, as bytes because header values may legally carry non-UTF-8 octets.
///
/// `signed_headers` are lowercase names in the order they appear in the signature (clients
/// sort them); `presigned` drops `X-Amz-Signature` from the query; `payload_hash` is the hex
/// SHA-256 of the body or `UNSIGNED-PAYLOAD`.
pub fn canonical_request(
    req: &RequestParts<'_>,
    signed_headers: &[String],
    presigned: bool,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + req.path.len() + req.query.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query, presigned).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        push_header_value(req.headers, name, &mut out);
        out.push(b'\n');
    }
    out.push(b'\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The string to sign: algorithm, request time (`YYYYMMDD'T'HHMMSS'Z'`), credential scope
/// (`date/region/service/aws4_request`) and the hex SHA-256 of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_like_the_suite() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/../../x", "/x"),
            ("//example//", "/example/"),
            ("/./example", "/example"),
            ("/a/b/../c/./d/", "/a/c/d/"),
        ] {
            assert_eq!(normalize_path(input), want, "{input}");
        }
    }

    #[test]
    fn already_encoded_paths_are_encoded_again() {
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/\u{1234}"), "/%E1%88%B4");
        assert_eq!(canonical_uri("/-._~AZaz09"), "/-._~AZaz09");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(canonical_query("b=2&a=1", false), "a=1&b=2");
        assert_eq!(canonical_query("a=2&a=1&a=10", false), "a=1&a=10&a=2");
        assert_eq!(canonical_query("c+d", false), "c%2Bd=");
        assert_eq!(canonical_query("k=%7e%2f", false), "k=~%2F");
        assert_eq!(canonical_query("a=&&b", false), "a=&b=");
        assert_eq!(canonical_query("a=%zz", false), "a=%25zz");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut h = HeaderMap::new();
        h.append("x", http::HeaderValue::from_static("  a   b  "));
        h.append("x", http::HeaderValue::from_static("\tc\t"));
        let mut out = Vec::new();
        push_header_value(&h, "x", &mut out);
        assert_eq!(out, b"a b,c");
    }
}
