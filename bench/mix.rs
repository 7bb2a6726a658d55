//! The benchmark's request mix (`bench/requests.json`) as engine requests, shared by
//! `benches/engine.rs` and `tests/alloc_count.rs` (included with `#[path]`).
//!
//! Fixture code: a malformed file panics with a message naming it.
//!
//! Each request is built as the filter sees it behind Envoy: pseudo-headers, the client's
//! headers, and `x-forwarded-for` with the peer Envoy appended (`use_remote_address`).

// Each includer uses a different part of it.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use canary_tagger::request::{OwnedRequest, SerializedRequest};

pub const REQUESTS_JSON: &str = include_str!("requests.json");
pub const SEED_CONFIG: &str = include_str!("configs/seed.json");
pub const RULES50_CONFIG: &str = include_str!("configs/rules50.json");
/// The address Envoy's listener saw (the load balancer in front of the gateway).
pub const PEER: &str = "10.0.0.7:41852";

pub struct MixRequest {
    pub name: String,
    /// How often the template appears in one cycle of the mix.
    pub repeat: usize,
    /// The seed config's decision: a version name, or `split` (android 50/50).
    pub seed: String,
    /// The one template h2load sends: the seed's deepest common path.
    pub h2load: bool,
    pub request: OwnedRequest,
}

/// The templates of `bench/requests.json`, in file order. Panics on a malformed file
/// (benchmark and test code only).
pub fn templates() -> Vec<MixRequest> {
    let doc: serde_json::Value = serde_json::from_str(REQUESTS_JSON).expect("bench/requests.json");
    let list = doc["requests"].as_array().expect("requests array");
    list.iter()
        .map(|r| {
            let path = r["path"].as_str().expect("path");
            let mut request = OwnedRequest::new()
                .header(":method", "GET")
                .header(":scheme", "http")
                .header(":authority", "weather.example.com")
                .path(path);
            for pair in r["headers"].as_array().expect("headers") {
                let name = pair[0].as_str().expect("header name");
                let value = pair[1].as_str().expect("header value");
                if name == "x-forwarded-for" {
                    request = request.header(name, format!("{value},10.0.0.7"));
                } else {
                    request = request.header(name, value);
                }
            }
            request = request
                .header("accept-encoding", "gzip, deflate, br")
                .header("x-request-id", "4f1c2a6e-8d1b-4c55-9d8e-6a0e2b3f9c71")
                .header("x-forwarded-proto", "http")
                .peer(PEER);
            MixRequest {
                name: r["name"].as_str().expect("name").to_string(),
                repeat: usize::try_from(r["repeat"].as_u64().expect("repeat")).expect("repeat"),
                seed: r["seed"].as_str().expect("seed").to_string(),
                h2load: r["h2load"].as_bool().unwrap_or(false),
                request,
            }
        })
        .collect()
}

/// One cycle of the mix: every template `repeat` times, interleaved round-robin so that
/// consecutive decisions differ (as on a gateway).
pub fn cycle(templates: &[MixRequest]) -> Vec<&OwnedRequest> {
    let mut out = Vec::new();
    let max = templates.iter().map(|t| t.repeat).max().unwrap_or(0);
    for round in 0..max {
        for t in templates {
            if round < t.repeat {
                out.push(&t.request);
            }
        }
    }
    out
}

/// `request` as the filter receives it from Envoy: the header map in the proxy-wasm
/// serialized form (u32 count; count × (u32 name length, u32 value length); then each name
/// and value followed by a NUL), read in place by `SerializedRequest`.
pub fn serialized(request: &OwnedRequest) -> SerializedRequest {
    let headers = request.headers();
    let mut map = Vec::new();
    map.extend_from_slice(&u32::try_from(headers.len()).unwrap().to_le_bytes());
    for (name, value) in headers {
        map.extend_from_slice(&u32::try_from(name.len()).unwrap().to_le_bytes());
        map.extend_from_slice(&u32::try_from(value.len()).unwrap().to_le_bytes());
    }
    for (name, value) in headers {
        map.extend_from_slice(name.as_bytes());
        map.push(0);
        map.extend_from_slice(value);
        map.push(0);
    }
    SerializedRequest::new(map, || Some(PEER.as_bytes().to_vec()))
}
