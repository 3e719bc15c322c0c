//! The default event bus: matching published events against the enabled rules of their account
//! and region, and writing one durable outbox entry per matched target.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use citadel_events::{DeliveryContext, Event, InputShape, JsonPath, Pattern};
use citadel_model::events::Target;
use citadel_store::{Expect, SealedStore, put_json_op};

use crate::errors::BusError;
use crate::http::Client;
use crate::records::{self, Delivery, Destination, RuleRecord};

/// The detail-type of CloudTrail-delivered API call events.
pub const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";
/// The rule state that also receives read-only management events.
pub const STATE_WITH_READ_ONLY: &str = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";

/// AWS's defaults for a target without a RetryPolicy.
pub const DEFAULT_MAX_RETRIES: u32 = 185;
pub const DEFAULT_MAX_AGE_SECS: u64 = 86_400;

/// Operator settings of the bus.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Directory of file targets (`arn:citadel:events:::file/<name>` appends to
    /// `<dir>/<name>.jsonl`). `None` disables file targets.
    pub file_target_dir: Option<PathBuf>,
    /// First retry delay; each retry doubles it (with ±20% jitter) up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How often the delivery loop looks for due deliveries when nothing wakes it.
    pub poll_interval: Duration,
    /// Per-request timeout of webhook calls (EventBridge's is 5 seconds).
    pub request_timeout: Duration,
    /// PEM bundle of CAs trusted for HTTPS webhooks; `None` uses the system bundle.
    pub ca_bundle: Option<PathBuf>,
    /// Deliveries attempted at once.
    pub concurrency: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            file_target_dir: None,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            ca_bundle: None,
            concurrency: 16,
        }
    }
}

/// A stored rule with its compiled pattern.
struct CachedRule {
    rule: RuleRecord,
    pattern: Arc<Pattern>,
}

/// The rules of each bus, by the store prefix of its rules.
#[derive(Default)]
struct RulesCache {
    /// Bumped by every invalidation (see [`Bus::rules_of`]).
    epoch: u64,
    by_bus: HashMap<String, Arc<Vec<CachedRule>>>,
}

/// What [`Bus::publish`] did with one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Names of the rules that matched.
    pub matched_rules: Vec<String>,
    /// Outbox entries written (one per target of each matched rule).
    pub deliveries: usize,
}

