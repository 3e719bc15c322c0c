//! Translates the Java regular expressions of the AWS models (AWS validates with
//! `java.util.regex.Pattern.matcher(value).matches()`) into `regex`-crate syntax with the same
//! meaning, or reports why that is not possible.
//!
//! Differences handled:
//! - `matches()` must consume the whole value: the result is wrapped in `\A(?:…)\z`.
//! - `\w \d \s \b` (and negations) are ASCII-only in Java, Unicode in `regex`: they are spelled out.
//! - `.` in Java excludes every line terminator (`\n \r \u0085 \u2028 \u2029`), not only `\n`.
//! - `\uXXXX` takes exactly four hex digits; a surrogate pair `\uD800\uDC00` is one code point.
//! - `~` and a second `-` in a class are literals in Java, set operators in `regex`: escaped.
//!
//! Anything else Java-specific (look-around, back-references, possessive quantifiers, octal
//! escapes, POSIX `\p{Alpha}` names) is left to fail compilation, or rejected here, and the
//! generator then skips that pattern visibly.

/// Size limit used both here (to decide what compiles) and by the generated code at run time.
pub const SIZE_LIMIT: usize = 32 * (1 << 20);

const JAVA_ASCII_PROPERTIES: &[&str] = &[
    "Lower", "Upper", "ASCII", "Alpha", "Digit", "Alnum", "Punct", "Graph", "Print", "Blank",
    "Cntrl", "XDigit", "Space",
];

const LINE_TERMINATORS_CLASS: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// Java patterns that need look-around but have an exact look-around-free equivalent.
const IDIOMS: &[(&str, &str)] = &[
    // "Not blank": non-empty, no line terminator (Java `.`), at least one character that is
    // not Java-`\s` whitespace.
    (
        r"^(?!\s*$).+",
        r"[^\n\r\x{85}\x{2028}\x{2029}]*[^\t\n\x0B\x0C\r \x{85}\x{2028}\x{2029}][^\n\r\x{85}\x{2028}\x{2029}]*",
    ),
    // ACM domain names: labels of 1-63 characters that do not start with `-` and end with an
    // alphanumeric; the last label has at least 2 characters.
    (
        r"(\*\.)?(((?!-)[A-Za-z0-9-]{0,62}[A-Za-z0-9])\.)+((?!-)[A-Za-z0-9-]{1,62}[A-Za-z0-9])",
        r"(\*\.)?(([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)\.)+([A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9])",
    ),
];

/// The anchored `regex` equivalent of `java`, or the reason there is none.
pub fn translate(java: &str) -> Result<String, String> {
    if let Some((_, rust)) = IDIOMS.iter().find(|(j, _)| *j == java) {
        return Ok(format!(r"\A(?:{rust})\z"));
    }
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 16);
    let mut i = 0;
    let mut depth = 0usize; // character-class nesting
    let mut dotall = false;
    // A leading global flag group, e.g. `(?s)` or `(?i)`.
    if java.starts_with("(?")
        && let Some(end) = java.find(')')
    {
        let flags = &java[2..end];
        if !flags.is_empty() && flags.chars().all(|c| c.is_ascii_alphabetic()) {
            dotall = flags.contains('s');
            out.push_str(&java[..=end]);
            i = java[..=end].chars().count();
        }
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("trailing backslash".into());
                };
                i += 2;
                match e {
                    'u' => {
                        let (cp, used) = unicode_escape(&chars, i)?;
                        i += used;
                        out.push_str(&format!("\\x{{{cp:X}}}"));
                    }
                    'w' => out.push_str(if depth > 0 {
                        "[:word:]"
                    } else {
                        "[0-9A-Za-z_]"
                    }),
                    'W' => out.push_str(if depth > 0 {
                        "[:^word:]"
                    } else {
                        "[^0-9A-Za-z_]"
                    }),
                    'd' => out.push_str(if depth > 0 { "0-9" } else { "[0-9]" }),
                    'D' => out.push_str(if depth > 0 { "[:^digit:]" } else { "[^0-9]" }),
                    's' => out.push_str(if depth > 0 {
                        r"\t\n\x0B\x0C\r "
                    } else {
                        r"[\t\n\x0B\x0C\r ]"
                    }),
                    'S' => out.push_str(r"[^\t\n\x0B\x0C\r ]"),
                    'b' | 'B' if depth == 0 => {
                        out.push_str(if e == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" });
                    }
                    'p' | 'P' => {
                        let rest: String = chars[i..].iter().collect();
                        if let Some(name) = rest.strip_prefix('{').and_then(|r| r.split('}').next())
                        {
                            let name = name.strip_prefix("Is").unwrap_or(name);
                            if JAVA_ASCII_PROPERTIES.contains(&name) || name.starts_with("java") {
                                return Err(format!("Java-specific property \\p{{{name}}}"));
                            }
                        }
                        out.push('\\');
                        out.push(e);
                    }
                    'e' => out.push_str(r"\x1B"),
                    't' | 'n' | 'r' | 'f' | 'a' | 'x' | 'A' | 'z' => {
                        out.push('\\');
                        out.push(e);
                    }
                    e if e.is_ascii_alphanumeric() => {
                        return Err(format!("unsupported escape \\{e}"));
                    }
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                }
                continue;
            }
            '[' => {
                depth += 1;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(']');
            }
            '~' if depth > 0 => out.push_str(r"\~"),
            '-' if depth > 0 && i > 0 && chars[i - 1] == '-' => out.push_str(r"\-"),
            '.' if depth == 0 && !dotall => out.push_str(LINE_TERMINATORS_CLASS),
            '(' if chars.get(i + 1) == Some(&'?') => {
                // Inline flags later in the pattern would change `.`; keep it simple.
                let flags: String = chars[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == '-')
                    .collect();
                if flags.contains('s') {
                    return Err("inline (?s) flag inside the pattern".into());
                }
                out.push('(');
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(format!(r"\A(?:{out})\z"))
}

