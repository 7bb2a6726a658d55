//! Property tests with a small deterministic PRNG (SplitMix64): random valid configurations
//! and hostile requests never panic and always yield a known version; the observed steps of
//! a decision agree with it, and applying its effects leaves the request tagged as the SPEC
//! says; splits are as even as their weights say; and growing the first listed version only
//! ever moves users into it.
//!
//! Deterministic by default; `CANARY_PROPERTY_SEED=<u64>` explores another sequence, and
//! every failure prints the seed of its configuration so it can be replayed.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use canary_tagger::config::{Action, CompiledConfig, VersionId};
use canary_tagger::effects::{HeaderWriter, SetMode};
use canary_tagger::engine::{
    self, ClientTag, DecidedBy, Decision, NormalizeCheck, Observer, RuleOutcome, SplitKey, TagCheck,
};
use canary_tagger::hash::BUCKETS;
use canary_tagger::net::ClientIpSource;
use canary_tagger::request::{OwnedRequest, RequestView};
use serde_json::{json, Value};

// ------------------------------------------------------------------ SplitMix64

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap()).unwrap()
    }

    fn range(&mut self, low: usize, high_inclusive: usize) -> usize {
        low + self.below(high_inclusive - low + 1)
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// `count` distinct items of `items`, in random order.
    fn sample<T: Clone>(&mut self, items: &[T], count: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        for i in (1..pool.len()).rev() {
            let j = self.below(i + 1);
            pool.swap(i, j);
        }
        pool.truncate(count);
        pool
    }
}

