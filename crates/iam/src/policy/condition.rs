//! The `Condition` element: every operator family, `…IfExists`, the `ForAllValues:` /
//! `ForAnyValue:` set qualifiers, and AWS's rules for missing and multi-valued keys.

use serde_json::Value;

use super::context::{ContextValue, EvalContext};
use super::error::PolicyError;
use super::glob::Glob;
use super::template::Template;
use super::values::{Cidr, Instant, parse_bool, parse_date, parse_number};
use base64::Engine as _;

/// The operator without qualifier or `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

const OPERATORS: [(&str, BaseOperator); 27] = [
    ("StringEquals", BaseOperator::StringEquals),
    ("StringNotEquals", BaseOperator::StringNotEquals),
    (
        "StringEqualsIgnoreCase",
        BaseOperator::StringEqualsIgnoreCase,
    ),
    (
        "StringNotEqualsIgnoreCase",
        BaseOperator::StringNotEqualsIgnoreCase,
    ),
    ("StringLike", BaseOperator::StringLike),
    ("StringNotLike", BaseOperator::StringNotLike),
    ("NumericEquals", BaseOperator::NumericEquals),
    ("NumericNotEquals", BaseOperator::NumericNotEquals),
    ("NumericLessThan", BaseOperator::NumericLessThan),
    ("NumericLessThanEquals", BaseOperator::NumericLessThanEquals),
    ("NumericGreaterThan", BaseOperator::NumericGreaterThan),
    (
        "NumericGreaterThanEquals",
        BaseOperator::NumericGreaterThanEquals,
    ),
    ("DateEquals", BaseOperator::DateEquals),
    ("DateNotEquals", BaseOperator::DateNotEquals),
    ("DateLessThan", BaseOperator::DateLessThan),
    ("DateLessThanEquals", BaseOperator::DateLessThanEquals),
    ("DateGreaterThan", BaseOperator::DateGreaterThan),
    ("DateGreaterThanEquals", BaseOperator::DateGreaterThanEquals),
    ("Bool", BaseOperator::Bool),
    ("BinaryEquals", BaseOperator::BinaryEquals),
    ("IpAddress", BaseOperator::IpAddress),
    ("NotIpAddress", BaseOperator::NotIpAddress),
    ("ArnEquals", BaseOperator::ArnEquals),
    ("ArnNotEquals", BaseOperator::ArnNotEquals),
    ("ArnLike", BaseOperator::ArnLike),
    ("ArnNotLike", BaseOperator::ArnNotLike),
    ("Null", BaseOperator::Null),
];

