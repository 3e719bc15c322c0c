//! The listener's rustls configuration.
//!
//! Either the operator's PEM certificate chain and key, or Citadel's internal CA: on first start
//! a self-signed CA (ECDSA P-256, 10 years) is created in `<data_dir>/tls/`, and a server
//! certificate (1 year) is issued from it and re-issued on start when it is missing, does not
//! match its key or the CA, its SANs differ from the wanted ones, or it expires within 30 days.
//! Clients trust `<data_dir>/tls/ca.pem` (`AWS_CA_BUNDLE`, `--ca-bundle`, `--ca-cert`).
//!
//! These files live outside the barrier on purpose: TLS has to work before the server is
//! unsealed, since operators submit unseal key shares over it. Their protection is file mode
//! 0600 in a 0700 directory.
//!
//! Only the aws-lc-rs provider is used (passed explicitly, so this does not depend on the
//! process-wide default provider), with TLS 1.2 and 1.3.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::config::{Config, TlsMode};

pub const CA_COMMON_NAME: &str = "Citadel internal CA";
const CA_VALIDITY: Duration = Duration::days(3650);
const SERVER_VALIDITY: Duration = Duration::days(365);
/// Re-issue this long before expiry, so a restart in the last month renews rather than letting
/// clients hit an expired certificate.
const RENEW_BEFORE: Duration = Duration::days(30);
/// Back-date `notBefore` so clients whose clocks lag slightly accept a fresh certificate.
const BACKDATE: Duration = Duration::hours(1);

/// Where the internal CA keeps its files.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub dir: PathBuf,
    /// The CA certificate clients should trust (`AWS_CA_BUNDLE`).
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TlsPaths {
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("tls");
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            dir,
        }
    }
}

/// The listener's TLS configuration; `None` means plain HTTP ([`TlsMode::Disabled`]).
pub fn load_or_create(cfg: &Config) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let (chain, key) = match &cfg.tls {
        TlsMode::Disabled => return Ok(None),
        TlsMode::Files { cert, key } => load_pem_files(cert, key)?,
        TlsMode::InternalCa => {
            let paths = TlsPaths::new(&cfg.data_dir);
            let out = ensure_internal_ca(&paths, &wanted_sans(cfg))?;
            tracing::info!(
                ca_cert = %paths.ca_cert.display(),
                "TLS certificate issued by the internal CA; clients trust it with AWS_CA_BUNDLE=<ca_cert>"
            );
            out
        }
    };
    server_config(chain, key).map(Some)
}

/// rustls server config: aws-lc-rs, TLS 1.3 + 1.2, ALPN h2 then http/1.1 (the listener picks
/// the HTTP version from the negotiated protocol).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn load_pem_files(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading TLS certificate chain {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("no certificate found in {}", cert.display());
    }
    // The pem error never contains key material, only what went wrong.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("reading TLS private key {}: {e}", key.display()))?;
    Ok((chain, key))
}

/// A subject alternative name, normalised for comparison (DNS names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn parse(s: &str) -> Self {
        match s.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(s.to_ascii_lowercase()),
        }
    }
}

/// localhost, 127.0.0.1, ::1, the listen IP unless unspecified, and the configured hostnames.
fn wanted_sans(cfg: &Config) -> BTreeSet<San> {
    let mut sans = BTreeSet::from([
        San::Dns("localhost".to_owned()),
        San::Ip(IpAddr::from([127, 0, 0, 1])),
        San::Ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
    ]);
    let ip = cfg.listen.ip();
    if !ip.is_unspecified() {
        sans.insert(San::Ip(ip));
    }
    sans.extend(cfg.tls_hostnames.iter().map(|h| San::parse(h)));
    sans
}

/// The CA, ready to sign.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// DER of the CA certificate's SubjectPublicKeyInfo, to verify what it signed.
    spki_der: Vec<u8>,
    not_after: OffsetDateTime,
}

fn ensure_internal_ca(
    paths: &TlsPaths,
    wanted: &BTreeSet<San>,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    create_private_dir(&paths.dir)?;
    let ca = load_or_create_ca(paths)?;
    let now = OffsetDateTime::now_utc();
    if ca.not_after <= now {
        bail!(
            "the internal CA {} has expired; remove {} to create a new one (clients must then trust the new ca.pem)",
            paths.ca_cert.display(),
            paths.dir.display()
        );
    }
    if ca.not_after - now < Duration::days(365) {
        tracing::warn!(ca_cert = %paths.ca_cert.display(), not_after = %ca.not_after, "the internal CA expires within a year");
    }
    match check_server_cert(paths, &ca, wanted, now) {
        Ok(found) => Ok(found),
        Err(reason) => {
            tracing::info!(reason = %reason, "issuing a new TLS server certificate from the internal CA");
            issue_server_cert(paths, &ca, wanted, now)
        }
    }
}

