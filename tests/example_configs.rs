//! Every plugin configuration shipped in `envoyfilter/` compiles with the engine's own
//! validation: each scenario's `plugin-config.json`, its rollout steps (`rollout/*.json`)
//! and the docker-compose demo's config. The Python manifest tests check that the copies
//! embedded in the WasmPlugin and EnvoyFilter YAML equal these files, so a config a user
//! copies from any of them is one the filter accepts.

use std::fs;
use std::path::{Path, PathBuf};

use canary_tagger::config::{CompiledConfig, Environment};

/// Every environment variable holds a test key: a recipe's `sticky_cookie.signing` names the
/// variable the gateway's Secret fills (envoyfilter/signed-sticky), which is not here.
struct TestKeys;

impl Environment for TestKeys {
    fn var(&self, _name: &str) -> Result<String, std::env::VarError> {
        Ok("test:MDEyMzQ1Njc4OWFiY2RlZg==".to_string())
    }
}

fn json_files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path != skip {
                json_files(&path, skip, found);
            }
        } else if path.extension().is_some_and(|ext| ext == "json")
            // The JSON Schema of the config (`canary-tagger schema`) lives beside them.
            && !path.to_string_lossy().ends_with(".schema.json")
        {
            found.push(path);
        }
    }
}

fn example_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("envoyfilter");
    let mut found = Vec::new();
    // envoyfilter/tests/ holds the manifest checks' data (the vendored Kubernetes, Istio and
    // Gateway API schemas), not configurations.
    json_files(&root, &root.join("tests"), &mut found);
    found.sort();
    found
}

#[test]
fn every_shipped_plugin_config_compiles() {
    let configs = example_configs();
    // One per scenario folder plus the compose demo, at the least: an empty walk means the
    // folder moved, not that everything is fine.
    assert!(
        configs.len() >= 6,
        "expected the envoyfilter/ plugin configs, found {configs:?}"
    );
    let mut failures = Vec::new();
    for path in &configs {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(errors) = CompiledConfig::from_json_in(&bytes, &TestKeys) {
            failures.push(format!("{}: {errors}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "configs the filter would reject:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_scenario_folder_has_a_plugin_config() {
    let configs = example_configs();
    for scenario in [
        "grpc-normalize",
        "weather",
        "mqtt",
        "mirror",
        "flagger",
        "compose",
    ] {
        let expected = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("envoyfilter")
            .join(scenario)
            .join("plugin-config.json");
        assert!(
            configs.contains(&expected),
            "{} is missing",
            expected.display()
        );
    }
}
