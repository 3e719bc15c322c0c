//! Step 1 of verification: find the signature in the request and check everything about it
//! that needs no secret.

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{AUTHORIZATION, DATE};
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use crate::datetime::{format_amz_date, format_scope_date, parse_amz_date, parse_http_date};
use crate::error::SigV4Error;
use crate::{ALGORITHM, MAX_CLOCK_SKEW_SECS, MAX_PRESIGNED_EXPIRES_SECS};

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

/// What the verifier needs from an HTTP request.
///
/// `path` and `query` are exactly as received on the wire, still percent-encoded and not
/// normalised (for hyper: `uri.path()` and `uri.query().unwrap_or("")`). `headers` must hold a
/// `host` header; HTTP/2 requests carry the host in `:authority`, which the server has to copy
/// into `host` before calling in.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A signature found in the `Authorization` header or in presigned query parameters
/// (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature`, `X-Amz-Security-Token`), structurally valid and
/// within its time window.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    pub access_key_id: String,
    /// `YYYYMMDD`, equal to the day of `request_time`.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names in the order they were signed; always contains `host`.
    pub signed_headers: Vec<String>,
    /// The signature as sent (lowercase hex if well-formed).
    pub signature: String,
    pub security_token: Option<String>,
    /// From `X-Amz-Date` (header or query) or else the `Date` header; whole seconds, UTC.
    pub request_time: OffsetDateTime,
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires_secs: Option<u64>,
}

/// The session token is a bearer credential: `Debug` shows only whether there is one.
impl std::fmt::Debug for SignatureInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureInfo")
            .field("access_key_id", &self.access_key_id)
            .field("scope_date", &self.scope_date)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "**redacted**"),
            )
            .field("request_time", &self.request_time)
            .field("presigned", &self.presigned)
            .field("expires_secs", &self.expires_secs)
            .finish()
    }
}

impl SignatureInfo {
    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.region, self.service
        )
    }

    /// The request time as `YYYYMMDD'T'HHMMSS'Z'`.
    pub fn amz_date(&self) -> String {
        format_amz_date(self.request_time.unix_timestamp())
    }
}

/// The three parameters of an `Authorization: AWS4-HMAC-SHA256 …` header, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub algorithm: String,
    pub credential: String,
    pub signed_headers: String,
    pub signature: String,
}

/// Splits an `Authorization` header value into its algorithm and parameters.
///
/// The value is read as AWS reads it: the first word is the algorithm, the rest is split on
/// commas and whitespace into `key=value` words, of which `Credential`, `SignedHeaders` and
/// `Signature` must all be present. Errors carry AWS's messages. Safe on any input.
pub fn parse_authorization_header(value: &str) -> Result<AuthorizationHeader, SigV4Error> {
    split_authorization(value, true)
}

