//! `canary-tagger explain`: one request through the engine, and every step of the decision
//! in words (or JSON) — which rule decided, the split key and bucket, the client address
//! and where it came from, the client's tag, and what the filter writes into the request and
//! the response.

use std::net::IpAddr;

use canary_tagger::config::{Action, ClientIpMode, CompiledConfig, Split, VersionId};
use canary_tagger::effects::SetMode;
use canary_tagger::engine::{
    self, ClientTag, DecidedBy, Decision, NormalizeCheck, Observer, RuleOutcome, SplitKey,
    StickyCheck, TagCheck,
};
use canary_tagger::net::{self, ClientIpSource};
use canary_tagger::ramp::{format_rfc3339, parse_rfc3339_utc, Percent, Phase, Ramp, UnixSeconds};
use canary_tagger::request::{OwnedRequest, RequestView};
use serde::Serialize;

use crate::args::{ExplainArgs, UsageError};

pub const HELP: &str = "\
Usage: canary-tagger explain FILE [options]

Runs one request through the decision engine with FILE's configuration and shows how the
version was decided: the rule (or default / a trusted client tag), the split key and bucket,
the client address and its source, whether a client-sent tag was stripped, header rewrites,
and the headers the filter sets on the request and the response.

Request:
  -H, --header 'NAME: VALUE'  a request header, or NAME=VALUE (repeatable; `Host:` becomes
                              :authority)
  -b, --cookie NAME=VALUE     a cookie (repeatable; sent as one cookie header)
      --ip ADDR               the peer address Envoy reports (source.address), e.g.
                              203.0.113.7, 203.0.113.7:51000 or [2001:db8::1]:443
      --xff LIST              an x-forwarded-for header as the filter sees it, i.e. with
                              the addresses Envoy appended (repeatable)
      --path PATH             :path, with the query string (default /)
      --method METHOD         :method (default GET)
      --host HOST             :authority

Sidecar mode (a configuration with mode sidecar):
      --direction DIR         inbound (what the request is remembered as) or outbound
                              (how the call's tag is restored); required
      --remembered ID=VERSION[@AGE_S]
                              an entry of Envoy's trace table, which explain cannot see:
                              trace id ID (a traceparent's trace-id field, an x-b3-traceid
                              or an x-request-id) remembered as VERSION AGE_S seconds ago
                              (default 0); repeatable

Output:
      --seed N                entropy for a split with no key present (the new sticky id
                              or the random bucket); default 0, so the output is repeatable
      --at TIME               decide with the weights a split.ramp has at TIME, an RFC 3339
                              time in UTC such as 2026-12-01T10:30:00Z (default: now)
      --json                  machine-readable output
";

/// The request `explain` runs, built from the flags.
pub fn request_from(parsed: &ExplainArgs) -> Result<(OwnedRequest, u64), UsageError> {
    let mut headers: Vec<(String, String)> = vec![
        (
            ":method".into(),
            parsed.method.as_deref().unwrap_or("GET").into(),
        ),
        (":path".into(), parsed.path.as_deref().unwrap_or("/").into()),
    ];
    if let Some(host) = &parsed.host {
        headers.push((":authority".into(), host.clone()));
    }
    for text in &parsed.header {
        let (name, value) = header_arg(text)?;
        if name.starts_with(':') {
            // A pseudo-header replaces the default.
            headers.retain(|(existing, _)| *existing != name);
        }
        headers.push((name, value));
    }
    let cookies = &parsed.cookie;
    for cookie in cookies {
        if !cookie.contains('=') {
            return Err(UsageError(format!(
                "explain: --cookie expects NAME=VALUE, got {cookie:?}"
            )));
        }
    }
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.join("; ")));
    }
    for xff in &parsed.xff {
        headers.push(("x-forwarded-for".into(), xff.clone()));
    }
    let mut request = headers
        .into_iter()
        .fold(OwnedRequest::new(), |request, (name, value)| {
            request.header(&name, value)
        });
    if let Some(ip) = &parsed.ip {
        if net::parse_address(ip.as_bytes()).is_none() {
            return Err(UsageError(format!(
                "explain: --ip {ip:?} is not an address (203.0.113.7, 203.0.113.7:51000, 2001:db8::1 or [2001:db8::1]:443)"
            )));
        }
        request = request.peer(ip);
    }
    let seed = match &parsed.seed {
        None => 0,
        Some(text) => parse_seed(text).ok_or_else(|| {
            UsageError(format!(
                "explain: --seed {text:?} is not a number (decimal, or hex with 0x)"
            ))
        })?,
    };
    Ok((request, seed))
}

