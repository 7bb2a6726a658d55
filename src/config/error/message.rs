//! The one place an error becomes text: each [`ErrorKind`]'s reason, one line, and the
//! closest known name for a typo.

use std::fmt;

#[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
use super::SchemaKeyword;
use super::{ErrorKind, Expected, Found, ListOf, SigningKeysProblem};
use crate::config::{MAX_NAME_LEN, MAX_NORMALIZE, PSEUDO_HEADERS, SUPPORTED_SCHEMA};
use crate::net::CidrError;
use crate::ramp::{format_rfc3339, TimeError};

/// Every error is one log line: control characters in a reason (a newline in a quoted
/// version name, say — found by the `config` fuzz target's one-line check) are written
/// escaped, as `\n`.
impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_reason(&mut OneLine(f))
    }
}

/// Passes text on with its control characters escaped.
struct OneLine<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for OneLine<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for part in text.split_inclusive(char::is_control) {
            match part.char_indices().last() {
                Some((at, last)) if last.is_control() => {
                    self.0.write_str(part.get(..at).unwrap_or_default())?;
                    write!(self.0, "{}", last.escape_debug())?;
                }
                _ => self.0.write_str(part)?,
            }
        }
        Ok(())
    }
}

impl ErrorKind {
    fn write_reason(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            ErrorKind::EmptyDocument => f.write_str(
                "configuration is empty; `versions` and `default_version` are required",
            ),
            ErrorKind::InvalidJson(message) => write!(f, "invalid JSON: {message}"),
            ErrorKind::MissingField => f.write_str("required field is missing"),
            // A ramp is part of a split (SPEC §9); on a rule it is an easy slip.
            ErrorKind::UnknownField { field, known }
                if field == "ramp" && known.iter().any(|k| k == "split") =>
            {
                f.write_str(
                    "unknown field \"ramp\" (a ramp belongs in the rule's split, next to its weights)",
                )
            }
            ErrorKind::UnknownField { field, known } => write_unknown_field(f, field, known),
            ErrorKind::DuplicateField(field) => write!(f, "duplicate field `{field}`"),
            ErrorKind::InvalidType { found, expected } => {
                f.write_str("invalid type: ")?;
                write_found(f, found, expected)?;
                write!(f, ", expected {expected}")
            }
            ErrorKind::InvalidValue { found, expected } => {
                f.write_str("invalid value: ")?;
                write_found(f, found, expected)?;
                write!(f, ", expected {expected}")
            }
            ErrorKind::UnknownVariant { found, expected } if expected.is_empty() => {
                write!(f, "unknown variant `{found}`, there are no variants")
            }
            ErrorKind::UnknownVariant { found, expected } => {
                write!(f, "unknown variant `{found}`, expected ")?;
                write_one_of(f, expected)
            }
            ErrorKind::Unclassified(message) => f.write_str(message),

            ErrorKind::UnsupportedSchema(schema) => {
                write!(f, "unsupported schema {schema}, expected {SUPPORTED_SCHEMA}")
            }
            ErrorKind::Empty => f.write_str("must not be empty"),
            ErrorKind::EmptyList(of) => write!(f, "must list at least one {}", of.noun()),
            ErrorKind::ExactlyOne {
                noun,
                choices,
                found,
            } => {
                f.write_str("expected exactly one ")?;
                if let Some(noun) = noun {
                    write!(f, "{noun} ")?;
                }
                write!(f, "of {}; found ", choices.join(", "))?;
                if found.is_empty() {
                    f.write_str("none")
                } else {
                    f.write_str(&found.join(" and "))
                }
            }
            ErrorKind::InvalidVersionName(name) => write!(
                f,
                "\"{name}\" is not a valid version name (1-{MAX_NAME_LEN} of A-Z a-z 0-9 . _ -)"
            ),
            ErrorKind::DuplicateVersion(name) => write!(f, "duplicate version \"{name}\""),
            ErrorKind::UnknownVersion { name, versions } => write!(
                f,
                "unknown version \"{name}\"; versions are {}",
                versions.join(", ")
            ),
            ErrorKind::VersionListedTwice(name) => {
                write!(f, "version \"{name}\" is listed twice")
            }
            ErrorKind::EmptyHeaderName => f.write_str("header name must not be empty"),
            ErrorKind::InvalidHeaderName(name) => {
                write!(f, "\"{name}\" is not a valid header name")
            }
            ErrorKind::PseudoHeaderNotAllowed(name) => {
                write!(f, "\"{name}\": pseudo-headers cannot be used here")
            }
            ErrorKind::UnknownPseudoHeader(name) => write!(
                f,
                "unknown pseudo-header \"{name}\"; allowed are {}",
                PSEUDO_HEADERS.join(", ")
            ),
            ErrorKind::InvalidCookieName(name) => {
                write!(f, "\"{name}\" is not a valid cookie name")
            }
            ErrorKind::EmptyQueryName => f.write_str("query parameter name must not be empty"),
            ErrorKind::NormalizesTagHeader => f.write_str(
                "the tag header is written by the filter itself and cannot be normalized",
            ),
            ErrorKind::MatchesTagHeader => {
                f.write_str("the tag header is set by this filter; match on the request instead")
            }
            ErrorKind::TagHeaderAsSource => f.write_str(
                "the tag header is set by this filter; clients must not choose it (use trusted_tag_sources)",
            ),
            ErrorKind::TrustedHopsWithoutXff => {
                f.write_str("only applies when client_ip.from is \"xff\"")
            }
            ErrorKind::InvalidCidr { text, error } => match error {
                CidrError::NotAnAddress => {
                    write!(f, "\"{text}\" is not an IP address or CIDR range")
                }
                CidrError::PrefixLength { max } => {
                    write!(f, "\"{text}\" has a prefix length outside 0..={max}")
                }
                CidrError::HostBitsSet => {
                    write!(f, "\"{text}\" has host bits set beyond its prefix length")
                }
            },
            ErrorKind::TooManyNormalize(found) => write!(
                f,
                "at most {MAX_NORMALIZE} entries are supported, found {found}"
            ),
            ErrorKind::DefaultNotAllowed(default) => {
                write!(f, "\"{default}\" is not one of allowed")
            }
            ErrorKind::InvalidRuleName(name) => write!(
                f,
                "\"{name}\" is not a valid rule name (1-{MAX_NAME_LEN} visible ASCII characters, no spaces)"
            ),
            ErrorKind::DuplicateRuleName(name) => write!(f, "duplicate rule name \"{name}\""),
            ErrorKind::OperatorsDoNotApply(kind) => write!(f, "operators do not apply to {kind}"),
            ErrorKind::DoesNotApply(kind) => write!(f, "does not apply to {kind}"),
            ErrorKind::InvalidRegex(message) => f.write_str(message),
            ErrorKind::PercentOutOfRange(percent) => write!(f, "{percent} is outside 0..=100"),
            ErrorKind::PercentTooPrecise(percent) => {
                write!(f, "{percent} has more than two decimals")
            }
            ErrorKind::PercentSum(buckets) => write_percent_sum(f, *buckets),
            ErrorKind::InvalidValueSource {
                text,
                allowed,
                source_ip,
            } => write_value_source_forms(f, text, allowed, *source_ip),
            ErrorKind::SourceNamesNothing { text, kind } => write!(f, "\"{text}\" names no {kind}"),
            ErrorKind::ZeroMaxAge => f.write_str("must be positive (0 would delete the cookie)"),
            ErrorKind::InvalidEnvName(name) => write!(
                f,
                "\"{name}\" is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)"
            ),
            ErrorKind::SigningKeys { env, problem } => match problem {
                SigningKeysProblem::NotSet => write!(
                    f,
                    "environment variable {env} is not set in the Wasm VM; it must hold the signing keys as KID:BASE64,KID:BASE64,... (Envoy vm_config.environment_variables, Istio WasmPlugin vmConfig.env)"
                ),
                SigningKeysProblem::NotUnicode => {
                    write!(f, "environment variable {env} is not valid UTF-8")
                }
                SigningKeysProblem::Keys(problem) => {
                    write!(f, "environment variable {env}: {problem}")
                }
            },
            ErrorKind::OnlyInMode(mode) => write!(f, "only allowed when mode is \"{mode}\""),
            ErrorKind::ListedTwice(name) => write!(f, "\"{name}\" is listed twice"),
            ErrorKind::OutOfRange { value, min, max } => {
                write!(f, "{value} is outside {min}..={max}")
            }
            ErrorKind::InvalidTime { text, error } => write_time_error(f, text, *error),
            ErrorKind::ZeroRampDuration => {
                f.write_str("must be at least 1 (the ramp's length in seconds)")
            }
            ErrorKind::RampBelowFirstWeight { to, first } => {
                write!(f, "{to} is below the first weight ({first})")
            }

            #[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
            ErrorKind::Schema(keyword) => write_schema_keyword(f, keyword),
        }
    }
}

