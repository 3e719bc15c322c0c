//! The EventBridge event-pattern language.
//!
//! [`Pattern::parse`] validates a pattern exactly as EventBridge (whose engine is Event Ruler)
//! does, with its error wording (`Event pattern is not valid. Reason: …`), and compiles it into a
//! list of `$or`-free *alternatives*; [`Pattern::matches`] answers whether an event matches any
//! of them.
//!
//! Semantics, as EventBridge defines them:
//! - every field a pattern names must match (AND); any value of a field's array may match (OR);
//!   fields the pattern does not name are ignored;
//! - when the event value is an array, the field matches if any element matches; when the pattern
//!   descends into an array of objects, all the fields it names must come from the *same*
//!   element ("array-consistent matching");
//! - literal strings match exactly; numbers match numerically (`300`, `300.0` and `3e2` are equal)
//!   when both are within ±5.0e9 (compared to six decimal places), otherwise by their text;
//!   `null` matches only an explicit null, `""` only the empty string;
//! - `exists` asks whether the path reaches a *leaf*: a null is a leaf, an object or an empty
//!   array is not;
//! - `$or` is expanded at compile time into alternatives; a path written both outside and inside
//!   a `$or` keeps the last write in document order, as Event Ruler does. A `$or` that is not a
//!   valid `$or` (fewer than two objects, not an array, …) is read as an ordinary field name,
//!   which is what EventBridge's compiler falls back to; if that fails too, the `$or` error is
//!   reported.
//!
//! Limits: at most [`MAX_OR_COMBINATIONS`] alternatives. Wildcards are matched by a linear-time
//! algorithm, so Event Ruler's wildcard "complexity" limit is not needed for safety and is not
//! enforced.

mod matching;
mod ordered;

use std::fmt;
use std::net::IpAddr;

use ordered::Json;

/// The most `$or` alternatives a pattern may expand to (the product of the lengths of its `$or`
/// arrays), as in EventBridge.
pub const MAX_OR_COMBINATIONS: usize = 1000;

/// Numbers a `numeric` range (and `anything-but` number) may use: ±5.0e9 inclusive.
pub const NUMBER_LIMIT: f64 = 5.0e9;

/// The keyword of the OR operator.
const OR: &str = "$or";

/// Field names that may not appear inside a `$or` member: they are operator names, and allowing
/// them would make a `$or` ambiguous with a match expression.
const RESERVED_IN_OR: &[&str] = &[
    "anything-but",
    "exists",
    "prefix",
    "suffix",
    "equals-ignore-case",
    "numeric",
    "cidr",
    "wildcard",
    "exactly",
    "=",
    "<",
    "<=",
    ">",
    ">=",
];

/// Why a pattern is invalid. Displays as EventBridge's `InvalidEventPatternException` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Event pattern is not valid. Reason: {reason}")]
pub struct PatternError {
    reason: String,
}

impl PatternError {
    fn new(reason: impl Into<String>) -> Self {
        PatternError {
            reason: reason.into(),
        }
    }

    /// The reason alone, without the `Event pattern is not valid. Reason: ` prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

type Result<T> = std::result::Result<T, PatternError>;

fn bad<T>(reason: impl Into<String>) -> Result<T> {
    Err(PatternError::new(reason))
}

/// A compiled, valid event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    alternatives: Vec<Node>,
}

/// One `$or`-free alternative (or a nested object of one): fields in first-write order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Node {
    fields: Vec<(String, Field)>,
    /// A path was constrained both as a leaf and as an object: no event can satisfy both.
    unsatisfiable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Leaf(Vec<Matcher>),
    Object(Node),
}

/// One element of a field's value array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Matcher {
    /// A literal string. An IP address literal also matches other spellings of that address.
    String {
        value: String,
        ip: Option<IpAddr>,
    },
    Number(Num),
    Bool(bool),
    Null,
    Prefix {
        value: String,
        ignore_case: bool,
    },
    Suffix {
        value: String,
        ignore_case: bool,
    },
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(Cidr),
    Exists(bool),
    AnythingBut(AnythingBut),
}