impl BaseOperator {
    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("Null", |(n, _)| n)
    }

    /// Negated operators are true when the key is missing, and true for a present key when no
    /// value matches (AWS: "If the policy condition requires that the key is not matched … and
    /// the right key is not present, the condition is true").
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            BaseOperator::StringNotEquals
                | BaseOperator::StringNotEqualsIgnoreCase
                | BaseOperator::StringNotLike
                | BaseOperator::NumericNotEquals
                | BaseOperator::DateNotEquals
                | BaseOperator::NotIpAddress
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnNotLike
        )
    }

    /// Operators whose values may hold policy variables (string, ARN and Bool comparisons).
    fn takes_variables(self) -> bool {
        matches!(
            self,
            BaseOperator::StringEquals
                | BaseOperator::StringNotEquals
                | BaseOperator::StringEqualsIgnoreCase
                | BaseOperator::StringNotEqualsIgnoreCase
                | BaseOperator::StringLike
                | BaseOperator::StringNotLike
                | BaseOperator::Bool
                | BaseOperator::ArnEquals
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnLike
                | BaseOperator::ArnNotLike
        )
    }
}

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// A full operator name such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConditionOperator {
    pub base: BaseOperator,
    pub qualifier: Option<SetQualifier>,
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parses an operator name. Names are matched without regard to case; `Null` takes neither a
    /// qualifier nor `IfExists` (AWS: IfExists applies to every operator "except Null").
    pub fn parse(name: &str) -> Option<ConditionOperator> {
        let (qualifier, rest) = if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (if_exists, base_name) = match strip_suffix_ci(rest, "IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let base = OPERATORS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(base_name))
            .map(|(_, op)| *op)?;
        if base == BaseOperator::Null && (if_exists || qualifier.is_some()) {
            return None;
        }
        Some(ConditionOperator {
            base,
            qualifier,
            if_exists,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| s.get(..cut))
        .flatten()
}

/// A string-ish policy value: the template, plus the precompiled matcher when it has no
/// variables (the usual case).
#[derive(Debug, Clone, PartialEq, Eq)]
struct StrValue {
    template: Template,
    glob: Option<Glob>,
    arn: Option<ArnPattern>,
}

/// An ARN pattern matched component by component (AWS checks each of the six colon-separated
/// fields separately, so a `*` never spans a colon); a pattern with fewer fields is matched
/// as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArnPattern {
    Fields(Box<[Glob; 6]>),
    Whole(Glob),
}

impl ArnPattern {
    fn compile(pattern: &str) -> ArnPattern {
        let mut it = pattern.splitn(6, ':');
        let fields: Option<[Glob; 6]> = (|| {
            Some([
                Glob::compile(it.next()?),
                Glob::compile(it.next()?),
                Glob::compile(it.next()?),
                Glob::compile(it.next()?),
                Glob::compile(it.next()?),
                Glob::compile(it.next()?),
            ])
        })();
        match fields {
            Some(f) => ArnPattern::Fields(Box::new(f)),
            None => ArnPattern::Whole(Glob::compile(pattern)),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            ArnPattern::Whole(g) => g.matches(value),
            ArnPattern::Fields(globs) => {
                let mut parts = value.splitn(6, ':');
                globs
                    .iter()
                    .all(|g| parts.next().is_some_and(|p| g.matches(p)))
            }
        }
    }
}

/// The values of one condition key, typed for the operator family.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Vec<StrValue>),
    /// Values that fail to parse never match (a number, date… that is not one).
    Number(Vec<Option<f64>>),
    Date(Vec<Instant>),
    Binary(Vec<Option<Vec<u8>>>),
    Ip(Vec<Option<Cidr>>),
    Null(Vec<Option<bool>>),
}

/// One operator + key + values test.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionEntry {
    operator: ConditionOperator,
    /// As written in the policy, for display.
    key: String,
    /// Lower-cased: keys are case-insensitive.
    key_lower: String,
    values: Values,
}

impl ConditionEntry {
    pub fn operator(&self) -> ConditionOperator {
        self.operator
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A statement's `Condition` element: every entry must hold (AND across operators and keys; OR
/// across one key's values).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    entries: Vec<ConditionEntry>,
}

impl Condition {
    pub(crate) fn parse(v: &Value, variables: bool) -> Result<Condition, PolicyError> {
        let Value::Object(ops) = v else {
            return Err(PolicyError::Syntax);
        };
        let mut entries = Vec::new();
        for (op_name, keys) in ops {
            let Value::Object(keys) = keys else {
                return Err(PolicyError::Syntax);
            };
            let operator = ConditionOperator::parse(op_name)
                .ok_or_else(|| PolicyError::InvalidConditionOperator(op_name.clone()))?;
            for (key, raw) in keys {
                if !key.contains(':') {
                    return Err(PolicyError::MissingVendor);
                }
                let raw = scalar_list(raw)?;
                let values = parse_values(operator.base, &raw, variables)?;
                entries.push(ConditionEntry {
                    operator,
                    key: key.clone(),
                    key_lower: key.to_ascii_lowercase(),
                    values,
                });
            }
        }
        Ok(Condition { entries })
    }

