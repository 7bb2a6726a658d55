//! Sidecar mode (SPEC §8): the tag follows a request through the mesh without app changes.
//!
//! On a workload's sidecar the filter sees each request twice over: the call coming in to
//! the app (an INBOUND listener) and the calls the app makes while serving it (OUTBOUND).
//! Apps rarely forward our tag header, but many forward trace context or `baggage`. So:
//!
//! - **Inbound**, a request with a known tag: [`inbound_version`] names the version, and the
//!   filter remembers it under every trace id the request carries ([`trace_ids`]) in a
//!   table shared by the whole Envoy (proxy-wasm shared data).
//! - **Outbound**: [`restore`] takes the version from the first `restore` source that
//!   yields a known one — the tag header, the `canary-version` member of `baggage`, or the
//!   version remembered for the call's trace id — else `default_version`; the filter writes
//!   [`Restore::request_effects`].
//!
//! The table has a fixed number of slots, so its memory is bounded by construction: a trace
//! id hashes to two candidate slots ([`TraceKey`]; [`slot_to_write`] takes the free,
//! expired or older one), and a slot's value ([`encode_entry`]) holds the whole 64-bit
//! hash (to tell another trace in the same slot), the time it was written and the
//! version's name. A new trace may overwrite an older one; an entry older than `ttl_s` is
//! ignored. Everything here is pure and allocation-free; the filter only moves bytes
//! between the host's shared data and these functions.

use crate::baggage;
use crate::config::{CompiledConfig, RestoreSource, Sidecar, TraceMemory, VersionId, MAX_NAME_LEN};
use crate::effects::{
    baggage_effect, tracestate_effect, AddHeader, AddValue, SetHeader, SetMode, SetValue,
};
use crate::hash::{fmix64, Fnv1a64};
use crate::request::RequestView;
use crate::trace_context;

// ---------------------------------------------------------------------------- direction

/// The direction of the listener a request came through: Envoy's `xds.listener_direction`
/// attribute (`listener_direction` before Envoy 1.3x; `envoy.config.core.v3.TrafficDirection`),
/// which Envoy serves to HTTP contexts only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A call to this workload (`INBOUND`, 1).
    Inbound,
    /// A call this workload makes (`OUTBOUND`, 2).
    Outbound,
    /// `UNSPECIFIED` (0), absent or unreadable: the filter leaves the request alone.
    Unspecified,
}

impl Direction {
    /// From the property's value as Envoy serialises it: an int64, 8 bytes little-endian.
    pub fn from_property(value: Option<&[u8]>) -> Direction {
        let number = value
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map(i64::from_le_bytes);
        match number {
            Some(1) => Direction::Inbound,
            Some(2) => Direction::Outbound,
            _ => Direction::Unspecified,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Unspecified => "unspecified",
        }
    }
}

// ---------------------------------------------------------------------------- trace ids

/// The headers a trace id is read from, in the order an outbound call looks them up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceHeader {
    /// W3C Trace Context: its trace-id field.
    TraceParent,
    /// Zipkin B3 (Istio's default tracing headers).
    B3TraceId,
    /// Envoy's request id, which Istio asks apps to forward as well.
    RequestId,
}

impl TraceHeader {
    pub const ALL: [TraceHeader; 3] = [
        TraceHeader::TraceParent,
        TraceHeader::B3TraceId,
        TraceHeader::RequestId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TraceHeader::TraceParent => "traceparent",
            TraceHeader::B3TraceId => "x-b3-traceid",
            TraceHeader::RequestId => "x-request-id",
        }
    }

    /// The trace id in one value of this header, if it is well-formed.
    pub fn trace_id(self, value: &[u8]) -> Option<&[u8]> {
        match self {
            TraceHeader::TraceParent => traceparent_trace_id(value),
            TraceHeader::B3TraceId => b3_trace_id(value),
            TraceHeader::RequestId => request_id(value),
        }
    }
}

pub use crate::trace_context::traceparent_trace_id;

