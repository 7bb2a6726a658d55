//! The decision (SPEC §1 steps 1-4, §3, §4): which version a request belongs to, and what
//! the filter must change in the request to say so. Pure and deterministic: randomness
//! comes in as `entropy`, nothing here talks to the host, and the common path allocates
//! nothing.
//!
//! Everyone who needs a decision reads it from here: the filter and `canary-tagger explain`
//! call [`decide`] / [`decide_observed`] and apply or show the same
//! [effects](crate::effects); `explain`'s per-rule trace comes from an [`Observer`], which
//! the filter does not use (its [`Unobserved`] compiles to nothing).

use std::cell::OnceCell;
use std::net::IpAddr;

use crate::baggage;
use crate::config::{Action, ClientIpMode, CompiledConfig, KeySource, Split, VersionId};
use crate::hash;
use crate::matcher::{Lookup, ValueSource};
use crate::net::{self, ClientIpSource, IpText};
use crate::request::{cookie_values, query_values, RequestView};
use crate::signing::Rejection;
use crate::trace_context;
use serde::Serialize;

/// What decided the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedBy {
    /// `rules[index]` matched.
    Rule(usize),
    /// A client-sent tag from a trusted source was kept.
    TrustedClientTag,
    /// No rule matched.
    Default,
}

/// What happened to a tag header the client sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientTag {
    Absent,
    /// From a trusted source and naming a known version: kept, no rule ran.
    Kept,
    /// Removed (replaced by the decision): untrusted source or unknown value.
    Stripped,
}

/// Which key a split hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKey {
    /// The sticky cookie the filter issued earlier.
    StickyCookie,
    /// `split.key[index]` of the deciding rule.
    Key(usize),
    /// No key present: a new sticky id was generated (see [`Decision::sticky_id`]).
    NewStickyId,
    /// No key and no sticky cookie configured: a random bucket, not sticky.
    Random,
}

/// How a split judged the sticky cookie the request carried (SPEC §4, §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StickyCheck {
    /// No `signing`: the value is hashed as sent.
    AsSent,
    /// Signed by the key at this position of the keys (0: the signing key); its ID is hashed.
    Verified { key: usize },
    /// Did not verify: treated as no sticky cookie.
    Rejected(Rejection),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitOutcome {
    pub key: SplitKey,
    pub bucket: u16,
}

/// A 128-bit sticky id in lower-case hex, the value of the sticky cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StickyId([u8; 32]);

impl StickyId {
    pub fn from_entropy(entropy: u128) -> StickyId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 32];
        for (i, slot) in text.iter_mut().enumerate() {
            let shift = 124 - 4 * i;
            let nibble = usize::try_from((entropy >> shift) & 0xf).unwrap_or(0);
            *slot = HEX.get(nibble).copied().unwrap_or(b'0');
        }
        StickyId(text)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for StickyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StickyId({})", self.as_str())
    }
}

/// The set of `normalize` entries (by index) that rewrote their header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Normalized(u64);

impl Normalized {
    pub fn contains(self, index: usize) -> bool {
        u32::try_from(index)
            .ok()
            .and_then(|i| 1u64.checked_shl(i))
            .is_some_and(|bit| self.0 & bit != 0)
    }

