//! `ParameterFilters` (DescribeParameters, GetParametersByPath) and the legacy `Filters` of
//! DescribeParameters: checked as AWS checks them, then matched against parameters.

use citadel_api::AwsError;
use citadel_model::ssm;

use crate::errors;
use crate::names;
use crate::record::ParamRecord;

/// Which operation the filters belong to (they accept different keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Describe,
    ByPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Equals,
    BeginsWith,
    Contains,
    Recursive,
    OneLevel,
}

#[derive(Debug, Clone)]
enum FilterKey {
    Name,
    Path,
    Type,
    KeyId,
    Label,
    Tier,
    DataType,
    Tag(String),
}

#[derive(Debug, Clone)]
struct Filter {
    key: FilterKey,
    option: Opt,
    values: Vec<String>,
}

/// Filters, all of which a parameter must match.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    filters: Vec<Filter>,
}

const TYPES: &[&str] = &["String", "StringList", "SecureString"];
const TIERS: &[&str] = &["Standard", "Advanced", "Intelligent-Tiering"];

fn option_list(key: &FilterKey) -> &'static str {
    match key {
        FilterKey::Path => "[Recursive, OneLevel]",
        FilterKey::Name => "[BeginsWith, Equals, Contains]",
        FilterKey::Label => "[Equals]",
        _ => "[BeginsWith, Equals]",
    }
}

impl FilterSet {
    /// Checks `ParameterFilters`.
    pub fn parse(
        filters: Option<&[ssm::ParameterStringFilter]>,
        usage: Use,
    ) -> Result<FilterSet, AwsError> {
        let mut out = FilterSet::default();
        let mut seen: Vec<String> = Vec::new();
        for f in filters.unwrap_or_default() {
            let key_text = f.key.clone().unwrap_or_default();
            let key = match key_text.as_str() {
                "Name" => FilterKey::Name,
                "Path" => FilterKey::Path,
                "Type" => FilterKey::Type,
                "KeyId" => FilterKey::KeyId,
                "Label" => FilterKey::Label,
                "Tier" => FilterKey::Tier,
                "DataType" => FilterKey::DataType,
                t => match t.strip_prefix("tag:") {
                    Some(tag) if !tag.is_empty() => FilterKey::Tag(tag.to_owned()),
                    _ => return Err(errors::invalid_filter_key(&key_text)),
                },
            };
            let allowed_here = match usage {
                Use::Describe => !matches!(key, FilterKey::Label),
                Use::ByPath => matches!(
                    key,
                    FilterKey::Type
                        | FilterKey::KeyId
                        | FilterKey::Label
                        | FilterKey::DataType
                        | FilterKey::Tag(_)
                ),
            };
            if !allowed_here {
                return Err(errors::invalid_filter_key(&key_text));
            }
            if seen.contains(&key_text) {
                return Err(errors::invalid_filter_key(&key_text));
            }
            seen.push(key_text.clone());
            let option_text = f.option.clone().unwrap_or_else(|| {
                if matches!(key, FilterKey::Path) {
                    "OneLevel".to_owned()
                } else {
                    "Equals".to_owned()
                }
            });
            let option = match (&key, option_text.as_str()) {
                (FilterKey::Path, "Recursive") => Opt::Recursive,
                (FilterKey::Path, "OneLevel") => Opt::OneLevel,
                (FilterKey::Path, _) => None.ok_or_else(|| bad_option(&option_text, &key))?,
                (FilterKey::Label, "Equals") => Opt::Equals,
                (FilterKey::Label, _) => None.ok_or_else(|| bad_option(&option_text, &key))?,
                (_, "Equals") => Opt::Equals,
                (_, "BeginsWith") => Opt::BeginsWith,
                (FilterKey::Name, "Contains") => Opt::Contains,
                _ => None.ok_or_else(|| bad_option(&option_text, &key))?,
            };
            let values = f.values.clone().unwrap_or_default();
            if values.is_empty() && !matches!(key, FilterKey::Tag(_)) {
                return Err(errors::invalid_filter_value(format!(
                    "The following filter values are missing : null for filter key {key_text}."
                )));
            }
            match &key {
                FilterKey::Type => check_values(&values, TYPES)?,
                FilterKey::Tier => check_values(&values, TIERS)?,
                FilterKey::Path => {
                    for v in &values {
                        let lower = v.to_ascii_lowercase();
                        if lower.starts_with("/aws") || lower.starts_with("/ssm") {
                            return Err(errors::validation(
                                "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global parameters, please specify within a global namespace.",
                            ));
                        }
                        names::validate_path(v)?;
                    }
                }
                _ => {}
            }
            let values = match key {
                FilterKey::Path => values
                    .iter()
                    .map(|v| names::validate_path(v))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => values,
            };
            out.filters.push(Filter {
                key,
                option,
                values,
            });
        }
        Ok(out)
    }

