//! Instance profiles: containers for one role that EC2-style workloads receive credentials
//! through. A profile lists its role and the role lists its profiles, and both records change
//! together under compare-and-swap, so a role in a profile cannot be deleted and a profile with
//! a role cannot be deleted, whatever runs concurrently.

use citadel_api::AwsError;
use citadel_store::{Expect, Op, Versioned, put_json_op};

use super::names::{
    limit_exceeded, name_key, validate_instance_profile_name, validate_path, validate_tags,
};
use super::records::{
    InstanceProfileRecord, RoleRecord, entity_path, instance_profile_path, instance_profile_prefix,
};
use super::repo::{
    TxError, delete_conflict, entity_not_found, merge_tags, no_such_entity, paginate, reading,
    remove_tags, retrying, role_info, sorted_tags, unique_id,
};
use super::{EntityKind, InstanceProfileInfo, Page, PageRequest, RoleInfo, Tag};
use crate::credentials::{IdentityStore, now_secs};

/// Instance profiles one account may have.
pub const INSTANCE_PROFILES_PER_ACCOUNT: usize = 1000;
/// Roles one instance profile may contain (a fixed quota on AWS).
pub const ROLES_PER_INSTANCE_PROFILE: usize = 1;

fn profile_not_found(name: &str) -> AwsError {
    no_such_entity(format!("Instance Profile {name} cannot be found."))
}

/// The ARN of an instance profile: `arn:aws:iam::ACCT:instance-profile{path}{name}`.
pub fn instance_profile_arn(account_id: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:instance-profile{path}{name}")
}

