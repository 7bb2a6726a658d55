//! The inputs: a small deterministic PRNG (SplitMix64), random valid configurations and
//! hostile requests.

use canary_tagger::hash::BUCKETS;
use canary_tagger::request::OwnedRequest;
use serde_json::{json, Value};

// ------------------------------------------------------------------ SplitMix64

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap()).unwrap()
    }

    pub fn range(&mut self, low: usize, high_inclusive: usize) -> usize {
        low + self.below(high_inclusive - low + 1)
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    pub fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// `count` distinct items of `items`, in random order.
    pub fn sample<T: Clone>(&mut self, items: &[T], count: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        for i in (1..pool.len()).rev() {
            let j = self.below(i + 1);
            pool.swap(i, j);
        }
        pool.truncate(count);
        pool
    }
}

pub fn base_seed() -> u64 {
    std::env::var("CANARY_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee_cafe_f00d)
}

// ------------------------------------------------------------------ random configurations

pub const VERSION_NAMES: &[&str] = &[
    "v1",
    "v2",
    "v3",
    "v4",
    "v10",
    "canary",
    "stable",
    "blue",
    "green",
    "2024.06-rc_1",
];
pub const TAG_HEADERS: &[&str] = &["x-canary-version", "x-version", "X-Route-Tag"];
/// Headers rules may read (never a tag header).
pub const CONDITION_HEADERS: &[&str] = &[
    "user-agent",
    "User-Agent",
    "content-type",
    "grpcsvc",
    "x-user-id",
    "cookie",
    "x-forwarded-for",
    "x-team",
    ":path",
    ":method",
    ":authority",
];
pub const NORMALIZE_HEADERS: &[&str] = &["grpcsvc", "x-team", "x-tier", "content-type", "X-Tier"];
pub const COOKIE_NAMES: &[&str] = &["user", "uid", "canary-uid", "session", "pick", "a"];
pub const QUERY_NAMES: &[&str] = &["beta", "user", "q", "name", "a%20b"];
pub const CIDRS: &[&str] = &[
    "192.168.0.58/32",
    "10.0.0.0/8",
    "10.20.0.0/16",
    "0.0.0.0/0",
    "::/0",
    "2001:db8::/32",
    "2001:db8::1",
    "127.0.0.1",
    "203.0.113.0/24",
];
pub const LITERALS: &[&str] = &[
    "",
    "v1",
    "v2",
    "tester",
    "Chrome",
    "Android",
    "application/grpc",
    "0",
    "1",
    "Jörg",
    "a b",
    ";",
    "=",
    "%",
    "/api/",
    ".example.com",
    "POST",
];
pub const REGEXES: &[&str] = &[
    ".*Chrome.*",
    "v[0-9]+",
    "(a|b)*c",
    "[^;]*",
    "\\d{1,3}",
    "",
    ".*",
    "^(.*?;)?(user=tester)(;.*)?$",
    "(?:x|y){2,5}",
    "[[:alpha:]]+",
];
pub const KEYS: &[&str] = &[
    "cookie:uid",
    "header:x-user-id",
    "query:user",
    "source_ip",
    "cookie:session",
    "header:user-agent",
    "header::authority",
];

pub fn random_condition(rng: &mut Rng, depth: usize) -> Value {
    let composite = depth > 0 && rng.chance(35);
    if composite {
        return match rng.below(3) {
            0 | 1 => {
                let kind = if rng.chance(50) { "all" } else { "any" };
                let children: Vec<Value> = (0..rng.range(1, 3))
                    .map(|_| random_condition(rng, depth - 1))
                    .collect();
                json!({ kind: children })
            }
            _ => json!({ "not": random_condition(rng, depth - 1) }),
        };
    }
    let mut condition = match rng.below(4) {
        0 | 1 => json!({ "header": rng.pick(CONDITION_HEADERS) }),
        2 => json!({ "cookie": rng.pick(COOKIE_NAMES) }),
        _ => json!({ "query": rng.pick(QUERY_NAMES) }),
    };
    if rng.chance(15) {
        let count = rng.range(1, 3);
        return json!({ "source_ip": rng.sample(CIDRS, count) });
    }
    let object = condition.as_object_mut().unwrap();
    match rng.below(6) {
        5 => {
            object.insert("present".into(), json!(rng.chance(50)));
        }
        4 => {
            object.insert("regex".into(), json!(rng.pick(REGEXES)));
            if rng.chance(30) {
                object.insert("ignore_case".into(), json!(true));
            }
        }
        op => {
            let name = ["exact", "prefix", "suffix", "contains"][op];
            object.insert(name.into(), json!(rng.pick(LITERALS)));
            if rng.chance(30) {
                object.insert("ignore_case".into(), json!(rng.chance(50)));
            }
        }
    }
    condition
}

/// Bucket counts (1 bucket = 0.01 %) for `parts` weights summing to 100 %.
pub fn random_weights(rng: &mut Rng, parts: usize) -> Vec<u32> {
    let buckets = u32::from(BUCKETS);
    let mut cuts: Vec<u32> = (1..parts)
        .map(|_| u32::try_from(rng.below(usize::from(BUCKETS) + 1)).unwrap())
        .collect();
    if rng.chance(20) {
        // Round percents, the common case in real configs.
        cuts.iter_mut().for_each(|cut| *cut -= *cut % 100);
    }
    cuts.sort_unstable();
    let mut previous = 0;
    let mut weights = Vec::with_capacity(parts);
    for cut in cuts.into_iter().chain(std::iter::once(buckets)) {
        weights.push(cut - previous);
        previous = cut;
    }
    weights
}

pub fn percent(buckets: u32) -> Value {
    json!(f64::from(buckets) / 100.0)
}

/// A `normalize` entry: a header, allowed values (some of them `versions`), a default
/// among them, and maybe a `when` condition.
pub fn random_normalize_entry(rng: &mut Rng, versions: &[&str]) -> Value {
    let mut allowed_pool: Vec<&str> = versions.to_vec();
    allowed_pool.extend(["v1", "v4", "gold", "silver", ""]);
    allowed_pool.sort_unstable();
    allowed_pool.dedup();
    let count = rng.range(1, 4);
    let allowed = rng.sample(&allowed_pool, count);
    let mut entry = json!({
        "header": rng.pick(NORMALIZE_HEADERS),
        "allowed": allowed,
        "default": rng.pick(&allowed),
    });
    if rng.chance(60) {
        entry["when"] = random_condition(rng, 2);
    }
    entry
}

/// Rule `i`: maybe a `match`, then a version, a `version_from` or a split over `versions`.
pub fn random_rule(rng: &mut Rng, i: usize, versions: &[&str]) -> Value {
    let mut rule = json!({ "name": format!("rule-{i}") });
    if rng.chance(80) {
        rule["match"] = random_condition(rng, 3);
    }
    match rng.below(3) {
        0 => rule["version"] = json!(rng.pick(versions)),
        1 => {
            let source = if rng.chance(50) {
                format!("header:{}", rng.pick(&["grpcsvc", "x-pick", "X-Team"]))
            } else {
                format!("cookie:{}", rng.pick(COOKIE_NAMES))
            };
            rule["version_from"] = json!(source);
        }
        _ => rule["split"] = random_split(rng, versions),
    }
    rule
}

/// A split over some of `versions` with random weights, up to three keys, maybe a salt.
pub fn random_split(rng: &mut Rng, versions: &[&str]) -> Value {
    let parts = rng.range(1, versions.len());
    let chosen = rng.sample(versions, parts);
    let weights: Vec<Value> = chosen
        .iter()
        .zip(random_weights(rng, parts))
        .map(|(version, buckets)| json!({"version": version, "percent": percent(buckets)}))
        .collect();
    let key_count = rng.below(4);
    let mut split = json!({
        "weights": weights,
        "key": rng.sample(KEYS, key_count),
    });
    if rng.chance(30) {
        split["salt"] = json!(format!("salt-{}", rng.below(5)));
    }
    split
}

pub fn random_config(rng: &mut Rng) -> Value {
    let count = rng.range(1, 5);
    let versions = rng.sample(VERSION_NAMES, count);
    let mut config = json!({
        "versions": versions,
        "default_version": rng.pick(&versions),
    });
    let object = config.as_object_mut().unwrap();
    if rng.chance(50) {
        object.insert("schema".into(), json!(1));
    }
    if rng.chance(40) {
        object.insert("tag_header".into(), json!(rng.pick(TAG_HEADERS)));
    }
    match rng.below(3) {
        0 => {}
        1 => {
            object.insert("client_ip".into(), json!({"from": "peer"}));
        }
        _ => {
            let mut client_ip = json!({"from": "xff"});
            if rng.chance(80) {
                client_ip["trusted_hops"] = json!(rng.below(4));
            }
            object.insert("client_ip".into(), client_ip);
        }
    }
    if rng.chance(50) {
        let count = rng.range(1, 3);
        object.insert(
            "trusted_tag_sources".into(),
            json!(rng.sample(CIDRS, count)),
        );
    }
    let normalize: Vec<Value> = (0..rng.below(4))
        .map(|_| random_normalize_entry(rng, &versions))
        .collect();
    object.insert("normalize".into(), json!(normalize));
    let rules: Vec<Value> = (0..rng.below(7))
        .map(|i| random_rule(rng, i, &versions))
        .collect();
    object.insert("rules".into(), json!(rules));
    if rng.chance(50) {
        object.insert(
            "sticky_cookie".into(),
            json!({"name": rng.pick(&["canary-uid", "uid", "sid"]), "secure": rng.chance(50)}),
        );
    }
    if rng.chance(30) {
        object.insert("response_header".into(), json!("x-served-by"));
    }
    if rng.chance(30) {
        object.insert("baggage".into(), json!(true));
    }
    if rng.chance(30) {
        object.insert("tracestate".into(), json!(true));
    }
    config
}

// ------------------------------------------------------------------ hostile requests

pub const REQUEST_HEADERS: &[&str] = &[
    "user-agent",
    "content-type",
    "grpcsvc",
    "x-user-id",
    "cookie",
    "cookie",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-for",
    "x-team",
    "x-tier",
    "x-pick",
    ":path",
    ":method",
    ":authority",
    "x-canary-version",
    "x-version",
    "x-route-tag",
    "baggage",
    "traceparent",
    "tracestate",
    "tracestate",
    "x-junk",
];

pub fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    (0..len).map(|_| rng.byte()).collect()
}

