//! The plugin configuration as written (SPEC §2): serde DTOs, and [`parse_dto`], the one
//! place where serde's structural errors become [`ErrorKind`]s.

use serde::Deserialize;

use super::error::{ConfigError, ErrorKind, Expected, Found, JsonPath, PathSegment};

/// The plugin configuration as written (SPEC §2). Field names are the contract.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct PluginConfigDto {
    pub schema: Option<u64>,
    pub tag_header: Option<String>,
    pub versions: Vec<String>,
    pub default_version: String,
    pub client_ip: Option<ClientIpDto>,
    // The lists are `Option`s so that compiling can tell a list given (empty or not) from
    // one left out: sidecar mode rejects the gateway's fields when they are given at all.
    pub trusted_tag_sources: Option<Vec<String>>,
    pub normalize: Option<Vec<NormalizeDto>>,
    pub rules: Option<Vec<RuleDto>>,
    pub sticky_cookie: Option<StickyCookieDto>,
    pub response_header: Option<String>,
    #[serde(default)]
    pub baggage: bool,
    /// SPEC §12: also carry the version as the `canary` member of W3C `tracestate`.
    #[serde(default)]
    pub tracestate: bool,
    /// SPEC §8, §12: `gateway` (the default) decides; `sidecar` and `waypoint` restore the
    /// tag.
    pub mode: Option<ModeDto>,
    /// Sidecar and waypoint mode: where a call's version comes from, in order.
    pub restore: Option<Vec<RestoreSourceDto>>,
    /// Sidecar and waypoint mode: the trace id → version table.
    pub trace_memory: Option<TraceMemoryDto>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(rename_all = "lowercase")]
pub enum ModeDto {
    Gateway,
    Sidecar,
    Waypoint,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(rename_all = "lowercase")]
