//! The trace table: a fixed number of slots in proxy-wasm shared data, the two a trace id
//! may live in ([`TraceKey`]), the one an inbound request writes ([`slot_to_write`]), and
//! an entry's bytes ([`encode_entry`], [`decode_entry`], [`lookup`]).

use super::TraceHeader;
use crate::config::{CompiledConfig, TraceMemory, VersionId, MAX_NAME_LEN};
use crate::hash::{fmix64, Fnv1a64};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
