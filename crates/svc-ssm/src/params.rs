//! The parameter operations: PutParameter, GetParameter(s), GetParametersByPath,
//! GetParameterHistory, DeleteParameter(s), Label/UnlabelParameterVersion, DescribeParameters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use citadel_api::{AwsError, RequestContext};
use citadel_model::{SensitiveString, Timestamp, ssm};
use citadel_store::{Expect, Op, StoreError, put_json_op};

use crate::authz::{self, Conditions};
use crate::filters::{self, FilterSet};
use crate::names::{self, Reference, Selector};
use crate::policies;
use crate::record::{
    self, Counts, Due, DueKind, ParamRecord, StoredPolicy, StoredValue, VersionRecord,
};
use crate::reference;
use crate::secure;
use crate::{Ssm, errors};

/// Versions a parameter keeps.
pub const MAX_VERSIONS: usize = 100;
/// Labels one version may carry.
pub const MAX_LABELS_PER_VERSION: usize = 10;
/// Tags one parameter may carry.
pub const MAX_TAGS: usize = 50;
/// Largest value of each tier, in bytes.
pub const STANDARD_MAX_VALUE: usize = 4096;
pub const ADVANCED_MAX_VALUE: usize = 8192;
/// Records a listing may examine before it answers with what it found and a NextToken.
const SCAN_BUDGET: usize = 1000;
/// Attempts at a compare-and-swap write before answering `TooManyUpdates`. Creating or
/// deleting any parameter also updates the account's parameter counts, so concurrent writers of
/// *different* parameters conflict there: they retry after a short random pause
/// ([`conflict_pause`]) instead of failing, and only a parameter that really is being changed by
/// many writers at once gets `TooManyUpdates`.
const WRITE_ATTEMPTS: usize = 12;
/// How long a create or delete keeps retrying while it loses only on the shared counts record
/// (to other parameters' creates and deletes: each round one of them wins, so all get through,
/// however slow the store's commits are).
const COUNTS_CONTENTION_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a lost compare-and-swap write lost to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Someone changed this parameter meanwhile.
    Parameter,
    /// Only the account's counts record changed: another parameter was created or deleted.
    Counts,
}

/// Retries `attempt` while it loses: up to [`WRITE_ATTEMPTS`] times to writers of the same
/// parameter (then `TooManyUpdates`, as AWS), and for up to [`COUNTS_CONTENTION_LIMIT`] to
/// writers of other parameters.
async fn retry_lost<T, F, Fut>(mut attempt: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, Lost>, AwsError>>,
{
    let started = std::time::Instant::now();
    let mut lost_to_writers = 0;
    for round in 0.. {
        match attempt().await? {
            Ok(done) => return Ok(done),
            Err(Lost::Parameter) => lost_to_writers += 1,
            Err(Lost::Counts) => {}
        }
        if lost_to_writers >= WRITE_ATTEMPTS || started.elapsed() >= COUNTS_CONTENTION_LIMIT {
            break;
        }
        conflict_pause(round).await;
    }
    Err(errors::too_many_updates())
}

/// Sleeps a random 0 to 2^attempt ms (at most 64 ms) after a lost compare-and-swap, so that
/// writers that collided do not collide again in lockstep.
pub(crate) async fn conflict_pause(attempt: usize) {
    let cap_ms = 1u64 << attempt.min(6);
    let r = citadel_crypto::random_array::<2>()
        .map(|b| u64::from(u16::from_le_bytes(*b)))
        .unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_micros(r % (cap_ms * 1000))).await;
}

pub const STANDARD: &str = "Standard";
pub const ADVANCED: &str = "Advanced";
pub const INTELLIGENT: &str = "Intelligent-Tiering";
pub const SECURE_STRING: &str = "SecureString";

/// The outcome of one compare-and-swap attempt.
pub(crate) enum Attempt<T> {
    Done(T),
    Conflict,
}

fn ts(ms: i64) -> Option<Timestamp> {
    Some(Timestamp::from_epoch_millis(ms))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn encode_token(key: &str) -> String {
    TOKEN.encode(key.as_bytes())
}

/// A NextToken back to the key to continue after; it must lie under `prefix`.
pub(crate) fn decode_token(token: Option<&str>, prefix: &str) -> Result<Option<String>, AwsError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let bytes = TOKEN
        .decode(token)
        .map_err(|_| errors::invalid_next_token())?;
    let key = String::from_utf8(bytes).map_err(|_| errors::invalid_next_token())?;
    if !key.starts_with(prefix) {
        return Err(errors::invalid_next_token());
    }
    Ok(Some(key))
}

/// The policies as reads list them. A notification that fired this period is `Finished`;
/// everything else has yet to act (an Expiration acts by deleting the parameter).
fn policies_out(
    policies: &[StoredPolicy],
    notified: &[DueKind],
) -> Option<Vec<ssm::ParameterInlinePolicy>> {
    if policies.is_empty() {
        return None;
    }
    Some(
        policies
            .iter()
            .map(|p| ssm::ParameterInlinePolicy {
                policy_text: Some(p.text.clone()),
                policy_type: Some(p.policy_type.clone()),
                policy_status: Some(
                    if notified.iter().any(|k| k.as_str() == p.policy_type) {
                        "Finished"
                    } else {
                        "Pending"
                    }
                    .to_owned(),
                ),
            })
            .collect(),
    )
}

fn decode_record<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, AwsError> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(key, error = %e, "a Parameter Store record does not decode");
        errors::internal()
    })
}

fn op<T: serde::Serialize>(key: String, value: &T, expect: Expect) -> Result<Op, AwsError> {
    put_json_op(key, value, expect).map_err(errors::store)
}

/// The tier a write ends in.
struct TierChoice<'a> {
    /// The request's Tier, or else the account's default-parameter-tier setting.
    requested: Option<&'a str>,
    /// The request named the tier itself (a default never downgrades anything).
    explicit: bool,
    existing: Option<&'a str>,
    value_len: usize,
    has_policies: bool,
    standard_full: bool,
}

