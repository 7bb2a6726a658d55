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
//!
//! By job: [`trace_headers`] reads the trace ids a request carries, [`table`] is the trace
//! table (its keys, slots and entries), [`outbound`] decides an outbound call's version from
//! the `restore` sources, and [`effects`] lists what the filter writes for it; this file
//! has the listener's direction and the inbound decision.

mod effects;
mod outbound;
mod table;
mod trace_headers;

pub use outbound::{
    baggage_version, restore, restore_observed, Restore, RestoreObserver, RestoredFrom,
    SourceOutcome, Unobserved,
};
pub use table::{
    decode_entry, encode_entry, lookup, slot_to_write, Lookup, SlotKey, TraceKey, TraceTable,
    MAX_ENTRY, SLOT_KEY_PREFIX,
};
pub use trace_headers::{
    b3_trace_id, request_id, trace_ids, traceparent_trace_id, TraceHeader, MAX_REQUEST_ID,
};

use crate::config::{CompiledConfig, VersionId};
use crate::request::RequestView;

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

/// The version an inbound request carries: its tag header, sent once, naming a known
/// version. `None`: nothing to remember (the request passes as it is either way).
pub fn inbound_version<R: RequestView>(config: &CompiledConfig, request: &R) -> Option<VersionId> {
    let mut values = request.header_values(&config.tag_header);
    match (values.next(), values.next()) {
        (Some(value), None) => config.version_named(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