/// The event bus. Share it as `Arc<Bus>`: the API handler, Citadel's services (which publish
/// their events in process) and the delivery loop use the same instance.
pub struct Bus {
    pub(crate) store: Arc<SealedStore>,
    pub(crate) config: BusConfig,
    pub(crate) wake: tokio::sync::Notify,
    /// The rules of each bus (account and region) with their compiled patterns, so that
    /// publishing touches no disk unless a rule matches.
    rules: Mutex<RulesCache>,
    pub(crate) http: Client,
    pub(crate) state: Mutex<crate::delivery::LoopState>,
    pub(crate) file_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What a target ARN designates, or why Citadel cannot deliver to it.
pub(crate) fn parse_target_arn(arn: &str) -> Result<Destination, String> {
    if let Some(name) = arn.strip_prefix("arn:citadel:events:::file/") {
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        return if valid {
            Ok(Destination::File {
                name: name.to_owned(),
            })
        } else {
            Err(format!(
                "Target Arn {arn} is not valid: a file target name has 1 to 128 letters, digits, '.', '_' or '-' and does not start with '.'."
            ))
        };
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let ["arn", "aws", "events", _region, _account, resource] = parts.as_slice()
        && resource.starts_with("api-destination/")
    {
        return Ok(Destination::ApiDestination {
            arn: arn.to_owned(),
        });
    }
    Err(format!(
        "Target Arn {arn} is not supported by Citadel. Targets can be API destinations (arn:aws:events:<region>:<account>:api-destination/<name>/<id>) or operator files (arn:citadel:events:::file/<name>)."
    ))
}

/// The name in an API destination ARN `…:api-destination/<name>/<id>`.
pub(crate) fn destination_name(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    resource.strip_prefix("api-destination/")?.split('/').next()
}

/// The input shape a stored target applies.
pub(crate) fn input_shape(target: &Target) -> Result<InputShape, String> {
    let transformer = target.input_transformer.as_ref().map(|t| {
        (
            t.input_paths_map.clone().unwrap_or_default(),
            t.input_template.clone().unwrap_or_default(),
        )
    });
    InputShape::from_target(
        target.input.as_deref(),
        target.input_path.as_deref(),
        transformer.as_ref().map(|(m, t)| (m, t.as_str())),
    )
    .map_err(|e| e.to_string())
}

/// HttpParameters values starting with `$.` are JSONPaths into the event (dynamic values).
fn dynamic(value: &str, event: &serde_json::Value) -> String {
    if value.starts_with("$.")
        && let Ok(path) = JsonPath::parse(value)
    {
        return match path.select(event) {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
    }
    value.to_owned()
}

/// Whether an event may reach a rule in `state`.
fn state_admits(state: &str, event: &Event) -> bool {
    match state {
        STATE_WITH_READ_ONLY => true,
        "ENABLED" => {
            // Read-only management events go only to rules that ask for them.
            !(event.detail_type == CLOUDTRAIL_API_CALL
                && event.detail.get("readOnly") == Some(&serde_json::Value::Bool(true)))
        }
        _ => false,
    }
}

impl Bus {
    /// A bus over `store`. Reads nothing until used, so it can be built while the store is sealed.
    pub fn new(store: Arc<SealedStore>, config: BusConfig) -> Self {
        let http = Client::new(config.request_timeout, config.ca_bundle.clone());
        Bus {
            store,
            config,
            wake: tokio::sync::Notify::new(),
            rules: Mutex::new(RulesCache::default()),
            http,
            state: Mutex::new(crate::delivery::LoopState::default()),
            file_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, RulesCache> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The rules stored under `prefix` (one bus), from the cache or else from the store. A load
    /// that overlapped a rule change is returned but not cached: it may predate the change.
    async fn rules_of(&self, prefix: &str) -> Result<Arc<Vec<CachedRule>>, BusError> {
        let epoch = {
            let cache = self.cache();
            if let Some(rules) = cache.by_bus.get(prefix) {
                return Ok(rules.clone());
            }
            cache.epoch
        };
        let mut rules = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(prefix, after.as_deref(), 100).await?;
            let full = page.len() == 100;
            after = page.last().map(|(k, _)| k.clone());
            for (key, record) in page {
                let rule: RuleRecord = match serde_json::from_slice(&record.value) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(rule = %key, error = %e, "cannot decode a stored rule");
                        continue;
                    }
                };
                match Pattern::parse(&rule.event_pattern) {
                    Ok(p) => rules.push(CachedRule {
                        rule,
                        pattern: Arc::new(p),
                    }),
                    // Patterns are validated when stored; a stored one that fails is corrupt.
                    Err(e) => {
                        tracing::error!(rule = %key, error = %e, "stored event pattern does not parse");
                    }
                }
            }
            if !full {
                break;
            }
        }
        let rules = Arc::new(rules);
        let mut cache = self.cache();
        if cache.epoch == epoch {
            cache.by_bus.insert(prefix.to_owned(), rules.clone());
        }
        Ok(rules)
    }

    /// Drops the cached rules of the bus the rule stored at `key` belongs to. Called after every
    /// rule write through this instance.
    pub(crate) fn rule_changed(&self, key: &str) {
        let mut cache = self.cache();
        cache.epoch += 1;
        cache
            .by_bus
            .retain(|prefix, _| !key.starts_with(prefix.as_str()));
    }

    /// Reacts to a change of the storage key `key` made by any node: drops the cached rules of
    /// its bus, and wakes the delivery loop when an event was queued for delivery (on the
    /// leader, events published by other nodes are then delivered at once, not at the next
    /// poll).
    pub fn storage_key_changed(&self, key: &str) {
        if key.starts_with(crate::records::OUTBOX_PREFIX) {
            self.wake.notify_one();
        } else {
            self.rule_changed(key);
        }
    }

    /// Forgets every cached rule: for rule changes made outside this instance (another node, a
    /// restore).
    pub fn invalidate_rules(&self) {
        let mut cache = self.cache();
        cache.epoch += 1;
        cache.by_bus.clear();
    }

    /// Whether any rule of the default bus of `account` in `region` would consider an "AWS API
    /// Call via CloudTrail" event that is (or is not) `read_only`. Every recorded API call asks
    /// this first: building the event costs more than the call itself when no rule could want it.
    pub async fn admits_api_calls(
        &self,
        account: &str,
        region: &str,
        read_only: bool,
    ) -> Result<bool, BusError> {
        let rules = self
            .rules_of(&records::rules_prefix(region, account))
            .await?;
        Ok(rules.iter().any(|cached| match cached.rule.state.as_str() {
            STATE_WITH_READ_ONLY => true,
            "ENABLED" => !read_only,
            _ => false,
        }))
    }

    /// Publishes `event` on the default bus of its account and region: every enabled rule whose
    /// pattern matches gets one durable outbox entry per target, written atomically, and the
    /// delivery loop is woken. Returns once the entries are stored; delivery happens in the
    /// background. This is what Citadel's services call for the events they emit.
    pub async fn publish(&self, event: &Event) -> Result<PublishReport, BusError> {
        let value = event.to_value();
        let prefix = records::rules_prefix(&event.region, &event.account);
        let now = now_ms();
        let ingestion = citadel_events::format_time(time::OffsetDateTime::now_utc())
            .unwrap_or_else(|_| event.time.clone());
        let mut report = PublishReport::default();
        let mut ops = Vec::new();
        for cached in self.rules_of(&prefix).await?.iter() {
            let rule = &cached.rule;
            if !state_admits(&rule.state, event) || !cached.pattern.matches(&value) {
                continue;
            }
            let rule_arn = records::rule_arn(&event.region, &event.account, &rule.name);
            let ctx = DeliveryContext {
                rule_name: rule.name.clone(),
                rule_arn: rule_arn.clone(),
                ingestion_time: ingestion.clone(),
            };
            for target in &rule.targets {
                match plan(event, &value, rule, &rule_arn, target, &ctx, now) {
                    Ok(delivery) => ops.push(
                        put_json_op(delivery.outbox_key(), &delivery, Expect::Absent)
                            .map_err(BusError::Store)?,
                    ),
                    Err(reason) => tracing::error!(
                        rule = %rule.name,
                        target = target.id.as_deref().unwrap_or_default(),
                        %reason,
                        "a stored target cannot be planned; skipping it"
                    ),
                }
            }
            report.matched_rules.push(rule.name.clone());
        }
        report.deliveries = ops.len();
        if !ops.is_empty() {
            self.store.batch(ops).await?;
            self.wake.notify_one();
        }
        Ok(report)
    }
}

/// One outbox entry for `target` of `rule`.
fn plan(
    event: &Event,
    value: &serde_json::Value,
    rule: &RuleRecord,
    rule_arn: &str,
    target: &Target,
    ctx: &DeliveryContext,
    now: i64,
) -> Result<Delivery, String> {
    let arn = target.arn.as_deref().unwrap_or_default();
    let destination = parse_target_arn(arn)?;
    let body = input_shape(target)?.apply(event, ctx);
    let (headers, query, path) = target
        .http_parameters
        .as_ref()
        .map(|p| {
            let render = |m: &Option<std::collections::BTreeMap<String, String>>| {
                m.iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), dynamic(v, value)))
                    .collect::<Vec<_>>()
            };
            let path = p
                .path_parameter_values
                .iter()
                .flatten()
                .map(|v| dynamic(v, value))
                .collect::<Vec<_>>();
            (
                render(&p.header_parameters),
                render(&p.query_string_parameters),
                path,
            )
        })
        .unwrap_or_default();
    let retry = target.retry_policy.as_ref();
    Ok(Delivery {
        id: uuid::Uuid::new_v4().to_string(),
        event_id: event.id.clone(),
        account: event.account.clone(),
        region: event.region.clone(),
        rule_name: rule.name.clone(),
        rule_arn: rule_arn.to_owned(),
        target_id: target.id.clone().unwrap_or_default(),
        destination,
        body,
        headers,
        query,
        path,
        max_retries: retry
            .and_then(|r| r.maximum_retry_attempts)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_RETRIES),
        max_age_secs: retry
            .and_then(|r| r.maximum_event_age_in_seconds)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_AGE_SECS),
        accepted_ms: now,
        attempts: 0,
        next_attempt_ms: now,
        last_error: None,
    })
}

#[async_trait::async_trait]
impl citadel_events::Publisher for Bus {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        Bus::publish(self, event)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
