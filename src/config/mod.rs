//! Plugin configuration: the JSON a `WasmPlugin.pluginConfig` carries (SPEC §2), parsed into
//! serde DTOs ([`dto`]) and compiled ([`compile`]) into [`CompiledConfig`], in which every
//! regex is built, every CIDR parsed, every name lower-cased and every split turned into
//! bucket ranges. A value that reaches the compiled config is known to be good; each
//! rejection is an [`ErrorKind`] at its JSON path ([`error`]).

use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::matcher::{Condition, ValueSource};
use crate::net::Cidr;
use crate::ramp::{self, Ramp, UnixSeconds};
use crate::signing::{Rejection, SigningKeys};

mod compile;
pub mod dto;
pub mod error;
mod positional;

pub use compile::compile;
pub use dto::{parse_dto, PluginConfigDto};
pub use error::{closest_name, ConfigError, ConfigErrors, ErrorKind, JsonPath, SigningKeysProblem};

// ---------------------------------------------------------------------------- compiled

/// One of a configuration's versions, by its position in `versions`.
///
/// Only this module makes one — compiling, for a position that exists, and
/// [`Versions::named`] — and a configuration's versions never change once compiled, so an
/// id always names a version of the configuration that made it. (The filter keeps the
/// configuration a request was decided with for its whole life, so ids of two
/// configurations never meet.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionId(usize);

impl VersionId {
    /// The position in `versions`.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A configuration's version names, in the order listed. Never empty (compiling rejects an
/// empty list), so the first is held apart and [`Versions::name`] always has one to give.
#[derive(Debug)]
pub struct Versions {
    first: String,
    rest: Vec<String>,
}

impl Versions {
    /// `None` for an empty list.
    fn new(names: Vec<String>) -> Option<Versions> {
        let mut names = names.into_iter();
        let first = names.next()?;
        Some(Versions {
            first,
            rest: names.collect(),
        })
    }

    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Never: there is always at least one version.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn iter(&self) -> VersionNames<'_> {
        let rest: fn(&String) -> &str = String::as_str;
        std::iter::once(self.first.as_str()).chain(self.rest.iter().map(rest))
    }

    /// The name of `version`. Every id indexes this list (see [`VersionId`]): id 0 is the
    /// first name, id `i` is `rest[i - 1]`. An id of another configuration — which no
    /// caller has — would get the first name, not a panic.
    pub fn name(&self, version: VersionId) -> &str {
        match version.0.checked_sub(1).and_then(|i| self.rest.get(i)) {
            Some(name) => name,
            None => &self.first,
        }
    }

    /// The version a header or cookie value names, if it is one of these exactly.
    pub fn named(&self, value: &[u8]) -> Option<VersionId> {
        if self.first.as_bytes() == value {
            return Some(VersionId(0));
        }
        let position = self.rest.iter().position(|name| name.as_bytes() == value)?;
        Some(VersionId(position + 1))
    }
}

/// The names of [`Versions`], in order.
pub type VersionNames<'a> = std::iter::Chain<
    std::iter::Once<&'a str>,
    std::iter::Map<std::slice::Iter<'a, String>, fn(&String) -> &str>,
>;

impl<'a> IntoIterator for &'a Versions {
    type Item = &'a str;
    type IntoIter = VersionNames<'a>;

    fn into_iter(self) -> VersionNames<'a> {
        self.iter()
    }
}

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
///
/// With a [`Ramp`] the ranges move with time: [`Split::set_time`] (the filter calls it once
/// a second, `explain --at` once) stores where they are then, and every request reads them
/// as they are. Each end is an atomic only to be shared without a lock; the filter's VM has
/// one thread, and reading one is a plain load.
#[derive(Debug)]
pub struct Split {
    /// `(buckets, version)` as configured (1 bucket = 0.01 %), in the listed order.
    weights: Vec<(u16, VersionId)>,
    /// The end of each weight's range now: buckets below it and at or above the previous
    /// end. The configured ends until a ramp starts.
    ends: Vec<AtomicU16>,
    pub keys: Vec<KeySource>,
    pub salt: String,
    pub ramp: Option<Ramp>,
}

