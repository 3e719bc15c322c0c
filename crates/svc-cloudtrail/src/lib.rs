//! AWS CloudTrail, the part that reads the audit trail: `LookupEvents` (the 90-day event
//! history, answered from the audit index, scoped to the caller's account and region) and
//! `ListPublicKeys` (the keys that sign the digest files). Trails themselves (CreateTrail …)
//! are not configurable: every call is always recorded (see `citadel-audit`).
//!
//! The dispatcher authorizes `cloudtrail:<Operation>` on `*` before these run.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, RequestContext, ServiceHandler,
    ServiceSpec, Support,
};
use citadel_audit::index::{self, ATTRIBUTES, Query};
use citadel_model::{Blob, Timestamp, cloudtrail as ct};
use citadel_store::{SealedStore, StoreError};
use serde::{Deserialize, Serialize};

const IMPLEMENTED: &[(&str, Support)] = &[
    (
        "ListPublicKeys",
        Support::Partial("one signing key per deployment; it does not rotate"),
    ),
    (
        "LookupEvents",
        Support::Partial("management events only: EventCategory insight finds nothing"),
    ),
];

const DEFAULT_MAX_RESULTS: i32 = 50;

pub struct CloudTrail {
    store: Arc<SealedStore>,
}

impl std::fmt::Debug for CloudTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudTrail").finish_non_exhaustive()
    }
}

fn internal(e: &dyn std::fmt::Display) -> AwsError {
    tracing::error!(error = %e, "CloudTrail could not complete the request");
    AwsError::internal()
}

fn from_audit(e: citadel_audit::AuditError) -> AwsError {
    match e {
        citadel_audit::AuditError::Store(StoreError::Sealed) => AwsError::sealed(),
        citadel_audit::AuditError::Store(StoreError::Unavailable(reason)) => {
            tracing::warn!(%reason, "CloudTrail storage is unavailable");
            AwsError::storage_unavailable()
        }
        e => internal(&e),
    }
}

fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs()))
}

/// What a NextToken carries: where the page stopped, bound to the query's parameters.
#[derive(Serialize, Deserialize)]
struct Token {
    after: String,
    params: String,
}

fn invalid_token() -> AwsError {
    AwsError::new(
        400,
        "InvalidNextTokenException",
        "A token that is not valid, or a token that was previously used in a request with different parameters, was provided.",
    )
}

impl CloudTrail {
    pub fn new(store: Arc<SealedStore>) -> Self {
        CloudTrail { store }
    }

