//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, the grant
//! tokens, and the question every key operation asks — does a grant allow this caller this
//! operation with this encryption context?
//!
//! Grants are stored one record per grant under their key (see [`crate::record`]) and loaded
//! with the key into the cache, indexed by grantee, so the hot path still touches no disk. Every
//! grant change compare-and-swaps the key record (bumping `grant_generation`), which drops the
//! cached key: a retired or revoked grant stops working at once.
//!
//! A grant token is `base64url(key id kind ‖ key id ‖ grant id ‖ nonce ‖ HMAC-SHA256(grant secret,
//! …))` (the key id packed as in ciphertexts, [`crate::names::PackedKeyId`]):
//! every CreateGrant returns a fresh token, all tokens of a grant are interchangeable, and none
//! can be forged from the grant id that ListGrants shows. Tokens are bearer secrets: they are
//! never logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use citadel_api::{AwsError, Principal, PrincipalKind, RequestContext};
use citadel_model::Timestamp;
use citadel_model::kms;
use citadel_store::{Expect, Op};

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::keys::page;
use crate::names::PackedKeyId;
use crate::record::{self, GrantConstraint, GrantRecord};
use crate::repo::Change;
use crate::specs;
use crate::state::{self, KeyOp};
use crate::{Empty, Kms, errors};

/// AWS's quota of grants per KMS key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

const NONCE_LEN: usize = 16;
const GRANT_ID_LEN: usize = 32;
const TAG_LEN: usize = citadel_crypto::SHA256_LEN;
const SIGNED_LEN: usize = 1 + 16 + GRANT_ID_LEN + NONCE_LEN;
const TOKEN_LEN: usize = SIGNED_LEN + TAG_LEN;

/// Operations a grant on a symmetric encryption key may name.
const SYMMETRIC_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// The grant operations valid for a key of `key_spec` and `key_usage` (AWS's table).
pub fn operations_for(key_spec: &str, key_usage: &str) -> &'static [&'static str] {
    match (key_spec, key_usage) {
        ("SYMMETRIC_DEFAULT", _) => SYMMETRIC_OPERATIONS,
        (s, _) if s.starts_with("HMAC_") => &[
            "CreateGrant",
            "DescribeKey",
            "GenerateMac",
            "RetireGrant",
            "VerifyMac",
        ],
        (_, "SIGN_VERIFY") => &[
            "CreateGrant",
            "DescribeKey",
            "GetPublicKey",
            "RetireGrant",
            "Sign",
            "Verify",
        ],
        (_, "KEY_AGREEMENT") => &[
            "CreateGrant",
            "DescribeKey",
            "DeriveSharedSecret",
            "GetPublicKey",
            "RetireGrant",
        ],
        _ => &[
            "CreateGrant",
            "Decrypt",
            "DescribeKey",
            "Encrypt",
            "GetPublicKey",
            "ReEncryptFrom",
            "ReEncryptTo",
            "RetireGrant",
        ],
    }
}

/// Operations whose grants are never checked against the encryption context (they take none).
fn ignores_constraints(op: &str) -> bool {
    matches!(op, "DescribeKey" | "RetireGrant" | "CreateGrant")
}

/// Whether the request's encryption context meets a grant's constraint.
pub fn constraint_matches(
    constraint: Option<&GrantConstraint>,
    context: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let context = context.unwrap_or(&empty);
    match constraint {
        None => true,
        Some(GrantConstraint::Equals(want)) => context == want,
        Some(GrantConstraint::Subset(want)) => want.iter().all(|(k, v)| context.get(k) == Some(v)),
    }
}

/// Whether a grant with constraint `child` is at least as strict as its parent's (a grantee
/// with CreateGrant may only hand on what it holds).
pub fn at_least_as_strict(
    parent: Option<&GrantConstraint>,
    child: Option<&GrantConstraint>,
) -> bool {
    let includes = |big: &BTreeMap<String, String>, small: &BTreeMap<String, String>| {
        small.iter().all(|(k, v)| big.get(k) == Some(v))
    };
    match (parent, child) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(GrantConstraint::Equals(p)), Some(GrantConstraint::Equals(c))) => p == c,
        (Some(GrantConstraint::Equals(_)), Some(GrantConstraint::Subset(_))) => false,
        (
            Some(GrantConstraint::Subset(p)),
            Some(GrantConstraint::Subset(c) | GrantConstraint::Equals(c)),
        ) => includes(c, p),
    }
}

