//! Runtime helpers of the generated code: constraint checks in AWS's wording, Java-style value
//! rendering, awsQuery parameter decoding and XML writing. Not a stable API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use citadel_api::{AwsError, ValidationErrors};
use regex::Regex;

use crate::{Blob, SensitiveBlob, SensitiveString, Timestamp};

// ------------------------------------------------------------------------------ validation

/// The size limit patterns are compiled with (xtask checks compilation with the same limit).
pub const REGEX_SIZE_LIMIT: usize = 32 * (1 << 20);

/// Compiles a pattern the generator has already verified; `None` would only mean a mismatch
/// between generator and runtime, and then the pattern is not checked rather than panicking.
pub fn compile(pattern: &str) -> Option<Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
}

/// A model pattern: the Java source (quoted in messages) and its compiled translation.
pub struct Pattern {
    pub source: &'static str,
    pub regex: LazyLock<Option<Regex>>,
}

/// The constraints of one string shape.
pub struct StrRule {
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub pattern: Option<Pattern>,
    pub values: Option<&'static [&'static str]>,
    /// `Member must satisfy enum value set: [A, B]`, or empty.
    pub enum_constraint: &'static str,
}

impl StrRule {
    fn enum_ok(&self, s: &str) -> bool {
        self.values.is_none_or(|v| v.contains(&s))
    }

    fn pattern_ok(&self, s: &str) -> bool {
        match &self.pattern {
            Some(p) => match &*p.regex {
                Some(re) => re.is_match(s),
                None => true,
            },
            None => true,
        }
    }

    pub fn is_ok(&self, s: &str) -> bool {
        self.enum_ok(s)
            && self.pattern_ok(s)
            && length_violation(java_len(s), self.min, self.max).is_none()
    }

    pub fn violated(&self, s: &str) -> bool {
        !self.is_ok(s)
    }
}

