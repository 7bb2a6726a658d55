//! Sidecar mode: `validate` and `explain` inbound and outbound.

use super::*;

const SIDECAR: &str = "fixtures/configs/sidecar.json";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent() -> String {
    format!("traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01")
}

#[test]
fn validate_names_a_sidecar_configuration_and_its_restore_order() {
    let file = repo(SIDECAR);
    let stdout = stdout_of(&["validate", file.to_str().unwrap()]);
    assert!(
        stdout
            .ends_with("sidecar.json: ok (sidecar, 3 versions, restore header, baggage, trace)\n"),
        "{stdout}"
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
