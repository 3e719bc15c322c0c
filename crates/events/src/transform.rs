//! What a target receives: the whole event, a constant (`Input`), one part of the event
//! (`InputPath`), or a template filled from the event (`InputTransformer`), applied as EventBridge
//! applies them.
//!
//! JSONPath is EventBridge's subset: `$`, dot notation (`$.detail.state`, names with dashes,
//! underscores, slashes…), array indices (`$.resources[0]`) and wildcards (`$.detail.*`,
//! `$.items[*]`, which yield an array of what they reach).
//!
//! `InputTemplate` placeholders are `<name>` for a key of `InputPathsMap` or one of the reserved
//! variables `aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event.ingestion-time`,
//! `aws.events.event` (the event without `detail`) and `aws.events.event.json` (the whole event).
//! Quoting follows EventBridge:
//! - a template that is a JSON object or array is filled as JSON: a placeholder outside a string
//!   receives the value as JSON (a string with its quotes, `null` when the path is missing); a
//!   placeholder inside a string receives the value's text, escaped for that string (`""` when
//!   missing); the result must be valid JSON;
//! - any other template is text: strings are inserted without quotes, other values as JSON,
//!   missing paths as nothing.
//!
//! A `<word>` that names no variable is left as written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::event::Event;

/// Why a target's input configuration is refused (at PutTargets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("Only one of Input, InputPath, or InputTransformer can be provided for a target.")]
    Conflicting,
    #[error("Input is not valid JSON text: {0}")]
    InputNotJson(String),
    #[error("Invalid InputPath '{path}': {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("InputPathsMap key '{0}' is reserved: variable names cannot start with 'aws.'")]
    ReservedVariable(String),
    #[error("InputTemplate is not valid JSON once its placeholders are filled: {0}")]
    TemplateNotJson(String),
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Name(String),
    Index(usize),
    Wildcard,
}

/// A parsed JSONPath of EventBridge's subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, TransformError> {
        let err = |reason: &str| TransformError::InvalidPath {
            path: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(err("a path starts with $"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let (name, tail) = after.split_at(end);
                if name.is_empty() {
                    return Err(err("empty member name"));
                }
                if name.contains([']', '\'', '"', ' ']) {
                    return Err(err("use dot notation with plain member names"));
                }
                steps.push(if name == "*" {
                    Step::Wildcard
                } else {
                    Step::Name(name.to_owned())
                });
                rest = tail;
            } else if let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else {
                    return Err(err("unclosed ["));
                };
                let (inside, tail) = after.split_at(end);
                steps.push(if inside == "*" {
                    Step::Wildcard
                } else {
                    Step::Index(
                        inside
                            .parse()
                            .map_err(|_| err("only array indices and * may appear in brackets"))?,
                    )
                });
                rest = tail.get(1..).unwrap_or_default();
            } else {
                return Err(err("expected . or ["));
            }
        }
        Ok(JsonPath {
            text: text.to_owned(),
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the path reaches in `root`; `None` when it reaches nothing.
    pub fn select(&self, root: &Value) -> Option<Value> {
        let mut current: Vec<&Value> = vec![root];
        let mut multi = false;
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Name(n) => {
                        if let Some(c) = v.get(n) {
                            next.push(c);
                        }
                    }
                    Step::Index(i) => {
                        if let Some(c) = v.get(*i) {
                            next.push(c);
                        }
                    }
                    Step::Wildcard => {
                        multi = true;
                        match v {
                            Value::Array(a) => next.extend(a.iter()),
                            Value::Object(o) => next.extend(o.values()),
                            _ => {}
                        }
                    }
                }
            }
            current = next;
        }
        if multi {
            Some(Value::Array(current.into_iter().cloned().collect()))
        } else {
            current.into_iter().next().cloned()
        }
    }
}

/// What the rule knows about itself at delivery, for the reserved template variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryContext {
    pub rule_name: String,
    pub rule_arn: String,
    /// When the bus accepted the event (ISO 8601).
    pub ingestion_time: String,
}

/// A target's input configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum InputShape {
    /// The event as EventBridge delivers it.
    Whole,
    /// `Input`: this JSON text, verbatim.
    Constant(String),
    /// `InputPath`.
    Path(JsonPath),
    /// `InputTransformer`.
    Transformer {
        paths: BTreeMap<String, JsonPath>,
        template: String,
    },
}

/// The reserved template variables.
const RESERVED: &[&str] = &[
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
];