impl Split {
    /// `weights` in buckets summing to [`crate::hash::BUCKETS`] (compiling checks it).
    fn new(
        weights: Vec<(u16, VersionId)>,
        keys: Vec<KeySource>,
        salt: String,
        ramp: Option<Ramp>,
    ) -> Split {
        let mut end = 0u16;
        let ends = weights
            .iter()
            .map(|&(buckets, _)| {
                end = end.saturating_add(buckets);
                AtomicU16::new(end)
            })
            .collect();
        Split {
            weights,
            ends,
            keys,
            salt,
            ramp,
        }
    }

    pub fn version_for(&self, bucket: u16) -> Option<VersionId> {
        self.ranges()
            .find(|&(end, _)| bucket < end)
            .map(|(_, version)| version)
    }

    /// `(end, version)` now, in the listed order (see [`Split::set_time`]).
    pub fn ranges(&self) -> impl Iterator<Item = (u16, VersionId)> + '_ {
        self.ends
            .iter()
            .zip(&self.weights)
            .map(|(end, &(_, version))| (end.load(Ordering::Relaxed), version))
    }

    /// The configured `(buckets, version)` of each weight, in the listed order.
    pub fn weights(&self) -> &[(u16, VersionId)] {
        &self.weights
    }

    /// The first listed version's buckets now.
    pub fn first_buckets(&self) -> u16 {
        self.ranges().next().map_or(0, |(end, _)| end)
    }

    /// Moves a ramped split's ranges to where they are at `now` (nothing without a ramp);
    /// allocates nothing. Returns the first version's buckets then.
    pub fn set_time(&self, now: UnixSeconds) -> u16 {
        if let (Some(ramp), Some(&(first, _))) = (&self.ramp, self.weights.first()) {
            let weights = self.weights.iter().map(|&(buckets, _)| buckets);
            ramp::ends_with_first(weights, ramp.first_at(first, now), |i, end| {
                if let Some(slot) = self.ends.get(i) {
                    slot.store(end, Ordering::Relaxed);
                }
            });
        }
        self.first_buckets()
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

#[derive(Clone, Debug, PartialEq)]
pub struct StickyCookie {
    pub name: String,
    pub max_age_s: u64,
    pub secure: bool,
    /// `signing` (SPEC §10): ids are issued as `ID.KID.MAC` and only values that verify
    /// are used. `None`: the cookie's value is hashed as sent.
    pub signing: Option<SigningKeys>,
}

impl StickyCookie {
    /// The `Set-Cookie` value that issues sticky id `id` (SPEC §4), signed when `signing`
    /// is configured (SPEC §10).
    pub fn set_cookie(&self, id: &str) -> String {
        use std::fmt::Write;
        let secure = if self.secure { "; Secure" } else { "" };
        let signed = self.signing.as_ref().map(|keys| keys.sign(id.as_bytes()));
        let value = signed.as_ref().map_or(id, |signed| signed.as_str());
        // One allocation of the right size (`format!` guesses, then grows).
        const FIXED: &str = "=; Path=/; Max-Age=; HttpOnly; SameSite=Lax";
        let capacity = self.name.len() + value.len() + FIXED.len() + 20 + secure.len();
        let mut cookie = String::with_capacity(capacity);
        let _ = write!(
            cookie,
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name, self.max_age_s
        );
        cookie
    }

    /// The part of the cookie's value a split hashes: the whole value without `signing`;
    /// with it, the ID of a value that verifies, and the position of the key that signed it.
    pub fn verify<'v>(&self, value: &'v [u8]) -> Result<(&'v [u8], Option<usize>), Rejection> {
        match &self.signing {
            None => Ok((value, None)),
            Some(keys) => keys.verify(value).map(|(id, key)| (id, Some(key))),
        }
    }
}

/// Where compiling reads environment variables: the keys of `sticky_cookie.signing`, which
/// never are in the plugin configuration. The filter reads the Wasm VM's environment
/// ([`ProcessEnvironment`]), the CLI its own, tests a map; compiling stays a pure function
/// of the JSON and this.
pub trait Environment {
    fn var(&self, name: &str) -> Result<String, std::env::VarError>;
}

