//! `status` and `watch`: the report from saved pages, and what they refuse.

use super::*;

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
        let json = stdout_of(&["status", "--stats", file.to_str().unwrap(), "--json"]);
        assert_eq!(status_counts(&json), expected, "{dump}");
        let text = std::fs::read_to_string(&file).unwrap();
        let piped = run_with_stdin(&["status", "--stats", "-", "--json"], &text);
        assert_eq!(status_counts(&piped.stdout), expected, "{dump} on stdin");
    }
}

#[test]
fn status_shows_a_table_per_section() {
    let file = repo(GATEWAY_DUMPS[0]);
    let stdout = stdout_of(&["status", "--stats", file.to_str().unwrap()]);
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
    assert_eq!(stdout, expected);
    assert!(stdout.lines().all(|line| line.chars().count() <= 80));
}

#[test]
fn status_of_a_sidecar_shows_restores_and_maps_clusters_by_a_regex() {
    let file = repo("tests/data/status/sidecar-stats.txt");
    let file = file.to_str().unwrap();
    let report: Value =
        serde_json::from_str(&stdout_of(&["status", "--stats", file, "--json"])).unwrap();
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
