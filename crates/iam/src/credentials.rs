use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use citadel_api::{Principal, PrincipalKind};
use citadel_store::{Expect, SealedStore, StoreError, put_json_op};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{EntityKind, PrincipalPolicies, entity_arn, name_key};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account {0} already has a root access key")]
    RootKeyExists(String),
    #[error(
        "the configured root access key id does not match the one stored for account {0}; the stored key stays in force"
    )]
    RootKeyMismatch(String),
    #[error("invalid access key id: {0}")]
    InvalidAccessKeyId(&'static str),
    #[error("invalid secret access key: {0}")]
    InvalidSecret(&'static str),
    #[error("corrupt policy data: {0}")]
    CorruptPolicy(String),
    #[error("no secure randomness: {0}")]
    Random(#[from] citadel_crypto::CryptoError),
}

/// An access key as stored (sealed by the barrier like every value).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredAccessKey {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Zeroizing<String>,
    pub(crate) account_id: String,
    /// `root` or `user` (`role-session` once STS lands).
    pub(crate) kind: String,
    pub(crate) active: bool,
    /// Seconds since the Unix epoch.
    pub(crate) created: i64,
    /// For `user` keys: the owner's lower-cased name and its unique id (a user deleted and
    /// re-created under the same name never inherits the old user's keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
}

pub(crate) const KIND_ROOT: &str = "root";
pub(crate) const KIND_USER: &str = "user";

#[derive(Serialize, Deserialize)]
struct RootKeyPointer {
    access_key_id: String,
}

/// A verified-lookup result: who an access key belongs to and the secret to check its
/// signature with.
pub struct Credential {
    pub principal: Principal,
    pub active: bool,
    secret: SecretString,
    /// Set for STS temporary credentials (`ASIA…`).
    pub(crate) session: Option<Arc<crate::sessions::SessionState>>,
}

impl Credential {
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    pub(crate) fn for_session(
        principal: Principal,
        secret: SecretString,
        session: crate::sessions::SessionState,
    ) -> Self {
        Credential {
            principal,
            active: true,
            secret,
            session: Some(Arc::new(session)),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal)
            .field("active", &self.active)
            .field("secret", &"**redacted**")
            .field("session", &self.session)
            .finish()
    }
}

/// A freshly created access key; the secret is shown to its owner once and never again.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"**redacted**")
            .finish()
    }
}

/// Access keys, the principals behind them, and the IAM entities and policies of every account
/// (see [`crate::identity`] for the entity operations).
///
/// Credential lookups and each principal's policies are served from memory after the first
/// read: both are on every request's path and must not touch the disk. Every change made
/// through this store invalidates what it affects before the call returns, so a deactivated or
/// deleted key stops working at once (on this node).
pub struct IdentityStore {
    pub(crate) store: Arc<SealedStore>,
    cache: RwLock<Caches>,
    /// The last use of each access key seen by this node, and when it was last persisted.
    last_used: Mutex<HashMap<String, PendingUse>>,
}

#[derive(Default)]
struct Caches {
    /// Bumped by every invalidation. A reader that loaded from the store inserts its result
    /// only if no invalidation happened since it started, so a stale value read concurrently
    /// with a change can never be cached after the change.
    generation: u64,
    credentials: HashMap<String, Arc<Credential>>,
    policies: HashMap<String, Arc<PrincipalPolicies>>,
}

struct PendingUse {
    at: i64,
    service: String,
    region: String,
    persisted: Option<Instant>,
}

pub(crate) fn access_key_path(access_key_id: &str) -> String {
    format!("iam/access-key/{access_key_id}")
}

fn root_pointer_path(account_id: &str) -> String {
    format!("iam/account/{account_id}/root-access-key")
}

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A random id: `prefix` followed by `len` characters of the upper-case base32 alphabet
/// (`AKIA…` access key ids, `AIDA…`/`AGPA…`/`AROA…`/`ANPA…` unique ids).
pub(crate) fn random_id(prefix: &str, len: usize) -> Result<String, IdentityError> {
    random_string(prefix, KEY_ID_ALPHABET, len)
}

/// A random 40-character secret access key.
pub(crate) fn random_secret() -> Result<Zeroizing<String>, IdentityError> {
    Ok(Zeroizing::new(random_string("", SECRET_ALPHABET, 40)?))
}

