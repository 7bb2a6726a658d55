//! The `request` target's input: a request as a client could send it through Envoy, built
//! from parts (headers with raw-byte names and values, repeated headers, cookies,
//! `x-forwarded-for`, a path with a query, `baggage`, a sticky cookie, a client-sent tag,
//! the peer address), and the two readers the engine decides over.

use arbitrary::Arbitrary;
use canary_tagger::request::{serialize_header_map, OwnedRequest, SerializedRequest};

use crate::input::{encode_variant_with, AddressForm, Bytes, Encode, Ip, Pad, Text};

/// A header name: one the fixed configurations read, or raw bytes (any case, any byte).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum HeaderName {
    Known(u8),
    Raw(Bytes),
}

/// Header names the configurations, the filter and Envoy use.
pub const HEADER_NAMES: &[&str] = &[
    "user-agent",
    "content-type",
    "grpcsvc",
    "x-user-id",
    "x-tier",
    "x-tenant",
    "x-region",
    "x-client-version",
    "x-canary-version",
    "x-route-tag",
    "cookie",
    "x-forwarded-for",
    "baggage",
    ":path",
    ":method",
    ":authority",
    ":scheme",
    "Cookie",
    "X-Canary-Version",
    "traceparent",
    "x-b3-traceid",
    "x-request-id",
];

impl HeaderName {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            HeaderName::Known(index) => HEADER_NAMES
                .get(usize::from(*index) % HEADER_NAMES.len())
                .map(|name| name.as_bytes().to_vec())
                .unwrap_or_default(),
            HeaderName::Raw(bytes) => bytes.0.clone(),
        }
    }
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: Text,
}

/// `:path`: a path, then query parameters (percent-encoded or written raw), then a fragment.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub base: Text,
    pub query: Vec<QueryParam>,
    pub fragment: Option<Text>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct QueryParam {
    pub name: Text,
    pub value: Option<Text>,
    pub encode: bool,
}

/// One `cookie` header: `name=value` pairs joined by `;` with optional padding.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct CookieHeader {
    pub pairs: Vec<(Text, Text)>,
    pub pad: Pad,
}

/// One `x-forwarded-for` header.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ForwardedFor {
    pub entries: Vec<XffEntry>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum XffEntry {
    Address { ip: Ip, form: AddressForm, pad: Pad },
    Raw(Bytes),
}

impl XffEntry {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            XffEntry::Address { ip, form, pad } => {
                let mut out = pad.bytes().to_vec();
                out.extend_from_slice(form.write(ip.addr()).as_bytes());
                out.extend_from_slice(pad.bytes());
                out
            }
            XffEntry::Raw(bytes) => bytes.0.clone(),
        }
    }
}

/// One `baggage` header: W3C members `key=value;properties`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct BaggageHeader {
    pub members: Vec<BaggageMember>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct BaggageMember {
    pub key: Text,
    pub value: Text,
    pub properties: Option<Text>,
    pub pad: Pad,
}

impl BaggageMember {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.pad.bytes().to_vec();
        out.extend(self.key.bytes());
        out.push(b'=');
        out.extend(self.value.bytes());
        if let Some(properties) = &self.properties {
            out.push(b';');
            out.extend(properties.bytes());
        }
        out.extend_from_slice(self.pad.bytes());
        out
    }
}

/// The downstream peer, as Envoy's `source.address` reports it (or garbage).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Address { ip: Ip, port: u16 },
    Raw(Bytes),
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct FuzzRequest {
    pub path: Option<Path>,
    /// Any headers, in order (names may repeat, and may be `cookie` or the tag header too).
    pub headers: Vec<Header>,
    pub cookies: Vec<CookieHeader>,
    pub forwarded_for: Vec<ForwardedFor>,
    pub baggage: Vec<BaggageHeader>,
    /// A sticky cookie value, sent under every sticky cookie name the configs use.
    pub sticky: Option<Text>,
    /// Client-sent tag values, under every tag header name the configs use.
    pub tags: Vec<Text>,
    pub peer: Option<Peer>,
    pub entropy: u128,
}

/// The sticky cookie and tag header names of the fixed configurations.
const STICKY_COOKIES: &[&str] = &["canary-uid", "sid"];
const TAG_HEADERS: &[&str] = &["x-canary-version", "x-route-tag"];

impl FuzzRequest {
    /// The header map in order, as Envoy would hand it over.
    pub fn header_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut pairs = Vec::new();
        if let Some(path) = &self.path {
            pairs.push((b":path".to_vec(), path.bytes()));
        }
        for header in &self.headers {
            pairs.push((header.name.bytes(), header.value.bytes()));
        }
        for cookie in &self.cookies {
            let mut value = Vec::new();
            for (i, (name, text)) in cookie.pairs.iter().enumerate() {
                if i > 0 {
                    value.push(b';');
                    value.extend_from_slice(cookie.pad.bytes());
                }
                value.extend(name.bytes());
                value.push(b'=');
                value.extend(text.bytes());
            }
            pairs.push((b"cookie".to_vec(), value));
        }
        for xff in &self.forwarded_for {
            let entries: Vec<Vec<u8>> = xff.entries.iter().map(XffEntry::bytes).collect();
            pairs.push((b"x-forwarded-for".to_vec(), entries.join(&b","[..])));
        }
        for baggage in &self.baggage {
            let members: Vec<Vec<u8>> = baggage.members.iter().map(BaggageMember::bytes).collect();
            pairs.push((b"baggage".to_vec(), members.join(&b","[..])));
        }
        if let Some(sticky) = &self.sticky {
            for name in STICKY_COOKIES {
                let mut value = format!("{name}=").into_bytes();
                value.extend(sticky.bytes());
                pairs.push((b"cookie".to_vec(), value));
            }
        }
        for tag in &self.tags {
            for name in TAG_HEADERS {
                pairs.push((name.as_bytes().to_vec(), tag.bytes()));
            }
        }
        pairs
    }

    pub fn peer_bytes(&self) -> Option<Vec<u8>> {
        match self.peer.as_ref()? {
            Peer::Address { ip, port } => Some(
                std::net::SocketAddr::new(ip.addr(), *port)
                    .to_string()
                    .into_bytes(),
            ),
            Peer::Raw(bytes) => Some(bytes.0.clone()),
        }
    }
}

