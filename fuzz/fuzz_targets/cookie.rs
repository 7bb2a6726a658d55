//! `cookie` headers: raw values never panic, and every value found is a trimmed piece of
//! one `name=value` pair of a header, with no `;`; headers built from pairs give back
//! exactly the values of the asked name, in order, across several headers.
#![no_main]

use canary_tagger::request::{cookie_values, OwnedRequest};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::CookieInput;
use libfuzzer_sys::fuzz_target;

/// A cookie name as RFC 6265 allows it (an HTTP token).
fn token(bytes: Vec<u8>) -> Vec<u8> {
    bytes
        .into_iter()
        .filter(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        .collect()
}

/// A cookie value with no `;`, no surrounding whitespace.
fn value(bytes: Vec<u8>) -> Vec<u8> {
    let kept: Vec<u8> = bytes.into_iter().filter(|&b| b != b';').collect();
    kept.trim_ascii().to_vec()
}

fn request_of(headers: &[Vec<u8>]) -> OwnedRequest {
    headers
        .iter()
        .fold(OwnedRequest::new(), |r, h| r.header("cookie", h))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<CookieInput>(data) else {
        return;
    };
    let name = input.name.bytes();

    let raw: Vec<Vec<u8>> = input.values.iter().map(|v| v.0.clone()).collect();
    let request = request_of(&raw);
    for found in cookie_values(&request, &name) {
        assert!(!found.contains(&b';'));
        assert_eq!(found, found.trim_ascii());
        let within = raw.iter().any(|header| {
            header.windows(found.len().max(1)).any(|w| w == found) || found.is_empty()
        });
        assert!(
            within,
            "{:?} is in no header",
            String::from_utf8_lossy(found)
        );
    }

    let mut expected = Vec::new();
    let headers: Vec<Vec<u8>> = input
        .headers
        .into_iter()
        .map(|(pairs, pad)| {
            let written: Vec<Vec<u8>> = pairs
                .into_iter()
                .filter_map(|(n, v)| {
                    let (n, v) = (token(n.bytes()), value(v.bytes()));
                    if n.is_empty() {
                        return None;
                    }
                    if n == name {
                        expected.push(v.clone());
                    }
                    Some([&n[..], b"=", &v[..]].concat())
                })
                .collect();
            written.join(&[b";", pad.bytes()].concat()[..])
        })
        .collect();
    let request = request_of(&headers);
    let found: Vec<&[u8]> = cookie_values(&request, &name).collect();
    assert_eq!(
        found,
        expected.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
});