fn base_seed() -> u64 {
    std::env::var("CANARY_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee_cafe_f00d)
}

// ------------------------------------------------------------------ random configurations

const VERSION_NAMES: &[&str] = &[
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
const TAG_HEADERS: &[&str] = &["x-canary-version", "x-version", "X-Route-Tag"];
/// Headers rules may read (never a tag header).
const CONDITION_HEADERS: &[&str] = &[
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
const NORMALIZE_HEADERS: &[&str] = &["grpcsvc", "x-team", "x-tier", "content-type", "X-Tier"];
const COOKIE_NAMES: &[&str] = &["user", "uid", "canary-uid", "session", "pick", "a"];
const QUERY_NAMES: &[&str] = &["beta", "user", "q", "name", "a%20b"];
const CIDRS: &[&str] = &[
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
const LITERALS: &[&str] = &[
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
const REGEXES: &[&str] = &[
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
const KEYS: &[&str] = &[
    "cookie:uid",
    "header:x-user-id",
    "query:user",
    "source_ip",
    "cookie:session",
    "header:user-agent",
    "header::authority",
];

fn random_condition(rng: &mut Rng, depth: usize) -> Value {
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
fn random_weights(rng: &mut Rng, parts: usize) -> Vec<u32> {
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

fn percent(buckets: u32) -> Value {
    json!(f64::from(buckets) / 100.0)
}

/// A `normalize` entry: a header, allowed values (some of them `versions`), a default
/// among them, and maybe a `when` condition.
fn random_normalize_entry(rng: &mut Rng, versions: &[&str]) -> Value {
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
fn random_rule(rng: &mut Rng, i: usize, versions: &[&str]) -> Value {
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
fn random_split(rng: &mut Rng, versions: &[&str]) -> Value {
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

fn random_config(rng: &mut Rng) -> Value {
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

const REQUEST_HEADERS: &[&str] = &[
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

fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    (0..len).map(|_| rng.byte()).collect()
}

fn random_address(rng: &mut Rng) -> String {
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

fn random_value(rng: &mut Rng, name: &str) -> Vec<u8> {
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

fn random_tracestate(rng: &mut Rng) -> Vec<u8> {
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

fn random_cookie(rng: &mut Rng) -> Vec<u8> {
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

const PATHS: &[&[u8]] = &[b"", b"api/v1", b"checkout/pay", b"\xff\xfe"];
const QUERY_VALUES: &[&[u8]] = &[
    b"0", b"1", b"%30", b"%", b"%4", b"%zz", b"a+b", b"%C3%B6", b"%ff%fe", b"v2", b"\xff",
];

fn random_path(rng: &mut Rng) -> Vec<u8> {
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

fn random_request(rng: &mut Rng) -> OwnedRequest {
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

// ------------------------------------------------------------------ (a) never panics

/// What must hold of every decision, whatever the config and request.
fn check_invariants(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    if decision.version.index() >= config.versions().len() {
        return fail("version index out of range");
    }
    if decision
        .normalized
        .iter()
        .any(|i| i >= config.normalize.len())
    {
        return fail("normalized index out of range");
    }
    if (decision.client_tag == ClientTag::Kept)
        != (decision.decided_by == DecidedBy::TrustedClientTag)
    {
        return fail("a kept tag and TrustedClientTag go together");
    }
    let no_address = matches!(
        decision.client_ip_source,
        ClientIpSource::Unknown | ClientIpSource::NotNeeded
    );
    if decision.client_ip.is_none() != no_address {
        return fail("no client address iff its source is Unknown or NotNeeded");
    }
    check_split_and_sticky_id(config, decision)?;
    check_decided_by(config, decision)
}

/// The split's bucket, and a sticky id issued exactly when a split asked for a new one.
fn check_split_and_sticky_id(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    if let Some(split) = decision.split {
        if split.bucket >= BUCKETS {
            return fail("bucket out of range");
        }
        if (split.key == SplitKey::NewStickyId) != decision.sticky_id.is_some() {
            return fail("a sticky id is issued iff the split key is NewStickyId");
        }
        if split.key == SplitKey::NewStickyId && config.sticky_cookie.is_none() {
            return fail("sticky id without a sticky cookie configured");
        }
    } else if decision.sticky_id.is_some() {
        return fail("sticky id without a split");
    }
    if let Some(id) = decision.sticky_id {
        let text = id.as_str();
        if text.len() != 32
            || !text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return fail("sticky id is not 32 lower-case hex digits");
        }
    }
    Ok(())
}

/// What decided agrees with the version and the split outcome.
fn check_decided_by(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    match decision.decided_by {
        DecidedBy::Default => {
            if decision.version != config.default_version || decision.split.is_some() {
                return fail("Default decides default_version without a split");
            }
        }
        DecidedBy::TrustedClientTag => {
            if decision.split.is_some() {
                return fail("a kept tag runs no split");
            }
        }
        DecidedBy::Rule(index) => {
            let Some(rule) = config.rules.get(index) else {
                return fail("rule index out of range");
            };
            match &rule.action {
                Action::Fixed(version) if *version != decision.version => {
                    return fail("a fixed rule decided another version")
                }
                Action::Split(split) => {
                    let Some(outcome) = decision.split else {
                        return fail("a split rule decided without a split outcome");
                    };
                    if split.version_for(outcome.bucket) != Some(decision.version) {
                        return fail("the version is not the one of the bucket's range");
                    }
                }
                Action::Fixed(_) | Action::VersionFrom(_) if decision.split.is_some() => {
                    return fail("a split outcome from a rule without split")
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// How many random decisions took each path.
#[derive(Default)]
struct Exercised {
    decisions: usize,
    rule_decisions: usize,
    splits: usize,
    kept_tags: usize,
    normalized: usize,
}

impl Exercised {
    fn count(&mut self, decision: &Decision) {
        self.decisions += 1;
        self.rule_decisions += usize::from(matches!(decision.decided_by, DecidedBy::Rule(_)));
        self.splits += usize::from(decision.split.is_some());
        self.kept_tags += usize::from(decision.client_tag == ClientTag::Kept);
        self.normalized += usize::from(!decision.normalized.is_empty());
    }

    /// The generator must actually exercise every path, not only the default.
    fn assert_every_path(&self) {
        let Exercised {
            decisions,
            rule_decisions,
            splits,
            kept_tags,
            normalized,
        } = *self;
        println!(
            "{decisions} decisions: {rule_decisions} by a rule, {splits} split, \
             {kept_tags} kept tags, {normalized} normalized"
        );
        assert!(decisions >= 5_000, "{decisions}");
        assert!(
            kept_tags > 0 && normalized > 0,
            "{kept_tags} kept, {normalized} normalized"
        );
        assert!(
            rule_decisions >= decisions / 10,
            "{rule_decisions} of {decisions} decided by a rule"
        );
        assert!(splits >= decisions / 50, "{splits} of {decisions} split");
    }
}

#[test]
fn random_configs_and_hostile_requests_never_panic_and_yield_a_known_version() {
    const CONFIGS: u64 = 600;
    const REQUESTS_PER_CONFIG: usize = 12;
    let started = Instant::now();
    let base = base_seed();
    let mut exercised = Exercised::default();
    for n in 0..CONFIGS {
        let seed = base.wrapping_add(n.wrapping_mul(0x9e37_79b9));
        let mut rng = Rng::new(seed);
        let json = random_config(&mut rng).to_string();
        let config = match CompiledConfig::from_json(json.as_bytes()) {
            Ok(config) => config,
            Err(errors) => {
                panic!("seed {seed}: a valid random config was rejected: {errors}\n{json}")
            }
        };
        for _ in 0..REQUESTS_PER_CONFIG {
            let request = random_request(&mut rng);
            let entropy = rng.u128();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let first = engine::decide(&config, &request, entropy);
                let again = engine::decide(&config, &request, entropy);
                (first, again)
            }));
            let context = || {
                format!(
                    "seed {seed}\nconfig: {json}\nrequest: {}",
                    common::describe(&request)
                )
            };
            let (decision, again) = match outcome {
                Ok(pair) => pair,
                Err(_) => panic!("decide panicked\n{}", context()),
            };
            assert_eq!(decision, again, "not deterministic\n{}", context());
            if let Err(why) = check_invariants(&config, &decision) {
                panic!("{why}\n{}", context());
            }
            exercised.count(&decision);
        }
    }
    exercised.assert_every_path();
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 120, "took {elapsed:?}");
}

// ------------------------------------------------------------------ observed and applied

/// Every step [`engine::decide_observed`] reports.
#[derive(Default, Debug)]
struct Steps {
    client_tag: Vec<TagCheck>,
    normalize: Vec<(usize, NormalizeCheck)>,
    rules: Vec<(usize, RuleOutcome)>,
    splits: Vec<(usize, SplitKey, u16)>,
}

impl Observer for Steps {
    fn client_tag(&mut self, check: TagCheck) {
        self.client_tag.push(check);
    }

    fn normalize(&mut self, index: usize, check: NormalizeCheck) {
        self.normalize.push((index, check));
    }

    fn version_from_value(&mut self, _rule: usize, _value: &[u8], _version: Option<VersionId>) {}

    fn split_hashed(&mut self, rule: usize, key: SplitKey, _hashed: Option<&[u8]>, bucket: u16) {
        self.splits.push((rule, key, bucket));
    }

    fn rule(&mut self, index: usize, outcome: RuleOutcome) {
        self.rules.push((index, outcome));
    }
}

/// The steps say what the decision says: one client tag check, every `normalize` entry in
/// order, the rules in order up to the one that decided, and the split it hashed.
fn check_steps(config: &CompiledConfig, decision: &Decision, steps: &Steps) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {steps:?}"));
    if steps
        .client_tag
        .iter()
        .map(|check| check.outcome())
        .ne([decision.client_tag])
    {
        return fail("one client tag check, with the decision's outcome");
    }
    if !steps
        .normalize
        .iter()
        .map(|(i, _)| *i)
        .eq(0..config.normalize.len())
    {
        return fail("every normalize entry checked, in order");
    }
    let rewritten = steps.normalize.iter().filter(|(_, check)| check.rewrites());
    if !rewritten.map(|(i, _)| *i).eq(decision.normalized.iter()) {
        return fail("the rewriting checks are the decision's normalized set");
    }
    if !steps.rules.iter().map(|(i, _)| *i).eq(0..steps.rules.len()) {
        return fail("rules evaluated in order, none skipped");
    }
    let decided: Vec<usize> = steps
        .rules
        .iter()
        .filter(|(_, outcome)| *outcome == RuleOutcome::Decided)
        .map(|(i, _)| *i)
        .collect();
    match decision.decided_by {
        DecidedBy::TrustedClientTag if !steps.rules.is_empty() => {
            return fail("no rule runs for a kept tag")
        }
        DecidedBy::Default if steps.rules.len() != config.rules.len() || !decided.is_empty() => {
            return fail("the default comes after every rule failed")
        }
        DecidedBy::Rule(index) if decided != [index] || steps.rules.len() != index + 1 => {
            return fail("the trace ends at the deciding rule")
        }
        _ => {}
    }
    let expected_split = decision.split.map(|outcome| {
        let DecidedBy::Rule(index) = decision.decided_by else {
            return (usize::MAX, outcome.key, outcome.bucket);
        };
        (index, outcome.key, outcome.bucket)
    });
    if steps.splits.iter().copied().ne(expected_split) {
        return fail("the split hashed is the decision's");
    }
    Ok(())
}

/// A header map as Envoy holds it, written by the effects. An add never lands on a header
/// that is already there (it would make a second line).
struct Headers(Vec<(String, Vec<u8>)>);

impl HeaderWriter for Headers {
    fn add(&mut self, name: &str, value: &[u8]) {
        assert!(
            !self.0.iter().any(|(n, _)| n == name),
            "a plain add of {name}, which is present"
        );
        self.0.push((name.to_string(), value.to_vec()));
    }

    fn replace(&mut self, name: &str, value: &[u8]) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value.to_vec()));
    }

    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }
}

impl Headers {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// SPEC §12: with `tracestate` on and a valid `traceparent`, `tracestate` is one valid line,
/// `canary=<version>` first and only there, at most 32 members; otherwise a client's
/// `canary` member survives only along with a kept tag.
fn check_tracestate(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    use canary_tagger::trace_context;
    let rewritten = config.tag_header == "tracestate"
        || decision
            .normalized
            .iter()
            .any(|index| config.normalize[index].header == "tracestate");
    if rewritten {
        return Ok(());
    }
    let lines = headers.values("tracestate");
    let ours = |line: &&[u8]| {
        line.split(|&b| b == b',')
            .filter(|m| m.split(|&b| b == b'=').next().unwrap().trim_ascii() == b"canary")
            .count()
    };
    let traced = trace_context::has_valid_traceparent(request.header_values("traceparent"));
    if config.tracestate && traced {
        let version = config.version_name(decision.version);
        let [line] = lines.as_slice() else {
            return Err("tracestate is one line".into());
        };
        let members: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        let first = format!("canary={version}");
        if members[0] != first.as_bytes() || ours(line) != 1 || members.len() > 32 {
            return Err(format!(
                "tracestate starts with {first}, once, at most 32 members"
            ));
        }
        if !members.iter().all(|m| trace_context::is_valid_member(m)) {
            return Err("tracestate holds an invalid member".into());
        }
    } else if decision.client_tag != ClientTag::Kept
        && trace_context::has_version_member(lines.iter().copied())
    {
        return Err("a client's canary member was left in tracestate".into());
    }
    Ok(())
}

/// The request after the effects: the tag header and `baggage` have exactly one line naming
/// the version, each rewritten header exactly its default, nothing else changed; nothing is
/// written that is already so. The response gets the sticky cookie and the version.
fn check_effects(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
) -> Result<(), String> {
    let version = config.version_name(decision.version);
    let mut headers = Headers(request.headers().to_vec());
    let mut written = Vec::new();
    for effect in decision.request_effects(config, request) {
        let value = effect.value(request);
        let is_noop = headers.values(effect.name) == [value.as_ref()];
        if effect.mode == SetMode::Unchanged && !is_noop {
            return Err(format!(
                "{effect:?}: left unchanged, but it is not that yet"
            ));
        }
        // A client's stripped tag is written even when it names the decided version.
        if effect.name == "baggage" && is_noop && effect.mode != SetMode::Unchanged {
            return Err(format!(
                "{effect:?}: baggage already current, written again"
            ));
        }
        effect.apply(request, &mut headers);
        written.push(effect.name);
    }
    if headers.values(&config.tag_header) != [version.as_bytes()] {
        return Err("the tag header is one line naming the version".into());
    }
    check_baggage(config, decision, &headers)?;
    check_tracestate(config, request, decision, &headers)?;
    check_normalized(config, decision, &headers)?;
    let untouched = |(name, _): &&(String, Vec<u8>)| !written.contains(&name.as_str());
    if !request
        .headers()
        .iter()
        .filter(untouched)
        .eq(headers.0.iter().filter(untouched))
    {
        return Err("a header no effect names was changed".into());
    }
    check_response_effects(config, decision)
}

/// `baggage` after the effects: with `"baggage": true` one line ending with our member,
/// once; otherwise no client's member left unless its tag was kept (SPEC §7).
fn check_baggage(
    config: &CompiledConfig,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    let version = config.version_name(decision.version);
    if config.baggage {
        let lines = headers.values("baggage");
        let expected_last = format!("canary-version={version}");
        let members: Vec<&[u8]> = match lines.as_slice() {
            [line] => line.split(|&b| b == b',').collect(),
            _ => return Err("baggage is one line".into()),
        };
        let ours = members
            .iter()
            .filter(|m| m.starts_with(b"canary-version"))
            .count();
        if members.last() != Some(&expected_last.as_bytes()) || ours != 1 {
            return Err(format!("baggage ends with {expected_last}, once"));
        }
    }
    // SPEC §7: a client's `canary-version` member survives only along with a kept tag.
    let rewrites_baggage = config.tag_header == "baggage"
        || decision
            .normalized
            .iter()
            .any(|index| config.normalize[index].header == "baggage");
    if !config.baggage && !rewrites_baggage && decision.client_tag != ClientTag::Kept {
        let members = canary_tagger::baggage::members(headers.values("baggage").into_iter());
        if members.ours {
            return Err("a client's canary-version member was left in baggage".into());
        }
    }
    Ok(())
}

/// Each normalized header is exactly the default of the last entry naming it.
fn check_normalized(
    config: &CompiledConfig,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    for index in decision.normalized.iter() {
        let header = &config.normalize[index].header;
        let last_default = decision
            .normalized
            .iter()
            .map(|i| &config.normalize[i])
            .filter(|entry| entry.header == *header)
            .last()
            .map(|entry| entry.default.as_bytes());
        if headers.values(header) != [last_default.unwrap()] {
            return Err(format!("{header} is exactly its default"));
        }
    }
    Ok(())
}

/// The response effects: the sticky id's `Set-Cookie`, then the response header, no more.
fn check_response_effects(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let version = config.version_name(decision.version);
    let response: Vec<(String, String)> = decision
        .response_effects(config)
        .map(|effect| {
            let value = String::from_utf8(effect.value().into_owned()).unwrap();
            (effect.name.to_string(), value)
        })
        .collect();
    let mut expected = Vec::new();
    if let (Some(id), Some(sticky)) = (decision.sticky_id, &config.sticky_cookie) {
        expected.push(("set-cookie".to_string(), sticky.set_cookie(id.as_str())));
    }
    if let Some(header) = &config.response_header {
        expected.push((header.clone(), version.to_string()));
    }
    if response != expected {
        return Err(format!(
            "response effects {response:?}, expected {expected:?}"
        ));
    }
    Ok(())
}

#[test]
fn observed_steps_and_applied_effects_agree_with_the_decision() {
    const CONFIGS: u64 = 300;
    const REQUESTS_PER_CONFIG: usize = 12;
    let base = base_seed() ^ 0x0e77_ec75;
    let (mut normalized, mut kept, mut baggage) = (0usize, 0usize, 0usize);
    for n in 0..CONFIGS {
        let seed = base.wrapping_add(n.wrapping_mul(0x9e37_79b9));
        let mut rng = Rng::new(seed);
        let json = random_config(&mut rng).to_string();
        let config = CompiledConfig::from_json(json.as_bytes()).unwrap();
        for _ in 0..REQUESTS_PER_CONFIG {
            let request = random_request(&mut rng);
            let entropy = rng.u128();
            let context = || {
                format!(
                    "seed {seed}\nconfig: {json}\nrequest: {}",
                    common::describe(&request)
                )
            };
            let mut steps = Steps::default();
            let observed = engine::decide_observed(&config, &request, entropy, &mut steps);
            let decision = engine::decide(&config, &request, entropy);
            assert_eq!(
                observed,
                decision,
                "observing changed the decision\n{}",
                context()
            );
            if let Err(why) = check_steps(&config, &decision, &steps) {
                panic!("{why}\n{}", context());
            }
            if let Err(why) = check_effects(&config, &request, &decision) {
                panic!("{why}\n{}", context());
            }
            normalized += usize::from(!decision.normalized.is_empty());
            kept += usize::from(decision.client_tag == ClientTag::Kept);
            baggage += usize::from(config.baggage && request.header_values("baggage").count() > 0);
        }
    }
    assert!(
        normalized > 0 && kept > 0 && baggage > 0,
        "{normalized} normalized, {kept} kept, {baggage} with baggage"
    );
}

// ------------------------------------------------------------------ (b) distribution

/// A split on cookie `uid`; weights in buckets (1 bucket = 0.01 %).
fn split_config(name: &str, weights: &[(&str, u32)]) -> CompiledConfig {
    let weights: Vec<Value> = weights
        .iter()
        .map(|&(version, buckets)| json!({"version": version, "percent": percent(buckets)}))
        .collect();
    common::compile(
        &json!({
            "versions": ["v1", "v2", "v3"],
            "default_version": "v1",
            "rules": [{"name": name, "split": {"weights": weights, "key": ["cookie:uid"]}}],
        })
        .to_string(),
    )
}

fn version_of(config: &CompiledConfig, uid: &str) -> String {
    let decision = engine::decide(config, &OwnedRequest::new().cookie("uid", uid), 0);
    assert_eq!(decision.split.map(|s| s.key), Some(SplitKey::Key(0)));
    config.version_name(decision.version).to_string()
}

/// Sequential ids (the harsh case for a hash) and random 64-bit hex ids.
fn key_families() -> [(&'static str, Vec<String>); 2] {
    let mut rng = Rng::new(base_seed());
    [
        (
            "sequential",
            (0..100_000).map(|i| format!("user-{i}")).collect(),
        ),
        (
            "random",
            (0..100_000)
                .map(|_| format!("{:016x}", rng.next_u64()))
                .collect(),
        ),
    ]
}

#[test]
fn splits_land_within_one_point_of_their_weights_over_100k_keys() {
    for (weights, expected_first) in [
        (vec![("v2", 1000), ("v1", 9000)], 10.0),
        (vec![("v2", 5000), ("v1", 5000)], 50.0),
    ] {
        let config = split_config("android-half", &weights);
        for (family, keys) in key_families() {
            let on_first = keys
                .iter()
                .filter(|uid| version_of(&config, uid) == "v2")
                .count();
            let share = 100.0 * f64::from(u32::try_from(on_first).unwrap()) / 100_000.0;
            assert!(
                (share - expected_first).abs() <= 1.0,
                "{weights:?}, {family} keys: {share:.2} % on v2"
            );
        }
    }
}

// ------------------------------------------------------------------ (c) monotonic growth

#[test]
fn raising_the_first_versions_percent_never_moves_a_user_out_of_it() {
    // Percents in buckets: 1000 is 10 %.
    let two_way = |p: u32| split_config("ramp", &[("v2", p), ("v1", 10_000 - p)]);
    let three_way = |p: u32| {
        let rest = 10_000 - p;
        split_config(
            "ramp",
            &[("v3", p), ("v2", rest / 2), ("v1", rest - rest / 2)],
        )
    };
    let steps: &[(u32, u32)] = &[
        (1000, 2500),
        (2500, 5000),
        (5000, 10_000),
        (1000, 10_000),
        (0, 1000),
        (100, 9900),
        (50, 125),
        (3333, 6667),
    ];
    let mut rng = Rng::new(base_seed() ^ 0x5eed);
    let keys: Vec<String> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("user-{i}")
            } else {
                format!("{:032x}", rng.u128())
            }
        })
        .collect();
    for &(low, high) in steps {
        for (shape, canary, before, after) in [
            ("two-way", "v2", two_way(low), two_way(high)),
            ("three-way", "v3", three_way(low), three_way(high)),
        ] {
            assert_nobody_moves_out(&keys, shape, canary, (low, high), &before, &after);
        }
    }
}

/// No user of `keys` on `canary` (the first listed version of a `shape` split) `before`
/// leaves it `after`, its growth from `low` to `high` buckets; 0 % is nobody, 100 % everyone.
fn assert_nobody_moves_out(
    keys: &[String],
    shape: &str,
    canary: &str,
    (low, high): (u32, u32),
    before: &CompiledConfig,
    after: &CompiledConfig,
) {
    let canary_share = |config: &CompiledConfig| -> Vec<bool> {
        keys.iter()
            .map(|uid| version_of(config, uid) == canary)
            .collect()
    };
    let was = canary_share(before);
    let is = canary_share(after);
    let moved_out: Vec<&String> = keys
        .iter()
        .zip(was.iter().zip(&is))
        .filter(|(_, (was, is))| **was && !**is)
        .map(|(uid, _)| uid)
        .take(5)
        .collect();
    assert!(
        moved_out.is_empty(),
        "{shape} {low} → {high} buckets: users left {canary}, e.g. {moved_out:?}"
    );
    let (count_before, count_after) = (
        was.iter().filter(|b| **b).count(),
        is.iter().filter(|b| **b).count(),
    );
    assert!(count_after >= count_before);
    if high == 10_000 {
        assert_eq!(count_after, keys.len(), "{shape}: 100 % is everyone");
    }
    if low == 0 {
        assert_eq!(count_before, 0, "{shape}: 0 % is nobody");
    }
}

/// Standard base64 of 16 to 80 random bytes, written out here so the test does not trust
/// the decoder it tests.
fn random_base64_key(rng: &mut Rng) -> String {
    let bytes: Vec<u8> = (0..rng.range(16, 80)).map(|_| rng.byte()).collect();
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            text.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    while text.len() % 4 != 0 {
        text.push('=');
    }
    text
}

/// The value of the `uid` cookie that `decision`'s first response effect (its
/// `Set-Cookie`) sets.
fn issued_cookie_value(config: &CompiledConfig, decision: &Decision) -> String {
    let set_cookie = decision
        .response_effects(config)
        .next()
        .unwrap()
        .value()
        .into_owned();
    let set_cookie = String::from_utf8(set_cookie).unwrap();
    set_cookie
        .strip_prefix("uid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string()
}

/// `value` with one byte changed (never into a cookie separator), `value` cut short, and
/// random bytes.
fn tampered_cookie_values(rng: &mut Rng, value: &str) -> [Vec<u8>; 3] {
    let mut bytes = value.as_bytes().to_vec();
    let at = rng.below(bytes.len());
    let original = bytes[at];
    while bytes[at] == original || matches!(bytes[at], b';' | b' ' | b',') {
        bytes[at] = *rng.pick(b"09afgA.x-");
    }
    let cut = rng.below(bytes.len());
    [
        bytes,
        value.as_bytes()[..cut].to_vec(),
        random_bytes(rng, 90),
    ]
}

/// The cookie `value` that `first` issued verifies under `config`: the same version and
/// bucket, from the sticky cookie, nothing issued or rejected.
fn assert_verified_again(config: &CompiledConfig, value: &str, first: &Decision, context: &str) {
    let again = engine::decide(config, &OwnedRequest::new().cookie("uid", value), 0);
    assert_eq!(again.version, first.version, "{context}");
    assert_eq!(
        again.split.unwrap().key,
        SplitKey::StickyCookie,
        "{context}"
    );
    assert_eq!(
        again.split.unwrap().bucket,
        first.split.unwrap().bucket,
        "{context}"
    );
    assert!(
        again.sticky_id.is_none() && again.sticky_rejected.is_none(),
        "{context}"
    );
}

/// A cookie of `changed` bytes is no sticky cookie under `config`: rejected, or (when it is
/// not even the cookie's shape) a new id issued; never decided from the cookie.
fn assert_not_verified(config: &CompiledConfig, changed: &[u8], context: &str) {
    let request = OwnedRequest::new().cookie("uid", std::str::from_utf8(changed).unwrap_or("x"));
    let decision = engine::decide(config, &request, 2);
    assert!(
        decision.sticky_rejected.is_some() || decision.split.unwrap().key == SplitKey::NewStickyId,
        "{context}: {:?} accepted",
        String::from_utf8_lossy(changed)
    );
    assert_ne!(
        decision.split.unwrap().key,
        SplitKey::StickyCookie,
        "{context}"
    );
}

/// SPEC §10: every id a split issues under `signing` comes back verified onto the same
/// version, with the ID hashed, under every key order that still lists its key; changing
/// any one byte of the cookie or cutting it short makes it no sticky cookie (rejected,
/// a fresh id issued); random and hostile values never verify and never panic.
#[test]
fn signed_ids_verify_only_unchanged_and_rotation_moves_nobody() {
    let seed = base_seed() ^ 0x5167_ed1d;
    let mut rng = Rng::new(seed);
    let json = |weights: &str| {
        format!(
            r#"{{"versions": ["v1", "v2", "v3"], "default_version": "v1",
                "rules": [{{"name": "s", "split": {{"weights": {weights}}}}}],
                "sticky_cookie": {{"name": "uid", "signing": {{"keys_env": "K"}}}}}}"#
        )
    };
    let weights = r#"[{"version": "v3", "percent": 20}, {"version": "v2", "percent": 30},
                      {"version": "v1", "percent": 50}]"#;
    let compile = |keys: &str| {
        CompiledConfig::from_json_in(json(weights).as_bytes(), &[("K", keys)]).unwrap()
    };
    for round in 0..50 {
        let (a, b) = (random_base64_key(&mut rng), random_base64_key(&mut rng));
        let old = compile(&format!("a:{a}"));
        let rotated = compile(&format!("b:{b},a:{a}"));
        let dropped = compile(&format!("b:{b}"));
        let first = engine::decide(&old, &OwnedRequest::new(), rng.u128());
        let id = first.sticky_id.unwrap();
        let value = issued_cookie_value(&old, &first);
        let context = format!("seed {seed:#x} round {round}: {value}");
        for config in [&old, &rotated] {
            assert_verified_again(config, &value, &first, &context);
        }
        let gone = engine::decide(&dropped, &OwnedRequest::new().cookie("uid", &value), 1);
        assert!(
            gone.sticky_rejected.is_some() && gone.sticky_id.is_some(),
            "{context}"
        );
        for changed in tampered_cookie_values(&mut rng, &value) {
            assert_not_verified(&old, &changed, &context);
        }
        assert!(
            value.starts_with(&format!("{}.a.", id.as_str())),
            "{context}"
        );
    }
}

// ------------------------------------------------------------------ (d) probed headers

/// When [`engine::probe_headers`] names the only headers a config can consult, the filter
/// asks Envoy whether those are present and, when none is, decides on an empty header map
/// instead of reading the whole one: a request without them must decide, and write, exactly
/// as the same request with no headers at all.
#[test]
fn a_request_without_the_probed_headers_decides_as_one_without_headers() {
    const CONFIGS: u64 = 400;
    const REQUESTS_PER_CONFIG: usize = 12;
    let base = base_seed() ^ 0x0070_be5e;
    let mut probed = 0usize;
    for n in 0..CONFIGS {
        let seed = base.wrapping_add(n.wrapping_mul(0x9e37_79b9));
        let mut rng = Rng::new(seed);
        let mut json = random_config(&mut rng);
        if rng.chance(70) {
            // Most random configs have rules; the probe is for those without.
            json.as_object_mut().unwrap().remove("rules");
            json.as_object_mut().unwrap().remove("normalize");
        }
        let config = CompiledConfig::from_json(json.to_string().as_bytes()).unwrap();
        let Some(names) = engine::probe_headers(&config) else {
            assert!(
                !config.rules.is_empty() || !config.normalize.is_empty(),
                "seed {seed}: no probe for {json}"
            );
            continue;
        };
        for _ in 0..REQUESTS_PER_CONFIG {
            let mut request = OwnedRequest::new().peer("203.0.113.7:443");
            for (name, value) in random_request(&mut rng).headers() {
                if !names.contains(&Some(name.as_str())) {
                    request = request.header(name, value);
                }
            }
            let empty = OwnedRequest::new().peer("203.0.113.7:443");
            let entropy = rng.u128();
            let context = || {
                format!(
                    "seed {seed}\nconfig: {json}\nrequest: {}",
                    common::describe(&request)
                )
            };
            let decision = engine::decide(&config, &request, entropy);
            assert_eq!(
                decision,
                engine::decide(&config, &empty, entropy),
                "{}",
                context()
            );
            let effects = |r: &OwnedRequest| -> Vec<(String, SetMode, Vec<u8>)> {
                decision
                    .request_effects(&config, r)
                    .map(|e| (e.name.to_string(), e.mode, e.value(r).into_owned()))
                    .collect()
            };
            assert_eq!(effects(&request), effects(&empty), "{}", context());
            probed += 1;
        }
    }
    assert!(probed > 1000, "only {probed} probed requests");
}

// ------------------------------------------------------------------ (e) time-based ramps

/// A split of `weights` (buckets) over v1.. with `split.ramp`, on cookie `uid`.
fn ramped_config(weights: &[u32], start: &str, duration_s: u64, to: u32) -> Value {
    let versions = ["v1", "v2", "v3", "v4"];
    let weights: Vec<Value> = weights
        .iter()
        .zip(versions)
        .map(|(&buckets, version)| json!({"version": version, "percent": percent(buckets)}))
        .collect();
    json!({
        "versions": versions,
        "default_version": "v1",
        "rules": [{"name": "ramp", "split": {
            "weights": weights,
            "ramp": {"start": start, "duration_s": duration_s, "to": percent(to)},
            "key": ["cookie:uid"],
        }}],
    })
}

/// A ramp's weights (1 to 4 parts, in buckets), the first version's buckets at its end (at
/// least its start, all of them one time in four) and its duration (seconds to decades).
fn random_ramp(rng: &mut Rng) -> (Vec<u32>, u32, u64) {
    let parts = rng.range(1, 4);
    let weights = random_weights(rng, parts);
    let first = weights[0];
    let to = if rng.chance(25) {
        10_000
    } else {
        first + u32::try_from(rng.below(usize::try_from(10_001 - first).unwrap())).unwrap()
    };
    let duration_s = match rng.below(3) {
        0 => 1 + u64::try_from(rng.below(30)).unwrap(),
        1 => 1 + u64::try_from(rng.below(86_400)).unwrap(),
        _ => 1 + rng.next_u64() % 1_000_000_000,
    };
    (weights, to, duration_s)
}

/// Five times before, during and after a ramp from `start` over `duration_s`, in
/// increasing order.
fn times_around(rng: &mut Rng, start: i64, duration_s: u64) -> Vec<i64> {
    let span = i64::try_from(duration_s).unwrap();
    let mut times: Vec<i64> = (0..5)
        .map(|_| {
            start - 10 + i64::try_from(rng.next_u64() % u64::try_from(span + 20).unwrap()).unwrap()
        })
        .collect();
    times.sort_unstable();
    times
}

/// With the clock at `now`: the split's range ends rise to [`BUCKETS`], and the first
/// version has the buckets the ramp gives it (`first` before the start, the ramp's `to`
/// after its end). Returns those buckets.
fn check_ramp_ranges_at(
    split: &canary_tagger::config::Split,
    ramp: &canary_tagger::ramp::Ramp,
    first: u32,
    now: i64,
    case: usize,
    json: &Value,
) -> u16 {
    let ranges: Vec<(u16, VersionId)> = split.ranges().collect();
    let ends: Vec<u16> = ranges.iter().map(|(end, _)| *end).collect();
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]) && ends.last() == Some(&BUCKETS),
        "case {case} {json} at {now}: ends {ends:?}"
    );
    let expected_first = ramp.first_at(u16::try_from(first).unwrap(), now);
    assert_eq!(
        split.first_buckets(),
        expected_first,
        "case {case} {json} at {now}"
    );
    if now <= ramp.start {
        assert_eq!(
            u32::from(expected_first),
            first,
            "case {case}: before the start"
        );
    }
    if now >= ramp.end() {
        assert_eq!(expected_first, ramp.to, "case {case}: after the end");
    }
    expected_first
}

#[test]
fn while_a_ramp_runs_no_user_ever_leaves_the_first_version() {
    use canary_tagger::ramp::{format_rfc3339, Ramp};

    let mut rng = Rng::new(base_seed() ^ 0x7a3b);
    let keys: Vec<String> = (0..400)
        .map(|i| format!("{i}-{:016x}", rng.next_u64()))
        .collect();
    let start: i64 = 1_796_119_200; // 2026-12-01T10:00:00Z
    for case in 0..150 {
        let (weights, to, duration_s) = random_ramp(&mut rng);
        let first = weights[0];
        let json = ramped_config(&weights, &format_rfc3339(start), duration_s, to);
        let config = common::compile(&json.to_string());
        let Action::Split(split) = &config.rules[0].action else {
            panic!("not a split")
        };
        let ramp = split.ramp.unwrap();
        assert_eq!(
            ramp,
            Ramp {
                start,
                duration_s,
                to: u16::try_from(to).unwrap()
            }
        );
        let times = times_around(&mut rng, start, duration_s);
        let mut on_first = vec![false; keys.len()];
        let mut first_buckets = 0;
        for &now in &times {
            config.set_time(now);
            let expected_first = check_ramp_ranges_at(split, &ramp, first, now, case, &json);
            assert!(
                expected_first >= first_buckets,
                "case {case}: the first version shrank"
            );
            first_buckets = expected_first;
            for (i, uid) in keys.iter().enumerate() {
                let is_first = version_of(&config, uid) == "v1";
                assert!(
                    is_first || !on_first[i],
                    "case {case} {json}: user {uid} left v1 at {now} ({})",
                    format_rfc3339(now)
                );
                on_first[i] = is_first;
            }
        }
    }
}
