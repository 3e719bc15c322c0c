//! The built-in `postgresql` rotators against a real PostgreSQL server this test starts
//! (initdb into a temp dir, pg_ctl on a free port, scram-sha-256 password auth, TLS with a
//! certificate made by openssl), driven by the real `aws` CLI against the real binary in dev
//! mode: single user over verified TLS, alternating users over a plain connection, and failures
//! (a wrong master password, a database certificate from an unknown CA) that leave AWSCURRENT
//! intact and record why. After each rotation the old password no longer logs in (single user)
//! and the new AWSCURRENT does, checked with `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const SUPERUSER_PASSWORD: &str = "super-Secret-1";

fn lambda(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    out
}

/// The directory holding initdb, pg_ctl and psql: the newest /usr/lib/postgresql/*/bin, or
/// where `initdb` on PATH really lives.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("initdb");
        if candidate.exists() {
            let real = std::fs::canonicalize(&candidate).unwrap();
            return real.parent().unwrap().to_owned();
        }
    }
    panic!("PostgreSQL's initdb was not found (scripts/test installs the postgresql package)");
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server in a temp dir, stopped on drop (even when the test fails).
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        let data = dir.path().join("data");
        let port = free_port();
        let pg = Postgres {
            bin,
            data,
            port,
            as_postgres,
            dir,
        };
        let root = pg.dir.path();
        std::fs::write(root.join("pwfile"), format!("{SUPERUSER_PASSWORD}\n")).unwrap();
        make_tls_files(root);
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(root));
        }
        run(pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-U", "postgres", "-E", "UTF8", "--no-sync"])
            .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", root.join("pwfile").display())));
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            root.display(),
            root.join("server.pem").display(),
            root.join("server.key").display(),
        );
        run(pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .arg("-l")
            .arg(root.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
        pg
    }

    /// psql as `user` with `password` over TCP; Ok(stdout) or Err(stderr).
    fn psql(&self, db: &str, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGPASSFILE", "/nonexistent")
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGSSLMODE", "prefer")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(stderr(&out))
        }
    }

    fn admin(&self, sql: &str) {
        if let Err(e) = self.psql("postgres", "postgres", SUPERUSER_PASSWORD, sql) {
            panic!("{sql}: {e}");
        }
    }

    fn can_login(&self, db: &str, user: &str, password: &str) -> bool {
        self.psql(db, user, password, "SELECT 1").is_ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A CA, a server certificate it signs for 127.0.0.1, and a second CA that signs nothing.
fn make_tls_files(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=Citadel test {ca}"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    // PostgreSQL refuses a key readable by others.
    run(Command::new("chmod").arg("600").arg(dir.join("server.key")));
}

fn citadel_config(dir: &Path, pg_dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[[secrets.rotators]]
name = "pg-single"
kind = "postgresql"
strategy = "single-user"
tls = "verify-full"
ca_file = "{ca}"
timeout_seconds = 30

[[secrets.rotators]]
name = "pg-alternating"
kind = "postgresql"
strategy = "alternating-users"
tls = "disable"
connect_timeout_seconds = 5
timeout_seconds = 30

[[secrets.rotators]]
name = "pg-unknown-ca"
kind = "postgresql"
strategy = "single-user"
ca_file = "{other}"
timeout_seconds = 30
"#,
        ca = pg_dir.join("ca.pem").display(),
        other = pg_dir.join("other-ca.pem").display(),
    );
    let path = dir.join("citadel.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Cli<'a> {
    server: &'a Server,
}

impl Cli<'_> {
    fn raw(&self, args: &[&str]) -> Output {
        let mut full = vec!["secretsmanager"];
        full.extend_from_slice(args);
        self.server.aws(ACCOUNT, SECRET, &full)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.raw(args);
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn create(&self, name: &str, value: &Value) -> String {
        let out = self.ok(&[
            "create-secret",
            "--name",
            name,
            "--secret-string",
            &value.to_string(),
        ]);
        out["ARN"].as_str().unwrap().to_owned()
    }

    fn value(&self, id: &str) -> Value {
        let out = self.ok(&["get-secret-value", "--secret-id", id]);
        serde_json::from_str(out["SecretString"].as_str().unwrap()).unwrap()
    }

    /// Starts a rotation; returns the pending version.
    fn rotate(&self, id: &str, rotator: &str) -> String {
        let out = self.ok(&[
            "rotate-secret",
            "--secret-id",
            id,
            "--rotation-lambda-arn",
            &lambda(rotator),
        ]);
        out["VersionId"].as_str().unwrap().to_owned()
    }

    fn stages(&self, id: &str, version: &str) -> Vec<String> {
        let d = self.ok(&["describe-secret", "--secret-id", id]);
        d["VersionIdsToStages"][version]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    /// The recorded failure (Citadel's own DescribeSecret member, which the CLI does not
    /// print: read from the raw response).
    fn failure(&self, id: &str) -> Option<String> {
        let out = self.raw(&["describe-secret", "--secret-id", id, "--debug"]);
        let text = stderr(&out);
        let i = text.find("CitadelLastRotationFailure")?;
        Some(text[i..text.len().min(i + 600)].to_owned())
    }

    fn wait_rotated(&self, id: &str, version: &str) {
        wait_for("the rotation to finish", || {
            if let Some(f) = self.failure(id) {
                panic!("the rotation of {id} failed: {f}");
            }
            self.stages(id, version) == ["AWSCURRENT"]
        });
    }

    fn wait_failed(&self, id: &str) -> String {
        let mut found = None;
        wait_for("the rotation failure to be recorded", || {
            found = self.failure(id);
            found.is_some()
        });
        found.unwrap()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}");
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

#[test]
fn postgresql_rotators_change_real_database_passwords() {
    let pg = Postgres::start();
    let port = pg.port;
    pg.admin("CREATE ROLE app LOGIN PASSWORD 'app-pw-0'");
    pg.admin("CREATE DATABASE appdb OWNER app");
    pg.admin("CREATE ROLE master LOGIN CREATEROLE SUPERUSER PASSWORD 'master-pw'");
    pg.admin("CREATE ROLE alt LOGIN PASSWORD 'alt-pw-0'");
    pg.admin("CREATE ROLE other LOGIN PASSWORD 'other-pw-0'");
    if let Err(e) = pg.psql(
        "appdb",
        "app",
        "app-pw-0",
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1); GRANT SELECT ON orders TO alt",
    ) {
        panic!("setting up appdb: {e}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = citadel_config(dir.path(), pg.dir.path());
    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let cli = Cli { server: &server };
    let conn = |user: &str, password: &str, db: &str| {
        json!({"engine": "postgres", "host": "127.0.0.1", "port": port, "username": user,
               "password": password, "dbname": db})
    };
    let mut seen_passwords = Vec::new();

    // Single user, over TLS verified against the test CA: the user changes its own password.
    cli.create("app-db", &conn("app", "app-pw-0", "appdb"));
    let mut old = "app-pw-0".to_owned();
    for _ in 0..2 {
        let version = cli.rotate("app-db", "pg-single");
        cli.wait_rotated("app-db", &version);
        let now = cli.value("app-db");
        let new = s(&now, "password");
        assert_eq!(new.len(), 32);
        assert!(!new.chars().any(|c| ":/@\"'\\".contains(c)), "{new}");
        assert_eq!(s(&now, "username"), "app");
        assert_eq!(now["port"], port);
        assert!(
            !pg.can_login("appdb", "app", &old),
            "the old password still logs in"
        );
        assert_eq!(
            pg.psql("appdb", "app", &new, "SELECT count(*) FROM orders"),
            Ok("1".to_owned())
        );
        let previous: Value = serde_json::from_str(
            cli.ok(&[
                "get-secret-value",
                "--secret-id",
                "app-db",
                "--version-stage",
                "AWSPREVIOUS",
            ])["SecretString"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(s(&previous, "password"), old);
        seen_passwords.push(new.clone());
        old = new;
    }

    // Alternating users, plain connection: the master creates alt_clone (a member of alt) on
    // the first rotation; afterwards each rotation changes the user not in use, so the
    // previous credentials keep working until the next rotation.
    let master_arn = cli.create("master-db", &conn("master", "master-pw", "postgres"));
    let mut alt = conn("alt", "alt-pw-0", "appdb");
    alt["masterarn"] = json!(master_arn);
    cli.create("alt-db", &alt);

    let v1 = cli.rotate("alt-db", "pg-alternating");
    cli.wait_rotated("alt-db", &v1);
    let first = cli.value("alt-db");
    assert_eq!(s(&first, "username"), "alt_clone");
    assert_eq!(s(&first, "masterarn"), master_arn);
    let clone_pw = s(&first, "password");
    assert_eq!(
        pg.psql(
            "appdb",
            "alt_clone",
            &clone_pw,
            "SELECT count(*) FROM orders"
        ),
        Ok("1".to_owned()),
        "the clone has the original user's privileges"
    );
    assert!(
        pg.can_login("appdb", "alt", "alt-pw-0"),
        "AWSPREVIOUS still works"
    );

    let v2 = cli.rotate("alt-db", "pg-alternating");
    cli.wait_rotated("alt-db", &v2);
    let second = cli.value("alt-db");
    assert_eq!(s(&second, "username"), "alt");
    let alt_pw = s(&second, "password");
    assert_ne!(alt_pw, clone_pw);
    assert!(
        !pg.can_login("appdb", "alt", "alt-pw-0"),
        "the old password still logs in"
    );
    assert_eq!(
        pg.psql("appdb", "alt", &alt_pw, "SELECT count(*) FROM orders"),
        Ok("1".to_owned())
    );
    assert!(
        pg.can_login("appdb", "alt_clone", &clone_pw),
        "AWSPREVIOUS (the clone) still works"
    );
    seen_passwords.push(clone_pw);
    seen_passwords.push(alt_pw);

    // A wrong master password: setSecret fails, AWSCURRENT stays, the failure is recorded.
    let bad_master = cli.create(
        "bad-master",
        &conn("master", "not-the-password", "postgres"),
    );
    let mut bad = conn("other", "other-pw-0", "postgres");
    bad["masterarn"] = json!(bad_master);
    cli.create("other-db", &bad);
    let pending = cli.rotate("other-db", "pg-alternating");
    let failure = cli.wait_failed("other-db");
    assert!(failure.contains("setSecret"), "{failure}");
    assert!(failure.contains("master"), "{failure}");
    assert_eq!(s(&cli.value("other-db"), "password"), "other-pw-0");
    assert_eq!(s(&cli.value("other-db"), "username"), "other");
    assert_eq!(cli.stages("other-db", &pending), ["AWSPENDING"]);
    assert!(pg.can_login("postgres", "other", "other-pw-0"));
    assert_eq!(
        pg.psql(
            "postgres",
            "postgres",
            SUPERUSER_PASSWORD,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'other_clone'"
        ),
        Ok("0".to_owned())
    );

    // A server certificate from a CA the rotator does not trust: no connection, no change.
    cli.create("untrusted-db", &conn("other", "other-pw-0", "postgres"));
    cli.rotate("untrusted-db", "pg-unknown-ca");
    let failure = cli.wait_failed("untrusted-db");
    assert!(failure.contains("setSecret"), "{failure}");
    assert_eq!(s(&cli.value("untrusted-db"), "password"), "other-pw-0");
    assert!(pg.can_login("postgres", "other", "other-pw-0"));

    // No password reached the server's log.
    let log = server.log();
    for p in seen_passwords.iter().map(String::as_str).chain([
        "app-pw-0",
        "alt-pw-0",
        "master-pw",
        "not-the-password",
    ]) {
        assert!(!log.contains(p), "a password appears in the server log");
    }
}
