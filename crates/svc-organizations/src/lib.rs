//! AWS Organizations, the subset an operator needs to work with several accounts: the
//! deployment's default account is the management account of one organization, and
//! `CreateAccount` adds member accounts to it.
//!
//! As on AWS, every new account gets the role `OrganizationAccountAccessRole` (or the
//! `RoleName` the request names) trusting the management account's root, with full
//! administrator permissions: `sts:AssumeRole` into it is how an operator works in the account.
//! Account creation completes synchronously (the status is `SUCCEEDED` at once).
//!
//! Only principals of the management account may call these operations. The dispatcher has
//! already authorized `organizations:<Operation>` on `*` against the caller's identity
//! policies; this handler refuses callers of any other account (a member account's
//! administrator must not see or create accounts).

use std::sync::Arc;

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, RequestContext, ServiceHandler,
    ServiceSpec, Support,
};
use citadel_iam::IdentityStore;
use citadel_iam::identity::{EntityKind, NewRole};
use citadel_model::{SensitiveString, Timestamp, organizations as org};
use citadel_store::{Expect, SealedStore, StoreError, put_json_op};
use serde::{Deserialize, Serialize};

/// The role every new account gets unless the request names another.
pub const DEFAULT_ROLE_NAME: &str = "OrganizationAccountAccessRole";
/// The inline policy on that role: AWS attaches `AdministratorAccess`; this is its document.
const ADMIN_POLICY_NAME: &str = "AdministratorAccess";
const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

const ORG_KEY: &str = "organizations/organization";
const ACCOUNT_PREFIX: &str = "organizations/account/";
const EMAIL_PREFIX: &str = "organizations/email/";
const STATUS_PREFIX: &str = "organizations/create-status/";
/// Attempts at drawing an unused account id before giving up.
const ID_ATTEMPTS: usize = 16;
const MAX_RESULTS: usize = 20;

const IMPLEMENTED: &[(&str, Support)] = &[
    (
        "CreateAccount",
        Support::Partial("completes synchronously; tags are not stored"),
    ),
    ("DescribeAccount", Support::Full),
    ("DescribeCreateAccountStatus", Support::Full),
    (
        "DescribeOrganization",
        Support::Partial("no policy types are available (SCPs are not implemented)"),
    ),
    ("ListAccounts", Support::Full),
];