/// An `x-b3-traceid`: 16 or 32 hex digits (either case), not all zeros.
pub fn b3_trace_id(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let hex = value.iter().all(u8::is_ascii_hexdigit);
    let nonzero = value.iter().any(|&b| b != b'0');
    (matches!(value.len(), 16 | 32) && hex && nonzero).then_some(value)
}

/// The longest `x-request-id` taken as a trace id (Envoy's are 36-byte UUIDs).
pub const MAX_REQUEST_ID: usize = 128;

/// An `x-request-id`: 1 to [`MAX_REQUEST_ID`] visible ASCII characters.
pub fn request_id(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let visible = value.iter().all(|b| (0x21..=0x7e).contains(b));
    (!value.is_empty() && value.len() <= MAX_REQUEST_ID && visible).then_some(value)
}

/// The trace ids `request` carries, in [`TraceHeader::ALL`] order: each header sent exactly
/// once with a well-formed id (a repeated trace header is ambiguous, so it is skipped).
pub fn trace_ids<R: RequestView>(request: &R) -> impl Iterator<Item = (TraceHeader, &[u8])> + '_ {
    TraceHeader::ALL.into_iter().filter_map(move |header| {
        let mut values = request.header_values(header.name());
        match (values.next(), values.next()) {
            (Some(value), None) => Some((header, header.trace_id(value)?)),
            _ => None,
        }
    })
}

// ---------------------------------------------------------------------------- the table

/// Where a trace id may live in the table: two candidate slots (the table is two-way
/// associative: a new trace takes the candidate that is free, expired or older, so a live
/// entry is lost only when both its slots are taken by newer traces), and the hash that
/// tells its entry apart from another trace's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceKey {
    pub slot: u32,
    /// The other candidate (the same as `slot` in a table of one entry).
    pub alt: u32,
    pub check: u64,
}

impl TraceKey {
    /// Hex trace ids (`traceparent`, B3) are hashed in lower case, so the same trace in
    /// either header or case finds the same slot; an `x-request-id` is hashed as it is.
    pub fn new(header: TraceHeader, id: &[u8], memory: &TraceMemory) -> TraceKey {
        let fnv = match header {
            TraceHeader::TraceParent | TraceHeader::B3TraceId => {
                id.iter().fold(Fnv1a64::default(), |h, b| {
                    h.write(&[b.to_ascii_lowercase()])
                })
            }
            TraceHeader::RequestId => Fnv1a64::default().write(id),
        };
        let check = fmix64(fnv.finish());
        let entries = u64::from(memory.entries.max(1));
        let slot = u32::try_from(check % entries).unwrap_or(0);
        let alt = u32::try_from(fmix64(check ^ 0x9e37_79b9_7f4a_7c15) % entries).unwrap_or(0);
        TraceKey { slot, alt, check }
    }

    /// The candidate slots, `slot` first (one when they are the same).
    pub fn candidates(&self) -> impl Iterator<Item = u32> {
        std::iter::once(self.slot).chain((self.alt != self.slot).then_some(self.alt))
    }
}

/// The slot an inbound request writes `key`'s entry to at `now_s`: the candidate that
/// already holds this trace, else one that is empty, unreadable or past `ttl_s`, else the
/// one written longer ago.
pub fn slot_to_write<T: TraceTable>(
    table: &T,
    key: TraceKey,
    memory: &TraceMemory,
    now_s: u64,
) -> u32 {
    // (rank, stamp): this trace 0, free 1, else 2 by age.
    let judge = |slot: u32| {
        table.read_slot(slot, |entry| match entry.and_then(decode_entry) {
            Some((check, _, _)) if check == key.check => (0, 0),
            None => (1, 0),
            Some((_, stamp, _)) if now_s.saturating_sub(stamp) > memory.ttl_s => (1, 0),
            Some((_, stamp, _)) => (2, stamp),
        })
    };
    let first = judge(key.slot);
    if key.alt == key.slot || first.0 == 0 {
        return key.slot;
    }
    let second = judge(key.alt);
    if second < first {
        key.alt
    } else {
        key.slot
    }
}