impl InputShape {
    /// Validates a target's `Input` / `InputPath` / `InputTransformer` (at most one).
    pub fn from_target(
        input: Option<&str>,
        input_path: Option<&str>,
        transformer: Option<(&BTreeMap<String, String>, &str)>,
    ) -> Result<InputShape, TransformError> {
        let given = usize::from(input.is_some())
            + usize::from(input_path.is_some())
            + usize::from(transformer.is_some());
        if given > 1 {
            return Err(TransformError::Conflicting);
        }
        if let Some(text) = input {
            serde_json::from_str::<Value>(text).map_err(|e| {
                TransformError::InputNotJson(format!("line {} column {}", e.line(), e.column()))
            })?;
            return Ok(InputShape::Constant(text.to_owned()));
        }
        if let Some(path) = input_path {
            return Ok(InputShape::Path(JsonPath::parse(path)?));
        }
        let Some((map, template)) = transformer else {
            return Ok(InputShape::Whole);
        };
        let mut paths = BTreeMap::new();
        for (name, path) in map {
            if name.to_ascii_lowercase().starts_with("aws.") {
                return Err(TransformError::ReservedVariable(name.clone()));
            }
            paths.insert(name.clone(), JsonPath::parse(path)?);
        }
        if is_json_template(template) {
            // Fill every variable with nothing (null / "") and check the result parses.
            let probe = fill(template, &|name| {
                (RESERVED.contains(&name) || paths.contains_key(name)).then_some(None)
            });
            serde_json::from_str::<Value>(&probe).map_err(|e| {
                TransformError::TemplateNotJson(format!("line {} column {}", e.line(), e.column()))
            })?;
        }
        Ok(InputShape::Transformer {
            paths,
            template: template.to_owned(),
        })
    }

    /// The body delivered to the target for `event`.
    pub fn apply(&self, event: &Event, ctx: &DeliveryContext) -> String {
        match self {
            InputShape::Whole => event.to_json(),
            InputShape::Constant(text) => text.clone(),
            InputShape::Path(path) => path
                .select(&event.to_value())
                .map_or_else(|| "null".to_owned(), |v| v.to_string()),
            InputShape::Transformer { paths, template } => {
                let root = event.to_value();
                let lookup = |name: &str| -> Option<Value> {
                    match name {
                        "aws.events.rule-arn" => Some(Value::String(ctx.rule_arn.clone())),
                        "aws.events.rule-name" => Some(Value::String(ctx.rule_name.clone())),
                        "aws.events.event.ingestion-time" => {
                            Some(Value::String(ctx.ingestion_time.clone()))
                        }
                        "aws.events.event" => {
                            let mut without = root.clone();
                            if let Some(o) = without.as_object_mut() {
                                o.remove("detail");
                            }
                            Some(without)
                        }
                        "aws.events.event.json" => Some(root.clone()),
                        other => paths.get(other).and_then(|p| p.select(&root)),
                    }
                };
                fill(template, &|name| {
                    if RESERVED.contains(&name) || paths.contains_key(name) {
                        Some(lookup(name))
                    } else {
                        None
                    }
                })
            }
        }
    }
}