fn split_authorization(value: &str, date_present: bool) -> Result<AuthorizationHeader, SigV4Error> {
    let trimmed = value.trim_start();
    let (algorithm, rest) = match trimmed.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => trimmed.split_at(i),
        None => (trimmed, ""),
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for word in rest
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let Some((key, val)) = word.split_once('=') else {
            return Err(SigV4Error::incomplete(format!(
                "'{word}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(val);
        }
    }
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if !date_present {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) if missing.is_empty() => {
            Ok(AuthorizationHeader {
                algorithm: algorithm.to_owned(),
                credential: credential.to_owned(),
                signed_headers: signed_headers.to_owned(),
                signature: signature.to_owned(),
            })
        }
        _ => Err(SigV4Error::incomplete(format!(
            "{} Authorization={value}",
            missing.join(" ")
        ))),
    }
}

/// Step 1: finds the signature and checks everything that needs no secret.
///
/// * exactly one mechanism: the `Authorization` header or presigned query parameters;
/// * algorithm `AWS4-HMAC-SHA256`, credential `keyid/YYYYMMDD/region/service/aws4_request`;
/// * `host` is signed, so is every `x-amz-*` header present (except `x-amz-security-token`,
///   which AWS's own test suite adds after signing), and so is `Date` when it carries the time;
/// * the scope date is the day of the request time;
/// * the request time is within 15 minutes of `now` either way (exactly 15 minutes passes);
///   a presigned URL instead must not be used after `X-Amz-Date + X-Amz-Expires`
///   (1..=604800 s) nor more than 15 minutes before `X-Amz-Date`.
///
/// Which service and region are right is not decided here: see [`crate::check_scope`].
pub fn parse(req: &RequestParts<'_>, now: OffsetDateTime) -> Result<SignatureInfo, SigV4Error> {
    let now = now.unix_timestamp();
    let params = decode_query(req.query);
    let presigned = params.iter().any(|(name, _)| {
        matches!(
            name.as_ref(),
            "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"
        )
    });
    let mut authorization = req.headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    match (header, presigned) {
        (Some(_), true) => Err(SigV4Error::MultipleAuthMechanisms),
        (None, false) => Err(SigV4Error::MissingAuthentication),
        (Some(value), false) => {
            if authorization.next().is_some() {
                return Err(SigV4Error::incomplete(
                    "Only one Authorization header may be specified.",
                ));
            }
            parse_header_auth(req, &String::from_utf8_lossy(value.as_bytes()), now)
        }
        (None, true) => parse_presigned(req, &params, now),
    }
}

pub(crate) fn decode_query(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (
                percent_decode_str(name).decode_utf8_lossy(),
                percent_decode_str(value).decode_utf8_lossy(),
            )
        })
        .collect()
}

/// Every occurrence of a header, joined as the canonical request joins them.
pub(crate) fn joined_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let parts: Vec<Cow<'_, str>> = values
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    Some(parts.join(",").trim().to_owned())
}

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

