//! DTOs → [`CompiledConfig`]: every check SPEC §2 asks for, each failure an [`ErrorKind`]
//! at its JSON path; all of them are collected, not only the first.
//!
//! This file compiles the top-level fields and collects the errors; [`mode`] the mode's
//! fields, [`rules`] the rules and their splits, [`conditions`] the conditions they match.

mod conditions;
mod mode;
mod rules;

use std::collections::HashSet;

use super::dto::{
    ClientIpDto, ClientIpFrom, NormalizeDto, PluginConfigDto, RuleDto, StickyCookieDto,
};
use super::error::{ConfigError, ConfigErrors, ErrorKind, JsonPath, ListOf, SigningKeysProblem};
use super::{
    ClientIpMode, CompiledConfig, Environment, NoEnvironment, Normalize, Rule, StickyCookie,
    VersionId, Versions, DEFAULT_STICKY_MAX_AGE_S, DEFAULT_TAG_HEADER, MAX_NAME_LEN, MAX_NORMALIZE,
    SUPPORTED_SCHEMA, VERSION_PUNCTUATION,
};
use crate::http;
use crate::net::Cidr;
use crate::signing::{self, SigningKeys};
use conditions::{compile_condition, header_name};
use mode::compile_mode;
use rules::compile_rule;

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
        check_schema(dto.schema, &root, &mut errors);
        let tag_header = compile_tag_header(dto.tag_header.as_deref(), &root, &mut errors);
        check_versions(&dto.versions, &root.key("versions"), &mut errors);
        let known = Known {
            versions: &dto.versions,
            tag_header: &tag_header,
        };
        let default_version =
            compile_default_version(&dto.default_version, &root, &known, &mut errors);

        let client_ip = compile_client_ip(dto.client_ip.as_ref(), &root, &mut errors);

        let mode = compile_mode(&dto, &root, &mut errors);

        let trusted_tag_sources = compile_cidrs(
            dto.trusted_tag_sources.as_deref().unwrap_or_default(),
            &root.key("trusted_tag_sources"),
            &mut errors,
        );

        let normalize =
            compile_normalize_list(dto.normalize.as_deref(), &root, &known, &mut errors);

        let rules = compile_rules(dto.rules.as_deref(), &root, &known, &mut errors);

        let sticky_cookie = dto.sticky_cookie.as_ref().map(|sticky| {
            compile_sticky_cookie(sticky, &root.key("sticky_cookie"), environment, &mut errors)
        });

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

/// `schema`, when given: the one this build reads.
fn check_schema(schema: Option<u64>, root: &JsonPath, errors: &mut Errors) {
    if let Some(schema) = schema.filter(|schema| *schema != SUPPORTED_SCHEMA) {
        errors.add(root.key("schema"), ErrorKind::UnsupportedSchema(schema));
    }
}

/// `tag_header`, lower-cased; the default when not given.
fn compile_tag_header(name: Option<&str>, root: &JsonPath, errors: &mut Errors) -> String {
    match name {
        Some(name) => header_name(name, &root.key("tag_header"), false, errors),
        None => DEFAULT_TAG_HEADER.to_string(),
    }
}

/// `default_version`: one of `versions`.
fn compile_default_version(
    name: &str,
    root: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> VersionId {
    let path = root.key("default_version");
    if name.is_empty() {
        errors.add(path, ErrorKind::Empty);
        VersionId(0)
    } else {
        known.version(name, &path, errors)
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
    entries: Option<&[NormalizeDto]>,
    root: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Normalize> {
    let entries = entries.unwrap_or_default();
    let path = root.key("normalize");
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
    rules: Option<&[RuleDto]>,
    root: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Rule> {
    let rules = rules.unwrap_or_default();
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
