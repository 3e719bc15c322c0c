//! The Shamir seal end to end through `citadel operator`: init, sealed 503s, wrong shares,
//! unseal, seal, rotate, restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, parse_init, stderr, stdout};

fn shamir() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("shamir")
        .arg("--insecure-http")
}

fn status(server: &Server) -> String {
    let out = server.operator(&["status"], None, None);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn unseal(server: &Server, share: &str) -> std::process::Output {
    // From stdin, as an operator would paste it.
    server.operator(&["unseal"], Some(&format!("{share}\n")), None)
}

#[test]
fn shamir_init_unseal_seal_rotate_restart() {
    let server = shamir().start();
    assert!(status(&server).contains("Initialized   false"));

    // Before init every API call is refused as sealed.
    let out = server.aws("AKIAANYTHING00000000", "x", &["sts", "get-caller-identity"]);
    assert!(
        stderr(&out).contains("ServiceUnavailableException"),
        "{}",
        stderr(&out)
    );

    let init =
        parse_init(&server.operator(&["init", "--shares", "5", "--threshold", "3"], None, None));
    let (shares, id, secret) = (init.shares, init.access_key_id, init.secret_access_key);
    assert_eq!(shares.len(), 5);
    let log = server.log();
    for share in &shares {
        assert!(!log.contains(share.as_str()), "a key share reached the log");
    }
    assert!(!log.contains(&secret));

    // Initialized, sealed: API calls get a 503 AWS-style error, over both protocols.
    assert!(status(&server).contains("Sealed        true"));
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(
        stderr(&out).contains("ServiceUnavailableException"),
        "{}",
        stderr(&out)
    );
    let out = server.aws(&id, &secret, &["kms", "list-keys"]);
    assert!(
        stderr(&out).contains("ServiceUnavailableException") && stderr(&out).contains("sealed"),
        "{}",
        stderr(&out)
    );

    // A malformed share is refused outright; a well-formed wrong one is caught by the keyring's
    // AEAD once the threshold is reached, and progress starts over.
    let out = unseal(&server, "not-a-share");
    assert!(!out.status.success());
    let mut forged = shares[2].clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(unseal(&server, &shares[0]).status.success());
    assert!(unseal(&server, &shares[1]).status.success());
    assert!(status(&server).contains("Progress      2/3"));
    let out = unseal(&server, &forged);
    assert!(!out.status.success(), "a forged share must not unseal");
    assert!(status(&server).contains("Sealed        true"));
    assert!(status(&server).contains("Progress      0/3"));

    // Any three genuine shares unseal.
    for share in [&shares[4], &shares[1], &shares[3]] {
        let out = unseal(&server, share);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(status(&server).contains("Sealed        false"));
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["Arn"], "arn:aws:iam::000000000000:root");

    // Rotate needs root credentials; unsigned is refused.
    let out = server.operator(&["rotate"], None, None);
    assert!(!out.status.success());
    let out = server.operator(&["rotate"], None, Some((&id, &secret)));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Keyring term  2"), "{}", stdout(&out));
    // Data written under term 1 (the root access key) is still readable.
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Seal: back to 503.
    let out = server.operator(&["seal"], None, Some((&id, &secret)));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(stderr(&out).contains("ServiceUnavailableException"));

    // Restart (hard): sealed until unsealed again, then everything is still there.
    let (data_dir, _keep) = server.kill9();
    let server = shamir().data_dir(&data_dir).start();
    assert!(status(&server).contains("Sealed        true"));
    for share in &shares[..3] {
        assert!(unseal(&server, share).status.success());
    }
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(status(&server).contains("Keyring term  2"));
}

#[test]
fn health_reports_seal_state_for_load_balancers() {
    let server = shamir().start();
    let out = server.python(
        "raw.py",
        "x",
        "x",
        &[r#"{"method": "GET", "path": "/_citadel/health", "sign": false}"#],
    );
    let r = json(&out);
    assert_eq!(r["status"], 501, "not initialized: {r}");
    server.operator(&["init", "--shares", "1", "--threshold", "1"], None, None);
    let out = server.python(
        "raw.py",
        "x",
        "x",
        &[r#"{"method": "GET", "path": "/_citadel/health", "sign": false}"#],
    );
    assert_eq!(json(&out)["status"], 503);
}
