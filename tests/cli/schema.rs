//! `schema`: the committed file is current, and our validator and an independent one agree.

use super::*;

fn example_configs() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if path.is_dir() && name != "tests" {
                walk(&path, found);
            } else if name.ends_with(".json") && !name.ends_with(".schema.json") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for dir in ["fixtures/configs", "envoyfilter"] {
        walk(&repo(dir), &mut found);
    }
    found.sort();
    found
}

#[test]
fn schema_file_is_up_to_date() {
    let schema = stdout_of(&["schema"]);
    let path = repo("envoyfilter/config.schema.json");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == schema,
        "{} is stale: regenerate it with\n  cargo run --bin canary-tagger -- schema > envoyfilter/config.schema.json",
        path.display()
    );
}

#[test]
fn every_example_config_satisfies_the_schema() {
    let schema: Value = serde_json::from_str(&run(&["schema"]).stdout).unwrap();
    let configs = example_configs();
    assert!(configs.len() >= 8, "{configs:?}");
    let mut failures = Vec::new();
    for path in &configs {
        let config: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        // The schema never rejects what the filter accepts (a recipe's signing keys are
        // the gateway's; any key of the right form stands in for them).
        let keys = [("CANARY_TAGGER_STICKY_KEYS", "test:MDEyMzQ1Njc4OWFiY2RlZg==")];
        assert!(
            CompiledConfig::from_json_in(config.to_string().as_bytes(), &keys).is_ok(),
            "{} is not a valid config",
            path.display()
        );
        for error in canary_tagger::schema::validate(&schema, &config) {
            failures.push(format!("{}: {error}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Configurations the schema can tell are wrong (and the filter refuses).
const SCHEMA_REJECTS: &[&str] = &[
    r#"{"default_version": "v1"}"#,
    r#"{"versions": [], "default_version": "v1"}"#,
    r#"{"versions": ["v1", "v1"], "default_version": "v1"}"#,
    r#"{"versions": ["v 1"], "default_version": "v 1"}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "schema": 2}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "tag_headr": "x"}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "client_ip": {"from": "peer", "trusted_hops": 1}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "office ip", "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "version": "v1", "split": {"weights": [{"version": "v1", "percent": 100}]}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {}, "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {"header": "x"}, "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {"header": "x", "cookie": "y", "exact": "1"}, "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {"all": []}, "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {"not": {"source_ip": ["10.0.0.0/8"], "regex": "x"}}, "version": "v1"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "version_from": "query:v"}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": []}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 101}]}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "key": ["ip"]}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "sticky_cookie": {"name": "c", "max_age_s": 0}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 0, "to": 100}}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60, "to": 101}}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "ramp": {"start": "2026-12-01 10:00", "duration_s": 60, "to": 100}}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60}}}]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "rules": []}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "client_ip": {"from": "peer"}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "trusted_tag_sources": []}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "normalize": []}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "sticky_cookie": {"name": "c"}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "restore": ["trace"]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "gateway", "trace_memory": {}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "restore": []}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "restore": ["trace", "trace"]}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "trace_memory": {"entries": 0}}"#,
    r#"{"versions": ["v1"], "default_version": "v1", "mode": "sidecar", "trace_memory": {"ttl_s": 86401}}"#,
];

#[test]
fn the_schema_rejects_what_it_can_express() {
    let schema: Value = serde_json::from_str(&run(&["schema"]).stdout).unwrap();
    for json in SCHEMA_REJECTS {
        let config: Value = serde_json::from_str(json).unwrap();
        assert!(
            !canary_tagger::schema::validate(&schema, &config).is_empty(),
            "the schema accepts {json}"
        );
        assert!(
            CompiledConfig::from_json(json.as_bytes()).is_err(),
            "the filter accepts {json}, so the schema must too"
        );
    }
}

/// An independent validator: the `jsonschema` crate finds the committed schema valid draft
/// 2020-12, accepts every example config and rejects every configuration ours rejects.
#[test]
fn an_independent_validator_agrees_with_ours() {
    let committed = std::fs::read_to_string(repo("envoyfilter/config.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&committed).unwrap();
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|error| panic!("the schema is not valid draft 2020-12: {error}"));
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut disagreements = Vec::new();
    for path in example_configs() {
        let config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for error in validator.iter_errors(&config) {
            disagreements.push(format!("{} rejected: {error}", path.display()));
        }
    }
    for json in SCHEMA_REJECTS {
        let config: Value = serde_json::from_str(json).unwrap();
        if validator.is_valid(&config) {
            disagreements.push(format!("accepted, but ours rejects it: {json}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
