//! What `explain` reports for a gateway configuration: the types `--json` prints as they
//! are and the text is rendered from.

use canary_tagger::engine::{ClientTag, RuleOutcome};
use canary_tagger::net::ClientIpSource;
use canary_tagger::ramp::Phase;
use serde::Serialize;

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
    pub fn words(self) -> &'static str {
        match self {
            RampPhase::NotStarted => "not started",
            RampPhase::Running => "ramping",
            RampPhase::Ended => "ended",
        }
    }
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
