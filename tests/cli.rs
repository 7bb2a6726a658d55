//! The `canary-tagger` command line, run as a user runs it: the built binary, real files,
//! exit codes, stdout and stderr.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine;
use canary_tagger::hash;
use canary_tagger::request::OwnedRequest;
use serde_json::Value;

mod common;

use common::SPEC_EXAMPLE;

const BIN: &str = env!("CARGO_BIN_EXE_canary-tagger");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

fn finish(output: Output) -> Run {
    let run = Run {
        code: output.status.code().expect("exited by signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "the CLI panicked:\n{}",
        run.stderr
    );
    run
}

fn run(args: &[&str]) -> Run {
    finish(Command::new(BIN).args(args).output().unwrap())
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child.wait_with_output().unwrap())
}

/// A file with `content` under Cargo's per-test temporary directory.
fn temp_file(name: &str, content: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// The error lines of a command that finds its configuration invalid: exit status 1,
/// nothing on stdout.
fn rejected(args: &[&str]) -> Vec<String> {
    let out = run(args);
    assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
    assert_eq!(out.stdout, "", "{args:?}");
    out.stderr_lines().into_iter().map(String::from).collect()
}

fn spec_example_file() -> String {
    repo("fixtures/configs/spec-example.json")
        .to_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------- validate

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
    let out = run(&["validate", &missing]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "{missing} (WasmPlugin p): spec.pluginConfig: missing"
        )),
        "{}",
        out.stderr
    );
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
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), files.len(), "{}", out.stdout);
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

// ---------------------------------------------------------------------------- usage

#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "canary-tagger: no command given; see `canary-tagger help`\n"),
        (
            &["valdate", "x.json"],
            "canary-tagger: unknown command \"valdate\" (did you mean validate?); see `canary-tagger help`\n",
        ),
        (
            &["validate"],
            "canary-tagger: validate: give at least one FILE; see `canary-tagger help validate`\n",
        ),
        (
            &["explain", "x.json", "--hedaer", "a: b"],
            "canary-tagger: explain: unknown option --hedaer (did you mean --header?); see `canary-tagger help explain`\n",
        ),
        (&["explain", "x.json", "--path"], "canary-tagger: explain: --path needs a value\n"),
        (
            &["explain", "x.json", "--header", "no-colon"],
            "canary-tagger: explain: --header expects 'NAME: VALUE', got \"no-colon\"\n",
        ),
        (
            &["explain", "x.json", "--cookie", "novalue"],
            "canary-tagger: explain: --cookie expects NAME=VALUE, got \"novalue\"\n",
        ),
        (
            &["explain", "x.json", "--ip", "10.0.0.300"],
            "canary-tagger: explain: --ip \"10.0.0.300\" is not an address (203.0.113.7, 203.0.113.7:51000, 2001:db8::1 or [2001:db8::1]:443)\n",
        ),
        (
            &["explain", "x.json", "--seed", "many"],
            "canary-tagger: explain: --seed \"many\" is not a number (decimal, or hex with 0x)\n",
        ),
        (
            &["explain"],
            "canary-tagger: explain: give the configuration FILE; see `canary-tagger help explain`\n",
        ),
        (
            &["explain", "/nonexistent.json"],
            "canary-tagger: cannot read /nonexistent.json: no such file or directory\n",
        ),
        (
            &["render", "x.json", "--host", "a.example.com"],
            "canary-tagger: render: --service is required; see `canary-tagger help render`\n",
        ),
        (&["schema", "extra"], "canary-tagger: schema: unexpected argument \"extra\"; it takes none\n"),
    ];
    for (args, expected) in cases {
        assert_usage_error(args, &run(args), expected);
    }
}

/// Exit status 2, `stderr` exactly, nothing on stdout.
fn assert_usage_error(args: &[&str], out: &Run, stderr: &str) {
    assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    assert_eq!(out.stderr, stderr, "{args:?}");
    assert_eq!(out.stdout, "", "{args:?}");
}

