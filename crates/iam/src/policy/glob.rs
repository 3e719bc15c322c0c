//! Wildcard patterns (`*` any run of characters, `?` exactly one character), compiled once when a
//! policy is parsed so that matching on the request path allocates nothing.

/// One compiled pattern token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A character that must appear as is (a literal, or a `*`/`?` that came from `${*}`/`${?}`
    /// or from a substituted variable value, which never act as wildcards).
    Lit(char),
    /// `?`: any single character.
    One,
    /// `*`: any run of characters, including none.
    Many,
}

/// A compiled wildcard pattern. The common shapes (`*`, a plain string, `prefix*`) get their own
/// variants because they cover almost every Action and Resource in real policies and can be
/// matched with one comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    Any,
    Exact(String),
    Prefix(String),
    General(Box<[Tok]>),
}

impl Glob {
    /// Compiles `pattern`, reading `*` and `?` as wildcards.
    pub(crate) fn compile(pattern: &str) -> Glob {
        let mut toks = Vec::with_capacity(pattern.len());
        push_pattern_text(&mut toks, pattern);
        Glob::from_tokens(toks)
    }

    /// Builds the cheapest matcher equivalent to `toks`.
    pub(crate) fn from_tokens(toks: Vec<Tok>) -> Glob {
        let wildcards = toks.iter().filter(|t| !matches!(t, Tok::Lit(_))).count();
        if wildcards == 0 {
            return Glob::Exact(literal_string(&toks));
        }
        if wildcards == 1 && matches!(toks.last(), Some(Tok::Many)) {
            let body = toks.get(..toks.len().saturating_sub(1)).unwrap_or(&[]);
            if body.is_empty() {
                return Glob::Any;
            }
            return Glob::Prefix(literal_string(body));
        }
        // Runs of `*` are equivalent to one and only cost backtracking.
        let mut collapsed: Vec<Tok> = Vec::with_capacity(toks.len());
        for t in toks {
            if t == Tok::Many && collapsed.last() == Some(&Tok::Many) {
                continue;
            }
            collapsed.push(t);
        }
        if collapsed.len() == 1 && collapsed.first() == Some(&Tok::Many) {
            return Glob::Any;
        }
        Glob::General(collapsed.into_boxed_slice())
    }

    /// Case-sensitive match (resources, `StringLike`, ARNs).
    pub(crate) fn matches(&self, text: &str) -> bool {
        self.matches_with(text, false)
    }

    /// ASCII-case-insensitive match (actions: `kms:decrypt` is `kms:Decrypt`).
    pub(crate) fn matches_ignore_ascii_case(&self, text: &str) -> bool {
        self.matches_with(text, true)
    }

    fn matches_with(&self, text: &str, ci: bool) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => {
                if ci {
                    s.eq_ignore_ascii_case(text)
                } else {
                    s == text
                }
            }
            Glob::Prefix(p) => match text.as_bytes().get(..p.len()) {
                // Comparing bytes is sound for UTF-8: ASCII folding never touches the bytes of
                // multi-byte characters, and a prefix of equal bytes ends on a char boundary.
                Some(head) => {
                    if ci {
                        head.eq_ignore_ascii_case(p.as_bytes())
                    } else {
                        head == p.as_bytes()
                    }
                }
                None => false,
            },
            Glob::General(toks) => general_match(toks, text, ci),
        }
    }
}

/// Appends the tokens of policy text in which `*` and `?` are wildcards.
pub(crate) fn push_pattern_text(toks: &mut Vec<Tok>, text: &str) {
    for c in text.chars() {
        toks.push(match c {
            '*' => Tok::Many,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
}

/// Appends text that must match literally.
pub(crate) fn push_literal_text(toks: &mut Vec<Tok>, text: &str) {
    toks.extend(text.chars().map(Tok::Lit));
}

fn literal_string(toks: &[Tok]) -> String {
    toks.iter()
        .filter_map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn chars_equal(a: char, b: char, ci: bool) -> bool {
    a == b || (ci && a.eq_ignore_ascii_case(&b))
}

/// Iterative wildcard matching with single-star backtracking: linear in practice, worst case
/// O(pattern × text), and no recursion, so hostile patterns cannot exhaust the stack.
fn general_match(toks: &[Tok], text: &str, ci: bool) -> bool {
    let mut p = 0usize; // token index
    let mut t = 0usize; // byte index into text
    // Where to resume after a mismatch: the token after the last `*` and the text position that
    // star currently stands for the end of.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        let next = text.get(t..).and_then(|rest| rest.chars().next());
        match toks.get(p) {
            Some(Tok::Many) => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(Tok::One) => {
                if let Some(c) = next {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            Some(Tok::Lit(want)) => {
                if let Some(c) = next
                    && chars_equal(c, *want, ci)
                {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            None => {
                if next.is_none() {
                    return true;
                }
            }
        }
        // Mismatch: let the last star swallow one more character, if there is one.
        let Some((rp, rt)) = resume else {
            return false;
        };
        let Some(c) = text.get(rt..).and_then(|rest| rest.chars().next()) else {
            return false;
        };
        let rt = rt + c.len_utf8();
        resume = Some((rp, rt));
        p = rp;
        t = rt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_recognised() {
        assert_eq!(Glob::compile("*"), Glob::Any);
        assert_eq!(Glob::compile("**"), Glob::Any);
        assert_eq!(
            Glob::compile("kms:Encrypt"),
            Glob::Exact("kms:Encrypt".into())
        );
        assert_eq!(Glob::compile("kms:*"), Glob::Prefix("kms:".into()));
        assert!(matches!(Glob::compile("kms:*crypt"), Glob::General(_)));
    }

    #[test]
    fn wildcards_match_like_aws() {
        let g = Glob::compile("arn:aws:s3:::bucket/*/file?.txt");
        assert!(g.matches("arn:aws:s3:::bucket/a/b/file1.txt"));
        assert!(!g.matches("arn:aws:s3:::bucket/a/file12.txt"));
        assert!(Glob::compile("a*b*c").matches("aXXbYYc"));
        assert!(Glob::compile("a*b*c").matches("abc"));
        assert!(!Glob::compile("a*b*c").matches("acb"));
        assert!(Glob::compile("?").matches("é"));
        assert!(!Glob::compile("?").matches(""));
        assert!(Glob::compile("*é*").matches("café au lait"));
        assert!(Glob::compile("kms:*Crypt").matches_ignore_ascii_case("KMS:decrypt"));
        assert!(!Glob::compile("kms:*Crypt").matches("KMS:decrypt"));
        assert!(Glob::compile("KMS:*").matches_ignore_ascii_case("kms:Decrypt"));
        assert!(!Glob::compile("kms:*").matches("km"));
    }

    #[test]
    fn literal_tokens_never_act_as_wildcards() {
        let mut toks = Vec::new();
        push_literal_text(&mut toks, "a*");
        let g = Glob::from_tokens(toks);
        assert!(g.matches("a*"));
        assert!(!g.matches("ab"));
    }
}