/// A JSON number as both a value and (when within the limit) its comparable form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Num {
    pub(crate) value: serde_json::Number,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnythingBut {
    Strings(Vec<String>),
    /// Comparable forms of the numbers.
    Numbers(Vec<i64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

/// A numeric range over comparable numbers (see [`comparable`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    pub(crate) bottom: Option<(i64, bool)>,
    pub(crate) top: Option<(i64, bool)>,
}

/// An inclusive address range (`cidr`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cidr {
    pub(crate) low: u128,
    pub(crate) high: u128,
    pub(crate) v6: bool,
}

/// A wildcard operand split on its unescaped `*`s: `segments.len() == stars + 1`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    pub(crate) segments: Vec<String>,
}

/// A number in Event Ruler's comparable form: `(5e9 + f) * 1e6`, truncated, so comparisons are
/// exact to six decimal places. `None` outside ±5e9 or for non-finite values.
pub(crate) fn comparable(f: f64) -> Option<i64> {
    if !f.is_finite() || !(-NUMBER_LIMIT..=NUMBER_LIMIT).contains(&f) {
        return None;
    }
    // In range, (5e9 + f) * 1e6 ≤ 1e16 < 2^63: the cast cannot saturate.
    #[allow(clippy::cast_possible_truncation)]
    Some(((NUMBER_LIMIT + f) * 1e6) as i64)
}

impl Pattern {
    /// Parses and validates an event pattern (a JSON object), with EventBridge's error messages.
    pub fn parse(text: &str) -> Result<Pattern> {
        let json: Json = serde_json::from_str(text).map_err(|e| {
            PatternError::new(format!(
                "Filter is not valid JSON: {} at line {} column {}",
                json_error_kind(&e),
                e.line(),
                e.column()
            ))
        })?;
        Self::compile(&json)
    }

    /// Parses a pattern given as a `serde_json::Value` (member order is the map's order).
    pub fn from_value(value: &serde_json::Value) -> Result<Pattern> {
        Self::compile(&from_serde(value))
    }

    fn compile(json: &Json) -> Result<Pattern> {
        let Json::Object(members) = json else {
            return bad("Filter is not an object");
        };
        if or_product(members) > MAX_OR_COMBINATIONS {
            return bad(format!(
                "Event pattern contains more than {MAX_OR_COMBINATIONS} rule combinations"
            ));
        }
        let alternatives = match compile_alternatives(members, true) {
            Ok(a) => a,
            Err(first) => match compile_alternatives(members, false) {
                Ok(a) => a,
                Err(_) => return Err(first),
            },
        };
        Ok(Pattern { alternatives })
    }

    /// Whether `event` matches this pattern.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        self.alternatives
            .iter()
            .any(|alt| matching::node_matches(alt, event))
    }

    /// The number of `$or`-free alternatives the pattern compiled to.
    pub fn alternatives(&self) -> usize {
        self.alternatives.len()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({} alternatives)", self.alternatives.len())
    }
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data | Category::Io => "invalid value",
    }
}

fn from_serde(v: &serde_json::Value) -> Json {
    match v {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(*b),
        serde_json::Value::Number(n) => Json::Number(n.clone()),
        serde_json::Value::String(s) => Json::String(s.clone()),
        serde_json::Value::Array(a) => Json::Array(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Json::Object(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
        }
    }
}

/// The product of the lengths of every `$or` array (EventBridge's combination count).
fn or_product(members: &[(String, Json)]) -> usize {
    let mut product: usize = 1;
    for (key, value) in members {
        match value {
            Json::Array(items) if key == OR => {
                product = product.saturating_mul(items.len().max(1));
                for item in items {
                    if let Json::Object(inner) = item {
                        product = product.saturating_mul(or_product(inner));
                    }
                }
            }
            Json::Object(inner) => product = product.saturating_mul(or_product(inner)),
            _ => {}
        }
        if product > MAX_OR_COMBINATIONS {
            return product;
        }
    }
    product
}

fn compile_alternatives(members: &[(String, Json)], expand_or: bool) -> Result<Vec<Node>> {
    let mut alternatives = Vec::new();
    compile_object(&mut alternatives, &[], members, expand_or, false)?;
    if alternatives.is_empty() {
        alternatives.push(Node::default());
    }
    Ok(alternatives)
}

fn compile_object(
    alternatives: &mut Vec<Node>,
    path: &[String],
    members: &[(String, Json)],
    expand_or: bool,
    inside_or: bool,
) -> Result<()> {
    if members.is_empty() {
        return bad("Empty objects are not allowed");
    }
    for (key, value) in members {
        if key == OR && expand_or {
            compile_or(alternatives, path, value)?;
            continue;
        }
        if inside_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return bad(format!(
                "{key} is Ruler reserved fieldName which cannot be used inside {OR}."
            ));
        }
        let mut child = path.to_vec();
        child.push(key.clone());
        match value {
            Json::Object(inner) => {
                compile_object(alternatives, &child, inner, expand_or, inside_or)?
            }
            Json::Array(items) => {
                let matchers = compile_values(items)?;
                write_leaf(alternatives, &child, matchers);
            }
            _ => return bad(format!("\"{key}\" must be an object or an array")),
        }
    }
    Ok(())
}

