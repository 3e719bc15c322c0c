//! AWS STS. `GetCallerIdentity` answers from the verified principal; the credential-issuing
//! operations arrive with IAM and answer `UnsupportedOperationException` until then.

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, RequestContext, ServiceHandler,
    ServiceSpec, Support,
};
use citadel_model::sts;

#[derive(Debug, Default)]
pub struct Sts;

#[async_trait::async_trait]
impl ServiceHandler for Sts {
    fn spec(&self) -> &'static ServiceSpec {
        &sts::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        &[("GetCallerIdentity", Support::Full)]
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        match operation.name {
            "GetCallerIdentity" => {
                // Parsing still runs so that malformed parameters are rejected as AWS does.
                if let OperationInput::Query(params) = &input {
                    sts::GetCallerIdentityRequest::from_query(params)?;
                }
                let out = sts::GetCallerIdentityResponse {
                    user_id: Some(ctx.principal.user_id.clone()),
                    account: Some(ctx.principal.account_id.clone()),
                    arn: Some(ctx.principal.arn.clone()),
                };
                let mut xml = String::new();
                out.to_query_xml(&mut xml);
                Ok(OperationOutput::QueryXml(xml))
            }
            other => Err(AwsError::unsupported_operation("sts", other)),
        }
    }
}
