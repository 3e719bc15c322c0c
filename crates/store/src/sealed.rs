//! The sealed store: the only storage services touch. Every value passes through the barrier.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;
use citadel_barrier::shamir::{self, UnsealShare};
use citadel_barrier::{BarrierError, Keyring, RootKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::backend::{Backend, Entry, Expect, Op, validate_key};
use crate::{Result, StoreError};

/// Keys under this prefix belong to the store itself; data operations refuse them.
pub const RESERVED_PREFIX: &str = "sys/";
/// Where the seal configuration lives (plain JSON: it holds no secret).
pub const SEAL_CONFIG_KEY: &str = "sys/seal-config";
/// Where the keyring lives, sealed under the root key.
pub const KEYRING_KEY: &str = "sys/keyring";

/// How the root key is obtained at unseal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealType {
    /// The root key is supplied whole (from a key file).
    File,
    /// The root key is reconstructed from operator-held Shamir shares.
    Shamir,
}

impl fmt::Display for SealType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealType::File => "file",
            SealType::Shamir => "shamir",
        })
    }
}

/// The seal configuration stored at [`SEAL_CONFIG_KEY`]. For `file`, shares and threshold are 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealConfig {
    /// How the root key is obtained.
    #[serde(rename = "type")]
    pub seal_type: SealType,
    /// Number of shares the root key was split into.
    pub shares: u8,
    /// Number of shares needed to unseal.
    pub threshold: u8,
}

/// What an operator or health check needs to know about the seal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SealStatus {
    /// Whether the store has been initialized.
    pub initialized: bool,
    /// Whether data operations are refused.
    pub sealed: bool,
    /// The seal type, once initialized.
    pub seal_type: Option<SealType>,
    /// Number of shares (0 before initialization).
    pub shares: u8,
    /// Shares needed to unseal (0 before initialization).
    pub threshold: u8,
    /// Distinct shares submitted so far towards the next unseal.
    pub unseal_progress: u8,
    /// Active keyring term while unsealed.
    pub term: Option<u32>,
}

/// Result of submitting one unseal share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UnsealProgress {
    /// Whether the store is still sealed.
    pub sealed: bool,
    /// Distinct shares collected so far (0 once unsealed).
    pub progress: u8,
    /// Shares needed.
    pub threshold: u8,
}

/// A decrypted value with its version (use the version for compare-and-swap).
pub struct Record {
    /// Version to pass as [`Expect::Version`] for an update.
    pub version: u64,
    /// The plaintext, wiped when dropped.
    pub value: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A typed value with its version, from [`SealedStore::get_json`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// Version to pass as [`Expect::Version`] for an update.
    pub version: u64,
    /// The decoded value.
    pub value: T,
}

/// Builds a batch [`Op::Put`] whose value is `value` serialized as JSON.
pub fn put_json_op<T: Serialize + ?Sized>(
    key: impl Into<String>,
    value: &T,
    expect: Expect,
) -> Result<Op> {
    let key = key.into();
    let bytes = serde_json::to_vec(value).map_err(|e| encode_err(&key, &e))?;
    Ok(Op::put(key, bytes, expect))
}

/// What exists only while unsealed. Dropping it wipes the root key and the data keys.
struct Unsealed {
    keyring: Keyring,
    root_key: RootKey,
}

/// Seal bookkeeping that must change together with the state, under one (never awaited) lock.
#[derive(Default)]
struct Control {
    /// Bumped by every [`SealedStore::seal`]. An unseal or rotation records it when it starts and
    /// installs its result only if it is unchanged, so nothing that began before a seal can
    /// re-open the store after `seal` returned.
    generation: u64,
    /// Distinct shares submitted towards the next Shamir unseal.
    progress: Vec<UnsealShare>,
}

/// Wipes every plaintext value of a batch when dropped, on success and on every error path.
struct WipeOps(Vec<Op>);

impl Drop for WipeOps {
    fn drop(&mut self) {
        for op in &mut self.0 {
            if let Op::Put { value, .. } = op {
                value.zeroize();
            }
        }
    }
}

fn check_data_key(key: &str) -> Result<()> {
    validate_key(key)?;
    if key.starts_with(RESERVED_PREFIX) {
        return Err(StoreError::ReservedKey(key.to_owned()));
    }
    Ok(())
}

fn decode_err(key: &str, e: &serde_json::Error) -> StoreError {
    // serde_json messages can quote parts of the input ("invalid type: string \"...\""), which
    // may be secret; report only the category and position.
    StoreError::Decode {
        key: key.to_owned(),
        reason: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    }
}

fn encode_err(key: &str, e: &serde_json::Error) -> StoreError {
    // Same caution as decode_err: the message of a custom serializer could quote the value.
    StoreError::Encoding(format!(
        "cannot serialize the value for {key}: {:?} error",
        e.classify()
    ))
}

fn corrupt(key: &str, reason: String) -> StoreError {
    tracing::error!(key, %reason, "stored value failed authentication; refusing to return it");
    StoreError::Corrupt {
        key: Some(key.to_owned()),
        reason,
    }
}

/// The sealed store. Share it as `Arc<SealedStore>`.
///
/// While sealed every data operation fails with [`StoreError::Sealed`]. While unsealed the
/// keyring and the root key are held in memory (wiped on [`SealedStore::seal`] and on drop), as
/// in Vault: the root key is needed to re-seal the keyring when it rotates.
pub struct SealedStore {
    backend: Arc<dyn Backend>,
    state: ArcSwapOption<Unsealed>,
    config: ArcSwapOption<SealConfig>,
    control: Mutex<Control>,
    /// Serializes init, unseal, rotation and keyring reloads, which read the backend and then
    /// change the seal state. `seal` does not take it: sealing must never wait on I/O.
    lifecycle: tokio::sync::Mutex<()>,
}

impl fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("backend", &self.backend.name())
            .field("sealed", &self.is_sealed())
            .finish()
    }
}

