//! `docs/COMPATIBILITY.md` is generated from the dispatcher's own table (the model's operations
//! and what each handler declares it implements), so it cannot drift from the code: this test
//! fails when the committed file differs. Regenerate with
//! `CITADEL_BLESS=1 cargo test -p citadel-server compatibility_doc`.

use std::fmt::Write as _;

use citadel_api::{Protocol, Support};

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::AwsJson1_0 => "awsJson1.0",
        Protocol::AwsJson1_1 => "awsJson1.1",
        Protocol::AwsQuery => "awsQuery",
        Protocol::RestJson1 => "restJson1",
    }
}

fn render() -> String {
    // Handlers with state need a store; an empty one in a scratch directory will do, since
    // only their specs and `implemented()` tables are read.
    let dir = tempfile::tempdir().unwrap();
    let backend = citadel_store::SqliteBackend::open_blocking(dir.path()).unwrap();
    let store = std::sync::Arc::new(citadel_store::SealedStore::new(std::sync::Arc::new(
        backend,
    )));
    let identities = std::sync::Arc::new(citadel_iam::IdentityStore::new(store.clone()));
    let authorizer = std::sync::Arc::new(citadel_iam::Authorizer::new(identities.clone()));
    let handlers =
        crate::run::services(&store, &identities, &authorizer, "000000000000", None).handlers;
    let support = |service: &str, op: &str| -> Option<Support> {
        handlers
            .iter()
            .filter(|h| h.spec().name == service)
            .flat_map(|h| h.implemented().iter())
            .find(|(name, _)| *name == op)
            .map(|(_, s)| *s)
    };
    let mut specs = citadel_model::all_specs().to_vec();
    specs.sort_by_key(|s| s.name);

    let mut out = String::new();
    out.push_str("# Compatibility\n\n");
    out.push_str(
        "Generated from the dispatcher's table by `CITADEL_BLESS=1 cargo test -p citadel-server compatibility_doc`;\n\
         do not edit by hand. Every operation of every listed service is routed and its input is\n\
         validated against the AWS model; an operation marked *not yet* then answers\n\
         `UnsupportedOperationException` (HTTP 400) naming the operation, never a fake success.\n\n",
    );
    out.push_str("| Service | Protocol | Implemented | Partial | Not yet | Operations |\n");
    out.push_str("|---|---|---:|---:|---:|---:|\n");
    for spec in &specs {
        let (mut full, mut partial) = (0, 0);
        for op in spec.operations {
            match support(spec.name, op.name) {
                Some(Support::Full) => full += 1,
                Some(Support::Partial(_)) => partial += 1,
                None => {}
            }
        }
        let total = spec.operations.len();
        let _ = writeln!(
            out,
            "| {} | {} | {full} | {partial} | {} | {total} |",
            spec.name,
            protocol_name(spec.protocol),
            total - full - partial
        );
    }
    for spec in &specs {
        let _ = writeln!(
            out,
            "\n## {} ({}, API version {})\n",
            spec.name,
            protocol_name(spec.protocol),
            spec.api_version
        );
        out.push_str("| Operation | Status |\n|---|---|\n");
        for op in spec.operations {
            let status = match support(spec.name, op.name) {
                Some(Support::Full) => "implemented".to_owned(),
                Some(Support::Partial(missing)) => format!("partial: {missing}"),
                None => "not yet".to_owned(),
            };
            let _ = writeln!(out, "| {} | {status} |", op.name);
        }
    }
    out
}

#[test]
fn compatibility_doc_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COMPATIBILITY.md");
    let want = render();
    if std::env::var_os("CITADEL_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/COMPATIBILITY.md is stale: run CITADEL_BLESS=1 cargo test -p citadel-server compatibility_doc"
    );
}