/// `NAME: VALUE` (`:authority: example.com` for a pseudo-header); `Host` is Envoy's
/// `:authority`.
fn header_arg(text: &str) -> Result<(String, String), UsageError> {
    // `NAME: VALUE`, or `NAME=VALUE` (`baggage=canary-version=v2`): a header name holds
    // neither character, so whichever comes first ends it.
    let search_from = usize::from(text.starts_with(':'));
    let colon = text
        .get(search_from..)
        .and_then(|rest| rest.find([':', '=']))
        .map(|at| at + search_from);
    let parts = colon.and_then(|at| Some((text.get(..at)?, text.get(at + 1..)?)));
    let valid = |name: &str| canary_tagger::http::is_token(name.strip_prefix(':').unwrap_or(name));
    match parts {
        Some((name, value)) if valid(name.trim()) => {
            let name = name.trim().to_ascii_lowercase();
            let name = if name == "host" {
                ":authority".to_string()
            } else {
                name
            };
            Ok((name, value.trim().to_string()))
        }
        _ => Err(UsageError(format!(
            "explain: --header expects 'NAME: VALUE', got {text:?}"
        ))),
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// 128 bits of entropy from a 64-bit seed (SplitMix64, twice).
pub fn entropy_from_seed(seed: u64) -> u128 {
    let mix = |state: u64| {
        let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = mix(seed);
    let low = mix(high);
    (u128::from(high) << 64) | u128::from(low)
}

// ---------------------------------------------------------------------------- explanation

/// Everything `explain` reports; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub version: String,
    pub decided_by: DecidedByOut,
    /// The rules evaluated, in order, up to the one that decided.
    pub rules: Vec<RuleStep>,
    pub split: Option<SplitOut>,
    pub client_ip: Option<String>,
    /// Never `not-needed`: `explain` resolves the client address for display even when the
    /// decision did not consult it.
    pub client_ip_source: ClientIpSource,
    pub client_tag: ClientTagOut,
    /// A `canary-version` member of the client's `baggage` (SPEC §7): kept only with a kept
    /// client tag, else stripped.
    pub client_baggage: ClientTag,
    pub normalized: Vec<NormalizedOut>,
    /// Request headers the filter sets (replacing any value), in the order it sets them:
    /// the decision's effects, including those already so (a kept tag, a current baggage),
    /// which the filter does not write again.
    pub request_headers: Vec<HeaderOut>,
    /// Request headers the filter removes (a client's `baggage` that held only our member).
    pub request_headers_removed: Vec<String>,
    /// Response headers the filter adds.
    pub response_headers: Vec<HeaderOut>,
    /// The sticky id issued (also in the `set-cookie` response header).
    pub sticky_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecidedByOut {
    Rule { index: usize, name: String },
    Default,
    TrustedClientTag,
}

#[derive(Debug, Serialize)]
pub struct RuleStep {
    pub index: usize,
    pub name: String,
    pub result: RuleOutcome,
    /// Why a `no_version` rule found no version.
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SplitOut {
    pub key_kind: KeyKind,
    /// The key source hashed (`cookie:uid`, `source_ip`, `cookie:<sticky cookie>`).
    pub key: Option<String>,
    /// Index into `split.key` when `key_kind` is `key`.
    pub key_index: Option<usize>,
    /// The value hashed.
    pub value: Option<String>,
    pub salt: String,
    pub bucket: u16,
    pub ranges: Vec<RangeOut>,
    /// How the split judged the sticky cookie the request carried (left out: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky_cookie: Option<StickyCookieOut>,
    /// The split's `ramp`, when it has one: where it is at the time explained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampOut>,
}

/// A sticky cookie the split found: hashed as sent (no `signing`), verified (its ID is
/// hashed) or rejected (treated as absent, SPEC §10).
#[derive(Debug, Serialize)]
pub struct StickyCookieOut {
    pub value: String,
    pub status: StickyStatus,
    /// The key id that verified it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Why it was rejected: `unsigned`, `malformed`, `unknown_key`, `bad_mac`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct RampOut {
    /// The time the ranges are for (`--at`, default now).
    pub at: String,
    /// The first listed version's percent then.
    pub percent: f64,
    pub phase: RampPhase,
    /// `v2 10% at 2026-12-01T10:00:00Z -> 100% at 2026-12-01T11:00:00Z (3600 s)`.
    pub schedule: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StickyStatus {
    AsSent,
    Verified,
    Rejected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RampPhase {
    NotStarted,
    Running,
    Ended,
}

impl From<Phase> for RampPhase {
    fn from(phase: Phase) -> RampPhase {
        match phase {
            Phase::NotStarted => RampPhase::NotStarted,
            Phase::Running => RampPhase::Running,
            Phase::Ended => RampPhase::Ended,
        }
    }
}

impl RampPhase {
    fn words(self) -> &'static str {
        match self {
            RampPhase::NotStarted => "not started",
            RampPhase::Running => "ramping",
            RampPhase::Ended => "ended",
        }
    }
}

/// `--at`, or now: the second the ramps are explained at.
pub fn at_from(parsed: &ExplainArgs) -> Result<UnixSeconds, UsageError> {
    match &parsed.at {
        Some(text) => parse_rfc3339_utc(text).map_err(|error| {
            let reason = canary_tagger::config::ErrorKind::InvalidTime {
                text: text.to_string(),
                error,
            };
            UsageError(format!("explain: --at {reason}"))
        }),
        None => Ok(now()),
    }
}

/// The system clock in whole seconds since the Unix epoch.
pub fn now() -> UnixSeconds {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    UnixSeconds::try_from(since_epoch).unwrap_or(UnixSeconds::MAX)
}

/// A ramp's whole schedule: `v2 10% at START -> 100% at END (3600 s)`.
pub fn ramp_schedule(config: &CompiledConfig, split: &Split, ramp: &Ramp) -> String {
    let (from, first) = split
        .weights()
        .first()
        .map_or((0, "?"), |&(buckets, version)| {
            (buckets, config.version_name(version))
        });
    format!(
        "{first} {}% at {} -> {}% at {} ({} s)",
        Percent(from),
        format_rfc3339(ramp.start),
        Percent(ramp.to),
        format_rfc3339(ramp.end()),
        ramp.duration_s
    )
}

/// Where a ramped split is at `at` (its ranges must have been set to `at`).
fn ramp_out(config: &CompiledConfig, split: &Split, at: UnixSeconds) -> Option<RampOut> {
    let ramp = split.ramp.as_ref()?;
    Some(RampOut {
        at: format_rfc3339(at),
        percent: f64::from(split.first_buckets()) / 100.0,
        phase: ramp.phase(at).into(),
        schedule: ramp_schedule(config, split, ramp),
    })
}

/// `v2 55% (ramping)`: a ramped split at the time its ranges were set to.
pub fn ramp_now(config: &CompiledConfig, split: &Split, at: UnixSeconds) -> Option<String> {
    let ramp = ramp_out(config, split, at)?;
    let first = split
        .weights()
        .first()
        .map_or("?", |&(_, version)| config.version_name(version));
    Some(format!(
        "{first} {}% ({})",
        Percent(split.first_buckets()),
        ramp.phase.words()
    ))
}

/// [`SplitKey`] without the index (that is `key_index`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A `split.key` entry.
    Key,
    StickyCookie,
    NewStickyId,
    /// No key and no sticky cookie: not sticky.
    Random,
}

#[derive(Debug, Serialize)]
pub struct RangeOut {
    pub version: String,
    /// First and last bucket, inclusive.
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Serialize)]
pub struct ClientTagOut {
    pub status: ClientTag,
    pub values: Vec<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NormalizedOut {
    pub index: usize,
    pub header: String,
    /// The client's values (empty: missing).
    pub from: Vec<String>,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct HeaderOut {
    pub name: String,
    pub value: String,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The engine's steps as [`engine::decide_observed`] reports them.
#[derive(Default)]
struct Trace {
    client_tag: Option<TagCheck>,
    /// `normalize` entries that rewrote their header.
    normalized: Vec<usize>,
    rules: Vec<(usize, RuleOutcome)>,
    /// The first value each `version_from` rule read, by rule index.
    version_from_first: Vec<(usize, Vec<u8>)>,
    /// The split's key and the bytes it hashed (`None`: a random bucket).
    split: Option<(SplitKey, Option<Vec<u8>>)>,
    /// The sticky cookie the split judged, and how.
    sticky_cookie: Option<(Vec<u8>, StickyCheck)>,
}

impl Observer for Trace {
    fn client_tag(&mut self, check: TagCheck) {
        self.client_tag = Some(check);
    }

    fn normalize(&mut self, index: usize, check: NormalizeCheck) {
        if check.rewrites() {
            self.normalized.push(index);
        }
    }

    fn version_from_value(&mut self, rule: usize, value: &[u8], _version: Option<VersionId>) {
        if !self.version_from_first.iter().any(|(r, _)| *r == rule) {
            self.version_from_first.push((rule, value.to_vec()));
        }
    }

    fn split_hashed(&mut self, _rule: usize, key: SplitKey, hashed: Option<&[u8]>, _bucket: u16) {
        self.split = Some((key, hashed.map(<[u8]>::to_vec)));
    }

    fn rule(&mut self, index: usize, outcome: RuleOutcome) {
        self.rules.push((index, outcome));
    }

    fn sticky_cookie(&mut self, _rule: usize, value: &[u8], check: StickyCheck) {
        self.sticky_cookie = Some((value.to_vec(), check));
    }
}

/// `config`'s ramps must be set to `at` ([`CompiledConfig::set_time`]).
pub fn explain(
    config: &CompiledConfig,
    request: &OwnedRequest,
    entropy: u128,
    at: UnixSeconds,
) -> Explanation {
    let mut trace = Trace::default();
    let decision = engine::decide_observed(config, request, entropy, &mut trace);
    // The filter resolves the client IP only when the decision consults it; explain shows
    // it either way.
    let (client_ip, client_ip_source) = match decision.client_ip_source {
        ClientIpSource::NotNeeded => engine::client_ip(config, request),
        source => (decision.client_ip, source),
    };
    let rule_name = |index: usize| {
        config
            .rules
            .get(index)
            .map(|rule| rule.name.clone())
            .unwrap_or_default()
    };

    let decided_by = match decision.decided_by {
        DecidedBy::Rule(index) => DecidedByOut::Rule {
            index,
            name: rule_name(index),
        },
        DecidedBy::Default => DecidedByOut::Default,
        DecidedBy::TrustedClientTag => DecidedByOut::TrustedClientTag,
    };

    let rules = trace
        .rules
        .iter()
        .map(|&(index, result)| RuleStep {
            index,
            name: rule_name(index),
            result,
            note: (result == RuleOutcome::NoVersion)
                .then(|| no_version_note(config, &trace, index))
                .flatten(),
        })
        .collect();

    let normalized = trace
        .normalized
        .iter()
        .filter_map(|&index| {
            let entry = config.normalize.get(index)?;
            Some(NormalizedOut {
                index,
                header: entry.header.clone(),
                from: request.header_values(&entry.header).map(text).collect(),
                to: entry.default.clone(),
            })
        })
        .collect();

    let (removed, set): (Vec<_>, Vec<_>) = decision
        .request_effects(config, request)
        .partition(|effect| effect.mode == SetMode::Remove);
    let request_headers = set
        .iter()
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value(request)),
        })
        .collect();
    let request_headers_removed = removed
        .iter()
        .map(|effect| effect.name.to_string())
        .collect();
    let response_headers = decision
        .response_effects(config)
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value()),
        })
        .collect();

    Explanation {
        version: config.version_name(decision.version).to_string(),
        decided_by,
        rules,
        split: split_out(config, &decision, &trace, at),
        client_ip: client_ip.map(|ip| ip.to_string()),
        client_ip_source,
        client_tag: client_tag_out(config, request, &decision, &trace, client_ip),
        client_baggage: decision.client_baggage,
        normalized,
        request_headers,
        request_headers_removed,
        response_headers,
        sticky_id: decision.sticky_id.map(|id| id.as_str().to_string()),
    }
}

