//! DTOs → [`CompiledConfig`]: every check SPEC §2 asks for, each failure an [`ErrorKind`]
//! at its JSON path; all of them are collected, not only the first.

use std::collections::HashSet;

use super::dto::{
    ActionDto, ClientIpDto, ClientIpFrom, ConditionDto, ConditionKind, ModeDto, NormalizeDto,
    OperatorDto, PluginConfigDto, RampDto, RestoreSourceDto, RuleDto, SplitDto, StickyCookieDto,
};
use super::error::{ConfigError, ConfigErrors, ErrorKind, JsonPath, ListOf, SigningKeysProblem};
use super::{
    Action, ClientIpMode, CompiledConfig, Environment, KeySource, Mode, NoEnvironment, Normalize,
    RestoreSource, Rule, Sidecar, Split, StickyCookie, TraceMemory, VersionId, Versions,
    DEFAULT_STICKY_MAX_AGE_S, DEFAULT_TAG_HEADER, DEFAULT_TRACE_ENTRIES, DEFAULT_TRACE_TTL_S,
    MAX_NAME_LEN, MAX_NORMALIZE, MAX_TRACE_ENTRIES, MAX_TRACE_TTL_S, PSEUDO_HEADERS,
    SUPPORTED_SCHEMA, VERSION_PUNCTUATION,
};
use crate::http;
use crate::matcher::{self, Condition, LiteralKind, StringMatch, ValueSource};
use crate::net::Cidr;
use crate::ramp::{parse_rfc3339_utc, Ramp};
use crate::signing::{self, SigningKeys};

const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The forms a value source may take: `KIND:NAME` of these kinds (in the order messages
/// list them), and whether also `source_ip`.
struct SourceForms {
    kinds: &'static [&'static str],
    source_ip: bool,
}

const VERSION_FROM_FORMS: SourceForms = SourceForms {
    kinds: &["header", "cookie"],
    source_ip: false,
};
const SPLIT_KEY_FORMS: SourceForms = SourceForms {
    kinds: &["cookie", "header", "query"],
    source_ip: true,
};

/// Collects errors while compiling, each under the path of the value being compiled.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, path: JsonPath, kind: ErrorKind) {
        self.0.push(ConfigError::new(path, kind));
    }
}