fn compile_or(alternatives: &mut Vec<Node>, path: &[String], value: &Json) -> Result<()> {
    let Json::Array(items) = value else {
        return bad(format!("It must be an Array followed with {OR}."));
    };
    let before = std::mem::take(alternatives);
    for item in items {
        let Json::Object(inner) = item else {
            return bad(format!(
                "Only JSON object is allowed in array of {OR} relationship."
            ));
        };
        let mut forked = before.clone();
        if forked.is_empty() {
            forked.push(Node::default());
        }
        compile_object(&mut forked, path, inner, true, true)?;
        alternatives.extend(forked);
        if alternatives.len() > MAX_OR_COMBINATIONS {
            return bad(format!(
                "Event pattern contains more than {MAX_OR_COMBINATIONS} rule combinations"
            ));
        }
    }
    if items.len() < 2 {
        return bad(format!(
            "There must have at least 2 Objects in {OR} relationship."
        ));
    }
    Ok(())
}

/// Records one leaf in every alternative; a later write to the same leaf replaces it.
fn write_leaf(alternatives: &mut Vec<Node>, path: &[String], matchers: Vec<Matcher>) {
    if alternatives.is_empty() {
        alternatives.push(Node::default());
    }
    for alt in alternatives.iter_mut() {
        let conflict = write_into(alt, path, matchers.clone());
        if conflict {
            alt.unsatisfiable = true;
        }
    }
}

/// Writes `matchers` at `path` under `node`; true when the path collides with a leaf/object.
fn write_into(node: &mut Node, path: &[String], matchers: Vec<Matcher>) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let existing = node.fields.iter_mut().find(|(k, _)| k == first);
    if rest.is_empty() {
        return match existing {
            Some((_, Field::Object(_))) => true,
            Some((_, field)) => {
                *field = Field::Leaf(matchers);
                false
            }
            None => {
                node.fields.push((first.clone(), Field::Leaf(matchers)));
                false
            }
        };
    }
    match existing {
        Some((_, Field::Leaf(_))) => true,
        Some((_, Field::Object(child))) => write_into(child, rest, matchers),
        None => {
            let mut child = Node::default();
            let conflict = write_into(&mut child, rest, matchers);
            node.fields.push((first.clone(), Field::Object(child)));
            conflict
        }
    }
}

fn compile_values(items: &[Json]) -> Result<Vec<Matcher>> {
    if items.is_empty() {
        return bad("Empty arrays are not allowed");
    }
    items.iter().map(compile_value).collect()
}

fn compile_value(item: &Json) -> Result<Matcher> {
    Ok(match item {
        Json::Null => Matcher::Null,
        Json::Bool(b) => Matcher::Bool(*b),
        Json::Number(n) => Matcher::Number(Num { value: n.clone() }),
        Json::String(s) => Matcher::String {
            value: s.clone(),
            ip: parse_ip(s),
        },
        Json::Array(_) => return bad("Match value must be String, number, true, false, or null"),
        Json::Object(members) => compile_expression(members)?,
    })
}