    /// Checks the legacy `Filters` of DescribeParameters (Name: begins with; Type, KeyId:
    /// equals).
    pub fn legacy(filters: &[ssm::ParametersFilter]) -> Result<FilterSet, AwsError> {
        let mut out = FilterSet::default();
        for f in filters {
            let values = f.values.clone().unwrap_or_default();
            let (key, option) = match f.key.as_deref().unwrap_or_default() {
                "Name" => (FilterKey::Name, Opt::BeginsWith),
                "Type" => {
                    check_values(&values, TYPES)?;
                    (FilterKey::Type, Opt::Equals)
                }
                "KeyId" => (FilterKey::KeyId, Opt::Equals),
                other => return Err(errors::invalid_filter_key(other)),
            };
            out.filters.push(Filter {
                key,
                option,
                values,
            });
        }
        Ok(out)
    }

    /// The Label filter's values (GetParametersByPath returns the labelled version).
    pub fn label(&self) -> Option<&[String]> {
        self.filters.iter().find_map(|f| match f.key {
            FilterKey::Label => Some(f.values.as_slice()),
            _ => None,
        })
    }

    /// The one hierarchy a single-valued Path filter names, and whether it is recursive.
    pub fn single_path(&self) -> Option<(String, bool)> {
        self.filters.iter().find_map(|f| match f.key {
            FilterKey::Path if f.values.len() == 1 => f
                .values
                .first()
                .map(|v| (v.clone(), f.option == Opt::Recursive)),
            _ => None,
        })
    }

    pub fn matches(&self, rec: &ParamRecord) -> bool {
        self.filters.iter().all(|f| f.matches(rec))
    }
}

fn bad_option(option: &str, key: &FilterKey) -> AwsError {
    errors::invalid_filter_option(format!(
        "The following filter option is not valid: {option}. Valid options include: {}.",
        option_list(key)
    ))
}

fn check_values(values: &[String], allowed: &[&str]) -> Result<(), AwsError> {
    match values.iter().find(|v| !allowed.contains(&v.as_str())) {
        Some(v) => Err(errors::invalid_filter_value(format!(
            "The following filter value is not valid: {v}. Valid values include: [{}].",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn compare(option: Opt, what: &str, values: &[String]) -> bool {
    values.iter().any(|v| match option {
        Opt::Equals => what == v,
        Opt::BeginsWith => what.starts_with(v.as_str()),
        Opt::Contains => what.contains(v.as_str()),
        Opt::Recursive | Opt::OneLevel => false,
    })
}

/// `/a/b` for `a/b` or `/a/b`: names compare in their fully qualified form.
fn qualified(name: &str) -> String {
    format!("/{}", names::resource(name))
}

impl Filter {
    fn matches(&self, rec: &ParamRecord) -> bool {
        let v = &rec.latest;
        match &self.key {
            FilterKey::Name => {
                if self.option == Opt::Contains {
                    compare(self.option, &rec.name, &self.values)
                } else {
                    let values: Vec<String> = self.values.iter().map(|s| qualified(s)).collect();
                    compare(self.option, &qualified(&rec.name), &values)
                }
            }
            FilterKey::Path => {
                let name = qualified(&rec.name);
                self.values.iter().any(|path| {
                    let base = if path == "/" {
                        "/".to_owned()
                    } else {
                        format!("{path}/")
                    };
                    match name.strip_prefix(&base) {
                        None => false,
                        Some(rest) => self.option == Opt::Recursive || !rest.contains('/'),
                    }
                })
            }
            FilterKey::Type => compare(self.option, &v.param_type, &self.values),
            FilterKey::KeyId => v
                .key_id
                .as_deref()
                .is_some_and(|k| compare(self.option, k, &self.values)),
            FilterKey::Tier => compare(self.option, &v.tier, &self.values),
            FilterKey::DataType => compare(self.option, &v.data_type, &self.values),
            FilterKey::Label => self.values.iter().any(|l| rec.labels.contains_key(l)),
            FilterKey::Tag(tag) => rec.tags.iter().any(|(k, val)| {
                k == tag && (self.values.is_empty() || compare(self.option, val, &self.values))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn f(key: &str, option: Option<&str>, values: &[&str]) -> ssm::ParameterStringFilter {
        ssm::ParameterStringFilter {
            key: Some(key.into()),
            option: option.map(Into::into),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn keys_and_options_are_checked() {
        let e = FilterSet::parse(Some(&[f("Label", None, &["x"])]), Use::Describe).unwrap_err();
        assert_eq!(e.code, "InvalidFilterKey");
        assert!(e.message.is_none());
        let e = FilterSet::parse(Some(&[f("Name", None, &["x"])]), Use::ByPath).unwrap_err();
        assert_eq!(e.code, "InvalidFilterKey");
        let e = FilterSet::parse(
            Some(&[f("Type", Some("Contains"), &["String"])]),
            Use::Describe,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidFilterOption");
        let e = FilterSet::parse(Some(&[f("Type", None, &["Nope"])]), Use::Describe).unwrap_err();
        assert_eq!(e.code, "InvalidFilterValue");
        let e = FilterSet::parse(Some(&[f("Path", None, &["/aws/x"])]), Use::Describe).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let e = FilterSet::parse(
            Some(&[f("Type", None, &["String"]), f("Type", None, &["String"])]),
            Use::Describe,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidFilterKey");
        let s = FilterSet::parse(
            Some(&[f("Path", Some("Recursive"), &["/a/"])]),
            Use::Describe,
        )
        .unwrap();
        assert_eq!(s.single_path(), Some(("/a".to_owned(), true)));
    }
}