/// The one option of `options` that is given (with its name from `names`, same order), or
/// the error naming every choice and those given. `noun` is what the options are, where the
/// message says it. Conditions' kinds and operators and rules' actions all choose here.
fn exactly_one<T, const N: usize>(
    noun: Option<&'static str>,
    names: &[&'static str; N],
    options: [Option<T>; N],
) -> Result<(&'static str, T), ErrorKind> {
    let mut given: Vec<(&'static str, T)> = names
        .iter()
        .zip(options)
        .filter_map(|(name, option)| option.map(|value| (*name, value)))
        .collect();
    if given.len() == 1 {
        if let Some(one) = given.pop() {
            return Ok(one);
        }
    }
    Err(ErrorKind::ExactlyOne {
        noun,
        choices: names.iter().map(ToString::to_string).collect(),
        found: given.iter().map(|(name, _)| name.to_string()).collect(),
    })
}

/// The DTOs as a [`CompiledConfig`]; `sticky_cookie.signing` reads its keys from
/// `environment`.
pub fn compile(
    dto: PluginConfigDto,
    environment: &dyn Environment,
) -> Result<CompiledConfig, ConfigErrors> {
    CompiledConfig::try_from((dto, environment))
}

/// Compiles in an empty environment (see [`compile`]).
impl TryFrom<PluginConfigDto> for CompiledConfig {
    type Error = ConfigErrors;

    fn try_from(dto: PluginConfigDto) -> Result<Self, ConfigErrors> {
        compile(dto, &NoEnvironment)
    }
}

impl TryFrom<(PluginConfigDto, &dyn Environment)> for CompiledConfig {
    type Error = ConfigErrors;

    fn try_from(
        (dto, environment): (PluginConfigDto, &dyn Environment),
    ) -> Result<Self, ConfigErrors> {
        let mut errors = Errors::default();
        let root = JsonPath::root();

        if let Some(schema) = dto.schema {
            if schema != SUPPORTED_SCHEMA {
                errors.add(root.key("schema"), ErrorKind::UnsupportedSchema(schema));
            }
        }

        let tag_header = match &dto.tag_header {
            Some(name) => header_name(name, &root.key("tag_header"), false, &mut errors),
            None => DEFAULT_TAG_HEADER.to_string(),
        };

        check_versions(&dto.versions, &root.key("versions"), &mut errors);
        let known = Known {
            versions: &dto.versions,
            tag_header: &tag_header,
        };
        let default_path = root.key("default_version");
        let default_version = if dto.default_version.is_empty() {
            errors.add(default_path, ErrorKind::Empty);
            VersionId(0)
        } else {
            known.version(&dto.default_version, &default_path, &mut errors)
        };

        let client_ip = compile_client_ip(dto.client_ip.as_ref(), &root, &mut errors);

        let mode = compile_mode(&dto, &root, &mut errors);

        let trusted_tag_sources = compile_cidrs(
            dto.trusted_tag_sources.as_deref().unwrap_or_default(),
            &root.key("trusted_tag_sources"),
            &mut errors,
        );

        let normalize = compile_normalize_list(
            dto.normalize.as_deref().unwrap_or_default(),
            &root.key("normalize"),
            &known,
            &mut errors,
        );

        let rules = compile_rules(
            dto.rules.as_deref().unwrap_or_default(),
            &root,
            &known,
            &mut errors,
        );

        let sticky_path = root.key("sticky_cookie");
        let sticky_cookie = dto
            .sticky_cookie
            .as_ref()
            .map(|sticky| compile_sticky_cookie(sticky, &sticky_path, environment, &mut errors));

        let response_header = dto
            .response_header
            .as_ref()
            .map(|name| header_name(name, &root.key("response_header"), false, &mut errors));

        let versions = Versions::new(dto.versions);
        match versions {
            Some(versions) if errors.0.is_empty() => Ok(CompiledConfig {
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
                tracestate: dto.tracestate,
                mode,
            }),
            _ => Err(ConfigErrors(errors.0)),
        }
    }
}

/// `client_ip`: the peer address, or `x-forwarded-for` with its trusted hops.
fn compile_client_ip(
    client_ip: Option<&ClientIpDto>,
    root: &JsonPath,
    errors: &mut Errors,
) -> ClientIpMode {
    match client_ip {
        None => ClientIpMode::Peer,
        Some(ClientIpDto {
            from: ClientIpFrom::Peer,
            trusted_hops: Some(_),
        }) => {
            errors.add(
                root.key("client_ip").key("trusted_hops"),
                ErrorKind::TrustedHopsWithoutXff,
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
    }
}

/// `normalize`: at most [`MAX_NORMALIZE`] entries, each compiled.
fn compile_normalize_list(
    entries: &[NormalizeDto],
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Normalize> {
    if entries.len() > MAX_NORMALIZE {
        errors.add(path.clone(), ErrorKind::TooManyNormalize(entries.len()));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| compile_normalize(entry, &path.index(i), known, errors))
        .collect()
}

/// `rules`, in order, each name given only once.
fn compile_rules(
    rules: &[RuleDto],
    root: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Rule> {
    let mut rule_names = HashSet::new();
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let path = root.key("rules").index(i);
            if !rule.name.is_empty() && !rule_names.insert(rule.name.clone()) {
                errors.add(
                    path.key("name"),
                    ErrorKind::DuplicateRuleName(rule.name.clone()),
                );
            }
            compile_rule(rule, &path, known, errors)
        })
        .collect()
}

/// `sticky_cookie`: its name, lifetime and signing keys.
fn compile_sticky_cookie(
    sticky: &StickyCookieDto,
    sticky_path: &JsonPath,
    environment: &dyn Environment,
    errors: &mut Errors,
) -> StickyCookie {
    if sticky.name.is_empty() {
        errors.add(sticky_path.key("name"), ErrorKind::Empty);
    } else if !http::is_token(&sticky.name) {
        errors.add(
            sticky_path.key("name"),
            ErrorKind::InvalidCookieName(sticky.name.clone()),
        );
    }
    let max_age_s = sticky.max_age_s.unwrap_or(DEFAULT_STICKY_MAX_AGE_S);
    if max_age_s == 0 {
        errors.add(sticky_path.key("max_age_s"), ErrorKind::ZeroMaxAge);
    }
    let signing = sticky.signing.as_ref().and_then(|signing| {
        let path = sticky_path.key("signing").key("keys_env");
        signing_keys(&signing.keys_env, environment, &path, errors)
    });
    StickyCookie {
        name: sticky.name.clone(),
        max_age_s,
        secure: sticky.secure.unwrap_or(false),
        signing,
    }
}

/// The signing keys in environment variable `keys_env` (SPEC §10). The errors name the
/// variable and the entry, never a key.
fn signing_keys(
    keys_env: &str,
    environment: &dyn Environment,
    path: &JsonPath,
    errors: &mut Errors,
) -> Option<SigningKeys> {
    if keys_env.is_empty() {
        errors.add(path.clone(), ErrorKind::Empty);
        return None;
    }
    if !signing::is_env_name(keys_env) {
        let name = keys_env.to_string();
        errors.add(path.clone(), ErrorKind::InvalidEnvName(name));
        return None;
    }
    let problem = match environment.var(keys_env) {
        Ok(text) => match SigningKeys::from_env_value(keys_env, &text) {
            Ok(keys) => return Some(keys),
            Err(problem) => SigningKeysProblem::Keys(problem),
        },
        Err(std::env::VarError::NotPresent) => SigningKeysProblem::NotSet,
        Err(std::env::VarError::NotUnicode(_)) => SigningKeysProblem::NotUnicode,
    };
    let env = keys_env.to_string();
    errors.add(path.clone(), ErrorKind::SigningKeys { env, problem });
    None
}

/// SPEC §8, §12: the mode, its own fields, and the other modes' fields rejected where given.
fn compile_mode(dto: &PluginConfigDto, root: &JsonPath, errors: &mut Errors) -> Mode {
    let mode = dto.mode.unwrap_or(ModeDto::Gateway);
    // The fields of the other modes, and whether each is given.
    let (other, others_fields): (_, &[(&str, bool)]) = match mode {
        ModeDto::Gateway => (
            "sidecar\" or \"waypoint",
            &[
                ("restore", dto.restore.is_some()),
                ("trace_memory", dto.trace_memory.is_some()),
            ],
        ),
        ModeDto::Sidecar | ModeDto::Waypoint => (
            "gateway",
            &[
                ("client_ip", dto.client_ip.is_some()),
                ("trusted_tag_sources", dto.trusted_tag_sources.is_some()),
                ("normalize", dto.normalize.is_some()),
                ("rules", dto.rules.is_some()),
                ("sticky_cookie", dto.sticky_cookie.is_some()),
            ],
        ),
    };
    for (field, given) in others_fields {
        if *given {
            errors.add(root.key(field), ErrorKind::OnlyInMode(other));
        }
    }
    let default_restore: &[RestoreSource] = match mode {
        ModeDto::Gateway => return Mode::Gateway,
        ModeDto::Sidecar => &RestoreSource::SIDECAR_DEFAULT,
        ModeDto::Waypoint => &RestoreSource::WAYPOINT_DEFAULT,
    };
    let settings = Sidecar {
        restore: compile_restore(dto.restore.as_deref(), default_restore, root, errors),
        trace_memory: compile_trace_memory(dto, root, errors),
    };
    match mode {
        ModeDto::Waypoint => Mode::Waypoint(settings),
        _ => Mode::Sidecar(settings),
    }
}

/// `restore`: a non-empty list, no source twice.
fn compile_restore(
    sources: Option<&[RestoreSourceDto]>,
    default: &[RestoreSource],
    root: &JsonPath,
    errors: &mut Errors,
) -> Vec<RestoreSource> {
    let Some(sources) = sources else {
        return default.to_vec();
    };
    let restore_path = root.key("restore");
    if sources.is_empty() {
        errors.add(
            restore_path.clone(),
            ErrorKind::EmptyList(ListOf::RestoreSource),
        );
    }
    let mut compiled: Vec<RestoreSource> = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let source = match source {
            RestoreSourceDto::Header => RestoreSource::Header,
            RestoreSourceDto::Baggage => RestoreSource::Baggage,
            RestoreSourceDto::Tracestate => RestoreSource::Tracestate,
            RestoreSourceDto::Trace => RestoreSource::Trace,
        };
        if compiled.contains(&source) {
            errors.add(restore_path.index(i), ErrorKind::ListedTwice(source.name()));
        } else {
            compiled.push(source);
        }
    }
    compiled
}

/// `trace_memory`, its bounds checked.
fn compile_trace_memory(
    dto: &PluginConfigDto,
    root: &JsonPath,
    errors: &mut Errors,
) -> TraceMemory {
    let memory_path = root.key("trace_memory");
    let memory = dto.trace_memory.as_ref();
    let entries = memory.and_then(|m| m.entries);
    let entries = match entries {
        None => DEFAULT_TRACE_ENTRIES,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=MAX_TRACE_ENTRIES).contains(&n) => n,
            _ => {
                errors.add(
                    memory_path.key("entries"),
                    ErrorKind::OutOfRange {
                        value: n,
                        min: 1,
                        max: u64::from(MAX_TRACE_ENTRIES),
                    },
                );
                DEFAULT_TRACE_ENTRIES
            }
        },
    };
    let ttl_s = match memory.and_then(|m| m.ttl_s) {
        None => DEFAULT_TRACE_TTL_S,
        Some(n) if (1..=MAX_TRACE_TTL_S).contains(&n) => n,
        Some(n) => {
            errors.add(
                memory_path.key("ttl_s"),
                ErrorKind::OutOfRange {
                    value: n,
                    min: 1,
                    max: MAX_TRACE_TTL_S,
                },
            );
            DEFAULT_TRACE_TTL_S
        }
    };
    TraceMemory { entries, ttl_s }
}

/// What the rest of the config is checked against.
struct Known<'a> {
    versions: &'a [String],
    tag_header: &'a str,
}