/// The process's environment (in the filter: the Wasm VM's, WASI `environ_get`, which Envoy
/// fills from `vm_config.environment_variables`).
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        std::env::var(name)
    }
}

/// No variables at all: what [`CompiledConfig::from_json`] compiles with.
pub struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var(&self, _name: &str) -> Result<String, std::env::VarError> {
        Err(std::env::VarError::NotPresent)
    }
}

impl Environment for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        self.get(name)
            .cloned()
            .ok_or(std::env::VarError::NotPresent)
    }
}

impl<const N: usize> Environment for [(&str, &str); N] {
    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
            .ok_or(std::env::VarError::NotPresent)
    }
}

/// What the filter does with a request (SPEC §8, §12).
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// At the edge: decide the version (the rules) and tag the request.
    Gateway,
    /// On a workload's sidecar: remember the version of inbound requests by trace id, and
    /// restore the tag on outbound calls.
    Sidecar(Sidecar),
    /// On an ambient waypoint, which serves every hop and cannot tell one direction from
    /// another: a request with a known tag is remembered, any other restored.
    Waypoint(Sidecar),
}

impl Mode {
    /// The name in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Gateway => "gateway",
            Mode::Sidecar(_) => "sidecar",
            Mode::Waypoint(_) => "waypoint",
        }
    }
}

/// The settings sidecar and waypoint mode share.
#[derive(Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// Never empty, no source twice.
    pub restore: Vec<RestoreSource>,
    pub trace_memory: TraceMemory,
}

/// Where a restored call's version may come from (`restore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestoreSource {
    /// The tag header, forwarded by the app.
    Header,
    /// The `canary-version` member of `baggage`.
    Baggage,
    /// The `canary` member of `tracestate` (SPEC §12).
    Tracestate,
    /// The version remembered for the request's trace id.
    Trace,
}

impl RestoreSource {
    pub const ALL: [RestoreSource; 4] = [
        RestoreSource::Header,
        RestoreSource::Baggage,
        RestoreSource::Tracestate,
        RestoreSource::Trace,
    ];

    /// `restore` when a sidecar configuration leaves it out (SPEC §8).
    pub const SIDECAR_DEFAULT: [RestoreSource; 3] = [
        RestoreSource::Header,
        RestoreSource::Baggage,
        RestoreSource::Trace,
    ];

    /// `restore` when a waypoint configuration leaves it out: every source, the ones that
    /// travel with the request before the replica's own trace memory.
    pub const WAYPOINT_DEFAULT: [RestoreSource; 4] = RestoreSource::ALL;

    /// The name in the configuration (and in metrics and `explain`).
    pub fn name(self) -> &'static str {
        match self {
            RestoreSource::Header => "header",
            RestoreSource::Baggage => "baggage",
            RestoreSource::Tracestate => "tracestate",
            RestoreSource::Trace => "trace",
        }
    }

    /// The position in [`RestoreSource::ALL`].
    pub fn index(self) -> usize {
        match self {
            RestoreSource::Header => 0,
            RestoreSource::Baggage => 1,
            RestoreSource::Tracestate => 2,
            RestoreSource::Trace => 3,
        }
    }
}

/// The trace id → version table's size and how long an entry counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceMemory {
    /// Slots (`1..=MAX_TRACE_ENTRIES`).
    pub entries: u32,
    /// Seconds (`1..=MAX_TRACE_TTL_S`).
    pub ttl_s: u64,
}

pub const DEFAULT_TRACE_ENTRIES: u32 = 65_536;
/// About 250 bytes of Envoy memory each (measured): 1 Mi slots is ~250 MiB, the most one
/// table may take.
pub const MAX_TRACE_ENTRIES: u32 = 1_048_576;
pub const DEFAULT_TRACE_TTL_S: u64 = 300;
pub const MAX_TRACE_TTL_S: u64 = 86_400;