/// An unknown field, with the closest known one when a typo is likely, else all of them.
fn write_unknown_field(f: &mut dyn fmt::Write, field: &str, known: &[String]) -> fmt::Result {
    match closest_name(field, known) {
        Some(suggestion) => {
            write!(
                f,
                "unknown field \"{field}\" (did you mean \"{suggestion}\"?)"
            )
        }
        None => write!(
            f,
            "unknown field \"{field}\"; expected one of {}",
            known.join(", ")
        ),
    }
}

impl ListOf {
    /// What one item of the list is called.
    fn noun(&self) -> &'static str {
        match self {
            ListOf::Version => "version",
            ListOf::Value => "value",
            ListOf::AddressOrRange => "address or CIDR range",
            ListOf::Condition => "condition",
            ListOf::RestoreSource => "restore source (header, baggage, tracestate, trace)",
        }
    }
}

/// A split's weights in hundredths of a percent: the sum written with the decimals it has.
fn write_percent_sum(f: &mut dyn fmt::Write, buckets: u32) -> fmt::Result {
    let (whole, fraction) = (buckets / 100, buckets % 100);
    match fraction {
        0 => write!(f, "percents sum to {whole}, expected 100"),
        tenths if tenths % 10 == 0 => {
            write!(f, "percents sum to {whole}.{}, expected 100", tenths / 10)
        }
        hundredths => write!(f, "percents sum to {whole}.{hundredths:02}, expected 100"),
    }
}

