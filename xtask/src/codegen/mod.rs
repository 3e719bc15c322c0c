//! `cargo xtask codegen`: botocore `service-2.json` models → `crates/model/src/generated/`.

mod emit;
mod javaregex;
mod model;
mod names;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The botocore release the committed code is generated from. Changing it is a deliberate act:
/// bump it here, install that release, regenerate, review the diff.
pub const BOTOCORE_VERSION: &str = "1.43.11";

/// Botocore service ids, in the order the brief lists them. Module names replace `-` with `_`.
pub const SERVICES: &[&str] = &[
    "kms",
    "secretsmanager",
    "ssm",
    "sts",
    "iam",
    "acm",
    "acm-pca",
    "wafv2",
    "cloudtrail",
    "events",
    "organizations",
];

struct Options {
    check: bool,
    data_dir: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        check: false,
        data_dir: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => o.check = true,
            "--botocore-data" => match it.next() {
                Some(d) => o.data_dir = Some(PathBuf::from(d)),
                None => bail!("--botocore-data needs a directory"),
            },
            other => bail!("unknown codegen argument `{other}`\n{}", crate::USAGE),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let root = repo_root()?;
    let data = match o.data_dir {
        Some(d) => d,
        None => locate_botocore_data()?,
    };
    check_botocore_version(&data)?;
    let files = generate_all(&data, &root)?;
    let out_dir = root.join("crates/model/src/generated");
    if o.check {
        let drift = drift(&out_dir, &files)?;
        if drift.is_empty() {
            println!(
                "codegen: {} files up to date (botocore {BOTOCORE_VERSION})",
                files.len()
            );
            return Ok(());
        }
        bail!(
            "generated code differs from botocore {BOTOCORE_VERSION}; run `cargo xtask codegen` and commit:\n  {}",
            drift.join("\n  ")
        );
    }
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, text) in &files {
        let path = out_dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("codegen: wrote {}", path.display());
        }
    }
    for stale in stale_files(&out_dir, &files)? {
        fs::remove_file(out_dir.join(&stale))?;
        println!("codegen: removed stale {stale}");
    }
    Ok(())
}

/// Files that differ from (or are missing in, or are extra in) `out_dir`.
pub fn drift(out_dir: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let mut drift = Vec::new();
    for (name, text) in files {
        let path = out_dir.join(name);
        match fs::read_to_string(&path) {
            Ok(old) if &old == text => {}
            Ok(_) => drift.push(format!("{} (differs)", path.display())),
            Err(_) => drift.push(format!("{} (missing)", path.display())),
        }
    }
    for stale in stale_files(out_dir, files)? {
        drift.push(format!("{} (not generated)", out_dir.join(stale).display()));
    }
    Ok(drift)
}

fn stale_files(out_dir: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    let Ok(rd) = fs::read_dir(out_dir) else {
        return Ok(stale);
    };
    for e in rd {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") && !files.iter().any(|(n, _)| *n == name) {
            stale.push(name);
        }
    }
    stale.sort();
    Ok(stale)
}

pub fn repo_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// `<botocore package>/data`, found by asking the machine's Python.
pub fn locate_botocore_data() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import botocore,os;print(os.path.dirname(botocore.__file__))",
        ])
        .output()
        .context("running python3 to locate botocore (or pass --botocore-data DIR)")?;
    if !out.status.success() {
        bail!(
            "python3 cannot import botocore ({}); install botocore=={BOTOCORE_VERSION} or pass --botocore-data DIR",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = String::from_utf8(out.stdout).context("botocore path is not UTF-8")?;
    Ok(PathBuf::from(dir.trim()).join("data"))
}

/// The models are pinned: refuse any other botocore release (`__version__` in
/// `botocore/__init__.py`, next to `data/`).
pub fn check_botocore_version(data: &Path) -> Result<()> {
    let init = data
        .parent()
        .map(|p| p.join("__init__.py"))
        .context("botocore data dir has no parent")?;
    let text = fs::read_to_string(&init).with_context(|| {
        format!(
            "reading {} to check the botocore version (the data dir must be botocore's own `data/`)",
            init.display()
        )
    })?;
    let version = text
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("__version__")?.trim_start();
            let rest = rest.strip_prefix('=')?.trim();
            Some(rest.trim_matches(|c| c == '\'' || c == '"').to_owned())
        })
        .with_context(|| format!("no __version__ in {}", init.display()))?;
    if version != BOTOCORE_VERSION {
        bail!(
            "botocore {version} is installed ({}), but the models are pinned to {BOTOCORE_VERSION}: \
             run `pip install botocore=={BOTOCORE_VERSION}` (or change BOTOCORE_VERSION in xtask deliberately)",
            init.display()
        );
    }
    Ok(())
}