fn is_json_template(template: &str) -> bool {
    let t = template.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

/// Fills `<name>` placeholders. `resolve(name)` is `None` for an unknown name (left as written),
/// `Some(None)` for a known variable whose path reached nothing, `Some(Some(v))` for a value.
fn fill(template: &str, resolve: &dyn Fn(&str) -> Option<Option<Value>>) -> String {
    let json = is_json_template(template);
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && let Some(name) = rest.get(1..end)
            && !name.is_empty()
            && !name.contains(['<', '"', '\n'])
            && let Some(value) = resolve(name)
        {
            render(&mut out, value.as_ref(), json, in_string);
            rest = rest.get(end + 1..).unwrap_or_default();
            escaped = false;
            continue;
        }
        if json {
            if escaped {
                escaped = false;
            } else if c == '\\' && in_string {
                escaped = true;
            } else if c == '"' {
                in_string = !in_string;
            }
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out
}

fn render(out: &mut String, value: Option<&Value>, json: bool, in_string: bool) {
    match (json, in_string, value) {
        // JSON template, outside a string: the value as JSON.
        (true, false, None) => out.push_str("null"),
        (true, false, Some(v)) => out.push_str(&v.to_string()),
        // Inside a JSON string: the value's text, escaped for the string.
        (true, true, None) | (false, _, None) => {}
        (true, true, Some(v)) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let quoted = Value::String(text).to_string();
            out.push_str(
                quoted
                    .get(1..quoted.len().saturating_sub(1))
                    .unwrap_or_default(),
            );
        }
        // Text template: strings raw, everything else as JSON.
        (false, _, Some(Value::String(s))) => out.push_str(s),
        (false, _, Some(v)) => out.push_str(&v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event() -> Event {
        serde_json::from_value(serde_json::json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "n": 3,
                       "tags": [{"k": "a"}, {"k": "b"}], "quote": "say \"hi\""}
        }))
        .unwrap()
    }

    fn ctx() -> DeliveryContext {
        DeliveryContext {
            rule_name: "r".into(),
            rule_arn: "arn:aws:events:us-east-1:123456789012:rule/r".into(),
            ingestion_time: "2015-11-11T21:29:55Z".into(),
        }
    }

    fn transformer(map: &[(&str, &str)], template: &str) -> InputShape {
        let map: BTreeMap<String, String> = map
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        InputShape::from_target(None, None, Some((&map, template))).unwrap()
    }

    #[test]
    fn paths_select_like_eventbridge() {
        let v = event().to_value();
        let sel = |p: &str| JsonPath::parse(p).unwrap().select(&v);
        assert_eq!(sel("$.detail.state"), Some(Value::from("RUNNING")));
        assert_eq!(sel("$.resources[0]").unwrap(), v["resources"][0]);
        assert_eq!(
            sel("$.detail.tags[*].k"),
            Some(serde_json::json!(["a", "b"]))
        );
        assert_eq!(sel("$.detail.missing"), None);
        assert_eq!(sel("$").unwrap(), v);
        assert!(JsonPath::parse("detail").is_err());
        assert!(JsonPath::parse("$['detail']").is_err());
        assert!(JsonPath::parse("$.a..b").is_err());
    }

    #[test]
    fn text_template_inserts_strings_raw() {
        let t = transformer(
            &[
                ("instance", "$.detail.instance-id"),
                ("status", "$.detail.state"),
            ],
            "<instance> is in state <status>",
        );
        assert_eq!(
            t.apply(&event(), &ctx()),
            "i-0123456789 is in state RUNNING"
        );
    }

    #[test]
    fn json_template_quotes_outside_and_escapes_inside_strings() {
        let t = transformer(
            &[
                ("instance", "$.detail.instance-id"),
                ("status", "$.detail.state"),
                ("n", "$.detail.n"),
                ("q", "$.detail.quote"),
                ("missing", "$.detail.nope"),
            ],
            r#"{"myInstance": <instance>, "myStatus": "<instance> is in state \"<status>\"", "n": <n>, "q": "<q>", "m": <missing>, "ms": "<missing>", "rule": "<aws.events.rule-name>"}"#,
        );
        let out: Value = serde_json::from_str(&t.apply(&event(), &ctx())).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"myInstance": "i-0123456789",
                "myStatus": "i-0123456789 is in state \"RUNNING\"", "n": 3,
                "q": "say \"hi\"", "m": null, "ms": "", "rule": "r"})
        );
    }

    #[test]
    fn reserved_event_variables() {
        let t = transformer(
            &[],
            r#"{"e": <aws.events.event>, "full": <aws.events.event.json>, "t": "<aws.events.event.ingestion-time>"}"#,
        );
        let out: Value = serde_json::from_str(&t.apply(&event(), &ctx())).unwrap();
        assert!(out["e"].get("detail").is_none());
        assert_eq!(out["e"]["source"], "aws.ec2");
        assert_eq!(out["full"], event().to_value());
        assert_eq!(out["t"], "2015-11-11T21:29:55Z");
    }

    #[test]
    fn unknown_placeholders_stay_and_bad_configs_fail() {
        let t = transformer(&[], "<b>bold</b>");
        assert_eq!(t.apply(&event(), &ctx()), "<b>bold</b>");
        assert_eq!(
            InputShape::from_target(Some("{}"), Some("$"), None),
            Err(TransformError::Conflicting)
        );
        assert!(matches!(
            InputShape::from_target(Some("{not json"), None, None),
            Err(TransformError::InputNotJson(_))
        ));
        let map = BTreeMap::from([("x".to_owned(), "$.detail".to_owned())]);
        assert!(matches!(
            InputShape::from_target(None, None, Some((&map, "{\"a\": <x>"))),
            Err(TransformError::TemplateNotJson(_))
        ));
    }

    #[test]
    fn input_path_and_constant() {
        let p = InputShape::from_target(None, Some("$.detail.state"), None).unwrap();
        assert_eq!(p.apply(&event(), &ctx()), "\"RUNNING\"");
        let c = InputShape::from_target(Some(r#"{"fixed":1}"#), None, None).unwrap();
        assert_eq!(c.apply(&event(), &ctx()), r#"{"fixed":1}"#);
        assert_eq!(InputShape::Whole.apply(&event(), &ctx()), event().to_json());
    }
}
