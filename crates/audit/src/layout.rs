//! Where the trail lives on disk, in CloudTrail's key layout, under `<data-dir>/audit/`:
//!
//! ```text
//! AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_YYYYMMDDTHH00Z_<rand>.json
//! AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_citadel_<region>_YYYYMMDDTHHMMSSZ.json
//! AWSLogs/…/<digest>.json.sig        hex SHA256withRSA signature (S3 metadata on AWS)
//! public-keys/<fingerprint>.der      PKCS #1 RSAPublicKey of each signing key
//! ```
//!
//! Log files are uncompressed `{"Records":[…]}` documents (CloudTrail gzips them; the digest
//! hashes the uncompressed content either way). A log file holds the records of one account
//! and region written during one UTC hour; the digest of that hour is written once the hour is
//! over. The "bucket" of the digests' `s3Bucket` fields is [`BUCKET`]; paths are relative to
//! the audit directory.

use time::OffsetDateTime;

/// The bucket name digests use for the audit directory.
pub const BUCKET: &str = "citadel-audit";
/// The trail name in digest file names.
pub const TRAIL_NAME: &str = "citadel";
/// The directory holding the exported public keys.
pub const PUBLIC_KEY_DIR: &str = "public-keys";
/// The signature sidecar's suffix.
pub const SIGNATURE_SUFFIX: &str = ".sig";

fn ymd(t: OffsetDateTime) -> String {
    format!("{:04}/{:02}/{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `YYYYMMDDTHH00Z` of the hour starting at `hour`.
pub fn hour_stamp(hour: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}00Z",
        hour.year(),
        u8::from(hour.month()),
        hour.day(),
        hour.hour()
    )
}

/// `YYYYMMDDTHHMMSSZ`.
fn second_stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The directory of the log files of `account`/`region` for the hour starting at `hour`.
pub fn log_dir(account: &str, region: &str, hour: OffsetDateTime) -> String {
    format!("AWSLogs/{account}/CloudTrail/{region}/{}", ymd(hour))
}

/// The name prefix shared by every log file of that hour (`…_YYYYMMDDTHH00Z_`).
pub fn log_prefix(account: &str, region: &str, hour: OffsetDateTime) -> String {
    format!("{account}_CloudTrail_{region}_{}_", hour_stamp(hour))
}

/// A new log file's relative path.
pub fn log_path(account: &str, region: &str, hour: OffsetDateTime, unique: &str) -> String {
    format!(
        "{}/{}{unique}.json",
        log_dir(account, region, hour),
        log_prefix(account, region, hour)
    )
}

/// The relative path of the digest whose period ends at `end`.
pub fn digest_path(account: &str, region: &str, end: OffsetDateTime) -> String {
    format!(
        "AWSLogs/{account}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{region}_{}.json",
        ymd(end),
        second_stamp(end)
    )
}

/// `account`/`region` are safe path components (they come from credentials and SigV4 scopes
/// that were already validated, but a path component must never climb out of the tree).
pub fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
