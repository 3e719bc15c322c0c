//! AWS-managed keys: `alias/aws/<service>` keys that Citadel's own services create on first use
//! in the caller's account and region (`alias/aws/ssm`, `alias/aws/secretsmanager`, …), as AWS
//! does. Their key policy lets every principal of the account use them *through that service
//! only* (`kms:ViaService` + `kms:CallerAccount`) and lets the account read their metadata; nobody
//! can manage them (no policy changes, disabling, deletion, aliases or tags), and they rotate
//! every year.
//!
//! Dev mode evaluates no policies, so [`allows`] applies the same rule by itself: the key stays
//! usable only through its service even there.

use std::collections::{BTreeMap, BTreeSet};

use citadel_api::{AwsError, RequestContext};
use citadel_store::{Expect, StoreError};

use crate::clock::MILLIS_PER_DAY;
use crate::material::Material;
use crate::names::PackedKeyId;
use crate::record::{self, AliasRecord, KeyRecord, MaterialInfo, MaterialOrigin, Rotation};
use crate::repo::material_op;
use crate::specs;
use crate::state::KeyState;
use crate::{Kms, errors};

/// `KeyManager` of AWS-managed keys.
pub const AWS: &str = "AWS";

/// AWS-managed keys rotate every year, and that cannot be changed.
const ROTATION_DAYS: i32 = 365;

/// The services that may create their AWS-managed key, with the description AWS gives it.
const SERVICES: &[(&str, &str)] = &[
    (
        "secretsmanager",
        "Default key that protects my Secrets Manager data when no other key is defined",
    ),
    (
        "ssm",
        "Default key that protects my SSM parameters when no other key is defined",
    ),
    (
        "acm",
        "Default key that protects my ACM private keys when no other key is defined",
    ),
];

/// The service whose AWS-managed key `alias` (`alias/aws/ssm`) is, if it is one.
pub fn service_of_alias(alias: &str) -> Option<&'static str> {
    let name = alias.strip_prefix("alias/aws/")?;
    SERVICES.iter().map(|(s, _)| *s).find(|s| *s == name)
}

/// The service an AWS-managed key belongs to (from its alias).
pub fn service_of(key: &KeyRecord) -> Option<&'static str> {
    key.aliases.iter().find_map(|a| service_of_alias(a))
}

/// The key policy AWS gives the AWS-managed key of `service` in `account`/`region`.
pub fn policy(service: &str, account: &str, region: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": format!("auto-{service}-1"),
        "Statement": [
            {
                "Sid": format!("Allow access through {service} for all principals in the account that are authorized to use {service}"),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": format!("{service}.{region}.amazonaws.com"),
                }},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    })
    .to_string()
}

/// The actions the AWS-managed key policy allows through the service.
const VIA_SERVICE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
    "kms:DescribeKey",
];

/// Whether an AWS-managed key's fixed policy allows `action` for this request: the same rule as
/// [`policy`], applied in every mode (in production the evaluator decides as well).
pub fn allows(key: &KeyRecord, action: &str, ctx: &RequestContext) -> bool {
    if key.account != ctx.principal.account_id {
        return false;
    }
    let through_service = service_of(key).is_some_and(|s| ctx.called_via == Some(s));
    let metadata = ["kms:Describe", "kms:Get", "kms:List"]
        .iter()
        .any(|p| action.starts_with(p))
        || action == "kms:RevokeGrant";
    metadata || (through_service && VIA_SERVICE_ACTIONS.contains(&action))
}

/// The refusal for an action an AWS-managed key's policy does not allow (AWS's message for a
/// key policy that allows nothing to the caller).
pub fn denied(key: &KeyRecord, action: &str, ctx: &RequestContext) -> AwsError {
    AwsError::new(
        400,
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
            ctx.principal.arn,
            key.arn()
        ),
    )
}

impl Kms {
    /// Creates the AWS-managed key of `service` in the caller's account and region unless it
    /// exists. Concurrent first uses race on the alias: the loser's key and material are never
    /// written (the alias, key and material go in one batch).
    pub(crate) async fn ensure_managed_key(
        &self,
        ctx: &RequestContext,
        service: &'static str,
    ) -> Result<(), AwsError> {
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let alias_name = format!("alias/aws/{service}");
        let alias_path = record::alias_path(account, region, &alias_name);
        if self.alias_at(&alias_path).await?.is_some() {
            return Ok(());
        }
        let description = SERVICES
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, d)| *d)
            .ok_or_else(errors::internal)?;
        let id = uuid::Uuid::new_v4();
        let key_id = PackedKeyId::parse(&id.to_string()).ok_or_else(errors::internal)?;
        let material = Material::generate(&key_id).map_err(|e| errors::crypto(&e))?;
        let now = self.now_ms();
        let rec = KeyRecord {
            account: account.clone(),
            region: region.clone(),
            id: id.to_string(),
            created_ms: now,
            description: description.to_owned(),
            state: KeyState::Enabled,
            key_spec: specs::SYMMETRIC_DEFAULT.to_owned(),
            key_usage: specs::ENCRYPT_DECRYPT.to_owned(),
            origin: record::ORIGIN.to_owned(),
            key_manager: AWS.to_owned(),
            deletion_ms: None,
            pending_window_days: None,
            policy: policy(service, account, region),
            tags: BTreeMap::new(),
            aliases: BTreeSet::from([alias_name.clone()]),
            rotation: Rotation {
                enabled: true,
                period_days: Some(ROTATION_DAYS),
                next_ms: Some(now.saturating_add(i64::from(ROTATION_DAYS) * MILLIS_PER_DAY)),
                enabled_ms: Some(now),
            },
            on_demand_rotations: 0,
            materials: vec![MaterialInfo {
                id: material.id_hex(),
                created_ms: now,
                origin: MaterialOrigin::Initial,
                import: None,
            }],
            grant_generation: 0,
            multi_region: None,
        };
        let alias = citadel_store::put_json_op(
            &alias_path,
            &AliasRecord {
                target: rec.id.clone(),
                created_ms: now,
                updated_ms: now,
            },
            Expect::Absent,
        )
        .map_err(errors::store)?;
        let result = self
            .commit(
                &rec.path(),
                None,
                Some(&rec),
                vec![material_op(&rec, &material), record::owner_op(&rec), alias],
            )
            .await;
        self.cache.invalidate_alias(&alias_path);
        match result {
            Ok(()) => {
                tracing::info!(key = %rec.arn(), service, "AWS-managed KMS key created");
                Ok(())
            }
            // Another request created it first: use theirs.
            Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(errors::store(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_services_have_managed_aliases() {
        assert_eq!(service_of_alias("alias/aws/ssm"), Some("ssm"));
        assert_eq!(
            service_of_alias("alias/aws/secretsmanager"),
            Some("secretsmanager")
        );
        assert_eq!(service_of_alias("alias/aws/ebs"), None);
        assert_eq!(service_of_alias("alias/ssm"), None);
    }

    #[test]
    fn the_policy_parses_as_a_key_policy() {
        let p = policy("ssm", "111122223333", "eu-west-1");
        citadel_iam::policy::Policy::parse(&p, citadel_iam::policy::PolicyKind::KeyPolicy).unwrap();
        assert!(p.contains("ssm.eu-west-1.amazonaws.com"));
    }
}
