//! Heap allocations per `decide()` (issue 8): a counting global allocator wraps the system
//! allocator, and every request of the benchmark mix (`fixtures/requests.json`) is decided
//! under the seed config and the 50-rule config. The common path must not allocate, so a
//! change that starts allocating per request fails here instead of showing up only as a
//! slower gateway. The filter's whole path (decide, then write the decision's effects) is
//! counted too: it allocates only a header value too long for its stack buffer.
//!
//! Counting is per thread, so the test harness's other threads do not disturb it.

// Test helpers outside #[test] fns: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use canary_tagger::baggage;
use canary_tagger::config::CompiledConfig;
use canary_tagger::effects::{AddValue, HeaderWriter, SetMode, SetValue};
use canary_tagger::engine::{decide, Decision};
use canary_tagger::hash;
use canary_tagger::request::{OwnedRequest, RequestView, SerializedRequest};

mod common;

use common::fixtures;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // try_with: the allocator also runs while thread-locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Heap allocations (alloc, alloc_zeroed, realloc) made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

/// Allocations allowed per decision on the common path. Raise it only with a reason in
/// BENCHMARKS.md: every allocation is paid on every request at the gateway.
const BUDGET: u64 = 0;

const ENTROPY: u128 = 7;

fn decisions_and_allocations(
    config: &CompiledConfig,
    requests: &[fixtures::MixRequest],
) -> Vec<(String, Decision, u64)> {
    // Warm-up: the regex engine builds its per-thread search cache on first use (once per
    // thread for the life of the VM, not per request).
    for r in requests {
        decide(config, &r.request, ENTROPY);
    }
    requests
        .iter()
        .map(|r| {
            let (decision, n) = allocations(|| decide(config, &r.request, ENTROPY));
            (r.name.clone(), decision, n)
        })
        .collect()
}

fn over_budget(results: &[(String, Decision, u64)]) -> Vec<String> {
    results
        .iter()
        .filter(|(_, _, n)| *n > BUDGET)
        .map(|(name, _, n)| format!("{name}: {n} allocations"))
        .collect()
}

/// Fails naming every request kind that allocated more than the budget.
fn assert_within_budget(over: &[String]) {
    assert!(
        over.is_empty(),
        "over the budget of {BUDGET} per decision:\n{}",
        over.join("\n")
    );
}

#[test]
fn seed_config_decides_without_allocating() {
    let config = CompiledConfig::from_json(fixtures::SPEC_EXAMPLE.as_bytes()).unwrap();
    let templates = fixtures::templates();
    let results = decisions_and_allocations(&config, &templates);

    // The mix means what fixtures/requests.json says it means (and what the Envoy benchmark's
    // preflight checks): otherwise this would count allocations of the wrong paths.
    for ((name, decision, _), template) in results.iter().zip(&templates) {
        let expected = if template.seed == "split" {
            let key = split_key(&template.request);
            if hash::bucket(b"android", key.as_bytes()) < 5000 {
                "v2"
            } else {
                "v1"
            }
        } else {
            template.seed.as_str()
        };
        assert_eq!(config.version_name(decision.version), expected, "{name}");
    }
    assert_within_budget(&over_budget(&results));
}

#[test]
fn a_ramp_moves_and_decides_without_allocating() {
    // The seed configuration with its split ramping 50 → 100 % over an hour.
    let json = fixtures::SPEC_EXAMPLE.replace(
        r#""key": ["#,
        r#""ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 100}, "key": ["#,
    );
    let config = CompiledConfig::from_json(json.as_bytes()).unwrap();
    assert_eq!(config.ramped_splits().count(), 1);
    let start = 1_796_119_200;
    for now in [start - 1, start + 1, start + 1800, start + 3600] {
        // The filter's tick: moving the ranges allocates nothing either.
        let ((), moved) = allocations(|| config.set_time(now));
        assert_eq!(moved, 0, "set_time({now})");
        let results = decisions_and_allocations(&config, &fixtures::templates());
        assert_within_budget(&over_budget(&results));
    }
}

#[test]
fn fifty_rule_config_decides_without_allocating() {
    let config = CompiledConfig::from_json(fixtures::RULES50_CONFIG.as_bytes()).unwrap();
    let results = decisions_and_allocations(&config, &fixtures::templates());
    assert_within_budget(&over_budget(&results));
}

