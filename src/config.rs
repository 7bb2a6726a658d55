//! Plugin configuration: the JSON a `WasmPlugin.pluginConfig` carries (SPEC §2), parsed into
//! serde DTOs and compiled into [`CompiledConfig`], in which every regex is built, every
//! CIDR parsed, every name lower-cased and every split turned into bucket ranges. A value
//! that reaches the compiled config is known to be good; each rejection names its JSON path.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use crate::matcher::{Condition, StringMatch, ValueSource};
use crate::net::Cidr;

// ---------------------------------------------------------------------------- errors

/// One reason a configuration was rejected, at one JSON path (`rules[3].split.weights`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Every reason a configuration was rejected (never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while compiling, each under the path of the value being compiled.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, path: &str, reason: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.to_string(),
            reason: reason.into(),
        });
    }
}

// ---------------------------------------------------------------------------- DTOs

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
    #[serde(default)]
    pub trusted_tag_sources: Vec<String>,
    #[serde(default)]
    pub normalize: Vec<NormalizeDto>,
    #[serde(default)]
    pub rules: Vec<RuleDto>,
    pub sticky_cookie: Option<StickyCookieDto>,
    pub response_header: Option<String>,
    #[serde(default)]
    pub baggage: bool,
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

// ---------------------------------------------------------------------------- compiled

/// Index of a version in [`CompiledConfig::versions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionId(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIpMode {
    Peer,
    ForwardedFor { trusted_hops: u32 },
}

#[derive(Debug)]
pub struct Normalize {
    /// Lower-case header name.
    pub header: String,
    pub allowed: Vec<String>,
    pub default: String,
    pub when: Option<Condition>,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    /// `None`: the rule applies to every request.
    pub condition: Option<Condition>,
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    Fixed(VersionId),
    /// The value of this header or cookie, when it names a known version.
    VersionFrom(ValueSource),
    Split(Split),
}

/// A weighted split: consecutive bucket ranges in the listed order.
#[derive(Debug)]
pub struct Split {
    /// `(end, version)`: buckets below `end` (and at or above the previous end).
    pub ranges: Vec<(u16, VersionId)>,
    pub keys: Vec<KeySource>,
    pub salt: String,
}

impl Split {
    pub fn version_for(&self, bucket: u16) -> Option<VersionId> {
        self.ranges
            .iter()
            .find(|(end, _)| bucket < *end)
            .map(|&(_, version)| version)
    }
}

/// Where a split finds the value it hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Value(ValueSource),
    SourceIp,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Value(source) => write!(f, "{source}"),
            KeySource::SourceIp => f.write_str("source_ip"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickyCookie {
    pub name: String,
    pub max_age_s: u64,
    pub secure: bool,
}

impl StickyCookie {
    /// The `Set-Cookie` value that issues sticky id `id` (SPEC §4).
    pub fn set_cookie(&self, id: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name, self.max_age_s
        )
    }
}

/// A configuration known to be valid: everything the request path needs, precompiled.
#[derive(Debug)]
pub struct CompiledConfig {
    /// Lower-case.
    pub tag_header: String,
    pub versions: Vec<String>,
    pub default_version: VersionId,
    pub client_ip: ClientIpMode,
    pub trusted_tag_sources: Vec<Cidr>,
    pub normalize: Vec<Normalize>,
    pub rules: Vec<Rule>,
    pub sticky_cookie: Option<StickyCookie>,
    /// Lower-case.
    pub response_header: Option<String>,
    pub baggage: bool,
}

pub const DEFAULT_TAG_HEADER: &str = "x-canary-version";
pub const DEFAULT_STICKY_MAX_AGE_S: u64 = 2_592_000;
pub const SUPPORTED_SCHEMA: u64 = 1;
/// Normalizations are tracked in a 64-bit set per request.
pub const MAX_NORMALIZE: usize = 64;
const MAX_NAME_LEN: usize = 63;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl CompiledConfig {
    /// Parses and compiles plugin configuration JSON.
    pub fn from_json(json: &[u8]) -> Result<CompiledConfig, ConfigErrors> {
        let dto = parse_dto(json).map_err(|error| ConfigErrors(vec![error]))?;
        CompiledConfig::try_from(dto)
    }

    pub fn version_name(&self, version: VersionId) -> &str {
        self.versions.get(version.0).map_or("", String::as_str)
    }

    /// The version a header or cookie value names, if it is one of `versions` exactly.
    pub fn version_named(&self, value: &[u8]) -> Option<VersionId> {
        self.versions
            .iter()
            .position(|v| v.as_bytes() == value)
            .map(VersionId)
    }
}

