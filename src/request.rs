//! What the engine may read of a request, and helpers over it (cookies, query parameters).
//!
//! The engine never calls the host: the filter implements [`RequestView`] over the headers
//! Envoy handed it, tests and the command-line tool use [`OwnedRequest`].

use std::borrow::Cow;
use std::cell::OnceCell;

/// Read-only access to one request.
pub trait RequestView {
    /// The values of header `name`, in request order. `name` is lower-case; pseudo-headers
    /// are asked for by their `:path` form. Repeated headers yield one item each.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + Clone;

    /// The downstream peer as Envoy's `source.address` property reports it
    /// (`a.b.c.d:port` or `[v6]:port`), if known.
    fn peer_address(&self) -> Option<&[u8]>;
}

/// Cookie values named `name` across every `cookie` header (HTTP/2 clients send several),
/// in order. Cookie names are case-sensitive (RFC 6265); values are returned raw.
pub fn cookie_values<'a, R: RequestView + ?Sized>(
    request: &'a R,
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    request.header_values("cookie").flat_map(move |header| {
        header.split(|&b| b == b';').filter_map(move |pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (key.trim_ascii() == name).then(|| value.trim_ascii())
        })
    })
}

/// Percent-decoded values of query parameter `name` in `path` (`+` is a space, as in
/// forms). Allocates only for values that actually contain escapes.
pub fn query_values<'a>(path: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = Cow<'a, [u8]>> {
    // The fragment goes first: a `?` after `#` is part of the fragment (RFC 3986), as the
    // `query` fuzz target found (`/p#x?beta=1` has no query).
    let path = match path.iter().position(|&b| b == b'#') {
        Some(hash) => path.get(..hash).unwrap_or(&[]),
        None => path,
    };
    let query = path
        .iter()
        .position(|&b| b == b'?')
        .and_then(|q| path.get(q + 1..))
        .unwrap_or(&[]);
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(move |pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (pair.get(..eq)?, pair.get(eq + 1..)?),
                None => (pair, &[][..]),
            };
            (percent_decode(key).as_ref() == name).then(|| percent_decode(value))
        })
}

/// Decodes `%XX` escapes and `+`; malformed escapes are kept as they are.
pub fn percent_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&byte) = input.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&b| hex_value(b));
                let lo = input.get(i + 2).and_then(|&b| hex_value(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A request held in memory: for tests, benchmarks and `canary-tagger explain`.
#[derive(Clone, Debug, Default)]
pub struct OwnedRequest {
    headers: Vec<(String, Vec<u8>)>,
    peer: Option<Vec<u8>>,
}

impl OwnedRequest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one header line; the name is lower-cased as Envoy does.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Adds a `cookie` header line holding `name=value`.
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.header("cookie", format!("{name}={value}"))
    }

    /// Sets `:path` (replacing an earlier one).
    pub fn path(mut self, path: &str) -> Self {
        self.headers.retain(|(name, _)| name != ":path");
        self.header(":path", path)
    }

    /// The peer address, as `source.address` would report it.
    pub fn peer(mut self, address: &str) -> Self {
        self.peer = Some(address.as_bytes().to_vec());
        self
    }

    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }
}

impl RequestView for OwnedRequest {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + Clone {
        self.headers
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }

    fn peer_address(&self) -> Option<&[u8]> {
        self.peer.as_deref()
    }
}

/// The request as Envoy hands it over through the proxy-wasm ABI: the header map in its
/// serialized form (u32 count; count × (u32 name length, u32 value length); then each name
/// and value followed by a NUL), read in place without copying a header. The map is walked
/// once, when the request is built: the first [`INDEXED`] headers are remembered as byte
/// ranges, so the engine's dozen lookups compare names instead of re-decoding the size
/// table each time (headers beyond that are still found, by walking the rest). The peer
/// address is fetched on first use only. Malformed bytes yield fewer headers, never a panic.
pub struct SerializedRequest {
    map: Vec<u8>,
    index: [Entry; INDEXED],
    /// How many of `index` are filled.
    indexed: usize,
    /// Where the sizes and the bytes of the headers after the indexed ones start.
    rest: (usize, usize),
    /// Where the size table ends (0: no usable table).
    sizes_end: usize,
    peer: OnceCell<Option<Vec<u8>>>,
    fetch_peer: fn() -> Option<Vec<u8>>,
}