#[test]
fn help_and_version() {
    for args in [
        &["help"][..],
        &["--help"],
        &["help", "explain"],
        &["explain", "--help"],
        &["render", "-h"],
        &["help", "status"],
        &["status", "--help"],
        &["help", "watch"],
        &["watch", "-h"],
    ] {
        let out = run(args);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(out.stdout.contains("Usage:"), "{args:?}: {}", out.stdout);
    }
    let out = run(&["--version"]);
    assert_eq!(
        out.stdout,
        format!("canary-tagger {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------- explain

#[test]
fn validate_prints_each_ramps_schedule_and_where_it_is_now() {
    let file = repo("fixtures/configs/ramp.json");
    let file = file.to_str().unwrap();
    let out = run(&["validate", file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[0], format!("{file}: ok (3 versions, 2 rules)"));
    let (schedule, now) = lines[1].split_once("; now (").unwrap();
    assert_eq!(
        schedule,
        r#"  rules[1] "ramp" ramp: v2 10% at 2026-12-01T10:00:00Z -> 100% at 2026-12-01T11:00:00Z (3600 s)"#
    );
    // The ramp ended before this test was written: it is at `to` from then on.
    assert!(now.ends_with("Z): v2 100% (ended)"), "{now}");

    let future = temp_file(
        "future-ramp.json",
        r#"{"versions": ["v1", "v2"], "default_version": "v1", "rules": [{"name": "later", "split": {
            "weights": [{"version": "v2", "percent": 12.5}, {"version": "v1", "percent": 87.5}],
            "ramp": {"start": "2999-01-01T00:00:00Z", "duration_s": 86400, "to": 50.25}}}]}"#,
    );
    let out = run(&["validate", &future]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with(r#"  rules[0] "later" ramp: v2 12.5% at 2999-01-01T00:00:00Z -> 50.25% at 2999-01-02T00:00:00Z (86400 s); now ("#)
            && line.ends_with("Z): v2 12.5% (not started)"),
        "{line}"
    );
}

#[test]
fn explain_at_decides_with_the_weights_of_that_time() {
    let file = repo("fixtures/configs/ramp.json");
    let file = file.to_str().unwrap();
    let config = CompiledConfig::from_json(&std::fs::read(file).unwrap()).unwrap();
    // Users whose version changes during the ramp (bucket between 10 % and 100 %).
    let uids: Vec<String> = (0..200)
        .map(|i| format!("u{i}"))
        .filter(|uid| hash::bucket(b"ramp", uid.as_bytes()) >= 1000)
        .take(20)
        .collect();
    let start = 1_796_119_200; // 2026-12-01T10:00:00Z
    for (at, now, percent, phase) in [
        ("2026-12-01T09:59:59Z", start - 1, 10.0, "not_started"),
        ("2026-12-01T10:00:00Z", start, 10.0, "not_started"),
        ("2026-12-01T10:30:00Z", start + 1800, 55.0, "running"),
        ("2026-12-01T10:30:01Z", start + 1801, 55.02, "running"),
        ("2026-12-01T11:00:00Z", start + 3600, 100.0, "ended"),
        ("2027-06-01T00:00:00Z", start + 20_000_000, 100.0, "ended"),
    ] {
        config.set_time(now);
        for uid in &uids {
            let request = OwnedRequest::new().cookie("uid", uid);
            let expected = config.version_name(engine::decide(&config, &request, 0).version);
            let cookie = format!("uid={uid}");
            let json = explain_json(&[file, "--cookie", &cookie, "--at", at]);
            assert_eq!(json["version"], expected, "{uid} at {at}");
            assert_eq!(json["split"]["ramp"]["at"], at);
            assert_eq!(json["split"]["ramp"]["percent"], percent, "{at}");
            assert_eq!(json["split"]["ramp"]["phase"], phase, "{at}");
        }
    }
    let text = run(&[
        "explain",
        file,
        "--cookie",
        "uid=u1",
        "--at",
        "2026-12-01T10:30:00Z",
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains(
            "\nramp:        55% at 2026-12-01T10:30:00Z (ramping); v2 10% at 2026-12-01T10:00:00Z -> 100% at 2026-12-01T11:00:00Z (3600 s)\n"
        ) && text.stdout.contains("; ranges: v2 0-5499, v1 5500-8499, v3 8500-9999\n"),
        "{}",
        text.stdout
    );
    // Without a ramp, no ramp in the output.
    let plain = explain_json(&[
        &spec_example_file(),
        "--header",
        ANDROID,
        "--at",
        "2026-12-01T10:30:00Z",
    ]);
    assert!(plain["split"].get("ramp").is_none(), "{plain}");

    for (at, message) in [
        (
            "2026-12-01",
            r#"explain: --at "2026-12-01" is not an RFC 3339 date and time in UTC, such as 2026-12-01T10:00:00Z"#,
        ),
        (
            "2026-12-01T11:30:00+01:00",
            r#"explain: --at "2026-12-01T11:30:00+01:00" is not in UTC; write the same time as 2026-12-01T10:30:00Z"#,
        ),
    ] {
        let out = run(&["explain", file, "--at", at]);
        assert_eq!(
            (out.code, out.stderr_lines()),
            (2, vec![format!("canary-tagger: {message}").as_str()])
        );
    }
}

fn explain_json(args: &[&str]) -> Value {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

const ANDROID: &str = "User-Agent: Mozilla/5.0 (Linux; Android 14) Mobile";

#[test]
fn explain_a_split_names_key_source_and_bucket() {
    let file = spec_example_file();
    let bucket = hash::bucket(b"android", b"alice");
    let version = if bucket < 5000 { "v2" } else { "v1" };

    // One request, explained as text and as JSON.
    let request = [
        file.as_str(),
        "--header",
        ANDROID,
        "--cookie",
        "uid=alice",
        "--ip",
        "10.1.2.3:40000",
    ];
    let out = run(&[&["explain"], &request[..]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = format!(
        "\
version:     {version}
decided by:  rules[4] \"android\" (split)
rules:
  rules[0] testers: no match
  rules[1] office: no match
  rules[2] chrome: no match
  rules[3] pick: no match
  rules[4] android: matched, decided
split key:   cookie:uid = \"alice\" (split.key[0])
bucket:      {bucket} of 0-9999 (salt \"android\") -> {version}; ranges: v2 0-4999, v1 5000-9999
client ip:   10.1.2.3 (peer address: x-forwarded-for has too few entries, or a malformed one, at the trusted position)
client tag:  none sent (x-canary-version)
normalized:  none
request headers set:
  x-canary-version: {version}
  baggage: canary-version={version}
response headers added:
  x-canary-version: {version}
"
    );
    assert_eq!(out.stdout, expected);

    let json = explain_json(&request);
    assert_eq!(json["version"], version);
    assert_eq!(
        json["decided_by"],
        serde_json::json!({"kind": "rule", "index": 4, "name": "android"})
    );
    assert_eq!(json["split"]["key_kind"], "key");
    assert_eq!(json["split"]["key"], "cookie:uid");
    assert_eq!(json["split"]["key_index"], 0);
    assert_eq!(json["split"]["value"], "alice");
    assert_eq!(json["split"]["salt"], "android");
    assert_eq!(json["split"]["bucket"], bucket);
    assert_eq!(json["client_ip"], "10.1.2.3");
    assert_eq!(json["client_ip_source"], "peer-after-xff-fallback");

    // No uid cookie or x-user-id: source_ip, from x-forwarded-for with one trusted hop.
    let json = explain_json(&[
        &file,
        "-H",
        ANDROID,
        "--ip",
        "10.0.0.1:1",
        "--xff",
        "198.51.100.4, 10.0.0.1",
    ]);
    assert_eq!(json["client_ip"], "198.51.100.4");
    assert_eq!(json["client_ip_source"], "x-forwarded-for");
    assert_eq!(json["split"]["key"], "source_ip");
    assert_eq!(json["split"]["key_index"], 2);
    assert_eq!(json["split"]["value"], "198.51.100.4");
    assert_eq!(
        json["split"]["bucket"],
        hash::bucket(b"android", b"198.51.100.4")
    );
}

/// The split hashes the first non-empty value of a key; explain shows that value, not an
/// empty one before it.
#[test]
fn explain_shows_the_key_value_the_split_hashed() {
    let file = spec_example_file();
    let json = explain_json(&[
        &file,
        "-H",
        ANDROID,
        "--cookie",
        "uid=",
        "--cookie",
        "uid=alice",
    ]);
    assert_eq!(json["split"]["key"], "cookie:uid");
    assert_eq!(json["split"]["value"], "alice");
    assert_eq!(json["split"]["bucket"], hash::bucket(b"android", b"alice"));
}

#[test]
fn explain_issues_a_sticky_id_that_brings_the_user_back() {
    let file = repo("envoyfilter/weather/plugin-config.json");
    let file = file.to_str().unwrap();
    // The ramp rule's split keys on cookie:user; without it, the sticky cookie is issued.
    let first = explain_json(&[file, "--seed", "7"]);
    assert_eq!(first["split"]["key_kind"], "new_sticky_id");
    let id = first["sticky_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(
        first["split"]["bucket"],
        hash::bucket(b"ramp", id.as_bytes())
    );
    let set_cookie = &first["response_headers"][0];
    assert_eq!(set_cookie["name"], "set-cookie");
    assert_eq!(
        set_cookie["value"],
        format!("canary-uid={id}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax")
    );
    // Same seed, same id: the output is reproducible.
    assert_eq!(explain_json(&[file, "--seed", "7"]), first);
    assert_ne!(
        explain_json(&[file, "--seed", "8"])["sticky_id"],
        first["sticky_id"]
    );

    let back = explain_json(&[file, "--cookie", &format!("canary-uid={id}")]);
    assert_eq!(back["split"]["key_kind"], "sticky_cookie");
    assert_eq!(back["split"]["key"], "cookie:canary-uid");
    assert_eq!(back["split"]["bucket"], first["split"]["bucket"]);
    assert_eq!(back["version"], first["version"]);
    assert_eq!(back["sticky_id"], Value::Null);

    let text = run(&["explain", file, "--seed", "7"]).stdout;
    assert!(
        text.contains(&format!(
            "split key:   none of split.key present; a new sticky id is issued: cookie:canary-uid = \"{id}\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  set-cookie: canary-uid={id}; Path=/")),
        "{text}"
    );
}

#[test]
fn explain_client_tags_normalization_and_version_from() {
    let file = spec_example_file();
    // Untrusted client sending a tag: stripped, rules decide.
    let json = explain_json(&[
        &file,
        "--ip",
        "203.0.113.9:1000",
        "-H",
        "x-canary-version: v3",
    ]);
    assert_eq!(json["client_tag"]["status"], "stripped");
    assert_eq!(
        json["client_tag"]["reason"],
        "client 203.0.113.9 is not in trusted_tag_sources"
    );
    assert_eq!(json["decided_by"]["kind"], "default");
    assert_eq!(json["version"], "v1");

    // From trusted_tag_sources (10.20.0.0/16, client address via XFF): kept, no rule runs.
    let json = explain_json(&[
        &file,
        "--ip",
        "10.0.0.1:1",
        "--xff",
        "10.20.1.1, 10.0.0.1",
        "-H",
        "x-canary-version: v3",
    ]);
    assert_eq!(json["client_tag"]["status"], "kept");
    assert_eq!(
        json["decided_by"],
        serde_json::json!({"kind": "trusted_client_tag"})
    );
    assert_eq!(json["version"], "v3");
    assert_eq!(json["rules"], serde_json::json!([]));

    // gRPC with an unknown grpcsvc: normalized to v1, which the `pick` rule then reads.
    let json = explain_json(&[
        &file,
        "-H",
        "content-type: application/grpc",
        "-H",
        "grpcsvc: v9",
    ]);
    assert_eq!(
        json["normalized"],
        serde_json::json!([{"index": 0, "header": "grpcsvc", "from": ["v9"], "to": "v1"}])
    );
    assert_eq!(json["decided_by"]["name"], "pick");
    assert_eq!(json["version"], "v1");
    assert_eq!(
        json["request_headers"][0],
        serde_json::json!({"name": "grpcsvc", "value": "v1"})
    );

    // Not gRPC: grpcsvc v4 is left alone, and `pick` matches but v4 is not a version.
    let json = explain_json(&[&file, "-H", "grpcsvc: v4"]);
    assert_eq!(json["normalized"], serde_json::json!([]));
    assert_eq!(json["rules"][3]["result"], "no_version");
    assert_eq!(
        json["rules"][3]["note"],
        "header:grpcsvc is \"v4\", not one of the versions"
    );
    assert_eq!(json["decided_by"]["kind"], "default");

    // A query condition reads :path.
    let json = explain_json(&[
        &file,
        "-H",
        ANDROID,
        "--path",
        "/app?beta=0",
        "--ip",
        "10.1.2.3",
    ]);
    assert_eq!(json["decided_by"]["kind"], "default");
    let json = explain_json(&[
        &file,
        "-H",
        "Cookie: a=1; user=tester",
        "--host",
        "shop.example.com",
    ]);
    assert_eq!(json["decided_by"]["name"], "testers");
    assert_eq!(json["version"], "v2");
}

#[test]
fn explain_agrees_with_the_engine() {
    let config = CompiledConfig::from_json(SPEC_EXAMPLE.as_bytes()).unwrap();
    let file = spec_example_file();
    let agents = [
        "Mozilla/5.0 Chrome/120",
        ANDROID,
        "curl/8",
        "Mozilla/5.0 (Android) Chrome/1",
    ];
    let mut checked = 0;
    for (i, agent) in agents.iter().enumerate() {
        for user in ["", "alice", "bob", "tester"] {
            for xff in ["", "192.168.0.58", "10.20.3.3", "6.6.6.6, 203.0.113.5"] {
                let peer = format!("10.0.{i}.1:5000");
                let mut args = vec![
                    file.clone(),
                    "-H".into(),
                    format!("User-Agent: {agent}"),
                    "--ip".into(),
                    peer.clone(),
                ];
                let mut request = OwnedRequest::new()
                    .header(":method", "GET")
                    .path("/")
                    .header("user-agent", agent);
                if !user.is_empty() {
                    args.extend([
                        "--cookie".into(),
                        format!("uid={user}"),
                        "--cookie".into(),
                        format!("user={user}"),
                    ]);
                    request = request.header("cookie", format!("uid={user}; user={user}"));
                }
                if !xff.is_empty() {
                    args.extend(["--xff".into(), format!("{xff}, 10.0.{i}.1")]);
                    request = request.header("x-forwarded-for", format!("{xff}, 10.0.{i}.1"));
                }
                request = request.peer(&peer);
                let decision = engine::decide(&config, &request, 0);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let json = explain_json(&args);
                assert_eq!(
                    json["version"],
                    config.version_name(decision.version),
                    "{args:?}"
                );
                let decided = match decision.decided_by {
                    engine::DecidedBy::Rule(index) => serde_json::json!(index),
                    _ => Value::Null,
                };
                assert_eq!(json["decided_by"]["index"], decided, "{args:?}");
                // The trace ends at the rule that decided.
                if let Some(index) = decided.as_u64() {
                    let steps = json["rules"].as_array().unwrap();
                    assert_eq!(steps.len() as u64, index + 1);
                    assert_eq!(steps.last().unwrap()["result"], "decided");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 64);
}

#[test]
fn explain_rejects_an_invalid_config_with_every_error() {
    let file = temp_file(
        "bad.json",
        r#"{"versions": ["v1"], "default_version": "v2", "rules": [{"name": "a", "version": "v9"}]}"#,
    );
    assert_eq!(
        rejected(&["explain", &file]),
        vec![
            format!(r#"{file}: default_version: unknown version "v2"; versions are v1"#),
            format!(r#"{file}: rules[0].version: unknown version "v9"; versions are v1"#),
        ]
    );
    let two = temp_file(
        "two.yaml",
        "versions: [v1]\ndefault_version: v1\n---\nversions: [v2]\ndefault_version: v2\n",
    );
    let out = run(&["explain", &two]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!("canary-tagger: {two} holds 2 plugin configurations ({two}, {two}); pass a file with one\n")
    );
}

// ---------------------------------------------------------------------------- render

#[test]
fn render_routes_every_version_and_defaults_to_default_version() {
    let file = temp_file(
        "config.json",
        r#"{"tag_header": "X-Shop-Version", "versions": ["v1", "v2", "v3"], "default_version": "v2"}"#,
    );
    let out = run(&[
        "render",
        &file,
        "--host",
        "shop.example.com",
        "--service",
        "frontend.shop.svc.cluster.local",
        "--namespace",
        "shop",
        "--gateway",
        "istio-system/shop-gateway",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&out.stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    let (vs, dr) = (&docs[0], &docs[1]);

    assert_eq!(vs["apiVersion"], "networking.istio.io/v1");
    assert_eq!(vs["kind"], "VirtualService");
    assert_eq!(vs["metadata"]["name"], "frontend");
    assert_eq!(vs["metadata"]["namespace"], "shop");
    assert_eq!(vs["spec"]["hosts"], serde_json::json!(["shop.example.com"]));
    assert_eq!(
        vs["spec"]["gateways"],
        serde_json::json!(["istio-system/shop-gateway"])
    );
    let routes = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(routes.len(), 4);
    for (route, version) in routes.iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(
            route["match"],
            serde_json::json!([{"headers": {"x-shop-version": {"exact": version}}}]),
            "Istio wants header names lower-case"
        );
        assert_eq!(
            route["route"],
            serde_json::json!([{"destination": {"host": "frontend.shop.svc.cluster.local", "subset": version}}])
        );
    }
    let default = &routes[3];
    assert!(
        default.get("match").is_none(),
        "the last route takes everything else"
    );
    assert_eq!(default["route"][0]["destination"]["subset"], "v2");

    assert_eq!(dr["kind"], "DestinationRule");
    assert_eq!(dr["spec"]["host"], "frontend.shop.svc.cluster.local");
    let subsets: Vec<(String, String)> = dr["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["labels"]["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subsets,
        vec![
            ("v1".into(), "v1".into()),
            ("v2".into(), "v2".into()),
            ("v3".into(), "v3".into())
        ]
    );
    // Every subset a route names exists.
    for route in routes {
        let subset = route["route"][0]["destination"]["subset"].as_str().unwrap();
        assert!(subsets.iter().any(|(name, _)| name == subset), "{subset}");
    }
}

#[test]
fn render_maps_versions_to_valid_subset_names() {
    let file = temp_file(
        "config.json",
        r#"{"versions": ["stable", "v2.1_RC"], "default_version": "stable"}"#,
    );
    let out = run(&["render", &file, "--host", "api", "--service", "api"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("  - name: v2-1-rc\n    labels:\n      version: v2.1_RC\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("          exact: v2.1_RC\n"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("namespace:"),
        "no --namespace, no namespace"
    );

    let file = temp_file(
        "config.json",
        r#"{"versions": ["v1", "-v2"], "default_version": "v1"}"#,
    );
    let out = run(&["render", &file, "--host", "api", "--service", "api"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("{file}: version \"-v2\" cannot be a DestinationRule subset name (a DNS label: a-z 0-9 -)\n")
    );
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

const GATEWAY_API_CONFIG: &str = r#"{"tag_header": "X-Shop-Version", "versions": ["v1", "v2", "v3"], "default_version": "v2", "rules": [{"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v3"}]}"#;

/// `render GATEWAY_API_CONFIG --api gateway-api --gateway shop-gw --service frontend EXTRA...`:
/// its documents (it must succeed) and their kinds.
fn render_gateway_api(extra: &[&str]) -> (Vec<Value>, Vec<String>) {
    let file = temp_file("config.json", GATEWAY_API_CONFIG);
    let common = [
        "render",
        &file,
        "--api",
        "gateway-api",
        "--gateway",
        "shop-gw",
    ];
    let out = run(&[&common[..], &["--service", "frontend"], extra].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = yaml_documents(&out.stdout);
    let kinds = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    (docs, kinds)
}

#[test]
fn render_gateway_api_attaches_the_plugin_and_routes_each_tag_to_its_service() {
    let (docs, kinds) = render_gateway_api(&[
        "--gateway-namespace",
        "infra",
        "--namespace",
        "shop",
        "--port",
        "8080",
        "--host",
        "shop.example.com",
    ]);
    assert_eq!(
        kinds,
        ["WasmPlugin", "Service", "Service", "Service", "HTTPRoute"]
    );

    let plugin = &docs[0];
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(
        plugin["metadata"]["namespace"], "infra",
        "the Gateway's namespace"
    );
    assert_eq!(
        plugin["spec"]["targetRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shop-gw"}])
    );
    assert!(plugin["spec"].get("selector").is_none());
    let given: Value = serde_json::from_str(GATEWAY_API_CONFIG).unwrap();
    assert_eq!(
        plugin["spec"]["pluginConfig"], given,
        "the configuration as given"
    );
    // As the classic recipe (envoyfilter/weather/wasmplugin.yaml).
    let classic = &yaml_documents(
        &std::fs::read_to_string(repo("envoyfilter/weather/wasmplugin.yaml")).unwrap(),
    )[0]["spec"];
    for field in [
        "url",
        "sha256",
        "imagePullPolicy",
        "phase",
        "priority",
        "failStrategy",
        "match",
        "pluginName",
    ] {
        assert_eq!(plugin["spec"][field], classic[field], "{field}");
    }

    for (service, version) in docs[1..4].iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(service["apiVersion"], "v1");
        assert_eq!(service["metadata"]["name"], format!("frontend-{version}"));
        assert_eq!(service["metadata"]["namespace"], "shop");
        assert_eq!(
            service["spec"]["selector"],
            serde_json::json!({"app": "frontend", "version": version})
        );
        assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    }

    let route = &docs[4];
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(
        route["spec"]["parentRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shop-gw", "namespace": "infra"}])
    );
    assert_eq!(
        route["spec"]["hostnames"],
        serde_json::json!(["shop.example.com"])
    );
    let header = |version: &str| serde_json::json!([{"headers": [{"type": "Exact", "name": "x-shop-version", "value": version}]}]);
    let backend = |name: &str| serde_json::json!([{"name": name, "port": 8080}]);
    assert_eq!(
        route["spec"]["rules"],
        serde_json::json!([
            {"matches": header("v1"), "backendRefs": backend("frontend-v1")},
            {"matches": header("v3"), "backendRefs": backend("frontend-v3")},
            {"backendRefs": backend("frontend-v2")},
        ]),
        "a rule per version but the default, then the default without a match"
    );
}

#[test]
fn render_gateway_api_mesh_and_waypoint() {
    let (docs, kinds) = render_gateway_api(&[
        "--namespace",
        "shop",
        "--gateway-namespace",
        "shop",
        "--mesh",
        "--waypoint",
        "waypoint",
    ]);
    assert_eq!(
        kinds,
        [
            "WasmPlugin",
            "Service",
            "Service",
            "Service",
            "HTTPRoute",
            "HTTPRoute",
            "WasmPlugin"
        ]
    );
    let (route, mesh) = (&docs[4], &docs[5]);
    assert_eq!(
        route["spec"]["parentRefs"][0].get("namespace"),
        None,
        "the Gateway is in the route's namespace"
    );
    assert!(
        route["spec"].get("hostnames").is_none(),
        "no --host, every host"
    );
    assert_eq!(
        mesh["spec"]["parentRefs"],
        serde_json::json!([{"group": "", "kind": "Service", "name": "frontend", "port": 80}])
    );
    assert_eq!(mesh["spec"]["rules"], route["spec"]["rules"]);
    assert_eq!(mesh["metadata"]["namespace"], "shop");
    let waypoint = &docs[6];
    assert_eq!(waypoint["metadata"]["namespace"], "shop");
    assert_eq!(
        waypoint["spec"]["targetRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}])
    );
    assert_eq!(
        serde_json::to_string(&waypoint["spec"]["pluginConfig"]).unwrap(),
        r#"{"schema":1,"mode":"waypoint","tag_header":"x-shop-version","versions":["v1","v2","v3"],"default_version":"v2","restore":["header","baggage","tracestate","trace"]}"#
    );
}

#[test]
fn render_gateway_api_errors_are_one_line() {
    let file = temp_file("config.json", GATEWAY_API_CONFIG);
    let api = ["render", file.as_str(), "--api", "gateway-api"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        api.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let usage: &[(Vec<String>, &str)] = &[
        (
            with(&["--service", "frontend"]),
            "render: --gateway is required; see `canary-tagger help render`",
        ),
        (with(&["--gateway", "gw"]), "render: --service is required; see `canary-tagger help render`"),
        (
            with(&["--gateway", "gw", "--gateway", "gw2", "--service", "frontend"]),
            "render: --api gateway-api takes one --gateway (the Gateway's name)",
        ),
        (
            with(&["--gateway", "gw", "--service", "Frontend"]),
            "render: --service \"Frontend\" is not a Service name (a DNS label: a-z 0-9 -, 63 at most)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--port", "0"]),
            "render: --port \"0\" is not a port (1-65535)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--host", "shop.example.com:80"]),
            "render: --host \"shop.example.com:80\" is not an HTTPRoute hostname (a lower-case DNS name, optionally starting with *.)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--name", "x"]),
            "render: --name applies to --api istio only (the names follow SERVICE)",
        ),
        (
            ["render", file.as_str(), "--host", "a", "--service", "a", "--mesh"]
                .map(String::from)
                .to_vec(),
            "render: --mesh applies to --api gateway-api only",
        ),
        (
            ["render", file.as_str(), "--host", "a", "--service", "a", "--waypoint", "w"]
                .map(String::from)
                .to_vec(),
            "render: --waypoint applies to --api gateway-api only",
        ),
    ];
    for (args, expected) in usage {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (2, ""),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr,
            format!("canary-tagger: {expected}\n"),
            "{args:?}"
        );
    }
    let long_header = "x".repeat(257);
    let invalid = [
        (
            r#"{"versions": ["v1", "v2.1"], "default_version": "v1"}"#.to_string(),
            "version \"v2.1\" cannot be in a Service name (a DNS label: a-z 0-9 -)".to_string(),
        ),
        (
            r#"{"versions": ["v1", "release-candidate-2026-12-07-build-4711-hotfix-3"], "default_version": "v1"}"#.to_string(),
            "Service name \"frontend-service-release-candidate-2026-12-07-build-4711-hotfix-3\" (frontend-service-VERSION) is longer than 63 characters".to_string(),
        ),
        (
            // The compiler accepts any token; Gateway API's HTTPHeaderName stops at 256.
            format!(r#"{{"tag_header": "{long_header}", "versions": ["v1"], "default_version": "v1"}}"#),
            format!("tag_header \"{long_header}\" is not an HTTPRoute header name (letters, digits and !#$%&'*+-.^_`|~, 256 at most)"),
        ),
    ];
    for (config, expected) in invalid {
        let file = temp_file("config.json", &config);
        let out = run(&[
            "render",
            &file,
            "--api",
            "gateway-api",
            "--gateway",
            "gw",
            "--service",
            "frontend-service",
        ]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (1, ""),
            "{config}: {}",
            out.stderr
        );
        assert_eq!(out.stderr, format!("{file}: {expected}\n"), "{config}");
    }
}

// ---------------------------------------------------------------------------- schema

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
    let out = run(&["schema"]);
    assert_eq!(out.code, 0);
    let path = repo("envoyfilter/config.schema.json");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == out.stdout,
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

// ---------------------------------------------------------------------------- signing

/// `sticky_cookie.signing` (SPEC §10): the CLI reads the keys from its own environment
/// variable of the name in `keys_env`, as the filter reads the Wasm VM's; `explain` says
/// whether the sticky cookie verified.
#[test]
fn signed_sticky_cookies_read_keys_from_the_environment_and_explain_the_verdict() {
    const KEYS_ENV: &str = "CANARY_TAGGER_TEST_STICKY_KEYS";
    let config = temp_file(
        "signed.json",
        &format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1",
                "rules": [{{"name": "half", "split": {{"weights": [{{"version": "v2", "percent": 50}},
                                                                 {{"version": "v1", "percent": 50}}]}}}}],
                "sticky_cookie": {{"name": "uid", "signing": {{"keys_env": "{KEYS_ENV}"}}}}}}"#
        ),
    );
    let run_env = |keys: Option<&str>, args: &[&str]| {
        let mut command = Command::new(BIN);
        command.args(args).env_remove(KEYS_ENV);
        if let Some(keys) = keys {
            command.env(KEYS_ENV, keys);
        }
        finish(command.output().unwrap())
    };
    let out = run_env(None, &["validate", &config]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        format!("{config}: sticky_cookie.signing.keys_env: environment variable {KEYS_ENV} is not set in the Wasm VM; it must hold the signing keys as KID:BASE64,KID:BASE64,... (Envoy vm_config.environment_variables, Istio WasmPlugin vmConfig.env)")
    );
    // "old-key-0123456789abcdef" and "new-key-0123456789abcdef".
    let old = "old:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm";
    let rotated = "new:bmV3LWtleS0wMTIzNDU2Nzg5YWJjZGVm,old:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm";
    let out = run_env(Some(old), &["validate", &config]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // A new id, signed with the first key.
    let out = run_env(
        Some(rotated),
        &["explain", &config, "--seed", "5", "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let issued: Value = serde_json::from_str(&out.stdout).unwrap();
    let id = issued["sticky_id"].as_str().unwrap().to_string();
    let set_cookie = issued["response_headers"][0]["value"].as_str().unwrap();
    let value = set_cookie
        .strip_prefix("uid=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(value.starts_with(&format!("{id}.new.")), "{value}");
    assert_eq!(value.len(), 32 + 1 + 3 + 1 + 32);

    // It verifies (the ID is hashed); under the old key alone it does not.
    let cookie = format!("uid={value}");
    let out = run_env(
        Some(rotated),
        &["explain", &config, "--cookie", &cookie, "--json"],
    );
    let verified: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(verified["split"]["key_kind"], "sticky_cookie");
    assert_eq!(verified["split"]["value"], id.as_str());
    assert_eq!(verified["split"]["sticky_cookie"]["status"], "verified");
    assert_eq!(verified["split"]["sticky_cookie"]["key_id"], "new");
    assert_eq!(verified["version"], issued["version"]);
    assert_eq!(verified["sticky_id"], Value::Null);

    let out = run_env(
        Some(old),
        &["explain", &config, "--cookie", &cookie, "--seed", "9"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "sticky:      {value:?} rejected (unknown_key): treated as no sticky cookie (counted in sticky_id_rejected)"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("a new sticky id is issued"),
        "{}",
        out.stdout
    );
}
// ---------------------------------------------------------------------------- sidecar mode

const SIDECAR: &str = "fixtures/configs/sidecar.json";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent() -> String {
    format!("traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01")
}

#[test]
fn validate_names_a_sidecar_configuration_and_its_restore_order() {
    let file = repo(SIDECAR);
    let out = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("sidecar.json: ok (sidecar, 3 versions, restore header, baggage, trace)\n"),
        "{}",
        out.stdout
    );
    let bad = temp_file(
        "sidecar-bad.json",
        r#"{"mode": "sidecar", "versions": ["v1"], "default_version": "v1", "rules": [], "restore": ["trace", "trace"]}"#,
    );
    assert_eq!(
        rejected(&["validate", &bad]),
        vec![
            format!("{bad}: rules: only allowed when mode is \"gateway\""),
            format!("{bad}: restore[1]: \"trace\" is listed twice"),
        ]
    );
}

#[test]
fn explain_outbound_shows_each_source_and_the_restored_tag() {
    let file = repo(SIDECAR);
    let file = file.to_str().unwrap();
    let out = run(&[
        "explain",
        file,
        "--direction",
        "outbound",
        "--header",
        "baggage=canary-version=v2",
        "-H",
        "x-canary-version: v9",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "mode:        sidecar, outbound call\n\
         version:     v2\n\
         restored by: baggage\n\
         sources:\n\
         \x20 header: not a version (x-canary-version: \"v9\")\n\
         \x20 baggage: restored (canary-version=\"v2\")\n\
         request headers set:\n\
         \x20 x-canary-version: v2\n\
         response headers added: none\n"
    );

    // The trace table is Envoy's: explain says so, and takes entries with --remembered.
    let tp = traceparent();
    let unseen = explain_json(&[file, "--direction", "outbound", "-H", &tp]);
    assert_eq!(unseen["version"], "v1");
    assert_eq!(unseen["restored_by"], "default");
    assert!(unseen["note"]
        .as_str()
        .unwrap()
        .starts_with("explain cannot see Envoy's trace table"));
    let remembering = |entry: &str| {
        explain_json(&[
            file,
            "--direction",
            "outbound",
            "-H",
            &tp,
            "--remembered",
            entry,
        ])
    };
    let found = remembering(&format!("{TRACE_ID}=v3"));
    assert_eq!(found["version"], "v3");
    assert_eq!(found["restored_by"], "trace");
    assert_eq!(found["request_headers"][0]["value"], "v3");
    assert_eq!(found["note"], Value::Null);
    let expired = remembering(&format!("{TRACE_ID}=v3@301"));
    assert_eq!(expired["version"], "v1");
    assert_eq!(
        expired["sources"][2]["detail"],
        format!("traceparent {TRACE_ID}: remembered, but past ttl_s")
    );
}

#[test]
fn explain_inbound_shows_what_is_remembered() {
    let file = repo(SIDECAR);
    let tp = traceparent();
    let json = explain_json(&[
        file.to_str().unwrap(),
        "--direction",
        "inbound",
        "-H",
        "x-canary-version: v2",
        "-H",
        &tp,
        "-H",
        "x-request-id: req-1",
    ]);
    assert_eq!(json["version"], "v2");
    assert_eq!(json["remembers"], true);
    assert_eq!(
        json["trace_ids"],
        serde_json::json!([["traceparent", TRACE_ID], ["x-request-id", "req-1"]])
    );
    assert_eq!(json["request_headers"], serde_json::json!([]));
}

#[test]
fn explain_sidecar_usage_errors() {
    let sidecar = repo(SIDECAR);
    let sidecar = sidecar.to_str().unwrap();
    let spec = repo("fixtures/configs/spec-example.json");
    let spec = spec.to_str().unwrap();
    for (args, expected) in [
        (
            vec!["explain", sidecar],
            "canary-tagger: explain: a sidecar configuration needs --direction inbound or outbound\n",
        ),
        (
            vec!["explain", spec, "--direction", "inbound"],
            "canary-tagger: explain: --direction and --remembered apply to a sidecar configuration only\n",
        ),
        (
            vec!["explain", sidecar, "--direction", "sideways"],
            "canary-tagger: explain: --direction is inbound or outbound, got \"sideways\"\n",
        ),
        (
            vec!["explain", sidecar, "--direction", "outbound", "--remembered", "abc"],
            "canary-tagger: explain: --remembered expects TRACE_ID=VERSION or TRACE_ID=VERSION@AGE_S, got \"abc\"\n",
        ),
    ] {
        let out = run(&args);
        assert_eq!((out.code, out.stderr.as_str()), (2, expected), "{args:?}");
    }
}

// ---------------------------------------------------------------------------- status

/// Saved pages of a real Envoy 1.40 (canary_e2e/rollout.py's configuration and traffic):
/// /stats and /stats/prometheus of an Envoy without canary-tagger's stats tags, and
/// /stats/prometheus of one with them, the same traffic through both (the sticky ids are
/// random: saved from a pair of runs that split alike). Cut down to our series, the
/// clusters' `upstream_rq*` stats (sub-scopes such as `external.` included in /stats) and
/// a few `server.` lines. sidecar-stats.txt: test_sidecar.py's sidecar, four calls.
const GATEWAY_DUMPS: [&str; 3] = [
    "tests/data/status/gateway-stats-flat.txt",
    "tests/data/status/gateway-prometheus-flat.txt",
    "tests/data/status/gateway-prometheus-tagged.txt",
];

/// `status --json` without `source` and the p99s (Envoy's quantile in /stats, interpolated
/// within /stats/prometheus' buckets: not the same number).
fn status_counts(stdout: &str) -> Value {
    let mut report: Value = serde_json::from_str(stdout).unwrap();
    let object = report.as_object_mut().unwrap();
    object.remove("source");
    if let Some(upstream) = object.get_mut("upstream").and_then(Value::as_object_mut) {
        for row in upstream.values_mut() {
            row.as_object_mut().unwrap().remove("p99_ms");
        }
    }
    report
}

#[test]
fn status_reads_every_saved_page_alike() {
    let expected = serde_json::json!({
        "versions": {"v1": {"requests": 31, "share": 0.608}, "v2": {"requests": 3, "share": 0.059},
                     "v3": {"requests": 17, "share": 0.333}},
        "rules": [{"rule": "beta", "versions": {"v1": 25, "v3": 17}},
                  {"rule": "testers", "versions": {"v2": 3}}],
        "decided_by": {"default": 6, "rule": 45},
        "ramps": [{"rule": "beta", "percent": 50}],
        "counters": {"client_tag_stripped": 4, "sticky_id_issued": 2, "sticky_id_rejected": 0,
                     "config_rejected": 0},
        "upstream": {"v1": {"requests": 31, "5xx": 2}, "v2": {"requests": 3, "5xx": 0},
                     "v3": {"requests": 17, "5xx": 0}}
    });
    for dump in GATEWAY_DUMPS {
        let file = repo(dump);
        let out = run(&["status", "--stats", file.to_str().unwrap(), "--json"]);
        assert_eq!(out.code, 0, "{dump}: {}", out.stderr);
        assert_eq!(status_counts(&out.stdout), expected, "{dump}");
        let text = std::fs::read_to_string(&file).unwrap();
        let piped = run_with_stdin(&["status", "--stats", "-", "--json"], &text);
        assert_eq!(status_counts(&piped.stdout), expected, "{dump} on stdin");
    }
}

#[test]
fn status_shows_a_table_per_section() {
    let file = repo(GATEWAY_DUMPS[0]);
    let out = run(&["status", "--stats", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = format!(
        "stats dump {} — totals\n{}",
        file.to_str().unwrap(),
        "
VERSION            REQUESTS  SHARE
v1                       31  60.8% ██████████████████░░░░░░░░░░░░
v2                        3   5.9% ██░░░░░░░░░░░░░░░░░░░░░░░░░░░░
v3                       17  33.3% ██████████░░░░░░░░░░░░░░░░░░░░

RULE                     SENT TO
beta                     v1 25, v3 17
testers                  v2 3

DECIDED BY                 REQUESTS
default                           6
rule                             45

RAMP                     PERCENT
beta                         50% [███████████████░░░░░░░░░░░░░░░]

COUNTERS
client tags stripped              4
sticky ids issued                 2
sticky ids rejected               0
configs rejected                  0

UPSTREAM           REQUESTS        5XX   5XX%        P99
v1                       31          2   6.5%     0.0 ms
v2                        3          0   0.0%     1.1 ms
v3                       17          0   0.0%     0.0 ms
"
    );
    assert_eq!(out.stdout, expected);
    assert!(out.stdout.lines().all(|line| line.chars().count() <= 80));
}

#[test]
fn status_of_a_sidecar_shows_restores_and_maps_clusters_by_a_regex() {
    let file = repo("tests/data/status/sidecar-stats.txt");
    let file = file.to_str().unwrap();
    let out = run(&["status", "--stats", file, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        report["versions"],
        serde_json::json!({"v1": {"requests": 2, "share": 0.5}, "v2": {"requests": 1, "share": 0.25},
                           "v3": {"requests": 1, "share": 0.25}})
    );
    assert_eq!(report["restored"]["default"], serde_json::json!({"v1": 2}));
    assert_eq!(report["restored"]["header"]["v2"], 1);
    assert_eq!(report["restored"]["trace"]["v3"], 1);
    assert_eq!(report["trace_misses"], 2);
    // The test sidecar's clusters are `v1` and `backend-v1`, not Istio's names.
    assert_eq!(report.get("upstream"), None);
    let mapped = run(&[
        "status",
        "--stats",
        file,
        "--json",
        "--cluster-version",
        "^backend-(.+)$",
    ]);
    let report: Value = serde_json::from_str(&mapped.stdout).unwrap();
    assert_eq!(
        report["upstream"],
        serde_json::json!({"v1": {"requests": 2, "5xx": 0}, "v2": {"requests": 1, "5xx": 0},
                           "v3": {"requests": 1, "5xx": 0}})
    );
}

#[test]
fn status_refuses_what_it_cannot_read_in_one_line() {
    let dump = std::fs::read_to_string(repo(GATEWAY_DUMPS[0])).unwrap();
    let cut = &dump[..dump.len() / 2 - 5];
    let truncated = temp_file("cut.txt", cut);
    let html = temp_file("page.html", "<!doctype html>\n<title>Envoy Admin</title>\n");
    let no_ours = temp_file("other.txt", "server.uptime: 12\nserver.live: 1\n");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["status", "--stats", &truncated],
            format!("{truncated}: truncated (the last line is incomplete)"),
        ),
        (
            vec!["status", "--stats", &html],
            format!("{html}: neither /stats (`name: value`) nor /stats/prometheus text"),
        ),
        (
            vec!["status", "--stats", &no_ours],
            format!("{no_ours} has no canary_tagger_ series (is the filter installed on this gateway?)"),
        ),
        (
            vec!["status", "--stats", "/nonexistent.txt"],
            "cannot read /nonexistent.txt: no such file or directory".into(),
        ),
        (
            vec!["status"],
            "status: give one of --admin URL, --prometheus URL or --stats FILE; see `canary-tagger help status`".into(),
        ),
        (
            vec!["status", "--stats", "-", "--admin", "http://127.0.0.1:15000"],
            "status: give one of --admin URL, --prometheus URL or --stats FILE; see `canary-tagger help status`".into(),
        ),
        (
            vec!["status", "--stats", "-", "--window", "10s"],
            "status: --window needs --admin or --prometheus (a dump is one moment)".into(),
        ),
        (
            vec!["status", "--admin", "http://127.0.0.1:15000", "--window", "soon"],
            "status: --window \"soon\" is not a duration (10s, 500ms, 2m)".into(),
        ),
        (
            vec!["status", "--admin", "https://gateway:15000"],
            "status: --admin \"https://gateway:15000\": https is not supported; reach the port over plain http (kubectl port-forward)".into(),
        ),
        (
            vec!["status", "--prometheus", "prometheus:9090"],
            "status: --prometheus \"prometheus:9090\" is not an http URL (e.g. http://127.0.0.1:9090)".into(),
        ),
        (
            vec!["status", "--stats", "-", "--cluster-version", "backend-.+"],
            "status: --cluster-version \"backend-.+\" has no capture group (the first one is the version)".into(),
        ),
        (
            vec!["status", "--stats", "-", "extra"],
            "status: unexpected argument \"extra\"; see `canary-tagger help status`".into(),
        ),
    ];
    for (args, expected) in cases {
        let out = run_with_stdin(&args, "");
        assert_usage_error(&args, &out, &format!("canary-tagger: {expected}\n"));
    }
}

#[test]
fn watch_usage_errors_and_an_unreadable_source_are_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["watch"],
            "watch: give one of --admin URL or --prometheus URL; see `canary-tagger help watch`",
        ),
        (
            &["watch", "--admin", "http://127.0.0.1:15000", "--prometheus", "http://127.0.0.1:9090"],
            "watch: give one of --admin URL or --prometheus URL; see `canary-tagger help watch`",
        ),
        (
            &["watch", "--admin", "http://127.0.0.1:15000", "--interval", "0s"],
            "watch: --interval \"0s\" must be more than 0 and at most 1h",
        ),
        (
            &["watch", "--stats", "-"],
            "watch: unknown option --stats; see `canary-tagger help watch`",
        ),
        (
            &["watch", "--admin", "https://gateway:15000"],
            "watch: --admin \"https://gateway:15000\": https is not supported; reach the port over plain http (kubectl port-forward)",
        ),
    ];
    for (args, expected) in cases {
        assert_usage_error(args, &run(args), &format!("canary-tagger: {expected}\n"));
    }
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let out = run(&["watch", "--admin", "http://127.0.0.1:9"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr_lines().len(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("canary-tagger: cannot read http://127.0.0.1:9/stats/prometheus: "),
        "{}",
        out.stderr
    );
}

#[test]
fn render_api_istio_is_the_default() {
    let file = repo("envoyfilter/weather/plugin-config.json");
    let file = file.to_str().unwrap();
    let args = [
        "render",
        file,
        "--host",
        "weather.example.com",
        "--service",
        "frontend",
    ];
    let default = run(&args);
    let explicit = run(&[&args[..], &["--api", "istio"]].concat());
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert_eq!(default.stdout, explicit.stdout);
    assert!(default.stdout.contains("kind: VirtualService"));
}