impl Known<'_> {
    /// The version `name` names; an error when there is none (the id returned then is
    /// never used: the configuration is rejected).
    fn version(&self, name: &str, path: &JsonPath, errors: &mut Errors) -> VersionId {
        match self.versions.iter().position(|v| v == name) {
            Some(index) => VersionId(index),
            None => {
                errors.add(
                    path.clone(),
                    ErrorKind::UnknownVersion {
                        name: name.to_string(),
                        versions: self.versions.to_vec(),
                    },
                );
                VersionId(0)
            }
        }
    }
}

fn check_versions(versions: &[String], path: &JsonPath, errors: &mut Errors) {
    if versions.is_empty() {
        errors.add(path.clone(), ErrorKind::EmptyList(ListOf::Version));
    }
    let mut seen = HashSet::new();
    for (i, version) in versions.iter().enumerate() {
        let path = path.index(i);
        if version.is_empty() {
            errors.add(path, ErrorKind::Empty);
        } else if version.len() > MAX_NAME_LEN
            || !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || VERSION_PUNCTUATION.as_bytes().contains(&b))
        {
            errors.add(path, ErrorKind::InvalidVersionName(version.clone()));
        } else if !seen.insert(version.as_str()) {
            errors.add(path, ErrorKind::DuplicateVersion(version.clone()));
        }
    }
}