pub fn random_address(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => format!(
            "{}.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        1 => "192.168.0.58".into(),
        2 => format!("10.20.{}.{}", rng.below(256), rng.below(256)),
        3 => format!("2001:db8::{:x}", rng.below(0x10000)),
        4 => format!("::ffff:10.20.0.{}", rng.below(256)),
        5 => format!("[2001:db8::{:x}]:{}", rng.below(0x10000), rng.below(65536)),
        6 => format!("{}.0.113.7:{}", rng.below(300), rng.below(70000)),
        _ => rng
            .pick(&[
                "",
                " ",
                "unknown",
                "garbage",
                "1.2.3",
                "::g",
                "[::1",
                "999.1.1.1",
            ])
            .to_string(),
    }
}

pub fn random_value(rng: &mut Rng, name: &str) -> Vec<u8> {
    let tag_header = TAG_HEADERS.iter().any(|t| t.eq_ignore_ascii_case(name));
    if tag_header && rng.chance(60) {
        return rng.pick(VERSION_NAMES).as_bytes().to_vec();
    }
    match rng.below(10) {
        0 => random_bytes(rng, 40),
        1 => rng.pick(VERSION_NAMES).as_bytes().to_vec(),
        2 => rng.pick(LITERALS).as_bytes().to_vec(),
        _ => match name {
            "cookie" => random_cookie(rng),
            "x-forwarded-for" => {
                let entries: Vec<String> = (0..rng.below(6)).map(|_| random_address(rng)).collect();
                entries
                    .join(if rng.chance(50) { ", " } else { "," })
                    .into_bytes()
            }
            ":path" => random_path(rng),
            "traceparent" => rng
                .pick(&[
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x",
                    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                ])
                .as_bytes()
                .to_vec(),
            "tracestate" => random_tracestate(rng),
            "user-agent" => rng
                .pick(&[
                    "Mozilla/5.0 Chrome/120",
                    "Linux; Android 14",
                    "grpc-go/1.60",
                    "curl/8",
                ])
                .as_bytes()
                .to_vec(),
            "content-type" => rng
                .pick(&[
                    "application/grpc",
                    "application/grpc+proto",
                    "application/json",
                    "",
                ])
                .as_bytes()
                .to_vec(),
            _ => random_bytes(rng, 12),
        },
    }
}