pub enum RestoreSourceDto {
    Header,
    Baggage,
    Tracestate,
    Trace,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct TraceMemoryDto {
    pub entries: Option<u64>,
    pub ttl_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct ClientIpDto {
    pub from: ClientIpFrom,
    pub trusted_hops: Option<u32>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpFrom {
    Peer,
    Xff,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct NormalizeDto {
    pub header: String,
    pub allowed: Vec<String>,
    pub default: String,
    pub when: Option<ConditionDto>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct RuleDto {
    pub name: String,
    #[serde(rename = "match")]
    pub condition: Option<ConditionDto>,
    pub version: Option<String>,
    pub version_from: Option<String>,
    pub split: Option<SplitDto>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct SplitDto {
    pub weights: Vec<WeightDto>,
    #[serde(default)]
    pub key: Vec<String>,
    pub salt: Option<String>,
    pub ramp: Option<RampDto>,
}

/// `split.ramp` (SPEC §9): the first listed version grows by itself.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct RampDto {
    pub start: String,
    pub duration_s: u64,
    pub to: f64,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct WeightDto {
    pub version: String,
    pub percent: f64,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct StickyCookieDto {
    pub name: String,
    pub max_age_s: Option<u64>,
    pub secure: Option<bool>,
    pub signing: Option<SigningDto>,
}

/// `sticky_cookie.signing` (SPEC §10): where the keys are, never the keys themselves.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct SigningDto {
    pub keys_env: String,
}

/// A `match` condition. Written as one flat object (`{"header": "x", "exact": "y"}`), so
/// it is one struct here; compiling checks that exactly one kind and one operator is set.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    all(feature = "schema", not(target_arch = "wasm32")),
    derive(schemars::JsonSchema)
)]
#[serde(deny_unknown_fields)]
pub struct ConditionDto {
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub query: Option<String>,
    pub source_ip: Option<Vec<String>>,
    pub all: Option<Vec<ConditionDto>>,
    pub any: Option<Vec<ConditionDto>>,
    pub not: Option<Box<ConditionDto>>,
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    pub regex: Option<String>,
    pub present: Option<bool>,
    pub ignore_case: Option<bool>,
}

/// What a condition tests: exactly one of these per `match` object.
pub enum ConditionKind<'a> {
    Header(&'a str),
    Cookie(&'a str),
    Query(&'a str),
    SourceIp(&'a [String]),
    All(&'a [ConditionDto]),
    Any(&'a [ConditionDto]),
    Not(&'a ConditionDto),
}

/// How a `header`, `cookie` or `query` condition compares the value.
pub enum OperatorDto<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Suffix(&'a str),
    Contains(&'a str),
    Regex(&'a str),
    Present(bool),
}

impl ConditionDto {
    /// The condition kinds' field names, in the order of [`ConditionDto::kinds`].
    pub const KINDS: [&'static str; 7] = [
        "header",
        "cookie",
        "query",
        "source_ip",
        "all",
        "any",
        "not",
    ];
    /// The operators' field names, in the order of [`ConditionDto::operators`].
    pub const OPERATORS: [&'static str; 6] =
        ["exact", "prefix", "suffix", "contains", "regex", "present"];

    /// Each condition kind, where given.
    pub fn kinds(&self) -> [Option<ConditionKind<'_>>; 7] {
        [
            self.header.as_deref().map(ConditionKind::Header),
            self.cookie.as_deref().map(ConditionKind::Cookie),
            self.query.as_deref().map(ConditionKind::Query),
            self.source_ip.as_deref().map(ConditionKind::SourceIp),
            self.all.as_deref().map(ConditionKind::All),
            self.any.as_deref().map(ConditionKind::Any),
            self.not.as_deref().map(ConditionKind::Not),
        ]
    }

    /// Each operator, where given.
    pub fn operators(&self) -> [Option<OperatorDto<'_>>; 6] {
        [
            self.exact.as_deref().map(OperatorDto::Exact),
            self.prefix.as_deref().map(OperatorDto::Prefix),
            self.suffix.as_deref().map(OperatorDto::Suffix),
            self.contains.as_deref().map(OperatorDto::Contains),
            self.regex.as_deref().map(OperatorDto::Regex),
            self.present.map(OperatorDto::Present),
        ]
    }
}

/// What a rule does when it matches: exactly one of these per rule.
pub enum ActionDto<'a> {
    Version(&'a str),
    VersionFrom(&'a str),
    Split(&'a SplitDto),
}

impl RuleDto {
    /// The actions' field names, in the order of [`RuleDto::actions`].
    pub const ACTIONS: [&'static str; 3] = ["version", "version_from", "split"];

    /// Each action, where given.
    pub fn actions(&self) -> [Option<ActionDto<'_>>; 3] {
        [
            self.version.as_deref().map(ActionDto::Version),
            self.version_from.as_deref().map(ActionDto::VersionFrom),
            self.split.as_ref().map(ActionDto::Split),
        ]
    }
}

// ---------------------------------------------------------------------------- parsing

/// Parses the JSON into DTOs; structural errors (syntax, unknown fields, wrong types,
/// missing fields) come back with their JSON path.
pub fn parse_dto(json: &[u8]) -> Result<PluginConfigDto, ConfigError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(JsonPath::root(), ErrorKind::EmptyDocument));
    }
    let array_for_object = |path| {
        let found = Found::Array;
        ConfigError::new(
            path,
            ErrorKind::InvalidType {
                found,
                expected: Expected::Object,
            },
        )
    };
    // serde would read the root's fields from an array in field order (and report an
    // unfinished one at `[0]`); the configuration is an object.
    if json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(array_for_object(JsonPath::root()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let parsed: Result<PluginConfigDto, _> = serde_path_to_error::deserialize(&mut deserializer);
    let dto = parsed.map_err(|error| structural_error(&error))?;
    deserializer.end().map_err(|error| {
        ConfigError::new(JsonPath::root(), ErrorKind::InvalidJson(error.to_string()))
    })?;
    if let Some(path) = super::positional::array_for_object(json) {
        return Err(array_for_object(path));
    }
    Ok(dto)
}

/// Classifies one of serde's structural errors.
///
/// This is the one place that reads serde's message text, and it must: serde hands a
/// deserializer's error type only a message (`de::Error::custom` with "unknown field `x`,
/// expected one of ..."), and serde_json keeps nothing else of it — no field name, no
/// expected list, no found value. The path comes structured from serde_path_to_error.
/// What cannot be classified is kept in serde's words ([`ErrorKind::Unclassified`]).
fn structural_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    let inner = error.inner();
    if inner.is_syntax() || inner.is_eof() {
        return ConfigError::new(JsonPath::root(), ErrorKind::InvalidJson(inner.to_string()));
    }
    let mut path = JsonPath::root();
    for segment in error.path().iter() {
        path.push(match segment {
            serde_path_to_error::Segment::Seq { index } => PathSegment::Index(*index),
            serde_path_to_error::Segment::Map { key } => PathSegment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => PathSegment::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => PathSegment::Key("?".into()),
        });
    }
    let text = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let message = text.strip_suffix(&position).unwrap_or(&text);

    if let Some(field) = quoted_after(message, "missing field ") {
        return ConfigError::new(path.key(field), ErrorKind::MissingField);
    }
    // serde_path_to_error counts the unknown key into the path: the name comes from there
    // (it may hold any character, a backtick too, which would end it early in serde's
    // message, as the `config` fuzz target found), and the error goes to its object.
    if let (Some(rest), Some(PathSegment::Key(field))) = (
        message.strip_prefix("unknown field `"),
        path.segments().last(),
    ) {
        let known = rest
            .strip_prefix(field.as_str())
            .and_then(|rest| rest.strip_prefix("`, expected "))
            .and_then(one_of)
            .unwrap_or_default();
        let field = field.clone();
        return ConfigError::new(path.parent(), ErrorKind::UnknownField { field, known });
    }
    let kind = classify(message);
    ConfigError::new(path, kind)
}

/// A data error's message (no path, no position) as a kind.
fn classify(message: &str) -> ErrorKind {
    if let Some(field) = quoted_after(message, "duplicate field ") {
        return ErrorKind::DuplicateField(field.to_string());
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((found, list)) = rest.split_once("`, expected ") {
            if let Some(expected) = one_of(list) {
                let found = found.to_string();
                return ErrorKind::UnknownVariant { found, expected };
            }
        }
    }
    // A JSON array where a struct belongs: serde_derive reads structs from sequences too.
    if message.starts_with("invalid length ") && message.contains(", expected struct ") {
        return ErrorKind::InvalidType {
            found: Found::Array,
            expected: Expected::Object,
        };
    }
    // The expected part is a type's description, which never holds ", expected ".
    let mismatch = |prefix: &str| {
        let (found, expected) = message.strip_prefix(prefix)?.rsplit_once(", expected ")?;
        Some((found_value(found), expected_type(expected)))
    };
    if let Some((found, expected)) = mismatch("invalid type: ") {
        return ErrorKind::InvalidType { found, expected };
    }
    if let Some((found, expected)) = mismatch("invalid value: ") {
        return ErrorKind::InvalidValue { found, expected };
    }
    ErrorKind::Unclassified(message.to_string())
}

/// `` prefix`name` `` (the whole message) → `name`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    Some(rest.split_once('`').map_or(rest, |(name, _)| name))
}

/// serde's list of names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(list: &str) -> Option<Vec<String>> {
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|name| {
            let name = name.strip_prefix('`')?.strip_suffix('`')?;
            Some(name.to_string())
        })
        .collect()
}

/// serde_json's description of the value it found (`integer `2``, `string "x"`), kept
/// in its words when it does not read back to the same text.
fn found_value(text: &str) -> Found {
    let ticked = |prefix: &str| {
        text.strip_prefix(prefix)?
            .strip_prefix('`')?
            .strip_suffix('`')
    };
    let found = if text == "null" {
        Some(Found::Null)
    } else if text == "sequence" {
        Some(Found::Array)
    } else if text == "map" {
        Some(Found::Object)
    } else if let Some(b) = ticked("boolean ") {
        b.parse().ok().map(Found::Boolean)
    } else if let Some(n) = ticked("integer ") {
        let unsigned = n.parse::<u64>().map(serde_json::Number::from);
        let signed = || n.parse::<i64>().map(serde_json::Number::from);
        unsigned.or_else(|_| signed()).ok().map(Found::Number)
    } else if let Some(quoted) = text.strip_prefix("string ") {
        unescape_debug(quoted).map(Found::String)
    } else {
        // Also `floating point `1.5``: reading it back would take a float parser in the
        // module (core's adds over 10 KB) only to write the same text.
        None
    };
    match found {
        // Kept only when it reads back to serde's text: a new wording is never misquoted.
        Some(found) if found.to_string() == text => found,
        _ => Found::Other(text.to_string()),
    }
}

/// What serde's visitors say they expected, by the Rust type they deserialize.
fn expected_type(text: &str) -> Expected {
    match text {
        "a string" => Expected::String,
        "a boolean" => Expected::Boolean,
        "a sequence" => Expected::Array,
        "f64" => Expected::Number,
        "u64" | "u32" => Expected::NonNegativeInteger,
        _ if text.starts_with("struct ") => Expected::Object,
        _ => match one_of(text) {
            Some(names) if !names.is_empty() => Expected::OneOf(names),
            _ => Expected::Other(text.to_string()),
        },
    }
}

/// The string a Rust `{:?}` rendering (`"a\"b"`) stands for.
fn unescape_debug(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            'u' => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            other => other,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names_are_the_serde_field_names_in_order() {
        let value = |name: &str| match name {
            "source_ip" | "all" | "any" => serde_json::json!([]),
            "not" => serde_json::json!({}),
            "present" => serde_json::json!(true),
            _ => serde_json::json!("x"),
        };
        let given = |name: &str| serde_json::json!({ name: value(name) });
        for (i, name) in ConditionDto::KINDS.iter().enumerate() {
            let dto: ConditionDto = serde_json::from_value(given(name)).unwrap();
            let set: Vec<bool> = dto.kinds().iter().map(Option::is_some).collect();
            assert_eq!(set.iter().position(|s| *s), Some(i), "{name}");
            assert_eq!(set.iter().filter(|s| **s).count(), 1, "{name}");
        }
        for (i, name) in ConditionDto::OPERATORS.iter().enumerate() {
            let dto: ConditionDto = serde_json::from_value(given(name)).unwrap();
            let set: Vec<bool> = dto.operators().iter().map(Option::is_some).collect();
            assert_eq!(set.iter().position(|s| *s), Some(i), "{name}");
            assert_eq!(set.iter().filter(|s| **s).count(), 1, "{name}");
        }
        for (i, name) in RuleDto::ACTIONS.iter().enumerate() {
            let mut rule = serde_json::json!({ "name": "r" });
            rule[name] = match *name {
                "split" => serde_json::json!({ "weights": [] }),
                _ => serde_json::json!("v1"),
            };
            let dto: RuleDto = serde_json::from_value(rule).unwrap();
            let set: Vec<bool> = dto.actions().iter().map(Option::is_some).collect();
            assert_eq!(set.iter().position(|s| *s), Some(i), "{name}");
            assert_eq!(set.iter().filter(|s| **s).count(), 1, "{name}");
        }
    }

    #[test]
    fn unmodelled_wording_is_kept_verbatim() {
        assert_eq!(
            found_value("character `x`"),
            Found::Other("character `x`".into())
        );
        assert_eq!(
            found_value(r#"string "\q""#),
            Found::Other(r#"string "\q""#.into())
        );
        assert_eq!(
            expected_type("variant identifier"),
            Expected::Other("variant identifier".into())
        );
        assert_eq!(
            classify("something new"),
            ErrorKind::Unclassified("something new".into())
        );
    }
}