fn compile_expression(members: &[(String, Json)]) -> Result<Matcher> {
    let Some((op, operand)) = members.first() else {
        return bad("Match expression name not found");
    };
    let matcher = match op.as_str() {
        "exactly" => match operand {
            Json::String(s) => Matcher::String {
                value: s.clone(),
                ip: None,
            },
            _ => return bad("exact match pattern must be a string"),
        },
        "prefix" | "suffix" => compile_affix(op, operand)?,
        "equals-ignore-case" => match operand {
            Json::String(s) => Matcher::EqualsIgnoreCase(s.clone()),
            _ => return bad("equals-ignore-case match pattern must be a string"),
        },
        "wildcard" => Matcher::Wildcard(compile_wildcard(operand)?),
        "cidr" => match operand {
            Json::String(s) => Matcher::Cidr(compile_cidr(s)?),
            // Event Ruler's own wording for this case names the wrong operator; kept so callers
            // see what EventBridge says.
            _ => return bad("prefix match pattern must be a string"),
        },
        "numeric" => Matcher::Numeric(compile_numeric(operand)?),
        "exists" => match operand {
            Json::Bool(b) => Matcher::Exists(*b),
            _ => return bad("exists match pattern must be either true or false."),
        },
        "anything-but" => Matcher::AnythingBut(compile_anything_but(operand)?),
        other => return bad(format!("Unrecognized match type {other}")),
    };
    if members.len() > 1 {
        // Event Ruler reports the arity of the operand it was reading for these two.
        if op == "numeric" || op == "anything-but" {
            return bad("Too many elements in numeric expression");
        }
        return bad("Only one key allowed in match expression");
    }
    Ok(matcher)
}

fn compile_affix(op: &str, operand: &Json) -> Result<Matcher> {
    let (value, ignore_case) = match operand {
        Json::String(s) => (s.clone(), false),
        Json::Object(inner) => {
            let Some((name, value)) = inner.first() else {
                let mut title = op.to_owned();
                if let Some(c) = title.get_mut(0..1) {
                    c.make_ascii_uppercase();
                }
                return bad(format!("{title} expression name not found"));
            };
            if name != "equals-ignore-case" {
                return bad(format!("Unsupported {op} pattern: {name}"));
            }
            let Json::String(s) = value else {
                return bad("equals-ignore-case match pattern must be a string");
            };
            if inner.len() > 1 {
                return bad("Only one key allowed in match expression");
            }
            (s.clone(), true)
        }
        _ => return bad(format!("{op} match pattern must be a string")),
    };
    Ok(if op == "prefix" {
        Matcher::Prefix { value, ignore_case }
    } else {
        Matcher::Suffix { value, ignore_case }
    })
}

/// Validates a wildcard operand: `*` matches any run of characters, `\*` is a literal star and
/// `\\` a literal backslash; any other escape, and two consecutive stars, are refused. Positions
/// are 1-based byte offsets into the operand (Event Ruler counts the opening quote as 0).
fn compile_wildcard(operand: &Json) -> Result<Wildcard> {
    let Json::String(text) = operand else {
        return bad("wildcard match pattern must be a string");
    };
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut current = Vec::<u8>::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'*' => {
                if bytes.get(i + 1) == Some(&b'*') {
                    return bad(format!("Consecutive wildcard characters at pos {}", i + 1));
                }
                segments.push(utf8(std::mem::take(&mut current)));
                i += 1;
            }
            b'\\' => match bytes.get(i + 1) {
                Some(&c @ (b'*' | b'\\')) => {
                    current.push(c);
                    i += 2;
                }
                _ => return bad(format!("Invalid escape character at pos {}", i + 1)),
            },
            _ => {
                current.push(b);
                i += 1;
            }
        }
    }
    segments.push(utf8(current));
    Ok(Wildcard { segments })
}

