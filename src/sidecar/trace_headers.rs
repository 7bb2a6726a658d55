//! The trace ids a request carries: which headers hold one, and when a value is one.

use crate::request::RequestView;

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
}
