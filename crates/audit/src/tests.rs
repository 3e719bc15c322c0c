#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use citadel_api::{OperationInput, OperationOutput, Principal};
use citadel_store::{RootKey, SealedStore, SqliteBackend};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::clock::ManualClock;
use crate::index::{self, Query};
use crate::record::{Call, Caller, Record};
use crate::redact::{HIDDEN, redact};
use crate::{AuditConfig, AuditLog, FileKind, layout, verify};

// ------------------------------------------------------------------------------ redaction

/// The generated model sources, by `ServiceSpec::name`.
const GENERATED: &[(&str, &str)] = &[
    ("acm", include_str!("../../model/src/generated/acm.rs")),
    (
        "acm-pca",
        include_str!("../../model/src/generated/acm_pca.rs"),
    ),
    (
        "cloudtrail",
        include_str!("../../model/src/generated/cloudtrail.rs"),
    ),
    (
        "events",
        include_str!("../../model/src/generated/events.rs"),
    ),
    ("iam", include_str!("../../model/src/generated/iam.rs")),
    ("kms", include_str!("../../model/src/generated/kms.rs")),
    (
        "organizations",
        include_str!("../../model/src/generated/organizations.rs"),
    ),
    (
        "secretsmanager",
        include_str!("../../model/src/generated/secretsmanager.rs"),
    ),
    ("ssm", include_str!("../../model/src/generated/ssm.rs")),
    ("sts", include_str!("../../model/src/generated/sts.rs")),
    ("wafv2", include_str!("../../model/src/generated/wafv2.rs")),
];

const MARKER: &str = "SECRET-MARKER-9f2c";

/// A JSON sample of a generated Rust field type with every sensitive leaf set to the marker.
fn sample(ty: &str) -> Value {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return sample(inner);
    }
    if let Some(inner) = ty.strip_prefix("Box<").and_then(|t| t.strip_suffix('>')) {
        return sample(inner);
    }
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return json!([sample(inner), sample(inner)]);
    }
    if let Some(inner) = ty
        .strip_prefix("BTreeMap<String, ")
        .and_then(|t| t.strip_suffix('>'))
    {
        return json!({"k1": sample(inner), "K2": sample(inner)});
    }
    match ty {
        "SensitiveString" => json!(MARKER),
        "SensitiveBlob" => json!(MARKER),
        _ => json!("plain"),
    }
}

/// Every `(shape, wire member, Rust type)` whose type holds `Sensitive*`, read from the
/// generated source (the structs the services actually decode into).
fn sensitive_fields(source: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut shape: Option<String> = None;
    let mut wire: Option<String> = None;
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("/// The model's `") {
            shape = rest.split('`').next().map(str::to_owned);
            continue;
        }
        if let Some(rest) = line.strip_prefix("#[serde(rename = \"") {
            wire = rest.split('"').next().map(str::to_owned);
            continue;
        }
        if line.starts_with("pub ")
            && line.contains(": Option<")
            && line.contains("Sensitive")
            && let (Some(s), Some(w)) = (&shape, wire.take())
        {
            let ty = line.split_once(": ").map(|(_, t)| t.trim_end_matches(','));
            out.push((s.clone(), w, ty.unwrap_or_default().to_owned()));
        }
        if line == "}" {
            wire = None;
        }
    }
    out
}

#[test]
fn no_sensitive_member_of_any_generated_service_survives_redaction() {
    let mut total = 0;
    for (service, source) in GENERATED {
        let fields = sensitive_fields(source);
        if ["kms", "secretsmanager", "ssm", "sts", "iam"].contains(service) {
            assert!(!fields.is_empty(), "{service}: no sensitive members found");
        }
        for (shape, wire, ty) in fields {
            let value = json!({ wire.clone(): sample(&ty) });
            let redacted = redact(service, &shape, value);
            let text = redacted.to_string();
            assert!(
                !text.contains(MARKER),
                "{service} {shape}.{wire} ({ty}) survived redaction: {text}"
            );
            assert!(
                text.contains(HIDDEN),
                "{service} {shape}.{wire} ({ty}) was dropped instead of hidden: {text}"
            );
            total += 1;
        }
    }
    assert!(total > 50, "only {total} sensitive members found");
}

