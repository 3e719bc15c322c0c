//! Turning an operation's input and output into CloudTrail's `requestParameters` and
//! `responseElements`, driven by the service model (`citadel_model::audit_shape`):
//!
//! - every value of a shape the model marks `sensitive` (KMS `Plaintext`, Secrets Manager
//!   `SecretString`, SSM parameter values, IAM passwords, STS secret access keys …) becomes
//!   [`HIDDEN`], wherever it sits (nested structures, lists, map values);
//! - structure member names are written in lowerCamelCase, as CloudTrail does (`keyId`), while
//!   map keys (an encryption context) are kept as sent;
//! - anything the model does not describe (an unknown member, a value of the wrong kind, which
//!   only malformed input has) is dropped rather than recorded, so nothing unmodelled can carry
//!   a secret into the trail.
//!
//! awsQuery inputs (form parameters) and outputs (XML) are first turned into the same JSON
//! shape the JSON protocols carry.

use citadel_api::{OperationInput, OperationOutput};
use citadel_model::AuditShape;
use citadel_model::audit_shape::lookup;
use serde_json::{Map, Value};

/// What CloudTrail writes in place of a sensitive value.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Nesting deeper than this is dropped (no real input nests anywhere near it).
const MAX_DEPTH: usize = 64;

type Table = &'static [(&'static str, AuditShape)];

/// `KeyId` → `keyId`: CloudTrail lowercases the first letter of member names.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Redacts `value`, a JSON value of `shape` in `service`'s model, into its CloudTrail form.
pub fn redact(service: &str, shape: &str, value: Value) -> Value {
    walk(
        citadel_model::audit_shape::audit_shapes(service),
        shape,
        value,
        0,
    )
}

fn walk(table: Table, shape: &str, value: Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match lookup(table, shape) {
        Some(AuditShape::Sensitive) => Value::String(HIDDEN.to_owned()),
        Some(AuditShape::Structure(members)) => match value {
            Value::Object(object) => {
                let mut out = Map::new();
                for (key, v) in object {
                    if let Some((wire, target)) = members.iter().find(|(wire, _)| *wire == key) {
                        out.insert(lower_camel(wire), walk(table, target, v, depth + 1));
                    }
                }
                Value::Object(out)
            }
            _ => Value::Null,
        },
        Some(AuditShape::List(member)) => match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| walk(table, member, v, depth + 1))
                    .collect(),
            ),
            _ => Value::Null,
        },
        Some(AuditShape::Map(target)) => match value {
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| (k, walk(table, target, v, depth + 1)))
                    .collect(),
            ),
            _ => Value::Null,
        },
        // A scalar that is not sensitive.
        None => match value {
            Value::Array(_) | Value::Object(_) => Value::Null,
            scalar => scalar,
        },
    }
}

/// `requestParameters`: the redacted input. `null` when the operation has no input shape or
/// the input cannot be read at all.
pub fn request_parameters(
    service: &str,
    input_shape: Option<&str>,
    input: &OperationInput,
) -> Value {
    let Some(shape) = input_shape else {
        return Value::Null;
    };
    let table = citadel_model::audit_shape::audit_shapes(service);
    let raw = match input {
        OperationInput::Json(body) => {
            if body.iter().all(u8::is_ascii_whitespace) {
                Value::Object(Map::new())
            } else {
                match serde_json::from_slice::<Value>(body) {
                    Ok(v) => v,
                    Err(_) => return Value::Null,
                }
            }
        }
        OperationInput::Query(params) => query_to_json(table, shape, params),
        OperationInput::Rest {
            labels,
            query,
            body,
        } => {
            let mut object = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) => o,
                _ => Map::new(),
            };
            for (k, v) in labels.iter().chain(query.iter().map(|(k, v)| (k, v))) {
                object.insert(k.clone(), Value::String(v.clone()));
            }
            Value::Object(object)
        }
    };
    walk(table, shape, raw, 0)
}

/// `responseElements` before the read-only rule: the redacted output.
pub fn response_elements(
    service: &str,
    output_shape: Option<&str>,
    output: &OperationOutput,
) -> Value {
    let Some(shape) = output_shape else {
        return Value::Null;
    };
    let table = citadel_model::audit_shape::audit_shapes(service);
    let raw = match output {
        OperationOutput::Json(v) => v.clone(),
        OperationOutput::QueryXml(xml) => match xml::parse(xml) {
            Some(root) => xml_to_json(table, shape, &root, 0),
            None => return Value::Null,
        },
    };
    walk(table, shape, raw, 0)
}

// ------------------------------------------------------------------------- awsQuery input