/// Parses the JSON into DTOs; structural errors (syntax, unknown fields, wrong types,
/// missing fields) come back with their JSON path.
pub fn parse_dto(json: &[u8]) -> Result<PluginConfigDto, ConfigError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError {
            path: "$".into(),
            reason: "configuration is empty; `versions` and `default_version` are required".into(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let parsed: Result<PluginConfigDto, _> = serde_path_to_error::deserialize(&mut deserializer);
    let dto = parsed.map_err(|error| structural_error(&error))?;
    deserializer.end().map_err(|error| ConfigError {
        path: "$".into(),
        reason: format!("invalid JSON: {error}"),
    })?;
    Ok(dto)
}

fn structural_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    let inner = error.inner();
    let raw_path = error.path().to_string();
    let path = if raw_path == "." {
        String::new()
    } else {
        raw_path
    };
    let message = strip_position(&inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        return ConfigError {
            path: "$".into(),
            reason: format!("invalid JSON: {inner}"),
        };
    }
    if let Some(field) = between(&message, "missing field `", "`") {
        return ConfigError {
            path: join_path(&path, field),
            reason: "required field is missing".into(),
        };
    }
    if let Some(field) = between(&message, "unknown field `", "`") {
        let expected = expected_names(&message);
        let reason = match closest_name(field, &expected) {
            Some(suggestion) => {
                format!("unknown field \"{field}\" (did you mean \"{suggestion}\"?)")
            }
            None => format!(
                "unknown field \"{field}\"; expected one of {}",
                expected.join(", ")
            ),
        };
        // serde_path_to_error reports the unknown key as part of the path; name its parent.
        let parent = path
            .strip_suffix(field)
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or(&path);
        return ConfigError {
            path: or_root(parent),
            reason,
        };
    }
    ConfigError {
        path: or_root(&path),
        reason: plain_types(&message),
    }
}

/// serde names Rust types in its messages; say what the JSON should hold instead.
fn plain_types(message: &str) -> String {
    let message = match message.find("expected struct ") {
        // An array where an object belongs reaches serde as a short tuple-struct.
        Some(_) if message.starts_with("invalid length") => {
            "invalid type: array, expected a JSON object".to_string()
        }
        Some(at) => format!(
            "{}expected a JSON object",
            message.get(..at).unwrap_or_default()
        ),
        None => message.to_string(),
    };
    [
        ("expected a sequence", "expected an array"),
        ("expected f64", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
    ]
    .iter()
    .fold(message, |text, (from, to)| text.replace(from, to))
}

fn or_root(path: &str) -> String {
    if path.is_empty() {
        "$".into()
    } else {
        path.into()
    }
}

fn join_path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.into()
    } else {
        format!("{parent}.{field}")
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = text.get(text.find(start)? + start.len()..)?;
    rest.get(..rest.find(end)?)
}

