//! Property tests with a small deterministic PRNG (SplitMix64): random valid configurations
//! and hostile requests never panic and always yield a known version; the observed steps of
//! a decision agree with it, and applying its effects leaves the request tagged as the SPEC
//! says; splits are as even as their weights say; and growing the first listed version only
//! ever moves users into it.
//!
//! Deterministic by default; `CANARY_PROPERTY_SEED=<u64>` explores another sequence, and
//! every failure prints the seed of its configuration so it can be replayed.
//!
//! The random inputs (the PRNG, configurations, requests) are in `properties/generate.rs`;
//! what must hold of a decision, its observed steps and its effects in `properties/checks.rs`.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

#[path = "properties/checks.rs"]
mod checks;
mod common;
#[path = "properties/generate.rs"]
mod generate;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use canary_tagger::config::{Action, CompiledConfig, VersionId};
use canary_tagger::effects::SetMode;
use canary_tagger::engine::{self, ClientTag, DecidedBy, Decision, SplitKey};
use canary_tagger::hash::BUCKETS;
use canary_tagger::request::{OwnedRequest, RequestView};
use serde_json::{json, Value};

use checks::{check_effects, check_invariants, check_steps, Steps};
use generate::{
    base_seed, percent, random_bytes, random_config, random_request, random_weights, Rng,
};

// ------------------------------------------------------------------ (a) never panics

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