pub(crate) fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random_string(prefix: &str, alphabet: &[u8], len: usize) -> Result<String, IdentityError> {
    let bytes = citadel_crypto::random_bytes(len)?;
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    // Both alphabets have a power-of-two size, so masking keeps the choice uniform.
    let mask = alphabet.len() - 1;
    for b in bytes.iter() {
        let c = alphabet
            .get(usize::from(*b) & mask)
            .copied()
            .unwrap_or(b'A');
        out.push(char::from(c));
    }
    Ok(out)
}

fn validate_key_pair(access_key_id: &str, secret: &str) -> Result<(), IdentityError> {
    if !(16..=128).contains(&access_key_id.len()) {
        return Err(IdentityError::InvalidAccessKeyId(
            "it must be 16 to 128 characters long",
        ));
    }
    if access_key_id.starts_with(crate::sessions::SESSION_KEY_PREFIX) {
        return Err(IdentityError::InvalidAccessKeyId(
            "ASIA… ids are reserved for temporary credentials",
        ));
    }
    if !access_key_id
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(IdentityError::InvalidAccessKeyId(
            "it may contain only upper-case letters and digits",
        ));
    }
    if !(16..=128).contains(&secret.len()) || secret.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(IdentityError::InvalidSecret(
            "it must be 16 to 128 characters long, without whitespace",
        ));
    }
    Ok(())
}