impl SealedStore {
    /// A sealed store over `backend`. Nothing is read until the first call.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            state: ArcSwapOption::empty(),
            config: ArcSwapOption::empty(),
            control: Mutex::new(Control::default()),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    /// Streams a backup of every stored entry as it is stored — sealed, nothing is decrypted —
    /// from one consistent snapshot; see [`crate::stream_backup`].
    pub async fn backup(
        &self,
        created_at: String,
        out: &tokio::sync::mpsc::Sender<Result<Vec<u8>>>,
    ) -> Result<crate::BackupHeader> {
        crate::stream_backup(self.backend.as_ref(), created_at, out).await
    }

    /// Name of the backend ("sqlite", …).
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Whether data operations are refused right now. One atomic load, for request middleware.
    #[must_use]
    pub fn is_sealed(&self) -> bool {
        self.state.load().is_none()
    }

    // ----- seal lifecycle -------------------------------------------------------------------

    /// The seal status. Reads the backend only until the configuration is known.
    pub async fn status(&self) -> Result<SealStatus> {
        let config = self.seal_config().await?;
        let state = self.state.load_full();
        let progress = self.progress_len();
        Ok(SealStatus {
            initialized: config.is_some(),
            sealed: state.is_none(),
            seal_type: config.as_ref().map(|c| c.seal_type),
            shares: config.as_ref().map_or(0, |c| c.shares),
            threshold: config.as_ref().map_or(0, |c| c.threshold),
            unseal_progress: progress,
            term: state.as_ref().map(|u| u.keyring.active_term()),
        })
    }

    /// Initializes with the `file` seal: a new keyring sealed under `root`. The store stays
    /// sealed; call [`SealedStore::unseal_with_key`] next.
    pub async fn initialize_file(&self, root: &RootKey) -> Result<()> {
        let _guard = self.lifecycle.lock().await;
        let keyring = Keyring::generate()?;
        let sealed = keyring.seal(root)?;
        self.write_init(
            SealConfig {
                seal_type: SealType::File,
                shares: 1,
                threshold: 1,
            },
            sealed,
        )
        .await
    }