/// The shared-data key of a slot: `canary-tagger.trace.<slot>`. One table for the whole
/// Envoy (proxy-wasm shared data is per VM id); configurations with different `entries`
/// share it safely, since an entry is recognised by its full hash.
#[derive(Clone, Copy)]
pub struct SlotKey {
    buf: [u8; 32],
    len: usize,
}

pub const SLOT_KEY_PREFIX: &str = "canary-tagger.trace.";

impl SlotKey {
    pub fn new(slot: u32) -> SlotKey {
        let mut buf = [0u8; 32];
        let prefix = SLOT_KEY_PREFIX.as_bytes();
        let mut len = 0;
        for (to, from) in buf.iter_mut().zip(prefix) {
            *to = *from;
            len += 1;
        }
        let mut digits = [0u8; 10];
        let mut n = slot;
        let mut count = 0;
        loop {
            if let Some(d) = digits.get_mut(count) {
                *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
            }
            count += 1;
            n /= 10;
            if n == 0 || count >= digits.len() {
                break;
            }
        }
        for i in (0..count).rev() {
            if let (Some(to), Some(from)) = (buf.get_mut(len), digits.get(i)) {
                *to = *from;
                len += 1;
            }
        }
        SlotKey { buf, len }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// The longest entry: the hash, the time, and a version name.
pub const MAX_ENTRY: usize = 16 + MAX_NAME_LEN;

/// An entry as stored: `check` (8 bytes LE), the time it was written in seconds since the
/// epoch (8 bytes LE), the version's name. The name, not its index, so that a table shared
/// with another configuration of the same VM never confuses versions.
pub fn encode_entry<'b>(
    key: TraceKey,
    now_s: u64,
    version: &str,
    buf: &'b mut [u8; MAX_ENTRY],
) -> &'b [u8] {
    let name = version.as_bytes();
    let name = name.get(..MAX_NAME_LEN).unwrap_or(name);
    let (check, rest) = buf.split_at_mut(8);
    check.copy_from_slice(&key.check.to_le_bytes());
    let (stamp, rest) = rest.split_at_mut(8);
    stamp.copy_from_slice(&now_s.to_le_bytes());
    if let Some(slot) = rest.get_mut(..name.len()) {
        slot.copy_from_slice(name);
    }
    buf.get(..16 + name.len()).unwrap_or_default()
}

/// `(check, written_s, version name)` of a stored entry; `None` when malformed.
pub fn decode_entry(entry: &[u8]) -> Option<(u64, u64, &[u8])> {
    let check = u64::from_le_bytes(entry.get(..8)?.try_into().ok()?);
    let stamp = u64::from_le_bytes(entry.get(8..16)?.try_into().ok()?);
    let name = entry.get(16..)?;
    (!name.is_empty() && name.len() <= MAX_NAME_LEN).then_some((check, stamp, name))
}

/// What the table holds for one trace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The slot is empty or holds another trace.
    NotRemembered,
    /// Remembered more than `ttl_s` ago.
    Expired,
    /// Remembered as a version this configuration does not have.
    NotAVersion,
    Remembered(VersionId),
}

/// Judges the bytes stored in `key`'s slot at time `now_s`.
pub fn lookup(
    config: &CompiledConfig,
    memory: &TraceMemory,
    key: TraceKey,
    entry: Option<&[u8]>,
    now_s: u64,
) -> Lookup {
    let Some((check, stamp, name)) = entry.and_then(decode_entry) else {
        return Lookup::NotRemembered;
    };
    if check != key.check {
        return Lookup::NotRemembered;
    }
    if now_s.saturating_sub(stamp) > memory.ttl_s {
        return Lookup::Expired;
    }
    match config.version_named(name) {
        Some(version) => Lookup::Remembered(version),
        None => Lookup::NotAVersion,
    }
}

/// The trace table as an outbound decision reads it: proxy-wasm shared data in the filter,
/// a map in tests and `explain`.
pub trait TraceTable {
    /// Hands the bytes stored in `slot` (`None`: never written, or unreadable) to `read`.
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T;

    /// Seconds since the Unix epoch. Asked at most once per decision, and only when a slot
    /// holds the trace (the filter reads the host clock then).
    fn now_s(&self) -> u64;
}