/// Headers remembered per request without allocating; a browser sends 10–20.
pub const INDEXED: usize = 32;

/// One header's name and value as (start, length) ranges of the map, and the name's
/// [`fingerprint`].
#[derive(Clone, Copy, Default)]
struct Entry {
    fingerprint: u32,
    name: (usize, usize),
    value: (usize, usize),
}

/// Length, first and last byte of a header name in one word: two different names the
/// engine looks up almost never share it, so most index entries are skipped with one
/// comparison and the bytes are compared only for a likely match.
fn fingerprint(name: &[u8]) -> u32 {
    let len = u32::try_from(name.len().min(0xffff)).unwrap_or(0xffff);
    let first = u32::from(name.first().copied().unwrap_or(0));
    let last = u32::from(name.last().copied().unwrap_or(0));
    len | first << 16 | last << 24
}

/// Writes header pairs in the proxy-wasm serialized form [`SerializedRequest`] reads, as
/// Envoy's host does: for tests, benchmarks and the fuzz targets. `None` when a name, value
/// or the pair count does not fit the format's u32 lengths.
pub fn serialize_header_map<'a>(
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
) -> Option<Vec<u8>> {
    let mut map = Vec::new();
    let count = pairs.clone().into_iter().count();
    map.extend_from_slice(&u32::try_from(count).ok()?.to_le_bytes());
    for (name, value) in pairs.clone() {
        map.extend_from_slice(&u32::try_from(name.len()).ok()?.to_le_bytes());
        map.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
    }
    for (name, value) in pairs {
        map.extend_from_slice(name);
        map.push(0);
        map.extend_from_slice(value);
        map.push(0);
    }
    Some(map)
}

impl SerializedRequest {
    pub fn new(map: Vec<u8>, fetch_peer: fn() -> Option<Vec<u8>>) -> Self {
        let mut request = SerializedRequest {
            map,
            index: [Entry::default(); INDEXED],
            indexed: 0,
            rest: (0, 0),
            sizes_end: 0,
            peer: OnceCell::new(),
            fetch_peer,
        };
        // A size table longer than the map means a map we cannot trust: no headers.
        let count = read_u32(&request.map, 0).unwrap_or(0);
        let Some(sizes_end) = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(4))
            .filter(|&end| end <= request.map.len())
        else {
            return request;
        };
        request.sizes_end = sizes_end;
        let (mut sizes_at, mut data_at) = (4, sizes_end);
        for slot in request.index.iter_mut() {
            let Some((entry, next)) = entry_at(&request.map, sizes_at, sizes_end, data_at) else {
                break;
            };
            *slot = entry;
            request.indexed += 1;
            sizes_at += 8;
            data_at = next;
        }
        request.rest = (sizes_at, data_at);
        request
    }

    /// Every (name, value) pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.indexed()
            .iter()
            .map(|entry| (self.slice(entry.name), self.slice(entry.value)))
            .chain(self.rest())
    }

    fn indexed(&self) -> &[Entry] {
        self.index.get(..self.indexed).unwrap_or(&[])
    }

    fn rest(&self) -> SerializedPairs<'_> {
        let (sizes_at, data_at) = self.rest;
        SerializedPairs {
            map: &self.map,
            sizes_at,
            sizes_end: self.sizes_end,
            data_at,
        }
    }

    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        self.map
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }
}

/// The values of one header: the index first (lengths compared before bytes), then the
/// headers beyond it. A plain loop rather than an iterator chain: V8 does not inline the
/// chain's `next`, and this is the engine's most frequent call.
#[derive(Clone)]
pub struct SerializedValues<'a> {
    request: &'a SerializedRequest,
    name: &'a [u8],
    fingerprint: u32,
    /// The next index entry to look at; past `indexed`, the walk is in `rest`.
    at: usize,
    rest: SerializedPairs<'a>,
}