    /// Initializes with the `shamir` seal: generates a root key and a keyring, stores the sealed
    /// keyring, and returns the root key split into `shares` shares of which `threshold` unseal.
    ///
    /// The shares are returned exactly once and are not stored anywhere; the root key is wiped
    /// before this returns. The store stays sealed.
    pub async fn initialize_shamir(
        &self,
        shares: u8,
        threshold: u8,
    ) -> Result<Zeroizing<Vec<String>>> {
        shamir::validate_params(shares, threshold)
            .map_err(|e| StoreError::InvalidSealConfig(e.to_string()))?;
        let _guard = self.lifecycle.lock().await;
        let root = RootKey::generate()?;
        let keyring = Keyring::generate()?;
        let sealed = keyring.seal(&root)?;
        let out = shamir::split(&root, shares, threshold)?;
        self.write_init(
            SealConfig {
                seal_type: SealType::Shamir,
                shares,
                threshold,
            },
            sealed,
        )
        .await?;
        Ok(out)
    }

    async fn write_init(&self, config: SealConfig, sealed_keyring: Vec<u8>) -> Result<()> {
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| encode_err(SEAL_CONFIG_KEY, &e))?;
        // One batch with create-only expectations: either both records appear or neither, and a
        // second initialization (from any node) is refused.
        let ops = vec![
            Op::put(SEAL_CONFIG_KEY, config_bytes, Expect::Absent),
            Op::put(KEYRING_KEY, sealed_keyring, Expect::Absent),
        ];
        match self.backend.batch(ops).await {
            Ok(()) => {
                tracing::info!(
                    seal_type = %config.seal_type,
                    shares = config.shares,
                    threshold = config.threshold,
                    "store initialized"
                );
                self.config.store(Some(Arc::new(config)));
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => Err(StoreError::AlreadyInitialized),
            Err(e) => Err(e),
        }
    }

    /// Unseals a `file`-sealed store with its root key. A wrong key is
    /// [`StoreError::InvalidRootKey`] (decided by the keyring's AEAD tag). On an unsealed store
    /// this only checks that `root` is the key in use.
    pub async fn unseal_with_key(&self, root: &RootKey) -> Result<()> {
        let _guard = self.lifecycle.lock().await;
        let config = self
            .seal_config()
            .await?
            .ok_or(StoreError::NotInitialized)?;
        if config.seal_type != SealType::File {
            return Err(StoreError::WrongSealType {
                expected: SealType::File,
                actual: config.seal_type,
            });
        }
        if let Some(current) = self.state.load_full() {
            return if current.root_key == *root {
                Ok(())
            } else {
                Err(StoreError::InvalidRootKey)
            };
        }
        let generation = self.control().generation;
        self.open_keyring(root.clone(), generation).await
    }

    /// Submits one Shamir share. Shares are collected in memory until the threshold is reached;
    /// then they are combined and the keyring is opened. A set that does not reconstruct the
    /// root key clears the progress and fails with [`StoreError::InvalidUnsealKey`].
    ///
    /// A malformed share or one whose index was already submitted is refused with
    /// [`StoreError::InvalidShare`] and does not change the progress.
    pub async fn submit_unseal_share(&self, share: &str) -> Result<UnsealProgress> {
        let share = UnsealShare::parse(share).map_err(|e| match e {
            BarrierError::InvalidShare(reason) => StoreError::InvalidShare(reason),
            other => StoreError::Barrier(other),
        })?;
        let _guard = self.lifecycle.lock().await;
        let config = self
            .seal_config()
            .await?
            .ok_or(StoreError::NotInitialized)?;
        if config.seal_type != SealType::Shamir {
            return Err(StoreError::WrongSealType {
                expected: SealType::Shamir,
                actual: config.seal_type,
            });
        }
        let threshold = config.threshold;
        if !self.is_sealed() {
            return Ok(UnsealProgress {
                sealed: false,
                progress: 0,
                threshold,
            });
        }
        let (ready, generation) = {
            let mut control = self.control();
            let generation = control.generation;
            let progress = &mut control.progress;
            if progress.iter().any(|s| s.index() == share.index()) {
                return Err(StoreError::InvalidShare(format!(
                    "share {} was already submitted",
                    share.index()
                )));
            }
            progress.push(share);
            if progress.len() < usize::from(threshold) {
                return Ok(UnsealProgress {
                    sealed: true,
                    progress: u8::try_from(progress.len()).unwrap_or(u8::MAX),
                    threshold,
                });
            }
            // Taken out, so the progress is reset whatever the outcome.
            (std::mem::take(progress), generation)
        };
        let root = shamir::combine_shares(&ready).map_err(|_| StoreError::InvalidUnsealKey)?;
        drop(ready);
        match self.open_keyring(root, generation).await {
            Ok(()) => Ok(UnsealProgress {
                sealed: false,
                progress: 0,
                threshold,
            }),
            Err(StoreError::InvalidRootKey) => {
                tracing::warn!("unseal shares did not reconstruct the root key; progress reset");
                Err(StoreError::InvalidUnsealKey)
            }
            Err(e) => Err(e),
        }
    }