fn choose_tier(c: &TierChoice<'_>) -> Result<&'static str, AwsError> {
    let existing_advanced = c.existing == Some(ADVANCED);
    let tier = match c.requested.unwrap_or(STANDARD) {
        ADVANCED => ADVANCED,
        INTELLIGENT => {
            if existing_advanced
                || c.value_len > STANDARD_MAX_VALUE
                || c.has_policies
                || (c.existing.is_none() && c.standard_full)
            {
                ADVANCED
            } else {
                STANDARD
            }
        }
        _ => {
            if existing_advanced {
                if !c.explicit {
                    // No tier asked for: an Advanced parameter stays Advanced.
                    ADVANCED
                } else {
                    return Err(errors::validation(
                        "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
                    ));
                }
            } else {
                STANDARD
            }
        }
    };
    if tier == STANDARD {
        if c.value_len > STANDARD_MAX_VALUE {
            return Err(errors::validation(
                "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
            ));
        }
        if c.has_policies {
            return Err(errors::validation(
                "Parameter policies are not supported for the standard-parameter tier. To attach policies to a parameter, use the advanced-parameter tier.",
            ));
        }
    } else if c.value_len > ADVANCED_MAX_VALUE {
        return Err(errors::validation(
            "Advanced tier parameters support a maximum parameter value of 8192 characters.",
        ));
    }
    Ok(tier)
}

fn check_allowed_pattern(pattern: &str) -> Result<regex::Regex, AwsError> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let reason = match e {
                regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
                other => other
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_owned(),
            };
            errors::invalid_allowed_pattern(&reason)
        })
}

