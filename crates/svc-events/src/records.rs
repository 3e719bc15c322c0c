//! What the service keeps in the sealed store, and where.
//!
//! Layout (every value is sealed by the store's barrier):
//!
//! | key | value |
//! |---|---|
//! | `events/<region>/<account>/rule/default/<name>` | [`RuleRecord`] (targets included, so a rule and its targets change atomically) |
//! | `events/<region>/<account>/connection/<name>` | [`ConnectionRecord`] (auth secrets included) |
//! | `events/<region>/<account>/api-destination/<name>` | [`ApiDestinationRecord`] |
//! | `events/outbox/<accepted-ms hex>-<delivery id>` | [`Delivery`] waiting to be delivered |
//! | `events/dead-letter/<delivery id>` | [`DeadLetter`] whose retries are exhausted |

use citadel_model::SensitiveString;
use citadel_model::events::Target;
use serde::{Deserialize, Serialize};

/// The only event bus Citadel has.
pub const DEFAULT_BUS: &str = "default";

pub(crate) const OUTBOX_PREFIX: &str = "events/outbox/";
pub(crate) const DEAD_LETTER_PREFIX: &str = "events/dead-letter/";

pub(crate) fn scope(region: &str, account: &str) -> String {
    format!("events/{region}/{account}/")
}

pub(crate) fn rules_prefix(region: &str, account: &str) -> String {
    format!("{}rule/{DEFAULT_BUS}/", scope(region, account))
}

pub(crate) fn rule_key(region: &str, account: &str, name: &str) -> String {
    format!("{}{name}", rules_prefix(region, account))
}

pub(crate) fn connections_prefix(region: &str, account: &str) -> String {
    format!("{}connection/", scope(region, account))
}

pub(crate) fn connection_key(region: &str, account: &str, name: &str) -> String {
    format!("{}{name}", connections_prefix(region, account))
}

pub(crate) fn destinations_prefix(region: &str, account: &str) -> String {
    format!("{}api-destination/", scope(region, account))
}

pub(crate) fn destination_key(region: &str, account: &str, name: &str) -> String {
    format!("{}{name}", destinations_prefix(region, account))
}

pub fn bus_arn(region: &str, account: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{DEFAULT_BUS}")
}

pub fn rule_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{name}")
}

/// A rule on the default bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleRecord {
    pub name: String,
    pub event_pattern: String,
    /// `ENABLED`, `DISABLED` or `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`.
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub created_by: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The targets as PutTargets received them (ListTargetsByRule echoes them).
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// How a connection authorizes requests. Secrets are sealed at rest by the store and never
/// leave through the API, logs or `Debug`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ConnectionAuth {
    ApiKey {
        name: String,
        value: SensitiveString,
    },
    Basic {
        username: String,
        password: SensitiveString,
    },
    OAuthClientCredentials {
        client_id: String,
        client_secret: SensitiveString,
        authorization_endpoint: String,
        http_method: String,
        #[serde(default)]
        oauth_http: HttpParams,
    },
}

/// Extra header, query-string and body parameters a connection adds to every request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HttpParams {
    pub headers: Vec<Param>,
    pub query: Vec<Param>,
    pub body: Vec<Param>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: SensitiveString,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    /// `API_KEY`, `BASIC` or `OAUTH_CLIENT_CREDENTIALS`.
    pub authorization_type: String,
    pub auth: ConnectionAuth,
    #[serde(default)]
    pub invocation_http: HttpParams,
    /// `AUTHORIZED`, `AUTHORIZING`, `DEAUTHORIZED`.
    pub state: String,
    pub state_reason: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub authorized_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiDestinationRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub connection_arn: String,
    pub invocation_endpoint: String,
    pub http_method: String,
    pub rate_limit_per_second: i32,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// An API destination, by ARN (looked up at delivery time, so secrets stay in one place).
    ApiDestination { arn: String },
    /// An operator file `<file-target dir>/<name>.jsonl`.
    File { name: String },
}

/// One event on its way to one target: the durable outbox entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub rule_name: String,
    pub rule_arn: String,
    pub target_id: String,
    pub destination: Destination,
    /// The body, already shaped by Input / InputPath / InputTransformer.
    pub body: String,
    /// Header / query-string parameters of the target's HttpParameters.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// PathParameterValues, substituted for the `*`s of the endpoint in order.
    #[serde(default)]
    pub path: Vec<String>,
    pub max_retries: u32,
    pub max_age_secs: u64,
    pub accepted_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

impl Delivery {
    pub(crate) fn outbox_key(&self) -> String {
        let accepted = u64::try_from(self.accepted_ms).unwrap_or(0);
        format!("{OUTBOX_PREFIX}{accepted:016x}-{}", self.id)
    }

    pub(crate) fn dead_letter_key(&self) -> String {
        format!("{DEAD_LETTER_PREFIX}{}", self.id)
    }
}

/// A delivery whose retries ran out, kept until an operator redrives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub delivery: Delivery,
    pub reason: String,
    pub dead_ms: i64,
}