/// Why `rules[index]`, a `version_from` rule that matched, found no version.
fn no_version_note(config: &CompiledConfig, trace: &Trace, index: usize) -> Option<String> {
    let Action::VersionFrom(source) = &config.rules.get(index)?.action else {
        return None;
    };
    let first = trace
        .version_from_first
        .iter()
        .find(|(rule, _)| *rule == index);
    Some(match first {
        Some((_, value)) => format!("{source} is {:?}, not one of the versions", text(value)),
        None => format!("{source} is absent"),
    })
}

fn split_out(
    config: &CompiledConfig,
    decision: &Decision,
    trace: &Trace,
    at: UnixSeconds,
) -> Option<SplitOut> {
    let outcome = decision.split?;
    let DecidedBy::Rule(index) = decision.decided_by else {
        return None;
    };
    let Action::Split(split) = &config.rules.get(index)?.action else {
        return None;
    };
    let sticky_cookie = || {
        config
            .sticky_cookie
            .as_ref()
            .map(|sticky| format!("cookie:{}", sticky.name))
    };
    let (key_kind, key, key_index) = match outcome.key {
        SplitKey::StickyCookie => (KeyKind::StickyCookie, sticky_cookie(), None),
        SplitKey::Key(key_index) => (
            KeyKind::Key,
            split.keys.get(key_index).map(ToString::to_string),
            Some(key_index),
        ),
        SplitKey::NewStickyId => (KeyKind::NewStickyId, sticky_cookie(), None),
        SplitKey::Random => (KeyKind::Random, None, None),
    };
    let mut start = 0u16;
    let mut ranges = Vec::new();
    for (end, version) in split.ranges() {
        if end > start {
            ranges.push(RangeOut {
                version: config.version_name(version).to_string(),
                first: start,
                last: end - 1,
            });
        }
        start = end;
    }
    Some(SplitOut {
        key_kind,
        key,
        key_index,
        value: trace
            .split
            .as_ref()
            .and_then(|(_, hashed)| hashed.as_deref())
            .map(text),
        salt: split.salt.clone(),
        bucket: outcome.bucket,
        ranges,
        sticky_cookie: trace.sticky_cookie.as_ref().map(|(value, check)| {
            let keys = config
                .sticky_cookie
                .as_ref()
                .and_then(|s| s.signing.as_ref());
            let (status, key_id, reason) = match *check {
                StickyCheck::AsSent => (StickyStatus::AsSent, None, None),
                StickyCheck::Verified { key } => (
                    StickyStatus::Verified,
                    keys.and_then(|keys| keys.kids().nth(key))
                        .map(str::to_string),
                    None,
                ),
                StickyCheck::Rejected(rejection) => {
                    (StickyStatus::Rejected, None, Some(rejection.as_str()))
                }
            };
            StickyCookieOut {
                value: text(value),
                status,
                key_id,
                reason,
            }
        }),
        ramp: ramp_out(config, split, at),
    })
}