impl<'a> Iterator for SerializedValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let request = self.request;
        while let Some(entry) = request.indexed().get(self.at) {
            self.at += 1;
            if entry.fingerprint == self.fingerprint && request.slice(entry.name) == self.name {
                return Some(request.slice(entry.value));
            }
        }
        let name = self.name;
        self.rest
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// The header whose sizes are at `sizes_at` and whose bytes start at `data_at`, and where
/// the next header's bytes start.
fn entry_at(
    map: &[u8],
    sizes_at: usize,
    sizes_end: usize,
    data_at: usize,
) -> Option<(Entry, usize)> {
    if sizes_at.checked_add(8)? > sizes_end {
        return None;
    }
    let name_len = read_u32(map, sizes_at)?;
    let value_len = read_u32(map, sizes_at + 4)?;
    let value_at = data_at.checked_add(name_len)?.checked_add(1)?;
    let next = value_at.checked_add(value_len)?.checked_add(1)?;
    // Both the name and the value must lie inside the map (their NULs may be cut off).
    if value_at.checked_add(value_len)? > map.len() || data_at.checked_add(name_len)? > map.len() {
        return None;
    }
    let entry = Entry {
        fingerprint: fingerprint(map.get(data_at..data_at + name_len)?),
        name: (data_at, name_len),
        value: (value_at, value_len),
    };
    Some((entry, next))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// The headers after the indexed ones, decoded as they are walked.
#[derive(Clone)]
struct SerializedPairs<'a> {
    map: &'a [u8],
    sizes_at: usize,
    sizes_end: usize,
    data_at: usize,
}

impl<'a> Iterator for SerializedPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (entry, next) = entry_at(self.map, self.sizes_at, self.sizes_end, self.data_at)?;
        self.sizes_at += 8;
        self.data_at = next;
        let slice = |(start, len): (usize, usize)| self.map.get(start..start.checked_add(len)?);
        Some((slice(entry.name)?, slice(entry.value)?))
    }
}

impl RequestView for SerializedRequest {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + Clone {
        SerializedValues {
            request: self,
            name: name.as_bytes(),
            fingerprint: fingerprint(name.as_bytes()),
            at: 0,
            rest: self.rest(),
        }
    }

    fn peer_address(&self) -> Option<&[u8]> {
        self.peer.get_or_init(self.fetch_peer).as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_across_headers() {
        let request = OwnedRequest::new()
            .header("cookie", "a=1; user=tester ;b=2")
            .header("Cookie", "user=admin")
            .header("cookie", "malformed; =x; user");
        let users: Vec<_> = cookie_values(&request, b"user").collect();
        assert_eq!(users, vec![b"tester".as_slice(), b"admin".as_slice()]);
        assert_eq!(cookie_values(&request, b"b").next(), Some(b"2".as_slice()));
        assert_eq!(cookie_values(&request, b"User").next(), None);
        assert_eq!(cookie_values(&request, b"").next(), Some(b"x".as_slice()));
    }

    #[test]
    fn query_decoding() {
        let path = b"/p?beta=0&name=J%C3%B6rg+M&flag&x=%zz#frag=1";
        assert_eq!(query_values(path, b"beta").next().unwrap().as_ref(), b"0");
        assert_eq!(
            query_values(path, b"name").next().unwrap().as_ref(),
            "Jörg M".as_bytes()
        );
        assert_eq!(query_values(path, b"flag").next().unwrap().as_ref(), b"");
        assert_eq!(query_values(path, b"x").next().unwrap().as_ref(), b"%zz");
        assert!(query_values(path, b"frag").next().is_none());
        assert!(query_values(b"/no-query", b"beta").next().is_none());
        assert_eq!(
            query_values(b"/?na%6De=v", b"name")
                .next()
                .unwrap()
                .as_ref(),
            b"v"
        );
    }

    fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        serialize_header_map(pairs.iter().map(|(name, value)| (name.as_bytes(), *value))).unwrap()
    }