/// The form principals are compared in: a role ARN by account and role name (its path does not
/// matter, and an assumed-role session acts for its role), anything else exactly.
fn principal_key(arn: &str) -> String {
    let mut parts = arn.splitn(6, ':');
    if let (Some("arn"), Some(_), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) && let Some(path) = resource.strip_prefix("role/")
        && let Some(name) = path.rsplit('/').next()
    {
        return format!("role|{account}|{name}");
    }
    arn.to_owned()
}

/// The keys under which grants for `p` are filed: its own ARN and, for a role session, its role.
fn caller_keys(p: &Principal) -> Vec<String> {
    let mut keys = vec![principal_key(&p.arn)];
    if p.kind == PrincipalKind::AssumedRole
        && let Some((_, rest)) = p.arn.split_once(":assumed-role/")
        && let Some(role) = rest.split('/').next()
    {
        keys.push(format!("role|{}|{role}", p.account_id));
    }
    keys
}

/// Whether the principal named `given` (a grantee or retiring principal) is the caller.
pub fn is_caller(given: &str, p: &Principal) -> bool {
    caller_keys(p).contains(&principal_key(given))
}

/// What AWS accepts as a grantee or retiring principal: an IAM account, user or role ARN, an STS
/// assumed-role or federated-user ARN, or an AWS service principal.
pub fn valid_principal(p: &str) -> bool {
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    if let [arn, partition, service, region, account, resource] = parts.as_slice() {
        if *arn != "arn" || partition.is_empty() || !region.is_empty() {
            return false;
        }
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let named = |prefix: &str| {
            resource
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
        };
        return account_ok
            && match *service {
                "iam" => *resource == "root" || named("user/") || named("role/"),
                "sts" => {
                    resource
                        .strip_prefix("assumed-role/")
                        .is_some_and(|r| r.split('/').filter(|s| !s.is_empty()).count() == 2)
                        || named("federated-user/")
                }
                _ => false,
            };
    }
    // Service principals: `rds.us-east-1.amazonaws.com`, `logs.amazonaws.com`, …
    let Some(host) = p
        .strip_suffix(".amazonaws.com")
        .or_else(|| p.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn invalid_principal(p: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidArnException",
        format!("ARN does not refer to a valid principal: {p}"),
    )
}

pub(crate) fn invalid_grant_token() -> AwsError {
    AwsError::new(
        400,
        "InvalidGrantTokenException",
        "The request was rejected because the specified grant token is not valid.",
    )
}

fn invalid_grant_id() -> AwsError {
    AwsError::new(
        400,
        "InvalidGrantIdException",
        "The request was rejected because the specified GrantId is not valid.",
    )
}

fn grant_not_found(id: &str) -> AwsError {
    errors::not_found(format!("Grant ID {id} not found"))
}

fn invalid_marker() -> AwsError {
    AwsError::new(
        400,
        "InvalidMarkerException",
        "The request was rejected because the marker that specifies where pagination should next begin is not valid.",
    )
}

fn is_grant_id(s: &str) -> bool {
    s.len() == 2 * GRANT_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The parts of a grant token.
#[derive(Clone, PartialEq, Eq)]
struct TokenParts {
    key_id: PackedKeyId,
    grant_id: String,
}

fn make_token(grant: &GrantRecord) -> Result<String, AwsError> {
    let key_id = PackedKeyId::parse(&grant.key_id).ok_or_else(errors::internal)?;
    let id = hex::decode(&grant.id).map_err(|_| errors::internal())?;
    let secret = hex::decode(&grant.token_secret).map_err(|_| errors::internal())?;
    let nonce = citadel_crypto::random_array::<NONCE_LEN>().map_err(|e| errors::crypto(&e))?;
    let mut token = Vec::with_capacity(TOKEN_LEN);
    token.push(key_id.kind);
    token.extend_from_slice(&key_id.bytes);
    token.extend_from_slice(&id);
    token.extend_from_slice(nonce.as_slice());
    let tag = citadel_crypto::hmac_sha256(&secret, &token);
    token.extend_from_slice(&tag);
    Ok(URL_SAFE_NO_PAD.encode(token))
}

/// The key and grant a well-formed token names (not yet verified against the grant's secret).
fn parse_token(token: &str) -> Option<(TokenParts, Vec<u8>)> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() != TOKEN_LEN {
        return None;
    }
    let key_id = PackedKeyId::from_parts(*raw.first()?, raw.get(1..17)?)?;
    let grant_id = hex::encode(raw.get(17..17 + GRANT_ID_LEN)?);
    Some((TokenParts { key_id, grant_id }, raw))
}

/// Whether `raw` (a parsed token) carries a valid tag for `grant`.
fn token_verifies(grant: &GrantRecord, raw: &[u8]) -> bool {
    let (Some(signed), Some(tag)) = (raw.get(..SIGNED_LEN), raw.get(SIGNED_LEN..)) else {
        return false;
    };
    let Ok(secret) = hex::decode(&grant.token_secret) else {
        return false;
    };
    citadel_crypto::hmac_sha256_verify(&secret, signed, tag)
}

/// A key's grants, by id and by grantee.
#[derive(Default, Clone)]
pub struct Grants {
    by_id: BTreeMap<String, Arc<GrantRecord>>,
    by_grantee: HashMap<String, Vec<Arc<GrantRecord>>>,
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("count", &self.by_id.len())
            .finish()
    }
}