pub fn random_tracestate(rng: &mut Rng) -> Vec<u8> {
    let members: Vec<String> = (0..rng.below(40))
        .map(|_| match rng.below(6) {
            0 => format!("canary={}", rng.pick(VERSION_NAMES)),
            1 => "canary=nope".to_string(),
            2 => String::from_utf8_lossy(&random_bytes(rng, 8)).into_owned(),
            _ => format!("k{}@s=v{}", rng.below(50), rng.below(9)),
        })
        .collect();
    members
        .join(if rng.chance(50) { ", " } else { "," })
        .into_bytes()
}

pub fn random_cookie(rng: &mut Rng) -> Vec<u8> {
    match rng.below(40) {
        // A huge cookie header.
        0 => format!("big={}; uid=x", "z".repeat(64 * 1024)).into_bytes(),
        // Many duplicate cookies.
        1 => vec!["uid=dup"; 2000].join("; ").into_bytes(),
        2 => random_bytes(rng, 64),
        _ => {
            let mut out = Vec::new();
            for i in 0..rng.below(6) {
                if i > 0 {
                    out.extend_from_slice(rng.pick(&["; ", ";", " ; ", ";;"]).as_bytes());
                }
                out.extend_from_slice(rng.pick(COOKIE_NAMES).as_bytes());
                if rng.chance(90) {
                    out.push(b'=');
                }
                match rng.below(4) {
                    0 => out.extend(random_bytes(rng, 8)),
                    1 => out.extend_from_slice(rng.pick(VERSION_NAMES).as_bytes()),
                    _ => out.extend_from_slice(rng.pick(LITERALS).as_bytes()),
                }
            }
            out
        }
    }
}