// ---------------------------------------------------------------------------- inbound

/// The version an inbound request carries: its tag header, sent once, naming a known
/// version. `None`: nothing to remember (the request passes as it is either way).
pub fn inbound_version<R: RequestView>(config: &CompiledConfig, request: &R) -> Option<VersionId> {
    let mut values = request.header_values(&config.tag_header);
    match (values.next(), values.next()) {
        (Some(value), None) => config.version_named(value),
        _ => None,
    }
}

// ---------------------------------------------------------------------------- outbound

/// What one `restore` source yielded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceOutcome {
    /// Nothing to read: no tag header, no `canary-version` member, no trace id.
    Absent,
    /// A value naming no known version (or a tag header sent more than once): ignored.
    NotAVersion,
    /// Trace ids, none of them remembered (live) in the table.
    NotRemembered,
    Restored(VersionId),
}

/// Where an outbound call's version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoredFrom {
    Source(RestoreSource),
    /// No source yielded a known version.
    Default,
}

impl RestoredFrom {
    /// The metric label and `explain` word: a source's name, or `default`.
    pub fn name(self) -> &'static str {
        match self {
            RestoredFrom::Source(source) => source.name(),
            RestoredFrom::Default => "default",
        }
    }
}

/// An outbound call's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restore {
    pub version: VersionId,
    pub from: RestoredFrom,
    /// The header whose trace id was found, when `from` is the trace.
    pub trace_header: Option<TraceHeader>,
    /// The trace source was consulted, the call carried trace ids, and none was remembered.
    pub trace_missed: bool,
}

/// Watches [`restore_observed`]: each source consulted, in order, and each trace id looked
/// up. Nothing by default; `explain` records them.
pub trait RestoreObserver {
    #[inline]
    fn source(&mut self, _source: RestoreSource, _outcome: SourceOutcome) {}

    #[inline]
    fn trace_lookup(&mut self, _header: TraceHeader, _id: &[u8], _lookup: Lookup) {}
}

/// The observer that sees nothing.
pub struct Unobserved;

impl RestoreObserver for Unobserved {}

/// The version of an outbound call (SPEC §8).
#[inline]
pub fn restore<R: RequestView, T: TraceTable>(
    config: &CompiledConfig,
    request: &R,
    table: &T,
) -> Restore {
    restore_observed(config, request, table, &mut Unobserved)
}

/// [`restore`], reporting each step to `observer`.
pub fn restore_observed<R: RequestView, T: TraceTable, O: RestoreObserver>(
    config: &CompiledConfig,
    request: &R,
    table: &T,
    observer: &mut O,
) -> Restore {
    let mut restored = Restore {
        version: config.default_version,
        from: RestoredFrom::Default,
        trace_header: None,
        trace_missed: false,
    };
    let Some(sidecar) = config.sidecar() else {
        return restored;
    };
    for &source in &sidecar.restore {
        let outcome = match source {
            RestoreSource::Header => match inbound_version_or_repeat(config, request) {
                TagValue::Absent => SourceOutcome::Absent,
                TagValue::Known(version) => SourceOutcome::Restored(version),
                TagValue::Other => SourceOutcome::NotAVersion,
            },
            RestoreSource::Baggage => named(
                config,
                baggage_version(request.header_values(baggage::HEADER)),
            ),
            RestoreSource::Tracestate => named(
                config,
                trace_context::version_member(request.header_values(trace_context::TRACESTATE)),
            ),
            RestoreSource::Trace => {
                let (outcome, header) = remembered(config, sidecar, request, table, observer);
                restored.trace_missed = outcome == SourceOutcome::NotRemembered;
                restored.trace_header = header;
                outcome
            }
        };
        observer.source(source, outcome);
        if let SourceOutcome::Restored(version) = outcome {
            restored.version = version;
            restored.from = RestoredFrom::Source(source);
            return restored;
        }
    }
    restored
}

