//! `validate`: accepted and rejected files, every error in the library's words, the inputs it reads.

use super::*;

#[test]
fn validate_accepts_a_valid_config() {
    let file = spec_example_file();
    let out = run(&["validate", &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{file}: ok (3 versions, 5 rules)\n"));
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_reports_every_error_structural_and_semantic() {
    let file = temp_file(
        "bad.json",
        r#"{
  "versions": ["v1", "v2"],
  "default_version": "v3",
  "tag_headr": "x-version",
  "client_ip": {"from": "xf"},
  "rules": [
    {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "versoin": "v2"},
    {"name": "chrome", "match": {"header": "user-agent", "regx": ".*Chrome.*"}, "version": "v2"},
    {"name": "half", "split": {"weights": [{"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}]}}
  ]
}"#,
    );
    assert_eq!(
        rejected(&["validate", &file]),
        vec![
            format!(r#"{file}: $: unknown field "tag_headr" (did you mean "tag_header"?)"#),
            format!("{file}: client_ip.from: unknown variant `xf`, expected `peer` or `xff`"),
            format!(r#"{file}: rules[0]: unknown field "versoin" (did you mean "version"?)"#),
            format!(r#"{file}: rules[1].match: unknown field "regx" (did you mean "regex"?)"#),
        ],
        "a wrong type stops the semantic pass: only structural errors"
    );

    // Only misspelt fields: the compiler's errors are reported too.
    let file = temp_file(
        "bad.json",
        r#"{"versions": ["v1", "v2"], "default_version": "v3", "colour": "blue",
            "rules": [{"name": "half", "split": {"weights": [{"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}], "sed": 1}}]}"#,
    );
    assert_eq!(
        rejected(&["validate", &file]),
        vec![
            format!("{file}: $: unknown field \"colour\"; expected one of schema, tag_header, versions, default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, response_header, baggage, tracestate, mode, restore, trace_memory"),
            format!("{file}: rules[0].split: unknown field \"sed\"; expected one of weights, key, salt, ramp"),
            format!(r#"{file}: default_version: unknown version "v3"; versions are v1, v2"#),
            format!("{file}: rules[0].split.weights: percents sum to 90, expected 100"),
        ]
    );
}

#[test]
fn validate_uses_the_librarys_words() {
    // Each error alone: the CLI's line is exactly the library's `path: reason`.
    let cases = [
        r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "versoin": "v1"}]}"#,
        r#"{"versions": ["v1"], "default_version": "v1", "sticky_cookie": {"name": "c", "max_ag": 1}}"#,
        r#"{"versions": ["v1"], "default_version": "v1", "baggage": "yes"}"#,
        r#"{"versions": "v1", "default_version": "v1"}"#,
        r#"{"default_version": "v1"}"#,
        r#"{"versions": ["v1"], "default_version": "v1", "client_ip": {"from": "xff", "trusted_hops": -1}}"#,
        r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "split": {"weights": [{"version": "v1", "percent": "100"}]}}]}"#,
        r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "match": {"not": {"headr": "a"}}, "version": "v1"}]}"#,
        r#"[]"#,
        r#"{"versions": ["v1"], "default_version": "v1", "rules": [{"name": "a", "version": "v9"}]}"#,
    ];
    for json in cases {
        let expected = CompiledConfig::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        let file = temp_file("case.json", json);
        let out = run(&["validate", &file]);
        assert_eq!(out.code, 1, "{json}");
        assert_eq!(out.stderr, format!("{file}: {expected}\n"), "{json}");
    }
}

#[test]
fn validate_reads_a_wasmplugin_and_an_envoyfilter() {
    let wasmplugin = temp_file(
        "wasmplugin.yaml",
        r#"# a Gateway in the same file is skipped
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec: {selector: {istio: ingressgateway}}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: canary-tagger
  namespace: istio-system
spec:
  url: oci://ghcr.io/example/canary-tagger:0.1.0
  pluginConfig:
    versions: [v1, v2]
    default_version: v1
    rules:
      - {name: testers, match: {cookie: user, exact: tester}, versoin: v2}
"#,
    );
    assert_eq!(
        rejected(&["validate", &wasmplugin]),
        vec![format!(
            r#"{wasmplugin} (WasmPlugin istio-system/canary-tagger): spec.pluginConfig.rules[0]: unknown field "versoin" (did you mean "version"?)"#
        )]
    );

    let envoyfilter = temp_file(
        "envoyfilter.yaml",
        r#"apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: canary-tagger, namespace: istio-system}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
          config:
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '{"versions": ["v1"], "default_version": "v2"}'
"#,
    );
    assert_eq!(
        rejected(&["validate", &envoyfilter]),
        vec![format!(
            r#"{envoyfilter} (EnvoyFilter istio-system/canary-tagger): spec.configPatches[0].patch.value.typed_config.config.configuration.value.default_version: unknown version "v2"; versions are v1"#
        )]
    );

    let missing = temp_file(
        "empty-plugin.yaml",
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: p}\nspec: {url: oci://x/y:1}\n",
    );
    let errors = rejected(&["validate", &missing]);
    let expected = format!("{missing} (WasmPlugin p): spec.pluginConfig: missing");
    assert!(errors[0].starts_with(&expected), "{errors:?}");
}

#[test]
fn validate_accepts_every_shipped_manifest_that_carries_the_config() {
    let mut files = Vec::new();
    for folder in ["weather", "mqtt", "mirror", "grpc-normalize", "flagger"] {
        for name in [
            "wasmplugin.yaml",
            "wasmplugin-file.yaml",
            "envoyfilter.yaml",
        ] {
            let path = repo(&format!("envoyfilter/{folder}/{name}"));
            if path.is_file() {
                files.push(path.to_str().unwrap().to_string());
            }
        }
    }
    assert!(files.len() >= 10, "the recipes moved? {files:?}");
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let stdout = stdout_of(&args);
    assert_eq!(stdout.lines().count(), files.len(), "{stdout}");
}

#[test]
fn validate_reads_standard_input() {
    let out = run_with_stdin(&["validate", "-"], SPEC_EXAMPLE);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "<stdin>: ok (3 versions, 5 rules)\n");
    let out = run_with_stdin(
        &["validate", "-"],
        "versions: [v1]\ndefault_version: v1\nbagage: true\n",
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "<stdin>: $: unknown field \"bagage\" (did you mean \"baggage\"?)\n"
    );
}

#[test]
fn validate_input_errors_are_one_line() {
    let dir = env!("CARGO_TARGET_TMPDIR");
    let bad_json = temp_file("bad.json", "{\"versions\": [\"v1\",,]}");
    // An unreadable file exits 2, an unparseable one 1; each says so in these words.
    let exact = [
        (
            "/nonexistent/canary.json",
            2,
            "canary-tagger: cannot read /nonexistent/canary.json: no such file or directory\n"
                .to_string(),
        ),
        (
            dir,
            2,
            format!("canary-tagger: cannot read {dir}: it is a directory\n"),
        ),
        (
            bad_json.as_str(),
            1,
            format!("{bad_json}: $: invalid JSON: expected value at line 1 column 20\n"),
        ),
    ];
    for (file, code, stderr) in &exact {
        let out = run(&["validate", file]);
        assert_eq!((out.code, &out.stderr), (*code, stderr), "{file}");
    }

    // One line, starting so (the YAML parser's own words follow).
    let bad_yaml = temp_file("bad.yaml", "versions: [v1\ndefault_version: v1\n");
    let nothing = temp_file(
        "vs.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n",
    );
    let starts = [
        (&bad_yaml, format!("{bad_yaml}: invalid YAML: ")),
        (
            &nothing,
            format!("{nothing}: no canary-tagger configuration found"),
        ),
    ];
    for (file, start) in &starts {
        let out = run(&["validate", file]);
        assert_eq!(out.code, 1, "{file}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.starts_with(start.as_str()), "{}", out.stderr);
    }

    // Several files: each judged, the worst status wins.
    let out = run(&["validate", &spec_example_file(), &bad_json, "/nonexistent"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout.lines().count(), 1);
    assert_eq!(out.stderr.lines().count(), 2);
}