impl IdentityStore {
    async fn load_profile(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(Versioned<InstanceProfileRecord>, String), TxError> {
        let key = instance_profile_path(account_id, &name_key(name));
        match self.get_versioned::<InstanceProfileRecord>(&key).await? {
            Some(v) => Ok((v, key)),
            None => Err(profile_not_found(name).into()),
        }
    }

    /// The profile as the API shows it, with its role (a role that vanished is left out).
    pub(super) async fn profile_info(
        &self,
        account_id: &str,
        p: &InstanceProfileRecord,
    ) -> Result<InstanceProfileInfo, TxError> {
        let mut roles: Vec<RoleInfo> = Vec::with_capacity(p.roles.len());
        for r in &p.roles {
            let key = entity_path(account_id, EntityKind::Role, r);
            if let Some(role) = self.get_versioned::<RoleRecord>(&key).await? {
                roles.push(role_info(account_id, &role.value));
            }
        }
        Ok(InstanceProfileInfo {
            name: p.name.clone(),
            id: p.id.clone(),
            path: p.path.clone(),
            arn: instance_profile_arn(account_id, &p.path, &p.name),
            created: p.created,
            tags: p.tags.clone(),
            roles,
        })
    }

    pub async fn create_instance_profile(
        &self,
        account_id: &str,
        name: &str,
        path: Option<&str>,
        tags: &[Tag],
    ) -> Result<InstanceProfileInfo, AwsError> {
        validate_instance_profile_name("instanceProfileName", name)?;
        let path = path.unwrap_or("/");
        validate_path("path", path)?;
        validate_tags(tags)?;
        let id = unique_id("AIPA")?;
        let id = id.as_str();
        retrying(|| async move {
            let key = instance_profile_path(account_id, &name_key(name));
            if self.store.get(&key).await?.is_some() {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Instance Profile {name} already exists."),
                )
                .into());
            }
            if self
                .count_under(
                    &instance_profile_prefix(account_id),
                    INSTANCE_PROFILES_PER_ACCOUNT,
                )
                .await?
                >= INSTANCE_PROFILES_PER_ACCOUNT
            {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for InstanceProfilesPerAccount: {INSTANCE_PROFILES_PER_ACCOUNT}"
                ))
                .into());
            }
            let record = InstanceProfileRecord {
                name: name.to_owned(),
                id: id.to_owned(),
                path: path.to_owned(),
                created: now_secs(),
                tags: tags.to_vec(),
                roles: Vec::new(),
            };
            self.commit(vec![put_json_op(key, &record, Expect::Absent)?])
                .await?;
            self.profile_info(account_id, &record).await
        })
        .await
    }

    pub async fn get_instance_profile(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<InstanceProfileInfo, AwsError> {
        reading(async {
            let (v, _) = self.load_profile(account_id, name).await?;
            self.profile_info(account_id, &v.value).await
        })
        .await
    }

    pub async fn list_instance_profiles(
        &self,
        account_id: &str,
        path_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<InstanceProfileInfo>, AwsError> {
        reading(async {
            let profiles = self
                .list_values::<InstanceProfileRecord>(&instance_profile_prefix(account_id))
                .await?;
            let matching: Vec<(String, InstanceProfileRecord)> = profiles
                .into_iter()
                .filter(|(_, p)| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
                .collect();
            let records = paginate(matching, page);
            let mut items = Vec::with_capacity(records.items.len());
            for p in &records.items {
                items.push(self.profile_info(account_id, p).await?);
            }
            Ok(Page {
                items,
                marker: records.marker,
            })
        })
        .await
    }

    /// Deletes an instance profile that contains no role.
    pub async fn delete_instance_profile(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_profile(account_id, name).await?;
            if !v.value.roles.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must remove roles from instance profile first.",
                )
                .into());
            }
            self.commit(vec![Op::delete(key, Expect::Version(v.version))])
                .await
        })
        .await
    }

    /// Puts a role into an instance profile, which can hold only one.
    pub async fn add_role_to_instance_profile(
        &self,
        account_id: &str,
        profile: &str,
        role: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (p, pkey) = self.load_profile(account_id, profile).await?;
            let (r, rkey) = self.load_role(account_id, role).await?;
            let (mut p_rec, mut r_rec) = (p.value, r.value);
            if p_rec.roles.len() >= ROLES_PER_INSTANCE_PROFILE {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {ROLES_PER_INSTANCE_PROFILE}"
                ))
                .into());
            }
            let profile_key = name_key(&p_rec.name);
            p_rec.roles.push(name_key(&r_rec.core.name));
            if !r_rec.instance_profiles.contains(&profile_key) {
                r_rec.instance_profiles.push(profile_key);
            }
            self.commit(vec![
                put_json_op(pkey, &p_rec, Expect::Version(p.version))?,
                put_json_op(rkey, &r_rec, Expect::Version(r.version))?,
            ])
            .await
        })
        .await
    }

    /// Takes a role out of an instance profile.
    pub async fn remove_role_from_instance_profile(
        &self,
        account_id: &str,
        profile: &str,
        role: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (p, pkey) = self.load_profile(account_id, profile).await?;
            let (r, rkey) = self.load_role(account_id, role).await?;
            let (mut p_rec, mut r_rec) = (p.value, r.value);
            let role_key = name_key(&r_rec.core.name);
            if !p_rec.roles.contains(&role_key) {
                return Err(entity_not_found(EntityKind::Role, role).into());
            }
            let profile_key = name_key(&p_rec.name);
            p_rec.roles.retain(|x| *x != role_key);
            r_rec.instance_profiles.retain(|x| *x != profile_key);
            self.commit(vec![
                put_json_op(pkey, &p_rec, Expect::Version(p.version))?,
                put_json_op(rkey, &r_rec, Expect::Version(r.version))?,
            ])
            .await
        })
        .await
    }

    /// The instance profiles a role is in.
    pub async fn list_instance_profiles_for_role(
        &self,
        account_id: &str,
        role: &str,
        page: &PageRequest,
    ) -> Result<Page<InstanceProfileInfo>, AwsError> {
        reading(async {
            let (r, _) = self.load_role(account_id, role).await?;
            let mut items = Vec::new();
            for key in &r.value.instance_profiles {
                let path = instance_profile_path(account_id, key);
                if let Some(p) = self.get_versioned::<InstanceProfileRecord>(&path).await? {
                    items.push((key.clone(), self.profile_info(account_id, &p.value).await?));
                }
            }
            Ok(paginate(items, page))
        })
        .await
    }

    /// The instance profiles of a role, for `GetAccountAuthorizationDetails`.
    pub(super) async fn role_profiles(
        &self,
        account_id: &str,
        role: &RoleRecord,
    ) -> Result<Vec<InstanceProfileInfo>, TxError> {
        let mut out = Vec::new();
        for key in &role.instance_profiles {
            let path = instance_profile_path(account_id, key);
            if let Some(p) = self.get_versioned::<InstanceProfileRecord>(&path).await? {
                out.push(self.profile_info(account_id, &p.value).await?);
            }
        }
        Ok(out)
    }

    pub async fn tag_instance_profile(
        &self,
        account_id: &str,
        name: &str,
        tags: &[Tag],
    ) -> Result<(), AwsError> {
        validate_tags(tags)?;
        retrying(|| async move {
            let (v, key) = self.load_profile(account_id, name).await?;
            let mut p = v.value;
            merge_tags(&mut p.tags, tags, "TagsPerInstanceProfile")?;
            self.commit(vec![put_json_op(key, &p, Expect::Version(v.version))?])
                .await
        })
        .await
    }

    pub async fn untag_instance_profile(
        &self,
        account_id: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_profile(account_id, name).await?;
            let mut p = v.value;
            remove_tags(&mut p.tags, keys);
            self.commit(vec![put_json_op(key, &p, Expect::Version(v.version))?])
                .await
        })
        .await
    }

    pub async fn list_instance_profile_tags(
        &self,
        account_id: &str,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<Tag>, AwsError> {
        reading(async {
            let (v, _) = self.load_profile(account_id, name).await?;
            Ok(paginate(sorted_tags(&v.value.tags), page))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_carry_the_path() {
        assert_eq!(
            instance_profile_arn("111122223333", "/app/", "web"),
            "arn:aws:iam::111122223333:instance-profile/app/web"
        );
    }
}