fn hex4(chars: &[char], at: usize) -> Result<u32, String> {
    let s: String = chars.get(at..at + 4).unwrap_or_default().iter().collect();
    if s.len() != 4 {
        return Err("truncated \\u escape".into());
    }
    u32::from_str_radix(&s, 16).map_err(|_| format!("bad \\u escape {s}"))
}

/// Reads the 4 hex digits after `\u` at `at`; combines a surrogate pair. Returns the code point
/// and the number of chars consumed after the `\u`.
fn unicode_escape(chars: &[char], at: usize) -> Result<(u32, usize), String> {
    let hi = hex4(chars, at)?;
    if (0xD800..0xDC00).contains(&hi)
        && chars.get(at + 4) == Some(&'\\')
        && chars.get(at + 5) == Some(&'u')
    {
        let lo = hex4(chars, at + 6)?;
        if (0xDC00..0xE000).contains(&lo) {
            return Ok((0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 10));
        }
    }
    if (0xD800..0xE000).contains(&hi) {
        return Err(format!("lone surrogate \\u{hi:04X}"));
    }
    Ok((hi, 4))
}

/// Compiles like the generated code does.
pub fn compile(rust: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(rust)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            text.lines()
                .rev()
                .find(|l| l.starts_with("error:"))
                .map(|l| l.trim_start_matches("error:").trim().to_owned())
                .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(java: &str, s: &str) -> bool {
        compile(&translate(java).unwrap()).unwrap().is_match(s)
    }

    #[test]
    fn whole_match_and_ascii_classes() {
        assert!(m(r"[\w+=,.@-]*", "role.session@x"));
        assert!(!m(r"[\w+=,.@-]*", "é"));
        assert!(!m(r"[\w+=,.@-]*", "a b"));
        assert!(!m("abc", "xabcx"));
        assert!(m(r"^\d{12}$", "123456789012"));
        assert!(!m(r"\d+", "١٢"));
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        let p = r"[\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF]*";
        assert!(m(p, "hello\tworld 😀"));
        assert!(!m(p, "\u{1}"));
        // Java reads `\u10000` as `\u1000` followed by `0`.
        assert!(m(r"[\u10000-\u10FFFF]+", "0"));
    }

    #[test]
    fn dot_excludes_line_terminators() {
        assert!(m("^.*$", "abc"));
        assert!(!m("^.*$", "a\rb"));
        assert!(m("(?s).*", "a\nb"));
    }

    #[test]
    fn not_blank_idiom() {
        let p = r"^(?!\s*$).+";
        assert!(m(p, "a"));
        assert!(m(p, "  a b "));
        assert!(!m(p, ""));
        assert!(!m(p, " \t "));
        assert!(!m(p, "a\nb"));
    }

    #[test]
    fn domain_name_idiom() {
        let p = IDIOMS[1].0;
        for ok in ["example.com", "*.example.com", "a.b.co", "x-1.example.org"] {
            assert!(m(p, ok), "{ok}");
        }
        for bad in [
            "-a.com",
            "a.-com",
            "com",
            "a-.com",
            "a..com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(!m(p, bad), "{bad}");
        }
        assert!(m(p, &format!("{}.com", "a".repeat(63))));
    }

    #[test]
    fn java_only_constructs_are_rejected() {
        assert!(compile(&translate("^(?!-)[a-z]+$").unwrap()).is_err());
        assert!(translate(r"(a)\1").is_err());
        assert!(translate(r"\p{Alpha}+").is_err());
    }
}
