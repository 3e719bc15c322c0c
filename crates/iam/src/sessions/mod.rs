//! STS sessions: the temporary credentials `AssumeRole` and `GetSessionToken` issue.
//!
//! Layout (sealed by the barrier like every value):
//!
//! ```text
//! iam/session/{ASIA…}     SessionRecord: secret, SHA-256 of the session token, principal,
//!                         issuer (role or user, with its unique id), expiry, session policies
//! ```
//!
//! - The session token is 96 random bytes, base64: only its SHA-256 is stored, and a presented
//!   token is compared with it in constant time.
//! - A session dies with its issuer: the role (or user) it was issued for must still exist with
//!   the same unique id, checked whenever the session is loaded; every IAM change drops the
//!   cached sessions, so deleting a role stops its sessions at once (on this node).
//! - An expired session is refused at every request ([`TokenCheck::Expired`]) and removed by
//!   [`IdentityStore::purge_expired_sessions`], which the scheduler drives.
//! - Managed session policies (`PolicyArns`) are resolved when the session is issued, as AWS
//!   packs them into the token: later edits of the managed policy do not change the session.

use std::sync::Arc;

use base64::Engine as _;
use citadel_api::{Principal, PrincipalKind};
use citadel_store::{Expect, StoreError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::credentials::{Credential, IdentityError, IdentityStore, random_id, random_secret};
use crate::identity::records::{RoleRecord, UserRecord, entity_path};
use crate::identity::{EntityKind, Tag, entity_arn, name_key};
use crate::policy::{IdentityPolicyKind, Policy, PolicyKind};

/// Where sessions live in the store.
pub(crate) const SESSION_PREFIX: &str = "iam/session/";
/// Temporary access key ids start with this.
pub const SESSION_KEY_PREFIX: &str = "ASIA";
/// Random bytes in a session token (base64 makes 128 characters of them).
const TOKEN_BYTES: usize = 96;
/// Sessions examined per scheduler page.
const PURGE_CHUNK: usize = 500;

const ALLOWS_NOTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}"#;

pub(crate) fn session_path(access_key_id: &str) -> String {
    format!("{SESSION_PREFIX}{access_key_id}")
}

/// Who a session was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// `AssumeRole`: a session of a role.
    AssumedRole,
    /// `GetSessionToken` called by an IAM user.
    User,
    /// `GetSessionToken` called by an account root.
    Root,
}

/// A session policy as stored: the inline `Policy` parameter or the default version of a
/// managed policy named in `PolicyArns` at issue time.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSessionPolicy {
    managed: bool,
    document: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    /// Hex SHA-256 of the session token.
    token_sha256: String,
    account_id: String,
    kind: SessionKind,
    arn: String,
    user_id: String,
    /// The issuer's lower-cased name and unique id (role or user; none for root).
    #[serde(default)]
    issuer_key: Option<String>,
    #[serde(default)]
    issuer_id: Option<String>,
    /// The role's ARN with its path (assumed-role sessions).
    #[serde(default)]
    role_arn: Option<String>,
    issued: i64,
    expires: i64,
    #[serde(default)]
    policies: Vec<StoredSessionPolicy>,
    #[serde(default)]
    source_identity: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

/// What a request signed with session credentials carries beyond the principal.
pub struct SessionState {
    token_sha256: [u8; 32],
    pub kind: SessionKind,
    /// Seconds since the Unix epoch.
    pub issued: i64,
    pub expires: i64,
    /// Inline and managed session policies (empty: the session is not narrowed).
    pub policies: Vec<Arc<Policy>>,
    /// The role's ARN with its path, for assumed-role sessions.
    pub role_arn: Option<String>,
    pub source_identity: Option<String>,
    /// Session tags (`aws:PrincipalTag/…`, over the role's own tags).
    pub tags: Vec<Tag>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("token", &"**redacted**")
            .field("kind", &self.kind)
            .field("issued", &self.issued)
            .field("expires", &self.expires)
            .field("policies", &self.policies.len())
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

/// The outcome of checking the session token a request carries against its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    /// Missing, wrong, or presented with a long-term key.
    Invalid,
    /// The right token, but the session is over.
    Expired,
}