/// A carried value: absent, a known version, or not one.
fn named(config: &CompiledConfig, value: Option<&[u8]>) -> SourceOutcome {
    match value {
        None => SourceOutcome::Absent,
        Some(value) => match config.version_named(value) {
            Some(version) => SourceOutcome::Restored(version),
            None => SourceOutcome::NotAVersion,
        },
    }
}

/// The `trace` source: the first of the request's trace ids remembered (live) in the table,
/// and the header it came from.
fn remembered<R: RequestView, T: TraceTable, O: RestoreObserver>(
    config: &CompiledConfig,
    sidecar: &Sidecar,
    request: &R,
    table: &T,
    observer: &mut O,
) -> (SourceOutcome, Option<TraceHeader>) {
    let mut now_s = None;
    let mut outcome = SourceOutcome::Absent;
    for (header, id) in trace_ids(request) {
        let key = TraceKey::new(header, id, &sidecar.trace_memory);
        let mut found = Lookup::NotRemembered;
        for slot in key.candidates() {
            found = table.read_slot(slot, |entry| {
                // The clock only for a slot that holds this trace.
                let now = match entry.and_then(decode_entry) {
                    Some((check, _, _)) if check == key.check => {
                        *now_s.get_or_insert_with(|| table.now_s())
                    }
                    _ => 0,
                };
                lookup(config, &sidecar.trace_memory, key, entry, now)
            });
            if found != Lookup::NotRemembered {
                break;
            }
        }
        observer.trace_lookup(header, id, found);
        if let Lookup::Remembered(version) = found {
            return (SourceOutcome::Restored(version), Some(header));
        }
        outcome = SourceOutcome::NotRemembered;
    }
    (outcome, None)
}

enum TagValue {
    Absent,
    Known(VersionId),
    /// Unknown, or sent more than once.
    Other,
}

fn inbound_version_or_repeat<R: RequestView>(config: &CompiledConfig, request: &R) -> TagValue {
    let mut values = request.header_values(&config.tag_header);
    match (values.next(), values.next()) {
        (None, _) => TagValue::Absent,
        (Some(value), None) => config
            .version_named(value)
            .map_or(TagValue::Other, TagValue::Known),
        _ => TagValue::Other,
    }
}

/// The value of the first `canary-version` member across the `baggage` headers (its
/// properties after `;` cut off, white space trimmed).
pub fn baggage_version<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    for line in lines {
        for member in line.split(|&b| b == b',') {
            let member = member.split(|&b| b == b';').next().unwrap_or_default();
            let Some(eq) = member.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = (member.get(..eq)?, member.get(eq + 1..)?);
            if key.trim_ascii() == baggage::MEMBER_KEY.as_bytes() {
                return Some(value.trim_ascii());
            }
        }
    }
    None
}

impl Restore {
    /// A waypoint's decision for a request that arrived with a known tag (SPEC §12): kept,
    /// counted as the `header` source.
    pub fn kept(version: VersionId) -> Restore {
        Restore {
            version,
            from: RestoredFrom::Source(RestoreSource::Header),
            trace_header: None,
            trace_missed: false,
        }
    }

