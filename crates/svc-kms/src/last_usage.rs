//! GetKeyLastUsage: the last successful cryptographic operation of each key.
//!
//! Recorded in memory on the request path (no disk), and written by the scheduler with the usage
//! ledger to `kms/lastused/<region>/<key-id>` (key ids are unique within a region, whatever the
//! account). A crash forgets at most one scheduler interval of "last use", never a request. The
//! record names the request (`KmsRequestId`) and its audit record (`CloudTrailEventId`, derived
//! from the request id as the audit trail derives it). Citadel tracks every key from its
//! creation, so `TrackingStartDate` is the key's creation date.

use std::collections::HashMap;
use std::sync::Mutex;

use citadel_api::{AwsError, RequestContext};
use citadel_model::{Timestamp, kms};
use citadel_store::{Expect, StoreError};
use serde::{Deserialize, Serialize};

use crate::errors::KmsError;
use crate::names::{KeyRef, parse_key_ref};
use crate::state::KeyOp;
use crate::{Kms, errors};

/// The operations AWS counts as a key's cryptographic use.
pub const CRYPTOGRAPHIC_OPERATIONS: &[&str] = &[
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// One key's last use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUse {
    pub at_ms: i64,
    pub operation: String,
    pub request_id: String,
}

fn path(region: &str, key_id: &str) -> String {
    format!("kms/lastused/{region}/{key_id}")
}

/// Last uses not yet written, by (region, key id).
#[derive(Debug, Default)]
pub struct Tracker {
    pending: Mutex<HashMap<(String, String), LastUse>>,
}

impl Tracker {
    /// Notes a successful cryptographic operation (the hot path: no I/O).
    pub fn used(&self, region: &str, key_id: &str, operation: &str, at_ms: i64, request_id: &str) {
        if !CRYPTOGRAPHIC_OPERATIONS.contains(&operation) {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(
                (region.to_owned(), key_id.to_owned()),
                LastUse {
                    at_ms,
                    operation: operation.to_owned(),
                    request_id: request_id.to_owned(),
                },
            );
        }
    }

    fn get(&self, region: &str, key_id: &str) -> Option<LastUse> {
        self.pending
            .lock()
            .ok()?
            .get(&(region.to_owned(), key_id.to_owned()))
            .cloned()
    }
}

impl Kms {
    /// Writes the last uses noted since the previous flush (the scheduler calls this).
    pub async fn flush_last_usage(&self) -> Result<(), KmsError> {
        let pending: Vec<((String, String), LastUse)> = match self.last_usage.pending.lock() {
            Ok(p) => p.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        for ((region, key_id), used) in pending {
            let p = path(&region, &key_id);
            for _ in 0..crate::repo::MAX_ATTEMPTS {
                let current = self.store.get_json_versioned::<LastUse>(&p).await?;
                let expect = match &current {
                    // A newer use is already stored (another node's): keep it.
                    Some(v) if v.value.at_ms > used.at_ms => break,
                    Some(v) => Expect::Version(v.version),
                    None => Expect::Absent,
                };
                match self.store.put_json(&p, &used, expect).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Forget it unless a newer use arrived meanwhile.
            if let Ok(mut pending) = self.last_usage.pending.lock()
                && pending.get(&(region.clone(), key_id.clone())) == Some(&used)
            {
                pending.remove(&(region, key_id));
            }
        }
        Ok(())
    }

    pub(crate) async fn get_key_last_usage(
        &self,
        ctx: &RequestContext,
        req: kms::GetKeyLastUsageRequest,
    ) -> Result<kms::GetKeyLastUsageResponse, AwsError> {
        let key_id = req.key_id.as_deref().unwrap_or_default();
        if let KeyRef::Alias { .. } = parse_key_ref(key_id, &ctx.principal.account_id, &ctx.region)?
        {
            // Unconfirmed AWS wording.
            return Err(AwsError::validation(
                "Alias names are not supported by GetKeyLastUsage: specify a key ID or key ARN.",
            ));
        }
        let r = self
            .authorized_key(ctx, Some(key_id), "kms:GetKeyLastUsage", KeyOp::DescribeKey)
            .await?;
        let rec = &r.key.record;
        let used = match self.last_usage.get(&rec.region, &rec.id) {
            Some(u) => Some(u),
            None => self
                .store
                .get_json::<LastUse>(&path(&rec.region, &rec.id))
                .await
                .map_err(errors::store)?,
        };
        let created = Timestamp::from_epoch_millis(rec.created_ms);
        Ok(kms::GetKeyLastUsageResponse {
            key_id: Some(rec.id.clone()),
            key_last_usage: used.map(|u| kms::KeyLastUsageData {
                operation: Some(u.operation),
                timestamp: Some(Timestamp::from_epoch_millis(u.at_ms)),
                cloud_trail_event_id: Some(citadel_api::cloudtrail_event_id(&u.request_id)),
                kms_request_id: Some(u.request_id),
            }),
            tracking_start_date: Some(created),
            key_creation_date: Some(created),
        })
    }
}