fn expected_names(message: &str) -> Vec<String> {
    let Some(list) = message.split_once("expected one of ").map(|(_, list)| list) else {
        return match between(message, "expected `", "`") {
            Some(single) => vec![single.to_string()],
            None => Vec::new(),
        };
    };
    list.split(", ")
        .map(|name| name.trim_matches('`').to_string())
        .collect()
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

// ---------------------------------------------------------------------------- compile

impl TryFrom<PluginConfigDto> for CompiledConfig {
    type Error = ConfigErrors;

    fn try_from(dto: PluginConfigDto) -> Result<Self, ConfigErrors> {
        let mut errors = Errors::default();

        if let Some(schema) = dto.schema {
            if schema != SUPPORTED_SCHEMA {
                errors.add(
                    "schema",
                    format!("unsupported schema {schema}, expected {SUPPORTED_SCHEMA}"),
                );
            }
        }

        let tag_header = match &dto.tag_header {
            Some(name) => header_name(name, "tag_header", false, &mut errors),
            None => DEFAULT_TAG_HEADER.to_string(),
        };

        let versions = compile_versions(&dto.versions, &mut errors);
        let known = Known {
            versions: &versions,
            tag_header: &tag_header,
        };
        let default_version = if dto.default_version.is_empty() {
            errors.add("default_version", "must not be empty");
            VersionId(0)
        } else {
            known.version(&dto.default_version, "default_version", &mut errors)
        };

        let client_ip = match &dto.client_ip {
            None => ClientIpMode::Peer,
            Some(ClientIpDto {
                from: ClientIpFrom::Peer,
                trusted_hops: Some(_),
            }) => {
                errors.add(
                    "client_ip.trusted_hops",
                    "only applies when client_ip.from is \"xff\"",
                );
                ClientIpMode::Peer
            }
            Some(ClientIpDto {
                from: ClientIpFrom::Peer,
                trusted_hops: None,
            }) => ClientIpMode::Peer,
            Some(ClientIpDto {
                from: ClientIpFrom::Xff,
                trusted_hops,
            }) => ClientIpMode::ForwardedFor {
                trusted_hops: trusted_hops.unwrap_or(0),
            },
        };

        let trusted_tag_sources =
            compile_cidrs(&dto.trusted_tag_sources, "trusted_tag_sources", &mut errors);

        if dto.normalize.len() > MAX_NORMALIZE {
            errors.add(
                "normalize",
                format!(
                    "at most {MAX_NORMALIZE} entries are supported, found {}",
                    dto.normalize.len()
                ),
            );
        }
        let normalize = dto
            .normalize
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                compile_normalize(entry, &format!("normalize[{i}]"), &known, &mut errors)
            })
            .collect();

        let mut rule_names = HashSet::new();
        let rules = dto
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                let path = format!("rules[{i}]");
                if !rule.name.is_empty() && !rule_names.insert(rule.name.clone()) {
                    errors.add(
                        &format!("{path}.name"),
                        format!("duplicate rule name \"{}\"", rule.name),
                    );
                }
                compile_rule(rule, &path, &known, &mut errors)
            })
            .collect();

        let sticky_cookie = dto.sticky_cookie.as_ref().map(|sticky| {
            if !is_cookie_name(&sticky.name) {
                errors.add(
                    "sticky_cookie.name",
                    if sticky.name.is_empty() {
                        "must not be empty".to_string()
                    } else {
                        format!("\"{}\" is not a valid cookie name", sticky.name)
                    },
                );
            }
            let max_age_s = sticky.max_age_s.unwrap_or(DEFAULT_STICKY_MAX_AGE_S);
            if max_age_s == 0 {
                errors.add(
                    "sticky_cookie.max_age_s",
                    "must be positive (0 would delete the cookie)",
                );
            }
            StickyCookie {
                name: sticky.name.clone(),
                max_age_s,
                secure: sticky.secure.unwrap_or(false),
            }
        });

        let response_header = dto
            .response_header
            .as_ref()
            .map(|name| header_name(name, "response_header", false, &mut errors));

        if errors.0.is_empty() {
            Ok(CompiledConfig {
                tag_header,
                versions,
                default_version,
                client_ip,
                trusted_tag_sources,
                normalize,
                rules,
                sticky_cookie,
                response_header,
                baggage: dto.baggage,
            })
        } else {
            Err(ConfigErrors(errors.0))
        }
    }
}

/// What the rest of the config is checked against.
struct Known<'a> {
    versions: &'a [String],
    tag_header: &'a str,
}

impl Known<'_> {
    fn version(&self, name: &str, path: &str, errors: &mut Errors) -> VersionId {
        match self.versions.iter().position(|v| v == name) {
            Some(index) => VersionId(index),
            None => {
                errors.add(
                    path,
                    format!(
                        "unknown version \"{name}\"; versions are {}",
                        self.versions.join(", ")
                    ),
                );
                VersionId(0)
            }
        }
    }
}

fn compile_versions(versions: &[String], errors: &mut Errors) -> Vec<String> {
    if versions.is_empty() {
        errors.add("versions", "must list at least one version");
    }
    let mut seen = HashSet::new();
    for (i, version) in versions.iter().enumerate() {
        let path = format!("versions[{i}]");
        if version.is_empty() {
            errors.add(&path, "must not be empty");
        } else if version.len() > MAX_NAME_LEN
            || !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            errors.add(
                &path,
                format!("\"{version}\" is not a valid version name (1-{MAX_NAME_LEN} of A-Z a-z 0-9 . _ -)"),
            );
        } else if !seen.insert(version.as_str()) {
            errors.add(&path, format!("duplicate version \"{version}\""));
        }
    }
    versions.to_vec()
}

fn compile_cidrs(ranges: &[String], path: &str, errors: &mut Errors) -> Vec<Cidr> {
    ranges
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match Cidr::parse(text) {
            Ok(cidr) => Some(cidr),
            Err(reason) => {
                errors.add(&format!("{path}[{i}]"), reason);
                None
            }
        })
        .collect()
}