fn load_or_create_ca(paths: &TlsPaths) -> anyhow::Result<Ca> {
    if !paths.ca_key.exists() {
        if paths.ca_cert.exists() {
            bail!(
                "{} exists without its key {}; restore the key, or remove both to create a new CA",
                paths.ca_cert.display(),
                paths.ca_key.display()
            );
        }
        match create_ca(paths) {
            Ok(ca) => return Ok(ca),
            // Another process created it between our check and create_new: use theirs.
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(e),
        }
    }
    warn_if_group_readable(&paths.ca_key);
    let key_pem = Zeroizing::new(
        fs::read_to_string(&paths.ca_key)
            .with_context(|| format!("reading {}", paths.ca_key.display()))?,
    );
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| anyhow!("parsing CA key {}: {e}", paths.ca_key.display()))?;
    let cert_pem = fs::read(&paths.ca_cert).with_context(|| {
        format!(
            "reading {} (its key {} exists; restore the certificate, or remove both to create a new CA)",
            paths.ca_cert.display(),
            paths.ca_key.display()
        )
    })?;
    let cert_der = CertificateDer::from_pem_slice(&cert_pem)
        .map_err(|e| anyhow!("parsing {}: {e}", paths.ca_cert.display()))?;
    let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| anyhow!("parsing {}: {e}", paths.ca_cert.display()))?;
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        bail!(
            "{} does not belong to the key {}",
            paths.ca_cert.display(),
            paths.ca_key.display()
        );
    }
    let spki_der = x509.public_key().raw.to_vec();
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
        .context("CA notAfter")?;
    let issuer = Issuer::from_ca_cert_der(&cert_der, key)
        .map_err(|e| anyhow!("using {} as issuer: {e}", paths.ca_cert.display()))?;
    Ok(Ca {
        issuer,
        spki_der,
        not_after,
    })
}

fn create_ca(paths: &TlsPaths) -> anyhow::Result<Ca> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating CA key")?;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "Citadel");
    params.distinguished_name = dn;
    // pathlen 0: the CA signs server certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key).context("self-signing the CA")?;

    // The key is created with O_EXCL and mode 0600 in one step, so it is never readable by
    // others, and two racing starts cannot both create a CA. The certificate goes in afterwards.
    let key_pem = Zeroizing::new(key.serialize_pem());
    write_new_private(&paths.ca_key, key_pem.as_bytes())?;
    write_replace(&paths.ca_cert, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(ca_cert = %paths.ca_cert.display(), "created the internal TLS CA");

    let spki_der = {
        let (_, x509) = x509_parser::parse_x509_certificate(cert.der())
            .map_err(|e| anyhow!("parsing the new CA certificate: {e}"))?;
        x509.public_key().raw.to_vec()
    };
    Ok(Ca {
        issuer: Issuer::new(params.clone(), key),
        spki_der,
        not_after: params.not_after,
    })
}

/// The existing server certificate and key if they are still right; otherwise why not.
fn check_server_cert(
    paths: &TlsPaths,
    ca: &Ca,
    wanted: &BTreeSet<San>,
    now: OffsetDateTime,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    if !paths.server_cert.exists() || !paths.server_key.exists() {
        return Err("no server certificate yet".to_owned());
    }
    let cert_pem = fs::read(&paths.server_cert).map_err(|e| format!("unreadable: {e}"))?;
    let cert_der =
        CertificateDer::from_pem_slice(&cert_pem).map_err(|e| format!("bad PEM: {e}"))?;
    let key_pem = Zeroizing::new(
        fs::read_to_string(&paths.server_key).map_err(|e| format!("key unreadable: {e}"))?,
    );
    let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("bad key: {e}"))?;

    let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| format!("bad certificate: {e}"))?;
    let (_, ca_spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as FromDer<_>>::from_der(&ca.spki_der)
            .map_err(|e| format!("bad CA key: {e}"))?;
    x509.verify_signature(Some(&ca_spki))
        .map_err(|_| "not signed by the current CA".to_owned())?;
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err("certificate and key do not match".to_owned());
    }
    let not_after = x509.validity().not_after.timestamp();
    if not_after - now.unix_timestamp() < RENEW_BEFORE.whole_seconds() {
        return Err("expires within 30 days".to_owned());
    }
    let mut have = BTreeSet::new();
    if let Some(ext) = x509
        .subject_alternative_name()
        .map_err(|e| format!("bad SAN extension: {e}"))?
    {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    have.insert(San::Dns(d.to_ascii_lowercase()));
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).map(IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*b).map(IpAddr::from).ok(),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        have.insert(San::Ip(ip));
                    }
                }
                _ => {}
            }
        }
    }
    if &have != wanted {
        return Err("its names differ from the wanted ones".to_owned());
    }
    let key_der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert_der.into_owned()], key_der))
}