    fn no_peer() -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn serialized_map_is_read_in_place() {
        let map = serialize(&[
            (":path", b"/p?beta=0"),
            ("cookie", b"a=1; user=tester"),
            ("x-empty", b""),
            ("cookie", b"uid=bob"),
            ("user-agent", b"\xff\xfeChrome"),
        ]);
        let request = SerializedRequest::new(map, no_peer);
        assert_eq!(request.pairs().count(), 5);
        let cookies: Vec<_> = request.header_values("cookie").collect();
        assert_eq!(
            cookies,
            vec![b"a=1; user=tester".as_slice(), b"uid=bob".as_slice()]
        );
        assert_eq!(
            request.header_values("x-empty").next(),
            Some(b"".as_slice())
        );
        assert_eq!(
            request.header_values("user-agent").next(),
            Some(b"\xff\xfeChrome".as_slice())
        );
        assert_eq!(
            cookie_values(&request, b"uid").next(),
            Some(b"bob".as_slice())
        );
        assert!(request.header_values("missing").next().is_none());
        assert_eq!(request.peer_address(), None);
    }

    #[test]
    fn malformed_maps_yield_fewer_headers_never_a_panic() {
        let whole = serialize(&[("a", b"1"), ("bb", b"22")]);
        for cut in 0..whole.len() {
            let request = SerializedRequest::new(whole[..cut].to_vec(), no_peer);
            assert!(request.pairs().count() <= 2, "cut at {cut}");
        }
        let mut lying = whole.clone();
        lying[0] = 200; // claims 200 pairs
        assert!(SerializedRequest::new(lying, no_peer).pairs().count() <= 2);
        let mut huge = whole;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes()); // a name longer than the buffer
        assert_eq!(SerializedRequest::new(huge, no_peer).pairs().count(), 0);
        assert_eq!(
            SerializedRequest::new(Vec::new(), no_peer).pairs().count(),
            0
        );
    }

    #[test]
    fn headers_beyond_the_index_are_still_found_in_order() {
        let names: Vec<String> = (0..INDEXED + 8).map(|i| format!("x-h{i}")).collect();
        let mut pairs: Vec<(&str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), b"v".as_slice()))
            .collect();
        pairs.insert(3, ("cookie", b"a=1"));
        pairs.push(("cookie", b"b=2"));
        pairs.push(("x-last", b"end"));
        let request = SerializedRequest::new(serialize(&pairs), no_peer);
        assert_eq!(request.pairs().count(), pairs.len());
        assert!(request
            .pairs()
            .map(|(n, _)| n)
            .eq(pairs.iter().map(|(n, _)| n.as_bytes())));
        let cookies: Vec<_> = request.header_values("cookie").collect();
        assert_eq!(cookies, vec![b"a=1".as_slice(), b"b=2".as_slice()]);
        assert_eq!(
            request.header_values("x-last").next(),
            Some(b"end".as_slice())
        );
        let beyond = format!("x-h{}", INDEXED + 5);
        assert_eq!(request.header_values(&beyond).count(), 1);
    }

    #[test]
    fn peer_is_fetched_once_and_only_when_asked() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static FETCHES: AtomicUsize = AtomicUsize::new(0);
        fn fetch() -> Option<Vec<u8>> {
            FETCHES.fetch_add(1, Ordering::SeqCst);
            Some(b"10.0.0.1:5000".to_vec())
        }
        let request = SerializedRequest::new(serialize(&[]), fetch);
        assert_eq!(FETCHES.load(Ordering::SeqCst), 0);
        assert_eq!(request.peer_address(), Some(b"10.0.0.1:5000".as_slice()));
        assert_eq!(request.peer_address(), Some(b"10.0.0.1:5000".as_slice()));
        assert_eq!(FETCHES.load(Ordering::SeqCst), 1);
    }
}