/// A tree of dotted form keys: `Tags.member.1.Key=k` → `{"Tags":{"member":{"1":{"Key":"k"}}}}`.
#[derive(Default)]
struct Node {
    value: Option<String>,
    children: std::collections::BTreeMap<String, Node>,
}

fn query_to_json(table: Table, shape: &str, params: &[(String, String)]) -> Value {
    let mut root = Node::default();
    for (key, value) in params {
        let mut node = &mut root;
        for part in key.split('.') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.value = Some(value.clone());
    }
    node_to_json(table, shape, &root, 0)
}

/// The children of a list node, in index order: `member.N` (or flattened `N`).
fn indexed<'n>(node: &'n Node, wrapper: &str) -> Vec<&'n Node> {
    let items = node.children.get(wrapper).unwrap_or(node);
    let mut numbered: Vec<(u64, &Node)> = items
        .children
        .iter()
        .filter_map(|(k, v)| k.parse::<u64>().ok().map(|i| (i, v)))
        .collect();
    numbered.sort_by_key(|(i, _)| *i);
    numbered.into_iter().map(|(_, v)| v).collect()
}

fn node_to_json(table: Table, shape: &str, node: &Node, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match lookup(table, shape) {
        Some(AuditShape::Sensitive) => Value::String(HIDDEN.to_owned()),
        Some(AuditShape::Structure(members)) => {
            let mut out = Map::new();
            for (wire, target) in *members {
                if let Some(child) = node.children.get(*wire) {
                    out.insert(
                        (*wire).to_owned(),
                        node_to_json(table, target, child, depth + 1),
                    );
                }
            }
            Value::Object(out)
        }
        Some(AuditShape::List(member)) => Value::Array(
            indexed(node, "member")
                .into_iter()
                .map(|n| node_to_json(table, member, n, depth + 1))
                .collect(),
        ),
        Some(AuditShape::Map(target)) => {
            let mut out = Map::new();
            for entry in indexed(node, "entry") {
                let key = entry.children.get("key").and_then(|k| k.value.clone());
                if let (Some(key), Some(value)) = (key, entry.children.get("value")) {
                    out.insert(key, node_to_json(table, target, value, depth + 1));
                }
            }
            Value::Object(out)
        }
        None => node
            .value
            .as_ref()
            .map_or(Value::Null, |v| Value::String(v.clone())),
    }
}

// ------------------------------------------------------------------------- awsQuery output

fn xml_to_json(table: Table, shape: &str, element: &xml::Element, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match lookup(table, shape) {
        Some(AuditShape::Sensitive) => Value::String(HIDDEN.to_owned()),
        Some(AuditShape::Structure(members)) => {
            let mut out = Map::new();
            for (wire, target) in *members {
                if let Some(child) = element.children.iter().find(|c| c.name == *wire) {
                    out.insert(
                        (*wire).to_owned(),
                        xml_to_json(table, target, child, depth + 1),
                    );
                }
            }
            Value::Object(out)
        }
        Some(AuditShape::List(member)) => Value::Array(
            element
                .children
                .iter()
                .filter(|c| c.name == "member")
                .map(|c| xml_to_json(table, member, c, depth + 1))
                .collect(),
        ),
        Some(AuditShape::Map(target)) => {
            let mut out = Map::new();
            for entry in element.children.iter().filter(|c| c.name == "entry") {
                let key = entry.children.iter().find(|c| c.name == "key");
                let value = entry.children.iter().find(|c| c.name == "value");
                if let (Some(key), Some(value)) = (key, value) {
                    out.insert(
                        key.text.clone(),
                        xml_to_json(table, target, value, depth + 1),
                    );
                }
            }
            Value::Object(out)
        }
        None => Value::String(element.text.clone()),
    }
}

/// Just enough XML for the awsQuery results Citadel itself renders: elements, text, the five
/// predefined entities and character references. No attributes are kept.
mod xml {
    #[derive(Debug, Default)]
    pub struct Element {
        pub name: String,
        pub text: String,
        pub children: Vec<Element>,
    }

