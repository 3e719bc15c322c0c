//! GetRandomPassword: uniform choices from the allowed characters with randomness from
//! `citadel_crypto::random_bytes`, by rejection sampling (no modulo bias), and — when every
//! included type is required — by rejecting whole passwords that miss a type, which keeps the
//! result uniform over the passwords that satisfy the requirement.

use citadel_api::AwsError;
use zeroize::Zeroizing;

use crate::errors;

pub const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
pub const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The request's options, with AWS's defaults applied.
#[derive(Debug, Clone)]
pub struct Options {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// Draws uniform indexes below `n` from a buffer of random bytes, refilling as needed.
struct Draw {
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl Draw {
    fn new() -> Self {
        Draw {
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
        }
    }

    fn byte(&mut self) -> Result<u8, AwsError> {
        if self.pos >= self.buf.len() {
            self.buf = citadel_crypto::random_bytes(256).map_err(|e| errors::crypto(&e))?;
            self.pos = 0;
        }
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        Ok(b)
    }

    /// A uniform index in `0..n` (`n` ≤ 256).
    fn below(&mut self, n: usize) -> Result<usize, AwsError> {
        if n <= 1 {
            return Ok(0);
        }
        let limit = 256 - (256 % n);
        loop {
            let b = usize::from(self.byte()?);
            if b < limit {
                return Ok(b % n);
            }
        }
    }
}

/// A random password, or AWS's error for options that cannot be met.
pub fn generate(opts: &Options) -> Result<Zeroizing<String>, AwsError> {
    let excluded = |c: &char| opts.exclude_characters.contains(*c);
    let mut classes: Vec<Vec<char>> = Vec::new();
    for (skip, set) in [
        (opts.exclude_lowercase, LOWERCASE),
        (opts.exclude_uppercase, UPPERCASE),
        (opts.exclude_numbers, DIGITS),
        (opts.exclude_punctuation, PUNCTUATION),
    ] {
        if skip {
            continue;
        }
        let chars: Vec<char> = set.chars().filter(|c| !excluded(c)).collect();
        if !chars.is_empty() {
            classes.push(chars);
        }
    }
    let mut all: Vec<char> = classes.iter().flatten().copied().collect();
    if opts.include_space && !opts.exclude_characters.contains(' ') {
        all.push(' ');
    }
    if all.is_empty() {
        return Err(errors::invalid_parameter(
            "The password parameters exclude every character; there is nothing to choose from.",
        ));
    }
    let required: &[Vec<char>] = if opts.require_each_included_type {
        &classes
    } else {
        &[]
    };
    if required.len() > opts.length {
        return Err(errors::invalid_parameter(
            "Password length is too short based on the required types.",
        ));
    }
    let mut draw = Draw::new();
    // Whole-password rejection: at most a few rounds for realistic options; after many, fall
    // back to placing one character of each required type at a uniformly chosen position.
    for _ in 0..1000 {
        let mut out = Zeroizing::new(Vec::with_capacity(opts.length));
        for _ in 0..opts.length {
            let i = draw.below(all.len())?;
            out.push(all.get(i).copied().unwrap_or('a'));
        }
        if required
            .iter()
            .all(|class| out.iter().any(|c| class.contains(c)))
        {
            return Ok(Zeroizing::new(out.iter().collect()));
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(opts.length));
    for class in required {
        let i = draw.below(class.len())?;
        out.push(class.get(i).copied().unwrap_or('a'));
    }
    while out.len() < opts.length {
        let i = draw.below(all.len())?;
        out.push(all.get(i).copied().unwrap_or('a'));
    }
    // Fisher–Yates with uniform indexes. Lengths above 256 need two-byte draws.
    for i in (1..out.len()).rev() {
        let j = if i < 256 {
            draw.below(i + 1)?
        } else {
            let hi = usize::from(draw.byte()?);
            let lo = usize::from(draw.byte()?);
            ((hi << 8) | lo) % (i + 1)
        };
        out.swap(i, j);
    }
    Ok(Zeroizing::new(out.iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_32_chars_of_every_type() {
        for _ in 0..50 {
            let p = generate(&Options::default()).unwrap();
            assert_eq!(p.chars().count(), 32);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn exclusions_and_space() {
        let opts = Options {
            length: 200,
            exclude_characters: "abc:/@\"'\\".into(),
            exclude_punctuation: false,
            exclude_uppercase: true,
            include_space: true,
            ..Options::default()
        };
        let p = generate(&opts).unwrap();
        assert_eq!(p.len(), 200);
        assert!(!p.chars().any(|c| "abc:/@\"'\\".contains(c)));
        assert!(!p.chars().any(|c| c.is_ascii_uppercase()));
        let only_digits = Options {
            length: 4096,
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_punctuation: true,
            ..Options::default()
        };
        let p = generate(&only_digits).unwrap();
        assert!(p.chars().all(|c| c.is_ascii_digit()));
        // Every digit shows up in 4096 draws (the chance one is missing is ~10 × 0.9^4096).
        for d in DIGITS.chars() {
            assert!(p.contains(d));
        }
    }

    #[test]
    fn impossible_options_are_aws_errors() {
        let e = generate(&Options {
            length: 3,
            ..Options::default()
        })
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        let e = generate(&Options {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..Options::default()
        })
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        // Without the requirement, short passwords are fine.
        let p = generate(&Options {
            length: 1,
            require_each_included_type: false,
            ..Options::default()
        })
        .unwrap();
        assert_eq!(p.len(), 1);
        // A tiny class with the requirement still terminates.
        let p = generate(&Options {
            length: 4,
            exclude_characters: PUNCTUATION.replace('!', ""),
            ..Options::default()
        })
        .unwrap();
        assert!(p.contains('!'));
    }
}