/// A full value of `shape` from the audit table, with the marker at every sensitive shape.
fn synthesize(
    table: &'static [(&'static str, citadel_model::AuditShape)],
    shape: &str,
    depth: usize,
) -> Value {
    use citadel_model::AuditShape;
    if depth > 6 {
        return Value::Null;
    }
    match citadel_model::audit_shape::lookup(table, shape) {
        Some(AuditShape::Sensitive) => json!(MARKER),
        Some(AuditShape::Structure(members)) => Value::Object(
            members
                .iter()
                .map(|(w, t)| ((*w).to_owned(), synthesize(table, t, depth + 1)))
                .collect(),
        ),
        Some(AuditShape::List(m)) => json!([synthesize(table, m, depth + 1)]),
        Some(AuditShape::Map(v)) => json!({"Key": synthesize(table, v, depth + 1)}),
        None => json!("plain"),
    }
}

#[test]
fn every_operation_input_and_output_is_redacted_from_its_root() {
    for spec in citadel_model::all_specs() {
        let table = citadel_model::audit_shape::audit_shapes(spec.name);
        assert!(!table.is_empty(), "{} has no audit table", spec.name);
        for op in spec.operations {
            for shape in [op.input, op.output].into_iter().flatten() {
                let value = synthesize(table, shape, 0);
                let text = redact(spec.name, shape, value).to_string();
                assert!(
                    !text.contains(MARKER),
                    "{}:{} {shape}: {text}",
                    spec.name,
                    op.name
                );
            }
        }
    }
}

#[test]
fn the_sensitive_members_aws_omits_are_hidden() {
    let cases = [
        ("kms", "EncryptRequest", json!({"Plaintext": "cGxhaW4="})),
        (
            "kms",
            "GenerateDataKeyResponse",
            json!({"Plaintext": "cGxhaW4="}),
        ),
        (
            "secretsmanager",
            "CreateSecretRequest",
            json!({"SecretString": "pw", "SecretBinary": "cGxhaW4="}),
        ),
        (
            "secretsmanager",
            "GetRandomPasswordResponse",
            json!({"RandomPassword": "pw"}),
        ),
        (
            "secretsmanager",
            "PutSecretValueRequest",
            json!({"SecretString": "pw"}),
        ),
        ("ssm", "PutParameterRequest", json!({"Value": "pw"})),
        (
            "iam",
            "CreateLoginProfileRequest",
            json!({"Password": "pw"}),
        ),
        (
            "iam",
            "ChangePasswordRequest",
            json!({"OldPassword": "pw", "NewPassword": "pw"}),
        ),
        (
            "iam",
            "CreateAccessKeyResponse",
            json!({"AccessKey": {"SecretAccessKey": "pw"}}),
        ),
        (
            "sts",
            "AssumeRoleResponse",
            json!({"Credentials": {"SecretAccessKey": "pw"}}),
        ),
    ];
    for (service, shape, value) in cases {
        let text = redact(service, shape, value).to_string();
        assert!(
            !text.contains("pw") && !text.contains("cGxhaW4="),
            "{service} {shape}: {text}"
        );
        assert!(text.contains(HIDDEN), "{service} {shape}: {text}");
    }
}

// ------------------------------------------------------------------------------ the writer

async fn store(dir: &Path) -> Arc<SealedStore> {
    let backend = SqliteBackend::open(dir.join("citadel.db")).await.unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = RootKey::generate().unwrap();
    store.initialize_file(&key).await.unwrap();
    store.unseal_with_key(&key).await.unwrap();
    store
}

