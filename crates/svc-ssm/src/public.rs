//! Public parameters under `/aws/service/…` (AMI ids, Regions, …): read-only String and
//! StringList parameters every account may read, seeded by the operator from a JSON file
//! (`[ssm] public_parameters = "/path/file.json"`).
//!
//! The file is one JSON object from parameter name to value, or to
//! `{"Value": …, "Type": "String"|"StringList", "DataType": "text"|"aws:ec2:image"}`:
//!
//! ```json
//! {"/aws/service/global-infrastructure/regions/us-east-1": "us-east-1",
//!  "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64":
//!      {"Value": "ami-0123456789abcdef0", "DataType": "aws:ec2:image"}}
//! ```
//!
//! They belong to no account: their ARN has an empty account field, as AWS's do
//! (`arn:aws:ssm:us-east-1::parameter/aws/service/…`), and they are the same in every Region.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::record::{ParamRecord, StoredValue, VersionRecord};

/// Where public parameters live.
pub const PREFIX: &str = "/aws/service/";

/// `[ssm]` in the server's TOML configuration. Unset quotas keep AWS's values
/// ([`crate::Limits`]); [`crate::Limits::from_config`] checks them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SsmConfig {
    /// A JSON file of public parameters (see the module documentation).
    #[serde(default)]
    pub public_parameters: Option<PathBuf>,
    /// Standard-tier parameters per account and Region (AWS: 10,000).
    #[serde(default)]
    pub standard_parameters: Option<u64>,
    /// Advanced-tier parameters per account and Region (AWS: 100,000).
    #[serde(default)]
    pub advanced_parameters: Option<u64>,
    /// Parameter reads and writes per second per account and Region (AWS: 40); 0 = no quota.
    #[serde(default)]
    pub standard_tps: Option<u32>,
    /// The same with higher throughput enabled (AWS: 3,000); 0 = no quota.
    #[serde(default)]
    pub high_throughput_tps: Option<u32>,
}

/// Whether `name` lies under `/aws/service/` (or is that path itself).
pub fn is_public(name: &str) -> bool {
    name.starts_with(PREFIX) || name == "/aws/service"
}

/// The loaded public parameters, by name.
#[derive(Debug, Clone, Default)]
pub struct PublicParameters {
    params: BTreeMap<String, ParamRecord>,
}

impl PublicParameters {
    /// Reads and checks the operator's file; `loaded_ms` becomes their LastModifiedDate.
    pub fn load(path: &Path, loaded_ms: i64) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text, loaded_ms).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, loaded_ms: i64) -> Result<Self, String> {
        let doc: BTreeMap<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut params = BTreeMap::new();
        for (name, v) in doc {
            if !name.starts_with(PREFIX)
                || name.len() <= PREFIX.len()
                || !crate::names::plausible(&name)
            {
                return Err(format!("{name:?} is not a parameter name under {PREFIX}"));
            }
            let (value, param_type, data_type) = match &v {
                Value::String(s) => (s.clone(), "String".to_owned(), "text".to_owned()),
                Value::Object(o) => {
                    let field = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
                    if let Some(k) = o
                        .keys()
                        .find(|k| !["Value", "Type", "DataType"].contains(&k.as_str()))
                    {
                        return Err(format!("{name}: unknown member {k}"));
                    }
                    let value = field("Value").ok_or(format!("{name}: Value is missing"))?;
                    let t = field("Type").unwrap_or_else(|| "String".to_owned());
                    if t != "String" && t != "StringList" {
                        return Err(format!("{name}: Type must be String or StringList"));
                    }
                    (
                        value,
                        t,
                        field("DataType").unwrap_or_else(|| "text".to_owned()),
                    )
                }
                _ => return Err(format!("{name}: the value must be a string or an object")),
            };
            if value.is_empty() {
                return Err(format!("{name}: the value is empty"));
            }
            let latest = VersionRecord {
                version: 1,
                param_type,
                tier: crate::params::STANDARD.to_owned(),
                data_type,
                description: None,
                allowed_pattern: None,
                key_id: None,
                policies: Vec::new(),
                modified_ms: loaded_ms,
                modified_user: String::new(),
                value: StoredValue::Plain { text: value },
            };
            let rec = ParamRecord {
                name: name.clone(),
                latest,
                labels: BTreeMap::new(),
                versions: vec![1],
                tags: Vec::new(),
                expires_ms: None,
                notifications: Vec::new(),
                notified: Vec::new(),
                policies_ms: None,
                resource_policies: Vec::new(),
            };
            params.insert(name, rec);
        }
        Ok(PublicParameters { params })
    }

    pub fn get(&self, name: &str) -> Option<&ParamRecord> {
        self.params.get(name)
    }

    /// The parameters under `path` (one level, or every level with `recursive`) in name
    /// order, after the name `after`.
    pub fn under<'a>(
        &'a self,
        path: &str,
        recursive: bool,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a ParamRecord> + 'a {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let start = after.map_or(prefix.clone(), str::to_owned);
        self.params
            .range(start..)
            .filter(|(n, _)| Some(n.as_str()) != after)
            .take_while(|(n, _)| n.starts_with(&prefix))
            .filter(|(n, _)| recursive || !n[prefix.len()..].contains('/'))
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .into_iter()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_file_and_walks_paths() {
        let p = PublicParameters::parse(
            r#"{"/aws/service/r/us-east-1": "us-east-1", "/aws/service/r/eu-west-1": "eu-west-1",
                "/aws/service/r/x/deeper": {"Value": "a,b", "Type": "StringList"}}"#,
            0,
        )
        .unwrap();
        assert_eq!(p.get("/aws/service/r/us-east-1").unwrap().latest.version, 1);
        let one: Vec<&str> = p
            .under("/aws/service/r", false, None)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            one,
            ["/aws/service/r/eu-west-1", "/aws/service/r/us-east-1"]
        );
        assert_eq!(p.under("/aws/service", true, None).count(), 3);
        assert_eq!(
            p.under("/aws/service/r", true, Some("/aws/service/r/eu-west-1"))
                .count(),
            2
        );
        assert!(PublicParameters::parse(r#"{"/mine/x": "v"}"#, 0).is_err());
        assert!(
            PublicParameters::parse(
                r#"{"/aws/service/x": {"Value": "v", "Type": "SecureString"}}"#,
                0
            )
            .is_err()
        );
    }
}