fn compile_normalize(
    entry: &NormalizeDto,
    path: &str,
    known: &Known,
    errors: &mut Errors,
) -> Normalize {
    let header = header_name(&entry.header, &format!("{path}.header"), false, errors);
    if header == known.tag_header {
        errors.add(
            &format!("{path}.header"),
            "the tag header is written by the filter itself and cannot be normalized",
        );
    }
    if entry.allowed.is_empty() {
        errors.add(&format!("{path}.allowed"), "must list at least one value");
    }
    if !entry.allowed.contains(&entry.default) {
        errors.add(
            &format!("{path}.default"),
            format!("\"{}\" is not one of allowed", entry.default),
        );
    }
    let when = entry
        .when
        .as_ref()
        .and_then(|c| compile_condition(c, &format!("{path}.when"), known, errors));
    Normalize {
        header,
        allowed: entry.allowed.clone(),
        default: entry.default.clone(),
        when,
    }
}

fn compile_rule(rule: &RuleDto, path: &str, known: &Known, errors: &mut Errors) -> Option<Rule> {
    if rule.name.is_empty() {
        errors.add(&format!("{path}.name"), "must not be empty");
    } else if rule.name.len() > MAX_NAME_LEN || !rule.name.bytes().all(|b| b.is_ascii_graphic()) {
        errors.add(
            &format!("{path}.name"),
            format!(
                "\"{}\" is not a valid rule name (1-{MAX_NAME_LEN} visible ASCII characters, no spaces)",
                rule.name
            ),
        );
    }
    let condition = rule
        .condition
        .as_ref()
        .and_then(|c| compile_condition(c, &format!("{path}.match"), known, errors));

    let actions: Vec<&str> = [
        rule.version.as_ref().map(|_| "version"),
        rule.version_from.as_ref().map(|_| "version_from"),
        rule.split.as_ref().map(|_| "split"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let action = match (&rule.version, &rule.version_from, &rule.split) {
        _ if actions.len() != 1 => {
            let found = if actions.is_empty() {
                "none".to_string()
            } else {
                actions.join(" and ")
            };
            errors.add(
                path,
                format!(
                    "expected exactly one action of version, version_from, split; found {found}"
                ),
            );
            return None;
        }
        (Some(version), _, _) => {
            Action::Fixed(known.version(version, &format!("{path}.version"), errors))
        }
        (_, Some(source), _) => {
            let source_path = format!("{path}.version_from");
            let source = value_source(source, &source_path, &["header", "cookie"], known, errors)?;
            Action::VersionFrom(source)
        }
        (_, _, Some(split)) => Action::Split(compile_split(
            split,
            &rule.name,
            &format!("{path}.split"),
            known,
            errors,
        )),
        _ => return None,
    };
    Some(Rule {
        name: rule.name.clone(),
        condition,
        action,
    })
}

fn compile_split(
    split: &SplitDto,
    rule_name: &str,
    path: &str,
    known: &Known,
    errors: &mut Errors,
) -> Split {
    let weights_path = format!("{path}.weights");
    if split.weights.is_empty() {
        errors.add(&weights_path, "must list at least one version");
    }
    let mut ranges = Vec::with_capacity(split.weights.len());
    let mut seen = HashSet::new();
    let mut end: u32 = 0;
    for (i, weight) in split.weights.iter().enumerate() {
        let weight_path = format!("{weights_path}[{i}]");
        let version = known.version(&weight.version, &format!("{weight_path}.version"), errors);
        if !seen.insert(weight.version.as_str()) {
            errors.add(
                &format!("{weight_path}.version"),
                format!("version \"{}\" is listed twice", weight.version),
            );
        }
        match percent_to_buckets(weight.percent) {
            Ok(buckets) => end += u32::from(buckets),
            Err(reason) => errors.add(&format!("{weight_path}.percent"), reason),
        }
        ranges.push((u16::try_from(end).unwrap_or(u16::MAX), version));
    }
    if !split.weights.is_empty()
        && end != u32::from(crate::hash::BUCKETS)
        && errors_are_only_sum(split)
    {
        errors.add(
            &weights_path,
            format!("percents sum to {}, expected 100", format_buckets(end)),
        );
    }
    let keys = split
        .key
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let key_path = format!("{path}.key[{i}]");
            if key == "source_ip" {
                Some(KeySource::SourceIp)
            } else {
                value_source(
                    key,
                    &key_path,
                    &["cookie", "header", "query"],
                    known,
                    errors,
                )
                .map(KeySource::Value)
            }
        })
        .collect();
    Split {
        ranges,
        keys,
        salt: split.salt.clone().unwrap_or_else(|| rule_name.to_string()),
    }
}

