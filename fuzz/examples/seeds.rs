//! Writes the fuzz targets' seed corpus (`fuzz/seeds/<target>/`) from the test tables:
//!
//!   seeds DUMP OUT
//!
//! DUMP is what `CANARY_FUZZ_SEED_DUMP=DUMP cargo test` wrote (every configuration and
//! request of the engine and config-error tables); the benchmark's request mix is read
//! from its fixture. Each request becomes a `request` input (checked to decode back to
//! itself), a `header_map` input, and inputs of the parser targets for the values it holds
//! (its XFF, cookies, query, baggage, peer); each configuration a `config` input and its
//! CIDRs `cidr` inputs. Inputs over 4 KiB are left out: the corpus stays small, and the
//! fuzzer grows large values itself. `make fuzz-seeds` runs this.

#[path = "../../fixtures/mod.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use canary_tagger::hash::Fnv1a64;
use canary_tagger::request::serialize_header_map;
use canary_tagger_fuzz::input::{decode, Encode};
use canary_tagger_fuzz::parsers::{
    address_seed, baggage_seed, cidr_seed, cookie_seed, query_seed, trace_id_seed, tracestate_seed,
    xff_seed, TRACE_ID_SEEDS,
};
use canary_tagger_fuzz::request::FuzzRequest;
use canary_tagger_fuzz::FIXED_CONFIGS;
use serde_json::Value;

const MAX_SEED: usize = 4096;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dump, out] = args.as_slice() else {
        eprintln!("usage: seeds DUMP OUT");
        std::process::exit(2);
    };
    let (dump, out) = (Path::new(dump), Path::new(out));
    let mut corpus = Corpus::default();

    let mut requests = template_requests();
    for file in files(&dump.join("requests")) {
        let json: Value = serde_json::from_slice(&read(&file)).expect("a recorded request");
        requests.push(recorded_request(&json));
    }
    for (pairs, peer) in &requests {
        add_request(&mut corpus, pairs, peer.as_deref());
    }

    let mut configs: Vec<Vec<u8>> = files(&dump.join("configs"))
        .iter()
        .map(|f| read(f))
        .collect();
    configs.extend(FIXED_CONFIGS.iter().map(|(_, json)| json.to_vec()));
    for json in &configs {
        corpus.add("config", json.clone());
        if let Ok(document) = serde_json::from_slice::<Value>(json) {
            for cidr in cidrs(&document) {
                corpus.add("cidr", cidr_seed(cidr.as_bytes()));
            }
        }
    }

    for (value, other) in TRACE_ID_SEEDS.iter().zip(TRACE_ID_SEEDS.iter().rev()) {
        corpus.add(
            "trace_id",
            trace_id_seed(value.as_bytes(), other.as_bytes()),
        );
    }

    corpus.write(out);
}

/// The shared request templates (fixtures/), as raw header pairs from the fixtures' peer.
fn template_requests() -> Vec<(Pairs, Option<Vec<u8>>)> {
    fixtures::templates()
        .into_iter()
        .map(|template| {
            let pairs = template
                .request
                .headers()
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.clone()))
                .collect();
            (pairs, Some(fixtures::PEER.as_bytes().to_vec()))
        })
        .collect()
}

/// Seeds by target, deduplicated.
#[derive(Default)]
struct Corpus(BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>);

impl Corpus {
    /// Each target's seeds into `out/TARGET/` (emptied first), named by their FNV-1a hash.
    fn write(&self, out: &Path) {
        for (target, inputs) in &self.0 {
            let dir = out.join(target);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("the seed folder");
            for input in inputs.values() {
                let name = Fnv1a64::default().write(input).finish();
                std::fs::write(dir.join(format!("{name:016x}")), input).expect("a seed file");
            }
            println!("{target}: {} seeds", inputs.len());
        }
    }

    fn add(&mut self, target: &'static str, input: Vec<u8>) {
        if input.len() <= MAX_SEED {
            self.0
                .entry(target)
                .or_default()
                .insert(input.clone(), input);
        }
    }
}

fn add_request(corpus: &mut Corpus, pairs: &Pairs, peer: Option<&[u8]>) {
    let size: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
    if size > MAX_SEED {
        return;
    }
    let request = FuzzRequest::from_pairs(pairs, peer.map(<[u8]>::to_vec));
    let encoded = request.encoded();
    assert!(
        decode::<FuzzRequest>(&encoded).as_ref() == Some(&request),
        "a seed must decode to the request it was written from"
    );
    corpus.add("request", encoded);
    if let Some(map) = serialize_header_map(pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
    {
        corpus.add("header_map", map);
    }

    let values = |name: &[u8]| -> Vec<&[u8]> {
        pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    let forwarded_for = values(b"x-forwarded-for");
    if !forwarded_for.is_empty() {
        for hops in 0..2 {
            corpus.add("xff", xff_seed(hops, &forwarded_for));
        }
        for entry in forwarded_for.iter().flat_map(|v| v.split(|&b| b == b',')) {
            corpus.add("address", address_seed(entry));
        }
    }
    if let Some(peer) = peer {
        corpus.add("address", address_seed(peer));
    }
    let cookies = values(b"cookie");
    for pair in cookies.iter().flat_map(|v| v.split(|&b| b == b';')) {
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        corpus.add("cookie", cookie_seed(name.trim_ascii(), &cookies));
    }
    for path in values(b":path") {
        let query = path.splitn(2, |&b| b == b'?').nth(1).unwrap_or_default();
        for param in query.split(|&b| b == b'&') {
            let name = param.split(|&b| b == b'=').next().unwrap_or_default();
            corpus.add("query", query_seed(name, path));
        }
    }
    let baggage = values(b"baggage");
    if !baggage.is_empty() {
        corpus.add("baggage", baggage_seed(&baggage));
    }
    let tracestate = values(b"tracestate");
    if !tracestate.is_empty() {
        corpus.add("tracestate", tracestate_seed(&tracestate));
    }
}

/// A request as `tests/common` records it.
fn recorded_request(json: &Value) -> (Pairs, Option<Vec<u8>>) {
    let bytes = |value: &Value| -> Vec<u8> {
        match value {
            Value::String(text) => text.as_bytes().to_vec(),
            Value::Array(items) => items
                .iter()
                .map(|b| u8::try_from(b.as_u64().expect("a byte")).expect("a byte"))
                .collect(),
            other => panic!("not a recorded value: {other}"),
        }
    };
    let pairs = json["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| (bytes(&pair[0]), bytes(&pair[1])))
        .collect();
    let peer = Some(&json["peer"]).filter(|p| !p.is_null()).map(bytes);
    (pairs, peer)
}

/// Every string under `trusted_tag_sources` and `source_ip`.
fn cidrs(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![document];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == "trusted_tag_sources" || key == "source_ip" {
                        let texts = value.as_array().into_iter().flatten();
                        found.extend(texts.filter_map(Value::as_str).map(str::to_string));
                    }
                    stack.push(value);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
