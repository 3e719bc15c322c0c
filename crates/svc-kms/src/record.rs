//! What KMS keeps in the sealed store, and where.
//!
//! ```text
//! kms/<account>/<region>/key/<key-id>                       KeyRecord (JSON; no secrets)
//! kms/<account>/<region>/material/<key-id>/<material-id>    1-byte format ‖ secret (`material`)
//! kms/<account>/<region>/alias/<alias-name>                 AliasRecord (JSON)
//! kms/<account>/<region>/grant/<key-id>/<grant-id>          GrantRecord (JSON; holds the token secret)
//! kms/<account>/<region>/import/<key-id>/<token-id>         ImportParams (JSON; holds the wrapping
//!                                                           private key of one GetParametersForImport)
//! kms/due/<epoch-ms, 20 digits>/<d|r|x>/<account>/<region>/<key-id> schedule index entry
//! ```
//!
//! Materials are separate records so the key record (policy, tags, description) never holds a
//! secret and can be handled, cached and logged about freely. The schedule index lists deletions
//! (`d`), automatic rotations (`r`) and expiries of imported material (`x`) by due time, so [`crate::Kms::run_due`] reads only what is
//! due instead of every key. Every change of a key record rewrites its index entries in the same
//! atomic batch.

use std::collections::{BTreeMap, BTreeSet};

use citadel_model::Timestamp;
use citadel_model::kms::{KeyMetadata, MultiRegionConfiguration, MultiRegionKey};
use serde::{Deserialize, Serialize};

use crate::specs;
use crate::state::KeyState;

pub const ORIGIN: &str = "AWS_KMS";
/// The origin of keys whose material the customer imports.
pub const EXTERNAL: &str = "EXTERNAL";

pub fn key_path(account: &str, region: &str, id: &str) -> String {
    format!("kms/{account}/{region}/key/{id}")
}

pub fn keys_prefix(account: &str, region: &str) -> String {
    format!("kms/{account}/{region}/key/")
}

pub fn material_prefix(account: &str, region: &str, key_id: &str) -> String {
    format!("kms/{account}/{region}/material/{key_id}/")
}

pub fn material_path(account: &str, region: &str, key_id: &str, material_id: &str) -> String {
    format!("kms/{account}/{region}/material/{key_id}/{material_id}")
}

pub fn import_prefix(account: &str, region: &str, key_id: &str) -> String {
    format!("kms/{account}/{region}/import/{key_id}/")
}

pub fn import_path(account: &str, region: &str, key_id: &str, token_id: &str) -> String {
    format!("kms/{account}/{region}/import/{key_id}/{token_id}")
}

pub fn alias_path(account: &str, region: &str, alias_name: &str) -> String {
    format!("kms/{account}/{region}/alias/{alias_name}")
}

pub fn aliases_prefix(account: &str, region: &str) -> String {
    format!("kms/{account}/{region}/alias/")
}

pub fn grant_prefix(account: &str, region: &str, key_id: &str) -> String {
    format!("kms/{account}/{region}/grant/{key_id}/")
}

pub fn grants_prefix(account: &str, region: &str) -> String {
    format!("kms/{account}/{region}/grant/")
}

pub fn grant_path(account: &str, region: &str, key_id: &str, grant_id: &str) -> String {
    format!("kms/{account}/{region}/grant/{key_id}/{grant_id}")
}

/// Which account owns key `id` in `region` (key ids are UUIDs, unique everywhere): how Decrypt
/// without a KeyId finds another account's key from the id in the ciphertext header.
pub fn owner_path(region: &str, id: &str) -> String {
    format!("kms/owner/{region}/{id}")
}

/// The index write that records `rec`'s owner (in the batch creating the key).
pub fn owner_op(rec: &KeyRecord) -> citadel_store::Op {
    citadel_store::Op::put(
        owner_path(&rec.region, &rec.id),
        rec.account.as_bytes().to_vec(),
        citadel_store::Expect::Absent,
    )
}

pub const DUE_PREFIX: &str = "kms/due/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueKind {
    Deletion,
    Rotation,
    /// Imported material reaches its `ValidTo`.
    Expiry,
}

impl DueKind {
    fn tag(self) -> &'static str {
        match self {
            DueKind::Deletion => "d",
            DueKind::Rotation => "r",
            DueKind::Expiry => "x",
        }
    }
}