    pub fn entries(&self) -> &[ConditionEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn matches(&self, ctx: &EvalContext) -> bool {
        self.entries.iter().all(|e| e.matches(ctx))
    }
}

/// JSON scalars (strings, numbers, booleans) or a list of them, as text.
fn scalar_list(v: &Value) -> Result<Vec<String>, PolicyError> {
    fn scalar(v: &Value) -> Result<String, PolicyError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(PolicyError::Syntax),
        }
    }
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn parse_values(op: BaseOperator, raw: &[String], variables: bool) -> Result<Values, PolicyError> {
    use BaseOperator as B;
    Ok(match op {
        B::NumericEquals
        | B::NumericNotEquals
        | B::NumericLessThan
        | B::NumericLessThanEquals
        | B::NumericGreaterThan
        | B::NumericGreaterThanEquals => {
            Values::Number(raw.iter().map(|s| parse_number(s)).collect())
        }
        B::DateEquals
        | B::DateNotEquals
        | B::DateLessThan
        | B::DateLessThanEquals
        | B::DateGreaterThan
        | B::DateGreaterThanEquals => Values::Date(
            raw.iter()
                .map(|s| parse_date(s).ok_or(PolicyError::LegacyParsing))
                .collect::<Result<_, _>>()?,
        ),
        B::BinaryEquals => Values::Binary(
            raw.iter()
                .map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .collect(),
        ),
        B::IpAddress | B::NotIpAddress => Values::Ip(raw.iter().map(|s| Cidr::parse(s)).collect()),
        B::Null => Values::Null(raw.iter().map(|s| parse_bool(s)).collect()),
        _ => {
            let variables = variables && op.takes_variables();
            Values::Str(
                raw.iter()
                    .map(|s| {
                        let template = Template::parse(s, variables);
                        let plain = template.as_plain();
                        let like = matches!(op, B::StringLike | B::StringNotLike);
                        let arn = matches!(
                            op,
                            B::ArnEquals | B::ArnNotEquals | B::ArnLike | B::ArnNotLike
                        );
                        StrValue {
                            glob: plain.filter(|_| like).map(Glob::compile),
                            arn: plain.filter(|_| arn).map(ArnPattern::compile),
                            template,
                        }
                    })
                    .collect(),
            )
        }
    })
}

impl ConditionEntry {
    fn matches(&self, ctx: &EvalContext) -> bool {
        let op = self.operator;
        let present = ctx.get_lower(&self.key_lower).filter(|v| !v.is_empty());
        if let Values::Null(wanted) = &self.values {
            // Null tests presence: `true` means the key must be absent. Several values are ORed.
            let absent = present.is_none();
            return wanted.contains(&Some(absent));
        }
        let Some(actual) = present else {
            if op.if_exists {
                return true;
            }
            return match op.qualifier {
                // "If the key values in the request resolve to an empty data set, ForAllValues
                // returns true and ForAnyValue returns false."
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => op.base.is_negated(),
            };
        };
        // A variable that cannot be resolved makes the statement invalid: the condition fails,
        // whatever the operator (so it neither allows nor denies).
        let Some(resolved) = self.resolve(ctx) else {
            return false;
        };
        let negated = op.base.is_negated();
        let positive = |v: &ContextValue| self.any_value_matches(v, &resolved);
        match op.qualifier {
            None => {
                let any = actual.iter().any(positive);
                any != negated
            }
            Some(SetQualifier::ForAnyValue) => actual.iter().any(|v| positive(v) != negated),
            Some(SetQualifier::ForAllValues) => actual.iter().all(|v| positive(v) != negated),
        }
    }

    /// Substitutes variables in string values; `None` if one is unresolvable.
    fn resolve<'a>(&'a self, ctx: &'a EvalContext) -> Option<Resolved<'a>> {
        let Values::Str(values) = &self.values else {
            return Some(Resolved::Typed);
        };
        if values.iter().all(|v| v.template.as_plain().is_some()) {
            return Some(Resolved::Plain(values));
        }
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let text = v.template.resolve(ctx)?.into_owned();
            let glob = match self.operator.base {
                BaseOperator::StringLike | BaseOperator::StringNotLike => {
                    Some(v.template.to_glob(ctx)?)
                }
                _ => None,
            };
            let arn = match self.operator.base {
                BaseOperator::ArnEquals
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnLike
                | BaseOperator::ArnNotLike => Some(ArnPattern::compile(&text)),
                _ => None,
            };
            out.push(ResolvedStr { text, glob, arn });
        }
        Some(Resolved::Dynamic(out))
    }

