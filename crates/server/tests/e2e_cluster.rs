//! Two `citadel serve` nodes on one private PostgreSQL server (initdb + pg_ctl in a temp dir),
//! sharing the root key file: changes made on one node reach the other's caches within a second
//! (timed), `operator rotate` on one reaches both, scheduled work runs once across the cluster
//! and moves to the survivor when the leader is killed with SIGKILL, and a PostgreSQL restart
//! under a write load loses no acknowledged write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use citadel_store::pg_harness::PgServer;
use common::{Server, ServerBuilder, json, repo_root, stderr, stdout};
use serde_json::Value;

const ROOT_ID: &str = "AKIACLUSTERROOT00001";
const ROOT_SECRET: &str = "cluster-root-secret-access-key-0000000000";

fn node(builder: ServerBuilder, pg: &PgServer, db: &str, dir: &Path, root_key: &Path) -> Server {
    builder
        .arg("--database-url")
        .arg(&pg.url_without_password(db))
        .arg("--root-key-file")
        .arg(root_key.to_str().unwrap())
        .env("CITADEL_DATABASE_PASSWORD", pg.password())
        .data_dir(dir)
        .start()
}

fn production(pg: &PgServer, db: &str, dir: &Path, root_key: &Path) -> Server {
    let builder = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET);
    node(builder, pg, db, dir, root_key)
}

/// `tests/clients/cluster.py <args>` against nodes `a` and `b`.
fn cluster_py(a: &Server, b: &Server, creds: (&str, &str), args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("tests/clients/cluster.py"))
        .args(args)
        .env("CITADEL_URL_A", &a.url)
        .env("CITADEL_URL_B", &b.url)
        .env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1)
        .env("AWS_CONFIG_FILE", "/nonexistent/citadel-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/citadel-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run_py(a: &Server, b: &Server, creds: (&str, &str), args: &[&str]) -> String {
    let out = cluster_py(a, b, creds, args).output().unwrap();
    assert!(
        out.status.success(),
        "cluster.py {args:?} failed:\n{}\n--- node A\n{}\n--- node B\n{}",
        stderr(&out),
        a.log(),
        b.log()
    );
    stdout(&out)
}