/// The seed config and the mix as the filter reads it (Envoy's serialized header map),
/// each request decided once to warm up.
fn seed_config_and_serialized_mix() -> (
    CompiledConfig,
    Vec<fixtures::MixRequest>,
    Vec<SerializedRequest>,
) {
    let config = CompiledConfig::from_json(fixtures::SPEC_EXAMPLE.as_bytes()).unwrap();
    let templates = fixtures::templates();
    let serialized: Vec<_> = templates
        .iter()
        .map(|t| fixtures::serialized(&t.request))
        .collect();
    for request in &serialized {
        decide(&config, request, ENTROPY);
    }
    (config, templates, serialized)
}

/// The filter's own request type: Envoy's serialized header map read in place. The seed
/// config takes the client IP from x-forwarded-for, so the peer address (which would be
/// fetched, and allocated, on first use) is never needed.
#[test]
fn seed_config_over_the_serialized_header_map_does_not_allocate() {
    let (config, templates, serialized) = seed_config_and_serialized_mix();
    let over: Vec<String> = templates
        .iter()
        .zip(&serialized)
        .filter_map(|(template, request)| {
            let (_, n) = allocations(|| decide(&config, request, ENTROPY));
            (n > BUDGET).then(|| format!("{}: {n} allocations", template.name))
        })
        .collect();
    assert_within_budget(&over);
}

/// A writer that keeps no copy: it counts lines and bytes, as the host would take them.
#[derive(Default)]
struct Written {
    lines: usize,
    bytes: usize,
}

impl HeaderWriter for Written {
    fn add(&mut self, _name: &str, value: &[u8]) {
        self.lines += 1;
        self.bytes += value.len();
    }

    fn replace(&mut self, _name: &str, value: &[u8]) {
        self.add("", value);
    }

    fn remove(&mut self, _name: &str) {
        self.lines += 1;
    }
}

/// What the filter does with a request, without the host: decide, write the request
/// effects, and (in the response phase) the response effects.
fn filter_path<R: RequestView>(config: &CompiledConfig, request: &R) -> Written {
    let decision = decide(config, request, ENTROPY);
    let mut written = Written::default();
    for effect in decision.request_effects(config, request) {
        effect.apply(request, &mut written);
    }
    for effect in decision.response_effects(config) {
        effect.apply(&mut written);
    }
    written
}

/// The values the filter's write builds on the heap: a `Set-Cookie`, and a `baggage` too
/// long for the stack buffer. Counted from the effects list, which itself does not allocate.
fn heap_values<R: RequestView>(config: &CompiledConfig, request: &R) -> u64 {
    let decision = decide(config, request, ENTROPY);
    let set = decision.request_effects(config, request).filter(|effect| {
        matches!(effect.value, SetValue::Baggage { .. })
            && effect.mode != SetMode::Unchanged
            && effect.value(request).len() > baggage::STACK_VALUE
    });
    let added = decision
        .response_effects(config)
        .filter(|effect| matches!(effect.value, AddValue::SetCookie { .. }));
    u64::try_from(set.count() + added.count()).unwrap()
}

/// The filter's path over the filter's request type, for the mix as it is and with a short
/// and a long `baggage` added: the decision and its effects list allocate nothing; writing
/// allocates exactly one buffer per value too long for the stack.
#[test]
fn the_filter_path_allocates_only_long_values() {
    let (config, templates, _) = seed_config_and_serialized_mix();
    let long = format!("tenant=acme,trace={}", "x".repeat(baggage::STACK_VALUE));
    let requests: Vec<(String, SerializedRequest)> = templates
        .iter()
        .flat_map(|t| {
            let with_baggage = |value: &str| t.request.clone().header("baggage", value);
            [
                (t.name.clone(), fixtures::serialized(&t.request)),
                (
                    format!("{} + baggage", t.name),
                    fixtures::serialized(&with_baggage("tenant=acme,canary-version=v9")),
                ),
                (
                    format!("{} + long baggage", t.name),
                    fixtures::serialized(&with_baggage(&long)),
                ),
            ]
        })
        .collect();
    for (_, request) in &requests {
        filter_path(&config, request);
    }
    let mut over = Vec::new();
    let mut on_heap = 0;
    for (name, request) in &requests {
        let (effects, n) = allocations(|| {
            let decision = decide(&config, request, ENTROPY);
            let set = decision.request_effects(&config, request).count();
            set + decision.response_effects(&config).count()
        });
        assert!(effects >= 2, "{name}: tag and baggage at least");
        if n > BUDGET {
            over.push(format!(
                "{name}: {n} allocations deciding and listing effects"
            ));
        }
        let heap = heap_values(&config, request);
        let (written, n) = allocations(|| filter_path(&config, request));
        assert!(written.lines >= 2 && written.bytes > 0, "{name}");
        if n != BUDGET + heap {
            over.push(format!(
                "{name}: {n} allocations on the filter path, expected {heap} (long values)"
            ));
        }
        on_heap += heap;
    }
    assert_eq!(
        on_heap,
        u64::try_from(templates.len()).unwrap(),
        "one long baggage each"
    );
    assert_within_budget(&over);
}