fn compile_cidrs(ranges: &[String], path: &JsonPath, errors: &mut Errors) -> Vec<Cidr> {
    ranges
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match Cidr::parse(text) {
            Ok(cidr) => Some(cidr),
            Err(error) => {
                let text = text.clone();
                errors.add(path.index(i), ErrorKind::InvalidCidr { text, error });
                None
            }
        })
        .collect()
}

fn compile_normalize(
    entry: &NormalizeDto,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Normalize {
    let header = header_name(&entry.header, &path.key("header"), false, errors);
    if header == known.tag_header {
        errors.add(path.key("header"), ErrorKind::NormalizesTagHeader);
    }
    if entry.allowed.is_empty() {
        errors.add(path.key("allowed"), ErrorKind::EmptyList(ListOf::Value));
    }
    if !entry.allowed.contains(&entry.default) {
        errors.add(
            path.key("default"),
            ErrorKind::DefaultNotAllowed(entry.default.clone()),
        );
    }
    let when = entry
        .when
        .as_ref()
        .and_then(|c| compile_condition(c, &path.key("when"), known, errors));
    Normalize {
        header,
        allowed: entry.allowed.clone(),
        default: entry.default.clone(),
        when,
    }
}

fn compile_rule(
    rule: &RuleDto,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Option<Rule> {
    if rule.name.is_empty() {
        errors.add(path.key("name"), ErrorKind::Empty);
    } else if rule.name.len() > MAX_NAME_LEN || !rule.name.bytes().all(|b| b.is_ascii_graphic()) {
        errors.add(
            path.key("name"),
            ErrorKind::InvalidRuleName(rule.name.clone()),
        );
    }
    let condition = rule
        .condition
        .as_ref()
        .and_then(|c| compile_condition(c, &path.key("match"), known, errors));

    let action = match exactly_one(Some("action"), &RuleDto::ACTIONS, rule.actions()) {
        Err(kind) => {
            errors.add(path.clone(), kind);
            return None;
        }
        Ok((_, ActionDto::Version(version))) => {
            Action::Fixed(known.version(version, &path.key("version"), errors))
        }
        Ok((_, ActionDto::VersionFrom(source))) => {
            let source_path = path.key("version_from");
            let source = value_source(source, &source_path, &VERSION_FROM_FORMS, known, errors)?;
            Action::VersionFrom(source)
        }
        Ok((_, ActionDto::Split(split))) => Action::Split(compile_split(
            split,
            &rule.name,
            &path.key("split"),
            known,
            errors,
        )),
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
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Split {
    let weights_path = path.key("weights");
    if split.weights.is_empty() {
        errors.add(weights_path.clone(), ErrorKind::EmptyList(ListOf::Version));
    }
    let mut weights = Vec::with_capacity(split.weights.len());
    let mut seen = HashSet::new();
    let mut end: u32 = 0;
    for (i, weight) in split.weights.iter().enumerate() {
        let weight_path = weights_path.index(i);
        let version_path = weight_path.key("version");
        let version = known.version(&weight.version, &version_path, errors);
        if !seen.insert(weight.version.as_str()) {
            errors.add(
                version_path,
                ErrorKind::VersionListedTwice(weight.version.clone()),
            );
        }
        let buckets = match percent_to_buckets(weight.percent) {
            Ok(buckets) => buckets,
            Err(kind) => {
                errors.add(weight_path.key("percent"), kind);
                0
            }
        };
        end += u32::from(buckets);
        weights.push((buckets, version));
    }
    if !split.weights.is_empty()
        && end != u32::from(crate::hash::BUCKETS)
        && errors_are_only_sum(split)
    {
        errors.add(weights_path, ErrorKind::PercentSum(end));
    }
    let keys = split
        .key
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            if key == "source_ip" {
                return Some(KeySource::SourceIp);
            }
            let key_path = path.key("key").index(i);
            value_source(key, &key_path, &SPLIT_KEY_FORMS, known, errors).map(KeySource::Value)
        })
        .collect();
    let ramp = split.ramp.as_ref().and_then(|ramp| {
        let first = split.weights.first().map(|w| w.percent);
        compile_ramp(ramp, first, &path.key("ramp"), errors)
    });
    let salt = split.salt.clone().unwrap_or_else(|| rule_name.to_string());
    Split::new(weights, keys, salt, ramp)
}

/// `split.ramp`; `first` is the first weight's percent as written.
fn compile_ramp(
    ramp: &RampDto,
    first: Option<f64>,
    path: &JsonPath,
    errors: &mut Errors,
) -> Option<Ramp> {
    let start = match parse_rfc3339_utc(&ramp.start) {
        Ok(start) => Some(start),
        Err(error) => {
            let text = ramp.start.clone();
            errors.add(path.key("start"), ErrorKind::InvalidTime { text, error });
            None
        }
    };
    if ramp.duration_s < 1 {
        errors.add(path.key("duration_s"), ErrorKind::ZeroRampDuration);
    }
    let to = match percent_to_buckets(ramp.to) {
        Ok(to) => Some(to),
        Err(kind) => {
            errors.add(path.key("to"), kind);
            None
        }
    };
    let first_buckets = first.and_then(|percent| percent_to_buckets(percent).ok());
    if let (Some(to), Some(first), Some(first_percent)) = (to, first_buckets, first) {
        if to < first {
            let kind = ErrorKind::RampBelowFirstWeight {
                to: ramp.to,
                first: first_percent,
            };
            errors.add(path.key("to"), kind);
        }
    }
    Some(Ramp {
        start: start?,
        duration_s: ramp.duration_s,
        to: to?,
    })
}

/// The sum is only meaningful when every percent is itself valid.
fn errors_are_only_sum(split: &SplitDto) -> bool {
    split
        .weights
        .iter()
        .all(|w| percent_to_buckets(w.percent).is_ok())
}

/// A percent with at most two decimals, as a number of buckets (1 bucket = 0.01 %).
fn percent_to_buckets(percent: f64) -> Result<u16, ErrorKind> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(ErrorKind::PercentOutOfRange(percent));
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return Err(ErrorKind::PercentTooPrecise(percent));
    }
    // In 0..=10000 after the checks above, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(rounded as u16)
}