/// An entry of the schedule index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueEntry {
    pub at_ms: i64,
    pub kind: DueKind,
    pub account: String,
    pub region: String,
    pub key_id: String,
}

impl DueEntry {
    /// Zero-padded so that the store's byte order is time order.
    pub fn path(&self) -> String {
        format!(
            "{DUE_PREFIX}{:020}/{}/{}/{}/{}",
            self.at_ms.max(0),
            self.kind.tag(),
            self.account,
            self.region,
            self.key_id
        )
    }

    pub fn parse(path: &str) -> Option<DueEntry> {
        let rest = path.strip_prefix(DUE_PREFIX)?;
        let mut parts = rest.splitn(5, '/');
        let at_ms = parts.next()?.parse().ok()?;
        let kind = match parts.next()? {
            "d" => DueKind::Deletion,
            "r" => DueKind::Rotation,
            "x" => DueKind::Expiry,
            _ => return None,
        };
        Some(DueEntry {
            at_ms,
            kind,
            account: parts.next()?.to_owned(),
            region: parts.next()?.to_owned(),
            key_id: parts.next()?.to_owned(),
        })
    }
}

/// How a material came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialOrigin {
    /// Created with the key.
    Initial,
    /// Created by the scheduled automatic rotation.
    Automatic,
    /// Created by `RotateKeyOnDemand`.
    OnDemand,
}

/// Public facts about one material of a key (the secret lives in its own record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// 64 lowercase hex digits.
    pub id: String,
    pub created_ms: i64,
    pub origin: MaterialOrigin,
    /// For material imported into an `EXTERNAL` key (see [`crate::import`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportFacts>,
}

impl MaterialInfo {
    /// Imported as `NEW_KEY_MATERIAL` and waiting for `RotateKeyOnDemand` to make it current.
    pub fn is_pending_rotation(&self) -> bool {
        self.import.as_ref().is_some_and(|i| i.pending_rotation)
    }

    /// Whether the secret is in the store (false once imported material was deleted or expired).
    pub fn is_present(&self) -> bool {
        self.import.as_ref().is_none_or(|i| i.imported)
    }
}

/// What KMS keeps about an imported material besides its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFacts {
    /// The secret is in the store. Deleting or expiring the material clears this but keeps the
    /// entry: only the same material can be imported again, and old ciphertexts then decrypt.
    pub imported: bool,
    /// `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`, while imported.
    pub expiration_model: Option<String>,
    /// When the material expires, with `KEY_MATERIAL_EXPIRES`.
    pub valid_to_ms: Option<i64>,
    /// `KeyMaterialDescription`, as last given.
    pub description: Option<String>,
    /// Imported as new material for an on-demand rotation that has not happened yet.
    pub pending_rotation: bool,
}

/// Automatic rotation settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub enabled: bool,
    pub period_days: Option<i32>,
    /// When the next automatic rotation is due, while enabled.
    pub next_ms: Option<i64>,
    /// When automatic rotation was last enabled (the schedule counts from it until the first
    /// automatic rotation).
    #[serde(default)]
    pub enabled_ms: Option<i64>,
}

/// A KMS key as stored. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub account: String,
    pub region: String,
    /// The UUID.
    pub id: String,
    pub created_ms: i64,
    pub description: String,
    pub state: KeyState,
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    /// `CUSTOMER` or `AWS`.
    pub key_manager: String,
    pub deletion_ms: Option<i64>,
    pub pending_window_days: Option<i32>,
    /// The `default` key policy, exactly as given (or the default policy's text).
    pub policy: String,
    pub tags: BTreeMap<String, String>,
    /// Names (`alias/…`) of the aliases that point here. Kept in step with the alias records in
    /// the same batches, so deleting the key can delete its aliases without a scan.
    pub aliases: BTreeSet<String>,
    pub rotation: Rotation,
    pub on_demand_rotations: u32,
    /// Every material, oldest first; all of them stay usable for decryption.
    pub materials: Vec<MaterialInfo>,
    /// Bumped by every grant change, so that grant writes compare-and-swap on the key record
    /// (the per-key grant limit and `Name` idempotency are decided against a consistent set).
    #[serde(default)]
    pub grant_generation: u64,
    /// The multi-Region facts of a multi-Region key (`None` for a single-Region key). Every
    /// member of a multi-Region key (primary and replicas) holds the whole configuration, and
    /// every change of it rewrites all members in one batch, so DescribeKey in any Region reads
    /// one record. See [`crate::multi_region`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region: Option<MultiRegion>,
}

