//! Sidecar mode's engine (SPEC §8): inbound requests remembered by trace id, outbound calls
//! restored from the configured sources, over an in-memory trace table that stores entries
//! exactly as the filter stores them in Envoy's shared data.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use canary_tagger::config::{CompiledConfig, RestoreSource};
use canary_tagger::effects::{SetMode, SetValue};
use canary_tagger::request::OwnedRequest;
use canary_tagger::sidecar::{
    self, Lookup, RestoreObserver, RestoredFrom, SourceOutcome, TraceHeader, TraceKey, TraceTable,
};

mod common;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B3_ID: &str = "463ac35c9f6413ad";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

fn sidecar(extra: &str) -> CompiledConfig {
    common::compile(&format!(
        r#"{{"mode": "sidecar", "versions": ["v1", "v2", "v3"], "default_version": "v1"{extra}}}"#
    ))
}

/// Envoy's shared data as the filter uses it: slot → bytes, and a clock.
#[derive(Default)]
struct Table {
    slots: RefCell<HashMap<u32, Vec<u8>>>,
    now_s: Cell<u64>,
    clock_reads: Cell<usize>,
}

impl TraceTable for Table {
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T {
        read(self.slots.borrow().get(&slot).map(Vec::as_slice))
    }

    fn now_s(&self) -> u64 {
        self.clock_reads.set(self.clock_reads.get() + 1);
        self.now_s.get()
    }
}

impl Table {
    /// What the filter does with an inbound request: its version under each trace id.
    fn remember(&self, config: &CompiledConfig, request: &OwnedRequest) -> usize {
        let Some(version) = sidecar::inbound_version(config, request) else {
            return 0;
        };
        let memory = config.sidecar().unwrap().trace_memory;
        let mut written = 0;
        for (header, id) in sidecar::trace_ids(request) {
            let key = TraceKey::new(header, id, &memory);
            let mut buf = [0u8; sidecar::MAX_ENTRY];
            let entry = sidecar::encode_entry(
                key,
                self.now_s.get(),
                config.version_name(version),
                &mut buf,
            );
            let slot = sidecar::slot_to_write(self, key, &memory, self.now_s.get());
            self.slots.borrow_mut().insert(slot, entry.to_vec());
            written += 1;
        }
        written
    }
}

fn restore(
    config: &CompiledConfig,
    request: &OwnedRequest,
    table: &Table,
) -> (String, RestoredFrom) {
    let restored = sidecar::restore(config, request, table);
    (
        config.version_name(restored.version).to_string(),
        restored.from,
    )
}

#[test]
fn inbound_requests_are_remembered_under_every_trace_id() {
    let config = sidecar("");
    let table = Table::default();
    let inbound = OwnedRequest::new()
        .header("x-canary-version", "v2")
        .header("traceparent", traceparent(TRACE_ID))
        .header("x-b3-traceid", B3_ID)
        .header("x-request-id", "req-1");
    assert_eq!(table.remember(&config, &inbound), 3);
    // Each id alone finds v2 again; upper-case B3 ids are the same trace.
    for (name, value) in [
        ("traceparent", traceparent(TRACE_ID)),
        ("x-b3-traceid", B3_ID.to_uppercase()),
        ("x-b3-traceid", TRACE_ID.to_string()),
        ("x-request-id", "req-1".to_string()),
    ] {
        let outbound = OwnedRequest::new().header(name, &value);
        assert_eq!(
            restore(&config, &outbound, &table),
            ("v2".to_string(), RestoredFrom::Source(RestoreSource::Trace)),
            "{name}: {value}"
        );
    }
    // x-request-id is case-sensitive; unknown or repeated tags are not remembered.
    let outbound = OwnedRequest::new().header("x-request-id", "REQ-1");
    assert_eq!(restore(&config, &outbound, &table).1, RestoredFrom::Default);
    for tags in [&["v9"][..], &["v2", "v3"], &[]] {
        let inbound = tags
            .iter()
            .fold(OwnedRequest::new(), |r, tag| {
                r.header("x-canary-version", tag)
            })
            .header("x-request-id", "other");
        assert_eq!(table.remember(&config, &inbound), 0, "{tags:?}");
    }
}

