//! The policy document: model and parser. A [`Policy`] is parsed once (wildcards compiled,
//! CIDRs and dates parsed) and then evaluated on every request without reparsing.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use super::condition::Condition;
use super::context::EvalContext;
use super::error::PolicyError;
use super::glob::Glob;
use super::principal::{MatchKind, PrincipalSet, string_list};
use super::template::Template;

/// Which identity-based policy slot a document is for; only the size limit differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityPolicyKind {
    UserInline,
    RoleInline,
    GroupInline,
    Managed,
}

/// Where a policy document is used; decides which elements are required or prohibited and the
/// size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role (inline or managed). No `Principal`.
    Identity(IdentityPolicyKind),
    /// Attached to a resource (Secrets Manager secret, …). `Principal` required.
    Resource,
    /// A role's trust (assume-role) policy: `Principal` required, no `Resource`, STS actions only.
    Trust,
    /// A session policy passed to AssumeRole / GetFederationToken. No `Principal`.
    Session,
    /// A permissions boundary (a managed policy). No `Principal`.
    Boundary,
    /// A KMS key policy. `Principal` required.
    KeyPolicy,
}

/// How a kind's size limit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    /// Characters other than whitespace (IAM: "IAM does not count white space when calculating
    /// the size of a policy").
    NonWhitespaceChars,
    /// Every character of the document (STS session policies, resource policies).
    Chars,
    /// UTF-8 bytes of the document as sent (KMS key policies: 32 KB).
    Bytes,
}

impl PolicyKind {
    /// The largest document accepted, in [`size_unit`](Self::size_unit)s. Inline IAM limits
    /// apply to the sum of an entity's inline policies; this is the most one document can use.
    pub const fn max_size(self) -> usize {
        match self {
            PolicyKind::Identity(IdentityPolicyKind::UserInline) => 2048,
            PolicyKind::Identity(IdentityPolicyKind::RoleInline) => 10240,
            PolicyKind::Identity(IdentityPolicyKind::GroupInline) => 5120,
            PolicyKind::Identity(IdentityPolicyKind::Managed) | PolicyKind::Boundary => 6144,
            PolicyKind::Trust | PolicyKind::Session => 2048,
            // Secrets Manager's resource policy limit.
            PolicyKind::Resource => 20480,
            PolicyKind::KeyPolicy => 32768,
        }
    }

    pub const fn size_unit(self) -> SizeUnit {
        match self {
            PolicyKind::Identity(_) | PolicyKind::Boundary | PolicyKind::Trust => {
                SizeUnit::NonWhitespaceChars
            }
            PolicyKind::Session | PolicyKind::Resource => SizeUnit::Chars,
            PolicyKind::KeyPolicy => SizeUnit::Bytes,
        }
    }

    /// The size of `json` as this kind counts it.
    pub fn measure(self, json: &str) -> usize {
        match self.size_unit() {
            SizeUnit::NonWhitespaceChars => json.chars().filter(|c| !c.is_whitespace()).count(),
            SizeUnit::Chars => json.chars().count(),
            SizeUnit::Bytes => json.len(),
        }
    }

