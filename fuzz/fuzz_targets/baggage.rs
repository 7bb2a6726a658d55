//! `baggage`: rewriting with a version, over raw values or structured members, re-parses as
//! every other member kept in order plus exactly one `canary-version` member, last.
#![no_main]

use canary_tagger_fuzz::check_baggage_rewrite;
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::{BaggageInput, VERSIONS};
use canary_tagger_fuzz::request::BaggageMember;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<BaggageInput>(data) else {
        return;
    };
    let version = VERSIONS[usize::from(input.version) % VERSIONS.len()];
    check_baggage_rewrite(input.values.iter().map(|v| v.0.as_slice()), version);

    let headers: Vec<Vec<u8>> = input
        .headers
        .iter()
        .map(|members| {
            let written: Vec<Vec<u8>> = members.iter().map(BaggageMember::bytes).collect();
            written.join(&b","[..])
        })
        .collect();
    check_baggage_rewrite(headers.iter().map(Vec::as_slice), version);
});