/// The sum is only meaningful when every percent is itself valid.
fn errors_are_only_sum(split: &SplitDto) -> bool {
    split
        .weights
        .iter()
        .all(|w| percent_to_buckets(w.percent).is_ok())
}

/// A percent with at most two decimals, as a number of buckets (1 bucket = 0.01 %).
fn percent_to_buckets(percent: f64) -> Result<u16, String> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(format!("{percent} is outside 0..=100"));
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return Err(format!("{percent} has more than two decimals"));
    }
    // In 0..=10000 after the checks above, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(rounded as u16)
}

fn format_buckets(buckets: u32) -> String {
    let (whole, fraction) = (buckets / 100, buckets % 100);
    match fraction {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// Parses `header:NAME` / `cookie:NAME` / `query:NAME` with the allowed kinds.
fn value_source(
    text: &str,
    path: &str,
    kinds: &[&str],
    known: &Known,
    errors: &mut Errors,
) -> Option<ValueSource> {
    let expected = kinds
        .iter()
        .map(|k| format!("{k}:NAME"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some((kind, name)) = text
        .split_once(':')
        .filter(|(kind, _)| kinds.contains(kind))
    else {
        let extra = if path.contains(".key[") {
            ", source_ip"
        } else {
            ""
        };
        errors.add(path, format!("\"{text}\" is not one of {expected}{extra}"));
        return None;
    };
    if name.is_empty() {
        errors.add(path, format!("\"{text}\" names no {kind}"));
        return None;
    }
    match kind {
        "header" => {
            let name = header_name(name, path, true, errors);
            if name == known.tag_header {
                errors.add(path, "the tag header is set by this filter; clients must not choose it (use trusted_tag_sources)");
            }
            Some(ValueSource::Header(name))
        }
        "cookie" => {
            if !is_cookie_name(name) {
                errors.add(path, format!("\"{name}\" is not a valid cookie name"));
            }
            Some(ValueSource::Cookie(name.to_string()))
        }
        _ => Some(ValueSource::Query(name.to_string())),
    }
}

const PSEUDO_HEADERS: [&str; 4] = [":path", ":method", ":authority", ":scheme"];

/// A header name, lower-cased. Pseudo-headers only where a request is read (`allow_pseudo`).
fn header_name(name: &str, path: &str, allow_pseudo: bool, errors: &mut Errors) -> String {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() {
        errors.add(path, "header name must not be empty");
    } else if lower.starts_with(':') {
        if !allow_pseudo {
            errors.add(
                path,
                format!("\"{name}\": pseudo-headers cannot be used here"),
            );
        } else if !PSEUDO_HEADERS.contains(&lower.as_str()) {
            errors.add(
                path,
                format!(
                    "unknown pseudo-header \"{name}\"; allowed are {}",
                    PSEUDO_HEADERS.join(", ")
                ),
            );
        }
    } else if !lower.bytes().all(is_token_byte) {
        errors.add(path, format!("\"{name}\" is not a valid header name"));
    }
    lower
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_cookie_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

/// Compiles a `match` object; `None` (with errors recorded) when it is not valid.
fn compile_condition(
    c: &ConditionDto,
    path: &str,
    known: &Known,
    errors: &mut Errors,
) -> Option<Condition> {
    let kinds: Vec<&str> = [
        c.header.as_ref().map(|_| "header"),
        c.cookie.as_ref().map(|_| "cookie"),
        c.query.as_ref().map(|_| "query"),
        c.source_ip.as_ref().map(|_| "source_ip"),
        c.all.as_ref().map(|_| "all"),
        c.any.as_ref().map(|_| "any"),
        c.not.as_ref().map(|_| "not"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [kind] = kinds.as_slice() else {
        let found = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(" and ")
        };
        errors.add(
            path,
            format!("expected exactly one of header, cookie, query, source_ip, all, any, not; found {found}"),
        );
        return None;
    };
    let operators = operator_names(c);
    let takes_operator = matches!(*kind, "header" | "cookie" | "query");
    if !takes_operator {
        if let Some(first) = operators.first() {
            errors.add(
                &format!("{path}.{first}"),
                format!("operators do not apply to {kind}"),
            );
            return None;
        }
        if c.ignore_case.is_some() {
            errors.add(
                &format!("{path}.ignore_case"),
                format!("does not apply to {kind}"),
            );
            return None;
        }
    }
    match *kind {
        "header" => {
            let name = c.header.as_deref().unwrap_or_default();
            let name = header_name(name, &format!("{path}.header"), true, errors);
            if name == known.tag_header {
                errors.add(
                    &format!("{path}.header"),
                    "the tag header is set by this filter; match on the request instead",
                );
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Header(name),
                op,
            })
        }
        "cookie" => {
            let name = c.cookie.as_deref().unwrap_or_default();
            if !is_cookie_name(name) {
                errors.add(
                    &format!("{path}.cookie"),
                    format!("\"{name}\" is not a valid cookie name"),
                );
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Cookie(name.to_string()),
                op,
            })
        }
        "query" => {
            let name = c.query.as_deref().unwrap_or_default();
            if name.is_empty() {
                errors.add(
                    &format!("{path}.query"),
                    "query parameter name must not be empty",
                );
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Query(name.to_string()),
                op,
            })
        }
        "source_ip" => {
            let ranges = c.source_ip.as_deref().unwrap_or_default();
            let ip_path = format!("{path}.source_ip");
            if ranges.is_empty() {
                errors.add(&ip_path, "must list at least one address or CIDR range");
            }
            Some(Condition::SourceIp(compile_cidrs(ranges, &ip_path, errors)))
        }
        "all" | "any" => {
            let list = if *kind == "all" {
                c.all.as_deref()
            } else {
                c.any.as_deref()
            }
            .unwrap_or_default();
            let list_path = format!("{path}.{kind}");
            if list.is_empty() {
                errors.add(&list_path, "must list at least one condition");
            }
            let compiled: Vec<Condition> = list
                .iter()
                .enumerate()
                .filter_map(|(i, inner)| {
                    compile_condition(inner, &format!("{list_path}[{i}]"), known, errors)
                })
                .collect();
            Some(if *kind == "all" {
                Condition::All(compiled)
            } else {
                Condition::Any(compiled)
            })
        }
        _ => {
            let inner = c.not.as_deref()?;
            let inner = compile_condition(inner, &format!("{path}.not"), known, errors)?;
            Some(Condition::Not(Box::new(inner)))
        }
    }
}

fn operator_names(c: &ConditionDto) -> Vec<&'static str> {
    [
        c.exact.as_ref().map(|_| "exact"),
        c.prefix.as_ref().map(|_| "prefix"),
        c.suffix.as_ref().map(|_| "suffix"),
        c.contains.as_ref().map(|_| "contains"),
        c.regex.as_ref().map(|_| "regex"),
        c.present.as_ref().map(|_| "present"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn compile_operator(c: &ConditionDto, path: &str, errors: &mut Errors) -> Option<StringMatch> {
    let operators = operator_names(c);
    let [operator] = operators.as_slice() else {
        let found = if operators.is_empty() {
            "none".to_string()
        } else {
            operators.join(" and ")
        };
        errors.add(
            path,
            format!("expected exactly one operator of exact, prefix, suffix, contains, regex, present; found {found}"),
        );
        return None;
    };
    let ignore_case = c.ignore_case.unwrap_or(false);
    let op_path = format!("{path}.{operator}");
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    match *operator {
        "present" => {
            if c.ignore_case.is_some() {
                errors.add(&format!("{path}.ignore_case"), "does not apply to present");
                return None;
            }
            Some(StringMatch::Present(c.present.unwrap_or(true)))
        }
        "regex" => {
            let pattern = text(&c.regex);
            match crate::matcher::compile_regex(&pattern, ignore_case, REGEX_SIZE_LIMIT) {
                Ok(op) => Some(op),
                Err(reason) => {
                    errors.add(&op_path, reason);
                    None
                }
            }
        }
        "exact" => Some(StringMatch::literal(
            crate::matcher::LiteralKind::Exact,
            &text(&c.exact),
            ignore_case,
        )),
        "prefix" => Some(StringMatch::literal(
            crate::matcher::LiteralKind::Prefix,
            &text(&c.prefix),
            ignore_case,
        )),
        "suffix" => Some(StringMatch::literal(
            crate::matcher::LiteralKind::Suffix,
            &text(&c.suffix),
            ignore_case,
        )),
        _ => Some(StringMatch::literal(
            crate::matcher::LiteralKind::Contains,
            &text(&c.contains),
            ignore_case,
        )),
    }
}
