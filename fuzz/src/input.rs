//! Building blocks of the structured fuzz inputs, decoded from the fuzzer's bytes by the
//! `arbitrary` crate, and [`Encode`]: the inverse, so that seed requests taken from the test
//! tables can be written as inputs the targets decode back to exactly those requests.
//!
//! `arbitrary`'s layout (1.x): integers little-endian, `bool` = byte & 1, `Option` = bool
//! then value, `Vec` = (true, element)* false, an enum's variant = `(u32 * count) >> 32`,
//! struct fields in order. [`Bytes`] is ours: a u16 length, then that many bytes (kept
//! contiguous so libFuzzer's dictionary and comparison hints land inside one value).

use arbitrary::{Arbitrary, Result, Unstructured};

/// Raw bytes: a u16 little-endian length (clamped to what is left), then the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = usize::from(u16::arbitrary(u)?).min(u.len());
        Ok(Bytes(u.bytes(len)?.to_vec()))
    }
}

/// Words the fixed configurations and the parsers care about, so that the fuzzer reaches a
/// matching rule without having to guess its literal first.
pub const WORDS: &[&str] = &[
    "v1",
    "v2",
    "v3",
    "v4",
    "stable",
    "canary",
    "gold",
    "silver",
    "tester",
    "user",
    "uid",
    "pick",
    "plan",
    "pro",
    "canary-uid",
    "sid",
    "canary-version",
    "beta",
    "0",
    "1",
    "Chrome",
    "Android",
    "Mozilla/5.0 (Linux; Android 14) Chrome/124.0",
    "application/grpc",
    "application/grpc+proto",
    "grpcsvc",
    "campaign",
    "spring-04",
    "tenant-01",
    "eu-05",
    "%",
    "%2",
    "%zz",
    "+",
    "=",
    ";",
    ",",
    " ",
    "\t",
    "",
    // Trace context (sidecar mode): a whole traceparent, its pieces, a B3 id.
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "463ac35c9f6413ad",
    "00-",
    "-01",
    "canary-version=v2",
];

/// A word of [`WORDS`] or raw bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Text {
    Word(u8),
    Raw(Bytes),
}

impl Text {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Text::Word(index) => {
                let word = WORDS
                    .get(usize::from(*index) % WORDS.len())
                    .copied()
                    .unwrap_or_default();
                word.as_bytes().to_vec()
            }
            Text::Raw(bytes) => bytes.0.clone(),
        }
    }
}

/// Whitespace around a list member or an address: none, a space, a tab, or raw bytes.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pad {
    None,
    Space,
    Tab,
    Spaces,
}

impl Pad {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Pad::None => b"",
            Pad::Space => b" ",
            Pad::Tab => b"\t",
            Pad::Spaces => b"  ",
        }
    }
}

/// An IP address as the fuzzer picks it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
    /// `::ffff:a.b.c.d`, what a dual-stack listener reports for an IPv4 client.
    Mapped([u8; 4]),
}

impl Ip {
    pub fn addr(self) -> std::net::IpAddr {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        match self {
            Ip::V4(octets) => IpAddr::V4(Ipv4Addr::from(octets)),
            Ip::V6(octets) => IpAddr::V6(Ipv6Addr::from(octets)),
            Ip::Mapped(octets) => IpAddr::V6(Ipv4Addr::from(octets).to_ipv6_mapped()),
        }
    }
}

/// How an address is written: bare, with a port, or bracketed (IPv6).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressForm {
    Bare,
    Port(u16),
    /// `[v6]` (an IPv4 address is written bare).
    Bracketed,
}

impl AddressForm {
    /// `ip` written in this form, as `std` formats addresses.
    pub fn write(self, ip: std::net::IpAddr) -> String {
        match (self, ip) {
            (AddressForm::Bare, ip) => ip.to_string(),
            (AddressForm::Port(port), ip) => std::net::SocketAddr::new(ip, port).to_string(),
            (AddressForm::Bracketed, std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            (AddressForm::Bracketed, ip) => ip.to_string(),
        }
    }
}

/// A fuzz input from bytes, the way every target decodes it (never `take_rest`, so the
/// layout [`Encode`] writes is the one read).
pub fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(data)).ok()
}

// ---------------------------------------------------------------------------- encoding

/// Writes a value in the layout `arbitrary` decodes it from (see the module comment).
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);

    fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// The `u32` that `arbitrary`'s derive turns into variant `index` of `count`.
pub fn encode_variant(index: u32, count: u32, out: &mut Vec<u8>) {
    let raw = (u64::from(index) << 32).div_ceil(u64::from(count));
    u32::try_from(raw).unwrap_or(u32::MAX).encode(out);
}

/// Variant `index` of `count` whose one field is `field`: the variant, then the field.
pub fn encode_variant_with(index: u32, count: u32, field: &impl Encode, out: &mut Vec<u8>) {
    encode_variant(index, count, out);
    field.encode(out);
}

macro_rules! encode_ints {
    ($($ty:ty),*) => {$(
        impl Encode for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
encode_ints!(u8, u16, u32, u64, u128);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => false.encode(out),
            Some(value) => {
                true.encode(out);
                value.encode(out);
            }
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for item in self {
            true.encode(out);
            item.encode(out);
        }
        false.encode(out);
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

impl Encode for Bytes {
    /// Longer values are cut at 65,535 bytes (the seeds are far shorter).
    fn encode(&self, out: &mut Vec<u8>) {
        let len = u16::try_from(self.0.len()).unwrap_or(u16::MAX);
        len.encode(out);
        out.extend_from_slice(self.0.get(..usize::from(len)).unwrap_or_default());
    }
}

impl Encode for Text {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Text::Word(index) => encode_variant_with(0, 2, index, out),
            Text::Raw(bytes) => encode_variant_with(1, 2, bytes, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_decode_to_the_same_values() {
        let text = vec![Text::Word(3), Text::Raw(Bytes(b"a\0b".to_vec()))];
        assert_eq!(decode::<Vec<Text>>(&text.encoded()), Some(text));
        let pairs = vec![(Some(7u16), true), (None, false)];
        assert_eq!(
            decode::<Vec<(Option<u16>, bool)>>(&pairs.encoded()),
            Some(pairs)
        );
        for count in 1..9u32 {
            for index in 0..count {
                let mut out = Vec::new();
                encode_variant(index, count, &mut out);
                let raw = u32::from_le_bytes(out.try_into().unwrap());
                assert_eq!((u64::from(raw) * u64::from(count)) >> 32, u64::from(index));
            }
        }
    }
}
