//! Property tests: the parser and matcher never panic on arbitrary input, and the operators relate
//! to each other as their definitions say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use citadel_events::Pattern;
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e10f64..1e10).prop_map(|f| json!(f)),
        "[a-z*\\\\/$.0-9:-]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("prefix"),
            Just("suffix"),
            Just("anything-but"),
            Just("numeric"),
            Just("exists"),
            Just("cidr"),
            Just("wildcard"),
            Just("equals-ignore-case"),
            Just("$or"),
            Just(">"),
            Just("<="),
            Just("="),
            Just("10.0.0.0/8"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("prefix".to_owned()),
                        Just("anything-but".to_owned()),
                        Just("numeric".to_owned()),
                        Just("exists".to_owned()),
                        Just("$or".to_owned()),
                        Just("wildcard".to_owned()),
                        Just("cidr".to_owned()),
                        Just("equals-ignore-case".to_owned()),
                        "[a-c]{1,2}",
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_and_match_never_panic(pattern in arb_json(), event in arb_json()) {
        let text = pattern.to_string();
        if let Ok(p) = Pattern::parse(&text) {
            let _ = p.matches(&event);
        }
        let _ = Pattern::from_value(&pattern);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,64}") {
        let _ = Pattern::parse(&text);
    }

    #[test]
    fn a_value_matches_itself_and_not_its_negation(value in arb_json().prop_filter("scalars", |v| !v.is_array() && !v.is_object())) {
        let exact = Pattern::from_value(&json!({"f": [value.clone()]})).unwrap();
        let same = json!({"f": value.clone()});
        let among = json!({"f": ["other", value.clone()]});
        let elsewhere = json!({"g": value.clone()});
        prop_assert!(exact.matches(&same));
        prop_assert!(exact.matches(&among));
        prop_assert!(!exact.matches(&elsewhere));
        if let Value::String(_) | Value::Number(_) = &value
            && let Ok(negated) = Pattern::from_value(&json!({"f": [{"anything-but": value.clone()}]}))
        {
            prop_assert!(!negated.matches(&same));
        }
    }

    #[test]
    fn prefixes_suffixes_and_wildcards_agree(s in "[a-z]{0,12}", split in 0usize..12) {
        let cut = split.min(s.len());
        let (head, tail) = s.split_at(cut);
        let ev = json!({"f": s.clone()});
        let prefix = Pattern::from_value(&json!({"f": [{"prefix": head}]})).unwrap();
        let suffix = Pattern::from_value(&json!({"f": [{"suffix": tail}]})).unwrap();
        let glob = Pattern::from_value(&json!({"f": [{"wildcard": format!("{head}*{tail}")}]})).unwrap();
        let upper = Pattern::from_value(&json!({"f": [{"prefix": {"equals-ignore-case": head.to_uppercase()}}]})).unwrap();
        prop_assert!(prefix.matches(&ev));
        prop_assert!(suffix.matches(&ev));
        prop_assert!(glob.matches(&ev));
        prop_assert!(upper.matches(&ev));
        if !head.is_empty() {
            let not_prefix = Pattern::from_value(&json!({"f": [{"anything-but": {"prefix": head}}]})).unwrap();
            prop_assert!(!not_prefix.matches(&ev));
        }
    }

    #[test]
    fn numeric_ranges_agree_with_comparison(a in -1.0e6f64..1.0e6, b in -1.0e6f64..1.0e6) {
        let p = Pattern::from_value(&json!({"n": [{"numeric": [">=", a]}]})).unwrap();
        // Comparisons are exact to six decimals; stay clear of that resolution.
        if (a - b).abs() > 1e-5 {
            let ev = json!({"n": b});
            prop_assert_eq!(p.matches(&ev), b >= a);
        }
    }

    #[test]
    fn ipv4_in_its_own_slash_24(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255, e in 0u8..=255) {
        let p = Pattern::from_value(&json!({"ip": [{"cidr": format!("{a}.{b}.{c}.0/24")}]})).unwrap();
        let inside = json!({"ip": format!("{a}.{b}.{c}.{d}")});
        let outside = json!({"ip": format!("{a}.{b}.{e}.{d}")});
        prop_assert!(p.matches(&inside));
        if e != c {
            prop_assert!(!p.matches(&outside));
        }
    }
}