    fn insert(&mut self, index: usize) {
        if let Some(bit) = u32::try_from(index).ok().and_then(|i| 1u64.checked_shl(i)) {
            self.0 |= bit;
        }
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Indices in ascending order (visits only the set bits).
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let index = bits.trailing_zeros();
            (bits != 0).then(|| {
                bits &= bits - 1;
                usize::try_from(index).unwrap_or(0)
            })
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub version: VersionId,
    pub decided_by: DecidedBy,
    pub client_tag: ClientTag,
    /// What happened to a `canary-version` member of the client's `baggage` (SPEC §7):
    /// kept with a kept client tag, else stripped, so no client picks a version the
    /// mesh's sidecars trust.
    pub client_baggage: ClientTag,
    /// The same for a `canary` member of the client's `tracestate` (SPEC §12).
    pub client_tracestate: ClientTag,
    /// `normalize` entries whose header must be set to their `default`.
    pub normalized: Normalized,
    /// Set when a split generated a sticky id: the response must carry it as a cookie.
    pub sticky_id: Option<StickyId>,
    /// Set when a split found a sticky cookie whose value does not verify (SPEC §10).
    pub sticky_rejected: Option<Rejection>,
    pub split: Option<SplitOutcome>,
    pub client_ip: Option<IpAddr>,
    pub client_ip_source: ClientIpSource,
}

/// How the client-sent tag header was judged (SPEC §1.2). [`TagCheck::outcome`] is what the
/// decision records; the rest says why, for `explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagCheck {
    /// None sent.
    Absent,
    /// One value, a known version, from `trusted_tag_sources`: kept.
    Kept,
    /// Stripped: the value is not one of the versions.
    NotAVersion,
    /// Stripped: a known version, but the client is not in `trusted_tag_sources` (or its
    /// address is unknown).
    UntrustedSource,
    /// Stripped: the header was sent more than once.
    Repeated,
}

impl TagCheck {
    pub fn outcome(self) -> ClientTag {
        match self {
            TagCheck::Absent => ClientTag::Absent,
            TagCheck::Kept => ClientTag::Kept,
            TagCheck::NotAVersion | TagCheck::UntrustedSource | TagCheck::Repeated => {
                ClientTag::Stripped
            }
        }
    }
}

/// How one `normalize` entry judged the request (SPEC §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalizeCheck {
    /// Its `when` does not hold: the header is left alone.
    NotApplicable,
    /// Every value is in `allowed`: left alone.
    Allowed,
    /// The header is missing: set to `default`.
    Missing,
    /// A value is not in `allowed`: set to `default`.
    NotAllowed,
}

impl NormalizeCheck {
    /// Whether the header is set to the entry's `default`.
    pub fn rewrites(self) -> bool {
        matches!(self, NormalizeCheck::Missing | NormalizeCheck::NotAllowed)
    }
}

/// What one rule came to (SPEC §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// Its `match` does not hold.
    NoMatch,
    /// It matched and decided the version.
    Decided,
    /// It matched, but its `version_from` source held no known version: the next rule runs.
    NoVersion,
}

/// Watches [`decide_observed`] take its steps, in order: the client tag, each `normalize`
/// entry, then each rule evaluated (the values a `version_from` read and the key a split
/// hashed come before that rule's outcome). Every method does nothing by default, so an
/// observer implements only what it wants; `explain` records them all.
pub trait Observer {
    /// The client-sent tag header was checked.
    #[inline]
    fn client_tag(&mut self, _check: TagCheck) {}

    /// `normalize[index]` was checked.
    #[inline]
    fn normalize(&mut self, _index: usize, _check: NormalizeCheck) {}

    /// `rules[rule]`'s `version_from` read `value`, which names `version` (if any). Called
    /// for each value read, until one names a version.
    #[inline]
    fn version_from_value(&mut self, _rule: usize, _value: &[u8], _version: Option<VersionId>) {}

    /// `rules[rule]`'s split found the sticky cookie `value` and judged it (before it
    /// hashes a key).
    #[inline]
    fn sticky_cookie(&mut self, _rule: usize, _value: &[u8], _check: StickyCheck) {}

    /// `rules[rule]`'s split hashed `hashed` (`None`: no key, a random bucket) from `key`.
    #[inline]
    fn split_hashed(&mut self, _rule: usize, _key: SplitKey, _hashed: Option<&[u8]>, _bucket: u16) {
    }

    /// `rules[index]` was evaluated.
    #[inline]
    fn rule(&mut self, _index: usize, _outcome: RuleOutcome) {}
}

/// The observer of [`decide`]: sees nothing, costs nothing (every call is an empty inlined
/// function, and this is a zero-sized type).
pub struct Unobserved;

impl Observer for Unobserved {}

/// Decides the version of one request. `entropy` is a fresh random number, used only when a
/// split has no key (to issue a sticky id, or pick a random bucket).
///
/// The client IP is resolved only if the decision consults it (a `source_ip` condition or
/// split key, or a client tag to check against `trusted_tag_sources`): in the filter the
/// peer address is a host call that costs as much as reading every header.
#[inline]
pub fn decide<R: RequestView>(config: &CompiledConfig, request: &R, entropy: u128) -> Decision {
    decide_observed(config, request, entropy, &mut Unobserved)
}

