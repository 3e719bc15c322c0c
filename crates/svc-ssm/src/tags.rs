//! Tags on parameters: AddTagsToResource, ListTagsForResource, RemoveTagsFromResource
//! (ResourceType `Parameter`; ResourceId is the parameter's name).

use citadel_api::{AwsError, RequestContext};
use citadel_model::ssm;

use crate::authz::{self, Conditions};
use crate::params::{Attempt, MAX_TAGS};
use crate::record::ParamRecord;
use crate::{Ssm, errors, names};

/// The resource types the SSM model lists; only `Parameter` is implemented here.
const KNOWN_TYPES: &[&str] = &[
    "Document",
    "ManagedInstance",
    "MaintenanceWindow",
    "Parameter",
    "PatchBaseline",
    "OpsItem",
    "OpsMetadata",
    "Automation",
    "Association",
];

fn check_type(resource_type: &str) -> Result<(), AwsError> {
    if resource_type == "Parameter" {
        Ok(())
    } else if KNOWN_TYPES.contains(&resource_type) {
        Err(errors::unsupported(format!(
            "Citadel implements tags on ResourceType Parameter only, not {resource_type}."
        )))
    } else {
        Err(errors::invalid_resource_type())
    }
}

impl Ssm {
    /// Loads the tagged parameter after authorizing `action` on it (with the request's tag
    /// condition keys). A missing parameter is `InvalidResourceId`.
    async fn tagged(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource_type: &str,
        id: &str,
        request_tags: &[(String, String)],
        tag_keys: &[String],
    ) -> Result<(ParamRecord, u64), AwsError> {
        check_type(resource_type)?;
        let account = ctx.principal.account_id.clone();
        let loaded = self.load(&account, &ctx.region, id).await?;
        let arn = names::arn(&ctx.region, &account, id);
        let mut conditions = Conditions::new();
        authz::resource_tags(&mut conditions, loaded.as_ref().map(|(r, _)| r));
        authz::request_tags(&mut conditions, request_tags);
        if !tag_keys.is_empty() {
            conditions.insert("aws:TagKeys".to_owned(), tag_keys.to_vec());
        }
        self.authorize(ctx, action, &arn, &account, &conditions)
            .await?;
        loaded.ok_or_else(errors::invalid_resource_id)
    }

    pub(crate) async fn add_tags_to_resource(
        &self,
        ctx: &RequestContext,
        req: ssm::AddTagsToResourceRequest,
    ) -> Result<crate::Empty, AwsError> {
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
        let id = req.resource_id.clone().unwrap_or_default();
        let resource_type = req.resource_type.clone().unwrap_or_default();
        for _ in 0..5 {
            let (mut rec, version) = self
                .tagged(
                    ctx,
                    "ssm:AddTagsToResource",
                    &resource_type,
                    &id,
                    &tags,
                    &[],
                )
                .await?;
            for (k, v) in &tags {
                match rec.tags.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => rec.tags.push((k.clone(), v.clone())),
                }
            }
            if rec.tags.len() > MAX_TAGS {
                return Err(errors::too_many_tags());
            }
            if let Attempt::Done(()) = self.save_tags(ctx, &rec, version).await? {
                return Ok(crate::Empty {});
            }
        }
        Err(errors::too_many_updates())
    }

    pub(crate) async fn remove_tags_from_resource(
        &self,
        ctx: &RequestContext,
        req: ssm::RemoveTagsFromResourceRequest,
    ) -> Result<crate::Empty, AwsError> {
        let keys = req.tag_keys.clone().unwrap_or_default();
        let id = req.resource_id.clone().unwrap_or_default();
        let resource_type = req.resource_type.clone().unwrap_or_default();
        for _ in 0..5 {
            let (mut rec, version) = self
                .tagged(
                    ctx,
                    "ssm:RemoveTagsFromResource",
                    &resource_type,
                    &id,
                    &[],
                    &keys,
                )
                .await?;
            let before = rec.tags.len();
            rec.tags.retain(|(k, _)| !keys.contains(k));
            if rec.tags.len() == before {
                return Ok(crate::Empty {});
            }
            if let Attempt::Done(()) = self.save_tags(ctx, &rec, version).await? {
                return Ok(crate::Empty {});
            }
        }
        Err(errors::too_many_updates())
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        req: ssm::ListTagsForResourceRequest,
    ) -> Result<ssm::ListTagsForResourceResult, AwsError> {
        let id = req.resource_id.clone().unwrap_or_default();
        let resource_type = req.resource_type.clone().unwrap_or_default();
        let (rec, _) = self
            .tagged(
                ctx,
                "ssm:ListTagsForResource",
                &resource_type,
                &id,
                &[],
                &[],
            )
            .await?;
        Ok(ssm::ListTagsForResourceResult {
            tag_list: Some(
                rec.tags
                    .iter()
                    .map(|(k, v)| ssm::Tag {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                    .collect(),
            ),
        })
    }

    async fn save_tags(
        &self,
        ctx: &RequestContext,
        rec: &ParamRecord,
        version: u64,
    ) -> Result<Attempt<()>, AwsError> {
        let key = crate::record::param_key(&ctx.principal.account_id, &ctx.region, &rec.name);
        let op = citadel_store::put_json_op(key, rec, citadel_store::Expect::Version(version))
            .map_err(errors::store)?;
        self.commit(vec![op]).await
    }
}
