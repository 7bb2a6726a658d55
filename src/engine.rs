//! The decision (SPEC §1 steps 1-4, §3, §4): which version a request belongs to, and what
//! the filter must change in the request to say so. Pure and deterministic: randomness
//! comes in as `entropy`, nothing here talks to the host, and the common path allocates
//! nothing.

use std::cell::OnceCell;
use std::net::IpAddr;

use crate::config::{Action, ClientIpMode, CompiledConfig, KeySource, Split, VersionId};
use crate::hash;
use crate::matcher::{Lookup, ValueSource};
use crate::net::{self, ClientIpSource, IpText};
use crate::request::{cookie_values, query_values, RequestView};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// `normalize` entries whose header must be set to their `default`.
    pub normalized: Normalized,
    /// Set when a split generated a sticky id: the response must carry it as a cookie.
    pub sticky_id: Option<StickyId>,
    pub split: Option<SplitOutcome>,
    pub client_ip: Option<IpAddr>,
    pub client_ip_source: ClientIpSource,
}

/// Decides the version of one request. `entropy` is a fresh random number, used only when a
/// split has no key (to issue a sticky id, or pick a random bucket).
///
/// The client IP is resolved only if the decision consults it (a `source_ip` condition or
/// split key, or a client tag to check against `trusted_tag_sources`): in the filter the
/// peer address is a host call that costs as much as reading every header.
pub fn decide<R: RequestView>(config: &CompiledConfig, request: &R, entropy: u128) -> Decision {
    let mut view = Resolved {
        config,
        request,
        client_ip: OnceCell::new(),
        normalized: Normalized::default(),
    };

    // A client-sent tag is kept only when it is one known version from a trusted source.
    let mut tag_values = request.header_values(&config.tag_header);
    let (client_tag, kept_version) = match (tag_values.next(), tag_values.next()) {
        (None, _) => (ClientTag::Absent, None),
        (Some(value), None) => match config.version_named(value) {
            Some(version) if view.trusted_source() => (ClientTag::Kept, Some(version)),
            _ => (ClientTag::Stripped, None),
        },
        (Some(_), Some(_)) => (ClientTag::Stripped, None),
    };

    for (index, entry) in config.normalize.iter().enumerate() {
        let applies = entry.when.as_ref().is_none_or(|when| when.holds(&view));
        if !applies {
            continue;
        }
        let needs_default = {
            let mut values = view.header_values(&entry.header).peekable();
            let missing = values.peek().is_none();
            missing || values.any(|value| !entry.allowed.iter().any(|a| a.as_bytes() == value))
        };
        if needs_default {
            view.normalized.insert(index);
        }
    }

    let mut decision = Decision {
        version: config.default_version,
        decided_by: DecidedBy::Default,
        client_tag,
        normalized: view.normalized,
        sticky_id: None,
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
                continue;
            }
            let chosen = match &rule.action {
                Action::Fixed(version) => Some(*version),
                Action::VersionFrom(source) => {
                    view.first_value(source, |value| config.version_named(value))
                }
                Action::Split(split) => {
                    let (version, outcome, sticky_id) = view.split(split, entropy);
                    decision.split = Some(outcome);
                    decision.sticky_id = sticky_id;
                    version
                }
            };
            if let Some(version) = chosen {
                decision.version = version;
                decision.decided_by = DecidedBy::Rule(index);
                break;
            }
        }
    }
    if let Some(&(ip, source)) = view.client_ip.get() {
        decision.client_ip = ip;
        decision.client_ip_source = source;
    }
    decision
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

    /// Hashes the first key present (the sticky cookie first), or issues a sticky id.
    fn split(
        &self,
        split: &Split,
        entropy: u128,
    ) -> (Option<VersionId>, SplitOutcome, Option<StickyId>) {
        let salt = split.salt.as_bytes();
        let outcome = |key, bucket| {
            (
                split.version_for(bucket),
                SplitOutcome { key, bucket },
                None,
            )
        };
        if let Some(sticky) = &self.config.sticky_cookie {
            let value = cookie_values(self.request, sticky.name.as_bytes()).find(|v| !v.is_empty());
            if let Some(value) = value {
                return outcome(SplitKey::StickyCookie, hash::bucket(salt, value));
            }
        }
        for (index, key) in split.keys.iter().enumerate() {
            let bucket = match key {
                KeySource::Value(source) => self.first_value(source, |value| {
                    (!value.is_empty()).then(|| hash::bucket(salt, value))
                }),
                KeySource::SourceIp => self
                    .resolved_client_ip()
                    .map(|ip| hash::bucket(salt, IpText::new(ip).as_bytes())),
            };
            if let Some(bucket) = bucket {
                return outcome(SplitKey::Key(index), bucket);
            }
        }
        if self.config.sticky_cookie.is_some() {
            let id = StickyId::from_entropy(entropy);
            let bucket = hash::bucket(salt, id.as_str().as_bytes());
            let (version, outcome, _) = outcome(SplitKey::NewStickyId, bucket);
            return (version, outcome, Some(id));
        }
        outcome(SplitKey::Random, hash::bucket_from_random(entropy))
    }
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