fn kms_call_record(
    principal: &Principal,
    operation: &str,
    region: &str,
    input: Value,
    at: time::OffsetDateTime,
) -> Record {
    let input = OperationInput::Json(serde_json::to_vec(&input).unwrap().into());
    let output = OperationOutput::Json(json!({
        "KeyId": "arn:aws:kms:us-east-1:111122223333:key/k-1",
        "Plaintext": "c2VjcmV0",
    }));
    let request_id = uuid::Uuid::new_v4().to_string();
    Record::build(
        &Call {
            service: &citadel_model::kms::SPEC,
            operation: citadel_model::kms::SPEC.operation(operation).unwrap(),
            request_id: &request_id,
            region,
            caller: Caller::Principal(principal),
            fallback_account: "000000000000",
            source_ip: Some("127.0.0.1".parse().unwrap()),
            user_agent: Some("test"),
            tls: None,
            input: &input,
            outcome: Ok(&output),
        },
        at,
    )
}

struct Trail {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    log: Arc<AuditLog>,
    clock: ManualClock,
    store: Arc<SealedStore>,
    root: Principal,
}

impl Trail {
    async fn new() -> Trail {
        Self::with_retention(crate::DEFAULT_RETENTION_DAYS).await
    }

    async fn with_retention(days: u32) -> Trail {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path()).await;
        let clock = ManualClock::new(datetime!(2024-05-01 10:15:00 UTC));
        let mut config = AuditConfig::new(tmp.path());
        config.retention_days = days;
        let dir = config.dir.clone();
        let log = AuditLog::start(config, store.clone(), Arc::new(clock.clone())).unwrap();
        Trail {
            _tmp: tmp,
            dir,
            log,
            clock,
            store,
            root: Principal::root("111122223333", "AKIAROOT"),
        }
    }

    async fn record(&self, operation: &str, region: &str) -> Record {
        let r = kms_call_record(
            &self.root,
            operation,
            region,
            json!({"KeyId": "k-1", "Plaintext": "c2VjcmV0"}),
            self.clock.now(),
        );
        self.log.record(r.clone()).await.unwrap();
        r
    }
}

use crate::clock::Clock as _;

/// Three hours of trail in two regions: hour 10 with logs, hour 11 with a log, hour 12 empty.
async fn three_hours() -> Trail {
    three_hours_kept(crate::DEFAULT_RETENTION_DAYS).await
}

async fn three_hours_kept(days: u32) -> Trail {
    let t = Trail::with_retention(days).await;
    // Concurrent calls share group commits.
    let (a, b, c) = tokio::join!(
        t.record("Encrypt", "us-east-1"),
        t.record("Decrypt", "us-east-1"),
        t.record("CreateKey", "us-east-1"),
    );
    assert_ne!(a.event_id, b.event_id);
    assert_ne!(b.event_id, c.event_id);
    t.record("Decrypt", "eu-west-1").await;
    t.clock.set(datetime!(2024-05-01 11:05:00 UTC));
    t.record("Decrypt", "us-east-1").await;
    t.clock.set(datetime!(2024-05-01 13:10:00 UTC));
    t.log.maintain().await.unwrap();
    t
}

fn files_under(dir: &Path, contains: &str) -> Vec<PathBuf> {
    crate::writer::walk_files(&dir.join("AWSLogs"), 6)
        .unwrap()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(contains))
        .collect()
}