    /// Whether the context value matches at least one policy value under the positive form of
    /// the operator (negation is applied by the caller).
    fn any_value_matches(&self, actual: &ContextValue, resolved: &Resolved<'_>) -> bool {
        use BaseOperator as B;
        let base = self.operator.base;
        match (&self.values, resolved) {
            (Values::Str(_), Resolved::Plain(values)) => {
                let text = actual.as_str();
                values.iter().any(|v| {
                    str_match(
                        base,
                        &text,
                        v.template.as_plain().unwrap_or_default(),
                        v.glob.as_ref(),
                        v.arn.as_ref(),
                        actual,
                    )
                })
            }
            (Values::Str(_), Resolved::Dynamic(values)) => {
                let text = actual.as_str();
                values.iter().any(|v| {
                    str_match(
                        base,
                        &text,
                        &v.text,
                        v.glob.as_ref(),
                        v.arn.as_ref(),
                        actual,
                    )
                })
            }
            (Values::Number(values), _) => actual.as_number().is_some_and(|a| {
                values.iter().flatten().any(|&p| match base {
                    B::NumericEquals | B::NumericNotEquals => a == p,
                    B::NumericLessThan => a < p,
                    B::NumericLessThanEquals => a <= p,
                    B::NumericGreaterThan => a > p,
                    _ => a >= p,
                })
            }),
            (Values::Date(values), _) => actual.as_instant().is_some_and(|a| {
                values.iter().any(|&p| match base {
                    B::DateEquals | B::DateNotEquals => a == p,
                    B::DateLessThan => a < p,
                    B::DateLessThanEquals => a <= p,
                    B::DateGreaterThan => a > p,
                    _ => a >= p,
                })
            }),
            (Values::Binary(values), _) => {
                let bytes = actual.as_bytes();
                values.iter().flatten().any(|p| **p == *bytes)
            }
            (Values::Ip(values), _) => actual
                .as_ip()
                .is_some_and(|ip| values.iter().flatten().any(|c| c.contains(ip))),
            _ => false,
        }
    }
}

enum Resolved<'a> {
    Typed,
    Plain(&'a [StrValue]),
    Dynamic(Vec<ResolvedStr>),
}

struct ResolvedStr {
    text: String,
    glob: Option<Glob>,
    arn: Option<ArnPattern>,
}

fn str_match(
    base: BaseOperator,
    actual: &str,
    policy: &str,
    glob: Option<&Glob>,
    arn: Option<&ArnPattern>,
    raw: &ContextValue,
) -> bool {
    use BaseOperator as B;
    match base {
        B::StringEquals | B::StringNotEquals => actual == policy,
        B::StringEqualsIgnoreCase | B::StringNotEqualsIgnoreCase => actual
            .chars()
            .flat_map(char::to_lowercase)
            .eq(policy.chars().flat_map(char::to_lowercase)),
        B::StringLike | B::StringNotLike => glob.is_some_and(|g| g.matches(actual)),
        B::ArnEquals | B::ArnNotEquals | B::ArnLike | B::ArnNotLike => {
            arn.is_some_and(|a| a.matches(actual))
        }
        B::Bool => match (raw.as_bool(), parse_bool(policy)) {
            (Some(a), Some(p)) => a == p,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists").unwrap();
        assert_eq!(op.base, BaseOperator::StringLike);
        assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
        assert!(op.if_exists);
        assert!(ConditionOperator::parse("stringequals").is_some());
        assert!(ConditionOperator::parse("StringEqualz").is_none());
        assert!(ConditionOperator::parse("NullIfExists").is_none());
        assert!(ConditionOperator::parse("ForAllValues:Null").is_none());
        assert!(ConditionOperator::parse("IfExists").is_none());
        for (name, op) in OPERATORS {
            assert_eq!(op.name(), name);
        }
    }

    #[test]
    fn arn_patterns_match_per_field() {
        let p = ArnPattern::compile("arn:aws:iam::*:role/*");
        assert!(p.matches("arn:aws:iam::111122223333:role/a/b"));
        assert!(!p.matches("arn:aws:iam::111122223333:user/a"));
        // A star in the account field does not reach across colons.
        let p = ArnPattern::compile("arn:aws:kms:*:key/*");
        assert!(matches!(p, ArnPattern::Whole(_)));
        let p = ArnPattern::compile("arn:aws:s3:::*");
        assert!(p.matches("arn:aws:s3:::bucket/key:with:colons"));
        assert!(!p.matches("arn:aws:s3"));
    }
}
