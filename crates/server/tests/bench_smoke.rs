//! Keeps the benchmark harness from rotting: a few seconds of every scenario against a
//! production-mode server (real SigV4 verification, an IAM user, the audit trail) and the
//! in-process ceiling. It checks that the harness works and that Citadel answers every request;
//! it asserts nothing about speed (that is `bench/run.sh`'s job, on an idle machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use citadel_bench::client::Signer;
use citadel_bench::{Options, Target, fixtures};
use common::Server;

const ROOT_ID: &str = "AKIACITADELSMOKEROOT";
const ROOT_SECRET: &str = "cItAdElSmOkEsEcReT/0123456789abcdefGHIJK";

#[test]
fn every_scenario_runs_without_errors() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .start();
    let addr = server
        .url
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let opts = Options {
        citadel: Target {
            addr,
            signer: Signer {
                access_key_id: ROOT_ID.to_owned(),
                secret: ROOT_SECRET.into(),
                region: "us-east-1".to_owned(),
            },
            pid: Some(server.child.id()),
        },
        iam_user: true,
        compare: None,
        ceiling_exe: None,
        sizes: fixtures::Sizes {
            parameters: 50,
            secrets: 20,
            keys: 20,
            connections: 4,
        },
        connections: 4,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(500),
        only: Vec::new(),
        commit: "smoke".to_owned(),
        store: "SQLite (embedded)".to_owned(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(citadel_bench::run(&opts)).unwrap();
    let citadel: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.endpoint == "citadel")
        .collect();
    assert!(citadel.len() >= 8, "{}", report.table());
    for r in &citadel {
        assert!(r.ops_per_sec > 0.0, "{}", report.table());
        assert_eq!(r.errors, 0, "{}: {:?}", r.scenario, r.first_error);
        assert!(r.cpu_ms_per_op.is_some());
    }
    let md = report.markdown();
    assert!(
        md.contains("× ceiling") && md.contains("kms.Decrypt"),
        "{md}"
    );
}