/// `"TEXT" is not one of header:NAME, cookie:NAME[, source_ip]`.
fn write_value_source_forms(
    f: &mut dyn fmt::Write,
    text: &str,
    allowed: &[&str],
    source_ip: bool,
) -> fmt::Result {
    write!(f, "\"{text}\" is not one of ")?;
    for (i, kind) in allowed.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{kind}:NAME")?;
    }
    if source_ip {
        f.write_str(", source_ip")?;
    }
    Ok(())
}

fn write_time_error(f: &mut dyn fmt::Write, text: &str, error: TimeError) -> fmt::Result {
    write!(f, "\"{text}\" ")?;
    match error {
        TimeError::Format => {
            f.write_str("is not an RFC 3339 date and time in UTC, such as 2026-12-01T10:00:00Z")
        }
        TimeError::Month(month) => write!(f, "has no month {month}"),
        TimeError::Day { year, month, day } => {
            write!(f, "has no day {day} in {year:04}-{month:02}")
        }
        TimeError::Hour(hour) => write!(f, "has no hour {hour} (00-23)"),
        TimeError::Minute(minute) => write!(f, "has no minute {minute} (00-59)"),
        TimeError::Second(second) => write!(f, "has no second {second} (00-59)"),
        TimeError::NotUtc { utc } => write!(
            f,
            "is not in UTC; write the same time as {}",
            format_rfc3339(utc)
        ),
    }
}