fn issue_server_cert(
    paths: &TlsPaths,
    ca: &Ca,
    wanted: &BTreeSet<San>,
    now: OffsetDateTime,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating TLS key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Citadel");
    params.distinguished_name = dn;
    params.subject_alt_names = wanted
        .iter()
        .map(|san| match san {
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            San::Dns(name) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| anyhow!("TLS hostname {name:?}: {e}")),
        })
        .collect::<anyhow::Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    // A certificate outliving its CA would be rejected anyway.
    params.not_after = (now + SERVER_VALIDITY).min(ca.not_after);
    let cert = params
        .signed_by(&key, &ca.issuer)
        .context("signing the TLS server certificate")?;

    // Key first: a crash between the two writes leaves a mismatched pair, which the next start
    // detects and re-issues.
    let key_pem = Zeroizing::new(key.serialize_pem());
    write_replace(&paths.server_key, key_pem.as_bytes(), 0o600)?;
    write_replace(&paths.server_cert, cert.pem().as_bytes(), 0o644)?;

    let key_der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone()], key_der))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn open_new(path: &Path, mode: u32) -> io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// Creates `path` (failing if it exists) with mode 0600 and writes `data` durably.
fn write_new_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut f = open_new(path, 0o600).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces `path` atomically (temporary file + rename), so readers never see half a file.
fn write_replace(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let mut f = open_new(&tmp, mode).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn is_already_exists(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::AlreadyExists)
    })
}

