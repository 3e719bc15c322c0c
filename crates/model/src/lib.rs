//! Request and response types, enums, constraints and service specs of the AWS services Citadel
//! speaks, generated from the botocore models by `cargo xtask codegen` (see `generated/`), plus
//! the few hand-written types the generated code is built from.
//!
//! Per service module (`kms`, `secretsmanager`, `ssm`, `sts`, `iam`, `acm`, `acm_pca`, `wafv2`,
//! `cloudtrail`, `events`, `organizations`):
//! - `SPEC`: the [`citadel_api::ServiceSpec`] (operations, errors, protocol);
//! - one struct per structure shape reachable from an operation's input or output, named like
//!   the shape, every member `Option<T>` (serde names are the wire names);
//! - one enum per string-enum shape (`VALUES`, `as_str`, `FromStr`); struct fields keep such
//!   values as `String`, so an unknown value is a validation error, not a parse error;
//! - `validate()` on operation inputs (AWS's `ValidationException` text), `validate_into` on
//!   every input structure;
//! - awsQuery services (`sts`, `iam`): `from_query` on operation inputs and `to_query_xml` on
//!   output structures;
//! - `check_input(operation, input)`: decode and validate the input of any of its operations by
//!   name (see [`check_input`]).

pub mod audit_shape;
mod rtypes;
mod timestamp;

#[doc(hidden)]
pub mod rt;

pub mod generated;

pub use audit_shape::AuditShape;
pub use generated::{
    acm, acm_pca, cloudtrail, events, iam, kms, organizations, secretsmanager, ssm, sts, wafv2,
};
pub use rtypes::{Blob, SensitiveBlob, SensitiveString, UnknownVariant};
pub use timestamp::Timestamp;

/// The specs of every generated service.
pub fn all_specs() -> &'static [&'static citadel_api::ServiceSpec] {
    generated::ALL_SPECS
}

/// Decodes `input` as the input shape of `service`'s `operation` (by [`citadel_api::ServiceSpec`]
/// `name`) and checks it against the model's constraints: the precise `SerializationException` or
/// `ValidationException` (`ValidationError` for awsQuery) AWS answers for bad input.
///
/// For operations no handler implements yet, so that bad input is reported before
/// `UnsupportedOperation`. `Ok(())` for an unknown service or operation, an operation without
/// an input shape, and an input whose protocol variant does not match the service's.
pub fn check_input(
    service: &str,
    operation: &str,
    input: &citadel_api::OperationInput,
) -> Result<(), citadel_api::AwsError> {
    generated::check_input(service, operation, input)
}