/// [`decide`], reporting each step to `observer` (see [`Observer`] for the order).
// One function (113 lines) on purpose: each split into steps tried (the client tag, the
// `normalize` entries, the rules; as methods, inlined or not, loops or `find_map`) grew the
// module by 23 to 88 bytes.
pub fn decide_observed<R: RequestView, O: Observer>(
    config: &CompiledConfig,
    request: &R,
    entropy: u128,
    observer: &mut O,
) -> Decision {
    let mut view = Resolved {
        config,
        request,
        client_ip: OnceCell::new(),
        normalized: Normalized::default(),
    };

    // A client-sent tag is kept only when it is one known version from a trusted source.
    let mut tag_values = request.header_values(&config.tag_header);
    let (tag_check, kept_version) = match (tag_values.next(), tag_values.next()) {
        (None, _) => (TagCheck::Absent, None),
        (Some(value), None) => match config.version_named(value) {
            Some(version) if view.trusted_source() => (TagCheck::Kept, Some(version)),
            Some(_) => (TagCheck::UntrustedSource, None),
            None => (TagCheck::NotAVersion, None),
        },
        (Some(_), Some(_)) => (TagCheck::Repeated, None),
    };
    observer.client_tag(tag_check);

    for (index, entry) in config.normalize.iter().enumerate() {
        let applies = entry.when.as_ref().is_none_or(|when| when.holds(&view));
        let check = if applies {
            let mut values = view.header_values(&entry.header).peekable();
            if values.peek().is_none() {
                NormalizeCheck::Missing
            } else if values.any(|value| !entry.allowed.iter().any(|a| a.as_bytes() == value)) {
                NormalizeCheck::NotAllowed
            } else {
                NormalizeCheck::Allowed
            }
        } else {
            NormalizeCheck::NotApplicable
        };
        observer.normalize(index, check);
        if check.rewrites() {
            view.normalized.insert(index);
        }
    }

    let carried = |ours: bool| match ours {
        false => ClientTag::Absent,
        _ if tag_check == TagCheck::Kept => ClientTag::Kept,
        _ => ClientTag::Stripped,
    };
    let client_baggage = carried(baggage::members(request.header_values(baggage::HEADER)).ours);
    let client_tracestate = carried(trace_context::has_version_member(
        request.header_values(trace_context::TRACESTATE),
    ));

    let mut decision = Decision {
        version: config.default_version,
        decided_by: DecidedBy::Default,
        client_tag: tag_check.outcome(),
        client_baggage,
        client_tracestate,
        normalized: view.normalized,
        sticky_id: None,
        sticky_rejected: None,
        split: None,
        client_ip: None,
        client_ip_source: ClientIpSource::NotNeeded,
    };

    if let Some(version) = kept_version {
        decision.version = version;
        decision.decided_by = DecidedBy::TrustedClientTag;
    } else {
        for (index, rule) in config.rules.iter().enumerate() {
            if !rule
                .condition
                .as_ref()
                .is_none_or(|condition| condition.holds(&view))
            {
                observer.rule(index, RuleOutcome::NoMatch);
                continue;
            }
            let chosen = match &rule.action {
                Action::Fixed(version) => Some(*version),
                Action::VersionFrom(source) => view.first_value(source, |value| {
                    let version = config.version_named(value);
                    observer.version_from_value(index, value, version);
                    version
                }),
                Action::Split(split) => {
                    let split = view.split(split, entropy, index, observer);
                    decision.split = Some(split.outcome);
                    decision.sticky_id = split.sticky_id;
                    decision.sticky_rejected = split.sticky_rejected;
                    split.version
                }
            };
            if let Some(version) = chosen {
                observer.rule(index, RuleOutcome::Decided);
                decision.version = version;
                decision.decided_by = DecidedBy::Rule(index);
                break;
            }
            observer.rule(index, RuleOutcome::NoVersion);
        }
    }
    if let Some(&(ip, source)) = view.client_ip.get() {
        decision.client_ip = ip;
        decision.client_ip_source = source;
    }
    decision
}