impl SessionState {
    fn token_matches(&self, token: &str) -> bool {
        let presented = citadel_crypto::sha256(token.as_bytes());
        citadel_crypto::constant_time_eq(&presented, &self.token_sha256)
    }
}

impl Credential {
    /// Checks the `X-Amz-Security-Token` of a request at `now` (seconds since the epoch):
    /// long-term keys take none, session keys need theirs, and only until they expire.
    pub fn check_token(&self, token: Option<&str>, now: i64) -> TokenCheck {
        match (self.session.as_deref(), token) {
            (None, None) => TokenCheck::Valid,
            (None, Some(_)) | (Some(_), None) => TokenCheck::Invalid,
            (Some(session), Some(token)) => {
                if !session.token_matches(token) {
                    TokenCheck::Invalid
                } else if now >= session.expires {
                    TokenCheck::Expired
                } else {
                    TokenCheck::Valid
                }
            }
        }
    }

    /// The session behind temporary credentials; `None` for long-term keys.
    pub fn session(&self) -> Option<&SessionState> {
        self.session.as_deref()
    }
}

/// A role as `AssumeRole` needs it.
#[derive(Debug, Clone)]
pub struct AssumableRole {
    pub account_id: String,
    pub name: String,
    pub id: String,
    /// With its path.
    pub arn: String,
    /// The trust policy as stored.
    pub trust_policy: String,
    pub max_session_duration: i32,
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub kind: SessionKind,
    /// The principal's account.
    pub account_id: String,
    /// `AssumedRole`: the role; `User`: the user's lower-cased name and id come from
    /// `issuer`; `Root`: none.
    pub role: Option<AssumableRole>,
    pub session_name: Option<String>,
    /// For `User` sessions: the user's ARN, unique id and lower-cased name.
    pub user: Option<(String, String, String)>,
    pub now: i64,
    pub duration_secs: i64,
    /// The inline session policy, already validated by [`Policy::parse`].
    pub policy: Option<String>,
    /// Managed session policies (ARNs), resolved now.
    pub policy_arns: Vec<String>,
    pub source_identity: Option<String>,
    pub tags: Vec<Tag>,
}

/// Freshly issued temporary credentials; the secret and token are shown once.
pub struct IssuedSession {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub expires: i64,
    pub principal: Principal,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"**redacted**")
            .field("session_token", &"**redacted**")
            .field("expires", &self.expires)
            .field("principal", &self.principal)
            .finish()
    }
}

/// Why a session could not be issued (other than storage).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A `PolicyArns` entry names no managed policy the session can use.
    #[error("invalid session policy ARN")]
    UnknownPolicyArn(String),
    /// A managed session policy's document does not parse as a policy.
    #[error("a managed session policy does not parse")]
    BadManagedPolicy(String),
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = s.get(i * 2..i * 2 + 2)?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn allows_nothing() -> Result<Arc<Policy>, IdentityError> {
    Policy::parse(ALLOWS_NOTHING, PolicyKind::Session)
        .map(Arc::new)
        .map_err(|e| IdentityError::CorruptPolicy(format!("the allow-nothing policy: {e}")))
}

/// Splits `arn:aws:iam::ACCT:role/path/Name` into (account, path, name).
fn parse_role_arn(arn: &str) -> Option<(&str, String, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let resource = resource.strip_prefix("role/")?;
    let (path, name) = match resource.rfind('/') {
        Some(i) => (format!("/{}", resource.get(..=i)?), resource.get(i + 1..)?),
        None => ("/".to_owned(), resource),
    };
    if name.is_empty() {
        return None;
    }
    Some((account, path, name))
}

impl IdentityStore {
    /// The role `role_arn` names (path included), if it exists.
    pub async fn assumable_role(
        &self,
        role_arn: &str,
    ) -> Result<Option<AssumableRole>, IdentityError> {
        let Some((account, path, name)) = parse_role_arn(role_arn) else {
            return Ok(None);
        };
        let key = entity_path(account, EntityKind::Role, &name_key(name));
        let Some(role) = self.store.get_json::<RoleRecord>(&key).await? else {
            return Ok(None);
        };
        if role.core.path != path || role.core.name != name {
            return Ok(None);
        }
        Ok(Some(AssumableRole {
            account_id: account.to_owned(),
            name: role.core.name.clone(),
            id: role.core.id.clone(),
            arn: entity_arn(account, EntityKind::Role, &role.core.path, &role.core.name),
            trust_policy: role.trust_policy,
            max_session_duration: role.max_session_duration,
        }))
    }

