//! Compiled `match` conditions and the string operators they use.

use std::fmt;
use std::net::IpAddr;

use regex::bytes::{Regex, RegexBuilder};

use crate::net::Cidr;

/// A request value a condition, `version_from` or split key reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// Lower-case header name (pseudo-headers as `:path`).
    Header(String),
    Cookie(String),
    Query(String),
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Header(name) => write!(f, "header:{name}"),
            ValueSource::Cookie(name) => write!(f, "cookie:{name}"),
            ValueSource::Query(name) => write!(f, "query:{name}"),
        }
    }
}

#[derive(Debug)]
pub enum Condition {
    Value {
        source: ValueSource,
        op: StringMatch,
    },
    SourceIp(Vec<Cidr>),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

#[derive(Debug)]
pub enum StringMatch {
    /// `needle` is lower-cased already when `ignore_case` is set.
    Literal {
        kind: LiteralKind,
        needle: Vec<u8>,
        ignore_case: bool,
    },
    /// Anchored to the whole value, as Envoy's and Istio's regex matches are. `required`
    /// is a literal every match contains (lower-cased when `ignore_case`): values without
    /// it are rejected by a substring check, without running the regex.
    Regex {
        regex: Box<Regex>,
        required: Vec<u8>,
        ignore_case: bool,
    },
    Present(bool),
}

impl StringMatch {
    pub fn literal(kind: LiteralKind, needle: &str, ignore_case: bool) -> StringMatch {
        let needle = if ignore_case {
            needle.to_ascii_lowercase()
        } else {
            needle.to_string()
        };
        StringMatch::Literal {
            kind,
            needle: needle.into_bytes(),
            ignore_case,
        }
    }

    /// Whether one value matches (`Present` is decided by the caller over all values).
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            StringMatch::Literal {
                kind,
                needle,
                ignore_case,
            } => {
                let eq = |a: &[u8]| {
                    if *ignore_case {
                        a.eq_ignore_ascii_case(needle)
                    } else {
                        a == needle.as_slice()
                    }
                };
                let n = needle.len();
                match kind {
                    LiteralKind::Exact => eq(value),
                    LiteralKind::Prefix => value.get(..n).is_some_and(eq),
                    LiteralKind::Suffix => value
                        .len()
                        .checked_sub(n)
                        .and_then(|start| value.get(start..))
                        .is_some_and(eq),
                    LiteralKind::Contains => contains(value, needle, *ignore_case),
                }
            }
            StringMatch::Regex {
                regex,
                required,
                ignore_case,
            } => contains(value, required, *ignore_case) && regex.is_match(value),
            StringMatch::Present(expected) => *expected,
        }
    }
}

/// Whether `needle` (lower-case when `ignore_case`) occurs in `value`. Scans for the
/// needle's first byte and compares the rest only there: a user-agent rarely holds the
/// first letter of `Chrome` or `Android` more than a few times, so this is far cheaper
/// than comparing a window at every offset (which ran a `memcmp` call per offset).
fn contains(value: &[u8], needle: &[u8], ignore_case: bool) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let same = |a: &[u8], b: &[u8]| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let Some(last_start) = value.len().checked_sub(needle.len()) else {
        return false;
    };
    let candidates = value.get(..=last_start).unwrap_or(&[]);
    candidates.iter().enumerate().any(|(at, &byte)| {
        let first_matches = if ignore_case {
            byte.to_ascii_lowercase() == first
        } else {
            byte == first
        };
        first_matches
            && value
                .get(at + 1..at + needle.len())
                .is_some_and(|tail| same(tail, rest))
    })
}

/// Compiles a `regex` operator. Patterns that only wrap a literal in `.*` (the seed's
/// `.*Chrome.*`, `Mozilla.*`) become literal matches: same answers, no regex engine on the
/// request path.
pub fn compile_regex(
    pattern: &str,
    ignore_case: bool,
    size_limit: usize,
) -> Result<StringMatch, String> {
    if let Some((kind, literal)) = literal_pattern(pattern) {
        return Ok(StringMatch::literal(kind, &literal, ignore_case));
    }
    let regex = full_match_regex(pattern, ignore_case, size_limit)?;
    let required = required_literal(pattern).unwrap_or_default();
    let required = if ignore_case {
        required.to_ascii_lowercase()
    } else {
        required
    };
    Ok(StringMatch::Regex {
        regex: Box::new(regex),
        required: required.into_bytes(),
        ignore_case,
    })
}