/// Parses `header:NAME` / `cookie:NAME` / `query:NAME` of the kinds `forms` allows.
fn value_source(
    text: &str,
    path: &JsonPath,
    forms: &SourceForms,
    known: &Known,
    errors: &mut Errors,
) -> Option<ValueSource> {
    let Some((kind, name)) = text
        .split_once(':')
        .filter(|(kind, _)| forms.kinds.contains(kind))
    else {
        let kind = ErrorKind::InvalidValueSource {
            text: text.to_string(),
            allowed: forms.kinds,
            source_ip: forms.source_ip,
        };
        errors.add(path.clone(), kind);
        return None;
    };
    if name.is_empty() {
        let kind = ErrorKind::SourceNamesNothing {
            text: text.to_string(),
            kind: kind.to_string(),
        };
        errors.add(path.clone(), kind);
        return None;
    }
    match kind {
        "header" => {
            let name = header_name(name, path, true, errors);
            if name == known.tag_header {
                errors.add(path.clone(), ErrorKind::TagHeaderAsSource);
            }
            Some(ValueSource::Header(name))
        }
        "cookie" => {
            if !http::is_token(name) {
                errors.add(path.clone(), ErrorKind::InvalidCookieName(name.to_string()));
            }
            Some(ValueSource::Cookie(name.to_string()))
        }
        _ => Some(ValueSource::Query(name.to_string())),
    }
}

