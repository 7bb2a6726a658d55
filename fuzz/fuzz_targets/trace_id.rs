//! Trace ids (sidecar mode): raw header values never panic; a `traceparent` is accepted
//! exactly when a plain reading of W3C Trace Context accepts it, and its trace id is the
//! second field; B3 ids and request ids are what they claim; every id hashes to a slot of
//! the table, and an entry written for it reads back as that id's and no other's.
#![no_main]

use canary_tagger::config::TraceMemory;
use canary_tagger::sidecar::{self, TraceHeader, TraceKey};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::TraceIdInput;
use libfuzzer_sys::fuzz_target;

/// W3C Trace Context §3.2, read field by field.
fn reference_traceparent(value: &[u8]) -> Option<&[u8]> {
    let lower_hex = |s: &[u8], len: usize| {
        s.len() == len
            && s.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let nonzero = |s: &[u8]| s.iter().any(|&b| b != b'0');
    let value = value.trim_ascii();
    let parts: Vec<&[u8]> = value.split(|&b| b == b'-').collect();
    let (version, trace, parent) = (parts.first()?, parts.get(1)?, parts.get(2)?);
    let flags = parts.get(3)?;
    let ok = lower_hex(version, 2)
        && *version != b"ff"
        && lower_hex(trace, 32)
        && nonzero(trace)
        && lower_hex(parent, 16)
        && nonzero(parent)
        && lower_hex(flags, 2)
        && (parts.len() == 4 || *version != b"00");
    ok.then_some(*trace)
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<TraceIdInput>(data) else {
        return;
    };
    let memory = TraceMemory {
        entries: u32::from(input.entries).max(1),
        ttl_s: 300,
    };
    let value = input.value.0.as_slice();
    assert_eq!(
        sidecar::traceparent_trace_id(value),
        reference_traceparent(value),
        "{:?}",
        String::from_utf8_lossy(value)
    );
    if let Some(id) = sidecar::b3_trace_id(value) {
        assert!(matches!(id.len(), 16 | 32) && id.iter().all(u8::is_ascii_hexdigit));
    }
    if let Some(id) = sidecar::request_id(value) {
        assert!(!id.is_empty() && id.len() <= sidecar::MAX_REQUEST_ID);
    }
    for header in TraceHeader::ALL {
        let Some(id) = header.trace_id(value) else {
            continue;
        };
        let key = TraceKey::new(header, id, &memory);
        assert!(key.slot < memory.entries);
        let mut buf = [0u8; sidecar::MAX_ENTRY];
        let entry = sidecar::encode_entry(key, input.now_s, "v2", &mut buf);
        assert_eq!(
            sidecar::decode_entry(entry),
            Some((key.check, input.now_s, &b"v2"[..]))
        );
        // Another id lands elsewhere or is told apart by its hash (64 bits: a collision
        // here would be news).
        if let Some(other) = header.trace_id(&input.other.0) {
            if other != id && !(header != TraceHeader::RequestId && other.eq_ignore_ascii_case(id))
            {
                assert_ne!(TraceKey::new(header, other, &memory).check, key.check);
            }
        }
    }
});
