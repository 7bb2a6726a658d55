//! `explain` of a gateway configuration: the rule, the split, the ramp, the headers.

use super::*;

#[test]
fn validate_prints_each_ramps_schedule_and_where_it_is_now() {
    let file = repo("fixtures/configs/ramp.json");
    let file = file.to_str().unwrap();
    let stdout = stdout_of(&["validate", file]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
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
    let stdout = stdout_of(&["validate", &future]);
    let line = stdout.lines().nth(1).unwrap();
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