fn check_data_type(data_type: &str, value: &str) -> Result<(), AwsError> {
    match data_type {
        "text" => Ok(()),
        "aws:ec2:image" => {
            let valid = value.strip_prefix("ami-").is_some_and(|hex| {
                (hex.len() == 8 || hex.len() == 17)
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
            if valid {
                Ok(())
            } else {
                Err(errors::validation(
                    "Parameter value is not a valid AMI ID (ami- followed by 8 or 17 hexadecimal digits), as the data type aws:ec2:image requires.",
                ))
            }
        }
        other => Err(errors::validation(format!(
            "The following data type is not supported: {other} (Data type names are all lowercase.)"
        ))),
    }
}

impl Ssm {
    // ----- storage helpers --------------------------------------------------------------------

    pub(crate) async fn load(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<(ParamRecord, u64)>, AwsError> {
        if !names::plausible(name) {
            return Ok(None);
        }
        let key = record::param_key(account, region, name);
        Ok(self
            .store
            .get_json_versioned::<ParamRecord>(&key)
            .await
            .map_err(errors::store)?
            .map(|v| (v.value, v.version)))
    }

    async fn load_version(
        &self,
        account: &str,
        region: &str,
        rec: &ParamRecord,
        version: u64,
    ) -> Result<Option<VersionRecord>, AwsError> {
        if version == rec.latest.version {
            return Ok(Some(rec.latest.clone()));
        }
        if !rec.versions.contains(&version) {
            return Ok(None);
        }
        let key = record::version_key(account, region, &rec.name, version);
        self.store.get_json(&key).await.map_err(errors::store)
    }

    async fn select(
        &self,
        account: &str,
        region: &str,
        rec: &ParamRecord,
        selector: Option<&Selector>,
    ) -> Result<Option<VersionRecord>, AwsError> {
        match selector {
            None => Ok(Some(rec.latest.clone())),
            Some(Selector::Version(v)) => self.load_version(account, region, rec, *v).await,
            Some(Selector::Label(l)) => match rec.labels.get(l) {
                Some(v) => self.load_version(account, region, rec, *v).await,
                None => Ok(None),
            },
        }
    }

    pub(crate) async fn counts(
        &self,
        account: &str,
        region: &str,
    ) -> Result<(Counts, Expect), AwsError> {
        let key = record::counts_key(account, region);
        Ok(
            match self
                .store
                .get_json_versioned::<Counts>(&key)
                .await
                .map_err(errors::store)?
            {
                Some(v) => (v.value, Expect::Version(v.version)),
                None => (Counts::default(), Expect::Absent),
            },
        )
    }

    /// Applies `ops` atomically; a lost compare-and-swap is [`Attempt::Conflict`].
    pub(crate) async fn commit(&self, ops: Vec<Op>) -> Result<Attempt<()>, AwsError> {
        match self.store.batch(ops).await {
            Ok(()) => Ok(Attempt::Done(())),
            Err(StoreError::Conflict { .. }) => Ok(Attempt::Conflict),
            Err(e) => Err(errors::store(e)),
        }
    }

    /// [`Ssm::commit`] for writes that may change the account's counts: tells a conflict on
    /// the counts record alone from one on the parameter.
    pub(crate) async fn commit_counted(
        &self,
        ops: Vec<Op>,
        account: &str,
        region: &str,
    ) -> Result<Result<(), Lost>, AwsError> {
        match self.store.batch(ops).await {
            Ok(()) => Ok(Ok(())),
            Err(StoreError::Conflict { key }) if key == record::counts_key(account, region) => {
                Ok(Err(Lost::Counts))
            }
            Err(StoreError::Conflict { .. }) => Ok(Err(Lost::Parameter)),
            Err(e) => Err(errors::store(e)),
        }
    }

    /// The operations that delete a parameter whole: its record (if still at `version`), its
    /// versions, its due expiration, and its place in the tier counts.
    pub(crate) fn removal_ops(
        account: &str,
        region: &str,
        rec: &ParamRecord,
        version: u64,
        mut counts: Counts,
        counts_expect: Expect,
    ) -> Result<Vec<Op>, AwsError> {
        let mut ops = vec![Op::Delete {
            key: record::param_key(account, region, &rec.name),
            expect: Expect::Version(version),
        }];
        for v in &rec.versions {
            ops.push(Op::Delete {
                key: record::version_key(account, region, &rec.name, *v),
                expect: Expect::Any,
            });
        }
        if let Some(at) = rec.expires_ms {
            ops.push(Op::Delete {
                key: record::due_key(at, account, region, &rec.name),
                expect: Expect::Any,
            });
        }
        for s in &rec.notifications {
            ops.push(Op::Delete {
                key: record::notification_due_key(s, account, region, &rec.name),
                expect: Expect::Any,
            });
        }
        // Its resource policies (stored in the record) go with it, and so do its shares.
        for grantee in crate::sharing::grantees(&rec.resource_policies, account) {
            ops.push(Op::Delete {
                key: record::shared_key(&grantee, region, account, &rec.name),
                expect: Expect::Any,
            });
        }
        if rec.latest.tier == ADVANCED {
            counts.advanced = counts.advanced.saturating_sub(1);
        } else {
            counts.standard = counts.standard.saturating_sub(1);
        }
        ops.push(op(
            record::counts_key(account, region),
            &counts,
            counts_expect,
        )?);
        Ok(ops)
    }

    /// The value of `v` as a read returns it: SecureStrings decrypted only when asked.
    async fn value_of(
        &self,
        ctx: &RequestContext,
        arn: &str,
        v: &VersionRecord,
        decrypt: bool,
    ) -> Result<SensitiveString, AwsError> {
        let text = if v.param_type == SECURE_STRING && !decrypt {
            secure::opaque(&v.value)
        } else {
            secure::open(self.keys.as_ref(), ctx, arn, &v.value).await?
        };
        Ok(SensitiveString::new(String::clone(&text)))
    }

    async fn parameter_out(
        &self,
        ctx: &RequestContext,
        account: &str,
        rec: &ParamRecord,
        v: &VersionRecord,
        selector: Option<String>,
        decrypt: bool,
    ) -> Result<ssm::Parameter, AwsError> {
        let arn = names::arn(&ctx.region, account, &rec.name);
        Ok(ssm::Parameter {
            name: Some(rec.name.clone()),
            type_: Some(v.param_type.clone()),
            value: Some(self.value_of(ctx, &arn, v, decrypt).await?),
            version: Some(i64_of(v.version)),
            selector,
            source_result: None,
            last_modified_date: ts(v.modified_ms),
            arn: Some(arn),
            data_type: Some(v.data_type.clone()),
        })
    }

    fn resource_conditions(rec: Option<&ParamRecord>) -> Conditions {
        let mut c = Conditions::new();
        authz::resource_tags(&mut c, rec);
        c
    }

    // ----- PutParameter -----------------------------------------------------------------------

    pub(crate) async fn put_parameter(
        &self,
        ctx: &RequestContext,
        req: ssm::PutParameterRequest,
    ) -> Result<ssm::PutParameterResult, AwsError> {
        self.throttle(ctx).await?;
        retry_lost(|| self.try_put(ctx, &req)).await
    }

    async fn try_put(
        &self,
        ctx: &RequestContext,
        req: &ssm::PutParameterRequest,
    ) -> Result<Result<ssm::PutParameterResult, Lost>, AwsError> {
        let account = ctx.principal.account_id.as_str();
        let region = ctx.region.as_str();
        let name =
            names::validate_for_write(req.name.as_deref().unwrap_or_default(), region, account)?;
        let value = req
            .value
            .as_ref()
            .map(SensitiveString::as_str)
            .unwrap_or_default();
        if value.is_empty() {
            return Err(errors::validation(
                "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.",
            ));
        }
        let overwrite = req.overwrite.unwrap_or(false);
        let tags: Vec<(String, String)> = req
            .tags
            .iter()
            .flatten()
            .map(|t| {
                (
                    t.key.clone().unwrap_or_default(),
                    t.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        if overwrite && !tags.is_empty() {
            return Err(errors::validation(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        if tags.len() > MAX_TAGS {
            return Err(errors::too_many_tags());
        }
        if let Some(t) = req.type_.as_deref()
            && !["String", "StringList", SECURE_STRING].contains(&t)
        {
            return Err(errors::unsupported_parameter_type(t));
        }
        let new_policies = match req.policies.as_deref() {
            Some(text) => Some(policies::parse(text, self.now())?),
            None => None,
        };
        if let Some(p) = req.allowed_pattern.as_deref() {
            check_allowed_pattern(p)?;
        }
        let arn = names::arn(region, account, &name);
        let existing = self.load(account, region, &name).await?;
        let existing_rec = existing.as_ref().map(|(r, _)| r);

        let mut conditions = Self::resource_conditions(existing_rec);
        authz::request_tags(&mut conditions, &tags);
        conditions.insert("ssm:Overwrite".to_owned(), vec![overwrite.to_string()]);
        if let Some(p) = &req.policies {
            conditions.insert("ssm:Policies".to_owned(), vec![p.clone()]);
        }
        self.authorize(ctx, "ssm:PutParameter", &arn, account, &conditions)
            .await?;
        if !tags.is_empty() {
            self.authorize(ctx, "ssm:AddTagsToResource", &arn, account, &conditions)
                .await?;
        }

        if existing.is_some() && !overwrite {
            return Err(errors::already_exists());
        }
        let prev = existing_rec.map(|r| &r.latest);
        let param_type = match (req.type_.as_deref(), prev) {
            (Some(t), Some(p)) if t != p.param_type => {
                return Err(errors::hierarchy_type_mismatch());
            }
            (Some(t), _) => t.to_owned(),
            (None, Some(p)) => p.param_type.clone(),
            (None, None) => {
                return Err(errors::validation(
                    "A parameter type is required when you create a parameter.",
                ));
            }
        };
        if req.key_id.is_some() && param_type != SECURE_STRING {
            return Err(errors::validation(
                "KeyId is required for SecureString type parameter only.",
            ));
        }
        let description = req
            .description
            .clone()
            .or_else(|| prev.and_then(|p| p.description.clone()));
        let allowed_pattern = req
            .allowed_pattern
            .clone()
            .or_else(|| prev.and_then(|p| p.allowed_pattern.clone()))
            .filter(|p| !p.is_empty());
        if let Some(p) = &allowed_pattern
            && !check_allowed_pattern(p)?.is_match(value)
        {
            return Err(errors::pattern_mismatch(p));
        }
        let data_type = req
            .data_type
            .clone()
            .or_else(|| prev.map(|p| p.data_type.clone()))
            .unwrap_or_else(|| "text".to_owned());
        check_data_type(&data_type, value)?;
        let policies_written = new_policies.is_some();
        let (policy_list, expires_ms) = match new_policies {
            Some(p) => (p.policies, p.expires_ms),
            None => match existing_rec {
                Some(r) => (r.latest.policies.clone(), r.expires_ms),
                None => (Vec::new(), None),
            },
        };

        let (mut counts, counts_expect) = self.counts(account, region).await?;
        let settings = self.settings_of(account, region).await?;
        let default_tier = settings.default_tier.as_ref().map(|s| s.value.clone());
        let requested = req.tier.clone().or(default_tier);
        let tier = choose_tier(&TierChoice {
            requested: requested.as_deref(),
            explicit: req.tier.is_some(),
            existing: prev.map(|p| p.tier.as_str()),
            value_len: value.len(),
            has_policies: !policy_list.is_empty(),
            standard_full: counts.standard >= self.limits().standard_parameters,
        })?;
        // Tier quotas: a new parameter, or one moving up to Advanced, takes a place.
        let counts_before = counts;
        match (prev.map(|p| p.tier.as_str()), tier) {
            (None, ADVANCED) => counts.advanced += 1,
            (None, _) => counts.standard += 1,
            (Some(ADVANCED), _) => {}
            (Some(_), ADVANCED) => {
                counts.standard = counts.standard.saturating_sub(1);
                counts.advanced += 1;
            }
            (Some(_), _) => {}
        }
        if counts.standard > counts_before.standard
            && counts.standard > self.limits().standard_parameters
        {
            return Err(errors::parameter_limit(
                STANDARD,
                self.limits().standard_parameters,
            ));
        }
        if counts.advanced > counts_before.advanced
            && counts.advanced > self.limits().advanced_parameters
        {
            return Err(errors::parameter_limit(
                ADVANCED,
                self.limits().advanced_parameters,
            ));
        }

        let modified_ms = self.now_ms();
        let key_id = if param_type == SECURE_STRING {
            Some(
                req.key_id
                    .clone()
                    .or_else(|| prev.and_then(|p| p.key_id.clone()))
                    .unwrap_or_else(|| secure::DEFAULT_KEY.to_owned()),
            )
        } else {
            None
        };

        // Versions: the oldest goes when a 101st is written, unless it carries a label.
        let version = prev.map_or(1, |p| p.version + 1);
        let mut versions = existing_rec.map(|r| r.versions.clone()).unwrap_or_default();
        let mut dropped = None;
        if versions.len() >= MAX_VERSIONS
            && let Some(oldest) = versions.first().copied()
        {
            if existing_rec.is_some_and(|r| r.labels.values().any(|v| *v == oldest)) {
                return Err(errors::max_versions(&name, oldest));
            }
            versions.remove(0);
            dropped = Some(oldest);
        }
        versions.push(version);

        let stored = match &key_id {
            Some(k) => secure::seal(self.keys.as_ref(), ctx, k, &arn, value.as_bytes()).await?,
            None => StoredValue::Plain {
                text: value.to_owned(),
            },
        };
        let latest = VersionRecord {
            version,
            param_type,
            tier: tier.to_owned(),
            data_type,
            description,
            allowed_pattern,
            key_id,
            policies: policy_list,
            modified_ms,
            modified_user: ctx.principal.arn.clone(),
            value: stored,
        };
        // A write starts a new unchanged period (NoChangeNotification fires again); an
        // ExpirationNotification that fired stays fired while its policies and expiration stand.
        let notified: Vec<DueKind> = match existing_rec {
            Some(r) if !policies_written && r.expires_ms == expires_ms => r
                .notified
                .iter()
                .copied()
                .filter(|k| *k == DueKind::ExpirationNotification)
                .collect(),
            _ => Vec::new(),
        };
        let notifications =
            policies::schedule(&latest.policies, expires_ms, modified_ms, &notified);
        let policies_ms = if policies_written {
            Some(modified_ms)
        } else {
            existing_rec.and_then(|r| r.policies_ms)
        };
        // The stored name keeps the form it was created with (`a` and `/a` are one parameter).
        let stored_name = existing_rec.map_or_else(|| name.clone(), |r| r.name.clone());
        let rec = ParamRecord {
            name: stored_name.clone(),
            latest: latest.clone(),
            labels: existing_rec.map(|r| r.labels.clone()).unwrap_or_default(),
            versions,
            tags: existing_rec.map_or(tags, |r| r.tags.clone()),
            expires_ms,
            notifications,
            notified,
            policies_ms,
            resource_policies: existing_rec
                .map(|r| r.resource_policies.clone())
                .unwrap_or_default(),
        };

        let mut ops = vec![
            op(
                record::param_key(account, region, &stored_name),
                &rec,
                existing
                    .as_ref()
                    .map_or(Expect::Absent, |(_, v)| Expect::Version(*v)),
            )?,
            op(
                record::version_key(account, region, &stored_name, version),
                &latest,
                Expect::Any,
            )?,
        ];
        if let Some(old) = dropped {
            ops.push(Op::Delete {
                key: record::version_key(account, region, &stored_name, old),
                expect: Expect::Any,
            });
        }
        if counts != counts_before {
            ops.push(op(
                record::counts_key(account, region),
                &counts,
                counts_expect,
            )?);
        }
        let old_expiry = existing_rec.and_then(|r| r.expires_ms);
        if old_expiry != expires_ms {
            if let Some(at) = old_expiry {
                ops.push(Op::Delete {
                    key: record::due_key(at, account, region, &stored_name),
                    expect: Expect::Any,
                });
            }
            if let Some(at) = expires_ms {
                ops.push(op(
                    record::due_key(at, account, region, &stored_name),
                    &Due {
                        account: account.to_owned(),
                        region: region.to_owned(),
                        name: stored_name.clone(),
                        at_ms: at,
                        kind: DueKind::Expiration,
                    },
                    Expect::Any,
                )?);
            }
        }
        let old_notifications = existing_rec.map_or(&[][..], |r| &r.notifications[..]);
        ops.extend(Self::notification_ops(
            account,
            region,
            &stored_name,
            old_notifications,
            &rec.notifications,
        )?);
        Ok(self
            .commit_counted(ops, account, region)
            .await?
            .map(|()| ssm::PutParameterResult {
                version: Some(i64_of(version)),
                tier: Some(tier.to_owned()),
            }))
    }

    // ----- reads ------------------------------------------------------------------------------

    /// Reads `reference` after authorizing `action` on it. `Ok(None)` when it does not exist
    /// (or its selector matches no version).
    async fn read_one(
        &self,
        ctx: &RequestContext,
        action: &str,
        reference: &Reference,
        decrypt: bool,
    ) -> Result<Result<ssm::Parameter, ReadMiss>, AwsError> {
        if crate::public::is_public(&reference.name) {
            return self.read_public(ctx, action, reference, decrypt).await;
        }
        let region = ctx.region.as_str();
        let account = reference.account.as_str();
        let loaded = self.load(account, region, &reference.name).await?;
        let arn = names::arn(
            region,
            account,
            loaded
                .as_ref()
                .map_or(reference.name.as_str(), |(r, _)| r.name.as_str()),
        );
        let conditions = Self::resource_conditions(loaded.as_ref().map(|(r, _)| r));
        self.authorize_read(
            ctx,
            action,
            &arn,
            account,
            &conditions,
            loaded.as_ref().map(|(r, _)| r),
        )
        .await?;
        let Some((rec, _)) = loaded else {
            return Ok(Err(ReadMiss::Parameter));
        };
        let Some(v) = self
            .select(account, region, &rec, reference.selector.as_ref())
            .await?
        else {
            return Ok(Err(ReadMiss::Version));
        };
        self.parameter_out(
            ctx,
            account,
            &rec,
            &v,
            reference.selector_text.clone(),
            decrypt,
        )
        .await
        .map(Ok)
    }

    /// Reads a public `/aws/service/` parameter: any account may, with `ssm:GetParameter*` on
    /// its account-less ARN. Only version 1 exists and no labels.
    async fn read_public(
        &self,
        ctx: &RequestContext,
        action: &str,
        reference: &Reference,
        decrypt: bool,
    ) -> Result<Result<ssm::Parameter, ReadMiss>, AwsError> {
        let arn = names::arn(&ctx.region, "", &reference.name);
        let caller = ctx.principal.account_id.clone();
        self.authorize(ctx, action, &arn, &caller, &Conditions::new())
            .await?;
        let Some(rec) = self.public.get().and_then(|p| p.get(&reference.name)) else {
            return Ok(Err(ReadMiss::Parameter));
        };
        if !matches!(reference.selector, None | Some(Selector::Version(1))) {
            return Ok(Err(ReadMiss::Version));
        }
        self.parameter_out(
            ctx,
            "",
            rec,
            &rec.latest,
            reference.selector_text.clone(),
            decrypt,
        )
        .await
        .map(Ok)
    }

    pub(crate) async fn get_parameter(
        &self,
        ctx: &RequestContext,
        req: ssm::GetParameterRequest,
    ) -> Result<ssm::GetParameterResult, AwsError> {
        self.throttle(ctx).await?;
        let text = req.name.unwrap_or_default();
        let decrypt = req.with_decryption.unwrap_or(false);
        if let Some((owner, text)) = self.secrets_manager_reference(ctx, &text) {
            reference::require_decryption(decrypt)?;
            let parameter = self
                .read_reference(ctx, "ssm:GetParameter", &owner, &text)
                .await??;
            return Ok(ssm::GetParameterResult {
                parameter: Some(parameter),
            });
        }
        let Some(reference) = names::parse_reference(&text, &ctx.region, &ctx.principal.account_id)
        else {
            return Err(errors::validation(format!(
                "Invalid parameter name or selector: {text}"
            )));
        };
        match self
            .read_one(ctx, "ssm:GetParameter", &reference, decrypt)
            .await?
        {
            Ok(p) => Ok(ssm::GetParameterResult { parameter: Some(p) }),
            Err(ReadMiss::Parameter) => Err(errors::parameter_not_found_silent()),
            Err(ReadMiss::Version) => Err(errors::version_not_found(
                &reference.name,
                &reference
                    .selector
                    .as_ref()
                    .map(Selector::text)
                    .unwrap_or_default(),
            )),
        }
    }

    pub(crate) async fn get_parameters(
        &self,
        ctx: &RequestContext,
        req: ssm::GetParametersRequest,
    ) -> Result<ssm::GetParametersResult, AwsError> {
        self.throttle(ctx).await?;
        let decrypt = req.with_decryption.unwrap_or(false);
        let names = req.names.unwrap_or_default();
        if names
            .iter()
            .any(|text| self.secrets_manager_reference(ctx, text).is_some())
        {
            reference::require_decryption(decrypt)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        for text in names {
            if !seen.insert(text.clone()) {
                continue;
            }
            if let Some((owner, name)) = self.secrets_manager_reference(ctx, &text) {
                match self
                    .read_reference(ctx, "ssm:GetParameters", &owner, &name)
                    .await?
                {
                    Ok(p) => found.push(p),
                    Err(_) => invalid.push(text),
                }
                continue;
            }
            let Some(reference) =
                names::parse_reference(&text, &ctx.region, &ctx.principal.account_id)
            else {
                invalid.push(text);
                continue;
            };
            match self
                .read_one(ctx, "ssm:GetParameters", &reference, decrypt)
                .await?
            {
                Ok(p) => found.push(p),
                Err(_) => invalid.push(text),
            }
        }
        if found.is_empty() && invalid.is_empty() {
            // Nothing to authorize against (cannot happen: Names has 1–10 members).
            return Err(errors::internal());
        }
        if !ctx.authorized.is_marked() {
            // Every name was malformed: still an authorized request for the account.
            self.authorize(
                ctx,
                "ssm:GetParameters",
                &names::arn(&ctx.region, &ctx.principal.account_id, "*"),
                &ctx.principal.account_id.clone(),
                &Conditions::new(),
            )
            .await?;
        }
        Ok(ssm::GetParametersResult {
            parameters: Some(found),
            invalid_parameters: Some(invalid),
        })
    }

    pub(crate) async fn get_parameters_by_path(
        &self,
        ctx: &RequestContext,
        req: ssm::GetParametersByPathRequest,
    ) -> Result<ssm::GetParametersByPathResult, AwsError> {
        self.throttle(ctx).await?;
        let account = ctx.principal.account_id.clone();
        let region = ctx.region.clone();
        let path = names::validate_path(req.path.as_deref().unwrap_or_default())?;
        let recursive = req.recursive.unwrap_or(false);
        let filters = FilterSet::parse(req.parameter_filters.as_deref(), filters::Use::ByPath)?;
        if reference::is_reserved_path(&path) {
            return Err(reference::path_not_supported());
        }
        if crate::public::is_public(&path) {
            return self
                .public_by_path(ctx, &req, &path, recursive, &filters)
                .await;
        }
        let path_arn = names::arn(&region, &account, &path);
        let mut conditions = Conditions::new();
        conditions.insert("ssm:Recursive".to_owned(), vec![recursive.to_string()]);
        self.authorize(
            ctx,
            "ssm:GetParametersByPath",
            &path_arn,
            &account,
            &conditions,
        )
        .await?;
        let decrypt = req.with_decryption.unwrap_or(false);
        let want = usize::try_from(req.max_results.unwrap_or(10))
            .unwrap_or(10)
            .max(1);
        let base = record::params_prefix(&account, &region);
        let prefix = if path == "/" {
            base.clone()
        } else {
            format!("{base}{}/", names::resource(&path))
        };
        let after = decode_token(req.next_token.as_deref(), &prefix)?;
        let (records, next) = self
            .scan(&prefix, !recursive, after, want, &mut |r| {
                filters.matches(r)
            })
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for rec in &records {
            let v = match filters.label() {
                Some(labels) => {
                    let Some(version) = labels.iter().find_map(|l| rec.labels.get(l)) else {
                        continue;
                    };
                    match self.load_version(&account, &region, rec, *version).await? {
                        Some(v) => v,
                        None => continue,
                    }
                }
                None => rec.latest.clone(),
            };
            out.push(
                self.parameter_out(ctx, &account, rec, &v, None, decrypt)
                    .await?,
            );
        }
        Ok(ssm::GetParametersByPathResult {
            parameters: Some(out),
            next_token: next.map(|k| encode_token(&k)),
        })
    }

    /// GetParametersByPath under `/aws/service/`: the public parameters, for every account.
    async fn public_by_path(
        &self,
        ctx: &RequestContext,
        req: &ssm::GetParametersByPathRequest,
        path: &str,
        recursive: bool,
        filters: &FilterSet,
    ) -> Result<ssm::GetParametersByPathResult, AwsError> {
        let mut conditions = Conditions::new();
        conditions.insert("ssm:Recursive".to_owned(), vec![recursive.to_string()]);
        let caller = ctx.principal.account_id.clone();
        let path_arn = names::arn(&ctx.region, "", path);
        self.authorize(
            ctx,
            "ssm:GetParametersByPath",
            &path_arn,
            &caller,
            &conditions,
        )
        .await?;
        let want = usize::try_from(req.max_results.unwrap_or(10))
            .unwrap_or(10)
            .max(1);
        let after = decode_token(req.next_token.as_deref(), crate::public::PREFIX)?;
        let Some(public) = self.public.get() else {
            return Ok(ssm::GetParametersByPathResult {
                parameters: Some(Vec::new()),
                next_token: None,
            });
        };
        let mut page: Vec<&ParamRecord> = public
            .under(path, recursive, after.as_deref())
            .filter(|r| filters.matches(r) && filters.label().is_none())
            .take(want + 1)
            .collect();
        let more = page.len() > want;
        page.truncate(want);
        let mut out = Vec::with_capacity(page.len());
        for rec in &page {
            out.push(
                self.parameter_out(
                    ctx,
                    "",
                    rec,
                    &rec.latest,
                    None,
                    req.with_decryption.unwrap_or(false),
                )
                .await?,
            );
        }
        Ok(ssm::GetParametersByPathResult {
            parameters: Some(out),
            next_token: if more {
                page.last().map(|r| encode_token(&r.name))
            } else {
                None
            },
        })
    }

    /// Pages through the parameters under `prefix` (a storage key prefix) in name order,
    /// after the key `after`: up to `want` records `keep` accepts, having examined at most
    /// [`SCAN_BUDGET`] records. With `one_level`, deeper levels are skipped whole (one seek per
    /// sub-hierarchy, never a record of it). Returns the records and the key to continue after,
    /// if the range may hold more.
    pub(crate) async fn scan(
        &self,
        prefix: &str,
        one_level: bool,
        mut after: Option<String>,
        want: usize,
        keep: &mut (dyn FnMut(&ParamRecord) -> bool + Send),
    ) -> Result<(Vec<ParamRecord>, Option<String>), AwsError> {
        let mut out = Vec::new();
        let mut examined = 0usize;
        // The store decrypts every entry it lists: the first page asks for what the caller
        // wants (and one more, to know whether there is a next page), later ones for more when
        // filters or deeper levels skipped entries.
        let mut page_size = want.saturating_add(1);
        loop {
            page_size = page_size.min(SCAN_BUDGET - examined).max(1);
            let page = self
                .store
                .list(prefix, after.as_deref(), page_size)
                .await
                .map_err(errors::store)?;
            let exhausted = page.len() < page_size;
            let mut skip_to: Option<String> = None;
            for (key, entry) in page {
                if skip_to.as_deref().is_some_and(|s| key.as_str() <= s) {
                    after = Some(key);
                    continue;
                }
                examined += 1;
                let rel = &key[prefix.len()..];
                if one_level && let Some((first, _)) = rel.split_once('/') {
                    skip_to = Some(format!("{prefix}{first}/\u{7f}"));
                    after = Some(key);
                    continue;
                }
                let rec: ParamRecord = decode_record(&key, &entry.value)?;
                after = Some(key);
                if keep(&rec) {
                    out.push(rec);
                    if out.len() >= want {
                        return Ok((out, after));
                    }
                }
            }
            if let Some(s) = skip_to
                && after.as_deref().is_none_or(|a| a < s.as_str())
            {
                after = Some(s);
            }
            if exhausted {
                return Ok((out, None));
            }
            if examined >= SCAN_BUDGET {
                return Ok((out, after));
            }
            page_size = 100;
        }
    }

    pub(crate) async fn get_parameter_history(
        &self,
        ctx: &RequestContext,
        req: ssm::GetParameterHistoryRequest,
    ) -> Result<ssm::GetParameterHistoryResult, AwsError> {
        let account = ctx.principal.account_id.clone();
        let region = ctx.region.clone();
        let reference =
            names::parse_reference(req.name.as_deref().unwrap_or_default(), &region, &account)
                .filter(|r| r.selector.is_none());
        let name = reference
            .as_ref()
            .map_or_else(|| req.name.clone().unwrap_or_default(), |r| r.name.clone());
        let owner = reference
            .as_ref()
            .map_or(account.clone(), |r| r.account.clone());
        let loaded = match &reference {
            Some(r) => self.load(&r.account, &region, &r.name).await?,
            None => None,
        };
        let arn = names::arn(&region, &owner, &name);
        let conditions = Self::resource_conditions(loaded.as_ref().map(|(r, _)| r));
        self.authorize_read(
            ctx,
            "ssm:GetParameterHistory",
            &arn,
            &owner,
            &conditions,
            loaded.as_ref().map(|(r, _)| r),
        )
        .await?;
        let Some((rec, _)) = loaded else {
            return Err(errors::parameter_not_found(&name));
        };
        let decrypt = req.with_decryption.unwrap_or(false);
        let want = usize::try_from(req.max_results.unwrap_or(50))
            .unwrap_or(50)
            .max(1);
        let prefix = record::versions_prefix(&owner, &region, &rec.name);
        let after = decode_token(req.next_token.as_deref(), &prefix)?;
        let page = self
            .store
            .list(&prefix, after.as_deref(), want + 1)
            .await
            .map_err(errors::store)?;
        let more = page.len() > want;
        let mut out = Vec::new();
        let mut last = None;
        for (key, entry) in page.into_iter().take(want) {
            let v: VersionRecord = decode_record(&key, &entry.value)?;
            let labels = rec.labels_of(v.version);
            out.push(ssm::ParameterHistory {
                name: Some(rec.name.clone()),
                type_: Some(v.param_type.clone()),
                key_id: v.key_id.clone(),
                last_modified_date: ts(v.modified_ms),
                last_modified_user: Some(v.modified_user.clone()),
                description: v.description.clone(),
                value: Some(self.value_of(ctx, &arn, &v, decrypt).await?),
                allowed_pattern: v.allowed_pattern.clone(),
                version: Some(i64_of(v.version)),
                labels: Some(labels),
                tier: Some(v.tier.clone()),
                policies: Some(
                    policies_out(
                        &v.policies,
                        if v.version == rec.latest.version {
                            &rec.notified
                        } else {
                            &[]
                        },
                    )
                    .unwrap_or_default(),
                ),
                data_type: Some(v.data_type.clone()),
            });
            last = Some(key);
        }
        Ok(ssm::GetParameterHistoryResult {
            parameters: Some(out),
            next_token: if more {
                last.map(|k| encode_token(&k))
            } else {
                None
            },
        })
    }

    // ----- deletes ----------------------------------------------------------------------------

    /// Deletes `name` if it exists (after `authorize` allowed it). `false` when absent.
    async fn remove(&self, account: &str, region: &str, name: &str) -> Result<bool, AwsError> {
        retry_lost(|| async {
            let Some((rec, version)) = self.load(account, region, name).await? else {
                return Ok(Ok(false));
            };
            let (counts, expect) = self.counts(account, region).await?;
            let ops = Self::removal_ops(account, region, &rec, version, counts, expect)?;
            Ok(self
                .commit_counted(ops, account, region)
                .await?
                .map(|()| true))
        })
        .await
    }

    pub(crate) async fn delete_parameter(
        &self,
        ctx: &RequestContext,
        req: ssm::DeleteParameterRequest,
    ) -> Result<crate::Empty, AwsError> {
        let account = ctx.principal.account_id.clone();
        let region = ctx.region.clone();
        let name = req.name.unwrap_or_default();
        let loaded = self.load(&account, &region, &name).await?;
        let arn = names::arn(&region, &account, &name);
        let conditions = Self::resource_conditions(loaded.as_ref().map(|(r, _)| r));
        self.authorize(ctx, "ssm:DeleteParameter", &arn, &account, &conditions)
            .await?;
        if loaded.is_none() || !self.remove(&account, &region, &name).await? {
            return Err(errors::parameter_not_found_silent());
        }
        Ok(crate::Empty {})
    }

    pub(crate) async fn delete_parameters(
        &self,
        ctx: &RequestContext,
        req: ssm::DeleteParametersRequest,
    ) -> Result<ssm::DeleteParametersResult, AwsError> {
        let account = ctx.principal.account_id.clone();
        let region = ctx.region.clone();
        let mut names_in: Vec<String> = Vec::new();
        for n in req.names.unwrap_or_default() {
            if !names_in.contains(&n) {
                names_in.push(n);
            }
        }
        // Authorize every name first: a denial fails the call before anything is deleted.
        for name in &names_in {
            let loaded = self.load(&account, &region, name).await?;
            let arn = names::arn(&region, &account, name);
            let conditions = Self::resource_conditions(loaded.as_ref().map(|(r, _)| r));
            self.authorize(ctx, "ssm:DeleteParameters", &arn, &account, &conditions)
                .await?;
        }
        let mut deleted = Vec::new();
        let mut invalid = Vec::new();
        for name in names_in {
            if self.remove(&account, &region, &name).await? {
                deleted.push(name);
            } else {
                invalid.push(name);
            }
        }
        Ok(ssm::DeleteParametersResult {
            deleted_parameters: Some(deleted),
            invalid_parameters: Some(invalid),
        })
    }

    // ----- labels -----------------------------------------------------------------------------

    /// Loads the parameter a label operation names, after authorizing `action` on it.
    async fn load_for_update(
        &self,
        ctx: &RequestContext,
        action: &str,
        name: &str,
    ) -> Result<(ParamRecord, u64), AwsError> {
        let account = ctx.principal.account_id.clone();
        let loaded = self.load(&account, &ctx.region, name).await?;
        let arn = names::arn(&ctx.region, &account, name);
        let conditions = Self::resource_conditions(loaded.as_ref().map(|(r, _)| r));
        self.authorize(ctx, action, &arn, &account, &conditions)
            .await?;
        loaded.ok_or_else(|| errors::parameter_not_found(name))
    }

    async fn save_record(
        &self,
        ctx: &RequestContext,
        rec: &ParamRecord,
        version: u64,
    ) -> Result<Attempt<()>, AwsError> {
        let key = record::param_key(&ctx.principal.account_id, &ctx.region, &rec.name);
        self.commit(vec![op(key, rec, Expect::Version(version))?])
            .await
    }

    pub(crate) async fn label_parameter_version(
        &self,
        ctx: &RequestContext,
        req: ssm::LabelParameterVersionRequest,
    ) -> Result<ssm::LabelParameterVersionResult, AwsError> {
        let name = req.name.clone().unwrap_or_default();
        let labels = req.labels.clone().unwrap_or_default();
        for _ in 0..WRITE_ATTEMPTS {
            let (mut rec, stored) = self
                .load_for_update(ctx, "ssm:LabelParameterVersion", &name)
                .await?;
            let target = match req.parameter_version {
                None => rec.latest.version,
                Some(v) => {
                    let v = u64::try_from(v).unwrap_or(0);
                    if !rec.versions.contains(&v) {
                        return Err(errors::version_not_found(&name, &v.to_string()));
                    }
                    v
                }
            };
            let mut invalid = Vec::new();
            for label in &labels {
                if names::valid_label(label) {
                    rec.labels.insert(label.clone(), target);
                } else if !invalid.contains(label) {
                    invalid.push(label.clone());
                }
            }
            if rec.labels_of(target).len() > MAX_LABELS_PER_VERSION {
                return Err(errors::label_limit());
            }
            if invalid.len() < labels.len()
                && let Attempt::Conflict = self.save_record(ctx, &rec, stored).await?
            {
                continue;
            }
            return Ok(ssm::LabelParameterVersionResult {
                invalid_labels: Some(invalid),
                parameter_version: Some(i64_of(target)),
            });
        }
        Err(errors::too_many_updates())
    }

    pub(crate) async fn unlabel_parameter_version(
        &self,
        ctx: &RequestContext,
        req: ssm::UnlabelParameterVersionRequest,
    ) -> Result<ssm::UnlabelParameterVersionResult, AwsError> {
        let name = req.name.clone().unwrap_or_default();
        let labels = req.labels.clone().unwrap_or_default();
        for _ in 0..WRITE_ATTEMPTS {
            let (mut rec, stored) = self
                .load_for_update(ctx, "ssm:UnlabelParameterVersion", &name)
                .await?;
            let target = u64::try_from(req.parameter_version.unwrap_or(0)).unwrap_or(0);
            if !rec.versions.contains(&target) {
                return Err(errors::version_not_found(&name, &target.to_string()));
            }
            let mut removed = Vec::new();
            let mut invalid = Vec::new();
            for label in &labels {
                if rec.labels.get(label) == Some(&target) {
                    rec.labels.remove(label);
                    removed.push(label.clone());
                } else if !invalid.contains(label) && !removed.contains(label) {
                    invalid.push(label.clone());
                }
            }
            if !removed.is_empty()
                && let Attempt::Conflict = self.save_record(ctx, &rec, stored).await?
            {
                continue;
            }
            return Ok(ssm::UnlabelParameterVersionResult {
                removed_labels: Some(removed),
                invalid_labels: Some(invalid),
            });
        }
        Err(errors::too_many_updates())
    }

    // ----- DescribeParameters -----------------------------------------------------------------

    pub(crate) async fn describe_parameters(
        &self,
        ctx: &RequestContext,
        req: ssm::DescribeParametersRequest,
    ) -> Result<ssm::DescribeParametersResult, AwsError> {
        let account = ctx.principal.account_id.clone();
        let region = ctx.region.clone();
        if req.filters.as_ref().is_some_and(|f| !f.is_empty())
            && req
                .parameter_filters
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        {
            return Err(errors::validation(
                "You can use either Filters or ParameterFilters in a single request.",
            ));
        }
        let filters = match &req.filters {
            Some(legacy) if !legacy.is_empty() => FilterSet::legacy(legacy)?,
            _ => FilterSet::parse(req.parameter_filters.as_deref(), filters::Use::Describe)?,
        };
        self.authorize(
            ctx,
            "ssm:DescribeParameters",
            "*",
            &account,
            &Conditions::new(),
        )
        .await?;
        let want = usize::try_from(req.max_results.unwrap_or(50))
            .unwrap_or(50)
            .max(1);
        if req.shared.unwrap_or(false) {
            // Parameters other accounts shared with this one by a resource policy.
            let (shared, next) = self
                .describe_shared(ctx, want, req.next_token.as_deref())
                .await?;
            let parameters = shared
                .iter()
                .filter(|(_, rec)| filters.matches(rec))
                .map(|(owner, rec)| metadata(&region, owner, rec))
                .collect();
            return Ok(ssm::DescribeParametersResult {
                parameters: Some(parameters),
                next_token: next,
            });
        }
        let base = record::params_prefix(&account, &region);
        // A single Path filter narrows the range read to that hierarchy.
        let (prefix, one_level) = match filters.single_path() {
            Some((path, recursive)) if path == "/" => (base.clone(), !recursive),
            Some((path, recursive)) => (format!("{base}{}/", names::resource(&path)), !recursive),
            None => (base.clone(), false),
        };
        let after = decode_token(req.next_token.as_deref(), &prefix)?;
        let (records, next) = self
            .scan(&prefix, one_level, after, want, &mut |r| filters.matches(r))
            .await?;
        let parameters = records
            .iter()
            .map(|rec| metadata(&region, &account, rec))
            .collect();
        Ok(ssm::DescribeParametersResult {
            parameters: Some(parameters),
            next_token: next.map(|k| encode_token(&k)),
        })
    }
}

/// A parameter as DescribeParameters lists it.
fn metadata(region: &str, account: &str, rec: &ParamRecord) -> ssm::ParameterMetadata {
    let v = &rec.latest;
    ssm::ParameterMetadata {
        name: Some(rec.name.clone()),
        arn: Some(names::arn(region, account, &rec.name)),
        type_: Some(v.param_type.clone()),
        key_id: v.key_id.clone(),
        last_modified_date: ts(v.modified_ms),
        last_modified_user: Some(v.modified_user.clone()),
        description: v.description.clone(),
        allowed_pattern: v.allowed_pattern.clone(),
        version: Some(i64_of(v.version)),
        tier: Some(v.tier.clone()),
        policies: Some(policies_out(&v.policies, &rec.notified).unwrap_or_default()),
        data_type: Some(v.data_type.clone()),
    }
}

/// Why a read found nothing.
pub(crate) enum ReadMiss {
    Parameter,
    Version,
}

impl Ssm {
    /// When `text` names a Secrets Manager reference — `/aws/reference/secretsmanager/…`, or a
    /// parameter ARN of one — the account it belongs to and the reference as a name.
    fn secrets_manager_reference(
        &self,
        ctx: &RequestContext,
        text: &str,
    ) -> Option<(String, String)> {
        if text.starts_with(reference::PREFIX) {
            return Some((ctx.principal.account_id.clone(), text.to_owned()));
        }
        let parsed = names::parse_reference(text, &ctx.region, &ctx.principal.account_id)?;
        parsed.name.starts_with(reference::PREFIX).then(|| {
            let name = parsed.name + parsed.selector_text.as_deref().unwrap_or_default();
            (parsed.account, name)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tiers() {
        let c = |requested, existing, value_len, has_policies| {
            choose_tier(&TierChoice {
                requested,
                explicit: requested.is_some(),
                existing,
                value_len,
                has_policies,
                standard_full: false,
            })
        };
        assert_eq!(c(None, None, 10, false).unwrap(), STANDARD);
        assert_eq!(c(Some(INTELLIGENT), None, 5000, false).unwrap(), ADVANCED);
        assert_eq!(c(Some(INTELLIGENT), None, 10, true).unwrap(), ADVANCED);
        assert_eq!(c(Some(INTELLIGENT), None, 10, false).unwrap(), STANDARD);
        assert_eq!(c(None, Some(ADVANCED), 10, false).unwrap(), ADVANCED);
        assert_eq!(
            c(Some(STANDARD), Some(ADVANCED), 10, false)
                .unwrap_err()
                .code,
            "ValidationException"
        );
        assert!(c(None, None, 4097, false).is_err());
        assert!(c(Some(ADVANCED), None, 8193, false).is_err());
        assert!(c(Some(STANDARD), None, 10, true).is_err());
        // The default-parameter-tier setting never downgrades an Advanced parameter.
        let by_default = choose_tier(&TierChoice {
            requested: Some(STANDARD),
            explicit: false,
            existing: Some(ADVANCED),
            value_len: 10,
            has_policies: false,
            standard_full: false,
        });
        assert_eq!(by_default.unwrap(), ADVANCED);
    }

    #[test]
    fn tokens_stay_in_their_range() {
        let t = encode_token("ssm/1/r/p/a/b");
        assert_eq!(
            decode_token(Some(&t), "ssm/1/r/p/a/").unwrap().unwrap(),
            "ssm/1/r/p/a/b"
        );
        assert!(decode_token(Some(&t), "ssm/1/r/p/x/").is_err());
        assert!(decode_token(Some("!!"), "").is_err());
    }

    #[test]
    fn data_types() {
        assert!(check_data_type("aws:ec2:image", "ami-12345678").is_ok());
        assert!(check_data_type("aws:ec2:image", "ami-0123456789abcdef0").is_ok());
        assert!(check_data_type("aws:ec2:image", "ami-xyz").is_err());
        assert!(check_data_type("Text", "x").is_err());
    }

    #[tokio::test]
    async fn losing_to_other_parameters_keeps_retrying_and_to_this_one_gives_up() {
        // More rounds lost on the counts record than WRITE_ATTEMPTS: still succeeds.
        let mut rounds = 0;
        let got = retry_lost(|| {
            rounds += 1;
            let r = rounds;
            async move {
                Ok(if r <= WRITE_ATTEMPTS + 3 {
                    Err(Lost::Counts)
                } else {
                    Ok(r)
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(got, WRITE_ATTEMPTS + 4);
        // Always losing to writers of the same parameter: TooManyUpdates after WRITE_ATTEMPTS.
        let mut tries = 0;
        let e = retry_lost(|| {
            tries += 1;
            async { Ok::<Result<(), Lost>, AwsError>(Err(Lost::Parameter)) }
        })
        .await
        .unwrap_err();
        assert_eq!(e.code, "TooManyUpdates");
        assert_eq!(tries, WRITE_ATTEMPTS);
    }
}