#[test]
fn the_counter_counts() {
    let (_, n) = allocations(|| Vec::<u8>::with_capacity(16));
    assert_eq!(n, 1);
}

/// The android split's key chain: cookie uid, header x-user-id, client IP (XFF, one hop).
fn split_key(request: &OwnedRequest) -> String {
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    if let Some(cookies) = header("cookie") {
        for pair in cookies.split(';') {
            if let Some(("uid", value)) = pair.trim().split_once('=') {
                return value.to_string();
            }
        }
    }
    if let Some(id) = header("x-user-id") {
        return id;
    }
    let xff = header("x-forwarded-for").unwrap();
    let entries: Vec<&str> = xff.split(',').map(str::trim).collect();
    entries[entries.len() - 2].to_string()
}

/// `id` signed by the `sticky_cookie` of `json` compiled with the keys `KEYS` = `keys`.
fn signed_id(json: &str, keys: &str, id: &str) -> String {
    let config = CompiledConfig::from_json_in(json.as_bytes(), &[("KEYS", keys)]).unwrap();
    let signing = config.sticky_cookie.unwrap().signing.unwrap();
    signing.sign(id.as_bytes()).as_str().to_string()
}

/// `sticky_cookie.signing` (SPEC §10): verifying a sticky cookie — valid, forged, unsigned,
/// unknown key, garbage — and issuing a signed id allocate nothing while deciding; writing
/// allocates the `Set-Cookie` only.
#[test]
fn signed_sticky_cookies_decide_without_allocating() {
    let json = r#"{"versions": ["v1", "v2"], "default_version": "v1",
        "rules": [{"name": "half", "split": {"weights": [{"version": "v2", "percent": 50},
                                                        {"version": "v1", "percent": 50}]}}],
        "sticky_cookie": {"name": "uid", "signing": {"keys_env": "KEYS"}}}"#;
    let environment = [(
        "KEYS",
        "new:MDEyMzQ1Njc4OWFiY2RlZg==,old:ZmVkY2JhOTg3NjU0MzIxMA==",
    )];
    let config = CompiledConfig::from_json_in(json.as_bytes(), &environment).unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    let signed = signed_id(json, environment[0].1, id);
    let forged = format!("{}0{}", &signed[..32], &signed[33..]);
    let cookies = [
        ("signed", Some(signed.clone())),
        (
            "signed by the old key",
            Some(signed_id(json, "old:ZmVkY2JhOTg3NjU0MzIxMA==", id)),
        ),
        ("forged", Some(forged)),
        ("unsigned", Some(id.to_string())),
        ("unknown key", Some(signed.replace(".new.", ".gone."))),
        ("garbage", Some("%%%;garbage".to_string())),
        ("none (a signed id is issued)", None),
    ];
    for (name, cookie) in &cookies {
        let mut request = OwnedRequest::new();
        if let Some(value) = cookie {
            request = request.cookie("uid", value);
        }
        let request = fixtures::serialized(&request);
        filter_path(&config, &request);
        let (decision, n) = allocations(|| decide(&config, &request, ENTROPY));
        assert_eq!(n, BUDGET, "{name}: deciding");
        let verified = matches!(*name, "signed" | "signed by the old key");
        assert_eq!(
            decision.sticky_rejected.is_none(),
            verified || cookie.is_none(),
            "{name}"
        );
        assert_eq!(decision.sticky_id.is_some(), !verified, "{name}");
        let heap = heap_values(&config, &request);
        assert_eq!(
            heap,
            u64::from(!verified),
            "{name}: one Set-Cookie when issuing"
        );
        let (_, n) = allocations(|| filter_path(&config, &request));
        assert_eq!(n, BUDGET + heap, "{name}: the filter path");
    }
}
/// Envoy's shared data as the filter reads it, without the host: a fixed list of slots.
struct SlotList(Vec<(u32, Vec<u8>)>);

