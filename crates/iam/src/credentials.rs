use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use citadel_api::Principal;
use citadel_store::{Expect, SealedStore, StoreError, put_json_op};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

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
    #[error("no secure randomness: {0}")]
    Random(#[from] citadel_crypto::CryptoError),
}

/// An access key as stored (sealed by the barrier like every value).
#[derive(Serialize, Deserialize)]
struct StoredAccessKey {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    account_id: String,
    /// `root` today; `user` and `role-session` once IAM lands.
    kind: String,
    active: bool,
    created: i64,
}

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
}

impl Credential {
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal)
            .field("active", &self.active)
            .field("secret", &"**redacted**")
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

/// Access keys and the principals behind them. Lookups are served from memory after the first
/// read: SigV4 verification is on every request's path and must not touch the disk.
pub struct IdentityStore {
    store: Arc<SealedStore>,
    cache: RwLock<HashMap<String, Arc<Credential>>>,
}

fn access_key_path(access_key_id: &str) -> String {
    format!("iam/access-key/{access_key_id}")
}

fn root_pointer_path(account_id: &str) -> String {
    format!("iam/account/{account_id}/root-access-key")
}

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Finds the credential for an access key id. `Ok(None)` means the key does not exist.
    pub async fn lookup(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Arc<Credential>>, IdentityError> {
        if let Ok(cache) = self.cache.read()
            && let Some(hit) = cache.get(access_key_id)
        {
            return Ok(Some(hit.clone()));
        }
        // Only well-formed ids can exist; refusing the rest early keeps junk out of the store
        // path (and out of the storage key space).
        if access_key_id.is_empty()
            || access_key_id.len() > 128
            || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Ok(None);
        }
        let Some(stored) = self
            .store
            .get_json::<StoredAccessKey>(&access_key_path(access_key_id))
            .await?
        else {
            return Ok(None);
        };
        let credential = Arc::new(Credential {
            principal: Principal::root(&stored.account_id, &stored.access_key_id),
            active: stored.active,
            secret: SecretString::from(stored.secret_access_key.as_str()),
        });
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(access_key_id.to_owned(), credential.clone());
        }
        Ok(Some(credential))
    }

    /// Forgets every cached credential (on seal, and whenever keys change).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
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
            kind: "root".into(),
            active: true,
            created,
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
