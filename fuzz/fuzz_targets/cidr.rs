//! CIDR text (`trusted_tag_sources`, `source_ip`): `Cidr::parse` accepts exactly
//! `std`-parsed address + optional `/len` (0..=32 or 0..=128, digits only) with no host
//! bits set, and a range contains exactly the addresses whose first `len` bits equal its
//! own (IPv4-mapped IPv6 clients compared as IPv4).
#![no_main]

use std::net::IpAddr;

use canary_tagger::net::{canonical, Cidr};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::CidrInput;
use libfuzzer_sys::fuzz_target;

/// `(address bits, width, prefix length)` of a range as text, per the rules above.
fn reference(text: &str) -> Option<(u128, u32, u32)> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let (bits, width) = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let len = match len {
        None => width,
        Some(len) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
            let len: u32 = len.parse().ok()?;
            (len <= width).then_some(len)?
        }
        Some(_) => return None,
    };
    let host_bits = if len == width {
        0
    } else {
        bits & (u128::MAX >> (128 - (width - len)))
    };
    (host_bits == 0).then_some((bits, width, len))
}

fn reference_contains((bits, width, len): (u128, u32, u32), client: IpAddr) -> bool {
    let (client_bits, client_width) = match canonical(client) {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let shift = width - len;
    client_width == width && (len == 0 || client_bits >> shift == bits >> shift)
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<CidrInput>(data) else {
        return;
    };
    let client = input.client.addr();
    if let Ok(text) = std::str::from_utf8(&input.text.0) {
        let parsed = Cidr::parse(text);
        let expected = reference(text);
        assert_eq!(parsed.is_ok(), expected.is_some(), "{text:?}: {parsed:?}");
        if let (Ok(cidr), Some(range)) = (parsed, expected) {
            assert_eq!(
                cidr.contains(client),
                reference_contains(range, client),
                "{text:?} {client}"
            );
        }
    }

    // A range written from an address and a length, host bits cleared, parses and contains
    // its own network address.
    let network = input.network.addr();
    let width: u32 = if network.is_ipv4() { 32 } else { 128 };
    let len = u32::from(input.prefix) % (width + 1);
    let masked = match network {
        IpAddr::V4(v4) => {
            IpAddr::V4((u32::from(v4) & u32::MAX.checked_shl(32 - len).unwrap_or(0)).into())
        }
        IpAddr::V6(v6) => {
            IpAddr::V6((u128::from(v6) & u128::MAX.checked_shl(128 - len).unwrap_or(0)).into())
        }
    };
    let text = format!("{masked}/{len}");
    let cidr = Cidr::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    if canonical(masked) == masked {
        assert!(
            cidr.contains(masked),
            "{text} does not contain its own address"
        );
    }
    let range = reference(&text).unwrap_or_else(|| panic!("reference rejects {text}"));
    assert_eq!(
        cidr.contains(client),
        reference_contains(range, client),
        "{text} {client}"
    );
});