    /// Issues temporary credentials.
    pub async fn create_session(&self, new: NewSession) -> Result<IssuedSession, SessionError> {
        let mut policies = Vec::new();
        if let Some(p) = &new.policy {
            policies.push(StoredSessionPolicy {
                managed: false,
                document: p.clone(),
            });
        }
        // Managed session policies come from the account of the role (or of the caller).
        let policy_account = new
            .role
            .as_ref()
            .map_or(new.account_id.as_str(), |r| r.account_id.as_str());
        for arn in &new.policy_arns {
            let Some((_, document)) = self.default_document(policy_account, arn).await? else {
                return Err(SessionError::UnknownPolicyArn(arn.clone()));
            };
            if Policy::parse(&document, PolicyKind::Identity(IdentityPolicyKind::Managed)).is_err()
            {
                return Err(SessionError::BadManagedPolicy(arn.clone()));
            }
            policies.push(StoredSessionPolicy {
                managed: true,
                document,
            });
        }
        let access_key_id = random_id(SESSION_KEY_PREFIX, 16)?;
        let secret = random_secret()?;
        let token_bytes = citadel_crypto::random_bytes(TOKEN_BYTES).map_err(IdentityError::from)?;
        let token = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(token_bytes.as_slice()),
        );
        let token_sha256 = hex(&citadel_crypto::sha256(token.as_bytes()));
        let expires = new.now.saturating_add(new.duration_secs);
        let (principal, issuer_key, issuer_id, role_arn) = match new.kind {
            SessionKind::AssumedRole => {
                let (Some(role), Some(session)) = (&new.role, &new.session_name) else {
                    return Err(IdentityError::CorruptPolicy(
                        "an assumed-role session needs a role and a session name".into(),
                    )
                    .into());
                };
                (
                    Principal {
                        account_id: role.account_id.clone(),
                        arn: format!(
                            "arn:aws:sts::{}:assumed-role/{}/{session}",
                            role.account_id, role.name
                        ),
                        user_id: format!("{}:{session}", role.id),
                        access_key_id: access_key_id.clone(),
                        kind: PrincipalKind::AssumedRole,
                    },
                    Some(name_key(&role.name)),
                    Some(role.id.clone()),
                    Some(role.arn.clone()),
                )
            }
            SessionKind::User => {
                let Some((arn, id, key)) = &new.user else {
                    return Err(IdentityError::CorruptPolicy(
                        "a user session needs its user".into(),
                    )
                    .into());
                };
                (
                    Principal {
                        account_id: new.account_id.clone(),
                        arn: arn.clone(),
                        user_id: id.clone(),
                        access_key_id: access_key_id.clone(),
                        kind: PrincipalKind::User,
                    },
                    Some(key.clone()),
                    Some(id.clone()),
                    None,
                )
            }
            SessionKind::Root => (
                Principal::root(&new.account_id, &access_key_id),
                None,
                None,
                None,
            ),
        };
        let record = SessionRecord {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
            token_sha256,
            account_id: principal.account_id.clone(),
            kind: new.kind,
            arn: principal.arn.clone(),
            user_id: principal.user_id.clone(),
            issuer_key,
            issuer_id,
            role_arn,
            issued: new.now,
            expires,
            policies,
            source_identity: new.source_identity.clone(),
            tags: new.tags.clone(),
        };
        self.store
            .put_json(&session_path(&access_key_id), &record, Expect::Absent)
            .await
            .map_err(IdentityError::from)?;
        Ok(IssuedSession {
            access_key_id,
            secret_access_key: SecretString::from(secret.as_str()),
            session_token: SecretString::from(token.as_str()),
            expires,
            principal,
        })
    }

    /// Loads a session credential (uncached). `None` when it does not exist or its issuer is
    /// gone (deleted, or re-created under the same name with another id).
    pub(crate) async fn load_session(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Credential>, IdentityError> {
        let Some(record) = self
            .store
            .get_json::<SessionRecord>(&session_path(access_key_id))
            .await?
        else {
            return Ok(None);
        };
        if record.access_key_id != access_key_id {
            return Ok(None);
        }
        let issuer_alive = match (record.kind, &record.issuer_key, &record.issuer_id) {
            (SessionKind::Root, _, _) => true,
            (SessionKind::AssumedRole, Some(key), Some(id)) => self
                .store
                .get_json::<RoleRecord>(&entity_path(&record.account_id, EntityKind::Role, key))
                .await?
                .is_some_and(|r| {
                    citadel_crypto::constant_time_eq(r.core.id.as_bytes(), id.as_bytes())
                }),
            (SessionKind::User, Some(key), Some(id)) => self
                .store
                .get_json::<UserRecord>(&entity_path(&record.account_id, EntityKind::User, key))
                .await?
                .is_some_and(|u| {
                    citadel_crypto::constant_time_eq(u.core.id.as_bytes(), id.as_bytes())
                }),
            _ => false,
        };
        if !issuer_alive {
            return Ok(None);
        }
        let Some(token_sha256) = unhex32(&record.token_sha256) else {
            return Ok(None);
        };
        let mut policies = Vec::with_capacity(record.policies.len());
        for p in &record.policies {
            let kind = if p.managed {
                PolicyKind::Identity(IdentityPolicyKind::Managed)
            } else {
                PolicyKind::Session
            };
            // A session policy that no longer parses still narrows: it allows nothing.
            match Policy::parse(&p.document, kind) {
                Ok(policy) => policies.push(Arc::new(policy)),
                Err(e) => {
                    tracing::warn!(error = %e, "a stored session policy no longer parses; it allows nothing");
                    policies.push(allows_nothing()?);
                }
            }
        }
        let kind = match record.kind {
            SessionKind::AssumedRole => PrincipalKind::AssumedRole,
            SessionKind::User => PrincipalKind::User,
            SessionKind::Root => PrincipalKind::Root,
        };
        let principal = Principal {
            account_id: record.account_id.clone(),
            arn: record.arn.clone(),
            user_id: record.user_id.clone(),
            access_key_id: record.access_key_id.clone(),
            kind,
        };
        let session = SessionState {
            token_sha256,
            kind: record.kind,
            issued: record.issued,
            expires: record.expires,
            policies,
            role_arn: record.role_arn.clone(),
            source_identity: record.source_identity.clone(),
            tags: record.tags.clone(),
        };
        Ok(Some(Credential::for_session(
            principal,
            SecretString::from(record.secret_access_key.as_str()),
            session,
        )))
    }

    /// Removes every session that expired at or before `now`; returns how many.
    pub async fn purge_expired_sessions(&self, now: i64) -> Result<usize, IdentityError> {
        let mut removed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(SESSION_PREFIX, after.as_deref(), PURGE_CHUNK)
                .await?;
            let done = page.len() < PURGE_CHUNK;
            after = page.last().map(|(k, _)| k.clone());
            for (key, record) in page {
                let expired = match serde_json::from_slice::<SessionRecord>(&record.value) {
                    Ok(s) => s.expires <= now,
                    // A record this version cannot read is no session it can honour.
                    Err(_) => true,
                };
                if expired {
                    match self
                        .store
                        .delete(&key, Expect::Version(record.version))
                        .await
                    {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    if let Some(id) = key.strip_prefix(SESSION_PREFIX) {
                        removed.push(id.to_owned());
                    }
                }
            }
            if done {
                break;
            }
        }
        if !removed.is_empty() {
            self.invalidate_keys(&removed);
        }
        Ok(removed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_split_into_account_path_and_name() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::111122223333:role/R"),
            Some(("111122223333", "/".to_owned(), "R"))
        );
        assert_eq!(
            parse_role_arn("arn:aws:iam::111122223333:role/a/b/R"),
            Some(("111122223333", "/a/b/".to_owned(), "R"))
        );
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:user/R"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::1111:role/R"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:role/"), None);
    }

    #[test]
    fn hex_round_trips() {
        let h = citadel_crypto::sha256(b"x");
        assert_eq!(unhex32(&hex(&h)), Some(h));
        assert_eq!(unhex32("zz"), None);
    }
}
