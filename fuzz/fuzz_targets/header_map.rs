//! Arbitrary bytes as the serialized header map Envoy hands the filter (a malformed or
//! lying map included): reading it and deciding never panics and yields a known version,
//! and what is read, written again in the same form, reads back the same.
#![no_main]

use canary_tagger::engine;
use canary_tagger::request::{RequestView, SerializedRequest};
use canary_tagger_fuzz::request::{map_reader, serialized_request};
use canary_tagger_fuzz::{check_decision, check_sidecar, fixed_configs};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    ":path",
    "cookie",
    "x-forwarded-for",
    "user-agent",
    "baggage",
    "x-canary-version",
];

fuzz_target!(|map: &[u8]| {
    let request = map_reader(map.to_vec(), Some(b"10.0.0.7:41852".to_vec()));
    let read: Vec<(Vec<u8>, Vec<u8>)> = NAMES
        .iter()
        .flat_map(|name| {
            request
                .header_values(name)
                .map(|v| (name.as_bytes().to_vec(), v.to_vec()))
        })
        .collect();
    let again = serialized_request(&read, None);
    for name in NAMES {
        let first: Vec<&[u8]> = request.header_values(name).collect();
        let second: Vec<&[u8]> = again.header_values(name).collect();
        assert_eq!(first, second, "{name}");
    }
    for (_, config) in fixed_configs() {
        if config.sidecar().is_some() {
            check_sidecar(config, &request, None::<&SerializedRequest>);
            continue;
        }
        let decision = engine::decide(config, &request, 7);
        check_decision(config, &decision);
    }
});