fn parse_credential(credential: &str) -> Result<Scope, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::MalformedCredential {
            credential: credential.to_owned(),
        });
    };
    if *terminator != "aws4_request" {
        return Err(SigV4Error::InvalidTerminator {
            terminator: (*terminator).to_owned(),
        });
    }
    Ok(Scope {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

fn parse_signed_headers(list: &str) -> Vec<String> {
    list.split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// `host` must be signed, and so must every `x-amz-*` header the request carries.
fn check_signed_headers(headers: &HeaderMap, signed: &[String]) -> Result<(), SigV4Error> {
    if !signed.iter().any(|h| h == "host") {
        return Err(SigV4Error::MustBeSigned { header: "Host" });
    }
    let mut unsigned: Vec<String> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| {
            name.starts_with("x-amz-")
                && *name != X_AMZ_SECURITY_TOKEN
                && !signed.iter().any(|s| s == name)
        })
        .map(str::to_owned)
        .collect();
    if unsigned.is_empty() {
        Ok(())
    } else {
        unsigned.sort_unstable();
        Err(SigV4Error::HeadersNotSigned { headers: unsigned })
    }
}

fn check_scope_date(scope_date: &str, request_time: i64) -> Result<(), SigV4Error> {
    let request_date = format_scope_date(request_time);
    if scope_date == request_date {
        Ok(())
    } else {
        Err(SigV4Error::ScopeDateMismatch {
            scope_date: scope_date.to_owned(),
            request_date,
            request_time: format_amz_date(request_time),
        })
    }
}

fn window_text(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

/// Rejects a request time further than `MAX_CLOCK_SKEW_SECS` in the future.
fn check_not_future(request_time: i64, now: i64) -> Result<(), SigV4Error> {
    let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
    if request_time > latest {
        return Err(SigV4Error::NotYetCurrent {
            request_time: format_amz_date(request_time),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
            window: window_text(MAX_CLOCK_SKEW_SECS),
        });
    }
    Ok(())
}

/// Rejects a request time older than `now - window`.
fn check_not_expired(request_time: i64, now: i64, window: i64) -> Result<(), SigV4Error> {
    let earliest = now.saturating_sub(window);
    if request_time < earliest {
        return Err(SigV4Error::Expired {
            request_time: format_amz_date(request_time),
            earliest: format_amz_date(earliest),
            now: format_amz_date(now),
            window: window_text(window),
        });
    }
    Ok(())
}

fn to_datetime(unix: i64) -> Result<OffsetDateTime, SigV4Error> {
    // Unreachable for parsed four-digit years; kept as an error rather than a panic.
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|_| SigV4Error::incomplete("The request time is out of range."))
}

fn parse_header_auth(
    req: &RequestParts<'_>,
    value: &str,
    now: i64,
) -> Result<SignatureInfo, SigV4Error> {
    let amz_date = joined_header(req.headers, X_AMZ_DATE);
    let http_date = joined_header(req.headers, DATE.as_str());
    let auth = split_authorization(value, amz_date.is_some() || http_date.is_some())?;
    if auth.algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: auth.algorithm,
        });
    }
    let scope = parse_credential(&auth.credential)?;
    let signed_headers = parse_signed_headers(&auth.signed_headers);
    check_signed_headers(req.headers, &signed_headers)?;

    let request_time = match (amz_date, http_date) {
        (Some(v), _) => parse_amz_date(&v).ok_or_else(|| {
            SigV4Error::incomplete(format!(
                "Invalid X-Amz-Date '{v}': the value must be in ISO-8601 basic format, YYYYMMDD'T'HHMMSS'Z'."
            ))
        })?,
        (None, Some(v)) => {
            if !signed_headers.iter().any(|h| h == "date") {
                return Err(SigV4Error::MustBeSigned { header: "Date" });
            }
            parse_http_date(&v).ok_or_else(|| {
                SigV4Error::incomplete(format!(
                    "Invalid Date '{v}': the value must be an RFC 1123 date such as 'Sun, 30 Aug 2015 12:36:00 GMT'."
                ))
            })?
        }
        // split_authorization has already reported the missing date.
        (None, None) => return Err(SigV4Error::MissingAuthentication),
    };
    let request_unix = request_time.unix_timestamp();
    check_scope_date(&scope.date, request_unix)?;
    check_not_expired(request_unix, now, MAX_CLOCK_SKEW_SECS)?;
    check_not_future(request_unix, now)?;

    Ok(SignatureInfo {
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers,
        signature: auth.signature,
        security_token: joined_header(req.headers, X_AMZ_SECURITY_TOKEN),
        request_time: to_datetime(request_unix)?,
        presigned: false,
        expires_secs: None,
    })
}

const PRESIGNED_PARAMS: [&str; 6] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
    "X-Amz-Expires",
];

