//! Client addresses: CIDR ranges, the peer address, and `x-forwarded-for` (SPEC §1.1).
//!
//! Everything goes through `std::net` types, so IPv4 and IPv6 (`[v6]:port`) parse alike.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// An address range such as `10.20.0.0/16` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    V4 { network: u32, mask: u32 },
    V6 { network: u128, mask: u128 },
}

/// Why a text is not a [`Cidr`] (the config error names the text and says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CidrError {
    NotAnAddress,
    /// The prefix length is not a number in `0..=max`.
    PrefixLength {
        max: u8,
    },
    HostBitsSet,
}

impl Cidr {
    /// Parses `addr/len` or a bare address (a /32 or /128). Host bits must be zero, so a
    /// typo such as `10.20.1.0/16` is caught at configure time instead of silently widened.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| CidrError::NotAnAddress)?;
        let max_len: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max_len,
            Some(len) => match len.parse::<u8>() {
                Ok(parsed) if parsed <= max_len && !len.starts_with('+') => parsed,
                _ => return Err(CidrError::PrefixLength { max: max_len }),
            },
        };
        let cidr = match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Cidr::V4 {
                    network: u32::from(v4),
                    mask,
                }
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Cidr::V6 {
                    network: u128::from(v6),
                    mask,
                }
            }
        };
        let host_bits_clear = match cidr {
            Cidr::V4 { network, mask } => network & !mask == 0,
            Cidr::V6 { network, mask } => network & !mask == 0,
        };
        if !host_bits_clear {
            return Err(CidrError::HostBitsSet);
        }
        Ok(cidr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Cidr::V4 { network, mask }, IpAddr::V4(v4)) => u32::from(v4) & mask == *network,
            (Cidr::V6 { network, mask }, IpAddr::V6(v6)) => u128::from(v6) & mask == *network,
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack listener reports) as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address as Envoy reports it (`a.b.c.d:port`, `[v6]:port`) or as it appears in
/// `x-forwarded-for` (bare IPv4 or IPv6, occasionally with a port). Surrounding ASCII
/// whitespace is ignored (as Envoy trims XFF entries; not Unicode spaces such as U+00A0,
/// which the `address` fuzz target found `str::trim` let through); anything else is `None`.
pub fn parse_address(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text.trim_ascii()).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    // `[v6]` without a port.
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|v6| canonical(IpAddr::V6(v6)))
}

/// Where the client address came from, for counters and `explain` (whose JSON names them
/// as serialized here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpSource {
    Peer,
    #[serde(rename = "x-forwarded-for")]
    ForwardedFor,
    /// XFF was configured but too short or malformed at the chosen position.
    PeerAfterXffFallback,
    /// No usable address at all (no peer address, e.g. a unix socket listener).
    Unknown,
    /// The decision consulted no client address, so none was resolved.
    NotNeeded,
}

/// Picks the client address from `x-forwarded-for` the way Envoy's `xff_num_trusted_hops`
/// does: skip `trusted_hops` entries from the right, take the next one. `forwarded_for`
/// yields the XFF header values in order (several headers are one comma-joined list).
/// `None` when there are too few entries or the chosen one is not an address.
pub fn client_from_xff<'a>(
    forwarded_for: impl Iterator<Item = &'a [u8]> + Clone,
    trusted_hops: u32,
) -> Option<IpAddr> {
    let entries = || {
        forwarded_for
            .clone()
            .flat_map(|value| value.split(|&b| b == b','))
    };
    let total = entries().count();
    let hops = usize::try_from(trusted_hops).ok()?;
    let position = total.checked_sub(hops)?.checked_sub(1)?;
    entries().nth(position).and_then(parse_address)
}

/// Formats an address into a stack buffer (for hashing `source_ip` keys without allocating).
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    pub fn new(ip: IpAddr) -> IpText {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let capacity = buf.len();
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // An IPv6 address is at most 45 characters, so the write cannot run out of room.
        let _ = write!(cursor, "{ip}");
        let len = usize::try_from(cursor.position())
            .unwrap_or(0)
            .min(capacity);
        IpText { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let office = Cidr::parse("192.168.0.58/32").unwrap();
        assert!(office.contains(ip("192.168.0.58")));
        assert!(!office.contains(ip("192.168.0.59")));
        let net = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(net.contains(ip("10.20.255.1")));
        assert!(!net.contains(ip("10.21.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.20.0.1")));
        let bare = Cidr::parse("::1").unwrap();
        assert!(bare.contains(ip("::1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::2")));
        // IPv4-mapped IPv6 clients match IPv4 ranges.
        assert!(net.contains(ip("::ffff:10.20.3.4")));
    }

    #[test]
    fn cidr_errors() {
        assert!(Cidr::parse("10.20.0.0/33").is_err());
        assert!(Cidr::parse("10.20.0.0/-1").is_err());
        assert!(Cidr::parse("10.20.0.0/+8").is_err());
        assert!(Cidr::parse("10.20.1.0/16").is_err());
        assert!(Cidr::parse("not-an-ip").is_err());
        assert!(Cidr::parse("").is_err());
        assert!(Cidr::parse("2001:db8::/129").is_err());
    }

    #[test]
    fn address_forms() {
        assert_eq!(parse_address(b"203.0.113.7:5555"), Some(ip("203.0.113.7")));
        assert_eq!(parse_address(b"[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_address(b" 2001:db8::1 "), Some(ip("2001:db8::1")));
        assert_eq!(parse_address(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_address(b"[::ffff:1.2.3.4]:80"), Some(ip("1.2.3.4")));
        assert_eq!(parse_address(b"unknown"), None);
        assert_eq!(parse_address(b""), None);
        assert_eq!(parse_address(b"\xff\xfe"), None);
    }

    #[test]
    fn xff_trusted_hops() {
        let one = [b"192.168.0.58, 127.0.0.1".as_slice()];
        assert_eq!(
            client_from_xff(one.iter().copied(), 0),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            client_from_xff(one.iter().copied(), 1),
            Some(ip("192.168.0.58"))
        );
        assert_eq!(client_from_xff(one.iter().copied(), 2), None);
        // Entries prepended by the client change nothing.
        let spoof = [b"192.168.0.58, 6.6.6.6, 127.0.0.1".as_slice()];
        assert_eq!(
            client_from_xff(spoof.iter().copied(), 1),
            Some(ip("6.6.6.6"))
        );
        // Several headers are one list.
        let split = [b"1.1.1.1".as_slice(), b"2.2.2.2, 3.3.3.3".as_slice()];
        assert_eq!(
            client_from_xff(split.iter().copied(), 2),
            Some(ip("1.1.1.1"))
        );
        // A malformed entry at the chosen position.
        let bad = [b"garbage, 127.0.0.1".as_slice()];
        assert_eq!(client_from_xff(bad.iter().copied(), 1), None);
        assert_eq!(client_from_xff(std::iter::empty(), 0), None);
    }

    #[test]
    fn ip_text() {
        assert_eq!(IpText::new(ip("203.0.113.7")).as_bytes(), b"203.0.113.7");
        assert_eq!(IpText::new(ip("2001:db8::1")).as_bytes(), b"2001:db8::1");
        let longest = ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
        assert_eq!(
            IpText::new(longest).as_bytes(),
            longest.to_string().as_bytes()
        );
    }
}