/// Literal bytes back to text: splits happen only at ASCII `*` and `\\`, so every segment is
/// whole UTF-8.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn compile_cidr(text: &str) -> Result<Cidr> {
    // Java's String.split drops trailing empty strings: "10.0.0.0/" has one part.
    let mut parts: Vec<&str> = text.split('/').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    let [address, mask] = parts.as_slice() else {
        return bad("Malformed CIDR, one '/' required");
    };
    let bits = parse_java_int(mask)
        .ok_or_else(|| PatternError::new("Malformed CIDR, mask bits must be an integer"))?;
    if bits < 0 {
        return bad("Malformed CIDR, mask bits must not be negative");
    }
    let ip = match looks_like_ip(address) {
        false => return bad(format!("Nonstandard IP address: {address}")),
        true => parse_ip(address)
            .ok_or_else(|| PatternError::new(format!("Invalid IP address: {address}")))?,
    };
    let (base, width, v6) = match ip {
        IpAddr::V4(a) => {
            if bits > 31 {
                return bad("IPv4 mask bits must be < 32");
            }
            (u128::from(u32::from(a)), 32u32, false)
        }
        IpAddr::V6(a) => {
            if bits > 127 {
                return bad("IPv6 mask bits must be < 128");
            }
            (u128::from(a), 128u32, true)
        }
    };
    // `bits` is within 0..width here.
    let host_bits = width - u32::try_from(bits).unwrap_or(0);
    let host_mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    // Event Ruler keeps the address as written as the bottom of the range (it does not clear the
    // host bits) and sets the host bits for the top.
    Ok(Cidr {
        low: base,
        high: base | host_mask,
        v6,
    })
}

/// `Integer.parseInt`: an optional sign and ASCII digits, within i32.
fn parse_java_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    i32::try_from(v).ok().map(i64::from)
}

/// Whether `s` has the shape of an IPv4 (dotted quad of decimal numbers) or IPv6 literal.
fn looks_like_ip(s: &str) -> bool {
    let v4 = {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let v6 = s.contains(':') && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    v4 || v6
}

/// Parses an IP literal as Event Ruler does: decimal octets for IPv4 (a leading zero is not
/// octal), standard IPv6 text.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    if !looks_like_ip(s) {
        return None;
    }
    if s.contains(':') {
        return s.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(s.split('.')) {
        *slot = part.parse::<u8>().ok()?;
    }
    Some(IpAddr::V4(std::net::Ipv4Addr::from(octets)))
}

const NUMERIC_OPS: &[(&str, &str)] = &[
    ("=", "equals"),
    (">", ">"),
    (">=", ">="),
    ("<", "<"),
    ("<=", "<="),
];

fn op_name(op: &str) -> &str {
    NUMERIC_OPS
        .iter()
        .find(|(o, _)| *o == op)
        .map_or(op, |(_, name)| name)
}

/// A numeric threshold: a JSON number within ±5e9, in comparable form.
fn threshold(name: &str, value: Option<&Json>) -> Result<i64> {
    let Some(Json::Number(n)) = value else {
        return bad(format!("Value of {name} must be numeric"));
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    comparable(f).ok_or_else(|| {
        PatternError::new(format!(
            "Value must be between {:.1E} and {:.1E}, inclusive",
            -NUMBER_LIMIT, NUMBER_LIMIT
        ))
    })
}

/// `numeric` is a single comparison, or a lower bound (`>`/`>=`) followed by an upper bound
/// (`<`/`<=`).
fn compile_numeric(operand: &Json) -> Result<Range> {
    let Json::Array(items) = operand else {
        return bad("Value of numeric must be an array.");
    };
    let Some(first) = items.first() else {
        return bad("Invalid member in numeric match: ]");
    };
    let Json::String(op) = first else {
        return bad(format!(
            "Invalid member in numeric match: {}",
            first.token()
        ));
    };
    if !NUMERIC_OPS.iter().any(|(o, _)| o == op) {
        return bad(format!("Unrecognized numeric range operator: {op}"));
    }
    let value = threshold(op_name(op), items.get(1))?;
    let single = match op.as_str() {
        "=" => Range {
            bottom: Some((value, false)),
            top: Some((value, false)),
        },
        "<" => Range {
            bottom: None,
            top: Some((value, true)),
        },
        "<=" => Range {
            bottom: None,
            top: Some((value, false)),
        },
        ">" => Range {
            bottom: Some((value, true)),
            top: None,
        },
        _ => Range {
            bottom: Some((value, false)),
            top: None,
        },
    };
    if items.len() == 2 {
        return Ok(single);
    }
    if !matches!(op.as_str(), ">" | ">=") {
        return bad("Too many elements in numeric expression");
    }
    let second = items.get(2);
    let Some(Json::String(op2)) = second else {
        let token = second.map(Json::token).unwrap_or_default();
        return bad(format!("Bad value in numeric range: {token}"));
    };
    if !matches!(op2.as_str(), "<" | "<=") {
        return bad(format!("Bad numeric range operator: {op2}"));
    }
    let top = threshold(op_name(op2), items.get(3))?;
    if items.len() > 4 {
        return bad("Too many terms in numeric range expression");
    }
    if value >= top {
        return bad("Bottom must be less than top");
    }
    Ok(Range {
        bottom: single.bottom,
        top: Some((top, op2 == "<")),
    })
}

fn compile_anything_but(operand: &Json) -> Result<AnythingBut> {
    match operand {
        Json::Object(inner) => {
            let Some((name, value)) = inner.first() else {
                return bad("Anything-But expression name not found");
            };
            if !matches!(
                name.as_str(),
                "prefix" | "suffix" | "equals-ignore-case" | "wildcard"
            ) {
                return bad(format!("Unsupported anything-but pattern: {name}"));
            }
            let nested = compile_anything_but_nested(name, value)?;
            if inner.len() > 1 {
                return bad("Only one key allowed in match expression");
            }
            Ok(nested)
        }
        Json::Array(items) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in items {
                match item {
                    Json::String(s) => strings.push(s.clone()),
                    Json::Number(_) => numbers.push(threshold("anything-but", Some(item))?),
                    _ => {
                        return bad(
                            "Inside anything but list, start|null|boolean is not supported.",
                        );
                    }
                }
            }
            match (strings.is_empty(), numbers.is_empty()) {
                (false, true) => Ok(AnythingBut::Strings(strings)),
                (true, false) => Ok(AnythingBut::Numbers(numbers)),
                _ => bad(
                    "Inside anything but list, either all values are number or string, mixed type is not supported",
                ),
            }
        }
        Json::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Json::Number(_) => Ok(AnythingBut::Numbers(vec![threshold(
            "anything-but",
            Some(operand),
        )?])),
        Json::Null | Json::Bool(_) => {
            bad("Value of anything-but must be an array or single string/number value.")
        }
    }
}

