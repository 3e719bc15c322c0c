//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'default'}` and the escapes
//! `${*}`, `${?}`, `${$}`. Parsed once; substituted per request only where a policy uses them.

use std::borrow::Cow;

use super::context::EvalContext;
use super::glob::{Glob, Tok, push_literal_text, push_pattern_text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Policy text; `*` and `?` in it are wildcards where the operator supports them.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: the character itself, never a wildcard.
    Special(char),
    /// A context key (lower-cased: key names are case-insensitive) and its optional default.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A string from a policy that may contain policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `s`. Variables exist only in policy language version 2012-10-17; in older
    /// documents `${…}` is literal text, as AWS treats it.
    pub(crate) fn parse(s: &str, variables: bool) -> Template {
        if !variables || !s.contains("${") {
            return Template {
                parts: vec![Part::Text(s.to_owned())],
            };
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some((before, after)) = rest.split_once("${") {
            if !before.is_empty() {
                push_text(&mut parts, before);
            }
            match parse_var(after) {
                Some((part, remaining)) => {
                    parts.push(part);
                    rest = remaining;
                }
                None => {
                    // Not a well-formed variable: AWS keeps such text as written.
                    push_text(&mut parts, "${");
                    rest = after;
                }
            }
        }
        if !rest.is_empty() {
            push_text(&mut parts, rest);
        }
        Template { parts }
    }

    /// The text when the template holds no variables or escapes (the common case, precompiled).
    pub(crate) fn as_plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(t)] => Some(t),
            [] => Some(""),
            _ => None,
        }
    }

    /// Substitutes the variables; `None` when one cannot be resolved and has no default, which
    /// makes the policy element that holds it not match.
    pub(crate) fn resolve<'a>(&'a self, ctx: &'a EvalContext) -> Option<Cow<'a, str>> {
        if let Some(plain) = self.as_plain() {
            return Some(Cow::Borrowed(plain));
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Special(c) => out.push(*c),
                Part::Var { key, default } => out.push_str(&lookup(ctx, key, default.as_deref())?),
            }
        }
        Some(Cow::Owned(out))
    }

    /// Builds the wildcard pattern for this template: wildcards come only from policy text,
    /// never from escapes or substituted values.
    pub(crate) fn to_glob(&self, ctx: &EvalContext) -> Option<Glob> {
        let mut toks: Vec<Tok> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => push_pattern_text(&mut toks, t),
                Part::Special(c) => toks.push(Tok::Lit(*c)),
                Part::Var { key, default } => {
                    push_literal_text(&mut toks, &lookup(ctx, key, default.as_deref())?)
                }
            }
        }
        Some(Glob::from_tokens(toks))
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if let Some(Part::Text(prev)) = parts.last_mut() {
        prev.push_str(text);
    } else {
        parts.push(Part::Text(text.to_owned()));
    }
}

fn lookup<'a>(ctx: &'a EvalContext, key: &str, default: Option<&'a str>) -> Option<Cow<'a, str>> {
    match ctx.variable(key) {
        Some(v) => Some(v),
        None => default.map(Cow::Borrowed),
    }
}

/// Parses the inside of `${…}` from `after` (the text following `${`). Returns the part and the
/// text after the closing brace.
fn parse_var(after: &str) -> Option<(Part, &str)> {
    // Find the closing brace outside single quotes; a doubled quote inside a default value is an
    // escaped quote, which toggling twice handles naturally.
    let mut in_quote = false;
    let mut close = None;
    for (i, c) in after.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            '}' if !in_quote => {
                close = Some(i);
                break;
            }
            _ => {}
        }
    }
    let close = close?;
    let inner = after.get(..close)?;
    let remaining = after.get(close + 1..)?;
    match inner {
        "*" => return Some((Part::Special('*'), remaining)),
        "?" => return Some((Part::Special('?'), remaining)),
        "$" => return Some((Part::Special('$'), remaining)),
        _ => {}
    }
    let (name, default) = match split_outside_quotes(inner) {
        Some((name, default)) => (name.trim(), Some(parse_default(default.trim())?)),
        None => (inner.trim(), None),
    };
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '$' | '{' | '}' | '\''))
    {
        return None;
    }
    Some((
        Part::Var {
            key: name.to_ascii_lowercase(),
            default,
        },
        remaining,
    ))
}

fn split_outside_quotes(s: &str) -> Option<(&str, &str)> {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            ',' if !in_quote => return Some((s.get(..i)?, s.get(i + 1..)?)),
            _ => {}
        }
    }
    None
}

/// `'text'` with `''` standing for one quote.
fn parse_default(s: &str) -> Option<String> {
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // Inside the quotes a quote must be doubled.
            chars.next_if_eq(&'\'')?;
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variables_escapes_and_defaults() {
        let t = Template::parse("home/${aws:username}/${*}", true);
        assert_eq!(
            t.parts,
            vec![
                Part::Text("home/".into()),
                Part::Var {
                    key: "aws:username".into(),
                    default: None
                },
                Part::Text("/".into()),
                Part::Special('*'),
            ]
        );
        let t = Template::parse("${aws:PrincipalTag/team, 'it''s}'}x", true);
        assert_eq!(
            t.parts,
            vec![
                Part::Var {
                    key: "aws:principaltag/team".into(),
                    default: Some("it's}".into())
                },
                Part::Text("x".into()),
            ]
        );
    }

    #[test]
    fn malformed_or_disabled_variables_stay_literal() {
        assert_eq!(Template::parse("a${b", true).as_plain(), Some("a${b"));
        assert_eq!(
            Template::parse("${aws:username}", false).as_plain(),
            Some("${aws:username}")
        );
        assert_eq!(Template::parse("${a b}", true).as_plain(), Some("${a b}"));
        assert_eq!(
            Template::parse("${a, 'x}", true).as_plain(),
            Some("${a, 'x}")
        );
    }
}