/// A header name, lower-cased. Pseudo-headers only where a request is read (`allow_pseudo`).
fn header_name(name: &str, path: &JsonPath, allow_pseudo: bool, errors: &mut Errors) -> String {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() {
        errors.add(path.clone(), ErrorKind::EmptyHeaderName);
    } else if lower.starts_with(':') {
        if !allow_pseudo {
            errors.add(
                path.clone(),
                ErrorKind::PseudoHeaderNotAllowed(name.to_string()),
            );
        } else if !PSEUDO_HEADERS.contains(&lower.as_str()) {
            errors.add(
                path.clone(),
                ErrorKind::UnknownPseudoHeader(name.to_string()),
            );
        }
    } else if !http::is_token(&lower) {
        errors.add(path.clone(), ErrorKind::InvalidHeaderName(name.to_string()));
    }
    lower
}

/// Compiles a `match` object; `None` (with errors recorded) when it is not valid.
fn compile_condition(
    c: &ConditionDto,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Option<Condition> {
    let (kind_name, kind) = exactly_one(None, &ConditionDto::KINDS, c.kinds())
        .map_err(|kind| errors.add(path.clone(), kind))
        .ok()?;
    let takes_operator = matches!(
        kind,
        ConditionKind::Header(_) | ConditionKind::Cookie(_) | ConditionKind::Query(_)
    );
    if !takes_operator {
        let given = ConditionDto::OPERATORS.iter().zip(c.operators());
        if let Some((first, _)) = given.into_iter().find(|(_, op)| op.is_some()) {
            errors.add(path.key(first), ErrorKind::OperatorsDoNotApply(kind_name));
            return None;
        }
        if c.ignore_case.is_some() {
            errors.add(path.key("ignore_case"), ErrorKind::DoesNotApply(kind_name));
            return None;
        }
    }
    let field_path = path.key(kind_name);
    match kind {
        ConditionKind::Header(name) => {
            let name = header_name(name, &field_path, true, errors);
            if name == known.tag_header {
                errors.add(field_path, ErrorKind::MatchesTagHeader);
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Header(name),
                op,
            })
        }
        ConditionKind::Cookie(name) => {
            if !http::is_token(name) {
                errors.add(field_path, ErrorKind::InvalidCookieName(name.to_string()));
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Cookie(name.to_string()),
                op,
            })
        }
        ConditionKind::Query(name) => {
            if name.is_empty() {
                errors.add(field_path, ErrorKind::EmptyQueryName);
            }
            let op = compile_operator(c, path, errors)?;
            Some(Condition::Value {
                source: ValueSource::Query(name.to_string()),
                op,
            })
        }
        ConditionKind::SourceIp(ranges) => {
            if ranges.is_empty() {
                errors.add(
                    field_path.clone(),
                    ErrorKind::EmptyList(ListOf::AddressOrRange),
                );
            }
            Some(Condition::SourceIp(compile_cidrs(
                ranges,
                &field_path,
                errors,
            )))
        }
        ConditionKind::All(list) => Some(Condition::All(compile_conditions(
            list,
            &field_path,
            known,
            errors,
        ))),
        ConditionKind::Any(list) => Some(Condition::Any(compile_conditions(
            list,
            &field_path,
            known,
            errors,
        ))),
        ConditionKind::Not(inner) => {
            let inner = compile_condition(inner, &field_path, known, errors)?;
            Some(Condition::Not(Box::new(inner)))
        }
    }
}