fn warn_if_group_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "CA private key is accessible to group/others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::ServeArgs;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub(crate) fn prod_config(data_dir: &Path, hostnames: &[&str]) -> Config {
        let flags = ServeArgs {
            data_dir: Some(data_dir.to_path_buf()),
            tls_hostnames: hostnames.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let cfg = crate::config::resolve(&flags, &|_| None).unwrap();
        assert_eq!(cfg.tls, TlsMode::InternalCa);
        cfg
    }

    /// A client config trusting only `ca_pem`, offering h2 and http/1.1.
    pub(crate) fn client_config(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
        client_config_with(ca_pem, rustls::DEFAULT_VERSIONS)
    }

    fn client_config_with(
        ca_pem: &Path,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn disabled_is_none() {
        let flags = ServeArgs {
            dev: true,
            ..Default::default()
        };
        let cfg = crate::config::resolve(&flags, &|_| None).unwrap();
        assert!(load_or_create(&cfg).unwrap().is_none());
    }

    #[test]
    fn creates_files_with_private_modes_and_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = prod_config(dir.path(), &["citadel.example"]);
        assert!(load_or_create(&cfg).unwrap().is_some());
        let paths = TlsPaths::new(dir.path());
        assert_eq!(mode(&paths.dir), 0o700);
        assert_eq!(mode(&paths.ca_key), 0o600);
        assert_eq!(mode(&paths.server_key), 0o600);
        assert_eq!(mode(&paths.ca_cert), 0o644);
        let ca1 = fs::read(&paths.ca_cert).unwrap();
        let ca_key1 = fs::read(&paths.ca_key).unwrap();
        let server1 = fs::read(&paths.server_cert).unwrap();

        // Same settings: everything reused.
        load_or_create(&cfg).unwrap().unwrap();
        assert_eq!(fs::read(&paths.ca_cert).unwrap(), ca1);
        assert_eq!(fs::read(&paths.ca_key).unwrap(), ca_key1);
        assert_eq!(fs::read(&paths.server_cert).unwrap(), server1);

        // New hostname: same CA, new server certificate.
        let cfg2 = prod_config(dir.path(), &["citadel.example", "10.9.8.7"]);
        load_or_create(&cfg2).unwrap().unwrap();
        assert_eq!(fs::read(&paths.ca_cert).unwrap(), ca1);
        let server2 = fs::read(&paths.server_cert).unwrap();
        assert_ne!(server2, server1);

        // Missing server key: re-issued.
        fs::remove_file(&paths.server_key).unwrap();
        load_or_create(&cfg2).unwrap().unwrap();
        assert_ne!(fs::read(&paths.server_cert).unwrap(), server2);
        assert_eq!(fs::read(&paths.ca_cert).unwrap(), ca1);
    }

    #[test]
    fn server_cert_from_another_ca_is_reissued() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        load_or_create(&prod_config(a.path(), &[]))
            .unwrap()
            .unwrap();
        load_or_create(&prod_config(b.path(), &[]))
            .unwrap()
            .unwrap();
        let (pa, pb) = (TlsPaths::new(a.path()), TlsPaths::new(b.path()));
        fs::copy(&pb.server_cert, &pa.server_cert).unwrap();
        fs::copy(&pb.server_key, &pa.server_key).unwrap();
        let foreign = fs::read(&pa.server_cert).unwrap();
        load_or_create(&prod_config(a.path(), &[]))
            .unwrap()
            .unwrap();
        assert_ne!(fs::read(&pa.server_cert).unwrap(), foreign);
    }

    #[test]
    fn ca_cert_without_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = prod_config(dir.path(), &[]);
        load_or_create(&cfg).unwrap().unwrap();
        fs::remove_file(TlsPaths::new(dir.path()).ca_key).unwrap();
        assert!(load_or_create(&cfg).is_err());
    }

    #[test]
    fn operator_files_are_loaded() {
        let dir = tempfile::tempdir().unwrap();
        // Use the internal CA's output as "operator-supplied" PEM files.
        load_or_create(&prod_config(dir.path(), &[]))
            .unwrap()
            .unwrap();
        let paths = TlsPaths::new(dir.path());
        let flags = ServeArgs {
            tls_cert: Some(paths.server_cert.clone()),
            tls_key: Some(paths.server_key.clone()),
            ..Default::default()
        };
        let cfg = crate::config::resolve(&flags, &|_| None).unwrap();
        assert!(load_or_create(&cfg).unwrap().is_some());

        // A key that does not match the certificate is refused.
        let flags = ServeArgs {
            tls_cert: Some(paths.server_cert.clone()),
            tls_key: Some(paths.ca_key.clone()),
            ..Default::default()
        };
        let cfg = crate::config::resolve(&flags, &|_| None).unwrap();
        assert!(load_or_create(&cfg).is_err());

        let flags = ServeArgs {
            tls_cert: Some(dir.path().join("missing.pem")),
            tls_key: Some(paths.server_key),
            ..Default::default()
        };
        let cfg = crate::config::resolve(&flags, &|_| None).unwrap();
        assert!(load_or_create(&cfg).is_err());
    }

    /// One in-process TLS exchange: the server echoes four bytes. `Err` if the client's
    /// handshake fails (e.g. the name is not in the certificate).
    async fn echo_over_tls(
        server: Arc<ServerConfig>,
        client: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, std::io::Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // The server side fails too when the client aborts the handshake.
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 4];
                tls.read_exact(&mut buf).await.unwrap();
                tls.write_all(&buf).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let sn = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let result = async {
            let mut tls = connector.connect(sn, tcp).await?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            tls.write_all(b"ping").await?;
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await?;
            assert_eq!(buf, b"ping");
            Ok(alpn)
        }
        .await;
        srv.await.unwrap();
        result
    }

    #[tokio::test]
    async fn handshake_with_client_trusting_ca() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = prod_config(dir.path(), &["citadel.test", "192.0.2.7"]);
        let server = load_or_create(&cfg).unwrap().unwrap();
        let client = client_config(&TlsPaths::new(dir.path()).ca_cert);
        for name in [
            "localhost",
            "127.0.0.1",
            "::1",
            "citadel.test",
            "CITADEL.test",
            "192.0.2.7",
        ] {
            let alpn = echo_over_tls(Arc::clone(&server), Arc::clone(&client), name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "{name}");
        }
        // Names not in the certificate are rejected by the client.
        for name in ["other.test", "10.0.0.1"] {
            assert!(
                echo_over_tls(Arc::clone(&server), Arc::clone(&client), name)
                    .await
                    .is_err(),
                "{name}"
            );
        }
        // TLS 1.2 works too (older SDKs and proxies).
        let tls12 = client_config_with(
            &TlsPaths::new(dir.path()).ca_cert,
            &[&rustls::version::TLS12],
        );
        echo_over_tls(server, tls12, "localhost").await.unwrap();
    }
}
