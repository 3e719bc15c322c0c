//! Evaluating a compiled alternative against an event (a `serde_json::Value`).

use serde_json::Value;

use super::{AnythingBut, Cidr, Field, Matcher, Node, Num, Range, Wildcard, comparable, parse_ip};

/// Depth to which nested arrays in an event are followed (deeper nesting offers nothing).
const MAX_ARRAY_DEPTH: usize = 64;

static EMPTY: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(serde_json::Map::new()));

/// Whether `value` (an object; anything else behaves like an empty one) satisfies `node`.
pub(crate) fn node_matches(node: &Node, value: &Value) -> bool {
    if node.unsatisfiable {
        return false;
    }
    let object = value.as_object();
    node.fields.iter().all(|(key, field)| {
        let child = object.and_then(|o| o.get(key));
        match field {
            Field::Leaf(matchers) => leaf_matches(matchers, child),
            Field::Object(sub) => {
                // Each element of an array of objects is offered the whole sub-pattern, so all
                // its fields must come from the same element. A missing, scalar or empty value
                // is matched as an empty object (only `exists: false` can hold there).
                let mut candidates = Vec::new();
                if let Some(c) = child {
                    collect(c, true, 0, &mut candidates);
                }
                if candidates.is_empty() {
                    node_matches(sub, &EMPTY)
                } else {
                    candidates.iter().any(|c| node_matches(sub, c))
                }
            }
        }
    })
}

/// The leaves (`objects == false`) or the objects (`objects == true`) a value offers, flattening
/// arrays recursively.
fn collect<'a>(value: &'a Value, objects: bool, depth: usize, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => {
            if depth < MAX_ARRAY_DEPTH {
                for item in items {
                    collect(item, objects, depth + 1, out);
                }
            }
        }
        Value::Object(_) => {
            if objects {
                out.push(value);
            }
        }
        _ => {
            if !objects {
                out.push(value);
            }
        }
    }
}

fn leaf_matches(matchers: &[Matcher], child: Option<&Value>) -> bool {
    let mut leaves = Vec::new();
    if let Some(c) = child {
        collect(c, false, 0, &mut leaves);
    }
    matchers.iter().any(|m| match m {
        Matcher::Exists(want) => *want != leaves.is_empty(),
        other => leaves.iter().any(|leaf| value_matches(other, leaf)),
    })
}

fn value_matches(matcher: &Matcher, value: &Value) -> bool {
    match matcher {
        Matcher::String { value: s, ip } => match value {
            Value::String(v) => {
                v == s || ip.is_some_and(|ip| parse_ip(v).is_some_and(|other| other == ip))
            }
            _ => false,
        },
        Matcher::Number(n) => match value {
            Value::Number(v) => numbers_equal(n, v),
            _ => false,
        },
        Matcher::Bool(b) => value.as_bool() == Some(*b),
        Matcher::Null => value.is_null(),
        Matcher::Prefix {
            value: p,
            ignore_case,
        } => value
            .as_str()
            .is_some_and(|v| affix(v, p, *ignore_case, true)),
        Matcher::Suffix {
            value: p,
            ignore_case,
        } => value
            .as_str()
            .is_some_and(|v| affix(v, p, *ignore_case, false)),
        Matcher::EqualsIgnoreCase(s) => value.as_str().is_some_and(|v| eq_ignore_case(v, s)),
        Matcher::Wildcard(w) => value.as_str().is_some_and(|v| wildcard(w, v)),
        Matcher::Numeric(r) => value
            .as_f64()
            .filter(|_| value.is_number())
            .and_then(comparable)
            .is_some_and(|c| in_range(r, c)),
        Matcher::Cidr(c) => value.as_str().is_some_and(|v| in_cidr(c, v)),
        // Answered from the key's presence in `leaf_matches`.
        Matcher::Exists(_) => false,
        Matcher::AnythingBut(a) => anything_but(a, value),
    }
}

/// JSON numbers are equal when their comparable forms are (both within ±5e9), otherwise when
/// they are the same number written the same way (integer or not).
fn numbers_equal(pattern: &Num, value: &serde_json::Number) -> bool {
    let p = &pattern.value;
    if let (Some(a), Some(b)) = (
        p.as_f64().and_then(comparable),
        value.as_f64().and_then(comparable),
    ) {
        return a == b;
    }
    match (p.as_i64(), value.as_i64(), p.as_u64(), value.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => p.is_f64() && value.is_f64() && p.as_f64() == value.as_f64(),
    }
}