impl Path {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.base.bytes();
        for (i, param) in self.query.iter().enumerate() {
            out.push(if i == 0 { b'?' } else { b'&' });
            let write = |out: &mut Vec<u8>, text: &Text| {
                if param.encode {
                    out.extend(crate::percent_encode(&text.bytes()));
                } else {
                    out.extend(text.bytes());
                }
            };
            write(&mut out, &param.name);
            if let Some(value) = &param.value {
                out.push(b'=');
                write(&mut out, value);
            }
        }
        if let Some(fragment) = &self.fragment {
            out.push(b'#');
            out.extend(fragment.bytes());
        }
        out
    }
}

// ---------------------------------------------------------------------------- readers

/// The serialized header map of `pairs`, read by the filter's reader with `peer` as the
/// `source.address` property. With [`map_reader`], the one place the fuzz targets
/// construct the filter's reader: adapt here when its constructor changes.
pub fn serialized_request(
    pairs: &[(Vec<u8>, Vec<u8>)],
    peer: Option<Vec<u8>>,
) -> SerializedRequest {
    let map = serialize_header_map(pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
        .unwrap_or_default();
    map_reader(map, peer)
}

/// The filter's reader over a serialized header map as it came from the host.
pub fn map_reader(map: Vec<u8>, peer: Option<Vec<u8>>) -> SerializedRequest {
    PEER.with(|current| *current.borrow_mut() = peer);
    SerializedRequest::new(map, current_peer)
}

thread_local! {
    /// The peer of the request being decided (the reader takes a plain `fn` to fetch it).
    static PEER: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

fn current_peer() -> Option<Vec<u8>> {
    PEER.with(|current| current.borrow().clone())
}

/// The same request as an [`OwnedRequest`]. Envoy hands header names over lower-case; a
/// name that is not lower-case UTF-8 is one the engine never asks for, so it is left out
/// (the engine's answer must not depend on it). A peer that is not UTF-8 is no address.
pub fn owned_request(pairs: &[(Vec<u8>, Vec<u8>)], peer: Option<&[u8]>) -> OwnedRequest {
    let mut request = OwnedRequest::new();
    for (name, value) in pairs {
        match std::str::from_utf8(name) {
            Ok(name) if !name.bytes().any(|b| b.is_ascii_uppercase()) => {
                request = request.header(name, value);
            }
            _ => {}
        }
    }
    match peer.map(std::str::from_utf8) {
        Some(Ok(peer)) => request.peer(peer),
        _ => request,
    }
}

// ---------------------------------------------------------------------------- seeds

impl FuzzRequest {
    /// A request of the test tables: its headers as raw pairs, its peer as raw bytes.
    pub fn from_pairs(pairs: &[(Vec<u8>, Vec<u8>)], peer: Option<Vec<u8>>) -> FuzzRequest {
        FuzzRequest {
            path: None,
            headers: pairs
                .iter()
                .map(|(name, value)| Header {
                    name: HeaderName::Raw(Bytes(name.clone())),
                    value: Text::Raw(Bytes(value.clone())),
                })
                .collect(),
            cookies: Vec::new(),
            forwarded_for: Vec::new(),
            baggage: Vec::new(),
            sticky: None,
            tags: Vec::new(),
            peer: peer.map(|bytes| Peer::Raw(Bytes(bytes))),
            entropy: 0,
        }
    }
}

/// Seeds are built only from raw headers and a raw peer (see [`FuzzRequest::from_pairs`]);
/// the structured parts are for the fuzzer to fill in, so they encode as empty.
impl Encode for FuzzRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        None::<u8>.encode(out); // path
        self.headers.encode(out);
        Vec::<u8>::new().encode(out); // cookies
        Vec::<u8>::new().encode(out); // forwarded_for
        Vec::<u8>::new().encode(out); // baggage
        None::<u8>.encode(out); // sticky
        Vec::<u8>::new().encode(out); // tags
        match &self.peer {
            Some(Peer::Raw(bytes)) => {
                true.encode(out);
                encode_variant_with(1, 2, bytes, out);
            }
            _ => false.encode(out),
        }
        self.entropy.encode(out);
    }
}

impl Encode for HeaderName {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            HeaderName::Known(index) => encode_variant_with(0, 2, index, out),
            HeaderName::Raw(bytes) => encode_variant_with(1, 2, bytes, out),
        }
    }
}

impl Encode for Header {
    fn encode(&self, out: &mut Vec<u8>) {
        self.name.encode(out);
        self.value.encode(out);
    }
}