impl Grants {
    pub fn new(records: Vec<GrantRecord>) -> Self {
        let mut g = Grants::default();
        for r in records {
            let r = Arc::new(r);
            g.by_grantee
                .entry(principal_key(&r.grantee))
                .or_default()
                .push(r.clone());
            g.by_id.insert(r.id.clone(), r);
        }
        g
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<GrantRecord>> {
        self.by_id.get(id)
    }

    /// Every grant, by grant id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<GrantRecord>> {
        self.by_id.values()
    }

    /// The grants whose grantee is the caller.
    pub fn for_caller<'a>(&'a self, p: &Principal) -> impl Iterator<Item = &'a Arc<GrantRecord>> {
        caller_keys(p)
            .into_iter()
            .filter_map(|k| self.by_grantee.get(&k))
            .flatten()
    }

    /// Whether a grant lets the caller perform `op` (a grant operation name) with the request's
    /// encryption context. CreateGrant and RetireGrant have their own rules and never pass here.
    pub fn allows(
        &self,
        p: &Principal,
        op: &str,
        context: Option<&BTreeMap<String, String>>,
    ) -> bool {
        if self.is_empty() || matches!(op, "CreateGrant" | "RetireGrant") {
            return false;
        }
        self.for_caller(p).any(|g| {
            g.operations.iter().any(|o| o == op)
                && (ignores_constraints(op) || constraint_matches(g.constraints.as_ref(), context))
        })
    }
}

fn constraint_of(c: Option<&kms::GrantConstraints>) -> Result<Option<GrantConstraint>, AwsError> {
    let Some(c) = c else { return Ok(None) };
    match (&c.encryption_context_equals, &c.encryption_context_subset) {
        (Some(_), Some(_)) => Err(AwsError::validation(
            "EncryptionContextEquals and EncryptionContextSubset cannot both be specified in a grant constraint.",
        )),
        (Some(e), None) => Ok(Some(GrantConstraint::Equals(e.clone()))),
        (None, Some(s)) => Ok(Some(GrantConstraint::Subset(s.clone()))),
        (None, None) => Ok(None),
    }
}

fn constraints_out(c: Option<&GrantConstraint>) -> Option<kms::GrantConstraints> {
    c.map(|c| match c {
        GrantConstraint::Equals(m) => kms::GrantConstraints {
            encryption_context_equals: Some(m.clone()),
            encryption_context_subset: None,
        },
        GrantConstraint::Subset(m) => kms::GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(m.clone()),
        },
    })
}

fn list_entry(g: &GrantRecord, key_arn: &str) -> kms::GrantListEntry {
    kms::GrantListEntry {
        key_id: Some(key_arn.to_owned()),
        grant_id: Some(g.id.clone()),
        name: g.name.clone(),
        creation_date: Some(Timestamp::from_epoch_millis(g.created_ms)),
        grantee_principal: Some(g.grantee.clone()),
        retiring_principal: g.retiring.clone(),
        issuing_account: Some(format!("arn:aws:iam::{}:root", g.issuing_account)),
        operations: Some(g.operations.clone()),
        constraints: constraints_out(g.constraints.as_ref()),
    }
}

/// Pagination limit of the grant lists: 50 by default, at most 100.
fn list_limit(limit: Option<i32>) -> usize {
    usize::try_from(limit.unwrap_or(50))
        .unwrap_or(50)
        .clamp(1, 100)
}