/// The longest run of literal characters at the top level of `pattern`, which every match
/// must contain (`.*(SamsungBrowser|YaBrowser)/16\..*` → `/16.`). Conservative: `None` for a
/// top-level alternation or inline flags; a character under `*`, `?` or `{..}` is dropped.
fn required_literal(pattern: &str) -> Option<String> {
    if pattern.contains("(?") {
        return None;
    }
    let mut best = String::new();
    let mut run = String::new();
    let mut depth = 0usize;
    let mut chars = pattern.chars().peekable();
    let end_run = |run: &mut String, best: &mut String| {
        if run.len() > best.len() {
            *best = std::mem::take(run);
        }
        run.clear();
    };
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                Some(escaped) if escaped.is_ascii_punctuation() => Some(escaped),
                _ => None,
            },
            '[' => {
                skip_class(&mut chars);
                None
            }
            '(' => {
                depth += 1;
                None
            }
            ')' => {
                depth = depth.saturating_sub(1);
                None
            }
            '|' if depth == 0 => return None,
            '{' => {
                // A counted repetition `{n,m}`: its digits are not literals.
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                None
            }
            '*' | '?' => None,
            '+' => {
                end_run(&mut run, &mut best);
                continue;
            }
            '.' | '^' | '$' | '|' => None,
            other => Some(other),
        };
        match literal {
            Some(c) if depth == 0 && !matches!(chars.peek(), Some('*' | '?' | '{')) => run.push(c),
            Some(c) if depth == 0 && matches!(chars.peek(), Some('+')) => run.push(c),
            _ => end_run(&mut run, &mut best),
        }
    }
    end_run(&mut run, &mut best);
    (!best.is_empty()).then_some(best)
}

/// Skips a character class after its opening `[` (nested classes and escapes included).
fn skip_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut depth = 1usize;
    if chars.peek() == Some(&'^') {
        chars.next();
    }
    if chars.peek() == Some(&']') {
        chars.next();
    }
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// `[^][.*]LITERAL[.*][$]` with no other metacharacters → the literal operator it equals.
/// `.` never matches `\n` (as in the regex), which header values cannot contain anyway.
fn literal_pattern(pattern: &str) -> Option<(LiteralKind, String)> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = match body.strip_suffix('$') {
        Some(inner) if !inner.ends_with('\\') => inner,
        _ => body,
    };
    let (open_start, body) = match body.strip_prefix(".*") {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (open_end, body) = match body.strip_suffix(".*") {
        Some(rest) if !rest.ends_with('\\') => (true, rest),
        _ => (false, body),
    };
    let mut literal = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if escaped.is_ascii_punctuation() => literal.push(escaped),
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                return None
            }
            other if other.is_ascii() => literal.push(other),
            _ => return None,
        }
    }
    let kind = match (open_start, open_end) {
        (true, true) => LiteralKind::Contains,
        (true, false) => LiteralKind::Suffix,
        (false, true) => LiteralKind::Prefix,
        (false, false) => LiteralKind::Exact,
    };
    Some((kind, literal))
}

/// Builds a regex that must match the whole value. Byte-oriented with Unicode classes
/// off (`.` is any byte, `\d` is ASCII), so non-UTF-8 header bytes are matched
/// deterministically and the module carries no Unicode tables.
pub fn full_match_regex(
    pattern: &str,
    ignore_case: bool,
    size_limit: usize,
) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .unicode(false)
        .case_insensitive(ignore_case)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .build()
        .map_err(|error| format!("invalid regex: {}", one_line(&error.to_string())))
}

