//! Inputs of the targets that fuzz one parser each: raw bytes (what a client may send) and
//! a well-formed structure with a known expected answer (round trips and references).

use arbitrary::Arbitrary;

use crate::input::{AddressForm, Bytes, Encode, Ip, Pad, Text};
use crate::request::{BaggageMember, XffEntry};

/// `x-forwarded-for`: raw header values, and well-formed lists whose chosen entry is known.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct XffInput {
    pub trusted_hops: u8,
    pub values: Vec<Bytes>,
    pub headers: Vec<Vec<XffEntry>>,
}

/// `cookie`: raw header values, and headers built from pairs.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct CookieInput {
    pub name: Text,
    pub values: Vec<Bytes>,
    pub headers: Vec<(Vec<(Text, Text)>, Pad)>,
}

/// `:path` query parameters: a raw path, and a path built from encoded parameters.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct QueryInput {
    pub name: Text,
    pub path: Bytes,
    pub params: Vec<(Text, Text)>,
    pub fragment: Option<Text>,
}

/// `baggage`: raw header values and structured members, rewritten with a version.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct BaggageInput {
    pub version: u8,
    pub values: Vec<Bytes>,
    pub headers: Vec<Vec<BaggageMember>>,
}

/// `tracestate`: raw header values, rewritten with a version and read back.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct TracestateInput {
    pub version: u8,
    pub values: Vec<Bytes>,
}

/// A `tracestate` input: these raw values, the first version.
pub fn tracestate_seed(values: &[&[u8]]) -> Vec<u8> {
    let mut out = 0u8.encoded();
    raw_values(values).encode(&mut out);
    out
}

/// Version names as a configuration may spell them (`[A-Za-z0-9._-]{1,63}`).
pub const VERSIONS: &[&str] = &["v1", "canary", "2024.06-rc_1", "V-2.x"];

/// CIDR text: raw, and a range built from an address and a prefix length.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct CidrInput {
    pub text: Bytes,
    pub network: Ip,
    pub prefix: u8,
    pub client: Ip,
}

/// Address text: raw, and an address written in one of the forms Envoy and XFF use.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct AddressInput {
    pub text: Bytes,
    pub ip: Ip,
    pub form: AddressForm,
    pub pad: Pad,
}

// ---------------------------------------------------------------------------- seeds
// A seed is raw text only (from the test tables); the structured half is the fuzzer's.

/// An empty `Vec` of any element type, or `None`: one `false`.
const NOTHING: bool = false;

pub fn xff_seed(trusted_hops: u8, values: &[&[u8]]) -> Vec<u8> {
    let mut out = trusted_hops.encoded();
    raw_values(values).encode(&mut out);
    NOTHING.encode(&mut out);
    out
}

pub fn cookie_seed(name: &[u8], values: &[&[u8]]) -> Vec<u8> {
    let mut out = raw_text(name).encoded();
    raw_values(values).encode(&mut out);
    NOTHING.encode(&mut out);
    out
}

pub fn query_seed(name: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = raw_text(name).encoded();
    Bytes(path.to_vec()).encode(&mut out);
    NOTHING.encode(&mut out);
    NOTHING.encode(&mut out);
    out
}

pub fn baggage_seed(values: &[&[u8]]) -> Vec<u8> {
    let mut out = 0u8.encoded();
    raw_values(values).encode(&mut out);
    NOTHING.encode(&mut out);
    out
}

/// The structured half is all zero bytes: `0.0.0.0`, prefix 0, client `0.0.0.0`.
pub fn cidr_seed(text: &[u8]) -> Vec<u8> {
    let mut out = Bytes(text.to_vec()).encoded();
    out.extend_from_slice(&[0; 4 + 4 + 1 + 4 + 4]);
    out
}

pub fn address_seed(text: &[u8]) -> Vec<u8> {
    let mut out = Bytes(text.to_vec()).encoded();
    out.extend_from_slice(&[0; 4 + 4 + 4 + 4]);
    out
}

/// A `trace_id` input: `value` and `other` raw, a table of 7 slots, time 1000.
pub fn trace_id_seed(value: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = Bytes(value.to_vec()).encoded();
    out.extend(Bytes(other.to_vec()).encoded());
    out.extend_from_slice(&7u16.to_le_bytes());
    out.extend_from_slice(&1000u64.to_le_bytes());
    out
}

/// Header values the `trace_id` seeds start from: valid ids of each kind and near misses.
pub const TRACE_ID_SEEDS: &[&str] = &[
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "463ac35c9f6413ad",
    "463ac35c9f6413ad48485a3953bb6124",
    "9f1e6c1a-0a7e-4c5e-9d1b-2f0c7a3e5b11",
];

fn raw_values(values: &[&[u8]]) -> Vec<Bytes> {
    values.iter().map(|value| Bytes(value.to_vec())).collect()
}

fn raw_text(bytes: &[u8]) -> Text {
    Text::Raw(Bytes(bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::decode;

    #[test]
    fn seeds_decode_to_their_raw_text() {
        let xff: XffInput = decode(&xff_seed(1, &[b"1.2.3.4, 5.6.7.8", b"::1"])).unwrap();
        assert_eq!(xff.trusted_hops, 1);
        assert_eq!(xff.values, raw_values(&[b"1.2.3.4, 5.6.7.8", b"::1"]));
        assert!(xff.headers.is_empty());
        let cookie: CookieInput = decode(&cookie_seed(b"uid", &[b"uid=1; a=2"])).unwrap();
        assert_eq!((cookie.name, cookie.values.len()), (raw_text(b"uid"), 1));
        let query: QueryInput = decode(&query_seed(b"beta", b"/p?beta=0")).unwrap();
        assert_eq!(query.path.0, b"/p?beta=0");
        let baggage: BaggageInput = decode(&baggage_seed(&[b"a=1"])).unwrap();
        assert_eq!(baggage.values, raw_values(&[b"a=1"]));
        let trace: TraceIdInput = decode(&trace_id_seed(b"abc", b"def")).unwrap();
        assert_eq!(
            (
                trace.value.0.as_slice(),
                trace.other.0.as_slice(),
                trace.entries,
                trace.now_s
            ),
            (&b"abc"[..], &b"def"[..], 7, 1000)
        );
        let cidr: CidrInput = decode(&cidr_seed(b"10.0.0.0/8")).unwrap();
        assert_eq!(
            (cidr.text.0.as_slice(), cidr.prefix),
            (&b"10.0.0.0/8"[..], 0)
        );
        let address: AddressInput = decode(&address_seed(b"[::1]:80")).unwrap();
        assert_eq!(address.text.0, b"[::1]:80");
    }
}

/// Trace ids (sidecar mode): a header value, another to tell apart, a table size, a time.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct TraceIdInput {
    pub value: Bytes,
    pub other: Bytes,
    pub entries: u16,
    pub now_s: u64,
}