/// `String.length()` in Java: UTF-16 code units.
pub fn java_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// `path.name`, or whichever of the two is not empty.
pub fn at(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else if name.is_empty() {
        path.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

pub fn length_violation(len: usize, min: Option<usize>, max: Option<usize>) -> Option<String> {
    if let Some(min) = min
        && len < min
    {
        return Some(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(max) = max
        && len > max
    {
        return Some(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    None
}

pub fn range_violation_i64(v: i64, min: Option<i64>, max: Option<i64>) -> Option<String> {
    if let Some(min) = min
        && v < min
    {
        return Some(format!(
            "Member must have value greater than or equal to {min}"
        ));
    }
    if let Some(max) = max
        && v > max
    {
        return Some(format!(
            "Member must have value less than or equal to {max}"
        ));
    }
    None
}

pub fn range_violation_f64(v: f64, min: Option<f64>, max: Option<f64>) -> Option<String> {
    if let Some(min) = min
        && v < min
    {
        return Some(format!(
            "Member must have value greater than or equal to {}",
            render_bound(min)
        ));
    }
    if let Some(max) = max
        && v > max
    {
        return Some(format!(
            "Member must have value less than or equal to {}",
            render_bound(max)
        ));
    }
    None
}

fn render_bound(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 1e15 {
        format!("{b:.0}")
    } else {
        format!("{b:?}")
    }
}

/// Java's `Double.toString` for ordinary values (`1025.0`, `0.5`).
pub fn render_f64(v: f64) -> String {
    format!("{v:?}")
}

/// Checks a string member in AWS's order: enum, pattern, length.
pub fn check_str(
    errs: &mut ValidationErrors,
    path: &str,
    name: &str,
    v: &str,
    rule: &StrRule,
    redact: bool,
) {
    let push = |errs: &mut ValidationErrors, constraint: &str| {
        if redact {
            errs.push_redacted(&at(path, name), constraint);
        } else {
            errs.push(v, &at(path, name), constraint);
        }
    };
    if !rule.enum_ok(v) {
        push(errs, rule.enum_constraint);
    }
    if !rule.pattern_ok(v)
        && let Some(p) = &rule.pattern
    {
        push(
            errs,
            &format!(
                "Member must satisfy regular expression pattern: {}",
                p.source
            ),
        );
    }
    if let Some(c) = length_violation(java_len(v), rule.min, rule.max) {
        push(errs, &c);
    }
}

/// awsQuery services (STS, IAM) call the validation error `ValidationError`.
pub fn query_validation(r: Result<(), AwsError>) -> Result<(), AwsError> {
    r.map_err(|mut e| {
        if e.code == "ValidationException" {
            e.code = "ValidationError".into();
        }
        e
    })
}

/// Java `toString` of collection values, as AWS prints them in validation messages:
/// `[a, b]`, `{k=v, k2=v2}`.
pub trait JavaRender {
    fn render_into(&self, out: &mut String);
}

impl JavaRender for String {
    fn render_into(&self, out: &mut String) {
        out.push_str(self);
    }
}

macro_rules! render_display {
    ($($t:ty),*) => {$(
        impl JavaRender for $t {
            fn render_into(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
render_display!(i32, i64, bool);

impl JavaRender for f64 {
    fn render_into(&self, out: &mut String) {
        out.push_str(&render_f64(*self));
    }
}

impl JavaRender for f32 {
    fn render_into(&self, out: &mut String) {
        out.push_str(&render_f64(f64::from(*self)));
    }
}

impl<T: JavaRender> JavaRender for Vec<T> {
    fn render_into(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            v.render_into(out);
        }
        out.push(']');
    }
}

impl<T: JavaRender> JavaRender for BTreeMap<String, T> {
    fn render_into(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            v.render_into(out);
        }
        out.push('}');
    }
}

pub fn render<T: JavaRender + ?Sized>(v: &T) -> String {
    let mut out = String::new();
    v.render_into(&mut out);
    out
}

// ------------------------------------------------------------------------------ awsQuery input

/// awsQuery form parameters, indexed by name. A repeated name keeps its last value.
pub struct QueryReader<'a> {
    params: BTreeMap<&'a str, &'a str>,
}

/// `MalformedInput` (400): what AWS's query services answer for a value that is not of the
/// member's type. The message names the parameter, never the value.
fn malformed(key: &str, what: &str) -> AwsError {
    AwsError::new(
        400,
        "MalformedInput",
        format!("Invalid value for parameter {key}: {what}"),
    )
}

impl<'a> QueryReader<'a> {
    pub fn new(params: &'a [(String, String)]) -> Self {
        QueryReader {
            params: params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.params.get(key).copied()
    }

    fn with_prefix<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'a str> + 's {
        use std::ops::Bound;
        self.params
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(k, _)| *k)
            .take_while(move |k| k.starts_with(prefix))
    }

    /// The 1-based indices `N` of keys `prefix N` or `prefix N.…`, ascending.
    fn indices(&self, prefix: &str) -> BTreeSet<u32> {
        self.with_prefix(prefix)
            .filter_map(|k| {
                let n = k[prefix.len()..].split('.').next()?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                n.parse::<u32>().ok().filter(|n| *n > 0)
            })
            .collect()
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, AwsError> {
        Ok(self.get(key).map(str::to_owned))
    }

    pub fn sensitive_string(&self, key: &str) -> Result<Option<SensitiveString>, AwsError> {
        Ok(self.get(key).map(SensitiveString::from))
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, AwsError> {
        self.get(key)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(malformed(key, "boolean must follow xsd1.1 definition")),
            })
            .transpose()
    }

    fn number<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, AwsError> {
        self.get(key)
            .map(|v| v.trim().parse::<T>().map_err(|_| malformed(key, what)))
            .transpose()
    }

    pub fn i32(&self, key: &str) -> Result<Option<i32>, AwsError> {
        self.number(key, "expected an integer")
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, AwsError> {
        self.number(key, "expected a long integer")
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, AwsError> {
        self.number(key, "expected a number")
    }

    pub fn f32(&self, key: &str) -> Result<Option<f32>, AwsError> {
        self.number(key, "expected a number")
    }

    pub fn timestamp(&self, key: &str) -> Result<Option<Timestamp>, AwsError> {
        self.get(key)
            .map(|v| {
                Timestamp::parse_iso8601(v.trim())
                    .ok_or_else(|| malformed(key, "expected an ISO 8601 timestamp"))
            })
            .transpose()
    }

    fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        self.get(key)
            .map(|v| {
                STANDARD
                    .decode(v)
                    .map_err(|_| malformed(key, "expected base64"))
            })
            .transpose()
    }

    pub fn blob(&self, key: &str) -> Result<Option<Blob>, AwsError> {
        Ok(self.bytes(key)?.map(Blob))
    }

    pub fn sensitive_blob(&self, key: &str) -> Result<Option<SensitiveBlob>, AwsError> {
        Ok(self.bytes(key)?.map(SensitiveBlob::new))
    }

    /// A nested structure `key.Member…`: present when any parameter starts with `key.`.
    pub fn structure<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Self, &str) -> Result<T, AwsError>,
    ) -> Result<Option<T>, AwsError> {
        let prefix = format!("{key}.");
        if self.with_prefix(&prefix).next().is_none() {
            return Ok(None);
        }
        read(self, &prefix).map(Some)
    }

    /// A list `key.member.N` (`key.N` when flattened), in index order. `key=` with an empty
    /// value and no items is the empty list.
    pub fn list<T>(
        &self,
        key: &str,
        member: Option<&str>,
        read: impl Fn(&Self, &str) -> Result<Option<T>, AwsError>,
    ) -> Result<Option<Vec<T>>, AwsError> {
        let prefix = match member {
            Some(m) => format!("{key}.{m}."),
            None => format!("{key}."),
        };
        let indices = self.indices(&prefix);
        if indices.is_empty() {
            return Ok((self.get(key) == Some("")).then(Vec::new));
        }
        let mut out = Vec::with_capacity(indices.len());
        for i in indices {
            if let Some(v) = read(self, &format!("{prefix}{i}"))? {
                out.push(v);
            }
        }
        Ok(Some(out))
    }

    /// A map `key.entry.N.key` / `key.entry.N.value` (`key.N.…` when flattened).
    pub fn map<V>(
        &self,
        key: &str,
        entry: Option<&str>,
        key_name: &str,
        value_name: &str,
        read: impl Fn(&Self, &str) -> Result<Option<V>, AwsError>,
    ) -> Result<Option<BTreeMap<String, V>>, AwsError> {
        let prefix = match entry {
            Some(e) => format!("{key}.{e}."),
            None => format!("{key}."),
        };
        let indices = self.indices(&prefix);
        if indices.is_empty() {
            return Ok((self.get(key) == Some("")).then(BTreeMap::new));
        }
        let mut out = BTreeMap::new();
        for i in indices {
            let Some(k) = self.get(&format!("{prefix}{i}.{key_name}")) else {
                continue;
            };
            if let Some(v) = read(self, &format!("{prefix}{i}.{value_name}"))? {
                out.insert(k.to_owned(), v);
            }
        }
        Ok(Some(out))
    }
}

// ------------------------------------------------------------------------------ awsQuery output

pub use citadel_api::xml::escape_into as xml_escape_into;

/// A scalar as awsQuery XML text.
pub trait XmlValue {
    fn write_xml(&self, out: &mut String);
}

impl XmlValue for String {
    fn write_xml(&self, out: &mut String) {
        xml_escape_into(self, out);
    }
}

impl XmlValue for SensitiveString {
    fn write_xml(&self, out: &mut String) {
        xml_escape_into(self.as_str(), out);
    }
}

macro_rules! xml_display {
    ($($t:ty),*) => {$(
        impl XmlValue for $t {
            fn write_xml(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
xml_display!(i32, i64, bool);

impl XmlValue for f64 {
    fn write_xml(&self, out: &mut String) {
        out.push_str(&render_f64(*self));
    }
}

impl XmlValue for f32 {
    fn write_xml(&self, out: &mut String) {
        out.push_str(&render_f64(f64::from(*self)));
    }
}

impl XmlValue for Timestamp {
    fn write_xml(&self, out: &mut String) {
        out.push_str(&self.to_iso8601());
    }
}

impl XmlValue for Blob {
    fn write_xml(&self, out: &mut String) {
        out.push_str(&self.to_base64());
    }
}

impl XmlValue for SensitiveBlob {
    fn write_xml(&self, out: &mut String) {
        out.push_str(&STANDARD.encode(self.as_bytes()));
    }
}

/// `<name>value</name>`.
pub fn xml_value<T: XmlValue + ?Sized>(out: &mut String, name: &str, v: &T) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    v.write_xml(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(java_len("abc"), 3);
        assert_eq!(java_len("é"), 1);
        assert_eq!(java_len("😀"), 2);
    }

    #[test]
    fn paths() {
        assert_eq!(at("", "keyId"), "keyId");
        assert_eq!(at("tags.1.member", "tagKey"), "tags.1.member.tagKey");
        assert_eq!(at("tags.1.member", ""), "tags.1.member");
    }

    #[test]
    fn rendering() {
        assert_eq!(render(&vec!["a".to_owned(), "b".to_owned()]), "[a, b]");
        let m: BTreeMap<String, String> = [("k".to_owned(), "v".to_owned())].into();
        assert_eq!(render(&m), "{k=v}");
        assert_eq!(render_f64(1025.0), "1025.0");
    }

    #[test]
    fn query_lists_maps_and_errors() {
        let p: Vec<(String, String)> = [
            ("A.member.2", "second"),
            ("A.member.1", "first"),
            ("A.member.10", "tenth"),
            ("M.entry.1.key", "k"),
            ("M.entry.1.value", "v"),
            ("E", ""),
            ("N", "12x"),
            ("B", "maybe"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let q = QueryReader::new(&p);
        assert_eq!(
            q.list("A", Some("member"), |q, k| q.string(k)).unwrap(),
            Some(vec!["first".into(), "second".into(), "tenth".into()])
        );
        assert_eq!(
            q.list("E", Some("member"), |q, k| q.string(k)).unwrap(),
            Some(vec![])
        );
        assert_eq!(
            q.list("Z", Some("member"), |q, k| q.string(k)).unwrap(),
            None
        );
        let m = q
            .map("M", Some("entry"), "key", "value", |q, k| q.string(k))
            .unwrap()
            .unwrap();
        assert_eq!(m.get("k").map(String::as_str), Some("v"));
        let e = q.i32("N").unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("MalformedInput", 400));
        assert!(!e.message.unwrap_or_default().contains("12x"));
        assert!(q.boolean("B").is_err());
    }

    #[test]
    fn xml_escapes() {
        let mut s = String::new();
        xml_value(&mut s, "A", &"<&>".to_owned());
        assert_eq!(s, "<A>&lt;&amp;&gt;</A>");
    }
}
