//! Signing, for Citadel's own clients: the CLI, the end-to-end tests and the benchmark.

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderName, HeaderValue};
use time::OffsetDateTime;

use crate::canonical::{canonical_request, encode_query_component, sha256_hex, string_to_sign};
use crate::datetime::{format_amz_date, format_scope_date, parse_amz_date};
use crate::error::SigV4Error;
use crate::keys::{SecretKey, SigningKey};
use crate::parse::{RequestParts, decode_query, joined_header};
use crate::{ALGORITHM, MAX_PRESIGNED_EXPIRES_SECS, UNSIGNED_PAYLOAD};

/// Headers that proxies and HTTP stacks add, drop or rewrite in transit; signing them would
/// make a correct request fail. The same list botocore leaves out, plus `authorization`.
const NOT_SIGNED: [&str; 12] = [
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// Who signs, for which scope, at what time.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a SecretKey,
    /// Sent as `x-amz-security-token` (header) or `X-Amz-Security-Token` (presigned).
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
    /// Also send and sign `x-amz-content-sha256` carrying the body hash.
    pub sign_content_sha256: bool,
}

struct Prepared {
    amz_date: String,
    scope: String,
    key: SigningKey,
}

fn prepare(params: &SigningParams<'_>) -> Result<Prepared, SigV4Error> {
    let bad = |s: &str| s.is_empty() || s.contains(['/', ',', '=', ' ', '\t', '\r', '\n']);
    if bad(params.access_key_id) || bad(params.region) || bad(params.service) {
        return Err(SigV4Error::signing(
            "the access key id, region and service must be non-empty and free of '/', ',', '=' and whitespace",
        ));
    }
    let unix = params.time.unix_timestamp();
    let amz_date = format_amz_date(unix);
    if parse_amz_date(&amz_date).is_none() {
        return Err(SigV4Error::signing(
            "the signing time is outside years 0000-9999",
        ));
    }
    let scope_date = format_scope_date(unix);
    let scope = format!(
        "{scope_date}/{}/{}/aws4_request",
        params.region, params.service
    );
    let key = SigningKey::derive(params.secret, &scope_date, params.region, params.service);
    Ok(Prepared {
        amz_date,
        scope,
        key,
    })
}

fn header_value(value: &str) -> Result<HeaderValue, SigV4Error> {
    HeaderValue::from_str(value)
        .map_err(|_| SigV4Error::signing("a value is not a valid HTTP header value"))
}

/// Signs a request in the `Authorization` header.
///
/// `req` is the request as it will go on the wire: `path` and `query` already percent-encoded,
/// `headers` containing `host`. Every header is signed except the hop-by-hop ones, `user-agent`
/// and `x-amzn-trace-id`. Returns the headers to add (replacing any of the same name):
/// `x-amz-date`, `x-amz-security-token` when a session token is given, `x-amz-content-sha256`
/// when asked for, and `authorization`.
pub fn sign(
    req: &RequestParts<'_>,
    params: &SigningParams<'_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, SigV4Error> {
    if !req.headers.contains_key(HOST) {
        return Err(SigV4Error::signing("the headers must contain host"));
    }
    let prepared = prepare(params)?;
    let mut added = vec![(
        HeaderName::from_static("x-amz-date"),
        header_value(&prepared.amz_date)?,
    )];
    if let Some(token) = params.session_token {
        added.push((
            HeaderName::from_static("x-amz-security-token"),
            header_value(token)?,
        ));
    }
    let payload_hash = if params.sign_content_sha256 {
        let hash = sha256_hex(req.body);
        added.push((
            HeaderName::from_static("x-amz-content-sha256"),
            header_value(&hash)?,
        ));
        hash
    } else {
        joined_header(req.headers, "x-amz-content-sha256").unwrap_or_else(|| sha256_hex(req.body))
    };

    let mut headers = req.headers.clone();
    headers.remove(AUTHORIZATION);
    for (name, value) in &added {
        headers.insert(name.clone(), value.clone());
    }
    let signed = signed_header_names(&headers);
    let parts = RequestParts {
        headers: &headers,
        ..*req
    };
    let creq = canonical_request(&parts, &signed, false, &payload_hash);
    let signature = prepared
        .key
        .sign(&string_to_sign(&prepared.amz_date, &prepared.scope, &creq));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        params.access_key_id,
        prepared.scope,
        signed.join(";")
    );
    added.push((AUTHORIZATION, header_value(&authorization)?));
    Ok(added)
}

fn signed_header_names(headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| !NOT_SIGNED.contains(n))
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names
}

/// Presigns a request: returns the query string to send instead of `req.query` (the original
/// parameters followed by `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` when given, and
/// `X-Amz-Signature`). The payload is `UNSIGNED-PAYLOAD`. `expires_secs` is 1..=604800.
pub fn presign(
    req: &RequestParts<'_>,
    params: &SigningParams<'_>,
    expires_secs: u64,
) -> Result<String, SigV4Error> {
    if !(1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&expires_secs) {
        return Err(SigV4Error::signing(
            "expires_secs must be within 1..=604800",
        ));
    }
    if !req.headers.contains_key(HOST) {
        return Err(SigV4Error::signing("the headers must contain host"));
    }
    if decode_query(req.query)
        .iter()
        .any(|(name, _)| name.starts_with("X-Amz-"))
    {
        return Err(SigV4Error::signing(
            "the query already carries X-Amz-* authentication parameters",
        ));
    }
    let prepared = prepare(params)?;
    let signed = signed_header_names(req.headers);
    let mut query = req.query.to_owned();
    let mut push = |name: &str, value: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&encode_query_component(value));
    };
    push("X-Amz-Algorithm", ALGORITHM);
    push(
        "X-Amz-Credential",
        &format!("{}/{}", params.access_key_id, prepared.scope),
    );
    push("X-Amz-Date", &prepared.amz_date);
    push("X-Amz-Expires", &expires_secs.to_string());
    push("X-Amz-SignedHeaders", &signed.join(";"));
    if let Some(token) = params.session_token {
        push("X-Amz-Security-Token", token);
    }
    let parts = RequestParts {
        query: &query,
        ..*req
    };
    let creq = canonical_request(&parts, &signed, true, UNSIGNED_PAYLOAD);
    let signature = prepared
        .key
        .sign(&string_to_sign(&prepared.amz_date, &prepared.scope, &creq));
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    Ok(query)
}