    /// The request headers the filter sets on the outbound call: the tag header (replacing
    /// whatever the app sent; nothing to write when it already is exactly the version), then
    /// `baggage` and `tracestate` when configured, as in gateway mode.
    pub fn request_effects<'a, R: RequestView>(
        &'a self,
        config: &'a CompiledConfig,
        request: &'a R,
    ) -> impl Iterator<Item = SetHeader<'a>> + 'a {
        let version = config.version_name(self.version);
        let mut tags = request.header_values(&config.tag_header);
        let tag_mode = match (tags.next(), tags.next()) {
            (None, _) => SetMode::Add,
            (Some(value), None) if value == version.as_bytes() => SetMode::Unchanged,
            _ => SetMode::Replace,
        };
        let tag = SetHeader {
            name: &config.tag_header,
            value: SetValue::Text(version),
            mode: tag_mode,
        };
        let baggage = config
            .baggage
            .then(|| baggage_effect(request, version, config.tag_header == baggage::HEADER));
        let tracestate = tracestate_effect(
            config,
            request,
            version,
            config.tag_header == trace_context::TRACESTATE,
        );
        std::iter::once(tag).chain(baggage).chain(tracestate)
    }

    /// `response_header` with the restored version, on the response the app receives.
    pub fn response_effects<'a>(
        &'a self,
        config: &'a CompiledConfig,
    ) -> impl Iterator<Item = AddHeader<'a>> + 'a {
        config
            .response_header
            .as_deref()
            .map(|name| AddHeader {
                name,
                value: AddValue::Text(config.version_name(self.version)),
            })
            .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_validated_as_w3c_says() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let ok = format!("00-{id}-00f067aa0ba902b7-01");
        assert_eq!(traceparent_trace_id(ok.as_bytes()), Some(id.as_bytes()));
        let future = format!("01-{id}-00f067aa0ba902b7-01-extra");
        assert_eq!(traceparent_trace_id(future.as_bytes()), Some(id.as_bytes()));
        for bad in [
            format!("00-{id}-00f067aa0ba902b7-01-extra"),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{id}-0000000000000000-01"),
            format!("00-{id}-00f067aa0ba902b7-0"),
            format!("00_{id}-00f067aa0ba902b7-01"),
            format!("01-{id}-00f067aa0ba902b7-01x"),
            String::new(),
        ] {
            assert_eq!(traceparent_trace_id(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn b3_and_request_ids() {
        assert!(b3_trace_id(b"463ac35c9f6413ad").is_some());
        assert!(b3_trace_id(b"463AC35C9F6413AD48485A3953BB6124").is_some());
        assert!(b3_trace_id(b"463ac35c9f6413a").is_none());
        assert!(b3_trace_id(b"0000000000000000").is_none());
        assert!(b3_trace_id(b"463ac35c9f6413ag").is_none());
        assert_eq!(request_id(b" abc-1 "), Some(&b"abc-1"[..]));
        assert!(request_id(b"").is_none());
        assert!(request_id(b"a b").is_none());
        assert!(request_id("x".repeat(MAX_REQUEST_ID + 1).as_bytes()).is_none());
    }

    #[test]
    fn slot_keys_and_entries_round_trip() {
        assert_eq!(SlotKey::new(0).as_str(), "canary-tagger.trace.0");
        assert_eq!(SlotKey::new(65535).as_str(), "canary-tagger.trace.65535");
        assert_eq!(
            SlotKey::new(u32::MAX).as_str(),
            "canary-tagger.trace.4294967295"
        );
        let memory = TraceMemory {
            entries: 8,
            ttl_s: 300,
        };
        let key = TraceKey::new(TraceHeader::B3TraceId, b"463AC35C9F6413AD", &memory);
        assert_eq!(
            key,
            TraceKey::new(TraceHeader::TraceParent, b"463ac35c9f6413ad", &memory)
        );
        assert!(key.slot < 8 && key.alt < 8);
        let mut buf = [0u8; MAX_ENTRY];
        let entry = encode_entry(key, 1_000, "v2", &mut buf).to_vec();
        assert_eq!(decode_entry(&entry), Some((key.check, 1_000, &b"v2"[..])));
        assert_eq!(decode_entry(&entry[..16]), None);
    }

    #[test]
    fn directions() {
        let value = |n: i64| n.to_le_bytes();
        assert_eq!(
            Direction::from_property(Some(&value(1))),
            Direction::Inbound
        );
        assert_eq!(
            Direction::from_property(Some(&value(2))),
            Direction::Outbound
        );
        assert_eq!(
            Direction::from_property(Some(&value(0))),
            Direction::Unspecified
        );
        assert_eq!(
            Direction::from_property(Some(b"\x01")),
            Direction::Unspecified
        );
        assert_eq!(Direction::from_property(None), Direction::Unspecified);
    }

    #[test]
    fn baggage_member() {
        let lines = [&b"a=1, canary-version = v2 ;p=x"[..], b"canary-version=v3"];
        assert_eq!(baggage_version(lines.into_iter()), Some(&b"v2"[..]));
        assert_eq!(
            baggage_version([&b"canary-versions=v2,x"[..]].into_iter()),
            None
        );
    }
}