/// The request headers every decision under `config` may read, when that is a list this
/// short: a config without rules and `normalize` entries reads only the tag header,
/// `baggage` and `tracestate` (SPEC §1.2, §7, §12; the client address only when the tag
/// header is there), and `traceparent` with `tracestate` on. A request with none of them
/// decides exactly as a request with no headers, so the filter asks Envoy
/// whether each is present (a cheap lookup) instead of reading the whole header map.
/// `None` when a decision may read other headers.
pub fn probe_headers(config: &CompiledConfig) -> Option<[Option<&str>; 4]> {
    (config.rules.is_empty() && config.normalize.is_empty()).then_some([
        Some(config.tag_header.as_str()),
        Some(baggage::HEADER),
        Some(trace_context::TRACESTATE),
        // With `tracestate`, a valid `traceparent` alone makes a write.
        config.tracestate.then_some(trace_context::TRACEPARENT),
    ])
}

/// SPEC §1.1: the peer, or the XFF entry `trusted_hops` from the right; peer as fallback.
pub fn client_ip<R: RequestView>(
    config: &CompiledConfig,
    request: &R,
) -> (Option<IpAddr>, ClientIpSource) {
    // Read the peer only when it is needed: in the filter it is a host call.
    let from_peer = |fallback: bool| match (
        request.peer_address().and_then(net::parse_address),
        fallback,
    ) {
        (Some(ip), false) => (Some(ip), ClientIpSource::Peer),
        (Some(ip), true) => (Some(ip), ClientIpSource::PeerAfterXffFallback),
        (None, _) => (None, ClientIpSource::Unknown),
    };
    match config.client_ip {
        ClientIpMode::Peer => from_peer(false),
        ClientIpMode::ForwardedFor { trusted_hops } => {
            match net::client_from_xff(request.header_values("x-forwarded-for"), trusted_hops) {
                Some(ip) => (Some(ip), ClientIpSource::ForwardedFor),
                None => from_peer(true),
            }
        }
    }
}

/// The request as rules see it: normalized headers replaced, client address resolved on
/// first use.
struct Resolved<'c, 'r, R> {
    config: &'c CompiledConfig,
    request: &'r R,
    client_ip: OnceCell<(Option<IpAddr>, ClientIpSource)>,
    normalized: Normalized,
}

impl<R: RequestView> Resolved<'_, '_, R> {
    fn resolved_client_ip(&self) -> Option<IpAddr> {
        self.client_ip
            .get_or_init(|| client_ip(self.config, self.request))
            .0
    }

    /// Whether the client is in `trusted_tag_sources` (the IP is not resolved when the
    /// list is empty).
    fn trusted_source(&self) -> bool {
        let sources = &self.config.trusted_tag_sources;
        !sources.is_empty()
            && self
                .resolved_client_ip()
                .is_some_and(|ip| sources.iter().any(|range| range.contains(ip)))
    }