fn client_tag_out(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
    trace: &Trace,
    client_ip: Option<IpAddr>,
) -> ClientTagOut {
    let values: Vec<String> = request
        .header_values(&config.tag_header)
        .map(text)
        .collect();
    let reason = match trace.client_tag {
        None | Some(TagCheck::Absent) => None,
        Some(TagCheck::Kept) => {
            Some("sent from trusted_tag_sources and names a known version".to_string())
        }
        Some(TagCheck::NotAVersion) => Some(format!(
            "{:?} is not one of the versions",
            values.first().map(String::as_str).unwrap_or_default()
        )),
        Some(TagCheck::UntrustedSource) => Some(match client_ip {
            Some(ip) => format!("client {ip} is not in trusted_tag_sources"),
            None => "the client address is unknown".to_string(),
        }),
        Some(TagCheck::Repeated) => Some(format!("sent {} times", values.len())),
    };
    ClientTagOut {
        status: decision.client_tag,
        values,
        reason,
    }
}

// ---------------------------------------------------------------------------- text

/// The explanation for people.
pub fn render_text(config: &CompiledConfig, explained: &Explanation) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("version:     {}", explained.version));
    line(format!(
        "decided by:  {}",
        match &explained.decided_by {
            DecidedByOut::Rule { index, name } => {
                let action = match config.rules.get(*index).map(|r| &r.action) {
                    Some(Action::Fixed(_)) => "version",
                    Some(Action::VersionFrom(_)) => "version_from",
                    Some(Action::Split(_)) => "split",
                    None => "?",
                };
                format!("rules[{index}] \"{name}\" ({action})")
            }
            DecidedByOut::Default => "default_version (no rule matched)".to_string(),
            DecidedByOut::TrustedClientTag =>
                "the client's tag header (trusted source, known version; no rule ran)".to_string(),
        }
    ));
    if !explained.rules.is_empty() {
        line("rules:".into());
        for step in &explained.rules {
            let result = match step.result {
                RuleOutcome::NoMatch => "no match".to_string(),
                RuleOutcome::Decided => "matched, decided".to_string(),
                RuleOutcome::NoVersion => format!(
                    "matched, but {}; next rule",
                    step.note.as_deref().unwrap_or("no version")
                ),
            };
            line(format!("  rules[{}] {}: {result}", step.index, step.name));
        }
    }
    if let Some(split) = &explained.split {
        if let Some(sticky) = &split.sticky_cookie {
            let verdict = match (sticky.status, &sticky.key_id, sticky.reason) {
                (StickyStatus::Verified, Some(kid), _) => {
                    format!("verified with key {kid:?}; its ID is hashed")
                }
                (StickyStatus::Rejected, _, Some(reason)) => format!(
                    "rejected ({reason}): treated as no sticky cookie (counted in sticky_id_rejected)"
                ),
                _ => "hashed as sent (no signing)".to_string(),
            };
            line(format!("sticky:      {:?} {verdict}", sticky.value));
        }
        let key = match (split.key_kind, &split.key, &split.value) {
            (KeyKind::Key, Some(key), Some(value)) => format!(
                "{key} = {value:?} (split.key[{}])",
                split.key_index.unwrap_or_default()
            ),
            (KeyKind::StickyCookie, Some(key), Some(value)) => {
                format!("{key} = {value:?} (the sticky cookie)")
            }
            (KeyKind::NewStickyId, Some(key), Some(value)) => {
                format!("none of split.key present; a new sticky id is issued: {key} = {value:?}")
            }
            _ => "none of split.key present and no sticky_cookie: random bucket, not sticky"
                .to_string(),
        };
        line(format!("split key:   {key}"));
        let ranges: Vec<String> = split
            .ranges
            .iter()
            .map(|r| format!("{} {}-{}", r.version, r.first, r.last))
            .collect();
        line(format!(
            "bucket:      {} of 0-9999 (salt {:?}) -> {}; ranges: {}",
            split.bucket,
            split.salt,
            explained.version,
            ranges.join(", ")
        ));
        if let Some(ramp) = &split.ramp {
            line(format!(
                "ramp:        {}% at {} ({}); {}",
                ramp.percent,
                ramp.at,
                ramp.phase.words(),
                ramp.schedule
            ));
        }
    }
    let ip_source = match explained.client_ip_source {
        ClientIpSource::Peer => "peer address".to_string(),
        ClientIpSource::ForwardedFor => match config.client_ip {
            ClientIpMode::ForwardedFor { trusted_hops } => format!(
                "x-forwarded-for, {trusted_hops} trusted hop{}",
                if trusted_hops == 1 { "" } else { "s" }
            ),
            ClientIpMode::Peer => "x-forwarded-for".to_string(),
        },
        ClientIpSource::PeerAfterXffFallback => {
            "peer address: x-forwarded-for has too few entries, or a malformed one, at the trusted position"
                .to_string()
        }
        ClientIpSource::Unknown | ClientIpSource::NotNeeded => {
            "no peer address (give --ip)".to_string()
        }
    };
    line(format!(
        "client ip:   {} ({ip_source})",
        explained.client_ip.as_deref().unwrap_or("unknown")
    ));
    let tag = &explained.client_tag;
    let sent = |status: &str| {
        let values: Vec<String> = tag.values.iter().map(|v| format!("{v:?}")).collect();
        format!(
            "{} {status}: {}",
            values.join(", "),
            tag.reason.as_deref().unwrap_or("")
        )
    };
    line(format!(
        "client tag:  {}",
        match tag.status {
            ClientTag::Absent => format!("none sent ({})", config.tag_header),
            ClientTag::Kept => sent("kept"),
            ClientTag::Stripped => sent("stripped"),
        }
    ));
    match explained.client_baggage {
        ClientTag::Absent => {}
        ClientTag::Kept => line("client baggage: canary-version member kept (with the tag)".into()),
        ClientTag::Stripped => line(
            "client baggage: canary-version member stripped (only a trusted, kept tag keeps it)"
                .into(),
        ),
    }
    if explained.normalized.is_empty() {
        line("normalized:  none".into());
    } else {
        line("normalized:".into());
        for n in &explained.normalized {
            let from = if n.from.is_empty() {
                "missing".to_string()
            } else {
                n.from
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            line(format!(
                "  {}: {from} -> {:?} (normalize[{}])",
                n.header, n.to, n.index
            ));
        }
    }
    header_lines(
        &mut line,
        &explained.request_headers,
        &explained.request_headers_removed,
        &explained.response_headers,
    );
    out
}