impl canary_tagger::sidecar::TraceTable for SlotList {
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T {
        read(
            self.0
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, entry)| entry.as_slice()),
        )
    }

    fn now_s(&self) -> u64 {
        1_000
    }
}

/// Sidecar mode outbound: the restore decision and its effects written; the lines written.
fn sidecar_outbound(
    config: &CompiledConfig,
    request: &SerializedRequest,
    table: &SlotList,
) -> usize {
    let restored = canary_tagger::sidecar::restore(config, request, table);
    let mut written = Written::default();
    for effect in restored.request_effects(config, request) {
        effect.apply(request, &mut written);
    }
    for effect in restored.response_effects(config) {
        effect.apply(&mut written);
    }
    written.lines
}

/// Sidecar mode inbound: the version, the trace ids, their slots and entries (built on the
/// stack); what it would store, so that none of it is optimized away.
fn sidecar_inbound(
    config: &CompiledConfig,
    request: &SerializedRequest,
    table: &SlotList,
    memory: &canary_tagger::config::TraceMemory,
) -> usize {
    use canary_tagger::sidecar::{self, TraceKey};
    let mut stored = 0;
    if let Some(version) = sidecar::inbound_version(config, request) {
        for (header, id) in sidecar::trace_ids(request) {
            let key = TraceKey::new(header, id, memory);
            stored += usize::try_from(sidecar::slot_to_write(table, key, memory, 1_000)).unwrap();
            let mut buf = [0u8; sidecar::MAX_ENTRY];
            stored +=
                sidecar::encode_entry(key, 1_000, config.version_name(version), &mut buf).len();
        }
    }
    stored
}

/// Sidecar mode's two paths over the filter's request type: inbound (the version, the
/// trace ids, their slots and entries, built on the stack) and outbound (the restore
/// decision from each source, and its effects written) allocate nothing. Reading a slot
/// through the host returns a buffer the host allocates; that is the shell's, not counted.
#[test]
fn sidecar_paths_do_not_allocate() {
    use canary_tagger::sidecar::{self, TraceKey};
    let config = CompiledConfig::from_json(
        br#"{"mode": "sidecar", "versions": ["v1", "v2", "v3"], "default_version": "v1",
             "baggage": true, "response_header": "x-served-as"}"#,
    )
    .unwrap();
    let memory = config.sidecar().unwrap().trace_memory;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let key = TraceKey::new(
        sidecar::TraceHeader::TraceParent,
        trace_id.as_bytes(),
        &memory,
    );
    let mut buf = [0u8; sidecar::MAX_ENTRY];
    let table = SlotList(vec![(
        key.slot,
        sidecar::encode_entry(key, 990, "v3", &mut buf).to_vec(),
    )]);
    let requests: Vec<SerializedRequest> = [
        OwnedRequest::new().header("x-canary-version", "v2"),
        OwnedRequest::new().header("baggage", "tenant=acme,canary-version=v2"),
        OwnedRequest::new()
            .header("traceparent", &traceparent)
            .header("x-request-id", "9f1e"),
        OwnedRequest::new()
            .header("x-canary-version", "v9")
            .header("x-b3-traceid", "463ac35c9f6413ad")
            .header("x-request-id", "never-seen"),
        OwnedRequest::new(),
    ]
    .iter()
    .map(fixtures::serialized)
    .collect();
    let outbound = |request: &SerializedRequest| sidecar_outbound(&config, request, &table);
    let inbound = |request: &SerializedRequest| sidecar_inbound(&config, request, &table, &memory);
    for request in &requests {
        outbound(request);
        inbound(request);
    }
    let over: Vec<String> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, request)| {
            let (lines, out_n) = allocations(|| outbound(request));
            let (_, in_n) = allocations(|| inbound(request));
            assert!(lines >= 2, "request {i}: the tag and the response header");
            (out_n + in_n > BUDGET)
                .then(|| format!("sidecar request {i}: {out_n} + {in_n} allocations"))
        })
        .collect();
    assert_within_budget(&over);
}