    /// Header values after normalization: a normalized header has exactly its default.
    fn header_values<'a>(
        &'a self,
        name: &'a str,
    ) -> HeaderValues<'a, impl Iterator<Item = &'a [u8]> + Clone> {
        let rewritten = self
            .normalized
            .iter()
            .filter_map(|i| self.config.normalize.get(i))
            .filter(|entry| entry.header == name)
            .last();
        match rewritten {
            Some(entry) => HeaderValues::Rewritten(Some(entry.default.as_bytes())),
            None => HeaderValues::Request(self.request.header_values(name)),
        }
    }

    /// What `pick` returns for the first value of `source` it accepts.
    fn first_value<T>(
        &self,
        source: &ValueSource,
        mut pick: impl FnMut(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let mut found = None;
        self.any_value(source, &mut |value| {
            found = pick(value);
            found.is_some()
        });
        found
    }

    /// Hashes the first key present (the sticky cookie first, when it verifies), or issues
    /// a sticky id; reports the sticky cookie's check and the key hashed to `observer` as
    /// `rules[rule]`'s.
    fn split<O: Observer>(
        &self,
        split: &Split,
        entropy: u128,
        rule: usize,
        observer: &mut O,
    ) -> SplitResult {
        let salt = split.salt.as_bytes();
        let result = |observer: &mut O, key, hashed: Option<&[u8]>, bucket, sticky_rejected| {
            observer.split_hashed(rule, key, hashed, bucket);
            SplitResult {
                version: split.version_for(bucket),
                outcome: SplitOutcome { key, bucket },
                sticky_id: None,
                sticky_rejected,
            }
        };
        let mut sticky_rejected = None;
        if let Some(sticky) = &self.config.sticky_cookie {
            let value = cookie_values(self.request, sticky.name.as_bytes()).find(|v| !v.is_empty());
            if let Some(value) = value {
                match sticky.verify(value) {
                    Ok((id, key)) => {
                        let check =
                            key.map_or(StickyCheck::AsSent, |key| StickyCheck::Verified { key });
                        observer.sticky_cookie(rule, value, check);
                        let bucket = hash::bucket(salt, id);
                        return result(observer, SplitKey::StickyCookie, Some(id), bucket, None);
                    }
                    // As if there were no sticky cookie: the keys, else a new signed id.
                    Err(rejection) => {
                        observer.sticky_cookie(rule, value, StickyCheck::Rejected(rejection));
                        sticky_rejected = Some(rejection);
                    }
                }
            }
        }
        let mut result = |key, hashed: Option<&[u8]>, bucket| {
            result(observer, key, hashed, bucket, sticky_rejected)
        };
        if let Some(found) = self.first_key(split, &mut result) {
            return found;
        }
        if self.config.sticky_cookie.is_some() {
            let id = StickyId::from_entropy(entropy);
            let bucket = hash::bucket(salt, id.as_str().as_bytes());
            let found = result(SplitKey::NewStickyId, Some(id.as_str().as_bytes()), bucket);
            return SplitResult {
                sticky_id: Some(id),
                ..found
            };
        }
        result(SplitKey::Random, None, hash::bucket_from_random(entropy))
    }

    /// The first of the split's keys the request has, hashed and handed to `result`.
    fn first_key(
        &self,
        split: &Split,
        result: &mut impl FnMut(SplitKey, Option<&[u8]>, u16) -> SplitResult,
    ) -> Option<SplitResult> {
        let salt = split.salt.as_bytes();
        split.keys.iter().enumerate().find_map(|(index, key)| {
            let key_kind = SplitKey::Key(index);
            match key {
                KeySource::Value(source) => self.first_value(source, |value| {
                    (!value.is_empty())
                        .then(|| result(key_kind, Some(value), hash::bucket(salt, value)))
                }),
                KeySource::SourceIp => self.resolved_client_ip().map(|ip| {
                    let text = IpText::new(ip);
                    result(
                        key_kind,
                        Some(text.as_bytes()),
                        hash::bucket(salt, text.as_bytes()),
                    )
                }),
            }
        })
    }
}

/// What a split decided.
struct SplitResult {
    version: Option<VersionId>,
    outcome: SplitOutcome,
    /// A new sticky id to issue.
    sticky_id: Option<StickyId>,
    sticky_rejected: Option<Rejection>,
}

impl<R: RequestView> Lookup for Resolved<'_, '_, R> {
    fn any_value(&self, source: &ValueSource, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        match source {
            ValueSource::Header(name) => self.header_values(name).any(&mut *pred),
            ValueSource::Cookie(name) => {
                cookie_values(self.request, name.as_bytes()).any(&mut *pred)
            }
            ValueSource::Query(name) => self
                .request
                .header_values(":path")
                .take(1)
                .any(|path| query_values(path, name.as_bytes()).any(|v| pred(&v))),
        }
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.resolved_client_ip()
    }
}

#[derive(Clone)]
enum HeaderValues<'a, I> {
    Rewritten(Option<&'a [u8]>),
    Request(I),
}

impl<'a, I: Iterator<Item = &'a [u8]>> Iterator for HeaderValues<'a, I> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            HeaderValues::Rewritten(value) => value.take(),
            HeaderValues::Request(values) => values.next(),
        }
    }
}