/// Why an Organizations request could not be completed.
#[derive(Debug, thiserror::Error)]
enum OrgError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("randomness: {0}")]
    Random(String),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<OrgError> for AwsError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Store(StoreError::Sealed) => AwsError::sealed(),
            OrgError::Store(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "Organizations storage is unavailable");
                AwsError::storage_unavailable()
            }
            e => {
                tracing::error!(error = %e, "Organizations could not complete the request");
                AwsError::internal()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrganizationRecord {
    id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountRecord {
    id: String,
    name: String,
    email: String,
    joined: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatusRecord {
    id: String,
    account_name: String,
    account_id: String,
    state: String,
    requested: i64,
    completed: Option<i64>,
    failure_reason: Option<String>,
}

pub struct Organizations {
    store: Arc<SealedStore>,
    identities: Arc<IdentityStore>,
    management_account: String,
}

impl std::fmt::Debug for Organizations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Organizations")
            .field("management_account", &self.management_account)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn random(n: usize) -> Result<Vec<u8>, OrgError> {
    citadel_crypto::random_bytes(n)
        .map(|b| b.to_vec())
        .map_err(|e| OrgError::Random(e.to_string()))
}

/// 12 random decimal digits (rejection sampling keeps them uniform).
fn random_account_id() -> Result<String, OrgError> {
    let mut id = String::with_capacity(12);
    while id.len() < 12 {
        for b in random(16)? {
            if b < 250 && id.len() < 12 {
                id.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(id)
}

/// `prefix` followed by `n` random characters of `[0-9a-z]`.
fn random_lower(prefix: &str, n: usize) -> Result<String, OrgError> {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = prefix.to_owned();
    let target = prefix.len() + n;
    while out.len() < target {
        for b in random(2 * n)? {
            // 252 = 7 × 36: uniform.
            if b < 252 && out.len() < target {
                let c = ALPHABET.get(usize::from(b % 36)).copied().unwrap_or(b'0');
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

fn json_output<T: Serialize>(value: &T) -> Result<OperationOutput, AwsError> {
    serde_json::to_value(value)
        .map(OperationOutput::Json)
        .map_err(|e| AwsError::from(OrgError::Json(e)))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    serde_json::from_slice(body)
        .map_err(|_| AwsError::serialization("The request body could not be parsed."))
}

fn access_denied() -> AwsError {
    AwsError::new(
        400,
        "AccessDeniedException",
        "You don't have permissions to access this resource.",
    )
}

fn email_key(email: &str) -> String {
    format!("{EMAIL_PREFIX}{}", hex::encode(email.to_lowercase()))
}

impl Organizations {
    /// Organizations over `store`, whose management account is `management_account` (the
    /// deployment's default account).
    pub fn new(
        store: Arc<SealedStore>,
        identities: Arc<IdentityStore>,
        management_account: impl Into<String>,
    ) -> Self {
        Organizations {
            store,
            identities,
            management_account: management_account.into(),
        }
    }

    /// The organization, created on first use.
    async fn organization(&self) -> Result<OrganizationRecord, OrgError> {
        loop {
            if let Some(o) = self.store.get_json::<OrganizationRecord>(ORG_KEY).await? {
                return Ok(o);
            }
            let o = OrganizationRecord {
                id: random_lower("o-", 10)?,
            };
            match self.store.put_json(ORG_KEY, &o, Expect::Absent).await {
                Ok(_) => return Ok(o),
                // Someone else created it first: read theirs.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn account_arn(&self, org: &OrganizationRecord, id: &str) -> String {
        format!(
            "arn:aws:organizations::{}:account/{}/{id}",
            self.management_account, org.id
        )
    }

    fn management_record(&self) -> AccountRecord {
        AccountRecord {
            id: self.management_account.clone(),
            name: "management".to_owned(),
            email: String::new(),
            joined: 0,
        }
    }

    fn account_shape(&self, org: &OrganizationRecord, a: &AccountRecord) -> org::Account {
        let management = a.id == self.management_account;
        org::Account {
            id: Some(a.id.clone()),
            arn: Some(self.account_arn(org, &a.id)),
            email: (!a.email.is_empty()).then(|| SensitiveString::new(a.email.clone())),
            name: Some(SensitiveString::new(a.name.clone())),
            status: Some("ACTIVE".to_owned()),
            state: Some("ACTIVE".to_owned()),
            joined_method: Some(if management { "INVITED" } else { "CREATED" }.to_owned()),
            joined_timestamp: (a.joined > 0).then(|| Timestamp::from_epoch_seconds(a.joined)),
            ..Default::default()
        }
    }

    fn status_shape(s: &StatusRecord) -> org::CreateAccountStatus {
        org::CreateAccountStatus {
            id: Some(s.id.clone()),
            account_name: Some(SensitiveString::new(s.account_name.clone())),
            state: Some(s.state.clone()),
            requested_timestamp: Some(Timestamp::from_epoch_seconds(s.requested)),
            completed_timestamp: s.completed.map(Timestamp::from_epoch_seconds),
            account_id: (s.state == "SUCCEEDED").then(|| s.account_id.clone()),
            failure_reason: s.failure_reason.clone(),
            ..Default::default()
        }
    }

    async fn create_account(&self, body: &[u8]) -> Result<OperationOutput, AwsError> {
        let req: org::CreateAccountRequest = parse(body)?;
        req.validate()?;
        let email = req
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default();
        let name = req
            .account_name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let role_name = req
            .role_name
            .clone()
            .unwrap_or_else(|| DEFAULT_ROLE_NAME.to_owned());
        self.organization().await?;
        let now = now_secs();
        let request_id = random_lower("car-", 32).map_err(AwsError::from)?;
        let mut status = StatusRecord {
            id: request_id.clone(),
            account_name: name.clone(),
            account_id: String::new(),
            state: "IN_PROGRESS".to_owned(),
            requested: now,
            completed: None,
            failure_reason: None,
        };
        let status_key = format!("{STATUS_PREFIX}{request_id}");

        // Reserve an unused id and the email in one write.
        let mut attempts = 0;
        let account_id = loop {
            attempts += 1;
            let id = random_account_id()?;
            if id == self.management_account
                || self
                    .store
                    .get(&format!("{ACCOUNT_PREFIX}{id}"))
                    .await
                    .map_err(OrgError::from)?
                    .is_some()
            {
                if attempts >= ID_ATTEMPTS {
                    return Err(OrgError::Random("no unused account id found".into()).into());
                }
                continue;
            }
            if self
                .store
                .get(&email_key(&email))
                .await
                .map_err(OrgError::from)?
                .is_some()
            {
                status.state = "FAILED".to_owned();
                status.completed = Some(now);
                status.failure_reason = Some("EMAIL_ALREADY_EXISTS".to_owned());
                self.store
                    .put_json(&status_key, &status, Expect::Absent)
                    .await
                    .map_err(OrgError::from)?;
                return json_output(&org::CreateAccountResponse {
                    create_account_status: Some(Self::status_shape(&status)),
                });
            }
            status.account_id = id.clone();
            let account = AccountRecord {
                id: id.clone(),
                name: name.clone(),
                email: email.clone(),
                joined: now,
            };
            let ops = vec![
                put_json_op(format!("{ACCOUNT_PREFIX}{id}"), &account, Expect::Absent)
                    .map_err(OrgError::from)?,
                put_json_op(email_key(&email), &id, Expect::Absent).map_err(OrgError::from)?,
                put_json_op(status_key.clone(), &status, Expect::Absent).map_err(OrgError::from)?,
            ];
            match self.store.batch(ops).await {
                Ok(()) => break id,
                Err(StoreError::Conflict { .. }) if attempts < ID_ATTEMPTS => continue,
                Err(e) => return Err(OrgError::from(e).into()),
            }
        };

        // The access role, exactly as AWS creates it.
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
            self.management_account
        );
        let role = NewRole {
            name: role_name.clone(),
            assume_role_policy: trust,
            ..Default::default()
        };
        let created = match self.identities.create_role(&account_id, &role).await {
            Ok(_) => {
                self.identities
                    .put_inline_policy(
                        &account_id,
                        EntityKind::Role,
                        &role_name,
                        ADMIN_POLICY_NAME,
                        ADMIN_POLICY,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        status.completed = Some(now_secs());
        match created {
            Ok(()) => status.state = "SUCCEEDED".to_owned(),
            Err(e) => {
                tracing::error!(error = ?e, account = %account_id, "creating the account's access role failed");
                status.state = "FAILED".to_owned();
                status.failure_reason = Some("INTERNAL_FAILURE".to_owned());
            }
        }
        self.store
            .put_json(&status_key, &status, Expect::Any)
            .await
            .map_err(OrgError::from)?;
        json_output(&org::CreateAccountResponse {
            create_account_status: Some(Self::status_shape(&status)),
        })
    }

    async fn describe_create_account_status(
        &self,
        body: &[u8],
    ) -> Result<OperationOutput, AwsError> {
        let req: org::DescribeCreateAccountStatusRequest = parse(body)?;
        req.validate()?;
        let id = req.create_account_request_id.unwrap_or_default();
        let status: Option<StatusRecord> = self
            .store
            .get_json(&format!("{STATUS_PREFIX}{id}"))
            .await
            .map_err(OrgError::from)?;
        let Some(status) = status else {
            return Err(AwsError::new(
                400,
                "CreateAccountStatusNotFoundException",
                "We can't find an create account request with the CreateAccountRequestId that you specified.",
            ));
        };
        json_output(&org::DescribeCreateAccountStatusResponse {
            create_account_status: Some(Self::status_shape(&status)),
        })
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRecord>, OrgError> {
        if id == self.management_account {
            return Ok(Some(self.management_record()));
        }
        Ok(self
            .store
            .get_json(&format!("{ACCOUNT_PREFIX}{id}"))
            .await?)
    }

    async fn describe_account(&self, body: &[u8]) -> Result<OperationOutput, AwsError> {
        let req: org::DescribeAccountRequest = parse(body)?;
        req.validate()?;
        let id = req.account_id.unwrap_or_default();
        let org = self.organization().await?;
        let Some(account) = self.account(&id).await? else {
            return Err(AwsError::new(
                400,
                "AccountNotFoundException",
                "You specified an account that doesn't exist.",
            ));
        };
        json_output(&org::DescribeAccountResponse {
            account: Some(self.account_shape(&org, &account)),
        })
    }

    async fn list_accounts(&self, body: &[u8]) -> Result<OperationOutput, AwsError> {
        let req: org::ListAccountsRequest = parse(body)?;
        req.validate()?;
        let limit = req
            .max_results
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(MAX_RESULTS)
            .clamp(1, MAX_RESULTS);
        let org = self.organization().await?;
        // The management account comes first (token "" = start), then members in id order; the
        // token is the last account id returned.
        let start = req.next_token.clone();
        let mut accounts = Vec::new();
        if start.is_none() {
            accounts.push(self.management_record());
        }
        let start_after = start.as_ref().map(|t| format!("{ACCOUNT_PREFIX}{t}"));
        let page = self
            .store
            .list(ACCOUNT_PREFIX, start_after.as_deref(), limit + 1)
            .await
            .map_err(OrgError::from)?;
        for (_, record) in page {
            let a: AccountRecord = serde_json::from_slice(&record.value).map_err(OrgError::from)?;
            accounts.push(a);
        }
        let next_token = if accounts.len() > limit {
            accounts.truncate(limit);
            accounts.last().map(|a| a.id.clone())
        } else {
            None
        };
        json_output(&org::ListAccountsResponse {
            accounts: Some(
                accounts
                    .iter()
                    .map(|a| self.account_shape(&org, a))
                    .collect(),
            ),
            next_token,
        })
    }

    async fn describe_organization(&self) -> Result<OperationOutput, AwsError> {
        let org = self.organization().await?;
        json_output(&org::DescribeOrganizationResponse {
            organization: Some(org::Organization {
                id: Some(org.id.clone()),
                arn: Some(format!(
                    "arn:aws:organizations::{}:organization/{}",
                    self.management_account, org.id
                )),
                feature_set: Some("ALL".to_owned()),
                master_account_arn: Some(self.account_arn(&org, &self.management_account)),
                master_account_id: Some(self.management_account.clone()),
                available_policy_types: Some(Vec::new()),
                ..Default::default()
            }),
        })
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Organizations {
    fn spec(&self) -> &'static ServiceSpec {
        &org::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        // The dispatcher authorized the action; only the management account may use it.
        if ctx.principal.account_id != self.management_account {
            return Err(access_denied());
        }
        let OperationInput::Json(body) = input else {
            tracing::error!(
                operation = operation.name,
                "Organizations received a non-JSON input"
            );
            return Err(AwsError::internal());
        };
        match operation.name {
            "CreateAccount" => self.create_account(&body).await,
            "DescribeCreateAccountStatus" => self.describe_create_account_status(&body).await,
            "DescribeAccount" => self.describe_account(&body).await,
            "ListAccounts" => self.list_accounts(&body).await,
            "DescribeOrganization" => self.describe_organization().await,
            _ => Err(AwsError::unsupported_operation(
                org::SPEC.name,
                operation.name,
            )),
        }
    }
}

#[cfg(test)]
mod tests;