/// The headers a decision sets, removes and adds, as `explain`'s text shows them (gateway
/// and sidecar mode alike).
pub fn header_lines(
    line: &mut impl FnMut(String),
    set: &[HeaderOut],
    removed: &[String],
    added: &[HeaderOut],
) {
    line("request headers set:".into());
    for header in set {
        line(format!("  {}: {}", header.name, header.value));
    }
    if !removed.is_empty() {
        line(format!("request headers removed: {}", removed.join(", ")));
    }
    if added.is_empty() {
        line("response headers added: none".into());
    } else {
        line("response headers added:".into());
        for header in added {
            line(format!("  {}: {}", header.name, header.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_arguments() {
        let ok = |text: &str| header_arg(text).unwrap();
        assert_eq!(
            ok("User-Agent: Chrome/1"),
            ("user-agent".into(), "Chrome/1".into())
        );
        assert_eq!(ok("x-empty:"), ("x-empty".into(), String::new()));
        assert_eq!(ok(":path: /a?b=c"), (":path".into(), "/a?b=c".into()));
        assert_eq!(
            ok("Host: example.com"),
            (":authority".into(), "example.com".into())
        );
        assert_eq!(ok("x: a: b"), ("x".into(), "a: b".into()));
        assert_eq!(
            ok("baggage=canary-version=v2"),
            ("baggage".into(), "canary-version=v2".into())
        );
        assert_eq!(ok("x: a=b"), ("x".into(), "a=b".into()));
        for bad in ["no colon", ": v", "bad name: v", ":: v", ""] {
            assert!(header_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeds() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0xff"), Some(255));
        assert_eq!(parse_seed("-1"), None);
        assert_ne!(entropy_from_seed(0), 0);
        assert_ne!(entropy_from_seed(0), entropy_from_seed(1));
    }
}