    /// Discards the shares submitted so far.
    pub fn reset_unseal_progress(&self) {
        self.control().progress.clear();
    }

    /// Seals the store: drops the keyring and the root key (wiped once the last in-flight
    /// operation using them finishes) and clears unseal progress. Immediate and final: an unseal
    /// or rotation still in flight cannot re-open the store afterwards.
    pub fn seal(&self) {
        let was_unsealed = {
            let mut control = self.control();
            control.generation = control.generation.wrapping_add(1);
            control.progress.clear();
            self.state.swap(None).is_some()
        };
        if was_unsealed {
            tracing::info!("store sealed");
        }
    }

    /// Adds a new keyring term, makes it active and persists the keyring (re-sealed under the
    /// root key held while unsealed). Existing values stay readable under their old terms; new
    /// writes use the new term. Returns the new term.
    ///
    /// Rotation starts from the keyring as stored (not the in-memory copy), so terms added by
    /// another node are kept; two concurrent rotations resolve by compare-and-swap, and the loser
    /// gets [`StoreError::Conflict`].
    pub async fn rotate(&self) -> Result<u32> {
        let _guard = self.lifecycle.lock().await;
        let generation = self.control().generation;
        let current = self.state.load_full().ok_or(StoreError::Sealed)?;
        let entry = self.read_keyring_entry().await?;
        let mut keyring = self.open_stored_keyring(&entry, &current.root_key)?;
        let term = keyring.rotate()?;
        let sealed = keyring.seal(&current.root_key)?;
        self.backend
            .put(KEYRING_KEY, sealed, Expect::Version(entry.version))
            .await?;
        let next = Arc::new(Unsealed {
            keyring,
            root_key: current.root_key.clone(),
        });
        // If the store was sealed meanwhile it stays sealed; the new term is persisted and will
        // be active after the next unseal.
        self.install(generation, next)?;
        tracing::info!(term, "keyring rotated");
        Ok(term)
    }

    /// Picks up a keyring another node rotated (its change notice named [`KEYRING_KEY`]), so
    /// this node also writes under the new term. Does nothing while sealed or when the stored
    /// keyring has no newer term.
    pub async fn refresh_keyring(&self) -> Result<()> {
        if self.is_sealed() {
            return Ok(());
        }
        // No keyring term can be u32::MAX, so this always compares with the stored keyring.
        self.reload_keyring(u32::MAX).await.map(|_| ())
    }

    // ----- data operations ------------------------------------------------------------------

    /// Reads and decrypts one value.
    pub async fn get(&self, key: &str) -> Result<Option<Record>> {
        check_data_key(key)?;
        self.ensure_unsealed()?;
        match self.backend.get(key).await? {
            None => Ok(None),
            Some(entry) => Ok(Some(Record {
                version: entry.version,
                value: self.decrypt(key, &entry).await?,
            })),
        }
    }

    /// Encrypts and writes one value if `expect` holds; returns the new version.
    pub async fn put(&self, key: &str, value: &[u8], expect: Expect) -> Result<u64> {
        check_data_key(key)?;
        let sealed = self.encrypt(key, value)?;
        self.backend.put(key, sealed, expect).await
    }

    /// Removes one value if `expect` holds; returns whether a value was removed.
    pub async fn delete(&self, key: &str, expect: Expect) -> Result<bool> {
        check_data_key(key)?;
        self.ensure_unsealed()?;
        self.backend.delete(key, expect).await
    }