    async fn lookup_events(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<OperationOutput, AwsError> {
        let req: ct::LookupEventsRequest = citadel_api::json::decode(body)?;
        let max_results = req.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
        if !(1..=50).contains(&max_results) {
            return Err(AwsError::new(
                400,
                "InvalidMaxResultsException",
                "MaxResults must be between 1 and 50.",
            ));
        }
        req.validate()?;
        let attributes = req.lookup_attributes.clone().unwrap_or_default();
        if attributes.len() > 1 {
            return Err(AwsError::new(
                400,
                "InvalidLookupAttributesException",
                "You can specify only one lookup attribute.",
            ));
        }
        let attribute = match attributes.first() {
            None => None,
            Some(a) => {
                let key = a.attribute_key.clone().unwrap_or_default();
                if !ATTRIBUTES.contains(&key.as_str()) {
                    return Err(AwsError::new(
                        400,
                        "InvalidLookupAttributesException",
                        format!("{key} is not a valid lookup attribute key."),
                    ));
                }
                Some((key, a.attribute_value.clone().unwrap_or_default()))
            }
        };
        let start = req.start_time.map(Timestamp::epoch_seconds);
        let end = req.end_time.map(Timestamp::epoch_seconds);
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(AwsError::new(
                400,
                "InvalidTimeRangeException",
                "The start time must be before the end time.",
            ));
        }
        let params = hex::encode(citadel_crypto::sha256(
            serde_json::to_string(&(
                &attribute,
                start,
                end,
                &req.event_category,
                &ctx.principal.account_id,
                &ctx.region,
            ))
            .map_err(|e| internal(&e))?
            .as_bytes(),
        ));
        let after = match &req.next_token {
            None => None,
            Some(token) => {
                let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
                let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid_token())?;
                if token.params != params {
                    return Err(invalid_token());
                }
                Some(token.after)
            }
        };
        // Insights events are not produced: that category is always empty.
        if req.event_category.as_deref() == Some("insight") {
            let out = ct::LookupEventsResponse {
                events: Some(Vec::new()),
                next_token: None,
            };
            return Ok(OperationOutput::Json(
                serde_json::to_value(out).map_err(|e| internal(&e))?,
            ));
        }
        let query = Query {
            account: ctx.principal.account_id.clone(),
            region: ctx.region.clone(),
            attribute,
            start,
            end,
            max_results: usize::try_from(max_results).unwrap_or(50),
            after,
        };
        let page = index::lookup(&self.store, &query)
            .await
            .map_err(from_audit)?;
        let mut events = Vec::with_capacity(page.records.len());
        for record in &page.records {
            let event_time = citadel_audit::record::parse_time(&record.event_time)
                .map_or(0, |t| t.unix_timestamp());
            events.push(ct::Event {
                event_id: Some(record.event_id.clone()),
                event_name: Some(record.event_name.clone()),
                read_only: Some(record.read_only.to_string()),
                access_key_id: record.user_identity.access_key_id.clone(),
                event_time: Some(timestamp(event_time)),
                event_source: Some(record.event_source.clone()),
                username: citadel_audit::record::username(&record.user_identity),
                resources: Some(
                    record
                        .resources
                        .iter()
                        .map(|r| ct::Resource {
                            resource_type: Some(r.kind.clone()),
                            resource_name: Some(r.arn.clone()),
                        })
                        .collect(),
                ),
                cloud_trail_event: Some(serde_json::to_string(record).map_err(|e| internal(&e))?),
            });
        }
        let next_token =
            match page.next {
                None => None,
                Some(after) => Some(URL_SAFE_NO_PAD.encode(
                    serde_json::to_vec(&Token { after, params }).map_err(|e| internal(&e))?,
                )),
            };
        let out = ct::LookupEventsResponse {
            events: Some(events),
            next_token,
        };
        Ok(OperationOutput::Json(
            serde_json::to_value(out).map_err(|e| internal(&e))?,
        ))
    }

    async fn list_public_keys(&self, body: &[u8]) -> Result<OperationOutput, AwsError> {
        let req: ct::ListPublicKeysRequest = citadel_api::json::decode(body)?;
        req.validate()?;
        if req.next_token.is_some() {
            // Every key fits in one page, so no token was ever handed out.
            return Err(invalid_token());
        }
        let start = req.start_time.map(Timestamp::epoch_seconds);
        let end = req.end_time.map(Timestamp::epoch_seconds);
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(AwsError::new(
                400,
                "InvalidTimeRangeException",
                "The start time must be before the end time.",
            ));
        }
        let keys = citadel_audit::public_keys(&self.store)
            .await
            .map_err(from_audit)?;
        let list = keys
            .into_iter()
            // A key is valid from its creation on; it overlaps [start, end] unless it was
            // created after `end`.
            .filter(|k| end.is_none_or(|e| k.validity_start <= e))
            .map(|k| ct::PublicKey {
                value: Some(Blob::new(k.der)),
                validity_start_time: Some(timestamp(k.validity_start)),
                validity_end_time: None,
                fingerprint: Some(k.fingerprint),
            })
            .collect();
        let out = ct::ListPublicKeysResponse {
            public_key_list: Some(list),
            next_token: None,
        };
        Ok(OperationOutput::Json(
            serde_json::to_value(out).map_err(|e| internal(&e))?,
        ))
    }
}

#[async_trait::async_trait]
impl ServiceHandler for CloudTrail {
    fn spec(&self) -> &'static ServiceSpec {
        &ct::SPEC
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
        let OperationInput::Json(body) = input else {
            return Err(AwsError::serialization("CloudTrail takes a JSON body."));
        };
        match operation.name {
            "LookupEvents" => self.lookup_events(ctx, &body).await,
            "ListPublicKeys" => self.list_public_keys(&body).await,
            other => Err(AwsError::unsupported_operation("cloudtrail", other)),
        }
    }
}
