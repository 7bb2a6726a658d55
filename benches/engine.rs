//! Engine micro-benchmarks (issue 8): nanoseconds per `decide()` for the seed config of
//! SPEC §2 on the benchmark's request mix, for the 50-rule worst case, per request kind,
//! and for the split hash alone. Run with `cargo bench --bench engine` (bench/run.sh does,
//! and bench/criterion_summary.py turns criterion's estimates into BENCHMARKS.md's table).
//!
//! One iteration is one decision; the mix benches step to the next request each iteration.

// Benchmark code: a malformed fixture should stop the run loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine::decide;
use canary_tagger::hash;
use canary_tagger::request::OwnedRequest;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../fixtures/mod.rs"]
mod fixtures;

/// A fixed entropy: the benches' splits always find a key, so it is never used.
const ENTROPY: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;

fn bench_mix(c: &mut Criterion, id: &str, config: &CompiledConfig, requests: &[&OwnedRequest]) {
    let mut next = 0usize;
    c.bench_function(id, |b| {
        b.iter(|| {
            next = (next + 1) % requests.len();
            decide(config, black_box(requests[next]), ENTROPY)
        })
    });
}

fn engine(c: &mut Criterion) {
    let templates = fixtures::templates();
    let requests = fixtures::cycle(&templates);
    let seed = CompiledConfig::from_json(fixtures::SPEC_EXAMPLE.as_bytes()).expect("seed config");
    let rules50 = CompiledConfig::from_json(fixtures::RULES50_CONFIG.as_bytes()).expect("rules50");
    assert_eq!(rules50.rules.len(), 50);

    bench_mix(c, "decide/seed/mix", &seed, &requests);
    bench_mix(c, "decide/rules50/mix", &rules50, &requests);

    // The same mix read the way the filter reads it: every lookup walks Envoy's serialized
    // header map in place (SerializedRequest) instead of a pre-split list.
    let serialized: Vec<_> = requests.iter().map(|r| fixtures::serialized(r)).collect();
    let mut next = 0usize;
    c.bench_function("decide/seed/mix-serialized", |b| {
        b.iter(|| {
            next = (next + 1) % serialized.len();
            decide(&seed, black_box(&serialized[next]), ENTROPY)
        })
    });

    // The seed's paths one by one: first rule (cookie), regex rule, the deepest path
    // (every rule, then the split hash), and no rule matching at all.
    for name in [
        "tester",
        "chrome-desktop",
        "android-firefox-uid",
        "iphone-safari",
    ] {
        let template = templates.iter().find(|t| t.name == name).expect(name);
        let request = &template.request;
        c.bench_function(&format!("decide/seed/{name}"), |b| {
            b.iter(|| decide(&seed, black_box(request), ENTROPY))
        });
    }

    // A split keyed on the sticky cookie alone, plain and signed (SPEC §10): the signed
    // cookie costs one HMAC-SHA256 verification (two SHA-256 compressions) on top.
    let sticky_config = |signing: &str| {
        let json = format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1",
                "rules": [{{"name": "s", "split": {{"weights": [{{"version": "v2", "percent": 10}},
                                                               {{"version": "v1", "percent": 90}}]}}}}],
                "sticky_cookie": {{"name": "uid"{signing}}}}}"#
        );
        let keys = [(
            "K",
            "new:bmV3LWtleS0wMTIzNDU2Nzg5YWJjZGVm,old:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm",
        )];
        CompiledConfig::from_json_in(json.as_bytes(), &keys).expect("sticky config")
    };
    let plain = sticky_config("");
    let signed = sticky_config(r#", "signing": {"keys_env": "K"}"#);
    let id = "00112233445566778899aabbccddeeff";
    let keys = signed
        .sticky_cookie
        .as_ref()
        .and_then(|s| s.signing.as_ref())
        .expect("keys");
    let signed_value = keys.sign(id.as_bytes()).as_str().to_string();
    for (name, config, value) in [
        ("plain", &plain, id.to_string()),
        ("signed", &signed, signed_value.clone()),
        (
            "signed-forged",
            &signed,
            signed_value.replace(".new.", ".old."),
        ),
    ] {
        let request = OwnedRequest::new().cookie("uid", &value);
        c.bench_function(&format!("decide/sticky/{name}"), |b| {
            b.iter(|| decide(config, black_box(&request), ENTROPY))
        });
    }

    c.bench_function("hash/bucket", |b| {
        b.iter(|| hash::bucket(black_box(b"android"), black_box(b"alice")))
    });

    // Not per request: what a configuration push costs (on_configure).
    c.bench_function("config/compile/seed", |b| {
        b.iter(|| CompiledConfig::from_json(black_box(fixtures::SPEC_EXAMPLE.as_bytes())))
    });
}

criterion_group! {
    name = benches;
    // Short runs: make bench must finish in minutes on a two-core machine.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = engine
}
criterion_main!(benches);