    /// Up to `limit` decrypted values whose key starts with `prefix`, after `start_after`, in key
    /// order. Reserved `sys/` keys are never returned. Any value that fails authentication fails
    /// the whole call with [`StoreError::Corrupt`].
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        if prefix.starts_with(RESERVED_PREFIX) {
            return Err(StoreError::ReservedKey(prefix.to_owned()));
        }
        self.ensure_unsealed()?;
        // Only a prefix that is itself a prefix of "sys/" ("", "s", "sy", "sys") can reach
        // reserved keys; those are skipped and the page refilled so callers still get full pages.
        let may_hit_reserved = RESERVED_PREFIX.starts_with(prefix);
        let mut out = Vec::new();
        let mut after = start_after.map(str::to_owned);
        while out.len() < limit {
            let want = limit - out.len();
            let page = self.backend.list(prefix, after.as_deref(), want).await?;
            let exhausted = page.len() < want;
            after = page.last().map(|(k, _)| k.clone()).or(after);
            for (key, entry) in page {
                if key.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let value = self.decrypt(&key, &entry).await?;
                out.push((
                    key,
                    Record {
                        version: entry.version,
                        value,
                    },
                ));
            }
            if exhausted || !may_hit_reserved {
                break;
            }
        }
        Ok(out)
    }

    /// Applies all operations atomically (see [`Backend::batch`]), encrypting every value.
    /// Plaintext values in `ops` are wiped before this returns.
    pub async fn batch(&self, ops: Vec<Op>) -> Result<()> {
        let ops = WipeOps(ops);
        for op in &ops.0 {
            check_data_key(op.key())?;
        }
        self.ensure_unsealed()?;
        let mut sealed_ops = Vec::with_capacity(ops.0.len());
        for op in &ops.0 {
            sealed_ops.push(match op {
                Op::Put { key, value, expect } => Op::Put {
                    key: key.clone(),
                    value: self.encrypt(key, value)?,
                    expect: *expect,
                },
                Op::Delete { key, expect } => Op::Delete {
                    key: key.clone(),
                    expect: *expect,
                },
            });
        }
        drop(ops);
        self.backend.batch(sealed_ops).await
    }

    /// Reads one value and decodes it from JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(self.get_json_versioned(key).await?.map(|v| v.value))
    }

    /// Reads one value, decodes it from JSON, and returns it with its version for a later
    /// compare-and-swap ([`Expect::Version`]).
    pub async fn get_json_versioned<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        let Some(record) = self.get(key).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&record.value).map_err(|e| decode_err(key, &e))?;
        Ok(Some(Versioned {
            version: record.version,
            value,
        }))
    }

    /// Encodes `value` as JSON and writes it if `expect` holds; returns the new version.
    pub async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expect: Expect,
    ) -> Result<u64> {
        let bytes = Zeroizing::new(serde_json::to_vec(value).map_err(|e| encode_err(key, &e))?);
        self.put(key, &bytes, expect).await
    }

    // ----- internals ------------------------------------------------------------------------

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        // Control holds plain data updated in single steps; a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is safe to keep using.
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `next` the unsealed state unless the store was sealed since `generation` was read.
    fn install(&self, generation: u64, next: Arc<Unsealed>) -> Result<()> {
        let control = self.control();
        if control.generation != generation {
            return Err(StoreError::Sealed);
        }
        self.state.store(Some(next));
        Ok(())
    }

    fn progress_len(&self) -> u8 {
        u8::try_from(self.control().progress.len()).unwrap_or(u8::MAX)
    }

    fn ensure_unsealed(&self) -> Result<()> {
        if self.is_sealed() {
            Err(StoreError::Sealed)
        } else {
            Ok(())
        }
    }

    fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let guard = self.state.load();
        let unsealed = guard.as_ref().ok_or(StoreError::Sealed)?;
        Ok(unsealed.keyring.encrypt(key.as_bytes(), plaintext)?)
    }

    async fn decrypt(&self, key: &str, entry: &Entry) -> Result<Zeroizing<Vec<u8>>> {
        let first = {
            let guard = self.state.load();
            let unsealed = guard.as_ref().ok_or(StoreError::Sealed)?;
            unsealed.keyring.decrypt(key.as_bytes(), &entry.value)
        };
        match first {
            Ok(plain) => Ok(plain),
            Err(BarrierError::UnknownTerm(term)) => {
                // Another node may have rotated since we unsealed: pick up its keyring, once.
                if self.reload_keyring(term).await? {
                    let guard = self.state.load();
                    let unsealed = guard.as_ref().ok_or(StoreError::Sealed)?;
                    unsealed
                        .keyring
                        .decrypt(key.as_bytes(), &entry.value)
                        .map_err(|_| corrupt(key, "value failed authentication".into()))
                } else {
                    Err(corrupt(
                        key,
                        format!("value names unknown keyring term {term}"),
                    ))
                }
            }
            Err(_) => Err(corrupt(
                key,
                "value failed authentication (altered, or moved from another key)".into(),
            )),
        }
    }

    /// Reloads the keyring from storage if it may contain `term`; returns whether `term` is now
    /// known.
    async fn reload_keyring(&self, term: u32) -> Result<bool> {
        let _guard = self.lifecycle.lock().await;
        let generation = self.control().generation;
        let current = self.state.load_full().ok_or(StoreError::Sealed)?;
        if current.keyring.terms().any(|k| k.term() == term) {
            return Ok(true);
        }
        // Terms only grow; an unknown term below our latest cannot come from a rotation.
        if term <= current.keyring.latest_term() {
            return Ok(false);
        }
        let entry = self.read_keyring_entry().await?;
        let keyring = self.open_stored_keyring(&entry, &current.root_key)?;
        if keyring.latest_term() <= current.keyring.latest_term() {
            return Ok(false);
        }
        let known = keyring.terms().any(|k| k.term() == term);
        tracing::info!(
            term = keyring.active_term(),
            "reloaded keyring rotated elsewhere"
        );
        self.install(
            generation,
            Arc::new(Unsealed {
                keyring,
                root_key: current.root_key.clone(),
            }),
        )?;
        Ok(known)
    }

    async fn read_keyring_entry(&self) -> Result<Entry> {
        self.backend
            .get(KEYRING_KEY)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                key: Some(KEYRING_KEY.to_owned()),
                reason: "the sealed keyring is missing although the store is initialized".into(),
            })
    }

    fn open_stored_keyring(&self, entry: &Entry, root: &RootKey) -> Result<Keyring> {
        match Keyring::open(&entry.value, root) {
            Ok(keyring) => Ok(keyring),
            Err(BarrierError::InvalidRootKey) => Err(StoreError::InvalidRootKey),
            Err(BarrierError::MalformedKeyring(reason)) => Err(StoreError::Corrupt {
                key: Some(KEYRING_KEY.to_owned()),
                reason: format!("the sealed keyring is malformed: {reason}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_keyring(&self, root: RootKey, generation: u64) -> Result<()> {
        let entry = self.read_keyring_entry().await?;
        let keyring = self.open_stored_keyring(&entry, &root)?;
        let term = keyring.active_term();
        self.install(
            generation,
            Arc::new(Unsealed {
                keyring,
                root_key: root,
            }),
        )?;
        self.reset_unseal_progress();
        tracing::info!(term, "store unsealed");
        Ok(())
    }

    async fn seal_config(&self) -> Result<Option<Arc<SealConfig>>> {
        if let Some(config) = self.config.load_full() {
            return Ok(Some(config));
        }
        let Some(entry) = self.backend.get(SEAL_CONFIG_KEY).await? else {
            return Ok(None);
        };
        let unreadable = |reason: String| StoreError::Corrupt {
            key: Some(SEAL_CONFIG_KEY.to_owned()),
            reason,
        };
        let config: SealConfig = serde_json::from_slice(&entry.value)
            .map_err(|e| unreadable(format!("unreadable seal configuration: {e}")))?;
        let valid = match config.seal_type {
            SealType::File => config.shares == 1 && config.threshold == 1,
            SealType::Shamir => shamir::validate_params(config.shares, config.threshold).is_ok(),
        };
        if !valid {
            return Err(unreadable(format!(
                "invalid seal configuration: {} with {} shares, threshold {}",
                config.seal_type, config.shares, config.threshold
            )));
        }
        let config = Arc::new(config);
        self.config.store(Some(Arc::clone(&config)));
        Ok(Some(config))
    }
}