/// regex's syntax errors span several lines (pattern, caret, message): keep the message.
fn one_line(message: &str) -> String {
    match message
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
    {
        Some(reason) => reason.to_string(),
        None => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// What a condition can read of a request (the engine provides it, with normalization
/// applied and the client address resolved).
pub trait Lookup {
    /// Calls `pred` on each value of `source` until it returns true; whether it did.
    fn any_value(&self, source: &ValueSource, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool;
    fn client_ip(&self) -> Option<IpAddr>;
}

impl Condition {
    pub fn holds(&self, request: &impl Lookup) -> bool {
        match self {
            Condition::Value {
                source,
                op: StringMatch::Present(expected),
            } => request.any_value(source, &mut |_| true) == *expected,
            Condition::Value { source, op } => {
                request.any_value(source, &mut |value| op.matches(value))
            }
            Condition::SourceIp(ranges) => request
                .client_ip()
                .is_some_and(|ip| ranges.iter().any(|range| range.contains(ip))),
            Condition::All(conditions) => conditions.iter().all(|c| c.holds(request)),
            Condition::Any(conditions) => conditions.iter().any(|c| c.holds(request)),
            Condition::Not(condition) => !condition.holds(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(kind: LiteralKind, needle: &str, ignore_case: bool) -> StringMatch {
        StringMatch::literal(kind, needle, ignore_case)
    }

    #[test]
    fn literal_operators() {
        use LiteralKind::*;
        let table: &[(StringMatch, &[u8], bool)] = &[
            (lit(Exact, "tester", false), b"tester", true),
            (lit(Exact, "tester", false), b"Tester", false),
            (lit(Exact, "tester", true), b"TeStEr", true),
            (lit(Exact, "", false), b"", true),
            (
                lit(Prefix, "application/grpc", false),
                b"application/grpc+proto",
                true,
            ),
            (
                lit(Prefix, "application/grpc", false),
                b"application/json",
                false,
            ),
            (lit(Prefix, "APPLICATION/", true), b"application/grpc", true),
            (lit(Prefix, "long-prefix", false), b"long", false),
            (lit(Suffix, ".example.com", false), b"api.example.com", true),
            (lit(Suffix, ".example.com", false), b"example.com", false),
            (lit(Suffix, ".COM", true), b"a.com", true),
            (
                lit(Contains, "Android", false),
                b"Mozilla/5.0 (Linux; Android 14)",
                true,
            ),
            (
                lit(Contains, "android", false),
                b"Mozilla/5.0 (Linux; Android 14)",
                false,
            ),
            (
                lit(Contains, "android", true),
                b"Mozilla/5.0 (Linux; Android 14)",
                true,
            ),
            (lit(Contains, "x", false), b"", false),
            (lit(Contains, "", false), b"", true),
            (lit(Exact, "v1", false), b"\xff\xfe", false),
        ];
        for (op, value, expected) in table {
            assert_eq!(op.matches(value), *expected, "{op:?} on {value:?}");
        }
    }

    #[test]
    fn regex_matches_whole_value() {
        let chrome = full_match_regex(".*Chrome.*", false, 1 << 20).unwrap();
        assert!(chrome.is_match(b"Mozilla/5.0 Chrome/120.0"));
        assert!(!chrome.is_match(b"Mozilla/5.0 Firefox/121.0"));
        let partial = full_match_regex("Chrome", false, 1 << 20).unwrap();
        assert!(
            !partial.is_match(b"Mozilla Chrome"),
            "regex must match the whole value"
        );
        assert!(partial.is_match(b"Chrome"));
        let alternation = full_match_regex("a|b", false, 1 << 20).unwrap();
        assert!(
            !alternation.is_match(b"ab"),
            "alternation is grouped before anchoring"
        );
        let cookie = full_match_regex("^(.*?;)?(user=tester)(;.*)?$", false, 1 << 20).unwrap();
        assert!(cookie.is_match(b"a=1;user=tester;b=2"));
        let ci = full_match_regex("v[0-9]", true, 1 << 20).unwrap();
        assert!(ci.is_match(b"V7"));
        let bytes = full_match_regex(".*x.*", false, 1 << 20).unwrap();
        assert!(
            bytes.is_match(b"\xff\xfex"),
            "non-UTF-8 bytes are matched as bytes"
        );
    }

    #[test]
    fn literal_regexes_become_literal_matches() {
        use LiteralKind::*;
        let table: &[(&str, Option<(LiteralKind, &str)>)] = &[
            (".*Chrome.*", Some((Contains, "Chrome"))),
            ("^.*Chrome.*$", Some((Contains, "Chrome"))),
            ("Mozilla.*", Some((Prefix, "Mozilla"))),
            (".*\\.example\\.com", Some((Suffix, ".example.com"))),
            ("tester", Some((Exact, "tester"))),
            (".*", Some((Suffix, ""))), // matches everything, like the regex
            ("", Some((Exact, ""))),
            (".*Chrome/[0-9]+.*", None),
            ("a|b", None),
            ("Chrome.", None),
            (".*\\d.*", None),
            ("x\\$", Some((Exact, "x$"))),
            ("é.*", None),
        ];
        for (pattern, expected) in table {
            let actual = literal_pattern(pattern);
            let expected = expected.map(|(kind, text)| (kind, text.to_string()));
            assert_eq!(actual, expected, "pattern {pattern:?}");
        }
    }

    #[test]
    fn literal_fast_path_answers_like_the_regex() {
        let patterns = [
            ".*Chrome.*",
            "Mozilla.*",
            ".*\\.com",
            "tester",
            "^.*Android.*$",
            ".*",
        ];
        let values: [&[u8]; 8] = [
            b"Mozilla/5.0 Chrome/120",
            b"Mozilla",
            b"a.com",
            b"acom",
            b"tester",
            b"Linux; Android 14",
            b"",
            b"\xffChrome\xfe",
        ];
        for pattern in patterns {
            for ignore_case in [false, true] {
                let fast = compile_regex(pattern, ignore_case, 1 << 20).unwrap();
                assert!(
                    matches!(fast, StringMatch::Literal { .. }),
                    "{pattern} should be literal"
                );
                let regex = full_match_regex(pattern, ignore_case, 1 << 20).unwrap();
                for value in values {
                    assert_eq!(
                        fast.matches(value),
                        regex.is_match(value),
                        "{pattern} on {value:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn required_literals() {
        let table: &[(&str, Option<&str>)] = &[
            (".*(SamsungBrowser|YaBrowser)/16\\..*", Some("/16.")),
            (".*Chrome/[0-9]+.*", Some("Chrome/")),
            ("^(.*?;)?(user=tester)(;.*)?$", None),
            ("a|b", None),
            ("abc*d", Some("ab")),
            ("ab+c", Some("ab")),
            ("x{2}yz", Some("yz")),
            ("[a-z]+-canary-[0-9]", Some("-canary-")),
            ("[]x]yz", Some("yz")),
            ("[[:alpha:]]+v2", Some("v2")),
            ("\\d+ms", Some("ms")),
            ("(?i)chrome", None),
            ("(a|b)", None),
            (".*", None),
        ];
        for (pattern, expected) in table {
            assert_eq!(required_literal(pattern).as_deref(), *expected, "{pattern}");
        }
    }

    #[test]
    fn required_literal_never_changes_an_answer() {
        let patterns = [
            ".*(SamsungBrowser|YaBrowser)/16\\..*",
            ".*Chrome/[0-9]+.*",
            "abc*d",
            "ab+c",
            "x{2}yz",
            "[a-z]+-canary-[0-9]",
            "\\d+ms",
        ];
        let values: [&[u8]; 12] = [
            b"Mozilla/5.0 SamsungBrowser/16.2 Mobile",
            b"Mozilla/5.0 YaBrowser/16.",
            b"SamsungBrowser/17.0",
            b"Chrome/120.0",
            b"chrome/120",
            b"abd",
            b"abccd",
            b"abbbc",
            b"xxyz",
            b"web-canary-7",
            b"250ms",
            b"",
        ];
        for pattern in patterns {
            for ignore_case in [false, true] {
                let compiled = compile_regex(pattern, ignore_case, 1 << 20).unwrap();
                let plain = full_match_regex(pattern, ignore_case, 1 << 20).unwrap();
                for value in values {
                    assert_eq!(
                        compiled.matches(value),
                        plain.is_match(value),
                        "{pattern} {value:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn regex_errors_are_one_line() {
        let error = full_match_regex("(unclosed", false, 1 << 20).unwrap_err();
        assert_eq!(error, "invalid regex: unclosed group");
        let too_big = full_match_regex("(a{1000}){1000}", false, 1 << 16).unwrap_err();
        assert!(too_big.starts_with("invalid regex: "), "{too_big}");
        assert!(!too_big.contains('\n'));
    }
}