fn http_get(server: &Server, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("{}{path}", server.url))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn is_leader(server: &Server) -> bool {
    http_get(server, "/_citadel/health")["leader"] == Value::Bool(true)
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn two_nodes_stay_coherent_rotate_together_and_survive_a_database_restart() {
    let mut pg = PgServer::start();
    let db = pg.create_database("citadel");
    let work = tempfile::tempdir().unwrap();
    let root_key = work.path().join("root.key");
    let a = production(&pg, &db, &work.path().join("a"), &root_key);
    let b = production(&pg, &db, &work.path().join("b"), &root_key);
    let root = (ROOT_ID, ROOT_SECRET);

    // --- Exactly one node leads.
    wait_for("a leader", Duration::from_secs(10), || {
        is_leader(&a) || is_leader(&b)
    });
    assert!(is_leader(&a) != is_leader(&b), "exactly one leader");

    // --- Cross-node coherence, timed on B after each change on A.
    let summary: Value = serde_json::from_str(&run_py(&a, &b, root, &["coherence"])).unwrap();
    for field in [
        "disable_latency",
        "enable_latency",
        "policy_latency",
        "alias_latency",
        "grant_latency",
        "revoke_latency",
        "access_key_latency",
        "secret_latency",
        "parameter_latency",
        "setting_latency",
    ] {
        let secs = summary[field].as_f64().unwrap();
        assert!(secs < 1.0, "{field}: {secs}s\n{summary}");
    }
    assert_eq!(
        summary["access_key_code"], "InvalidClientTokenId",
        "{summary}"
    );
    eprintln!("cross-node latencies: {summary}");

    // --- `operator rotate` on A: B picks up the new keyring term and writes under it.
    let term = |s: &Server| http_get(s, "/_citadel/sys/seal-status")["term"].as_u64();
    let before = term(&b).unwrap();
    let out = a.operator(&["rotate"], None, Some(root));
    assert!(out.status.success(), "rotate: {}", stderr(&out));
    let after = term(&a).unwrap();
    assert!(after > before);
    wait_for(
        "B to adopt the rotated keyring",
        Duration::from_secs(1),
        || term(&b) == Some(after),
    );

    // --- PostgreSQL restarts in the middle of a write load: requests fail with a clear 503
    // while it is down, service resumes by itself, and every acknowledged write is there.
    let load = cluster_py(&a, &b, root, &["load", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    pg.restart();
    let out = load.wait_with_output().unwrap();
    assert!(out.status.success(), "load: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acked = report["acked"].as_array().unwrap();
    let attempted = report["attempted"].as_u64().unwrap();
    eprintln!(
        "load: {attempted} attempted, {} acknowledged, errors {}",
        acked.len(),
        report["errors"]
    );
    for code in report["errors"].as_object().unwrap().keys() {
        assert!(
            code == "ServiceUnavailableException" || code == "ServiceUnavailable",
            "unexpected error during the restart: {code} ({report})"
        );
    }
    // Writes succeeded after the restart too (the last ones are numbered above the first
    // failure, if any).
    let last: u64 = acked.last().unwrap()[0].as_str().unwrap()["/load/".len()..]
        .parse()
        .unwrap();
    assert!(
        last + 5 >= attempted,
        "no recovery after the restart: {report}"
    );
    let expected = work.path().join("acked.json");
    std::fs::write(&expected, serde_json::to_vec(acked).unwrap()).unwrap();
    let checked = run_py(&b, &a, root, &["verify", expected.to_str().unwrap()]);
    assert_eq!(checked.trim(), acked.len().to_string());
    assert!(!a.log().contains(pg.password()) && !b.log().contains(pg.password()));
}

#[test]
fn scheduled_rotation_runs_once_and_fails_over_when_the_leader_is_killed() {
    let pg = PgServer::start();
    let db = pg.create_database("citadel");
    let work = tempfile::tempdir().unwrap();
    let root_key = work.path().join("root.key");
    // Dev mode honours the test hooks: tick every 200 ms, and run work due within 100 days
    // now, so a 90-day rotation runs at once, and only once (the next one is 180 days out).
    let dev = || {
        Server::dev()
            .env("CITADEL_TEST_SCHEDULER_INTERVAL_MS", "200")
            .env(
                "CITADEL_TEST_SCHEDULER_AHEAD_SECS",
                &(100 * 86_400).to_string(),
            )
    };
    let a = node(dev(), &pg, &db, &work.path().join("a"), &root_key);
    let b = node(dev(), &pg, &db, &work.path().join("b"), &root_key);
    let creds = ("111122223333", "dev-secret");
    wait_for("a leader", Duration::from_secs(10), || {
        is_leader(&a) || is_leader(&b)
    });
    let (leader, follower) = if is_leader(&a) { (a, b) } else { (b, a) };
    assert!(!is_leader(&follower));

    let rotations = |server: &Server, key: &str| -> Vec<Value> {
        let out = server.aws(
            creds.0,
            creds.1,
            &["kms", "list-key-rotations", "--key-id", key],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)["Rotations"].as_array().unwrap().clone()
    };

    // --- Both nodes alive: keys created on the follower are rotated by the leader alone.
    let first = run_py(&follower, &leader, creds, &["rotations", "1"]);
    let first = first.trim();
    wait_for("the first rotation", Duration::from_secs(10), || {
        rotations(&follower, first).len() == 1
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rotations(&leader, first).len(), 1);
    assert!(leader.log().contains("KMS key rotated automatically"));
    assert!(
        !follower.log().contains("KMS key rotated automatically"),
        "a follower ran scheduled work:\n{}",
        follower.log()
    );

    // --- The leader is killed (SIGKILL) while rotations are due: the survivor takes over and
    // every key is rotated exactly once.
    let mut script = cluster_py(&follower, &leader, creds, &["rotations", "6"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = Vec::new();
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut leader = Some(leader);
    while let Some(Ok(line)) = lines.next() {
        keys.push(line.trim().to_owned());
        if keys.len() == 3 {
            let (_, _keep) = leader.take().unwrap().kill9();
        }
    }
    assert!(script.wait().unwrap().success());
    assert_eq!(keys.len(), 6);
    let took = wait_for("fail-over", Duration::from_secs(10), || {
        is_leader(&follower)
    });
    eprintln!("fail-over took {took:?}");
    for key in &keys {
        wait_for("the rotation of every key", Duration::from_secs(10), || {
            !rotations(&follower, key).is_empty()
        });
    }
    // A few more ticks: nothing runs twice.
    std::thread::sleep(Duration::from_secs(1));
    for key in keys.iter().chain(std::iter::once(&first.to_owned())) {
        let r = rotations(&follower, key);
        assert_eq!(r.len(), 1, "{key}: {r:?}");
        assert_eq!(r[0]["RotationType"], "AUTOMATIC");
    }
}