fn parse_presigned(
    req: &RequestParts<'_>,
    params: &[(Cow<'_, str>, Cow<'_, str>)],
    now: i64,
) -> Result<SignatureInfo, SigV4Error> {
    let mut found: [Option<&str>; 6] = [None; 6];
    let mut token = None;
    for (name, value) in params {
        if name == "X-Amz-Security-Token" {
            if token.is_some() {
                return Err(repeated_param("X-Amz-Security-Token"));
            }
            token = Some(value.as_ref());
            continue;
        }
        if let Some(i) = PRESIGNED_PARAMS.iter().position(|p| p == name) {
            let slot = found.get_mut(i).ok_or_else(|| repeated_param(name))?;
            if slot.is_some() {
                return Err(repeated_param(name));
            }
            *slot = Some(value.as_ref());
        }
    }
    let [
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(signed_headers),
        Some(date),
        Some(expires),
    ] = found
    else {
        let missing: Vec<String> = PRESIGNED_PARAMS
            .iter()
            .zip(found.iter())
            .filter(|(_, v)| v.is_none())
            .map(|(p, _)| format!("AWS query-string parameters must include '{p}'."))
            .collect();
        return Err(SigV4Error::incomplete(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let scope = parse_credential(credential)?;
    let signed = parse_signed_headers(signed_headers);
    check_signed_headers(req.headers, &signed)?;
    let request_time = parse_amz_date(date).ok_or_else(|| {
        SigV4Error::incomplete(format!(
            "Invalid X-Amz-Date '{date}': the value must be in ISO-8601 basic format, YYYYMMDD'T'HHMMSS'Z'."
        ))
    })?;
    let expires_secs = parse_expires(expires)?;
    let request_unix = request_time.unix_timestamp();
    check_scope_date(&scope.date, request_unix)?;
    check_not_future(request_unix, now)?;
    // expires_secs <= 604800, so the conversion cannot fail.
    check_not_expired(
        request_unix,
        now,
        i64::try_from(expires_secs).unwrap_or(i64::MAX),
    )?;

    Ok(SignatureInfo {
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: signed,
        signature: signature.to_owned(),
        security_token: token.map(str::to_owned),
        request_time: to_datetime(request_unix)?,
        presigned: true,
        expires_secs: Some(expires_secs),
    })
}

fn repeated_param(name: &str) -> SigV4Error {
    SigV4Error::incomplete(format!(
        "AWS query-string parameter '{name}' must be specified only once. Re-examine the query-string parameters."
    ))
}

fn parse_expires(value: &str) -> Result<u64, SigV4Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::incomplete(format!(
            "X-Amz-Expires should be a number, not '{value}'."
        )));
    }
    match value.parse::<u64>() {
        Ok(0) => Err(SigV4Error::incomplete(
            "X-Amz-Expires must be greater than 0.",
        )),
        Ok(n) if n <= MAX_PRESIGNED_EXPIRES_SECS => Ok(n),
        _ => Err(SigV4Error::incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_splits_like_aws() {
        let a = parse_authorization_header(
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/svc/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.algorithm, "AWS4-HMAC-SHA256");
        assert_eq!(a.credential, "AK/20150830/us-east-1/svc/aws4_request");
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert_eq!(a.signature, "abc");

        // Commas without spaces, as some signers write it.
        let b = parse_authorization_header(
            "AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request,SignedHeaders=host,Signature=abc",
        )
        .unwrap();
        assert_eq!(b.signed_headers, "host");
    }

    #[test]
    fn missing_parameters_are_listed_in_order() {
        let e = parse_authorization_header("eyJhbGciOiJIUzI1NiJ9.e30.sig").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=eyJhbGciOiJIUzI1NiJ9.e30.sig"
        );
        let e = parse_authorization_header("AWS AKIAI2HBJEUM7LRSTWOQ:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=")
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("Authorization=AWS AKIAI2HBJEUM7LRSTWOQ:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=")
        );
    }

    #[test]
    fn a_word_without_equals_is_reported() {
        let header = "AWS4-HMAC-SHA256 Credential= AKIA/20181128/eu-central-1/cloud9/aws4_request, SignedHeaders=host, Signature=x";
        let e = parse_authorization_header(header).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "'AKIA/20181128/eu-central-1/cloud9/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
            )
        );
    }

    #[test]
    fn expires_bounds() {
        assert_eq!(parse_expires("1").unwrap(), 1);
        assert_eq!(parse_expires("604800").unwrap(), 604_800);
        assert!(parse_expires("0").is_err());
        assert!(parse_expires("604801").is_err());
        assert!(parse_expires("-5").is_err());
        assert!(parse_expires("").is_err());
        assert!(parse_expires("99999999999999999999999").is_err());
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_session_token() {
        let info = SignatureInfo {
            access_key_id: "ASIAEXAMPLE".into(),
            scope_date: "20150830".into(),
            region: "us-east-1".into(),
            service: "kms".into(),
            signed_headers: vec!["host".into()],
            signature: "ab".into(),
            security_token: Some("FwoGZXIvYXdzEXAMPLEtokenvalue".into()),
            request_time: OffsetDateTime::UNIX_EPOCH,
            presigned: false,
            expires_secs: None,
        };
        let shown = format!("{info:?}");
        assert!(!shown.contains("FwoGZXIvYXdzEXAMPLEtokenvalue"), "{shown}");
        assert!(shown.contains("**redacted**"));
    }
}
