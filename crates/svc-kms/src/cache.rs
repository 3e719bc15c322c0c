//! The in-memory copy of key records, their decrypted materials and aliases, so that Encrypt,
//! Decrypt and GenerateDataKey touch no disk.
//!
//! Entries are dropped, never patched: every change KMS writes calls [`KeyCache::invalidate_key`]
//! or [`KeyCache::invalidate_alias`] after the write, and the next reader reloads from the store.
//! A reader that loaded from the store while an invalidation happened does not install what it
//! read (it may predate the change): each invalidation bumps an epoch, and a load installs its
//! result only if the epoch is unchanged since the load began. Another node's changes (the
//! PostgreSQL change stream, see `Kms::storage_key_changed`) arrive through the same entry points.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use citadel_iam::policy::Policy;

use crate::grants::Grants;
use crate::material::Material;
use crate::record::{AliasRecord, KeyRecord};

/// A key record with every material it names, decrypted.
pub struct LoadedKey {
    /// The record's version in the store (for compare-and-swap).
    pub version: u64,
    pub record: KeyRecord,
    /// Materials by their 64-hex id. Zeroized when the last reference drops.
    pub materials: HashMap<String, Arc<Material>>,
    /// The key policy, parsed once when the key was loaded; `None` when the stored policy does
    /// not parse (the key then allows nothing).
    pub policy: Option<Arc<Policy>>,
    /// The key's grants (all of them: at most the per-key limit).
    pub grants: Grants,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("version", &self.version)
            .field("record", &self.record)
            .field("materials", &self.materials.len())
            .field("grants", &self.grants.len())
            .finish()
    }
}

impl LoadedKey {
    pub fn current_material(&self) -> Option<&Arc<Material>> {
        self.record
            .current_material()
            .and_then(|m| self.materials.get(&m.id))
    }
}

#[derive(Debug, Clone)]
pub struct LoadedAlias {
    pub record: AliasRecord,
}

#[derive(Default)]
pub struct KeyCache {
    epoch: AtomicU64,
    /// By storage path of the key record.
    keys: RwLock<HashMap<String, Arc<LoadedKey>>>,
    /// By storage path of the alias record.
    aliases: RwLock<HashMap<String, Arc<LoadedAlias>>>,
    /// The owning account by owner-index path (`record::owner_path`). A key's owner never
    /// changes, so entries need no invalidation; a destroyed key's entry just finds no key.
    owners: RwLock<HashMap<String, String>>,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("keys", &self.read_keys().len())
            .field("aliases", &self.read_aliases().len())
            .finish()
    }
}

// The maps hold plain data replaced in single steps; a panic elsewhere cannot leave them
// half-written, so a poisoned lock is still safe to use.
impl KeyCache {
    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<LoadedKey>>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<LoadedKey>>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_aliases(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<LoadedAlias>>> {
        self.aliases.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_aliases(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<LoadedAlias>>> {
        self.aliases.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take before reading from the store; pass to the `install_*` call afterwards.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn key(&self, path: &str) -> Option<Arc<LoadedKey>> {
        self.read_keys().get(path).cloned()
    }

    pub fn alias(&self, path: &str) -> Option<Arc<LoadedAlias>> {
        self.read_aliases().get(path).cloned()
    }

    pub fn install_key(&self, path: &str, key: Arc<LoadedKey>, epoch: u64) {
        let mut keys = self.write_keys();
        // Checked under the write lock, which every invalidation also takes after bumping the
        // epoch: an invalidation either happened before (epoch differs) or removes this entry.
        if self.epoch() == epoch {
            keys.insert(path.to_owned(), key);
        }
    }

    pub fn install_alias(&self, path: &str, alias: Arc<LoadedAlias>, epoch: u64) {
        let mut aliases = self.write_aliases();
        if self.epoch() == epoch {
            aliases.insert(path.to_owned(), alias);
        }
    }

    /// Forgets the key stored at `path`.
    pub fn invalidate_key(&self, path: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.write_keys().remove(path);
    }

    /// Forgets the alias stored at `path`.
    pub fn invalidate_alias(&self, path: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.write_aliases().remove(path);
    }

    /// Forgets the key `key_id` in every account and region, and every alias pointing to it.
    pub fn invalidate_key_id(&self, key_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let suffix = format!("/key/{key_id}");
        self.write_keys().retain(|path, _| !path.ends_with(&suffix));
        self.write_aliases()
            .retain(|_, a| a.record.target != key_id);
    }

    pub fn owner(&self, path: &str) -> Option<String> {
        self.owners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    pub fn install_owner(&self, path: &str, account: &str) {
        self.owners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), account.to_owned());
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.write_keys().clear();
        self.write_aliases().clear();
        self.owners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