/// The newest `<data>/<svc>/<version>/service-2.json.gz`.
fn model_path(data: &Path, service: &str) -> Result<(String, PathBuf)> {
    let dir = data.join(service);
    let mut versions = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        if e.path().join("service-2.json.gz").is_file() {
            versions.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    versions.sort();
    let v = versions
        .pop()
        .with_context(|| format!("no service-2.json.gz under {}", dir.display()))?;
    let path = dir.join(&v).join("service-2.json.gz");
    Ok((v, path))
}

fn load(path: &Path) -> Result<model::Model> {
    let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .with_context(|| format!("decompressing {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every generated file, formatted: `(file name, contents)`.
pub fn generate_all(data: &Path, root: &Path) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    // (module, SPEC.name)
    let mut modules: Vec<(String, String)> = Vec::new();
    for svc in SERVICES {
        let (version, path) = model_path(data, svc)?;
        let m = load(&path)?;
        let out = emit::generate(svc, &version, BOTOCORE_VERSION, &m)
            .with_context(|| format!("generating {svc}"))?;
        let module = names::module_name(svc);
        if !out.skipped.is_empty() {
            eprintln!(
                "codegen: {svc}: {} pattern(s) not checked (listed at the top of {module}.rs)",
                out.skipped.len()
            );
        }
        files.push((format!("{module}.rs"), rustfmt(root, &out.code)?));
        modules.push((module, out.spec_name));
    }
    modules.sort();
    let mut m = String::new();
    m.push_str(&format!(
        "// @generated by `cargo xtask codegen` from botocore {BOTOCORE_VERSION}. Do not edit by hand.\n\n\
         //! One module per AWS service, generated from its botocore model.\n\n"
    ));
    for (module, _) in &modules {
        m.push_str(&format!("pub mod {module};\n"));
    }
    m.push_str("\n/// Every generated service spec, ordered by module name.\n");
    m.push_str("pub static ALL_SPECS: &[&citadel_api::ServiceSpec] = &[");
    for (module, _) in &modules {
        m.push_str(&format!("&{module}::SPEC, "));
    }
    m.push_str("];\n");
    m.push_str(
        "\n/// The `check_input` of the service whose `SPEC.name` is `service`; `Ok(())` for a service\n\
         /// that is not generated.\n\
         pub fn check_input(service: &str, operation: &str, input: &citadel_api::OperationInput) \
         -> Result<(), citadel_api::AwsError> {\nmatch service {\n",
    );
    let mut names = std::collections::BTreeSet::new();
    for (module, name) in &modules {
        if !names.insert(name.as_str()) {
            bail!("two services are named {name:?}");
        }
        m.push_str(&format!(
            "{name:?} => {module}::check_input(operation, input),\n"
        ));
    }
    m.push_str("_ => Ok(()),\n}\n}\n");
    m.push_str(
        "\n/// The `AUDIT_SHAPES` table of the service whose `SPEC.name` is `service`; empty for a\n\
         /// service that is not generated.\n\
         pub fn audit_shapes(service: &str) -> &'static [(&'static str, crate::AuditShape)] {\nmatch service {\n",
    );
    for (module, name) in &modules {
        m.push_str(&format!("{name:?} => {module}::AUDIT_SHAPES,\n"));
    }
    m.push_str("_ => &[],\n}\n}\n");
    files.push(("mod.rs".to_owned(), rustfmt(root, &m)?));
    Ok(files)
}

/// Formats like `cargo fmt` would (edition 2024, the repository's rustfmt.toml).
fn rustfmt(root: &Path, code: &str) -> Result<String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {rustfmt}"))?;
    let mut stdin = child.stdin.take().context("rustfmt stdin")?;
    let input = code.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().context("waiting for rustfmt")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("rustfmt writer thread failed"))??;
    if !out.status.success() {
        bail!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("rustfmt output is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the tests run in CI (`CI` set, as every CI system does, and not `false`/`0`).
    fn in_ci() -> bool {
        std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
    }

    /// Without the pinned botocore, skip with the reason locally, fail in CI (which installs it):
    /// a check that silently skips there checks nothing.
    fn skip_or_fail(reason: &str) {
        assert!(
            !in_ci(),
            "CI is set, but the codegen drift check cannot run: {reason}"
        );
        // Straight to stderr, past libtest's capture, so a plain `cargo test` shows the skip.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "committed_output_is_current SKIPPED (CI is not set, so this is allowed): {reason}"
        );
    }

    /// The committed `crates/model/src/generated/` is exactly what the pinned botocore produces.
    /// Skips locally when the pinned botocore is not installed; fails in CI.
    #[test]
    fn committed_output_is_current() {
        let data = match locate_botocore_data() {
            Ok(d) => d,
            Err(e) => return skip_or_fail(&format!("{e:#}")),
        };
        if let Err(e) = check_botocore_version(&data) {
            return skip_or_fail(&format!("{e:#}"));
        }
        let root = repo_root().unwrap();
        let files = generate_all(&data, &root).unwrap();
        let drift = drift(&root.join("crates/model/src/generated"), &files).unwrap();
        assert!(drift.is_empty(), "run `cargo xtask codegen`: {drift:#?}");
    }

    #[test]
    fn other_botocore_versions_are_refused() {
        let dir = std::env::temp_dir().join(format!("xtask-botocore-{}", std::process::id()));
        let data = dir.join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(dir.join("__init__.py"), "__version__ = '1.40.0'\n").unwrap();
        let e = check_botocore_version(&data).unwrap_err().to_string();
        assert!(e.contains("1.40.0") && e.contains(BOTOCORE_VERSION), "{e}");
        fs::write(
            dir.join("__init__.py"),
            format!("__version__ = '{BOTOCORE_VERSION}'\n"),
        )
        .unwrap();
        check_botocore_version(&data).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
