//! Helpers shared by the engine test files: compiling configs and comparing decisions
//! field by field, with every mismatch of a table reported at once.
// Each test file uses a different subset of these helpers, and they fail a test by panicking.
#![allow(dead_code, clippy::panic)]

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine::{self, ClientTag, DecidedBy, Decision, SplitKey, SplitOutcome};
use canary_tagger::request::{OwnedRequest, RequestView};

#[path = "../../fixtures/mod.rs"]
pub mod fixtures;

pub use fixtures::SPEC_EXAMPLE;

pub fn compile(json: &str) -> CompiledConfig {
    record_config(json);
    match CompiledConfig::from_json(json.as_bytes()) {
        Ok(config) => config,
        Err(errors) => panic!("config rejected: {errors}\n{json}"),
    }
}

pub fn spec_example() -> CompiledConfig {
    compile(SPEC_EXAMPLE)
}

/// The fields of a [`Decision`] a test pins, with the version by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub version: String,
    pub decided_by: DecidedBy,
    pub client_tag: ClientTag,
    pub normalized: Vec<usize>,
    pub sticky_id: Option<String>,
    pub split: Option<SplitOutcome>,
}

impl Outcome {
    pub fn of(config: &CompiledConfig, decision: &Decision) -> Outcome {
        Outcome {
            version: config.version_name(decision.version).to_string(),
            decided_by: decision.decided_by,
            client_tag: decision.client_tag,
            normalized: decision.normalized.iter().collect(),
            sticky_id: decision.sticky_id.map(|id| id.as_str().to_string()),
            split: decision.split,
        }
    }

    pub fn tag(mut self, client_tag: ClientTag) -> Outcome {
        self.client_tag = client_tag;
        self
    }

    pub fn normalized(mut self, indices: &[usize]) -> Outcome {
        self.normalized = indices.to_vec();
        self
    }

    pub fn split(mut self, key: SplitKey, bucket: u16) -> Outcome {
        self.split = Some(SplitOutcome { key, bucket });
        self
    }

    pub fn sticky(mut self, id: &str) -> Outcome {
        self.sticky_id = Some(id.to_string());
        self
    }
}

/// An expected decision: no client tag, nothing normalized, no split, no sticky id.
pub fn expect(version: &str, decided_by: DecidedBy) -> Outcome {
    Outcome {
        version: version.to_string(),
        decided_by,
        client_tag: ClientTag::Absent,
        normalized: Vec::new(),
        sticky_id: None,
        split: None,
    }
}

pub fn by_rule(index: usize) -> DecidedBy {
    DecidedBy::Rule(index)
}

pub const DEFAULT: DecidedBy = DecidedBy::Default;

/// One row of a decision table.
pub struct Case {
    pub name: &'static str,
    pub request: OwnedRequest,
    pub entropy: u128,
    pub expected: Outcome,
}

impl Case {
    pub fn with_entropy(mut self, entropy: u128) -> Case {
        self.entropy = entropy;
        self
    }
}

pub fn case(name: &'static str, request: OwnedRequest, expected: Outcome) -> Case {
    Case {
        name,
        request,
        entropy: 0,
        expected,
    }
}

/// Decides every case and fails once, listing every case whose decision differs.
pub fn run_table(config: &CompiledConfig, cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            record_request(&case.request);
            let decision = engine::decide(config, &case.request, case.entropy);
            let actual = Outcome::of(config, &decision);
            (actual != case.expected).then(|| {
                format!(
                    "{}\n  request:  {}\n  expected: {:?}\n  actual:   {:?}",
                    case.name,
                    describe(&case.request),
                    case.expected,
                    actual
                )
            })
        })
        .collect();
    assert_all_pass(&failures, cases.len());
}

/// Fails with every differing case of a table at once.
pub fn assert_all_pass(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        total,
        failures.join("\n")
    );
}

/// A request as text for failure messages (bytes shown lossily, long values cut).
pub fn describe(request: &OwnedRequest) -> String {
    let shorten = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if text.chars().count() > 80 {
            format!(
                "{}... ({} bytes)",
                text.chars().take(80).collect::<String>(),
                bytes.len()
            )
        } else {
            text.into_owned()
        }
    };
    let mut parts: Vec<String> = request
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}", shorten(value)))
        .collect();
    if let Some(peer) = request.peer_address() {
        parts.push(format!("peer {}", shorten(peer)));
    }
    format!("[{}]", parts.join(" | "))
}

// ------------------------------------------------------------------ fuzz seeds

/// With `CANARY_FUZZ_SEED_DUMP=DIR`, the tables write every configuration and request they
/// use into `DIR/configs/` and `DIR/requests/`; `make fuzz-seeds` turns them into the fuzz
/// targets' seed corpus (docs/fuzzing.md). Without it, nothing is written.
pub fn record_config(json: &str) {
    record("configs", json.as_bytes());
}

/// See [`record_config`]. JSON: `{"headers": [[name, value], ...], "peer": value}`, a value
/// as a string, or as an array of bytes when it is not UTF-8.
pub fn record_request(request: &OwnedRequest) {
    let bytes = |value: &[u8]| match std::str::from_utf8(value) {
        Ok(text) => serde_json::json!(text),
        Err(_) => serde_json::json!(value),
    };
    let headers: Vec<serde_json::Value> = request
        .headers()
        .iter()
        .map(|(name, value)| serde_json::json!([name, bytes(value)]))
        .collect();
    let peer = request.peer_address().map(bytes);
    let json = serde_json::json!({ "headers": headers, "peer": peer });
    record("requests", json.to_string().as_bytes());
}

fn record(kind: &str, bytes: &[u8]) {
    let Some(dir) = std::env::var_os("CANARY_FUZZ_SEED_DUMP") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(kind);
    let name = canary_tagger::hash::Fnv1a64::default()
        .write(bytes)
        .finish();
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{name:016x}")), bytes))
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
}