/// A configuration known to be valid: everything the request path needs, precompiled.
#[derive(Debug)]
pub struct CompiledConfig {
    /// Lower-case.
    pub tag_header: String,
    /// Private, so that it cannot change under the [`VersionId`]s compiling handed out.
    versions: Versions,
    pub default_version: VersionId,
    pub client_ip: ClientIpMode,
    pub trusted_tag_sources: Vec<Cidr>,
    pub normalize: Vec<Normalize>,
    pub rules: Vec<Rule>,
    pub sticky_cookie: Option<StickyCookie>,
    /// Lower-case.
    pub response_header: Option<String>,
    pub baggage: bool,
    /// Also carry the version as the first member of `tracestate`, `canary=<version>`.
    pub tracestate: bool,
    /// In sidecar and waypoint mode `client_ip` is `Peer` and the gateway's lists are empty.
    pub mode: Mode,
}

pub const DEFAULT_TAG_HEADER: &str = "x-canary-version";
pub const DEFAULT_STICKY_MAX_AGE_S: u64 = 2_592_000;
pub const SUPPORTED_SCHEMA: u64 = 1;
/// Normalizations are tracked in a 64-bit set per request.
pub const MAX_NORMALIZE: usize = 64;
/// Version and rule names: at most this many bytes.
pub const MAX_NAME_LEN: usize = 63;
/// A version name is ASCII letters, digits and these.
pub const VERSION_PUNCTUATION: &str = "._-";
/// The pseudo-headers a condition, `version_from` or split key may read.
pub const PSEUDO_HEADERS: [&str; 4] = [":path", ":method", ":authority", ":scheme"];

impl CompiledConfig {
    /// Parses and compiles plugin configuration JSON, in an empty environment (a
    /// `sticky_cookie.signing` then finds no keys; see [`CompiledConfig::from_json_in`]).
    pub fn from_json(json: &[u8]) -> Result<CompiledConfig, ConfigErrors> {
        CompiledConfig::from_json_in(json, &NoEnvironment)
    }

    /// Parses and compiles plugin configuration JSON; `sticky_cookie.signing` reads its
    /// keys from `environment`.
    pub fn from_json_in(
        json: &[u8],
        environment: &dyn Environment,
    ) -> Result<CompiledConfig, ConfigErrors> {
        let dto = parse_dto(json).map_err(|error| ConfigErrors(vec![error]))?;
        compile::compile(dto, environment)
    }

    /// The restore settings, in sidecar and waypoint mode.
    pub fn sidecar(&self) -> Option<&Sidecar> {
        match &self.mode {
            Mode::Sidecar(sidecar) | Mode::Waypoint(sidecar) => Some(sidecar),
            Mode::Gateway => None,
        }
    }

    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Moves every ramped split's ranges to where they are at `now` ([`Split::set_time`]).
    pub fn set_time(&self, now: UnixSeconds) {
        for (_, split) in self.ramped_splits() {
            split.set_time(now);
        }
    }

    /// `(rule index, split)` of every split with a `ramp`.
    pub fn ramped_splits(&self) -> impl Iterator<Item = (usize, &Split)> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| match &rule.action {
                Action::Split(split) if split.ramp.is_some() => Some((index, split)),
                _ => None,
            })
    }

    /// When the last ramp ends; `None` without ramps.
    pub fn last_ramp_end(&self) -> Option<UnixSeconds> {
        self.ramped_splits()
            .filter_map(|(_, split)| split.ramp.map(|ramp| ramp.end()))
            .max()
    }

    pub fn version_name(&self, version: VersionId) -> &str {
        self.versions.name(version)
    }

    /// The version a header or cookie value names, if it is one of `versions` exactly.
    pub fn version_named(&self, value: &[u8]) -> Option<VersionId> {
        self.versions.named(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_id_names_its_version() {
        let json = br#"{"versions": ["v1", "v2", "v3"], "default_version": "v2"}"#;
        let config = CompiledConfig::from_json(json).unwrap();
        let names: Vec<&str> = config.versions().iter().collect();
        assert_eq!(names, ["v1", "v2", "v3"]);
        assert_eq!(config.versions().len(), 3);
        for (index, name) in names.iter().enumerate() {
            let id = config.version_named(name.as_bytes()).unwrap();
            assert_eq!((id.index(), config.version_name(id)), (index, *name));
        }
        assert_eq!(config.version_name(config.default_version), "v2");
        assert_eq!(config.version_named(b"v4"), None);
        assert_eq!(config.version_named(b"V1"), None);
    }
}
