//! Step 2 of verification: recompute the signature and compare.

use std::borrow::Cow;

use subtle::{Choice, ConstantTimeEq};

use crate::UNSIGNED_PAYLOAD;
use crate::canonical::{canonical_request, sha256_hex, string_to_sign};
use crate::error::SigV4Error;
use crate::keys::{SecretKey, SigningKeyCache};
use crate::parse::{RequestParts, SignatureInfo, decode_query, joined_header};

const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Step 2: recomputes the signature of `req` under `secret` and compares it with the one in
/// `info` in constant time.
///
/// `info` must come from [`crate::parse`] on the same request. The payload hash is the SHA-256
/// of `req.body`; an `x-amz-content-sha256` header, if present, must name that same hash
/// (a mismatch is [`SigV4Error::PayloadHashMismatch`]). A presigned URL signs
/// `UNSIGNED-PAYLOAD`, as botocore and the AWS CLI do; the body hash is accepted there too,
/// because the Go SDKs presign with it.
pub fn verify(
    req: &RequestParts<'_>,
    info: &SignatureInfo,
    secret: &SecretKey,
    cache: &SigningKeyCache,
) -> Result<(), SigV4Error> {
    let payload_hashes = payload_hashes(req, info)?;
    let key = cache.signing_key(
        &info.access_key_id,
        secret,
        &info.scope_date,
        &info.region,
        &info.service,
    );
    let amz_date = info.amz_date();
    let scope = info.scope();
    let provided = info.signature.as_bytes();
    // Every candidate is computed and compared, so timing does not tell which one matched.
    let mut matched = Choice::from(0);
    for payload_hash in &payload_hashes {
        let creq = canonical_request(req, &info.signed_headers, info.presigned, payload_hash);
        let expected = key.sign(&string_to_sign(&amz_date, &scope, &creq));
        matched |= expected.as_bytes().ct_eq(provided);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The payload hashes the client may have signed, in the order they are tried.
fn payload_hashes<'a>(
    req: &RequestParts<'_>,
    info: &SignatureInfo,
) -> Result<Vec<Cow<'a, str>>, SigV4Error> {
    let mut declared = joined_header(req.headers, X_AMZ_CONTENT_SHA256);
    if declared.is_none() && info.presigned {
        declared = decode_query(req.query)
            .into_iter()
            .find(|(name, _)| name == "X-Amz-Content-Sha256")
            .map(|(_, value)| value.into_owned());
    }
    match declared {
        Some(value) if is_sha256_hex(&value) => {
            if value.eq_ignore_ascii_case(&sha256_hex(req.body)) {
                Ok(vec![Cow::Owned(value)])
            } else {
                Err(SigV4Error::PayloadHashMismatch)
            }
        }
        Some(value) if info.presigned && value == UNSIGNED_PAYLOAD => {
            Ok(vec![Cow::Borrowed(UNSIGNED_PAYLOAD)])
        }
        Some(value) => Err(SigV4Error::UnsignedPayload { value }),
        None if info.presigned => Ok(vec![
            Cow::Borrowed(UNSIGNED_PAYLOAD),
            Cow::Owned(sha256_hex(req.body)),
        ]),
        None => Ok(vec![Cow::Owned(sha256_hex(req.body))]),
    }
}

/// Checks that the credential is scoped to the service the request was routed to (the SigV4
/// signing name: `kms`, `secretsmanager`, `ssm`, `acm`, `wafv2`, `sts`, `iam`, …).
pub fn check_scope(info: &SignatureInfo, expected_service: &str) -> Result<(), SigV4Error> {
    if info.service == expected_service {
        Ok(())
    } else {
        Err(SigV4Error::WrongService {
            expected: expected_service.to_owned(),
        })
    }
}

/// Checks the credential's region against the regions this deployment serves.
pub fn check_region(
    info: &SignatureInfo,
    is_valid_region: impl FnOnce(&str) -> bool,
) -> Result<(), SigV4Error> {
    if is_valid_region(&info.region) {
        Ok(())
    } else {
        Err(SigV4Error::InvalidRegion {
            region: info.region.clone(),
        })
    }
}
