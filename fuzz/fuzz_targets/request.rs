//! A structured request (raw-byte header names and values, repeated headers, cookies, XFF,
//! a path with a query, baggage, a sticky cookie, a client-sent tag, the peer) in Envoy's
//! serialized header-map form, read by the filter's reader and decided under each fixed
//! configuration: never a panic, always one of the configuration's versions, the same
//! answer twice, the same answer from the in-memory reader, and a `baggage` rewrite that
//! keeps every other member. Sidecar-mode configurations: `check_sidecar` (remember, then
//! restore, over an in-memory trace table).
#![no_main]

use canary_tagger::engine;
use canary_tagger::request::RequestView;
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::request::{owned_request, serialized_request, FuzzRequest};
use canary_tagger_fuzz::{
    check_baggage_rewrite, check_decision, check_sidecar, fixed_configs, uses_entropy,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<FuzzRequest>(data) else {
        return;
    };
    let pairs = input.header_pairs();
    let peer = input.peer_bytes();
    let request = serialized_request(&pairs, peer.clone());
    let owned = owned_request(&pairs, peer.as_deref());

    // The reader yields every header it was given, in order, under its name.
    for (name, _) in &pairs {
        if let Ok(name) = std::str::from_utf8(name) {
            let read: Vec<&[u8]> = request.header_values(name).collect();
            let sent: Vec<&[u8]> = pairs
                .iter()
                .filter(|(n, _)| n == name.as_bytes())
                .map(|(_, v)| v.as_slice())
                .collect();
            assert_eq!(read, sent, "header {name:?}");
        }
    }

    for (config_name, config) in fixed_configs() {
        if config.sidecar().is_some() {
            check_sidecar(config, &request, Some(&owned));
            continue;
        }
        let decision = engine::decide(config, &request, input.entropy);
        check_decision(config, &decision);
        let again = engine::decide(config, &request, input.entropy);
        assert_eq!(
            decision, again,
            "{config_name}: two decisions of one request differ"
        );
        let in_memory = engine::decide(config, &owned, input.entropy);
        assert_eq!(
            decision, in_memory,
            "{config_name}: the two readers disagree"
        );
        if !uses_entropy(&decision) {
            let other = engine::decide(config, &request, !input.entropy);
            assert_eq!(
                decision, other,
                "{config_name}: a keyed decision depends on entropy"
            );
        }
        if config.baggage {
            let version = config.version_name(decision.version);
            check_baggage_rewrite(request.header_values("baggage"), version);
        }
    }
});
