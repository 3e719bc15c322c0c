//! AWS's SigV4 test suite (aws-sig-v4-test-suite, 2015-08-30 edition): for every vector, the
//! canonical request, the string to sign and the Authorization header we produce must be the
//! published ones, and the verifier must accept the published signature.
//!
//! tests/vectors/README.md records where the files come from and the few that were adapted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use citadel_sigv4::{
    RequestParts, SecretKey, SigV4Error, SigningKeyCache, SigningParams, canonical_request,
    check_scope, parse, sha256_hex, sign, string_to_sign, verify,
};
use common::{OwnedRequest, append, at};
use http::HeaderMap;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: &str = "20150830T123600Z";

/// Reads a `.req` file the way an HTTP server would present it: request line, headers with
/// surrounding whitespace trimmed, body after the blank line. A continuation line (obs-fold)
/// becomes another value of the previous header; hyper rejects folded headers outright, so this
/// only serves get-header-value-multiline, whose expected result is the same as for repeated
/// headers.
fn parse_req(text: &str) -> OwnedRequest {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HeaderMap::new();
    let mut last_name = String::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            append(&mut headers, &last_name, line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap();
        last_name = name.trim().to_owned();
        append(&mut headers, &last_name, value.trim());
    }
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn vector_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(dir: &Path, ext: &str) -> String {
    let name = dir.file_name().unwrap().to_str().unwrap();
    fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap()
}

fn check_vector(dir: &Path) -> Result<(), String> {
    let req = parse_req(&read(dir, "req"));
    let want_creq = read(dir, "creq");
    let want_sts = read(dir, "sts");
    let want_authz = read(dir, "authz");
    let secret = SecretKey::from(SECRET);
    let now = at(NOW);

    // Signing: our Authorization header must be the published one.
    let params = SigningParams {
        access_key_id: ACCESS_KEY,
        secret: &secret,
        session_token: None,
        region: "us-east-1",
        service: "service",
        time: now,
        sign_content_sha256: false,
    };
    let added = sign(&req.parts(), &params).map_err(|e| format!("sign: {e}"))?;
    let authz = added
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.to_str().unwrap().to_owned())
        .ok_or("sign returned no authorization")?;
    if authz != want_authz {
        return Err(format!("authorization\n got: {authz}\nwant: {want_authz}"));
    }

    // Verifying the published header.
    let mut signed = req.clone();
    append(&mut signed.headers, "authorization", &want_authz);
    let parts = signed.parts();
    let info = parse(&parts, now).map_err(|e| format!("parse: {e}"))?;
    let creq = canonical_request(
        &parts,
        &info.signed_headers,
        info.presigned,
        &sha256_hex(parts.body),
    );
    let creq = String::from_utf8(creq).map_err(|e| e.to_string())?;
    if creq != want_creq {
        return Err(format!(
            "canonical request\n got: {creq:?}\nwant: {want_creq:?}"
        ));
    }
    let sts = string_to_sign(&info.amz_date(), &info.scope(), creq.as_bytes());
    if sts != want_sts {
        return Err(format!("string to sign\n got: {sts:?}\nwant: {want_sts:?}"));
    }
    check_scope(&info, "service").map_err(|e| format!("check_scope: {e}"))?;
    let cache = SigningKeyCache::new();
    verify(&parts, &info, &secret, &cache).map_err(|e| format!("verify: {e}"))?;

    // And rejecting the same request under another secret or a damaged signature.
    let other = SecretKey::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ");
    if verify(&parts, &info, &other, &cache) != Err(SigV4Error::SignatureMismatch) {
        return Err("verify accepted another secret".into());
    }
    let mut damaged = info.clone();
    damaged.signature.replace_range(
        0..1,
        if info.signature.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    if verify(&parts, &damaged, &secret, &cache) != Err(SigV4Error::SignatureMismatch) {
        return Err("verify accepted a damaged signature".into());
    }
    Ok(())
}

#[test]
fn every_aws_suite_vector_signs_and_verifies() {
    let dirs = vector_dirs();
    assert_eq!(dirs.len(), 33, "the suite has 33 vectors here");
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            check_vector(dir)
                .err()
                .map(|e| format!("{}: {e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// post-sts-header-after adds the session token after signing; AWS accepts that, and so do we
/// (x-amz-security-token is the one x-amz-* header that may go unsigned).
#[test]
fn security_token_added_after_signing_is_accepted() {
    let dir = vector_dirs()
        .into_iter()
        .find(|d| d.ends_with("post-sts-header-after"))
        .unwrap();
    let mut req = parse_req(&read(&dir, "req"));
    append(&mut req.headers, "authorization", &read(&dir, "authz"));
    append(
        &mut req.headers,
        "x-amz-security-token",
        "AQoDYXdzEPT//////////wEXAMPLE",
    );
    let parts: RequestParts<'_> = req.parts();
    let info = parse(&parts, at(NOW)).unwrap();
    assert_eq!(
        info.security_token.as_deref(),
        Some("AQoDYXdzEPT//////////wEXAMPLE")
    );
    verify(
        &parts,
        &info,
        &SecretKey::from(SECRET),
        &SigningKeyCache::new(),
    )
    .unwrap();
}
