//! The AWS policy language and its evaluation: the brain of the one authorizer that IAM, STS,
//! KMS, Secrets Manager and SSM all call.
//!
//! - [`Policy::parse`] validates a document for a [`PolicyKind`] and compiles it once (wildcards,
//!   CIDRs, dates, variables), answering [`PolicyError`]s that map to AWS's
//!   `MalformedPolicyDocument` errors.
//! - [`EvalContext`] describes a request: the caller ([`PrincipalInfo`]), action, resource and the
//!   condition keys; its builder fills the global `aws:*` keys.
//! - [`evaluate`] applies AWS's evaluation logic to an [`EvalInput`] and returns an
//!   [`EvalResult`], which renders AWS's access-denied messages.
//!
//! Everything here is pure: no I/O, no async, and evaluation allocates only to substitute
//! policy variables.
//!
//! Choices where AWS's behaviour is not fully documented:
//! - Sizes: IAM kinds count characters other than whitespace (as IAM documents); session and
//!   resource policies count every character; KMS key policies count bytes.
//! - A single-valued operator applied to a multi-valued key matches when any request value
//!   matches any policy value (its negated form when none does).
//! - A condition whose value holds an unresolvable policy variable is false whatever the
//!   operator, so the statement neither allows nor denies (AWS: the statement is "invalid").
//! - Numeric, IP and binary policy values that do not parse never match; Date values that do not
//!   parse make the document invalid ("The policy failed legacy parsing").
//! - A resource-policy grant to `*` is treated like a grant to a role ARN: boundary and session
//!   policies narrow it.

mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod glob;
mod principal;
mod template;
mod values;

pub use condition::{BaseOperator, Condition, ConditionEntry, ConditionOperator, SetQualifier};
pub use context::{ContextValue, EvalContext, EvalContextBuilder, PrincipalInfo, PrincipalType};
pub use document::{
    ActionElement, ActionPattern, Effect, IdentityPolicyKind, Policy, PolicyKind, PolicyVersion,
    PrincipalElement, ResourceElement, ResourcePattern, SizeUnit, Statement,
};
pub use error::{ErrorFlavour, PolicyError, too_large};
pub use evaluate::{
    EvalDecision, EvalInput, EvalResult, ImplicitDenyReason, PolicyType, StatementRef, evaluate,
};
pub use principal::{AwsPrincipal, PrincipalSet};