    /// Parses a sequence of sibling elements into a synthetic root holding them.
    pub fn parse(input: &str) -> Option<Element> {
        let mut stack: Vec<Element> = vec![Element::default()];
        let mut rest = input;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('<') {
                let end = after.find('>')?;
                let tag = &after[..end];
                rest = &after[end + 1..];
                if tag.starts_with('?') || tag.starts_with('!') {
                    continue;
                }
                if let Some(name) = tag.strip_prefix('/') {
                    let done = stack.pop()?;
                    if done.name != name.trim() {
                        return None;
                    }
                    stack.last_mut()?.children.push(done);
                } else {
                    let self_closing = tag.ends_with('/');
                    let tag = tag.trim_end_matches('/');
                    let name = tag.split_whitespace().next()?.to_owned();
                    let element = Element {
                        name,
                        ..Element::default()
                    };
                    if self_closing {
                        stack.last_mut()?.children.push(element);
                    } else {
                        stack.push(element);
                    }
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let text = unescape(&rest[..end])?;
                stack.last_mut()?.text.push_str(&text);
                rest = &rest[end..];
            }
        }
        if stack.len() != 1 {
            return None;
        }
        stack.pop()
    }

    fn unescape(text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let end = after.find(';')?;
            let entity = &after[..end];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok()?
                    } else {
                        entity.strip_prefix('#')?.parse::<u32>().ok()?
                    };
                    char::from_u32(code)?
                }
            };
            out.push(c);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kms_plaintext_is_hidden_and_names_are_lower_camel() {
        let input = OperationInput::Json(
            serde_json::to_vec(&json!({
                "KeyId": "alias/app",
                "Plaintext": "c2VjcmV0IQ==",
                "EncryptionContext": {"Department": "Eng"},
                "Unmodelled": "dropped"
            }))
            .unwrap()
            .into(),
        );
        let v = request_parameters("kms", Some("EncryptRequest"), &input);
        assert_eq!(
            v,
            json!({"keyId": "alias/app", "plaintext": HIDDEN, "encryptionContext": {"Department": "Eng"}})
        );
    }

    #[test]
    fn nested_lists_and_maps_are_walked() {
        // SSM GetParameters returns a list of parameters whose Value is sensitive.
        let out = OperationOutput::Json(json!({
            "Parameters": [{"Name": "/a", "Value": "s3cret", "Type": "SecureString"}],
            "InvalidParameters": ["x"]
        }));
        let v = response_elements("ssm", Some("GetParametersResult"), &out);
        assert_eq!(
            v,
            json!({"parameters": [{"name": "/a", "value": HIDDEN, "type": "SecureString"}], "invalidParameters": ["x"]})
        );
        assert!(!v.to_string().contains("s3cret"));
    }

    #[test]
    fn wrong_kinds_are_dropped() {
        let input = OperationInput::Json(
            serde_json::to_vec(&json!({"KeyId": {"Plaintext": "x"}, "EncryptionContext": "s"}))
                .unwrap()
                .into(),
        );
        let v = request_parameters("kms", Some("EncryptRequest"), &input);
        assert_eq!(v, json!({"keyId": null, "encryptionContext": null}));
    }

    #[test]
    fn query_input_and_xml_output_are_read_and_redacted() {
        let params = vec![
            ("UserName".to_owned(), "bob".to_owned()),
            ("Password".to_owned(), "hunter2".to_owned()),
            ("PasswordResetRequired".to_owned(), "true".to_owned()),
        ];
        let v = request_parameters(
            "iam",
            Some("CreateLoginProfileRequest"),
            &OperationInput::Query(params),
        );
        assert_eq!(
            v,
            json!({"userName": "bob", "password": HIDDEN, "passwordResetRequired": "true"})
        );

        let xml = "<Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>\
                   <SecretAccessKey>wJalr&amp;XUtn</SecretAccessKey>\
                   <SessionToken>tok</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>\
                   </Credentials><AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/R/s</Arn>\
                   <AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>";
        let v = response_elements(
            "sts",
            Some("AssumeRoleResponse"),
            &OperationOutput::QueryXml(xml.to_owned()),
        );
        assert_eq!(v["credentials"]["accessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["credentials"]["secretAccessKey"], HIDDEN);
        assert_eq!(
            v["assumedRoleUser"]["arn"],
            "arn:aws:sts::1:assumed-role/R/s"
        );
        assert!(!v.to_string().contains("wJalr"));
    }

    #[test]
    fn query_lists_keep_their_order() {
        let params = vec![
            ("RoleName".to_owned(), "r".to_owned()),
            ("Tags.member.2.Key".to_owned(), "b".to_owned()),
            ("Tags.member.1.Key".to_owned(), "a".to_owned()),
            ("Tags.member.1.Value".to_owned(), "1".to_owned()),
        ];
        let v = request_parameters(
            "iam",
            Some("TagRoleRequest"),
            &OperationInput::Query(params),
        );
        assert_eq!(
            v,
            json!({"roleName": "r", "tags": [{"key": "a", "value": "1"}, {"key": "b"}]})
        );
    }
}
