//! The parts of a botocore `service-2.json` the generator reads. Everything else (notably every
//! `documentation` field) is ignored on purpose: model prose never reaches the generated code.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

#[derive(Debug, Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    pub protocol: String,
    pub json_version: Option<String>,
    pub signing_name: Option<String>,
    pub target_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub http: Http,
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub method: String,
    pub request_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    pub location_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: Ordered<ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<ShapeRef>,
    pub key: Option<ShapeRef>,
    pub value: Option<ShapeRef>,
    pub min: Option<serde_json::Number>,
    pub max: Option<serde_json::Number>,
    pub pattern: Option<String>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
    pub error: Option<ErrorTrait>,
    #[serde(default)]
    pub flattened: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status_code: Option<u16>,
}

/// A JSON object whose member order matters (structure members are serialized, validated and
/// written in model order).
#[derive(Debug)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// A numeric constraint as the model states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Int(i64),
    Float(f64),
}

impl Bound {
    pub fn from_number(n: &serde_json::Number) -> Option<Bound> {
        if let Some(i) = n.as_i64() {
            return Some(Bound::Int(i));
        }
        let f = n.as_f64()?;
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            // Integral floats (`"max": 100.0`) read like integers in messages.
            #[allow(clippy::cast_possible_truncation)]
            return Some(Bound::Int(f as i64));
        }
        Some(Bound::Float(f))
    }

    /// The bound as text in a constraint message.
    pub fn text(self) -> String {
        match self {
            Bound::Int(i) => i.to_string(),
            Bound::Float(f) => format!("{f:?}"),
        }
    }

    /// A Rust expression of type `i64`.
    pub fn int_lit(self) -> String {
        match self {
            Bound::Int(i) => format!("{i}"),
            #[allow(clippy::cast_possible_truncation)]
            Bound::Float(f) => format!("{}", f.ceil() as i64),
        }
    }

    /// A Rust expression of type `f64`.
    pub fn float_lit(self) -> String {
        match self {
            Bound::Int(i) => format!("{i}.0"),
            Bound::Float(f) => format!("{f:?}"),
        }
    }

    /// A length bound (non-negative integer).
    pub fn len(self) -> Option<u64> {
        match self {
            Bound::Int(i) => u64::try_from(i).ok(),
            Bound::Float(_) => None,
        }
    }
}

impl Shape {
    pub fn min(&self) -> Option<Bound> {
        self.min.as_ref().and_then(Bound::from_number)
    }
    pub fn max(&self) -> Option<Bound> {
        self.max.as_ref().and_then(Bound::from_number)
    }
}