#[test]
fn the_first_source_naming_a_known_version_wins() {
    let table = Table::default();
    let all = sidecar("");
    table.remember(
        &all,
        &OwnedRequest::new()
            .header("x-canary-version", "v3")
            .header("traceparent", traceparent(TRACE_ID)),
    );
    let tp = traceparent(TRACE_ID);
    let cases: Vec<(&str, OwnedRequest, &str, RestoredFrom)> = vec![
        (
            "header",
            OwnedRequest::new()
                .header("x-canary-version", "v2")
                .header("baggage", "canary-version=v1")
                .header("traceparent", &tp),
            "v2",
            RestoredFrom::Source(RestoreSource::Header),
        ),
        (
            "unknown header: baggage",
            OwnedRequest::new()
                .header("x-canary-version", "v9")
                .header("baggage", "a=1,canary-version=v1;p=2")
                .header("traceparent", &tp),
            "v1",
            RestoredFrom::Source(RestoreSource::Baggage),
        ),
        (
            "repeated header: baggage",
            OwnedRequest::new()
                .header("x-canary-version", "v2")
                .header("x-canary-version", "v2")
                .header("baggage", "canary-version=v1"),
            "v1",
            RestoredFrom::Source(RestoreSource::Baggage),
        ),
        (
            "unknown baggage: trace",
            OwnedRequest::new()
                .header("baggage", "canary-version=V2")
                .header("traceparent", &tp),
            "v3",
            RestoredFrom::Source(RestoreSource::Trace),
        ),
        (
            "nothing: default",
            OwnedRequest::new().header("x-request-id", "never-seen"),
            "v1",
            RestoredFrom::Default,
        ),
        (
            "empty request: default",
            OwnedRequest::new(),
            "v1",
            RestoredFrom::Default,
        ),
    ];
    for (case, request, version, from) in &cases {
        assert_eq!(
            restore(&all, request, &table),
            (version.to_string(), *from),
            "{case}"
        );
    }
    // The order is the configuration's: trace first.
    let trace_first = sidecar(r#", "restore": ["trace", "header"]"#);
    let request = OwnedRequest::new()
        .header("x-canary-version", "v2")
        .header("traceparent", &tp);
    assert_eq!(
        restore(&trace_first, &request, &table),
        ("v3".to_string(), RestoredFrom::Source(RestoreSource::Trace))
    );
    // A source left out is never read.
    let header_only = sidecar(r#", "restore": ["header"]"#);
    let request = OwnedRequest::new()
        .header("baggage", "canary-version=v2")
        .header("traceparent", &tp);
    assert_eq!(
        restore(&header_only, &request, &table),
        ("v1".to_string(), RestoredFrom::Default)
    );
}

#[test]
fn entries_expire_after_ttl_and_the_clock_is_read_only_for_a_hit() {
    let config = sidecar(r#", "trace_memory": {"ttl_s": 10}"#);
    let table = Table::default();
    table.now_s.set(1_000);
    let tp = traceparent(TRACE_ID);
    table.remember(
        &config,
        &OwnedRequest::new()
            .header("x-canary-version", "v2")
            .header("traceparent", &tp),
    );
    let outbound = OwnedRequest::new()
        .header("traceparent", &tp)
        .header("x-request-id", "x");
    for (now, expected) in [(1_000, "v2"), (1_010, "v2"), (1_011, "v1"), (999, "v2")] {
        table.now_s.set(now);
        assert_eq!(restore(&config, &outbound, &table).0, expected, "at {now}");
    }
    table.clock_reads.set(0);
    let unseen = OwnedRequest::new().header(
        "traceparent",
        traceparent("0af7651916cd43dd8448eb211c80319c"),
    );
    let restored = sidecar::restore(&config, &unseen, &table);
    assert!(restored.trace_missed);
    assert_eq!(table.clock_reads.get(), 0);
}

#[test]
fn a_newer_trace_takes_over_a_shared_slot_and_the_older_one_misses() {
    let config = sidecar(r#", "trace_memory": {"entries": 1}"#);
    let table = Table::default();
    let (first, second) = (
        traceparent(TRACE_ID),
        traceparent("0af7651916cd43dd8448eb211c80319c"),
    );
    table.remember(
        &config,
        &OwnedRequest::new()
            .header("x-canary-version", "v2")
            .header("traceparent", &first),
    );
    table.remember(
        &config,
        &OwnedRequest::new()
            .header("x-canary-version", "v3")
            .header("traceparent", &second),
    );
    assert_eq!(
        table.slots.borrow().len(),
        1,
        "memory is bounded by entries"
    );
    assert_eq!(
        restore(
            &config,
            &OwnedRequest::new().header("traceparent", &second),
            &table
        )
        .0,
        "v3"
    );
    let missed = sidecar::restore(
        &config,
        &OwnedRequest::new().header("traceparent", &first),
        &table,
    );
    assert_eq!(
        (missed.from, missed.trace_missed),
        (RestoredFrom::Default, true)
    );
}

#[test]
fn a_version_the_configuration_does_not_have_is_not_restored() {
    // Another configuration of the same VM id remembered v4.
    let other = common::compile(
        r#"{"mode": "sidecar", "versions": ["v1", "v4"], "default_version": "v1"}"#,
    );
    let config = sidecar("");
    let table = Table::default();
    table.remember(
        &other,
        &OwnedRequest::new()
            .header("x-canary-version", "v4")
            .header("x-request-id", "r"),
    );
    #[derive(Default)]
    struct Seen(
        Vec<(TraceHeader, Lookup)>,
        Vec<(RestoreSource, SourceOutcome)>,
    );
    impl RestoreObserver for Seen {
        fn source(&mut self, source: RestoreSource, outcome: SourceOutcome) {
            self.1.push((source, outcome));
        }
        fn trace_lookup(&mut self, header: TraceHeader, _id: &[u8], lookup: Lookup) {
            self.0.push((header, lookup));
        }
    }
    let mut seen = Seen::default();
    let restored = sidecar::restore_observed(
        &config,
        &OwnedRequest::new().header("x-request-id", "r"),
        &table,
        &mut seen,
    );
    assert_eq!(restored.from, RestoredFrom::Default);
    assert_eq!(seen.0, vec![(TraceHeader::RequestId, Lookup::NotAVersion)]);
    assert_eq!(
        seen.1,
        vec![
            (RestoreSource::Header, SourceOutcome::Absent),
            (RestoreSource::Baggage, SourceOutcome::Absent),
            (RestoreSource::Trace, SourceOutcome::NotRemembered),
        ]
    );
}

/// A request header an effect sets: name, value, how.
type SetHeader = (String, String, SetMode);

/// The request headers the restored decision sets and the response headers it adds (name,
/// value).
fn restored_effects(
    config: &CompiledConfig,
    request: &OwnedRequest,
    table: &Table,
) -> (Vec<SetHeader>, Vec<(String, String)>) {
    let restored = sidecar::restore(config, request, table);
    let set = restored
        .request_effects(config, request)
        .map(|e| {
            (
                e.name.to_string(),
                String::from_utf8(e.value(request).into_owned()).unwrap(),
                e.mode,
            )
        })
        .collect();
    let added = restored
        .response_effects(config)
        .map(|e| {
            (
                e.name.to_string(),
                String::from_utf8(e.value().into_owned()).unwrap(),
            )
        })
        .collect();
    (set, added)
}

#[test]
fn outbound_effects_replace_unknown_tags_and_write_baggage_when_configured() {
    let table = Table::default();
    let plain = sidecar(r#", "response_header": "x-served-as""#);
    let effects =
        |config: &CompiledConfig, request: &OwnedRequest| restored_effects(config, request, &table);
    let tag = |value: &str, mode| ("x-canary-version".to_string(), value.to_string(), mode);
    assert_eq!(
        effects(&plain, &OwnedRequest::new()),
        (
            vec![tag("v1", SetMode::Add)],
            vec![("x-served-as".into(), "v1".into())]
        )
    );
    assert_eq!(
        effects(
            &plain,
            &OwnedRequest::new().header("x-canary-version", "v9")
        )
        .0,
        vec![tag("v1", SetMode::Replace)]
    );
    assert_eq!(
        effects(
            &plain,
            &OwnedRequest::new().header("x-canary-version", "v2")
        )
        .0,
        vec![tag("v2", SetMode::Unchanged)]
    );

    let with_baggage = sidecar(r#", "baggage": true"#);
    let request = OwnedRequest::new().header("baggage", "tenant=acme,canary-version=v3");
    assert_eq!(
        effects(&with_baggage, &request).0,
        vec![
            tag("v3", SetMode::Add),
            (
                "baggage".into(),
                "tenant=acme,canary-version=v3".into(),
                SetMode::Unchanged
            ),
        ]
    );
    let request = OwnedRequest::new()
        .header("x-canary-version", "v2")
        .header("baggage", "canary-version=v9,k=v");
    let restored = sidecar::restore(&with_baggage, &request, &table);
    let baggage = restored
        .request_effects(&with_baggage, &request)
        .nth(1)
        .unwrap();
    assert_eq!(
        baggage.value,
        SetValue::Baggage {
            version: Some("v2")
        }
    );
    assert_eq!(baggage.mode, SetMode::Replace);
    assert_eq!(&*baggage.value(&request), b"k=v,canary-version=v2");
}

#[test]
fn hostile_trace_headers_never_panic_and_yield_a_known_version() {
    let config = sidecar(r#", "trace_memory": {"entries": 7}"#);
    let table = Table::default();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces: [&[u8]; 10] = [
        b"00-",
        b"-",
        TRACE_ID.as_bytes(),
        b"00f067aa0ba902b7",
        b"-01",
        b"ff",
        b"\xff\x00",
        b" ",
        b"v2",
        b"canary-version=",
    ];
    for _ in 0..3000 {
        let mut request = OwnedRequest::new();
        for name in [
            "traceparent",
            "x-b3-traceid",
            "x-request-id",
            "baggage",
            "x-canary-version",
        ] {
            for _ in 0..next() % 3 {
                let value: Vec<u8> = (0..next() % 5)
                    .flat_map(|_| pieces[(next() % 10) as usize].iter().copied())
                    .collect();
                request = request.header(name, value);
            }
        }
        table.now_s.set(next() % 1_000);
        if next() % 2 == 0 {
            table.remember(&config, &request);
        }
        let restored = sidecar::restore(&config, &request, &table);
        assert!(restored.version.index() < 3);
        assert_eq!(restored.request_effects(&config, &request).count(), 1);
    }
}

#[test]
fn two_traces_sharing_a_slot_both_stay_remembered() {
    let config = sidecar(r#", "trace_memory": {"entries": 64}"#);
    let memory = config.sidecar().unwrap().trace_memory;
    let id = |n: u32| format!("{n:032x}");
    let key = |n: u32| TraceKey::new(TraceHeader::TraceParent, id(n).as_bytes(), &memory);
    // Two ids whose first slots collide, each with an alternative of its own.
    let first = 1;
    let second = (2..10_000)
        .find(|&n| {
            key(n).slot == key(first).slot
                && key(n).alt != key(n).slot
                && key(n).alt != key(first).alt
        })
        .unwrap();
    let table = Table::default();
    for (n, version) in [(first, "v2"), (second, "v3")] {
        let inbound = OwnedRequest::new()
            .header("x-canary-version", version)
            .header("traceparent", traceparent(&id(n)));
        table.remember(&config, &inbound);
    }
    for (n, version) in [(first, "v2"), (second, "v3")] {
        let outbound = OwnedRequest::new().header("traceparent", traceparent(&id(n)));
        assert_eq!(restore(&config, &outbound, &table).0, version, "trace {n}");
    }
}
