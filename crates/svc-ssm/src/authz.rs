//! The one place Parameter Store asks whether a caller may do something: the shared
//! [`Authorizer`](citadel_iam::Authorizer) with the parameter's ARN and SSM's condition keys.

use std::collections::BTreeMap;

use citadel_api::{AwsError, RequestContext};
use citadel_iam::AccessRequest;
use citadel_iam::policy::ErrorFlavour;

use crate::Ssm;
use crate::errors;
use crate::record::ParamRecord;

/// Condition keys and their values.
pub type Conditions = BTreeMap<String, Vec<String>>;

/// `aws:ResourceTag/<key>` for every tag of the parameter.
pub fn resource_tags(conditions: &mut Conditions, record: Option<&ParamRecord>) {
    if let Some(r) = record {
        for (k, v) in &r.tags {
            conditions.insert(format!("aws:ResourceTag/{k}"), vec![v.clone()]);
        }
    }
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` for the tags a request adds.
pub fn request_tags(conditions: &mut Conditions, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    for (k, v) in tags {
        conditions.insert(format!("aws:RequestTag/{k}"), vec![v.clone()]);
    }
    conditions.insert(
        "aws:TagKeys".to_owned(),
        tags.iter().map(|(k, _)| k.clone()).collect(),
    );
}

impl Ssm {
    /// Allows (marking the request authorized) or answers AWS's `AccessDeniedException`.
    /// `owner` is the account owning the resource: parameters of other accounts are refused
    /// before any policy is evaluated, since resource policies (sharing) are not implemented.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
        owner: &str,
        conditions: &Conditions,
    ) -> Result<(), AwsError> {
        if owner != ctx.principal.account_id {
            return Err(errors::access_denied(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no resource-based policy allows the {action} action",
                ctx.principal.arn
            )));
        }
        let request = AccessRequest {
            resource_account: Some(owner),
            conditions,
            ..AccessRequest::new(action, resource, ErrorFlavour::Kms)
        };
        self.authorizer.authorize(ctx, &request).await
    }
}