fn digest_files(dir: &Path, region: &str) -> Vec<PathBuf> {
    files_under(dir, &format!("/CloudTrail-Digest/{region}/"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_files_digests_and_a_clean_verification() {
    let t = three_hours().await;
    let logs = files_under(&t.dir, "/CloudTrail/us-east-1/");
    assert_eq!(logs.len(), 2, "{logs:?}");
    let first = std::fs::read_to_string(&logs[0]).unwrap();
    let parsed: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(parsed["Records"].as_array().unwrap().len(), 3);
    assert!(!first.contains("c2VjcmV0"), "plaintext reached the log");
    assert!(first.contains(HIDDEN));
    let name = logs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("111122223333_CloudTrail_us-east-1_20240501T1000Z_"),
        "{name}"
    );
    assert!(
        logs[0]
            .to_string_lossy()
            .contains("/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/")
    );

    // Digests for hours 10, 11 and 12 (empty), chained.
    let digests = digest_files(&t.dir, "us-east-1");
    assert_eq!(digests.len(), 3, "{digests:?}");
    let d: Vec<crate::digest::Digest> = digests
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(d[0].digest_start_time, "2024-05-01T10:00:00Z");
    assert_eq!(d[0].digest_end_time, "2024-05-01T11:00:00Z");
    assert_eq!(d[0].previous_digest_signature, None);
    assert_eq!(d[0].previous_digest_s3_object, None);
    assert_eq!(d[0].log_files.len(), 1);
    assert_eq!(
        d[0].log_files[0].hash_value,
        crate::digest::sha256_hex(first.as_bytes())
    );
    assert_eq!(
        d[1].previous_digest_s3_object.as_deref(),
        Some(d[0].digest_s3_object.as_str())
    );
    assert_eq!(
        d[1].previous_digest_hash_value.as_deref(),
        Some(crate::digest::sha256_hex(&std::fs::read(&digests[0]).unwrap()).as_str())
    );
    assert_eq!(
        d[1].previous_digest_signature.as_deref(),
        Some(
            std::fs::read_to_string(digests[0].with_extension("json.sig"))
                .unwrap()
                .as_str()
        )
    );
    assert!(d[2].log_files.is_empty());
    assert_eq!(d[2].newest_event_time, None);
    assert!(digests[2].to_string_lossy().ends_with(
        "111122223333_CloudTrail-Digest_us-east-1_citadel_us-east-1_20240501T130000Z.json"
    ));
    // Raw JSON: the starting digest has explicit nulls, as CloudTrail's.
    let raw: Value = serde_json::from_slice(&std::fs::read(&digests[0]).unwrap()).unwrap();
    assert_eq!(raw["previousDigestSignature"], Value::Null);
    assert_eq!(raw["digestSignatureAlgorithm"], "SHA256withRSA");

    let report = verify(&t.dir, None, None, None).unwrap();
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.digests_valid, 6, "{report}");
    assert_eq!(report.logs_valid, 3, "{report}");
    assert!(
        report.to_string().contains("6/6 digest files valid"),
        "{report}"
    );

    // The public key is in the store for ListPublicKeys and exported for offline use.
    let keys = crate::public_keys(&t.store).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].fingerprint.len(), 32);
    assert!(
        t.dir
            .join(layout::PUBLIC_KEY_DIR)
            .join(format!("{}.der", keys[0].fingerprint))
            .exists()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Applies `tamper` to a copy of the trail and returns the verification report.
fn tampered(t: &Trail, tamper: impl FnOnce(&Path)) -> crate::Report {
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("audit");
    copy_dir(&t.dir, &dir);
    tamper(&dir);
    verify(&dir, None, None, None).unwrap()
}

fn only_finding(report: &crate::Report, kind: FileKind, path: &Path, problem: &str) {
    assert!(!report.is_valid());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == kind && f.path == path && f.problem.contains(problem)),
        "expected {kind:?} {} {problem}: {report}",
        path.display()
    );
    for f in &report.findings {
        assert_eq!(f.path, path, "unexpected finding {f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_detected_and_named() {
    let t = three_hours().await;
    let rel = |p: &Path| p.strip_prefix(&t.dir).unwrap().to_path_buf();
    let logs: Vec<PathBuf> = files_under(&t.dir, "/CloudTrail/us-east-1/")
        .iter()
        .map(|p| rel(p))
        .collect();
    let digests: Vec<PathBuf> = digest_files(&t.dir, "us-east-1")
        .iter()
        .map(|p| rel(p))
        .collect();

    // A log file edited by hand.
    let log0 = logs[0].clone();
    let r = tampered(&t, |d| {
        let p = d.join(&log0);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("Encrypt", "Encrypx");
        std::fs::write(&p, text).unwrap();
    });
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&log0));
    only_finding(&r, FileKind::Log, &path, "hash value doesn't match");
    assert_eq!(r.logs_invalid, 1);
    assert!(r.to_string().contains(&format!(
        "Log file\t{}\tINVALID: hash value doesn't match",
        path.display()
    )));

    // A log file deleted.
    let log1 = logs[1].clone();
    let r = tampered(&t, |d| std::fs::remove_file(d.join(&log1)).unwrap());
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&log1));
    only_finding(&r, FileKind::Log, &path, "not found");

    // A log file inserted into a digested hour.
    let inserted = log0
        .with_file_name("111122223333_CloudTrail_us-east-1_20240501T1000Z_deadbeefdeadbeef.json");
    let ins = inserted.clone();
    let r = tampered(&t, |d| {
        std::fs::write(d.join(&ins), "{\"Records\":[\n]}\n").unwrap()
    });
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&inserted));
    only_finding(&r, FileKind::Log, &path, "not listed in any digest");

    // The middle digest deleted (with its signature).
    let mid = digests[1].clone();
    let r = tampered(&t, |d| {
        std::fs::remove_file(d.join(&mid)).unwrap();
        std::fs::remove_file(d.join(format!("{}.sig", mid.display()))).unwrap();
    });
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&mid), "{r}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FileKind::Digest && f.problem == "not found"),
        "{r}"
    );
    // Its hour's log file is no longer listed anywhere either.
    assert!(
        r.findings
            .iter()
            .all(|f| f.path.ends_with(&mid) || f.path.ends_with(&log1)),
        "{r}"
    );

    // A digest modified (an extra log file entry would need re-signing).
    let first = digests[0].clone();
    let r = tampered(&t, |d| {
        let p = d.join(&first);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("2024-05-01T10:00:00Z", "2024-05-01T09:00:00Z");
        std::fs::write(&p, text).unwrap();
    });
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&first), "{r}");
    only_finding(&r, FileKind::Digest, &path, "signature verification failed");
    assert!(
        r.findings
            .iter()
            .any(|f| f.problem.contains("hash value doesn't match")),
        "{r}"
    );
    assert_eq!(r.digests_invalid, 1);

    // A bad signature.
    let last = digests[2].clone();
    let r = tampered(&t, |d| {
        let p = d.join(format!("{}.sig", last.display()));
        let mut sig = std::fs::read_to_string(&p).unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        sig.replace_range(0..1, flipped);
        std::fs::write(&p, sig).unwrap();
    });
    let path = r.findings.first().map(|f| f.path.clone()).unwrap();
    assert!(path.ends_with(&last), "{r}");
    only_finding(&r, FileKind::Digest, &path, "signature verification failed");

    // A time range that excludes the tampered hour reports it valid.
    let r = tampered(&t, |d| std::fs::remove_file(d.join(&log1)).unwrap());
    assert!(!r.is_valid());
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("audit");
    copy_dir(&t.dir, &dir);
    std::fs::remove_file(dir.join(&log1)).unwrap();
    let r = verify(
        &dir,
        None,
        Some(datetime!(2024-05-01 10:00:00 UTC)),
        Some(datetime!(2024-05-01 11:00:00 UTC)),
    )
    .unwrap();
    assert!(r.is_valid(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_by_every_attribute_with_ranges_pagination_and_retention() {
    let t = three_hours_kept(2).await;
    let q = |attribute: Option<(&str, &str)>| Query {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        attribute: attribute.map(|(k, v)| (k.to_owned(), v.to_owned())),
        max_results: 50,
        ..Query::default()
    };
    let all = index::lookup(&t.store, &q(None)).await.unwrap();
    assert_eq!(all.records.len(), 4);
    // Newest first.
    assert_eq!(all.records[0].event_time, "2024-05-01T11:05:00Z");
    let decrypts = index::lookup(&t.store, &q(Some(("EventName", "Decrypt"))))
        .await
        .unwrap();
    assert_eq!(decrypts.records.len(), 2);
    let id = &all.records[1].event_id;
    let by_id = index::lookup(&t.store, &q(Some(("EventId", id))))
        .await
        .unwrap();
    assert_eq!(by_id.records.len(), 1);
    for (attribute, value, n) in [
        ("ReadOnly", "true", 3),
        ("ReadOnly", "false", 1),
        ("Username", "root", 4),
        ("ResourceType", "AWS::KMS::Key", 3),
        (
            "ResourceName",
            "arn:aws:kms:us-east-1:111122223333:key/k-1",
            3,
        ),
        ("EventSource", "kms.amazonaws.com", 4),
        ("AccessKeyId", "AKIAROOT", 4),
        ("EventName", "Sign", 0),
    ] {
        let page = index::lookup(&t.store, &q(Some((attribute, value))))
            .await
            .unwrap();
        assert_eq!(page.records.len(), n, "{attribute}={value}");
    }
    // Other regions and accounts are separate.
    let eu = index::lookup(
        &t.store,
        &Query {
            region: "eu-west-1".into(),
            ..q(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(eu.records.len(), 1);

    // Time range: only hour 10.
    let range = Query {
        start: Some(datetime!(2024-05-01 10:00:00 UTC).unix_timestamp()),
        end: Some(datetime!(2024-05-01 10:59:59 UTC).unix_timestamp()),
        ..q(None)
    };
    assert_eq!(
        index::lookup(&t.store, &range).await.unwrap().records.len(),
        3
    );

    // Pagination: 4 records in pages of 3.
    let first = index::lookup(
        &t.store,
        &Query {
            max_results: 3,
            ..q(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(first.records.len(), 3);
    let next = first.next.clone().unwrap();
    let second = index::lookup(
        &t.store,
        &Query {
            max_results: 3,
            after: Some(next),
            ..q(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(second.records.len(), 1);
    assert!(second.next.is_none());
    let mut ids: Vec<_> = first
        .records
        .iter()
        .chain(&second.records)
        .map(|r| r.event_id.clone())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    // Retention (2 days here): 2 days and a bit later, the index is swept.
    t.clock.set(datetime!(2024-05-03 10:30:00 UTC));
    t.log.maintain().await.unwrap();
    assert_eq!(
        index::lookup(&t.store, &q(None))
            .await
            .unwrap()
            .records
            .len(),
        1
    );
    t.clock.set(datetime!(2024-05-03 11:30:00 UTC));
    t.log.maintain().await.unwrap();
    assert!(
        index::lookup(&t.store, &q(None))
            .await
            .unwrap()
            .records
            .is_empty()
    );
    // The log files stay, and digests caught up through the idle hours still verify.
    let report = verify(&t.dir, None, None, None).unwrap();
    assert!(report.is_valid(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_unfinished_by_a_crash_is_repaired_and_digested() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let clock = ManualClock::new(datetime!(2024-05-01 10:15:00 UTC));
    let config = AuditConfig::new(tmp.path());
    let dir = config.dir.clone();
    let log = AuditLog::start(config.clone(), store.clone(), Arc::new(clock.clone())).unwrap();
    let root = Principal::root("111122223333", "AKIAROOT");
    for _ in 0..2 {
        log.record(kms_call_record(
            &root,
            "Decrypt",
            "us-east-1",
            json!({}),
            clock.now(),
        ))
        .await
        .unwrap();
    }
    // Simulate a crash: a torn write at the end of the open file, and no footer.
    let path = files_under(&dir, "/CloudTrail/us-east-1/").pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b",{\"eventVersion\":\"1.1").unwrap();
    drop(f);
    drop(log);
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The writer thread closed the file on shutdown after the torn bytes: make it look torn again.
    let text = std::fs::read_to_string(&path).unwrap();
    let torn = text.trim_end_matches("]}\n");
    std::fs::write(&path, torn).unwrap();

    let log = AuditLog::start(config, store.clone(), Arc::new(clock.clone())).unwrap();
    let repaired: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(repaired["Records"].as_array().unwrap().len(), 2);
    clock.set(datetime!(2024-05-01 11:00:01 UTC));
    log.maintain().await.unwrap();
    let report = verify(&dir, None, None, None).unwrap();
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.logs_valid, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_store_fails_the_record() {
    let t = Trail::new().await;
    t.store.seal();
    let r = kms_call_record(&t.root, "Decrypt", "us-east-1", json!({}), t.clock.now());
    assert!(t.log.record(r).await.is_err());
    assert_eq!(t.log.failures(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_digest_at_shutdown_covers_the_partial_hour_and_the_chain_goes_on() {
    let t = Trail::new().await;
    t.record("Decrypt", "us-east-1").await;
    t.clock.set(datetime!(2024-05-01 10:20:00 UTC));
    t.log.close().await.unwrap();
    let report = verify(&t.dir, None, None, None).unwrap();
    assert!(report.is_valid(), "{report}");
    assert_eq!(
        (report.digests_valid, report.logs_valid),
        (1, 1),
        "{report}"
    );
    let d = digest_files(&t.dir, "us-east-1");
    assert!(
        d[0].to_string_lossy().ends_with("_20240501T102000Z.json"),
        "{d:?}"
    );

    // Records after the final digest land in a new file of the same hour, listed by the next
    // digest only.
    t.clock.set(datetime!(2024-05-01 10:25:00 UTC));
    t.record("Encrypt", "us-east-1").await;
    t.clock.set(datetime!(2024-05-01 11:00:05 UTC));
    t.log.maintain().await.unwrap();
    let report = verify(&t.dir, None, None, None).unwrap();
    assert!(report.is_valid(), "{report}");
    assert_eq!(
        (report.digests_valid, report.logs_valid),
        (2, 2),
        "{report}"
    );
    let second: crate::digest::Digest =
        serde_json::from_slice(&std::fs::read(&digest_files(&t.dir, "us-east-1")[1]).unwrap())
            .unwrap();
    assert_eq!(second.digest_start_time, "2024-05-01T10:20:00Z");
    assert_eq!(second.digest_end_time, "2024-05-01T11:00:00Z");
    assert_eq!(second.log_files.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_one_commit_page_through_every_record_once_newest_first() {
    let t = Trail::new().await;
    let at = datetime!(2024-05-01 10:15:00 UTC);
    let made: Vec<Record> = (0..25)
        .map(|i| {
            let op = if i % 3 == 0 { "Decrypt" } else { "Encrypt" };
            kms_call_record(&t.root, op, "us-east-1", json!({"KeyId": "k-1"}), at)
        })
        .collect();
    // Two group commits of the same second, the second one later.
    let (first, second) = made.split_at(12);
    let nanos = at.unix_timestamp_nanos();
    for (commit, offset) in [(first, 0), (second, 1_000)] {
        let json: Vec<Vec<u8>> = commit
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap())
            .collect();
        let refs: Vec<(&Record, &[u8])> = commit
            .iter()
            .zip(&json)
            .map(|(r, j)| (r, j.as_slice()))
            .collect();
        let ops = index::index_ops(&refs, "111122223333", "us-east-1", nanos + offset);
        t.store.batch(ops).await.unwrap();
    }
    let q = |attribute: Option<(&str, &str)>, after: Option<String>| Query {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        attribute: attribute.map(|(k, v)| (k.to_owned(), v.to_owned())),
        max_results: 7,
        after,
        ..Query::default()
    };
    for (attribute, expected) in [
        (None, made.iter().rev().collect::<Vec<_>>()),
        (
            Some(("EventName", "Decrypt")),
            made.iter()
                .rev()
                .filter(|r| r.event_name == "Decrypt")
                .collect(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = index::lookup(&t.store, &q(attribute, after)).await.unwrap();
            assert!(page.records.len() <= 7);
            seen.extend(page.records.into_iter().map(|r| r.event_id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let want: Vec<String> = expected.iter().map(|r| r.event_id.clone()).collect();
        assert_eq!(seen, want, "{attribute:?}: every record once, newest first");
    }
    for r in &made {
        let page = index::lookup(&t.store, &q(Some(("EventId", &r.event_id)), None))
            .await
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].event_id, r.event_id);
    }
}