/// The items of an `all` or `any` list.
fn compile_conditions(
    list: &[ConditionDto],
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Condition> {
    if list.is_empty() {
        errors.add(path.clone(), ErrorKind::EmptyList(ListOf::Condition));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, inner)| compile_condition(inner, &path.index(i), known, errors))
        .collect()
}

fn compile_operator(c: &ConditionDto, path: &JsonPath, errors: &mut Errors) -> Option<StringMatch> {
    let (operator_name, operator) =
        exactly_one(Some("operator"), &ConditionDto::OPERATORS, c.operators())
            .map_err(|kind| errors.add(path.clone(), kind))
            .ok()?;
    let ignore_case = c.ignore_case.unwrap_or(false);
    let literal = |kind, needle| Some(StringMatch::literal(kind, needle, ignore_case));
    match operator {
        OperatorDto::Present(present) => {
            if c.ignore_case.is_some() {
                errors.add(
                    path.key("ignore_case"),
                    ErrorKind::DoesNotApply(operator_name),
                );
                return None;
            }
            Some(StringMatch::Present(present))
        }
        OperatorDto::Regex(pattern) => {
            match matcher::compile_regex(pattern, ignore_case, REGEX_SIZE_LIMIT) {
                Ok(op) => Some(op),
                Err(reason) => {
                    errors.add(path.key(operator_name), ErrorKind::InvalidRegex(reason));
                    None
                }
            }
        }
        OperatorDto::Exact(needle) => literal(LiteralKind::Exact, needle),
        OperatorDto::Prefix(needle) => literal(LiteralKind::Prefix, needle),
        OperatorDto::Suffix(needle) => literal(LiteralKind::Suffix, needle),
        OperatorDto::Contains(needle) => literal(LiteralKind::Contains, needle),
    }
}