/// A new grant's parameters, compared for `Name` idempotency.
fn same_parameters(g: &GrantRecord, new: &GrantRecord) -> bool {
    let ops = |r: &GrantRecord| r.operations.iter().cloned().collect::<BTreeSet<_>>();
    g.name == new.name
        && g.grantee == new.grantee
        && g.retiring == new.retiring
        && ops(g) == ops(new)
        && g.constraints == new.constraints
}

impl Kms {
    /// Every grant token must be well formed and name an existing grant (of this key, or of
    /// another key of the caller's account and region: ReEncrypt passes one list for both).
    pub(crate) async fn check_grant_tokens(
        &self,
        ctx: &RequestContext,
        target: Target<'_>,
        tokens: &[String],
    ) -> Result<(), AwsError> {
        for token in tokens {
            let (parts, raw) = parse_token(token).ok_or_else(invalid_grant_token)?;
            let own = match target {
                Target::Key(k) | Target::Alias { key: k, .. }
                    if PackedKeyId::parse(&k.record.id) == Some(parts.key_id) =>
                {
                    Some(k)
                }
                _ => None,
            };
            let other;
            let key: &LoadedKey = match own {
                Some(k) => k,
                None => {
                    let id = parts.key_id.to_id_string();
                    let path = record::key_path(&ctx.principal.account_id, &ctx.region, &id);
                    other = self.key_at(&path).await?.ok_or_else(invalid_grant_token)?;
                    &other
                }
            };
            let grant = key
                .grants
                .get(&parts.grant_id)
                .ok_or_else(invalid_grant_token)?;
            if !token_verifies(grant, &raw) {
                return Err(invalid_grant_token());
            }
        }
        Ok(())
    }

    /// Writes a grant change (a put or a delete of one grant record) with a compare-and-swap on
    /// the key, retried by [`Kms::update_key`].
    fn grant_change<T>(current: &LoadedKey, op: Op, out: T) -> Change<T> {
        let mut rec = current.record.clone();
        rec.grant_generation = rec.grant_generation.wrapping_add(1);
        Change {
            record: rec,
            extra: vec![op],
            out,
        }
    }

    pub(crate) async fn create_grant(
        &self,
        ctx: &RequestContext,
        req: kms::CreateGrantRequest,
    ) -> Result<kms::CreateGrantResponse, AwsError> {
        let grantee = req.grantee_principal.clone().unwrap_or_default();
        if !valid_principal(&grantee) {
            return Err(invalid_principal(&grantee));
        }
        if let Some(r) = &req.retiring_principal
            && !valid_principal(r)
        {
            return Err(invalid_principal(r));
        }
        let mut operations: Vec<String> = Vec::new();
        for op in req.operations.iter().flatten() {
            if !operations.contains(op) {
                operations.push(op.clone());
            }
        }
        if operations.is_empty() {
            return Err(AwsError::validation(
                "Grants must contain at least one operation.",
            ));
        }
        if operations.iter().all(|o| o == "CreateGrant") {
            return Err(AwsError::validation(
                "Grants must not contain only the CreateGrant operation.",
            ));
        }
        let constraint = constraint_of(req.constraints.as_ref())?;
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let key = &r.key;
        let rec = &key.record;

        let mut conditions = RequestConditions::new()
            .set("kms:GranteePrincipal", grantee.clone())
            .set("kms:GrantIsForAWSResource", "false")
            .request_alias(r.alias.as_deref())
            .grant_tokens(req.grant_tokens.as_ref());
        conditions = conditions.set_all("kms:GrantOperations", operations.clone());
        if let Some(rp) = &req.retiring_principal {
            conditions = conditions.set("kms:RetiringPrincipal", rp.clone());
        }
        match &constraint {
            Some(GrantConstraint::Equals(_)) => {
                conditions = conditions.set("kms:GrantConstraintType", "EncryptionContextEquals");
            }
            Some(GrantConstraint::Subset(_)) => {
                conditions = conditions.set("kms:GrantConstraintType", "EncryptionContextSubset");
            }
            None => {}
        }
        // A grantee holding CreateGrant may create grants for a subset of its operations, with
        // constraints at least as strict as its own.
        let grant_allows = key.grants.for_caller(&ctx.principal).any(|g| {
            g.operations.iter().any(|o| o == "CreateGrant")
                && operations.iter().all(|o| g.operations.contains(o))
                && at_least_as_strict(g.constraints.as_ref(), constraint.as_ref())
        });
        self.authorize_with_grant(
            ctx,
            "kms:CreateGrant",
            Target::Key(key),
            conditions,
            grant_allows,
        )
        .await?;
        state::check(rec.state, KeyOp::CreateGrant, &rec.arn())?;

        let valid = operations_for(&rec.key_spec, &rec.key_usage);
        let invalid: Vec<&str> = operations
            .iter()
            .map(String::as_str)
            .filter(|o| !valid.contains(o))
            .collect();
        if !invalid.is_empty() {
            return Err(AwsError::validation(format!(
                "Grant operations [{}] are not valid for a KMS key with KeySpec {} and KeyUsage {}.",
                invalid.join(", "),
                rec.key_spec,
                rec.key_usage
            )));
        }
        if constraint.is_some() && rec.key_spec != specs::SYMMETRIC_DEFAULT {
            return Err(AwsError::validation(
                "Encryption context grant constraints are supported only for symmetric encryption KMS keys.",
            ));
        }
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }

        let id = hex::encode(
            citadel_crypto::random_array::<GRANT_ID_LEN>()
                .map_err(|e| errors::crypto(&e))?
                .as_slice(),
        );
        let secret = hex::encode(
            citadel_crypto::random_array::<32>()
                .map_err(|e| errors::crypto(&e))?
                .as_slice(),
        );
        let new = GrantRecord {
            id,
            key_id: rec.id.clone(),
            name: req.name.clone(),
            created_ms: self.now_ms(),
            grantee,
            retiring: req.retiring_principal.clone(),
            operations,
            constraints: constraint,
            issuing_account: ctx.principal.account_id.clone(),
            token_secret: secret,
        };
        let limit = self.grant_limit;
        let grant = self
            .update_key(r.key.clone(), |current| {
                if new.name.is_some()
                    && let Some(existing) = current.grants.iter().find(|g| same_parameters(g, &new))
                {
                    // Retrying with the same name and parameters: the same grant.
                    return Ok(Change {
                        record: current.record.clone(),
                        extra: Vec::new(),
                        out: GrantRecord::clone(existing),
                    });
                }
                if current.grants.len() >= limit {
                    return Err(errors::limit_exceeded(format!(
                        "The request was rejected because a quota was exceeded: a KMS key can have at most {limit} grants, and {} has {}.",
                        current.record.arn(),
                        current.grants.len()
                    )));
                }
                let put = citadel_store::put_json_op(
                    record::grant_path(
                        &current.record.account,
                        &current.record.region,
                        &current.record.id,
                        &new.id,
                    ),
                    &new,
                    Expect::Absent,
                )
                .map_err(errors::store)?;
                Ok(Self::grant_change(current, put, new.clone()))
            })
            .await?;
        tracing::info!(key = %rec.arn(), grant_id = %grant.id, "KMS grant created");
        Ok(kms::CreateGrantResponse {
            grant_token: Some(make_token(&grant)?),
            grant_id: Some(grant.id),
        })
    }

    pub(crate) async fn list_grants(
        &self,
        ctx: &RequestContext,
        req: kms::ListGrantsRequest,
    ) -> Result<kms::ListGrantsResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        let mut conditions = RequestConditions::new().request_alias(r.alias.as_deref());
        if let Some(g) = &req.grantee_principal {
            conditions = conditions.set("kms:GranteePrincipal", g.clone());
        }
        self.authorize(ctx, "kms:ListGrants", Target::Key(&r.key), conditions)
            .await?;
        state::check(rec.state, KeyOp::ListGrants, &rec.arn())?;
        if let Some(m) = &req.marker
            && !is_grant_id(m)
        {
            return Err(invalid_marker());
        }
        if let Some(g) = &req.grant_id
            && !is_grant_id(g)
        {
            return Err(invalid_grant_id());
        }
        let arn = rec.arn();
        let all: Vec<kms::GrantListEntry> = r
            .key
            .grants
            .iter()
            .filter(|g| req.grant_id.as_ref().is_none_or(|id| &g.id == id))
            .filter(|g| {
                req.grantee_principal
                    .as_ref()
                    .is_none_or(|p| &g.grantee == p)
            })
            .map(|g| list_entry(g, &arn))
            .collect();
        let (grants, next) = page(&all, list_limit(req.limit), req.marker.as_deref(), |g| {
            g.grant_id.as_deref().unwrap_or_default()
        });
        Ok(kms::ListGrantsResponse {
            grants: Some(grants),
            truncated: Some(next.is_some()),
            next_marker: next,
        })
    }

    pub(crate) async fn list_retirable_grants(
        &self,
        ctx: &RequestContext,
        req: kms::ListRetirableGrantsRequest,
    ) -> Result<kms::ListGrantsResponse, AwsError> {
        let retiring = req.retiring_principal.clone().unwrap_or_default();
        self.authorize(
            ctx,
            "kms:ListRetirableGrants",
            Target::Account,
            RequestConditions::new(),
        )
        .await?;
        if !valid_principal(&retiring) {
            return Err(invalid_principal(&retiring));
        }
        let prefix = record::grants_prefix(&ctx.principal.account_id, &ctx.region);
        // The marker is `<key-id>/<grant-id>` of the last grant returned.
        let mut after = match &req.marker {
            Some(m) => {
                let ok = m
                    .split_once('/')
                    .is_some_and(|(k, g)| crate::names::is_key_id(k) && is_grant_id(g));
                if !ok {
                    return Err(invalid_marker());
                }
                Some(format!("{prefix}{m}"))
            }
            None => None,
        };
        let limit = list_limit(req.limit);
        let mut found: Vec<(String, kms::GrantListEntry)> = Vec::new();
        const BATCH: usize = 1000;
        'scan: loop {
            let rows = self
                .store
                .list(&prefix, after.as_deref(), BATCH)
                .await
                .map_err(errors::store)?;
            let exhausted = rows.len() < BATCH;
            for (path, entry) in &rows {
                after = Some(path.clone());
                let grant: GrantRecord = match serde_json::from_slice(&entry.value) {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::error!(key = %path, error = %e, "corrupt KMS grant record");
                        return Err(errors::internal());
                    }
                };
                if grant
                    .retiring
                    .as_deref()
                    .is_some_and(|r| principal_key(r) == principal_key(&retiring))
                {
                    let arn =
                        record::key_arn(&ctx.region, &ctx.principal.account_id, &grant.key_id);
                    let marker = path.strip_prefix(&prefix).unwrap_or_default().to_owned();
                    found.push((marker, list_entry(&grant, &arn)));
                    if found.len() > limit {
                        break 'scan;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let truncated = found.len() > limit;
        found.truncate(limit);
        Ok(kms::ListGrantsResponse {
            next_marker: if truncated {
                found.last().map(|(m, _)| m.clone())
            } else {
                None
            },
            grants: Some(found.into_iter().map(|(_, g)| g).collect()),
            truncated: Some(truncated),
        })
    }

    /// Removes grant `grant_id` from the key (RetireGrant and RevokeGrant).
    async fn delete_grant(&self, key: Arc<LoadedKey>, grant_id: &str) -> Result<(), AwsError> {
        self.update_key(key, |current| {
            if current.grants.get(grant_id).is_none() {
                return Err(grant_not_found(grant_id));
            }
            let del = Op::delete(
                record::grant_path(
                    &current.record.account,
                    &current.record.region,
                    &current.record.id,
                    grant_id,
                ),
                Expect::Any,
            );
            Ok(Self::grant_change(current, del, ()))
        })
        .await
    }

    pub(crate) async fn retire_grant(
        &self,
        ctx: &RequestContext,
        req: kms::RetireGrantRequest,
    ) -> Result<Empty, AwsError> {
        let (key, grant_id) = match (&req.grant_token, &req.key_id, &req.grant_id) {
            (Some(token), _, _) => {
                let (parts, raw) = parse_token(token).ok_or_else(invalid_grant_token)?;
                let id = parts.key_id.to_id_string();
                let path = record::key_path(&ctx.principal.account_id, &ctx.region, &id);
                let key = self.key_at(&path).await?.ok_or_else(invalid_grant_token)?;
                let grant = key
                    .grants
                    .get(&parts.grant_id)
                    .ok_or_else(invalid_grant_token)?;
                if !token_verifies(grant, &raw) {
                    return Err(invalid_grant_token());
                }
                (key, parts.grant_id)
            }
            (None, Some(key_id), Some(grant_id)) => {
                let r = self.resolve(ctx, key_id).await?;
                if !is_grant_id(grant_id) {
                    return Err(invalid_grant_id());
                }
                (r.key, grant_id.clone())
            }
            _ => {
                return Err(AwsError::validation(
                    "Either a grant token or both a key ID and a grant ID must be specified.",
                ));
            }
        };
        let grant = key
            .grants
            .get(&grant_id)
            .cloned()
            .ok_or_else(|| grant_not_found(&grant_id))?;
        // The retiring principal, and the grantee when the grant includes RetireGrant, may
        // retire the grant; others need kms:RetireGrant from the key's policies.
        let by_grant = grant
            .retiring
            .as_deref()
            .is_some_and(|r| is_caller(r, &ctx.principal))
            || (is_caller(&grant.grantee, &ctx.principal)
                && grant.operations.iter().any(|o| o == "RetireGrant"));
        self.authorize_with_grant(
            ctx,
            "kms:RetireGrant",
            Target::Key(&key),
            RequestConditions::new(),
            by_grant,
        )
        .await?;
        state::check(key.record.state, KeyOp::RetireGrant, &key.record.arn())?;
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let arn = key.record.arn();
        self.delete_grant(key, &grant_id).await?;
        tracing::info!(key = %arn, %grant_id, "KMS grant retired");
        Ok(Empty {})
    }

    pub(crate) async fn revoke_grant(
        &self,
        ctx: &RequestContext,
        req: kms::RevokeGrantRequest,
    ) -> Result<Empty, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize_with_grant(
            ctx,
            "kms:RevokeGrant",
            Target::Key(&r.key),
            RequestConditions::new().request_alias(r.alias.as_deref()),
            false,
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, KeyOp::RevokeGrant, &rec.arn())?;
        let grant_id = req.grant_id.clone().unwrap_or_default();
        if !is_grant_id(&grant_id) {
            return Err(invalid_grant_id());
        }
        if r.key.grants.get(&grant_id).is_none() {
            return Err(grant_not_found(&grant_id));
        }
        if req.dry_run == Some(true) {
            return Err(errors::dry_run());
        }
        let arn = rec.arn();
        self.delete_grant(r.key, &grant_id).await?;
        tracing::info!(key = %arn, %grant_id, "KMS grant revoked");
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn constraints_match_as_aws_defines_them() {
        let eq = GrantConstraint::Equals(ctx(&[("a", "1")]));
        assert!(constraint_matches(Some(&eq), Some(&ctx(&[("a", "1")]))));
        assert!(!constraint_matches(
            Some(&eq),
            Some(&ctx(&[("a", "1"), ("b", "2")]))
        ));
        assert!(!constraint_matches(Some(&eq), Some(&ctx(&[("a", "2")]))));
        assert!(!constraint_matches(Some(&eq), Some(&ctx(&[("A", "1")]))));
        assert!(!constraint_matches(Some(&eq), None));
        let sub = GrantConstraint::Subset(ctx(&[("a", "1")]));
        assert!(constraint_matches(
            Some(&sub),
            Some(&ctx(&[("a", "1"), ("b", "2")]))
        ));
        assert!(constraint_matches(Some(&sub), Some(&ctx(&[("a", "1")]))));
        assert!(!constraint_matches(Some(&sub), Some(&ctx(&[("b", "2")]))));
        assert!(!constraint_matches(Some(&sub), None));
        assert!(constraint_matches(None, None));
        assert!(constraint_matches(None, Some(&ctx(&[("x", "y")]))));
        // An empty Subset constraint accepts any context; an empty Equals only none.
        let empty_eq = GrantConstraint::Equals(BTreeMap::new());
        assert!(constraint_matches(Some(&empty_eq), None));
        assert!(!constraint_matches(
            Some(&empty_eq),
            Some(&ctx(&[("x", "y")]))
        ));
    }

    #[test]
    fn delegated_grants_are_at_least_as_strict() {
        let eq = GrantConstraint::Equals(ctx(&[("a", "1")]));
        let sub = GrantConstraint::Subset(ctx(&[("a", "1")]));
        let wider_sub = GrantConstraint::Subset(ctx(&[("a", "1"), ("b", "2")]));
        assert!(at_least_as_strict(None, None));
        assert!(at_least_as_strict(None, Some(&eq)));
        assert!(!at_least_as_strict(Some(&eq), None));
        assert!(at_least_as_strict(Some(&eq), Some(&eq)));
        assert!(!at_least_as_strict(Some(&eq), Some(&sub)));
        assert!(at_least_as_strict(Some(&sub), Some(&wider_sub)));
        assert!(at_least_as_strict(Some(&sub), Some(&eq)));
        assert!(!at_least_as_strict(Some(&wider_sub), Some(&sub)));
    }

    #[test]
    fn operations_depend_on_the_key_spec() {
        let sym = operations_for("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
        for op in [
            "Decrypt",
            "Encrypt",
            "GenerateDataKeyPair",
            "CreateGrant",
            "DescribeKey",
        ] {
            assert!(sym.contains(&op), "{op}");
        }
        for op in [
            "Sign",
            "Verify",
            "GetPublicKey",
            "GenerateMac",
            "VerifyMac",
            "DeriveSharedSecret",
        ] {
            assert!(!sym.contains(&op), "{op}");
        }
        assert!(operations_for("HMAC_256", "GENERATE_VERIFY_MAC").contains(&"GenerateMac"));
        assert!(!operations_for("HMAC_256", "GENERATE_VERIFY_MAC").contains(&"Decrypt"));
        assert!(operations_for("RSA_2048", "SIGN_VERIFY").contains(&"Sign"));
        assert!(operations_for("RSA_2048", "ENCRYPT_DECRYPT").contains(&"Decrypt"));
        assert!(!operations_for("RSA_2048", "ENCRYPT_DECRYPT").contains(&"GenerateDataKey"));
    }

    #[test]
    fn principals_are_validated_like_aws() {
        for ok in [
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:role/path/app",
            "arn:aws:sts::111122223333:assumed-role/app/session",
            "rds.us-east-1.amazonaws.com",
            "logs.amazonaws.com",
        ] {
            assert!(valid_principal(ok), "{ok}");
        }
        for bad in [
            "",
            "alice",
            "111122223333",
            "arn:aws:iam::1111:root",
            "arn:aws:iam::111122223333:group/admins",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:kms:us-east-1:111122223333:key/x",
            "arn:aws:sts::111122223333:assumed-role/app",
            "Rds.amazonaws.com",
            ".amazonaws.com",
        ] {
            assert!(!valid_principal(bad), "{bad}");
        }
    }

    #[test]
    fn sessions_act_for_their_role() {
        let session = Principal {
            account_id: "111122223333".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/app/s1".into(),
            user_id: "AROAEXAMPLE:s1".into(),
            access_key_id: "ASIA".into(),
            kind: PrincipalKind::AssumedRole,
        };
        assert!(is_caller("arn:aws:iam::111122223333:role/app", &session));
        assert!(is_caller(
            "arn:aws:iam::111122223333:role/team/app",
            &session
        ));
        assert!(is_caller(
            "arn:aws:sts::111122223333:assumed-role/app/s1",
            &session
        ));
        assert!(!is_caller("arn:aws:iam::111122223333:role/other", &session));
        assert!(!is_caller("arn:aws:iam::444455556666:role/app", &session));
        let root = Principal::root("111122223333", "AKIA");
        assert!(is_caller("arn:aws:iam::111122223333:root", &root));
        assert!(!is_caller("arn:aws:iam::111122223333:user/root", &root));
    }

    #[test]
    fn tokens_are_authenticated_and_never_debug_printed() {
        let grant = GrantRecord {
            id: "ab".repeat(32),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            name: None,
            created_ms: 0,
            grantee: "arn:aws:iam::111122223333:user/bob".into(),
            retiring: None,
            operations: vec!["Decrypt".into()],
            constraints: None,
            issuing_account: "111122223333".into(),
            token_secret: "cd".repeat(32),
        };
        let t1 = make_token(&grant).unwrap();
        let t2 = make_token(&grant).unwrap();
        assert_ne!(t1, t2, "every CreateGrant returns a fresh token");
        for t in [&t1, &t2] {
            let (parts, raw) = parse_token(t).unwrap();
            assert_eq!(parts.grant_id, grant.id);
            assert!(token_verifies(&grant, &raw));
        }
        let other = GrantRecord {
            token_secret: "ef".repeat(32),
            ..grant.clone()
        };
        let (_, raw) = parse_token(&t1).unwrap();
        assert!(!token_verifies(&other, &raw));
        assert!(parse_token("not a token").is_none());
        assert!(parse_token(&t1[..t1.len() - 2]).is_none());
        assert!(!format!("{grant:?}").contains(&grant.token_secret));
    }
}
