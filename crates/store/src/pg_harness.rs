//! A private PostgreSQL server for tests: `initdb` into a fresh temporary directory, `pg_ctl
//! start` on a free loopback port, stopped (`pg_ctl stop -m immediate`) and removed on drop, even
//! when the test panics.
//!
//! Binaries are found on `PATH` or under `/usr/lib/postgresql/*/bin` (Debian's `postgresql`
//! package). PostgreSQL refuses to run as root, so when the test runs as root the server runs as
//! the `postgres` system user through `runuser`, with the directory handed over to it.
//!
//! Authentication is real: the superuser `citadel` has a random password, checked with
//! SCRAM-SHA-256 on 127.0.0.1 (the Unix socket, in the private directory, trusts local users).
//!
//! Compiled only with the `pg-harness` feature; for tests, hence the allowances below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser the harness creates.
pub const USER: &str = "citadel";

/// A running private PostgreSQL server.
pub struct PgServer {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    as_postgres: bool,
    running: bool,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("root", &self.root)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Where `initdb` and `pg_ctl` live: `PATH` first, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Debian links /usr/bin tools to a wrapper; use the real directory.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                let dir = real.parent()?.to_path_buf();
                if dir.join("pg_ctl").is_file() {
                    return Some(dir);
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn random_hex(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n * 2 {
        let bytes = citadel_crypto::random_array::<16>().expect("randomness");
        out.extend(bytes.iter().map(|b| format!("{b:02x}")));
    }
    out.truncate(n * 2);
    out
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl PgServer {
    /// Starts a server, or panics with the reason (and the server log). Call from a test.
    pub fn start() -> Self {
        let bin = find_bin_dir().expect(
            "PostgreSQL is not installed: no initdb on PATH or under /usr/lib/postgresql/*/bin \
             (scripts/test installs the Debian postgresql package)",
        );
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "citadel-pg-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            random_hex(4)
        ));
        std::fs::create_dir_all(&root).expect("create the PostgreSQL temp dir");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        let as_postgres = is_root();
        let mut server = Self {
            root,
            bin,
            port: 0,
            password: random_hex(16),
            as_postgres,
            running: false,
        };
        let pwfile = server.root.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", server.password)).unwrap();
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.root)
                .output()
                .expect("run chown");
            assert!(
                out.status.success(),
                "chown for postgres: {}",
                describe(&out)
            );
        }
        let data = server.data_dir();
        let out = server
            .pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", describe(&out));
        let _ = std::fs::remove_file(&pwfile);

        // Another process may grab the port between probing and binding: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// A command running `tool` from the PostgreSQL bin directory, as `postgres` when we are root.
    fn pg_command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.root.display()
        );
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .map_err(|e| format!("run pg_ctl: {e}"))?;
        if out.status.success() {
            self.running = true;
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            Err(format!("{}\nserver log:\n{log}", describe(&out)))
        }
    }

    /// Stops the server (fast shutdown: connections are closed), keeping its data.
    pub fn stop(&mut self) {
        if self.running {
            let out = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-m", "fast", "stop"])
                .output()
                .expect("run pg_ctl stop");
            assert!(out.status.success(), "pg_ctl stop: {}", describe(&out));
            self.running = false;
        }
    }

    /// Starts a stopped server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.try_start()
            .unwrap_or_else(|e| panic!("PostgreSQL restart: {e}"));
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://citadel:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.password, self.port
        )
    }

    /// The same URL without the password (give it separately).
    pub fn url_without_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Creates a database (UTF8) and returns its name.
    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-E", "UTF8", "-T", "template0", name])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb {name}: {}", describe(&out));
        name.to_owned()
    }

    /// Runs SQL through `psql` on the Unix socket and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .pg_command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.root)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The directory the server lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
