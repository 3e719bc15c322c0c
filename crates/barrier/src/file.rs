//! The `file` root key provider: the root key as 32 raw bytes in a file only its owner can read.
//!
//! Meant for development and single-host deployments where disk encryption and file permissions
//! are the trust boundary. The file holds exactly 32 bytes (for example from
//! `head -c 32 /dev/urandom`), mode `0600` or stricter.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{BarrierError, ROOT_KEY_LEN, Result, RootKey};

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BarrierError + '_ {
    move |source| BarrierError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn key_file_err(path: &Path, reason: impl Into<String>) -> BarrierError {
    BarrierError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Loads the root key from `path`, refusing a file that is not a regular file, that group or
/// others may access, or that is not exactly 32 bytes long.
pub fn load(path: &Path) -> Result<RootKey> {
    let file = File::open(path).map_err(io_err(path))?;
    // Check the opened file, not the path, so a swap between check and read cannot matter.
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(key_file_err(path, "is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_file_err(
            path,
            format!(
                "permissions {mode:04o} allow access by group or others; \
                 run `chmod 600` on it (a key that others could read must be considered leaked)"
            ),
        ));
    }
    // Read at most one byte more than needed: enough to detect a wrong length without reading
    // an arbitrarily large file into memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(ROOT_KEY_LEN + 1));
    let limit = u64::try_from(ROOT_KEY_LEN + 1).unwrap_or(u64::MAX);
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() != ROOT_KEY_LEN {
        return Err(key_file_err(
            path,
            format!(
                "must contain exactly {ROOT_KEY_LEN} raw bytes, found {}{}",
                if buf.len() > ROOT_KEY_LEN {
                    "more than "
                } else {
                    ""
                },
                buf.len().min(ROOT_KEY_LEN)
            ),
        ));
    }
    RootKey::from_bytes(&buf)
}

/// Loads the root key from `path`, or creates the file with a fresh random key if it does not
/// exist yet.
///
/// Creation is atomic: the key is written and fsynced to a temporary file (mode 0600) in the same
/// directory, then hard-linked into place, which fails if the target appeared meanwhile. So a
/// crash never leaves a partial key file, and two processes racing to create it end up using the
/// same key. A missing parent directory is created with mode 0700.
pub fn load_or_create(path: &Path) -> Result<RootKey> {
    match load(path) {
        Err(BarrierError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err(&dir))?;

    let key = RootKey::generate()?;
    let file_name = path
        .file_name()
        .ok_or_else(|| key_file_err(path, "has no file name"))?
        .to_string_lossy();
    let suffix = hex_suffix()?;
    let tmp = dir.join(format!(".{file_name}.tmp-{suffix}"));
    let written = write_new(&tmp, key.expose_secret());
    let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    });
    // The temporary name is never needed again, whatever happened.
    let _ = fs::remove_file(&tmp);
    if !linked? {
        // Someone else created it first: use theirs, so every process agrees on one key.
        return load(path);
    }
    // Make the new directory entry durable, not only the file contents.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;
    Ok(key)
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    // The mode passed to open is filtered by the umask; 0600 can only get stricter, but set it
    // explicitly anyway so the result never depends on the environment.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    Ok(())
}

fn hex_suffix() -> Result<String> {
    let bytes = citadel_crypto::random_array::<8>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_same_key_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("root.key");
        let a = load_or_create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let b = load_or_create(&path).unwrap();
        let c = load(&path).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn missing_file_is_io_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("nope")).unwrap_err();
        assert!(
            matches!(err, BarrierError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn refuses_readable_by_others_and_wrong_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        fs::write(&path, [7u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(matches!(err, BarrierError::KeyFile { .. }), "{err}");
        assert!(err.to_string().contains("0644"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load(&path).unwrap().expose_secret(), &[7u8; 32]);

        fs::write(&path, [7u8; 31]).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("exactly 32"), "{err}");
        fs::write(&path, [7u8; 100]).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.to_string().contains("more than 32"), "{err}");

        let err = load(dir.path()).unwrap_err();
        assert!(matches!(
            err,
            BarrierError::KeyFile { .. } | BarrierError::Io { .. }
        ));
    }
}