pub const PATHS: &[&[u8]] = &[b"", b"api/v1", b"checkout/pay", b"\xff\xfe"];
pub const QUERY_VALUES: &[&[u8]] = &[
    b"0", b"1", b"%30", b"%", b"%4", b"%zz", b"a+b", b"%C3%B6", b"%ff%fe", b"v2", b"\xff",
];

pub fn random_path(rng: &mut Rng) -> Vec<u8> {
    let mut out = b"/".to_vec();
    let segment = rng.pick::<&[u8]>(PATHS);
    out.extend_from_slice(segment);
    if rng.chance(80) {
        out.push(b'?');
        for i in 0..rng.below(5) {
            if i > 0 {
                out.push(b'&');
            }
            out.extend_from_slice(rng.pick(QUERY_NAMES).as_bytes());
            out.push(b'=');
            let value = rng.pick::<&[u8]>(QUERY_VALUES);
            out.extend_from_slice(value);
        }
        if rng.chance(10) {
            out.extend_from_slice(b"#frag?beta=0");
        }
    }
    out
}

pub fn random_request(rng: &mut Rng) -> OwnedRequest {
    let mut request = OwnedRequest::new();
    for _ in 0..rng.below(13) {
        let name = *rng.pick(REQUEST_HEADERS);
        let value = random_value(rng, name);
        request = request.header(name, value);
    }
    if rng.chance(85) {
        let peer = match rng.below(5) {
            0 => format!(
                "{}.{}.0.{}:{}",
                rng.below(256),
                rng.below(256),
                rng.below(256),
                rng.below(65536)
            ),
            1 => format!("[2001:db8::{:x}]:443", rng.below(0x10000)),
            2 => format!("[::ffff:10.20.0.{}]:80", rng.below(256)),
            3 => "192.168.0.58:5555".into(),
            _ => random_address(rng),
        };
        request = request.peer(&peer);
    }
    request
}