fn compile_anything_but_nested(name: &str, value: &Json) -> Result<AnythingBut> {
    let candidates: Vec<&Json> = match value {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if candidates.is_empty() {
        // EventBridge accepts an empty list here and then cannot evaluate the rule; refusing it
        // is the only safe reading (an anything-but of nothing would match every event).
        return bad("Empty arrays are not allowed");
    }
    let mut strings = Vec::new();
    for candidate in candidates {
        match candidate {
            Json::Null | Json::Bool(_) => {
                return bad(
                    "Value of anything-but must be an array or single string/number value.",
                );
            }
            Json::String(s) => {
                if (name == "prefix" || name == "suffix") && s.is_empty() {
                    return bad("Null prefix/suffix not allowed");
                }
                strings.push(s.clone());
            }
            _ => {
                return bad(match name {
                    "prefix" | "suffix" => "prefix/suffix match pattern must be a string",
                    "equals-ignore-case" => {
                        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                    }
                    _ => "wildcard match pattern must be a string",
                });
            }
        }
    }
    Ok(match name {
        "prefix" => AnythingBut::Prefixes(strings),
        "suffix" => AnythingBut::Suffixes(strings),
        "equals-ignore-case" => AnythingBut::IgnoreCase(strings),
        _ => AnythingBut::Wildcards(
            strings
                .into_iter()
                .map(|s| compile_wildcard(&Json::String(s)))
                .collect::<Result<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn comparable_numbers_are_exact_to_six_decimals() {
        assert_eq!(comparable(1.0), comparable(1.000_000_1));
        assert!(comparable(1.0) < comparable(1.000_001));
        assert_eq!(comparable(5.0e9 + 1.0), None);
        assert!(comparable(-5.0e9).is_some());
    }

    #[test]
    fn limit_message_reads_like_event_ruler() {
        let e = Pattern::parse(r#"{"a":[{"numeric":[">",6e9]}]}"#).unwrap_err();
        assert_eq!(
            e.reason(),
            "Value must be between -5.0E9 and 5.0E9, inclusive"
        );
    }

    #[test]
    fn wildcard_segments() {
        let w = compile_wildcard(&Json::String(r"a\*b*c\\".into())).unwrap();
        assert_eq!(w.segments, vec!["a*b".to_owned(), r"c\".to_owned()]);
    }
}