fn affix(value: &str, operand: &str, ignore_case: bool, prefix: bool) -> bool {
    if ignore_case {
        let (v, o) = (value.to_lowercase(), operand.to_lowercase());
        if prefix {
            v.starts_with(&o)
        } else {
            v.ends_with(&o)
        }
    } else if prefix {
        value.starts_with(operand)
    } else {
        value.ends_with(operand)
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Glob matching with `*` only, in linear time per segment: the first segment must be a prefix,
/// the last a suffix, and the middle ones occur in order (leftmost occurrence is always safe).
pub(crate) fn wildcard(w: &Wildcard, value: &str) -> bool {
    let segments = &w.segments;
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return false;
    };
    if segments.len() == 1 {
        return value == first;
    }
    if value.len() < first.len() + last.len()
        || !value.starts_with(first.as_str())
        || !value.ends_with(last.as_str())
    {
        return false;
    }
    let Some(mut rest) = value.get(first.len()..value.len() - last.len()) else {
        return false;
    };
    for middle in segments
        .iter()
        .skip(1)
        .take(segments.len().saturating_sub(2))
    {
        match rest.find(middle.as_str()) {
            Some(at) => rest = rest.get(at + middle.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    true
}

fn in_range(r: &Range, c: i64) -> bool {
    let above = match r.bottom {
        None => true,
        Some((b, open)) => {
            if open {
                c > b
            } else {
                c >= b
            }
        }
    };
    let below = match r.top {
        None => true,
        Some((t, open)) => {
            if open {
                c < t
            } else {
                c <= t
            }
        }
    };
    above && below
}

fn in_cidr(c: &Cidr, value: &str) -> bool {
    match parse_ip(value) {
        Some(std::net::IpAddr::V4(a)) if !c.v6 => {
            let n = u128::from(u32::from(a));
            (c.low..=c.high).contains(&n)
        }
        Some(std::net::IpAddr::V6(a)) if c.v6 => (c.low..=c.high).contains(&u128::from(a)),
        _ => false,
    }
}

/// `anything-but` matches every leaf its operand does not match, including leaves of another
/// type (a number is "anything but" the string `"x"`); it never matches a missing field.
fn anything_but(a: &AnythingBut, value: &Value) -> bool {
    match a {
        AnythingBut::Strings(list) => !value.as_str().is_some_and(|v| list.iter().any(|s| s == v)),
        AnythingBut::Numbers(list) => {
            !(value.is_number()
                && value
                    .as_f64()
                    .and_then(comparable)
                    .is_some_and(|c| list.contains(&c)))
        }
        AnythingBut::Prefixes(list) => !value
            .as_str()
            .is_some_and(|v| list.iter().any(|p| v.starts_with(p.as_str()))),
        AnythingBut::Suffixes(list) => !value
            .as_str()
            .is_some_and(|v| list.iter().any(|p| v.ends_with(p.as_str()))),
        AnythingBut::IgnoreCase(list) => !value
            .as_str()
            .is_some_and(|v| list.iter().any(|s| eq_ignore_case(v, s))),
        AnythingBut::Wildcards(list) => !value
            .as_str()
            .is_some_and(|v| list.iter().any(|w| wildcard(w, v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(segments: &[&str]) -> Wildcard {
        Wildcard {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn glob_basics() {
        assert!(wildcard(&w(&["", "/lib/", ""]), "/usr/lib/x"));
        assert!(wildcard(&w(&["a", "a"]), "aa"));
        assert!(!wildcard(&w(&["a", "a"]), "a"));
        assert!(wildcard(&w(&["", "a", "b", ""]), "xaxbx"));
        assert!(!wildcard(&w(&["", "b", "a", ""]), "xaxbx"));
        assert!(wildcard(&w(&[""]), ""));
        assert!(wildcard(&w(&["", ""]), ""));
        assert!(!wildcard(&w(&["ab", "ba"]), "aba"));
    }
}