impl IdentityStore {
    pub fn new(store: Arc<SealedStore>) -> Self {
        IdentityStore {
            store,
            cache: RwLock::new(Caches::default()),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Caches> {
        // The caches hold only derived data; a panic elsewhere cannot leave them inconsistent
        // with the store in a way that matters more than a cleared cache would.
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Caches> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the cached credentials of `access_key_ids` and every cached principal policy set
    /// (any IAM change may affect any principal's policies: a group's, a managed policy's).
    pub(crate) fn invalidate_keys(&self, access_key_ids: &[String]) {
        let mut cache = self.write_cache();
        cache.generation = cache.generation.wrapping_add(1);
        for id in access_key_ids {
            cache.credentials.remove(id);
        }
        // A session lives only as long as its role or user: any IAM change re-checks them.
        cache
            .credentials
            .retain(|id, _| !id.starts_with(crate::sessions::SESSION_KEY_PREFIX));
        cache.policies.clear();
    }

    /// Finds the credential for an access key id. `Ok(None)` means the key does not exist (or
    /// belongs to a user that no longer exists).
    pub async fn lookup(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Arc<Credential>>, IdentityError> {
        let generation = {
            let cache = self.read_cache();
            if let Some(hit) = cache.credentials.get(access_key_id) {
                return Ok(Some(hit.clone()));
            }
            cache.generation
        };
        // Only well-formed ids can exist; refusing the rest early keeps junk out of the store
        // path (and out of the storage key space).
        if access_key_id.is_empty()
            || access_key_id.len() > 128
            || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Ok(None);
        }
        if access_key_id.starts_with(crate::sessions::SESSION_KEY_PREFIX) {
            let Some(credential) = self.load_session(access_key_id).await? else {
                return Ok(None);
            };
            let credential = Arc::new(credential);
            let mut cache = self.write_cache();
            if cache.generation == generation {
                cache
                    .credentials
                    .insert(access_key_id.to_owned(), credential.clone());
            }
            return Ok(Some(credential));
        }
        let Some(stored) = self
            .store
            .get_json::<StoredAccessKey>(&access_key_path(access_key_id))
            .await?
        else {
            return Ok(None);
        };
        let principal = match stored.kind.as_str() {
            KIND_ROOT => Principal::root(&stored.account_id, &stored.access_key_id),
            KIND_USER => {
                let (Some(user_key), Some(user_id)) = (&stored.user, &stored.user_id) else {
                    return Ok(None);
                };
                let Some(user) = self
                    .store
                    .get_json::<crate::identity::records::UserRecord>(
                        &crate::identity::records::entity_path(
                            &stored.account_id,
                            EntityKind::User,
                            user_key,
                        ),
                    )
                    .await?
                else {
                    return Ok(None);
                };
                if !citadel_crypto::constant_time_eq(user.core.id.as_bytes(), user_id.as_bytes())
                    || name_key(&user.core.name) != *user_key
                {
                    return Ok(None);
                }
                Principal {
                    account_id: stored.account_id.clone(),
                    arn: entity_arn(
                        &stored.account_id,
                        EntityKind::User,
                        &user.core.path,
                        &user.core.name,
                    ),
                    user_id: user.core.id.clone(),
                    access_key_id: stored.access_key_id.clone(),
                    kind: PrincipalKind::User,
                }
            }
            // Kinds this version does not know are not credentials it can vouch for.
            _ => return Ok(None),
        };
        let credential = Arc::new(Credential {
            principal,
            active: stored.active,
            secret: SecretString::from(stored.secret_access_key.as_str()),
            session: None,
        });
        let mut cache = self.write_cache();
        if cache.generation == generation {
            cache
                .credentials
                .insert(access_key_id.to_owned(), credential.clone());
        }
        Ok(Some(credential))
    }

    /// The identity policies, permissions boundary and tags of `principal`, from memory after
    /// the first load (the authorizer calls this on every request). Empty for account roots.
    pub async fn principal_policies(
        &self,
        principal: &Principal,
    ) -> Result<Arc<PrincipalPolicies>, IdentityError> {
        let (kind, name) = match principal.kind {
            PrincipalKind::Root => return Ok(Arc::new(PrincipalPolicies::default())),
            PrincipalKind::User => (EntityKind::User, principal.arn.as_str()),
            PrincipalKind::AssumedRole => (EntityKind::Role, principal.arn.as_str()),
        };
        let Some(name) = crate::identity::name_from_principal_arn(name) else {
            return Ok(Arc::new(PrincipalPolicies::default()));
        };
        // Users authenticate as their `AIDA…` id; role sessions as `AROA…:session`.
        let unique_id = principal
            .user_id
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let cache_key = format!(
            "{}/{}/{}/{unique_id}",
            principal.account_id,
            kind.arn_type(),
            name_key(name)
        );
        let generation = {
            let cache = self.read_cache();
            if let Some(hit) = cache.policies.get(&cache_key) {
                return Ok(hit.clone());
            }
            cache.generation
        };
        let loaded = Arc::new(
            self.load_principal_policies(&principal.account_id, kind, name, &unique_id)
                .await?,
        );
        let mut cache = self.write_cache();
        if cache.generation == generation {
            cache.policies.insert(cache_key, loaded.clone());
        }
        Ok(loaded)
    }

    /// The identity-based policies that apply to `principal`: for a user its inline policies,
    /// its attached managed policies' default versions and its groups' inline and attached
    /// policies; for a role (or a session of it) the role's. Empty for account roots.
    pub async fn identity_policies(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(crate::identity::PolicySource, Arc<crate::policy::Policy>)>, IdentityError>
    {
        let p = self.principal_policies(principal).await?;
        Ok(p.sources
            .iter()
            .cloned()
            .zip(p.identity.iter().cloned())
            .collect())
    }

    /// The default version of the permissions boundary of the user or role behind `principal`.
    pub async fn permissions_boundary(
        &self,
        principal: &Principal,
    ) -> Result<Option<(crate::identity::PolicySource, Arc<crate::policy::Policy>)>, IdentityError>
    {
        Ok(self.principal_policies(principal).await?.boundary.clone())
    }

    /// Notes that `access_key_id` just signed a request to `service` in `region`. Cheap and
    /// synchronous: the use is kept in memory and persisted off the request path, at most once
    /// per key per [`LAST_USED_WRITE_INTERVAL`](crate::identity::LAST_USED_WRITE_INTERVAL).
    pub fn record_use(&self, access_key_id: &str, service: &str, region: &str) {
        let now = now_secs();
        let to_persist = {
            let mut pending = self
                .last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // The common case (a key seen before) allocates nothing.
            if !pending.contains_key(access_key_id) {
                pending.insert(
                    access_key_id.to_owned(),
                    PendingUse {
                        at: now,
                        service: service.to_owned(),
                        region: region.to_owned(),
                        persisted: None,
                    },
                );
            }
            let Some(entry) = pending.get_mut(access_key_id) else {
                return;
            };
            entry.at = now;
            if entry.service != service {
                service.clone_into(&mut entry.service);
            }
            if entry.region != region {
                region.clone_into(&mut entry.region);
            }
            let due = entry
                .persisted
                .is_none_or(|at| at.elapsed() >= crate::identity::LAST_USED_WRITE_INTERVAL);
            if due {
                entry.persisted = Some(Instant::now());
                Some(crate::identity::records::LastUsedRecord {
                    at: now,
                    service: entry.service.clone(),
                    region: entry.region.clone(),
                })
            } else {
                None
            }
        };
        let Some(record) = to_persist else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        let key = crate::identity::records::last_used_path(access_key_id);
        runtime.spawn(async move {
            if let Err(e) = store.put_json(&key, &record, Expect::Any).await {
                tracing::debug!(error = %e, "could not persist an access key's last use");
            }
        });
    }

    /// This node's in-memory record of a key's last use (fresher than the stored one).
    pub(crate) fn pending_use(&self, access_key_id: &str) -> Option<crate::identity::KeyLastUsed> {
        let pending = self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending
            .get(access_key_id)
            .map(|p| crate::identity::KeyLastUsed {
                at: p.at,
                service: p.service.clone(),
                region: p.region.clone(),
            })
    }

    pub(crate) fn forget_use(&self, access_key_id: &str) {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(access_key_id);
    }

    /// Forgets every cached credential and policy (on seal, and whenever keys change outside
    /// this store).
    pub fn invalidate(&self) {
        let mut cache = self.write_cache();
        cache.generation = cache.generation.wrapping_add(1);
        cache.credentials.clear();
        cache.policies.clear();
    }

    pub async fn root_access_key_id(
        &self,
        account_id: &str,
    ) -> Result<Option<String>, IdentityError> {
        Ok(self
            .store
            .get_json::<RootKeyPointer>(&root_pointer_path(account_id))
            .await?
            .map(|p| p.access_key_id))
    }

    /// When the root user of `account_id` got its credentials (what IAM reports as the root
    /// user's creation date), if it has any.
    pub async fn root_user_created(&self, account_id: &str) -> Result<Option<i64>, IdentityError> {
        let Some(id) = self.root_access_key_id(account_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_json::<StoredAccessKey>(&access_key_path(&id))
            .await?
            .map(|k| k.created))
    }

    /// Creates the root access key of `account_id`. Refused if one exists: the root secret is
    /// shown once, at creation.
    pub async fn create_root_access_key(
        &self,
        account_id: &str,
    ) -> Result<NewAccessKey, IdentityError> {
        let access_key_id = random_string("AKIA", KEY_ID_ALPHABET, 16)?;
        let secret = Zeroizing::new(random_string("", SECRET_ALPHABET, 40)?);
        self.store_root_key(account_id, &access_key_id, &secret)
            .await?;
        Ok(NewAccessKey {
            access_key_id,
            secret_access_key: SecretString::from(secret.as_str()),
        })
    }

    /// Makes the given key pair the root access key of `account_id` (automation: the pair comes
    /// from the environment). Idempotent for the same id; a different id is refused rather than
    /// silently replacing the stored root key.
    pub async fn ensure_root_access_key(
        &self,
        account_id: &str,
        access_key_id: &str,
        secret: &SecretString,
    ) -> Result<(), IdentityError> {
        validate_key_pair(access_key_id, secret.expose_secret())?;
        match self.root_access_key_id(account_id).await? {
            Some(existing) if existing == access_key_id => {
                // Keep the stored secret in step with the configured one.
                let path = access_key_path(access_key_id);
                if let Some(mut stored) = self.store.get_json::<StoredAccessKey>(&path).await?
                    && !citadel_crypto::constant_time_eq(
                        stored.secret_access_key.as_bytes(),
                        secret.expose_secret().as_bytes(),
                    )
                {
                    stored.secret_access_key = Zeroizing::new(secret.expose_secret().to_owned());
                    self.store.put_json(&path, &stored, Expect::Any).await?;
                    self.invalidate();
                }
                Ok(())
            }
            Some(_) => Err(IdentityError::RootKeyMismatch(account_id.to_owned())),
            None => {
                let secret = Zeroizing::new(secret.expose_secret().to_owned());
                self.store_root_key(account_id, access_key_id, &secret)
                    .await
            }
        }
    }

    async fn store_root_key(
        &self,
        account_id: &str,
        access_key_id: &str,
        secret: &Zeroizing<String>,
    ) -> Result<(), IdentityError> {
        let created = time::OffsetDateTime::now_utc().unix_timestamp();
        let record = StoredAccessKey {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret.clone(),
            account_id: account_id.to_owned(),
            kind: KIND_ROOT.into(),
            active: true,
            created,
            user: None,
            user_id: None,
        };
        let pointer = RootKeyPointer {
            access_key_id: access_key_id.to_owned(),
        };
        // One atomic batch, both records absent before: two racing creators cannot both win.
        let result = self
            .store
            .batch(vec![
                put_json_op(root_pointer_path(account_id), &pointer, Expect::Absent)?,
                put_json_op(access_key_path(access_key_id), &record, Expect::Absent)?,
            ])
            .await;
        match result {
            Err(StoreError::Conflict { .. }) => {
                Err(IdentityError::RootKeyExists(account_id.to_owned()))
            }
            other => Ok(other?),
        }
    }
}