/// Where the members of a multi-Region key live (all in the key's account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegion {
    pub primary_region: String,
    /// The Regions of the replicas (never the primary's).
    pub replica_regions: BTreeSet<String>,
}

impl KeyRecord {
    pub fn arn(&self) -> String {
        key_arn(&self.region, &self.account, &self.id)
    }

    pub fn path(&self) -> String {
        key_path(&self.account, &self.region, &self.id)
    }

    /// The material new ciphertexts use: the newest one, except imported material still waiting
    /// for its on-demand rotation.
    pub fn current_material(&self) -> Option<&MaterialInfo> {
        self.materials
            .iter()
            .rev()
            .find(|m| !m.is_pending_rotation())
    }

    /// The earliest `ValidTo` of the imported materials present, if any expires (the scheduler's
    /// next expiry).
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.expiry_ms(true)
    }

    /// The earliest `ValidTo` of the materials present, with or without those pending rotation
    /// (`KeyMetadata.ValidTo` counts only the materials permanently associated with the key).
    fn expiry_ms(&self, with_pending: bool) -> Option<i64> {
        self.materials
            .iter()
            .filter(|m| with_pending || !m.is_pending_rotation())
            .filter_map(|m| m.import.as_ref())
            .filter(|i| i.imported)
            .filter_map(|i| i.valid_to_ms)
            .min()
    }

    /// `ExpirationModel` of an `EXTERNAL` key: whether any imported material expires (`None`
    /// before the first import and for other origins).
    pub fn expiration_model(&self) -> Option<String> {
        if self.origin != EXTERNAL || !self.materials.iter().any(|m| m.is_present()) {
            return None;
        }
        Some(
            if self.expiry_ms(false).is_some() {
                "KEY_MATERIAL_EXPIRES"
            } else {
                "KEY_MATERIAL_DOES_NOT_EXPIRE"
            }
            .to_owned(),
        )
    }

    /// The key's row of the key-spec table (`None` only for a record written by a newer
    /// version with a spec this one does not know).
    pub fn spec(&self) -> Option<&'static specs::KeySpec> {
        specs::key_spec(&self.key_spec)
    }

    /// Whether this is a symmetric encryption key.
    pub fn is_symmetric(&self) -> bool {
        self.key_spec == specs::SYMMETRIC_DEFAULT
    }

    /// Whether this is a replica of a multi-Region key (its shared properties, such as material
    /// and rotation, follow the primary and are written by the primary's changes).
    pub fn is_replica(&self) -> bool {
        self.multi_region
            .as_ref()
            .is_some_and(|m| m.primary_region != self.region)
    }

    /// The Regions of this multi-Region primary key's replicas (empty for any other key).
    pub fn replica_regions(&self) -> impl Iterator<Item = &String> {
        self.multi_region
            .as_ref()
            .filter(|m| m.primary_region == self.region)
            .into_iter()
            .flat_map(|m| m.replica_regions.iter())
    }

    /// The schedule entries this record must have in the index.
    pub fn due_entries(&self) -> BTreeSet<DueEntry> {
        let entry = |at_ms, kind| DueEntry {
            at_ms,
            kind,
            account: self.account.clone(),
            region: self.region.clone(),
            key_id: self.id.clone(),
        };
        let mut out = BTreeSet::new();
        if self.state == KeyState::PendingDeletion
            && let Some(at) = self.deletion_ms
        {
            out.insert(entry(at, DueKind::Deletion));
        }
        // A replica's rotation settings mirror its primary's; only the primary rotates (and
        // its rotation reaches the replicas in the same batch).
        if self.rotation.enabled
            && !self.is_replica()
            && let Some(at) = self.rotation.next_ms
        {
            out.insert(entry(at, DueKind::Rotation));
        }
        if let Some(at) = self.next_expiry_ms() {
            out.insert(entry(at, DueKind::Expiry));
        }
        out
    }

    /// `KeyMetadata` exactly as DescribeKey and CreateKey return it.
    pub fn metadata(&self) -> KeyMetadata {
        let algorithms = |usage: &str| {
            (self.key_usage == usage).then(|| {
                self.spec()
                    .map(|s| s.algorithms(usage))
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect::<Vec<_>>()
            })
        };
        KeyMetadata {
            aws_account_id: Some(self.account.clone()),
            key_id: Some(self.id.clone()),
            arn: Some(self.arn()),
            creation_date: Some(Timestamp::from_epoch_millis(self.created_ms)),
            enabled: Some(self.state == KeyState::Enabled),
            description: Some(self.description.clone()),
            key_usage: Some(self.key_usage.clone()),
            key_state: Some(self.state.as_str().to_owned()),
            deletion_date: match self.state {
                KeyState::PendingDeletion => self.deletion_ms.map(Timestamp::from_epoch_millis),
                _ => None,
            },
            origin: Some(self.origin.clone()),
            key_manager: Some(self.key_manager.clone()),
            customer_master_key_spec: Some(self.key_spec.clone()),
            key_spec: Some(self.key_spec.clone()),
            encryption_algorithms: algorithms(specs::ENCRYPT_DECRYPT),
            signing_algorithms: algorithms(specs::SIGN_VERIFY),
            mac_algorithms: algorithms(specs::GENERATE_VERIFY_MAC),
            key_agreement_algorithms: algorithms(specs::KEY_AGREEMENT),
            multi_region: Some(self.multi_region.is_some()),
            multi_region_configuration: self.multi_region.as_ref().map(|m| {
                let member = |region: &str| MultiRegionKey {
                    arn: Some(key_arn(region, &self.account, &self.id)),
                    region: Some(region.to_owned()),
                };
                let kind = if self.is_replica() {
                    "REPLICA"
                } else {
                    "PRIMARY"
                };
                MultiRegionConfiguration {
                    multi_region_key_type: Some(kind.to_owned()),
                    primary_key: Some(member(&m.primary_region)),
                    replica_keys: Some(m.replica_regions.iter().map(|r| member(r)).collect()),
                }
            }),
            // The primary's waiting period starts when its last replica is gone.
            pending_deletion_window_in_days: match self.state {
                KeyState::PendingReplicaDeletion => self.pending_window_days,
                _ => None,
            },
            current_key_material_id: self.current_material().map(|m| m.id.clone()),
            expiration_model: self.expiration_model(),
            valid_to: self.expiry_ms(false).map(Timestamp::from_epoch_millis),
            ..KeyMetadata::default()
        }
    }
}

