//! Address text (Envoy's `source.address`, an XFF entry): `parse_address` agrees with
//! `std::net` on every input — an address, `addr:port`, or `[v6]`, with surrounding
//! ASCII whitespace ignored — and every address written in those forms reads back as
//! itself (IPv4-mapped IPv6 as IPv4). `IpText` writes what `std` writes.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use canary_tagger::net::{canonical, parse_address, IpText};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::AddressInput;
use libfuzzer_sys::fuzz_target;

/// What `std::net` reads in `text`: the reference.
fn std_reading(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?.trim_ascii();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(canonical(ip))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<AddressInput>(data) else {
        return;
    };
    assert_eq!(
        parse_address(&input.text.0),
        std_reading(&input.text.0),
        "{:?}",
        String::from_utf8_lossy(&input.text.0)
    );

    let ip = input.ip.addr();
    let mut text = input.pad.bytes().to_vec();
    text.extend_from_slice(input.form.write(ip).as_bytes());
    text.extend_from_slice(input.pad.bytes());
    assert_eq!(
        parse_address(&text),
        Some(canonical(ip)),
        "{:?}",
        String::from_utf8_lossy(&text)
    );
    assert_eq!(IpText::new(ip).as_bytes(), ip.to_string().as_bytes());
});