    fn principal_rule(self) -> PrincipalRule {
        match self {
            PolicyKind::Identity(_) | PolicyKind::Session | PolicyKind::Boundary => {
                PrincipalRule::Prohibited
            }
            PolicyKind::Resource | PolicyKind::Trust | PolicyKind::KeyPolicy => {
                PrincipalRule::Required
            }
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Identity(IdentityPolicyKind::UserInline) => "user inline",
            PolicyKind::Identity(IdentityPolicyKind::RoleInline) => "role inline",
            PolicyKind::Identity(IdentityPolicyKind::GroupInline) => "group inline",
            PolicyKind::Identity(IdentityPolicyKind::Managed) => "managed",
            PolicyKind::Resource => "resource-based",
            PolicyKind::Trust => "role trust",
            PolicyKind::Session => "session",
            PolicyKind::Boundary => "permissions boundary",
            PolicyKind::KeyPolicy => "key",
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PrincipalRule {
    Required,
    Prohibited,
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    /// `2008-10-17`, and documents without a `Version`: no policy variables.
    V2008_10_17,
    V2012_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// An action pattern as written and compiled (matched without regard to case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    raw: String,
    glob: Glob,
}

impl ActionPattern {
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn matches(&self, action: &str) -> bool {
        self.glob.matches_ignore_ascii_case(action)
    }
}

/// A resource pattern as written and compiled (matched case-sensitively; may hold variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    raw: String,
    template: Template,
    /// Precompiled when the pattern holds no variables.
    glob: Option<Glob>,
}

impl ResourcePattern {
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn matches(&self, ctx: &EvalContext) -> bool {
        match &self.glob {
            Some(g) => g.matches(ctx.resource()),
            // An unresolvable variable makes this entry match nothing.
            None => self
                .template
                .to_glob(ctx)
                .is_some_and(|g| g.matches(ctx.resource())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionElement {
    Action(Vec<ActionPattern>),
    NotAction(Vec<ActionPattern>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceElement {
    Resource(Vec<ResourcePattern>),
    NotResource(Vec<ResourcePattern>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalElement {
    Principal(PrincipalSet),
    NotPrincipal(PrincipalSet),
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    principal: Option<PrincipalElement>,
    action: ActionElement,
    /// `None` only in trust policies, which apply to the role they belong to.
    resource: Option<ResourceElement>,
    condition: Condition,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    pub fn principal(&self) -> Option<&PrincipalElement> {
        self.principal.as_ref()
    }

    pub fn action(&self) -> &ActionElement {
        &self.action
    }

    pub fn resource(&self) -> Option<&ResourceElement> {
        self.resource.as_ref()
    }

    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    fn action_matches(&self, action: &str) -> bool {
        match &self.action {
            ActionElement::Action(p) => p.iter().any(|p| p.matches(action)),
            ActionElement::NotAction(p) => !p.iter().any(|p| p.matches(action)),
        }
    }

    fn resource_matches(&self, ctx: &EvalContext) -> bool {
        match &self.resource {
            None => true,
            Some(ResourceElement::Resource(p)) => p.iter().any(|p| p.matches(ctx)),
            Some(ResourceElement::NotResource(p)) => !p.iter().any(|p| p.matches(ctx)),
        }
    }

    /// Whether the statement applies to the request, and how it named the caller. Identity
    /// policies have no principal element and report [`MatchKind::Exact`].
    /// `has_boundary` feeds AWS's documented rule that a `Deny` with `NotPrincipal` always
    /// applies to callers with a permissions boundary.
    pub(crate) fn applies(&self, ctx: &EvalContext, has_boundary: bool) -> Option<MatchKind> {
        // Cheapest and most selective tests first.
        if !self.action_matches(ctx.action()) || !self.resource_matches(ctx) {
            return None;
        }
        let kind = match &self.principal {
            None => MatchKind::Exact,
            Some(PrincipalElement::Principal(set)) => set.matches(ctx.principal())?,
            Some(PrincipalElement::NotPrincipal(set)) => {
                let forced = has_boundary && self.effect == Effect::Deny;
                if !forced && set.excludes(ctx.principal()) {
                    return None;
                }
                MatchKind::Limited
            }
        };
        self.condition.matches(ctx).then_some(kind)
    }
}

/// A parsed, compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: PolicyVersion,
    version_given: bool,
    id: Option<String>,
    kind: PolicyKind,
    statements: Vec<Statement>,
}

/// What one policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PolicyOutcome {
    /// The index of the first applicable `Deny` statement.
    pub(crate) deny: Option<usize>,
    /// The strongest applicable `Allow` and its statement index.
    pub(crate) allow: Option<(MatchKind, usize)>,
}

impl Policy {
    /// Parses and validates `json` for use as `kind`.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let size = kind.measure(json);
        if size > kind.max_size() {
            return Err(PolicyError::TooLarge {
                kind,
                size,
                max: kind.max_size(),
            });
        }
        let doc: Value = serde_json::from_str(json).map_err(|_| {
            if kind == PolicyKind::Trust {
                PolicyError::InvalidJson
            } else {
                PolicyError::Syntax
            }
        })?;
        let Value::Object(doc) = doc else {
            return Err(PolicyError::Syntax);
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::Syntax);
            }
        }
        let (version, version_given) = match doc.get("Version") {
            None => (PolicyVersion::V2008_10_17, false),
            Some(Value::String(v)) if v == "2012-10-17" => (PolicyVersion::V2012_10_17, true),
            Some(Value::String(v)) if v == "2008-10-17" => (PolicyVersion::V2008_10_17, true),
            Some(_) => return Err(PolicyError::Syntax),
        };
        let id = match doc.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::Syntax),
        };
        let raw_statements: Vec<&Map<String, Value>> = match doc.get("Statement") {
            None => return Err(PolicyError::MissingField("Statement")),
            Some(Value::Object(s)) => vec![s],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|i| i.as_object().ok_or(PolicyError::Syntax))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(PolicyError::Syntax),
        };
        let variables = version == PolicyVersion::V2012_10_17;
        let statements = raw_statements
            .into_iter()
            .map(|s| parse_statement(s, kind, variables))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sids = HashSet::new();
        for s in &statements {
            if let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty())
                && !sids.insert(sid)
            {
                return Err(PolicyError::DuplicateSid);
            }
        }
        Ok(Policy {
            version,
            version_given,
            id,
            kind,
            statements,
        })
    }

    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    /// Whether the document named its version (IAM shows `Version` only when given).
    pub fn version_given(&self) -> bool {
        self.version_given
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Every AWS principal this policy names (for existence checks before accepting it).
    pub fn principals(&self) -> impl Iterator<Item = &PrincipalSet> {
        self.statements.iter().filter_map(|s| match &s.principal {
            Some(PrincipalElement::Principal(p) | PrincipalElement::NotPrincipal(p)) => Some(p),
            None => None,
        })
    }

    /// Every condition key the policy tests, as written (for `simulate-*`'s
    /// `GetContextKeysFor…Policy`).
    pub fn condition_keys(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .flat_map(|s| s.condition.entries().iter().map(|e| e.key()))
    }

    /// Evaluates every statement against the request: the first applicable Deny, and the
    /// strongest applicable Allow. Stops at the first Deny, which decides the request.
    pub(crate) fn outcome(&self, ctx: &EvalContext, has_boundary: bool) -> PolicyOutcome {
        let mut out = PolicyOutcome::default();
        for (i, s) in self.statements.iter().enumerate() {
            // Once an Allow of the strongest kind is known, only Deny statements can change the
            // result, so Allow statements need not be evaluated further.
            if s.effect == Effect::Allow && out.allow.is_some_and(|(k, _)| k == MatchKind::Exact) {
                continue;
            }
            let Some(kind) = s.applies(ctx, has_boundary) else {
                continue;
            };
            match s.effect {
                Effect::Deny => {
                    out.deny = Some(i);
                    return out;
                }
                Effect::Allow => {
                    if out.allow.is_none_or(|(k, _)| kind > k) {
                        out.allow = Some((kind, i));
                    }
                }
            }
        }
        out
    }
}

fn parse_statement(
    s: &Map<String, Value>,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    for key in s.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(PolicyError::Syntax);
        }
    }
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err(PolicyError::Syntax),
    };
    let effect = match s.get("Effect") {
        None => return Err(PolicyError::MissingField("Effect")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(PolicyError::InvalidEffect(e.clone())),
        Some(_) => return Err(PolicyError::Syntax),
    };

    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(PolicyError::Syntax),
        (None, None) => None,
        (Some(p), None) => Some((p, false)),
        (None, Some(p)) => Some((p, true)),
    };
    let principal = match (principal, kind.principal_rule()) {
        (Some(_), PrincipalRule::Prohibited) => return Err(PolicyError::PrincipalNotAllowed),
        (None, PrincipalRule::Required) => return Err(PolicyError::MissingField("Principal")),
        (None, PrincipalRule::Prohibited) => None,
        (Some((p, negated)), PrincipalRule::Required) => {
            let set = PrincipalSet::parse(p)?;
            Some(if negated {
                PrincipalElement::NotPrincipal(set)
            } else {
                PrincipalElement::Principal(set)
            })
        }
    };

    let action = match (s.get("Action"), s.get("NotAction")) {
        (Some(_), Some(_)) => return Err(PolicyError::Syntax),
        (None, None) => return Err(PolicyError::NoActions),
        (Some(a), None) => ActionElement::Action(parse_actions(a, kind)?),
        (None, Some(a)) => ActionElement::NotAction(parse_actions(a, kind)?),
    };

    let resource = match (s.get("Resource"), s.get("NotResource")) {
        (Some(_), Some(_)) => return Err(PolicyError::Syntax),
        (Some(_), None) if kind == PolicyKind::Trust => {
            return Err(PolicyError::ProhibitedField("Resource"));
        }
        (None, Some(_)) if kind == PolicyKind::Trust => {
            return Err(PolicyError::ProhibitedField("NotResource"));
        }
        (None, None) if kind == PolicyKind::Trust => None,
        (None, None) => return Err(PolicyError::NoResources),
        (Some(r), None) => Some(ResourceElement::Resource(parse_resources(r, variables)?)),
        (None, Some(r)) => Some(ResourceElement::NotResource(parse_resources(r, variables)?)),
    };

    let condition = match s.get("Condition") {
        None => Condition::default(),
        Some(c) => Condition::parse(c, variables)?,
    };

    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        condition,
    })
}

