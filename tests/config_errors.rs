//! Every way a configuration is rejected, with the exact `path: reason` the operator sees.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use canary_tagger::config::CompiledConfig;

/// A minimal valid config with `extra` fields spliced in.
fn with(extra: &str) -> String {
    let base = r#""versions": ["v1", "v2", "v3"], "default_version": "v1""#;
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base}, {extra}}}")
    }
}

fn rule(body: &str) -> String {
    with(&format!(r#""rules": [{body}]"#))
}

/// Rules 0 and 1 fixed, rule 2 a 10/90 split with `split.ramp` = `{ramp}`: the SPEC's path.
fn ramp(ramp: &str) -> String {
    rule(&format!(
        r#"{{"name": "t", "version": "v3"}}, {{"name": "u", "version": "v3"}},
           {{"name": "ramp", "split": {{"weights": [{{"version": "v2", "percent": 10}}, {{"version": "v1", "percent": 90}}],
                                     "ramp": {{{ramp}}}, "key": ["cookie:uid"]}}}}"#
    ))
}

fn error_of(json: &str) -> String {
    common::record_config(json);
    match CompiledConfig::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted a bad config: {json}"),
        Err(errors) => errors.to_string(),
    }
}

/// Fails once, listing every config whose errors differ from the expected text.
fn assert_errors(cases: &[(String, &str)]) {
    let mut failures = Vec::new();
    for (json, expected) in cases {
        let actual = error_of(json);
        if actual != *expected {
            failures.push(format!(
                "config: {json}\n  expected: {expected}\n  actual:   {actual}"
            ));
        }
    }
    common::assert_all_pass(&failures, cases.len());
}

#[test]
fn bad_configs_are_rejected_with_path_and_reason() {
    let cases: Vec<(String, &str)> = vec![
        // Structure and JSON syntax.
        ("".into(), "$: configuration is empty; `versions` and `default_version` are required"),
        ("{".into(), "$: invalid JSON: EOF while parsing an object at line 1 column 1"),
        (with("") + " x", "$: invalid JSON: trailing characters at line 1 column 59"),
        ("[]".into(), "$: invalid type: array, expected a JSON object"),
        (r#"{"default_version": "v1"}"#.into(), "versions: required field is missing"),
        (r#"{"versions": ["v1"]}"#.into(), "default_version: required field is missing"),
        (with(r#""tag_headr": "x-v""#), r#"$: unknown field "tag_headr" (did you mean "tag_header"?)"#),
        (with(r#""colour": 1"#), "$: unknown field \"colour\"; expected one of schema, tag_header, versions, default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, response_header, baggage, tracestate, mode, restore, trace_memory"),
        (r#"{"versions": "v1", "default_version": "v1"}"#.into(), r#"versions: invalid type: string "v1", expected an array"#),
        (with(r#""baggage": "yes""#), r#"baggage: invalid type: string "yes", expected a boolean"#),
        (with(r#""schema": 2"#), "schema: unsupported schema 2, expected 1"),
        // Versions.
        (r#"{"versions": [], "default_version": "v1"}"#.into(), "versions: must list at least one version; default_version: unknown version \"v1\"; versions are "),
        (r#"{"versions": ["v1", "v1"], "default_version": "v1"}"#.into(), r#"versions[1]: duplicate version "v1""#),
        (r#"{"versions": ["v1", ""], "default_version": "v1"}"#.into(), "versions[1]: must not be empty"),
        (r#"{"versions": ["v 1"], "default_version": "v 1"}"#.into(), r#"versions[0]: "v 1" is not a valid version name (1-63 of A-Z a-z 0-9 . _ -)"#),
        (r#"{"versions": ["v1"], "default_version": "v2"}"#.into(), r#"default_version: unknown version "v2"; versions are v1"#),
        (r#"{"versions": ["v1"], "default_version": ""}"#.into(), "default_version: must not be empty"),
        // Headers and client address.
        (with(r#""tag_header": """#), "tag_header: header name must not be empty"),
        (with(r#""tag_header": "x canary""#), r#"tag_header: "x canary" is not a valid header name"#),
        (with(r#""tag_header": ":path""#), r#"tag_header: ":path": pseudo-headers cannot be used here"#),
        (with(r#""response_header": "bad header""#), r#"response_header: "bad header" is not a valid header name"#),
        (with(r#""client_ip": {"from": "xf"}"#), "client_ip.from: unknown variant `xf`, expected `peer` or `xff`"),
        (with(r#""client_ip": {"from": "peer", "trusted_hops": 1}"#), r#"client_ip.trusted_hops: only applies when client_ip.from is "xff""#),
        (with(r#""client_ip": {"from": "xff", "trusted_hops": -1}"#), "client_ip.trusted_hops: invalid value: integer `-1`, expected a non-negative integer"),
        (with(r#""trusted_tag_sources": ["10.20.0.0/16", "10.20.0.0/33"]"#), r#"trusted_tag_sources[1]: "10.20.0.0/33" has a prefix length outside 0..=32"#),
        (with(r#""trusted_tag_sources": ["10.20.1.0/16"]"#), r#"trusted_tag_sources[0]: "10.20.1.0/16" has host bits set beyond its prefix length"#),
        (with(r#""trusted_tag_sources": ["office"]"#), r#"trusted_tag_sources[0]: "office" is not an IP address or CIDR range"#),
        // Normalize.
        (with(r#""normalize": [{"header": "", "allowed": ["v1"], "default": "v1"}]"#), "normalize[0].header: header name must not be empty"),
        (with(r#""normalize": [{"header": "grpcsvc", "allowed": [], "default": "v1"}]"#), "normalize[0].allowed: must list at least one value; normalize[0].default: \"v1\" is not one of allowed"),
        (with(r#""normalize": [{"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v9"}]"#), r#"normalize[0].default: "v9" is not one of allowed"#),
        (with(r#""normalize": [{"header": "X-Canary-Version", "allowed": ["v1"], "default": "v1"}]"#), "normalize[0].header: the tag header is written by the filter itself and cannot be normalized"),
        (with(r#""normalize": [{"header": "grpcsvc", "allowed": ["v1"], "default": "v1", "when": {"header": "content-type"}}]"#), "normalize[0].when: expected exactly one operator of exact, prefix, suffix, contains, regex, present; found none"),
        // Rules: names and actions.
        (rule(r#"{"name": "", "version": "v1"}"#), "rules[0].name: must not be empty"),
        (rule(r#"{"name": "office ip", "version": "v1"}"#), r#"rules[0].name: "office ip" is not a valid rule name (1-63 visible ASCII characters, no spaces)"#),
        (with(r#""rules": [{"name": "a", "version": "v1"}, {"name": "a", "version": "v2"}]"#), r#"rules[1].name: duplicate rule name "a""#),
        (rule(r#"{"name": "a"}"#), "rules[0]: expected exactly one action of version, version_from, split; found none"),
        (rule(r#"{"name": "a", "version": "v1", "version_from": "header:x"}"#), "rules[0]: expected exactly one action of version, version_from, split; found version and version_from"),
        (rule(r#"{"name": "a", "version": "v9"}"#), r#"rules[0].version: unknown version "v9"; versions are v1, v2, v3"#),
        (rule(r#"{"name": "a", "version_from": "grpcsvc"}"#), r#"rules[0].version_from: "grpcsvc" is not one of header:NAME, cookie:NAME"#),
        (rule(r#"{"name": "a", "version_from": "query:v"}"#), r#"rules[0].version_from: "query:v" is not one of header:NAME, cookie:NAME"#),
        (rule(r#"{"name": "a", "version_from": "header:"}"#), r#"rules[0].version_from: "header:" names no header"#),
        (rule(r#"{"name": "a", "version_from": "header:x-canary-version"}"#), "rules[0].version_from: the tag header is set by this filter; clients must not choose it (use trusted_tag_sources)"),
        (rule(r#"{"name": "a", "versoin": "v1"}"#), r#"rules[0]: unknown field "versoin" (did you mean "version"?)"#),
        // Splits.
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}]}}"#), "rules[0].split.weights: percents sum to 90, expected 100"),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v2", "percent": 10.5}, {"version": "v1", "percent": 89.25}]}}"#), "rules[0].split.weights: percents sum to 99.75, expected 100"),
        (rule(r#"{"name": "a", "split": {"weights": []}}"#), "rules[0].split.weights: must list at least one version"),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v9", "percent": 100}]}}"#), r#"rules[0].split.weights[0].version: unknown version "v9"; versions are v1, v2, v3"#),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": 50}, {"version": "v1", "percent": 50}]}}"#), r#"rules[0].split.weights[1].version: version "v1" is listed twice"#),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": 33.333}, {"version": "v2", "percent": 66.667}]}}"#), "rules[0].split.weights[0].percent: 33.333 has more than two decimals; rules[0].split.weights[1].percent: 66.667 has more than two decimals"),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": 120}, {"version": "v2", "percent": -20}]}}"#), "rules[0].split.weights[0].percent: 120 is outside 0..=100; rules[0].split.weights[1].percent: -20 is outside 0..=100"),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": "100"}]}}"#), r#"rules[0].split.weights[0].percent: invalid type: string "100", expected a number"#),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "key": ["cookie:uid", "ip"]}}"#), r#"rules[0].split.key[1]: "ip" is not one of cookie:NAME, header:NAME, query:NAME, source_ip"#),
        (rule(r#"{"name": "a", "split": {"weights": [{"version": "v1", "percent": 100}], "seed": "x"}}"#), r#"rules[0].split: unknown field "seed"; expected one of weights, key, salt, ramp"#),
        // Time-based ramps (SPEC §9).
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 5"#), "rules[2].split.ramp.to: 5 is below the first weight (10)"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 9.99"#), "rules[2].split.ramp.to: 9.99 is below the first weight (10)"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 120"#), "rules[2].split.ramp.to: 120 is outside 0..=100"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 50.555"#), "rules[2].split.ramp.to: 50.555 has more than two decimals"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": "100""#), r#"rules[2].split.ramp.to: invalid type: string "100", expected a number"#),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 0, "to": 100"#), "rules[2].split.ramp.duration_s: must be at least 1 (the ramp's length in seconds)"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": -60, "to": 100"#), "rules[2].split.ramp.duration_s: invalid value: integer `-60`, expected a non-negative integer"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 1.5, "to": 100"#), "rules[2].split.ramp.duration_s: invalid type: floating point `1.5`, expected a non-negative integer"),
        (ramp(r#""start": "2026-12-01", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-01" is not an RFC 3339 date and time in UTC, such as 2026-12-01T10:00:00Z"#),
        (ramp(r#""start": "1 December 2026", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "1 December 2026" is not an RFC 3339 date and time in UTC, such as 2026-12-01T10:00:00Z"#),
        (ramp(r#""start": "2026-12-01T10:00:00", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-01T10:00:00" is not an RFC 3339 date and time in UTC, such as 2026-12-01T10:00:00Z"#),
        (ramp(r#""start": "2026-02-29T10:00:00Z", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-02-29T10:00:00Z" has no day 29 in 2026-02"#),
        (ramp(r#""start": "2026-13-01T10:00:00Z", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-13-01T10:00:00Z" has no month 13"#),
        (ramp(r#""start": "2026-12-01T24:00:00Z", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-01T24:00:00Z" has no hour 24 (00-23)"#),
        (ramp(r#""start": "2026-12-01T10:60:00Z", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-01T10:60:00Z" has no minute 60 (00-59)"#),
        (ramp(r#""start": "2026-12-31T23:59:60Z", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-31T23:59:60Z" has no second 60 (00-59)"#),
        (ramp(r#""start": "2026-12-01T11:00:00+01:00", "duration_s": 3600, "to": 100"#), r#"rules[2].split.ramp.start: "2026-12-01T11:00:00+01:00" is not in UTC; write the same time as 2026-12-01T10:00:00Z"#),
        (ramp(r#""start": 1796119200, "duration_s": 3600, "to": 100"#), "rules[2].split.ramp.start: invalid type: integer `1796119200`, expected a string"),
        (ramp(r#""duration_s": 3600, "to": 100"#), "rules[2].split.ramp.start: required field is missing"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "to": 100"#), "rules[2].split.ramp.duration_s: required field is missing"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600"#), "rules[2].split.ramp.to: required field is missing"),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 100, "from": 10"#), r#"rules[2].split.ramp: unknown field "from"; expected one of start, duration_s, to"#),
        (ramp(r#""start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 100, "duraton_s": 1"#), r#"rules[2].split.ramp: unknown field "duraton_s" (did you mean "duration_s"?)"#),
        (ramp(r#""start": "2026-02-30T10:00:00Z", "duration_s": 0, "to": 5"#), r#"rules[2].split.ramp.start: "2026-02-30T10:00:00Z" has no day 30 in 2026-02; rules[2].split.ramp.duration_s: must be at least 1 (the ramp's length in seconds); rules[2].split.ramp.to: 5 is below the first weight (10)"#),
        (with(r#""rules": [{"name": "a", "split": {"weights": [{"version": "v2", "percent": 10}, {"version": "v1", "percent": 90}]}, "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60, "to": 100}}]"#), r#"rules[0]: unknown field "ramp" (a ramp belongs in the rule's split, next to its weights)"#),
        (with(r#""rules": [{"name": "a", "version": "v2", "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60, "to": 100}}]"#), r#"rules[0]: unknown field "ramp" (a ramp belongs in the rule's split, next to its weights)"#),
        (with(r#""ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60, "to": 100}"#), "$: unknown field \"ramp\"; expected one of schema, tag_header, versions, default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, response_header, baggage, tracestate, mode, restore, trace_memory"),
        // Conditions.
        (rule(r#"{"name": "a", "match": {}, "version": "v1"}"#), "rules[0].match: expected exactly one of header, cookie, query, source_ip, all, any, not; found none"),
        (rule(r#"{"name": "a", "match": {"header": "a", "cookie": "b", "exact": "x"}, "version": "v1"}"#), "rules[0].match: expected exactly one of header, cookie, query, source_ip, all, any, not; found header and cookie"),
        (rule(r#"{"name": "a", "match": {"header": "a", "exact": "x", "prefix": "y"}, "version": "v1"}"#), "rules[0].match: expected exactly one operator of exact, prefix, suffix, contains, regex, present; found exact and prefix"),
        (rule(r#"{"name": "a", "match": {"header": "user-agent", "regex": "(Chrome"}, "version": "v1"}"#), "rules[0].match.regex: invalid regex: unclosed group"),
        (rule(r#"{"name": "a", "match": {"header": ":status", "exact": "200"}, "version": "v1"}"#), r#"rules[0].match.header: unknown pseudo-header ":status"; allowed are :path, :method, :authority, :scheme"#),
        (rule(r#"{"name": "a", "match": {"header": "x-canary-version", "exact": "v2"}, "version": "v1"}"#), "rules[0].match.header: the tag header is set by this filter; match on the request instead"),
        (rule(r#"{"name": "a", "match": {"cookie": "a b", "exact": "x"}, "version": "v1"}"#), r#"rules[0].match.cookie: "a b" is not a valid cookie name"#),
        (rule(r#"{"name": "a", "match": {"query": "", "exact": "x"}, "version": "v1"}"#), "rules[0].match.query: query parameter name must not be empty"),
        (rule(r#"{"name": "a", "match": {"source_ip": []}, "version": "v1"}"#), "rules[0].match.source_ip: must list at least one address or CIDR range"),
        (rule(r#"{"name": "a", "match": {"source_ip": ["192.168.0.58/32", "2001:db8::/129"]}, "version": "v1"}"#), r#"rules[0].match.source_ip[1]: "2001:db8::/129" has a prefix length outside 0..=128"#),
        (rule(r#"{"name": "a", "match": {"source_ip": ["10.0.0.0/8"], "exact": "x"}, "version": "v1"}"#), "rules[0].match.exact: operators do not apply to source_ip"),
        (rule(r#"{"name": "a", "match": {"all": []}, "version": "v1"}"#), "rules[0].match.all: must list at least one condition"),
        (rule(r#"{"name": "a", "match": {"any": [{"header": "a", "present": true}, {"cookie": "b", "regex": "["}]}, "version": "v1"}"#), "rules[0].match.any[1].regex: invalid regex: unclosed character class"),
        (rule(r#"{"name": "a", "match": {"not": {"headr": "a"}}, "version": "v1"}"#), r#"rules[0].match.not: unknown field "headr" (did you mean "header"?)"#),
        (rule(r#"{"name": "a", "match": {"header": "a", "present": true, "ignore_case": true}, "version": "v1"}"#), "rules[0].match.ignore_case: does not apply to present"),
        // Sticky cookie.
        (with(r#""sticky_cookie": {"name": ""}"#), "sticky_cookie.name: must not be empty"),
        (with(r#""sticky_cookie": {"name": "canary uid"}"#), r#"sticky_cookie.name: "canary uid" is not a valid cookie name"#),
        (with(r#""sticky_cookie": {"name": "canary-uid", "max_age_s": 0}"#), "sticky_cookie.max_age_s: must be positive (0 would delete the cookie)"),
        (with(r#""sticky_cookie": {"name": "canary-uid", "max_ag": 1}"#), r#"sticky_cookie: unknown field "max_ag" (did you mean "max_age_s"?)"#),
    ];
    assert!(cases.len() >= 30);
    assert_errors(&cases);
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let json = with(
        r#""rules": [{"name": "", "version": "v9"}, {"name": "b", "split": {"weights": [{"version": "v1", "percent": 90}]}}]"#,
    );
    let errors = CompiledConfig::from_json(json.as_bytes()).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "rules[0].name: must not be empty".to_string(),
            r#"rules[0].version: unknown version "v9"; versions are v1, v2, v3"#.to_string(),
            "rules[1].split.weights: percents sum to 90, expected 100".to_string(),
        ]
    );
}

/// serde reports structural errors as text; the library classifies it into kinds and renders
/// those, which must come out in serde's words (escapes, numbers, type names included).
#[test]
fn structural_errors_read_back_in_serde_words() {
    let cases = [
        (
            with(r#""baggage": "a, expected \"b\"\n\u0001""#),
            r#"baggage: invalid type: string "a, expected \"b\"\n\u{1}", expected a boolean"#,
        ),
        (
            with(r#""client_ip": {"from": "xff", "trusted_hops": 1.5}"#),
            "client_ip.trusted_hops: invalid type: floating point `1.5`, expected a non-negative integer",
        ),
        (
            with(r#""client_ip": {"from": "xff", "trusted_hops": 4294967296}"#),
            "client_ip.trusted_hops: invalid value: integer `4294967296`, expected a non-negative integer",
        ),
        (
            rule(r#"{"name": "a", "match": {"all": {}}, "version": "v1"}"#),
            "rules[0].match.all: invalid type: map, expected an array",
        ),
        (
            with(r#""client_ip": "xff""#),
            r#"client_ip: invalid type: string "xff", expected a JSON object"#,
        ),
        (
            with(r#""client_ip": ["xff"]"#),
            "client_ip: invalid type: array, expected a JSON object",
        ),
        // A two-field object: serde lists both as "`a` or `b`".
        (
            with(r#""client_ip": {"from": "xff", "trusted_hop": 1}"#),
            r#"client_ip: unknown field "trusted_hop" (did you mean "trusted_hops"?)"#,
        ),
        (
            with(r#""client_ip": {"from": "xff", "hops": 1}"#),
            r#"client_ip: unknown field "hops"; expected one of from, trusted_hops"#,
        ),
    ];
    assert_errors(&cases);
}

#[test]
fn spec_example_config_compiles_with_defaults_applied() {
    let config = CompiledConfig::from_json(common::SPEC_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(config.tag_header, "x-canary-version");
    assert_eq!(config.rules.len(), 5);
    assert!(config.baggage);

    let minimal = CompiledConfig::from_json(with("").as_bytes()).unwrap();
    assert_eq!(minimal.tag_header, "x-canary-version");
    assert_eq!(minimal.client_ip, canary_tagger::config::ClientIpMode::Peer);
    assert!(minimal.rules.is_empty() && minimal.normalize.is_empty());
    assert!(minimal.sticky_cookie.is_none() && minimal.response_header.is_none());
    assert!(!minimal.baggage);

    let xff = CompiledConfig::from_json(with(r#""client_ip": {"from": "xff"}, "sticky_cookie": {"name": "c"}, "tag_header": "X-Version""#).as_bytes()).unwrap();
    assert_eq!(
        xff.client_ip,
        canary_tagger::config::ClientIpMode::ForwardedFor { trusted_hops: 0 }
    );
    let sticky = xff.sticky_cookie.unwrap();
    assert_eq!((sticky.max_age_s, sticky.secure), (2_592_000, false));
    assert_eq!(xff.tag_header, "x-version", "header names are lower-cased");
}

/// `sticky_cookie.signing` (SPEC §10): the keys' variable, missing or malformed, rejects the
/// configuration at `sticky_cookie.signing.keys_env`, naming entries and key ids, never keys.
#[test]
fn signing_keys_are_checked_and_never_quoted() {
    use canary_tagger::config::Environment;
    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZg=="; // "0123456789abcdef"
    let signed = |keys_env: &str| {
        with(&format!(
            r#""sticky_cookie": {{"name": "uid", "signing": {{"keys_env": "{keys_env}"}}}}"#
        ))
    };
    let error_in = |json: &str, environment: &dyn Environment| -> String {
        match CompiledConfig::from_json_in(json.as_bytes(), environment) {
            Ok(_) => panic!("accepted a bad config: {json}"),
            Err(errors) => errors.to_string(),
        }
    };
    let path = "sticky_cookie.signing.keys_env";
    let keys = |value: &str| error_in(&signed("STICKY_KEYS"), &[("STICKY_KEYS", value)]);
    let cases: Vec<(String, String)> = vec![
        (
            error_in(&signed("STICKY_KEYS"), &[("OTHER", KEY)]),
            format!("{path}: environment variable STICKY_KEYS is not set in the Wasm VM; it must hold the signing keys as KID:BASE64,KID:BASE64,... (Envoy vm_config.environment_variables, Istio WasmPlugin vmConfig.env)"),
        ),
        (
            keys(" \n"),
            format!("{path}: environment variable STICKY_KEYS: no keys; expected KID:BASE64,KID:BASE64,..."),
        ),
        (
            keys(&format!("k1:{KEY},{KEY}")),
            format!("{path}: environment variable STICKY_KEYS: entry 2 is not KID:BASE64"),
        ),
        (
            keys(&format!("a.b:{KEY}")),
            format!("{path}: environment variable STICKY_KEYS: entry 1 has an invalid key id (1-16 of A-Z a-z 0-9 _ -)"),
        ),
        (
            keys(&format!("abcdefghijklmnopq:{KEY}")),
            format!("{path}: environment variable STICKY_KEYS: entry 1 has an invalid key id (1-16 of A-Z a-z 0-9 _ -)"),
        ),
        (
            keys(&format!("k1:{KEY},k1:{KEY}")),
            format!(r#"{path}: environment variable STICKY_KEYS: key id "k1" is listed twice"#),
        ),
        (
            keys("k1:c2VjcmV0*"),
            format!(r#"{path}: environment variable STICKY_KEYS: key "k1" is not valid base64"#),
        ),
        (
            keys("k1:c2VjcmV0LXNob3J0"),
            format!(r#"{path}: environment variable STICKY_KEYS: key "k1" is 12 bytes, at least 16 are required"#),
        ),
        (error_of(&signed("")), format!("{path}: must not be empty")),
        (
            error_of(&signed("STICKY-KEYS")),
            format!(r#"{path}: "STICKY-KEYS" is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)"#),
        ),
        (
            error_of(&with(r#""sticky_cookie": {"name": "uid", "signing": {"keys": "k1:x"}}"#)),
            r#"sticky_cookie.signing: unknown field "keys"; expected one of keys_env"#.into(),
        ),
        (
            error_of(&with(r#""sticky_cookie": {"name": "uid", "signing": {}}"#)),
            "sticky_cookie.signing.keys_env: required field is missing".into(),
        ),
    ];
    for (actual, expected) in &cases {
        assert_eq!(actual, expected);
        assert!(
            !actual.contains(KEY) && !actual.contains("c2VjcmV0"),
            "{actual}"
        );
    }

    // Without the environment (`from_json`), a signing config finds no keys; with it, it
    // compiles, first key signing.
    assert!(error_of(&signed("STICKY_KEYS")).contains("is not set"));
    let environment = [(
        "STICKY_KEYS",
        "new:MDEyMzQ1Njc4OWFiY2RlZg==, old:ZmVkY2JhOTg3NjU0MzIxMA==\n",
    )];
    let config =
        CompiledConfig::from_json_in(signed("STICKY_KEYS").as_bytes(), &environment).unwrap();
    let keys = config.sticky_cookie.unwrap().signing.unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["new", "old"]);
    assert_eq!(keys.keys_env(), "STICKY_KEYS");
}

/// A minimal sidecar config with `extra` fields spliced in.
fn waypoint(extra: &str) -> String {
    with(&format!(
        r#""mode": "waypoint"{}{extra}"#,
        if extra.is_empty() { "" } else { ", " }
    ))
}

fn sidecar(extra: &str) -> String {
    with(&format!(
        r#""mode": "sidecar"{}{extra}"#,
        if extra.is_empty() { "" } else { ", " }
    ))
}

#[test]
fn sidecar_mode_fields_are_checked_with_their_paths() {
    let cases: Vec<(String, &str)> = vec![
        (with(r#""mode": "mesh""#), "mode: unknown variant `mesh`, expected one of `gateway`, `sidecar`, `waypoint`"),
        // The gateway's fields in sidecar mode, given at all (even empty).
        (sidecar(r#""rules": [{"name": "a", "version": "v2"}]"#), r#"rules: only allowed when mode is "gateway""#),
        (sidecar(r#""rules": []"#), r#"rules: only allowed when mode is "gateway""#),
        (sidecar(r#""normalize": []"#), r#"normalize: only allowed when mode is "gateway""#),
        (sidecar(r#""client_ip": {"from": "xff"}"#), r#"client_ip: only allowed when mode is "gateway""#),
        (sidecar(r#""sticky_cookie": {"name": "c"}"#), r#"sticky_cookie: only allowed when mode is "gateway""#),
        (sidecar(r#""trusted_tag_sources": ["10.0.0.0/8"]"#), r#"trusted_tag_sources: only allowed when mode is "gateway""#),
        (
            sidecar(r#""client_ip": {"from": "peer"}, "trusted_tag_sources": [], "normalize": [], "rules": [], "sticky_cookie": {"name": "c"}"#),
            r#"client_ip: only allowed when mode is "gateway"; trusted_tag_sources: only allowed when mode is "gateway"; normalize: only allowed when mode is "gateway"; rules: only allowed when mode is "gateway"; sticky_cookie: only allowed when mode is "gateway""#,
        ),
        // The sidecar's fields in gateway mode, explicit or by default.
        (with(r#""restore": ["trace"]"#), r#"restore: only allowed when mode is "sidecar" or "waypoint""#),
        (with(r#""mode": "gateway", "trace_memory": {}"#), r#"trace_memory: only allowed when mode is "sidecar" or "waypoint""#),
        // restore.
        (sidecar(r#""restore": []"#), "restore: must list at least one restore source (header, baggage, tracestate, trace)"),
        (sidecar(r#""restore": ["header", "trace", "header"]"#), r#"restore[2]: "header" is listed twice"#),
        (sidecar(r#""restore": ["header", "cookie"]"#), "restore[1]: unknown variant `cookie`, expected one of `header`, `baggage`, `tracestate`, `trace`"),
        (sidecar(r#""restore": "trace""#), r#"restore: invalid type: string "trace", expected an array"#),
        // trace_memory.
        (sidecar(r#""trace_memory": {"entries": 0}"#), "trace_memory.entries: 0 is outside 1..=1048576"),
        (sidecar(r#""trace_memory": {"entries": 2000000}"#), "trace_memory.entries: 2000000 is outside 1..=1048576"),
        (sidecar(r#""trace_memory": {"entries": -1}"#), "trace_memory.entries: invalid value: integer `-1`, expected a non-negative integer"),
        (sidecar(r#""trace_memory": {"ttl_s": 0}"#), "trace_memory.ttl_s: 0 is outside 1..=86400"),
        (sidecar(r#""trace_memory": {"ttl_s": 86401, "entries": 0}"#), "trace_memory.entries: 0 is outside 1..=1048576; trace_memory.ttl_s: 86401 is outside 1..=86400"),
        (sidecar(r#""trace_memory": {"ttl": 5}"#), r#"trace_memory: unknown field "ttl"; expected one of entries, ttl_s"#),
        (sidecar(r#""trace_memory": {"tll_s": 5}"#), r#"trace_memory: unknown field "tll_s" (did you mean "ttl_s"?)"#),
        // Waypoint mode (SPEC §12) takes the sidecar's fields and rejects the gateway's.
        (waypoint(r#""rules": [{"name": "a", "version": "v2"}]"#), r#"rules: only allowed when mode is "gateway""#),
        (
            waypoint(r#""client_ip": {"from": "peer"}, "trusted_tag_sources": [], "normalize": [], "sticky_cookie": {"name": "c"}"#),
            r#"client_ip: only allowed when mode is "gateway"; trusted_tag_sources: only allowed when mode is "gateway"; normalize: only allowed when mode is "gateway"; sticky_cookie: only allowed when mode is "gateway""#,
        ),
        (waypoint(r#""restore": ["tracestate", "trace", "tracestate"]"#), r#"restore[2]: "tracestate" is listed twice"#),
        (waypoint(r#""restore": []"#), "restore: must list at least one restore source (header, baggage, tracestate, trace)"),
        (waypoint(r#""trace_memory": {"entries": 0}"#), "trace_memory.entries: 0 is outside 1..=1048576"),
        (with(r#""tracestate": "yes""#), r#"tracestate: invalid type: string "yes", expected a boolean"#),
    ];
    assert_errors(&cases);
}

#[test]
fn sidecar_defaults_and_explicit_values() {
    use canary_tagger::config::{Mode, RestoreSource, Sidecar, TraceMemory};
    let minimal = CompiledConfig::from_json(sidecar("").as_bytes()).unwrap();
    assert_eq!(
        minimal.mode,
        Mode::Sidecar(Sidecar {
            restore: vec![
                RestoreSource::Header,
                RestoreSource::Baggage,
                RestoreSource::Trace
            ],
            trace_memory: TraceMemory {
                entries: 65_536,
                ttl_s: 300
            },
        })
    );
    let explicit = CompiledConfig::from_json(
        sidecar(r#""restore": ["trace", "baggage"], "trace_memory": {"entries": 1, "ttl_s": 86400}, "baggage": true, "response_header": "x-v""#).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        explicit.mode,
        Mode::Sidecar(Sidecar {
            restore: vec![RestoreSource::Trace, RestoreSource::Baggage],
            trace_memory: TraceMemory {
                entries: 1,
                ttl_s: 86_400
            },
        })
    );
    assert!(explicit.baggage);
    // A waypoint reads every source by default, the stateless carriers first.
    let waypoint = CompiledConfig::from_json(waypoint(r#""tracestate": true"#).as_bytes()).unwrap();
    assert_eq!(
        waypoint.mode,
        Mode::Waypoint(Sidecar {
            restore: RestoreSource::ALL.to_vec(),
            trace_memory: TraceMemory {
                entries: 65_536,
                ttl_s: 300
            },
        })
    );
    assert_eq!(
        RestoreSource::ALL.map(RestoreSource::name),
        ["header", "baggage", "tracestate", "trace"]
    );
    assert!(waypoint.tracestate);
    let gateway = CompiledConfig::from_json(with(r#""mode": "gateway""#).as_bytes()).unwrap();
    assert_eq!(gateway.mode, Mode::Gateway);
    assert_eq!(
        CompiledConfig::from_json(with("").as_bytes()).unwrap().mode,
        Mode::Gateway
    );
}
