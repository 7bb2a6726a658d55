//! `x-forwarded-for`: the client is the entry `trusted_hops` from the right across every
//! header (SPEC §1.1). Raw values never panic and an answer is always the address the
//! chosen entry spells; for well-formed lists the answer is the address that was written
//! there (IPv4-mapped IPv6 as IPv4), or `None` past the left end.
#![no_main]

use canary_tagger::net::{canonical, client_from_xff, parse_address};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::XffInput;
use canary_tagger_fuzz::request::XffEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<XffInput>(data) else {
        return;
    };
    let hops = u32::from(input.trusted_hops);

    let values: Vec<&[u8]> = input.values.iter().map(|v| v.0.as_slice()).collect();
    let entries: Vec<&[u8]> = values
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .collect();
    let chosen = entries
        .len()
        .checked_sub(usize::from(input.trusted_hops) + 1)
        .and_then(|i| entries.get(i));
    let answer = client_from_xff(values.iter().copied(), hops);
    assert_eq!(answer, chosen.and_then(|entry| parse_address(entry)));

    // Well-formed lists, one per header; raw entries keep no comma (it would split them).
    let headers: Vec<Vec<u8>> = input
        .headers
        .iter()
        .map(|entries| {
            let written: Vec<Vec<u8>> = entries
                .iter()
                .map(|entry| {
                    let mut bytes = entry.bytes();
                    bytes.retain(|&b| b != b',');
                    bytes
                })
                .collect();
            written.join(&b","[..])
        })
        .collect();
    let entries: Vec<&XffEntry> = input
        .headers
        .iter()
        .filter(|entries| !entries.is_empty())
        .flatten()
        .collect();
    // An empty header is one empty entry.
    let empty_headers = input.headers.iter().filter(|e| e.is_empty()).count();
    if empty_headers == 0 {
        let chosen = entries
            .len()
            .checked_sub(usize::from(input.trusted_hops) + 1)
            .and_then(|i| entries.get(i));
        let answer = client_from_xff(headers.iter().map(Vec::as_slice), hops);
        match chosen {
            None => assert_eq!(answer, None),
            Some(XffEntry::Address { ip, .. }) => assert_eq!(answer, Some(canonical(ip.addr()))),
            Some(XffEntry::Raw(_)) => {}
        }
    }
});
