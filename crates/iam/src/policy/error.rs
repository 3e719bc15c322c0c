//! Why a policy document was refused, and the AWS error each service answers with.

use citadel_api::AwsError;

use super::document::{IdentityPolicyKind, PolicyKind};

/// Which service's error shapes to use. IAM and STS speak awsQuery (`MalformedPolicyDocument`),
/// KMS and Secrets Manager speak awsJson (`MalformedPolicyDocumentException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFlavour {
    Iam,
    Sts,
    Kms,
    SecretsManager,
}

/// A policy document that cannot be accepted. The messages are the ones IAM gives where they are
/// known (see the module docs for which were confirmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, not an object, an unknown element, or an element of the wrong type.
    #[error("Syntax errors in policy.")]
    Syntax,
    /// Invalid JSON in a role trust policy (CreateRole / UpdateAssumeRolePolicy word it so).
    #[error("This policy contains invalid Json")]
    InvalidJson,
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    #[error("Has prohibited field {0}")]
    ProhibitedField(&'static str),
    /// A `Principal`/`NotPrincipal` in an identity-based, boundary or session policy.
    #[error("Policy document should not specify a principal.")]
    PrincipalNotAllowed,
    #[error("Invalid effect: {0}")]
    InvalidEffect(String),
    #[error("Invalid Condition operator: {0}")]
    InvalidConditionOperator(String),
    #[error("Policy statement must contain actions.")]
    NoActions,
    #[error("Policy statement must contain resources.")]
    NoResources,
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid,
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    MissingVendor,
    #[error("Actions/Condition can contain only one colon.")]
    TooManyColons,
    #[error("Vendor {0} is not valid")]
    InvalidVendor(String),
    #[error("Resource {0} must be in ARN format or \"*\".")]
    InvalidResource(String),
    #[error("Invalid principal in policy: \"{kind}\":\"{value}\"")]
    InvalidPrincipal { kind: String, value: String },
    #[error("AssumeRole policy may only specify STS AssumeRole actions.")]
    TrustPolicyAction,
    /// A Date condition value that is neither ISO 8601 nor epoch seconds.
    #[error("The policy failed legacy parsing")]
    LegacyParsing,
    #[error("The {kind} policy document measures {size}, over the {max} allowed")]
    TooLarge {
        kind: PolicyKind,
        size: usize,
        max: usize,
    },
}

impl PolicyError {
    /// The IAM error (`MalformedPolicyDocument`, 400; `LimitExceeded`, 409, for size).
    pub fn to_aws_error(&self) -> AwsError {
        self.to_aws_error_for(ErrorFlavour::Iam)
    }

    /// The error in the shape the calling service uses.
    pub fn to_aws_error_for(&self, flavour: ErrorFlavour) -> AwsError {
        if let PolicyError::TooLarge { kind, max, .. } = self {
            return too_large(*kind, *max, flavour, None);
        }
        match flavour {
            ErrorFlavour::Iam | ErrorFlavour::Sts => {
                AwsError::new(400, "MalformedPolicyDocument", self.to_string())
            }
            ErrorFlavour::Kms | ErrorFlavour::SecretsManager => {
                let message = match (self, flavour) {
                    (PolicyError::InvalidPrincipal { .. }, ErrorFlavour::Kms) => {
                        "Policy contains a statement with one or more invalid principals."
                            .to_owned()
                    }
                    _ => self.to_string(),
                };
                AwsError::new(400, "MalformedPolicyDocumentException", message)
            }
        }
    }

    /// For inline policies IAM names the entity: `Maximum policy size of 2048 bytes exceeded for
    /// user alice`. Other errors are unchanged.
    pub fn to_aws_error_for_entity(&self, entity_name: &str) -> AwsError {
        if let PolicyError::TooLarge { kind, max, .. } = self {
            return too_large(*kind, *max, ErrorFlavour::Iam, Some(entity_name));
        }
        self.to_aws_error()
    }
}

/// The size error for `kind`: IAM answers `LimitExceeded` (409) in its own wording, STS a
/// validation error on the `Policy` member, KMS and Secrets Manager `LimitExceededException`.
/// IAM limits inline policies per entity in aggregate; the IAM layer uses this with the summed
/// size of all of an entity's inline policies.
pub fn too_large(
    kind: PolicyKind,
    max: usize,
    flavour: ErrorFlavour,
    entity_name: Option<&str>,
) -> AwsError {
    match flavour {
        ErrorFlavour::Iam => {
            let message = match kind {
                PolicyKind::Identity(
                    inline @ (IdentityPolicyKind::UserInline
                    | IdentityPolicyKind::RoleInline
                    | IdentityPolicyKind::GroupInline),
                ) => {
                    let entity = match inline {
                        IdentityPolicyKind::UserInline => "user",
                        IdentityPolicyKind::RoleInline => "role",
                        _ => "group",
                    };
                    match entity_name {
                        Some(name) => {
                            format!(
                                "Maximum policy size of {max} bytes exceeded for {entity} {name}"
                            )
                        }
                        None => format!("Maximum policy size of {max} bytes exceeded for {entity}"),
                    }
                }
                PolicyKind::Trust => format!("Cannot exceed quota for ACLSizePerRole: {max}"),
                _ => format!("Cannot exceed quota for PolicySize: {max}"),
            };
            AwsError::new(409, "LimitExceeded", message)
        }
        ErrorFlavour::Sts => AwsError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ),
        ),
        ErrorFlavour::Kms | ErrorFlavour::SecretsManager => AwsError::new(
            400,
            "LimitExceededException",
            format!("The policy document exceeds the maximum size of {max} bytes."),
        ),
    }
}