#[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
fn write_schema_keyword(f: &mut dyn fmt::Write, keyword: &SchemaKeyword) -> fmt::Result {
    match keyword {
        SchemaKeyword::NoValueAllowed => f.write_str("no value is allowed here"),
        SchemaKeyword::NotConst(constant) => write!(f, "must be {constant}"),
        SchemaKeyword::TooShort(min) => write!(f, "must be at least {min} characters long"),
        SchemaKeyword::TooLong(max) => write!(f, "must be at most {max} characters long"),
        SchemaKeyword::PatternMismatch { text, pattern } => {
            write!(f, "{text:?} does not match {pattern}")
        }
        SchemaKeyword::InvalidSchemaPattern { pattern, error } => {
            write!(f, "the schema's pattern {pattern} is invalid: {error}")
        }
        SchemaKeyword::BelowMinimum { value, minimum } => {
            write!(f, "{value} is less than the minimum {minimum}")
        }
        SchemaKeyword::AboveMaximum { value, maximum } => {
            write!(f, "{value} is more than the maximum {maximum}")
        }
        SchemaKeyword::TooFewItems(min) => write!(f, "must have at least {min} item(s)"),
        SchemaKeyword::TooManyItems(max) => write!(f, "must have at most {max} items"),
        SchemaKeyword::ListedTwice { index, item } => {
            write!(f, "item {index} ({item}) is listed twice")
        }
        SchemaKeyword::NoneOf(alternatives) => write!(f, "must be {}", alternatives.join(" or ")),
        SchemaKeyword::MustNotHave(what) => write!(f, "must not have {what}"),
    }
}

/// The found value, except that an array where an object belongs is called an array.
fn write_found(f: &mut dyn fmt::Write, found: &Found, expected: &Expected) -> fmt::Result {
    match (found, expected) {
        (Found::Array, Expected::Object) => f.write_str("array"),
        _ => write!(f, "{found}"),
    }
}

/// serde's words for a value (the filter's messages come from serde, and `validate`'s
/// must read the same).
impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Null => f.write_str("null"),
            Found::Boolean(b) => write!(f, "boolean `{b}`"),
            Found::Number(n) if n.is_f64() => write!(f, "floating point `{n}`"),
            Found::Number(n) => write!(f, "integer `{n}`"),
            Found::String(s) => write!(f, "string {s:?}"),
            Found::Array => f.write_str("sequence"),
            Found::Object => f.write_str("map"),
            Found::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::String => f.write_str("a string"),
            Expected::Boolean => f.write_str("a boolean"),
            Expected::Array => f.write_str("an array"),
            Expected::Object => f.write_str("a JSON object"),
            Expected::Number => f.write_str("a number"),
            Expected::Integer => f.write_str("an integer"),
            Expected::NonNegativeInteger => f.write_str("a non-negative integer"),
            Expected::Null => f.write_str("null"),
            Expected::Value => f.write_str("a value"),
            Expected::OneOf(names) => write_one_of(f, names),
            Expected::Other(text) => f.write_str(text),
        }
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` `` (serde's wording for variants).
fn write_one_of(f: &mut dyn fmt::Write, names: &[String]) -> fmt::Result {
    match names {
        [one] => write!(f, "`{one}`"),
        [a, b] => write!(f, "`{a}` or `{b}`"),
        _ => {
            f.write_str("one of ")?;
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}`")?;
            }
            Ok(())
        }
    }
}

/// The known name closest to `unknown` by edit distance, when it is close enough to be a typo.
pub fn closest_name<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|name| (edit_distance(unknown, name), name))
        .filter(|(distance, name)| *distance <= (name.len().max(unknown.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous_diagonal = i;
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous_diagonal + usize::from(ca != *cb);
            let (Some(&left), Some(&up)) = (row.get(j), row.get(j + 1)) else {
                continue;
            };
            previous_diagonal = up;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = substitution.min(left + 1).min(up + 1);
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_sums_keep_the_decimals_given() {
        let text = |buckets| ErrorKind::PercentSum(buckets).to_string();
        assert_eq!(text(9000), "percents sum to 90, expected 100");
        assert_eq!(text(9950), "percents sum to 99.5, expected 100");
        assert_eq!(text(9975), "percents sum to 99.75, expected 100");
        assert_eq!(text(9901), "percents sum to 99.01, expected 100");
    }
}