fn parse_actions(v: &Value, kind: PolicyKind) -> Result<Vec<ActionPattern>, PolicyError> {
    let list = string_list(v)?;
    if list.is_empty() {
        return Err(PolicyError::NoActions);
    }
    list.into_iter()
        .map(|a| {
            validate_action(a)?;
            if kind == PolicyKind::Trust && a != "*" {
                let vendor = a.split(':').next().unwrap_or_default();
                if !vendor.eq_ignore_ascii_case("sts") {
                    return Err(PolicyError::TrustPolicyAction);
                }
            }
            Ok(ActionPattern {
                raw: a.to_owned(),
                glob: Glob::compile(a),
            })
        })
        .collect()
}

/// IAM's action grammar: `*`, or `vendor:pattern` with one colon and a plain vendor.
fn validate_action(a: &str) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    let mut parts = a.split(':');
    let vendor = parts.next().unwrap_or_default();
    let Some(_name) = parts.next() else {
        return Err(PolicyError::MissingVendor);
    };
    if parts.next().is_some() {
        return Err(PolicyError::TooManyColons);
    }
    if vendor.is_empty()
        || !vendor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(PolicyError::InvalidVendor(vendor.to_owned()));
    }
    Ok(())
}

fn parse_resources(v: &Value, variables: bool) -> Result<Vec<ResourcePattern>, PolicyError> {
    let list = string_list(v)?;
    if list.is_empty() {
        return Err(PolicyError::NoResources);
    }
    list.into_iter()
        .map(|r| {
            if r != "*" && !r.starts_with("arn:") {
                return Err(PolicyError::InvalidResource(r.to_owned()));
            }
            let template = Template::parse(r, variables);
            let glob = template.as_plain().map(Glob::compile);
            Ok(ResourcePattern {
                raw: r.to_owned(),
                template,
                glob,
            })
        })
        .collect()
}