/// A grant as stored. Holds the secret that grant tokens are authenticated with, so its
/// `Debug` leaves that out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// 64 lowercase hex digits.
    pub id: String,
    /// The key id (UUID) the grant is for.
    pub key_id: String,
    pub name: Option<String>,
    pub created_ms: i64,
    pub grantee: String,
    pub retiring: Option<String>,
    /// Grant operations, in the order given, without duplicates.
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraint>,
    /// The account that created the grant.
    pub issuing_account: String,
    /// 64 hex digits: the key grant tokens are authenticated with.
    pub token_secret: String,
}

impl std::fmt::Debug for GrantRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantRecord")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("grantee", &self.grantee)
            .field("retiring", &self.retiring)
            .field("operations", &self.operations)
            .field("constraints", &self.constraints)
            .finish_non_exhaustive()
    }
}

/// An encryption-context grant constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantConstraint {
    /// The request's encryption context must be exactly this one.
    Equals(BTreeMap<String, String>),
    /// The request's encryption context must include every pair of this one.
    Subset(BTreeMap<String, String>),
}

/// An alias as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// The key id (UUID) it points to.
    pub target: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

pub fn key_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{id}")
}

pub fn alias_arn(region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias_name}")
}

/// The policy AWS attaches when CreateKey gets none, byte for byte as GetKeyPolicy returns it: it
/// lets the account's IAM policies decide.
pub fn default_policy(account: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_sort_by_time_and_parse_back() {
        let e = |at_ms| DueEntry {
            at_ms,
            kind: DueKind::Rotation,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            key_id: "k".into(),
        };
        let (a, b) = (e(999), e(1_000_000));
        assert!(a.path() < b.path());
        assert_eq!(DueEntry::parse(&a.path()).unwrap(), a);
        assert!(DueEntry::parse("kms/due/x/d/a/r/k").is_none());
        assert!(DueEntry::parse("kms/due/1/q/a/r/k").is_none());
    }

    #[test]
    fn default_policy_is_json_naming_the_account_root() {
        let p: serde_json::Value = serde_json::from_str(&default_policy("111122223333")).unwrap();
        assert_eq!(
            p["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(p["Statement"][0]["Action"], "kms:*");
        assert_eq!(p["Id"], "key-default-1");
    }
}
