//! Table-driven engine cases (SPEC §1 steps 1-4, §2, §3, §4): request in, decision out —
//! the version, what decided it, the client tag, normalizations, the split and sticky id.
//!
//! Case tables carry `#[rustfmt::skip]` so that each case stays one line.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine::{self, ClientTag, DecidedBy, SplitKey};
use canary_tagger::hash::{bucket, bucket_from_random};
use canary_tagger::net::ClientIpSource;
use canary_tagger::request::OwnedRequest;
use common::DEFAULT;
use common::{by_rule, case, compile, describe, expect, run_table, spec_example, Outcome};

fn req() -> OwnedRequest {
    OwnedRequest::new()
}

// ------------------------------------------------------------------ conditions, operators

/// `(label, match JSON, request, whether the condition holds)`.
type ConditionCase = (&'static str, &'static str, OwnedRequest, bool);

/// Each condition becomes the only rule of a config (`r` → v2, default v1): a request for
/// which it holds is decided by `rules[0]` as v2, any other by the default as v1.
fn check_conditions(cases: Vec<ConditionCase>) {
    let mut failures = Vec::new();
    for (label, condition, request, holds) in &cases {
        let config = compile(&format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1",
                "rules": [{{"name": "r", "match": {condition}, "version": "v2"}}]}}"#
        ));
        let expected = if *holds {
            expect("v2", by_rule(0))
        } else {
            expect("v1", DEFAULT)
        };
        common::record_request(request);
        let actual = Outcome::of(&config, &engine::decide(&config, request, 0));
        if actual != expected {
            failures.push(format!(
                "{label}: {condition}\n  request:  {}\n  expected: {expected:?}\n  actual:   {actual:?}",
                describe(request)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} condition cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn header_operators() {
    const EXACT: &str = r#"{"header": "x-team", "exact": "canary"}"#;
    const EXACT_CI: &str = r#"{"header": "x-team", "exact": "Canary", "ignore_case": true}"#;
    const UPPER_NAME: &str = r#"{"header": "X-Team", "exact": "canary"}"#;
    const GRPC: &str = r#"{"header": "content-type", "prefix": "application/grpc"}"#;
    const GRPC_CI: &str =
        r#"{"header": "content-type", "prefix": "Application/GRPC", "ignore_case": true}"#;
    const HOST: &str = r#"{"header": "x-host", "suffix": ".example.com"}"#;
    const HOST_CI: &str = r#"{"header": "x-host", "suffix": ".EXAMPLE.com", "ignore_case": true}"#;
    const ANDROID: &str = r#"{"header": "user-agent", "contains": "Android"}"#;
    const ANDROID_CI: &str =
        r#"{"header": "user-agent", "contains": "ANDROID", "ignore_case": true}"#;
    const CHROME: &str = r#"{"header": "user-agent", "regex": ".*Chrome.*"}"#;
    const BARE: &str = r#"{"header": "user-agent", "regex": "Chrome"}"#;
    const ALT: &str = r#"{"header": "x-a", "regex": "a|b"}"#;
    const VN: &str = r#"{"header": "x-a", "regex": "v[0-9]+"}"#;
    const VN_CI: &str = r#"{"header": "x-a", "regex": "v[0-9]+", "ignore_case": true}"#;
    const PRESENT: &str = r#"{"header": "x-debug", "present": true}"#;
    const ABSENT: &str = r#"{"header": "x-debug", "present": false}"#;
    #[rustfmt::skip]
    let cases = vec![
        ("exact", EXACT, req().header("x-team", "canary"), true),
        ("exact is case-sensitive", EXACT, req().header("x-team", "Canary"), false),
        ("exact needs the whole value", EXACT, req().header("x-team", "canary-2"), false),
        ("exact on a missing header", EXACT, req(), false),
        ("exact of another header", EXACT, req().header("x-teams", "canary"), false),
        ("exact ignore_case", EXACT_CI, req().header("x-team", "cAnArY"), true),
        ("header names are case-insensitive", UPPER_NAME, req().header("X-TEAM", "canary"), true),
        ("prefix", GRPC, req().header("content-type", "application/grpc+proto"), true),
        ("prefix equal to the value", GRPC, req().header("content-type", "application/grpc"), true),
        ("prefix mismatch", GRPC, req().header("content-type", "application/json"), false),
        ("prefix not at the start", GRPC, req().header("content-type", "x/application/grpc"), false),
        ("prefix longer than the value", GRPC, req().header("content-type", "application"), false),
        ("prefix ignore_case", GRPC_CI, req().header("content-type", "application/grpc"), true),
        ("suffix", HOST, req().header("x-host", "api.example.com"), true),
        ("suffix longer than the value", HOST, req().header("x-host", "example.com"), false),
        ("suffix not at the end", HOST, req().header("x-host", "api.example.com.evil"), false),
        ("suffix ignore_case", HOST_CI, req().header("x-host", "api.Example.COM"), true),
        ("contains", ANDROID, req().header("user-agent", "Mozilla/5.0 (Linux; Android 14)"), true),
        ("contains is case-sensitive", ANDROID, req().header("user-agent", "android"), false),
        ("contains mismatch", ANDROID, req().header("user-agent", "iPhone"), false),
        ("contains ignore_case", ANDROID_CI, req().header("user-agent", "Linux; android 14"), true),
        ("regex", CHROME, req().header("user-agent", "Mozilla/5.0 Chrome/120.0"), true),
        ("regex mismatch", CHROME, req().header("user-agent", "Mozilla/5.0 Firefox/121"), false),
        ("regex must match the whole value", BARE, req().header("user-agent", "Mozilla Chrome"), false),
        ("regex equal to the value", BARE, req().header("user-agent", "Chrome"), true),
        ("regex alternation is anchored as a whole", ALT, req().header("x-a", "ab"), false),
        ("regex alternation branch", ALT, req().header("x-a", "b"), true),
        ("regex is case-sensitive", VN, req().header("x-a", "V12"), false),
        ("regex ignore_case", VN_CI, req().header("x-a", "V12"), true),
        ("present", PRESENT, req().header("x-debug", "1"), true),
        ("present with an empty value", PRESENT, req().header("x-debug", ""), true),
        ("present on a missing header", PRESENT, req(), false),
        ("present false on a missing header", ABSENT, req(), true),
        ("present false on a present header", ABSENT, req().header("x-debug", ""), false),
    ];
    check_conditions(cases);
}

#[test]
fn pseudo_headers() {
    const API: &str = r#"{"header": ":path", "prefix": "/api/"}"#;
    const CHECKOUT: &str = r#"{"header": ":path", "regex": "/checkout(/.*)?"}"#;
    const POST: &str = r#"{"header": ":method", "exact": "POST"}"#;
    const AUTHORITY: &str = r#"{"header": ":authority", "suffix": ".example.com"}"#;
    #[rustfmt::skip]
    let cases = vec![
        (":path prefix", API, req().path("/api/v1/users?id=1"), true),
        (":path prefix mismatch", API, req().path("/web/api/"), false),
        (":path missing", API, req(), false),
        (":path regex", CHECKOUT, req().path("/checkout/pay"), true),
        (":path regex needs the whole value", CHECKOUT, req().path("/checkouts"), false),
        (":method", POST, req().header(":method", "POST"), true),
        (":method mismatch", POST, req().header(":method", "GET"), false),
        (":authority", AUTHORITY, req().header(":authority", "shop.example.com"), true),
        (":authority mismatch", AUTHORITY, req().header(":authority", "shop.example.org"), false),
    ];
    check_conditions(cases);
}

#[test]
fn repeated_headers_any_value_may_match() {
    const EXACT: &str = r#"{"header": "x-team", "exact": "canary"}"#;
    const NOT: &str = r#"{"not": {"header": "x-team", "exact": "canary"}}"#;
    const CHROME: &str = r#"{"header": "user-agent", "regex": ".*Chrome.*"}"#;
    let team = |a: &str, b: &str| req().header("x-team", a).header("x-team", b);
    #[rustfmt::skip]
    let cases = vec![
        ("the second value matches", EXACT, team("stable", "canary"), true),
        ("the first value matches", EXACT, team("canary", "stable"), true),
        ("no value matches", EXACT, team("stable", "beta"), false),
        ("not over values, one matches", NOT, team("stable", "canary"), false),
        ("not over values, none matches", NOT, team("stable", "beta"), true),
        ("regex over values", CHROME, req().header("user-agent", "curl/8").header("user-agent", "Chrome/1"), true),
    ];
    check_conditions(cases);
}

#[test]
fn cookie_conditions() {
    const TESTER: &str = r#"{"cookie": "user", "exact": "tester"}"#;
    const TESTER_CI: &str = r#"{"cookie": "user", "exact": "TESTER", "ignore_case": true}"#;
    const REGEX: &str = r#"{"cookie": "user", "regex": "test.*"}"#;
    const PRESENT: &str = r#"{"cookie": "user", "present": true}"#;
    const ABSENT: &str = r#"{"cookie": "user", "present": false}"#;
    const SEED_REGEX: &str = r#"{"header": "cookie", "regex": "^(.*?;)?(user=tester)(;.*)?$"}"#;
    let cookie = |value: &str| req().header("cookie", value);
    let cookies = |a: &str, b: &str| req().header("cookie", a).header("cookie", b);
    #[rustfmt::skip]
    let cases = vec![
        ("the only cookie", TESTER, cookie("user=tester"), true),
        ("middle of a multi-cookie header", TESTER, cookie("session=abc; user=tester; theme=dark"), true),
        ("first of several", TESTER, cookie("user=tester; theme=dark"), true),
        ("last, no spaces", TESTER, cookie("a=1;user=tester"), true),
        ("extra whitespace", TESTER, cookie("a=1 ;  user=tester  ; b=2"), true),
        ("in a later cookie header (HTTP/2)", TESTER, cookies("session=abc", "theme=dark; user=tester"), true),
        ("a later header's value matches", TESTER, cookies("user=admin", "user=tester"), true),
        ("other value", TESTER, cookie("user=admin"), false),
        ("longer value", TESTER, cookie("user=testers"), false),
        ("the name ends another name", TESTER, cookie("superuser=tester"), false),
        ("cookie names are case-sensitive", TESTER, cookie("User=tester"), false),
        ("the words elsewhere in the header", TESTER, cookie("name=user; tester=1"), false),
        ("no cookie header", TESTER, req().header("x-user", "tester"), false),
        ("builder cookie", TESTER, req().cookie("user", "tester"), true),
        ("ignore_case value", TESTER_CI, req().cookie("user", "Tester"), true),
        ("regex on the value", REGEX, req().cookie("user", "tester"), true),
        ("regex on the value, not the pair", REGEX, req().cookie("xuser", "tester"), false),
        ("present with an empty value", PRESENT, cookie("user="), true),
        ("present, other cookies only", PRESENT, cookie("a=1; b=2"), false),
        ("present false", ABSENT, cookie("a=1"), true),
        ("present false, cookie sent", ABSENT, cookie("a=1; user=x"), false),
        ("the seed's regex on the whole header", SEED_REGEX, cookie("a=1;user=tester;b=2"), true),
    ];
    check_conditions(cases);
}

#[test]
fn query_conditions_are_percent_decoded() {
    const BETA: &str = r#"{"query": "beta", "exact": "0"}"#;
    const SPACE: &str = r#"{"query": "q", "exact": "a b"}"#;
    const NAME: &str = r#"{"query": "name", "exact": "Jörg"}"#;
    const PRESENT: &str = r#"{"query": "beta", "present": true}"#;
    const ABSENT: &str = r#"{"query": "beta", "present": false}"#;
    let path = |p: &str| req().path(p);
    #[rustfmt::skip]
    let cases = vec![
        ("the only parameter", BETA, path("/p?beta=0"), true),
        ("among others", BETA, path("/p?x=1&beta=0&y=2"), true),
        ("encoded value", BETA, path("/p?beta=%30"), true),
        ("encoded name", BETA, path("/p?b%65ta=0"), true),
        ("before a fragment", BETA, path("/p?beta=0#top"), true),
        ("repeated, a later one matches", BETA, path("/p?beta=1&beta=0"), true),
        ("other value", BETA, path("/p?beta=1"), false),
        ("longer value", BETA, path("/p?beta=0x"), false),
        ("other name", BETA, path("/p?betamax=0"), false),
        ("in the path, not the query", BETA, path("/beta=0"), false),
        ("no query", BETA, path("/p"), false),
        ("no :path", BETA, req(), false),
        ("plus is a space", SPACE, path("/s?q=a+b"), true),
        ("%20 is a space", SPACE, path("/s?q=a%20b"), true),
        ("%2B is a plus", SPACE, path("/s?q=a%2Bb"), false),
        ("UTF-8 escapes", NAME, path("/?name=J%C3%B6rg"), true),
        ("present without =", PRESENT, path("/p?beta"), true),
        ("present, other names only", PRESENT, path("/p?alpha=1"), false),
        ("present false", ABSENT, path("/p?alpha=1"), true),
        ("present false, parameter sent", ABSENT, path("/p?beta="), false),
    ];
    check_conditions(cases);
}

#[test]
fn source_ip_conditions() {
    const OFFICE: &str = r#"{"source_ip": ["192.168.0.58/32", "2001:db8::/32", "10.0.0.0/8"]}"#;
    const ALL_V6: &str = r#"{"source_ip": ["::/0"]}"#;
    const ALL_V4: &str = r#"{"source_ip": ["0.0.0.0/0"]}"#;
    const ONE_V6: &str = r#"{"source_ip": ["2001:db8::1"]}"#;
    let peer = |p: &str| req().peer(p);
    #[rustfmt::skip]
    let cases = vec![
        ("IPv4 host", OFFICE, peer("192.168.0.58:5555"), true),
        ("IPv4 neighbour", OFFICE, peer("192.168.0.59:5555"), false),
        ("IPv4 range", OFFICE, peer("10.1.2.3:80"), true),
        ("IPv6 range", OFFICE, peer("[2001:db8:1::5]:443"), true),
        ("IPv6 outside", OFFICE, peer("[2001:db9::1]:443"), false),
        ("IPv4-mapped peer matches an IPv4 range", OFFICE, peer("[::ffff:192.168.0.58]:5555"), true),
        ("IPv4-mapped peer outside", OFFICE, peer("[::ffff:192.168.0.59]:5555"), false),
        ("no peer", OFFICE, req(), false),
        ("garbage peer", OFFICE, peer("unix:/run/envoy.sock"), false),
        ("XFF is ignored in peer mode", OFFICE, peer("203.0.113.7:1").header("x-forwarded-for", "192.168.0.58"), false),
        ("an IPv6 range never matches IPv4", ALL_V6, peer("203.0.113.7:1"), false),
        ("an IPv4 range never matches IPv6", ALL_V4, peer("[2001:db8::1]:1"), false),
        ("a bare IPv6 address", ONE_V6, peer("[2001:db8::1]:1"), true),
        ("a bare IPv6 address, neighbour", ONE_V6, peer("[2001:db8::2]:1"), false),
    ];
    check_conditions(cases);
}

#[test]
fn all_any_not() {
    const ALL: &str = r#"{"all": [{"header": "user-agent", "contains": "Android"},
                                  {"cookie": "user", "exact": "tester"}]}"#;
    const ANY: &str =
        r#"{"any": [{"header": "x-a", "present": true}, {"query": "canary", "exact": "1"}]}"#;
    const NOT: &str = r#"{"not": {"header": "x-a", "present": true}}"#;
    const ANDROID: &str = r#"{"all": [{"header": "user-agent", "contains": "Android"},
                                      {"not": {"query": "beta", "exact": "0"}}]}"#;
    const NESTED: &str = r#"{"any": [
        {"all": [{"header": "x-a", "exact": "1"}, {"header": "x-b", "exact": "1"}]},
        {"not": {"any": [{"header": "x-c", "present": true}, {"source_ip": ["10.0.0.0/8"]}]}}]}"#;
    let android = || req().header("user-agent", "Linux; Android 14");
    #[rustfmt::skip]
    let cases = vec![
        ("all: both", ALL, android().cookie("user", "tester"), true),
        ("all: first only", ALL, android(), false),
        ("all: second only", ALL, req().cookie("user", "tester"), false),
        ("any: first", ANY, req().header("x-a", "1"), true),
        ("any: second", ANY, req().path("/?canary=1"), true),
        ("any: neither", ANY, req().path("/?canary=0"), false),
        ("not: inner false", NOT, req(), true),
        ("not: inner true", NOT, req().header("x-a", ""), false),
        ("SPEC android: no beta", ANDROID, android().path("/"), true),
        ("SPEC android: beta=1", ANDROID, android().path("/?beta=1"), true),
        ("SPEC android: beta=0", ANDROID, android().path("/?beta=0"), false),
        ("SPEC android: iPhone", ANDROID, req().header("user-agent", "iPhone"), false),
        ("nested: the all branch", NESTED, req().header("x-a", "1").header("x-b", "1").header("x-c", "1"), true),
        ("nested: the not branch", NESTED, req().peer("203.0.113.7:1"), true),
        ("nested: neither (x-c)", NESTED, req().header("x-a", "1").header("x-c", "1"), false),
        ("nested: neither (source_ip)", NESTED, req().peer("10.9.9.9:1"), false),
    ];
    check_conditions(cases);
}

// ------------------------------------------------------------------ rules and actions

#[test]
fn first_matching_rule_decides_and_a_rule_without_match_applies_to_all() {
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3", "v4"], "default_version": "v1", "rules": [
            {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
            {"name": "chrome", "match": {"header": "user-agent", "contains": "Chrome"}, "version": "v3"},
            {"name": "everyone", "version": "v4"},
            {"name": "unreachable", "match": {"header": "x-a", "present": true}, "version": "v1"}
        ]}"#,
    );
    let chrome = || req().header("user-agent", "Chrome/120");
    #[rustfmt::skip]
    let cases = [
        case("both match: the first wins", chrome().cookie("user", "tester"), expect("v2", by_rule(0))),
        case("the second rule", chrome(), expect("v3", by_rule(1))),
        case("the rule without match", req(), expect("v4", by_rule(2))),
        case("a later rule never runs", req().header("x-a", "1"), expect("v4", by_rule(2))),
    ];
    run_table(&config, &cases);

    let catch_all_first = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1", "rules": [
            {"name": "everyone", "version": "v2"},
            {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v3"}
        ]}"#,
    );
    let cases = [case(
        "shadowed by a rule without match",
        req().cookie("user", "tester"),
        expect("v2", by_rule(0)),
    )];
    run_table(&catch_all_first, &cases);

    let no_rules = compile(r#"{"versions": ["v1", "v2"], "default_version": "v2"}"#);
    run_table(
        &no_rules,
        &[case("no rules", chrome(), expect("v2", DEFAULT))],
    );
}

fn version_from_config() -> CompiledConfig {
    compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1", "rules": [
            {"name": "pick-header", "version_from": "header:x-pick"},
            {"name": "pick-cookie", "version_from": "cookie:pick"},
            {"name": "fallback", "match": {"header": "x-fallback", "present": true}, "version": "v3"}
        ]}"#,
    )
}

#[test]
fn version_from_known_value_or_next_rule() {
    let pick = |value: &[u8]| req().header("x-pick", value);
    #[rustfmt::skip]
    let cases = [
        case("known header value", pick(b"v2"), expect("v2", by_rule(0))),
        case("header before cookie", pick(b"v3").cookie("pick", "v2"), expect("v3", by_rule(0))),
        case("unknown header value: the next rule", pick(b"v9").cookie("pick", "v2"), expect("v2", by_rule(1))),
        case("unknown value, nothing else: default", pick(b"v9"), expect("v1", DEFAULT)),
        case("unknown value: a later rule", pick(b"v9").header("x-fallback", "1"), expect("v3", by_rule(2))),
        case("versions are case-sensitive", pick(b"V2"), expect("v1", DEFAULT)),
        case("empty value", pick(b""), expect("v1", DEFAULT)),
        case("non-UTF-8 value", pick(b"v\xff2"), expect("v1", DEFAULT)),
        case("known cookie value", req().cookie("pick", "v3"), expect("v3", by_rule(1))),
        case("cookie in a multi-cookie header", req().header("cookie", "a=1; pick=v2; b=2"), expect("v2", by_rule(1))),
        case("unknown cookie value", req().cookie("pick", "v7"), expect("v1", DEFAULT)),
    ];
    run_table(&version_from_config(), &cases);
}

/// With a repeated header or cookie, an unknown first value must not hide a known later
/// one: `version_from` takes the first value that names a version.
#[test]
fn version_from_uses_the_first_known_value_of_a_repeated_source() {
    #[rustfmt::skip]
    let cases = [
        case("repeated header: unknown, then known", req().header("x-pick", "v9").header("x-pick", "v2"), expect("v2", by_rule(0))),
        case("repeated cookie: unknown, then known", req().header("cookie", "pick=v9; pick=v3"), expect("v3", by_rule(1))),
    ];
    run_table(&version_from_config(), &cases);
}

// ------------------------------------------------------------------ normalize (seed Lua)

#[test]
fn normalize_reproduces_the_seed_lua_script() {
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3", "v4", "stable"], "default_version": "stable",
            "normalize": [{"header": "grpcsvc", "allowed": ["v1", "v2", "v3", "v4"], "default": "v1",
                           "when": {"header": "content-type", "prefix": "application/grpc"}}],
            "rules": [{"name": "pick", "version_from": "header:grpcsvc"}]}"#,
    );
    let grpc = || req().header("content-type", "application/grpc");
    let svc = |value: &[u8]| grpc().header("grpcsvc", value);
    let json = || req().header("content-type", "application/json");
    let normalized = || expect("v1", by_rule(0)).normalized(&[0]);
    #[rustfmt::skip]
    let cases = [
        case("gRPC, grpcsvc missing", grpc(), normalized()),
        case("gRPC, unknown grpcsvc", svc(b"v7"), normalized()),
        case("gRPC, empty grpcsvc", svc(b""), normalized()),
        case("gRPC, grpcsvc in capitals", svc(b"V2"), normalized()),
        case("gRPC, non-UTF-8 grpcsvc", svc(b"\xff"), normalized()),
        case("gRPC subtype, unknown grpcsvc", req().header("content-type", "application/grpc+proto").header("grpcsvc", "v9"), normalized()),
        case("gRPC, one of two grpcsvc values unknown", svc(b"v2").header("grpcsvc", "v9"), normalized()),
        case("gRPC, v1 untouched", svc(b"v1"), expect("v1", by_rule(0))),
        case("gRPC, v2 untouched", svc(b"v2"), expect("v2", by_rule(0))),
        case("gRPC, v3 untouched", svc(b"v3"), expect("v3", by_rule(0))),
        case("gRPC, v4 untouched", svc(b"v4"), expect("v4", by_rule(0))),
        case("gRPC, two allowed values untouched", svc(b"v3").header("grpcsvc", "v2"), expect("v3", by_rule(0))),
        case("JSON, grpcsvc missing", json(), expect("stable", DEFAULT)),
        case("JSON, unknown grpcsvc untouched", json().header("grpcsvc", "v9"), expect("stable", DEFAULT)),
        case("JSON, known grpcsvc", json().header("grpcsvc", "v2"), expect("v2", by_rule(0))),
        case("no content-type", req().header("grpcsvc", "v9"), expect("stable", DEFAULT)),
        case("grpc elsewhere in content-type", req().header("content-type", "text/plain; grpc"), expect("stable", DEFAULT)),
    ];
    run_table(&config, &cases);
}

#[test]
fn normalize_without_when_and_chained_entries() {
    // normalize[1]'s `when` reads the header normalize[0] may have rewritten.
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v3",
            "normalize": [
              {"header": "x-tier", "allowed": ["gold", "silver"], "default": "silver"},
              {"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v1",
               "when": {"header": "x-tier", "exact": "silver"}}],
            "rules": [{"name": "silver", "match": {"header": "x-tier", "exact": "silver"},
                       "version_from": "header:grpcsvc"}]}"#,
    );
    let tier = |t: &str| req().header("x-tier", t);
    #[rustfmt::skip]
    let cases = [
        case("nothing sent: both rewritten", req(), expect("v1", by_rule(0)).normalized(&[0, 1])),
        case("gold: neither rewritten", tier("gold"), expect("v3", DEFAULT)),
        case("bronze → silver, grpcsvc allowed", tier("bronze").header("grpcsvc", "v2"), expect("v2", by_rule(0)).normalized(&[0])),
        case("silver sent, grpcsvc unknown", tier("silver").header("grpcsvc", "v3"), expect("v1", by_rule(0)).normalized(&[1])),
    ];
    run_table(&config, &cases);
}

// ------------------------------------------------------------------ spoof guard

#[test]
fn spoof_guard() {
    use ClientTag::{Absent, Kept, Stripped};
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
            "trusted_tag_sources": ["10.20.0.0/16", "2001:db8:aa::/48"],
            "rules": [{"name": "team", "match": {"header": "x-team", "exact": "canary"}, "version": "v2"}]}"#,
    );
    const TAG: &str = "x-canary-version";
    let untrusted = |tag: &[u8]| req().peer("203.0.113.7:41000").header(TAG, tag);
    let trusted = |tag: &[u8]| req().peer("10.20.1.2:41000").header(TAG, tag);
    let kept = |version| expect(version, DecidedBy::TrustedClientTag).tag(Kept);
    let stripped = || expect("v1", DEFAULT).tag(Stripped);
    let stripped_rule = || expect("v2", by_rule(0)).tag(Stripped);
    #[rustfmt::skip]
    let cases = [
        case("no tag", req().peer("203.0.113.7:41000"), expect("v1", DEFAULT).tag(Absent)),
        case("untrusted tag", untrusted(b"v3"), stripped()),
        case("untrusted tag, a rule decides", untrusted(b"v3").header("x-team", "canary"), stripped_rule()),
        case("trusted tag kept", trusted(b"v3"), kept("v3")),
        case("trusted tag naming the default kept", trusted(b"v1"), kept("v1")),
        case("trusted tag: no rule runs", trusted(b"v3").header("x-team", "canary"), kept("v3")),
        case("trusted, unknown version", trusted(b"v9"), stripped()),
        case("trusted, unknown version, a rule decides", trusted(b"v9").header("x-team", "canary"), stripped_rule()),
        case("trusted, version in capitals", trusted(b"V3"), stripped()),
        case("trusted, empty value", trusted(b""), stripped()),
        case("trusted, non-UTF-8", trusted(b"v3\xff"), stripped()),
        case("trusted, two equal values", trusted(b"v3").header(TAG, "v3"), stripped()),
        case("trusted, two values, a rule decides", trusted(b"v3").header(TAG, "v2").header("x-team", "canary"), stripped_rule()),
        case("trusted IPv6 source", req().peer("[2001:db8:aa::1]:443").header(TAG, "v2"), kept("v2")),
        case("trusted IPv4-mapped source", req().peer("[::ffff:10.20.0.9]:443").header(TAG, "v3"), kept("v3")),
        case("just outside the range", req().peer("10.21.0.1:1").header(TAG, "v3"), stripped()),
        case("no client address", req().header(TAG, "v3"), stripped()),
        case("tag header sent in capitals", req().peer("10.20.1.2:1").header("X-Canary-Version", "v2"), kept("v2")),
    ];
    run_table(&config, &cases);

    let custom = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1", "tag_header": "X-Version",
            "trusted_tag_sources": ["10.20.0.0/16"]}"#,
    );
    let peer = |p: &str| req().peer(p);
    #[rustfmt::skip]
    let cases = [
        case("custom tag header kept", peer("10.20.1.2:1").header("x-version", "v3"), kept("v3")),
        case("custom tag header stripped", peer("203.0.113.7:1").header("x-version", "v3"), stripped()),
        case("the default name is just a header", peer("10.20.1.2:1").header(TAG, "v3"), expect("v1", DEFAULT)),
    ];
    run_table(&custom, &cases);

    // Trust is judged on the client address of §1.1, so prepended XFF entries cannot fake it.
    let via_xff = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
            "client_ip": {"from": "xff", "trusted_hops": 1}, "trusted_tag_sources": ["10.20.0.0/16"]}"#,
    );
    let lb = |xff: &str| {
        req()
            .peer("10.0.0.1:40000")
            .header("x-forwarded-for", xff)
            .header(TAG, "v2")
    };
    #[rustfmt::skip]
    let cases = [
        case("trusted client via XFF", lb("10.20.0.5, 10.0.0.1"), kept("v2")),
        case("trusted address prepended by the client", lb("10.20.0.5, 203.0.113.7, 10.0.0.1"), stripped()),
    ];
    run_table(&via_xff, &cases);
}

// ------------------------------------------------------------------ client IP via XFF

/// `(label, trusted_hops, request, client address, its source, version)`.
type XffCase = (
    &'static str,
    u32,
    OwnedRequest,
    Option<&'static str>,
    ClientIpSource,
    &'static str,
);

#[test]
fn client_ip_from_x_forwarded_for() {
    use ClientIpSource::{ForwardedFor as Xff, PeerAfterXffFallback as Fallback, Unknown};
    const LB: &str = "10.0.0.1:40000";
    let xff = |values: &[&[u8]]| {
        values
            .iter()
            .fold(req().peer(LB), |r, v| r.header("x-forwarded-for", v))
    };
    let office = Some("192.168.0.58");
    let lb = Some("10.0.0.1");
    // The office (192.168.0.58, 2001:db8::/32) is v2, everyone else v1.
    #[rustfmt::skip]
    let cases: Vec<XffCase> = vec![
        ("office client behind one proxy", 1, xff(&[b"192.168.0.58, 10.0.0.1"]), office, Xff, "v2"),
        ("no spaces", 1, xff(&[b"192.168.0.58,10.0.0.1"]), office, Xff, "v2"),
        ("client prepends the office address", 1, xff(&[b"192.168.0.58, 203.0.113.9, 10.0.0.1"]), Some("203.0.113.9"), Xff, "v1"),
        ("client prepends several", 1, xff(&[b"192.168.0.58, 192.168.0.58, 198.51.100.4, 10.0.0.1"]), Some("198.51.100.4"), Xff, "v1"),
        ("too few entries", 1, xff(&[b"10.0.0.1"]), lb, Fallback, "v1"),
        ("no XFF header", 1, req().peer(LB), lb, Fallback, "v1"),
        ("garbage entry", 1, xff(&[b"garbage, 10.0.0.1"]), lb, Fallback, "v1"),
        ("out-of-range octet", 1, xff(&[b"192.168.0.258, 10.0.0.1"]), lb, Fallback, "v1"),
        ("empty entry", 1, xff(&[b"192.168.0.58, , 10.0.0.1"]), lb, Fallback, "v1"),
        ("non-UTF-8 entry", 1, xff(&[b"\xff\xfe, 10.0.0.1"]), lb, Fallback, "v1"),
        ("the fallback is the peer", 1, req().peer("192.168.0.58:5555").header("x-forwarded-for", "junk"), office, Fallback, "v2"),
        ("multiple XFF headers are one list", 1, xff(&[b"192.168.0.58", b"10.0.0.1"]), office, Xff, "v2"),
        ("multiple XFF headers, prepended entry", 1, xff(&[b"192.168.0.58, 203.0.113.9", b"10.0.0.1"]), Some("203.0.113.9"), Xff, "v1"),
        ("IPv6 entry", 1, xff(&[b"2001:db8::7, 10.0.0.1"]), Some("2001:db8::7"), Xff, "v2"),
        ("IPv6 entry with port", 1, xff(&[b"[2001:db8::7]:443, 10.0.0.1"]), Some("2001:db8::7"), Xff, "v2"),
        ("IPv6 entry outside", 1, xff(&[b"2001:db9::7, 10.0.0.1"]), Some("2001:db9::7"), Xff, "v1"),
        ("IPv4 entry with port", 1, xff(&[b"192.168.0.58:5555, 10.0.0.1"]), office, Xff, "v2"),
        ("IPv4-mapped entry", 1, xff(&[b"::ffff:192.168.0.58, 10.0.0.1"]), office, Xff, "v2"),
        ("trusted_hops 0 is the rightmost", 0, xff(&[b"192.168.0.58, 10.0.0.1"]), lb, Xff, "v1"),
        ("trusted_hops 0, office rightmost", 0, xff(&[b"10.0.0.1, 192.168.0.58"]), office, Xff, "v2"),
        ("trusted_hops 0, one entry", 0, xff(&[b"192.168.0.58"]), office, Xff, "v2"),
        ("trusted_hops 0, no XFF", 0, req().peer(LB), lb, Fallback, "v1"),
        ("trusted_hops 2", 2, xff(&[b"192.168.0.58, 10.0.0.2, 10.0.0.1"]), office, Xff, "v2"),
        ("trusted_hops 2, too few", 2, xff(&[b"192.168.0.58, 10.0.0.1"]), lb, Fallback, "v1"),
        ("trusted_hops 2, prepended entry", 2, xff(&[b"6.6.6.6, 192.168.0.58, 10.0.0.2, 10.0.0.1"]), office, Xff, "v2"),
        ("no peer, no XFF", 1, req(), None, Unknown, "v1"),
        ("no peer, garbage XFF", 1, req().header("x-forwarded-for", "x, y"), None, Unknown, "v1"),
        ("no peer, good XFF", 1, req().header("x-forwarded-for", "192.168.0.58, 10.0.0.1"), office, Xff, "v2"),
    ];
    let mut failures = Vec::new();
    for (label, hops, request, ip, source, version) in &cases {
        let config = compile(&format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1",
                "client_ip": {{"from": "xff", "trusted_hops": {hops}}},
                "rules": [{{"name": "office", "version": "v2",
                           "match": {{"source_ip": ["192.168.0.58/32", "2001:db8::/32"]}}}}]}}"#
        ));
        let decision = engine::decide(&config, request, 0);
        let decided_by = if *version == "v2" {
            by_rule(0)
        } else {
            DEFAULT
        };
        let expected = (
            ip.map(|ip| ip.parse().unwrap()),
            *source,
            expect(version, decided_by),
        );
        let actual = (
            decision.client_ip,
            decision.client_ip_source,
            Outcome::of(&config, &decision),
        );
        if actual != expected {
            failures.push(format!(
                "{label} (trusted_hops {hops}): {}\n  expected: {expected:?}\n  actual:   {actual:?}",
                describe(request)
            ));
        }
    }
    common::assert_all_pass(&failures, cases.len());
}

#[test]
fn no_client_address_means_source_ip_conditions_are_false() {
    for client_ip in [
        r#"{"from": "peer"}"#,
        r#"{"from": "xff", "trusted_hops": 1}"#,
    ] {
        let config = compile(&format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1", "client_ip": {client_ip},
                "rules": [{{"name": "anyone", "match": {{"source_ip": ["0.0.0.0/0", "::/0"]}},
                           "version": "v2"}}]}}"#
        ));
        let decision = engine::decide(&config, &req().header("user-agent", "curl/8"), 0);
        assert_eq!(
            Outcome::of(&config, &decision),
            expect("v1", DEFAULT),
            "{client_ip}"
        );
        assert_eq!(decision.client_ip, None);
        assert_eq!(decision.client_ip_source, ClientIpSource::Unknown);
        // ... while any address at all matches.
        let decision = engine::decide(&config, &req().peer("[2001:db8::1]:1"), 0);
        assert_eq!(
            Outcome::of(&config, &decision),
            expect("v2", by_rule(0)),
            "{client_ip}"
        );
    }
}

// ------------------------------------------------------------------ splits and stickiness

/// SPEC §3's first vectors: under salt "android-half", alice is in bucket 5246 and bob in
/// 3219, so with weights v2 50 / v1 50 alice (≥ 5000) is on v1 and bob on v2.
const SPLIT_50_50: &str = r#"{"versions": ["v1", "v2"], "default_version": "v1",
    "sticky_cookie": {"name": "canary-uid"},
    "rules": [{"name": "android-half", "split": {
        "weights": [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}],
        "key": ["cookie:uid", "header:x-user-id", "source_ip"]}}]}"#;

#[test]
fn split_key_chain() {
    let salt = b"android-half";
    assert_eq!(bucket(salt, b"alice"), 5246);
    assert_eq!(bucket(salt, b"bob"), 3219);
    // Buckets of the other keys below, from the hash (the versions are pinned below).
    assert_eq!(bucket(salt, b"203.0.113.7"), 2463);
    assert_eq!(bucket(salt, b"2001:db8::1"), 5430);
    assert_eq!(bucket(salt, b"192.0.2.1"), 1913);
    assert_eq!(bucket(salt, b"abc"), 5840);
    let config = compile(SPLIT_50_50);
    let split = |version, key, b| expect(version, by_rule(0)).split(key, b);
    let (uid, user_id, source_ip) = (SplitKey::Key(0), SplitKey::Key(1), SplitKey::Key(2));
    let sticky = SplitKey::StickyCookie;
    let cookie = |value: &str| req().header("cookie", value);
    #[rustfmt::skip]
    let cases = [
        case("cookie alice", req().cookie("uid", "alice"), split("v1", uid, 5246)),
        case("cookie bob", req().cookie("uid", "bob"), split("v2", uid, 3219)),
        case("cookie in a multi-cookie header", cookie("theme=dark; uid=bob; lang=en"), split("v2", uid, 3219)),
        case("header when no cookie", req().header("x-user-id", "alice"), split("v1", user_id, 5246)),
        case("cookie before header before source_ip", req().cookie("uid", "bob").header("x-user-id", "alice").peer("203.0.113.7:1"), split("v2", uid, 3219)),
        case("header before source_ip", req().header("x-user-id", "bob").peer("203.0.113.7:1"), split("v2", user_id, 3219)),
        case("source_ip IPv4", req().peer("203.0.113.7:1"), split("v2", source_ip, 2463)),
        case("source_ip IPv6", req().peer("[2001:db8::1]:443"), split("v1", source_ip, 5430)),
        case("source_ip IPv4-mapped hashes the IPv4 text", req().peer("[::ffff:192.0.2.1]:443"), split("v2", source_ip, 1913)),
        case("empty cookie skipped", cookie("uid=").header("x-user-id", "bob"), split("v2", user_id, 3219)),
        case("empty cookie and header skipped", cookie("uid=").header("x-user-id", "").peer("203.0.113.7:1"), split("v2", source_ip, 2463)),
        case("the sticky cookie comes first", req().cookie("canary-uid", "abc").cookie("uid", "alice").peer("203.0.113.7:1"), split("v1", sticky, 5840)),
        case("sticky cookie in a multi-cookie header", cookie("uid=bob; canary-uid=abc"), split("v1", sticky, 5840)),
        case("an empty sticky cookie is ignored", cookie("canary-uid=").cookie("uid", "alice"), split("v1", uid, 5246)),
    ];
    run_table(&config, &cases);
}

/// Empty key values are skipped value by value: an empty `uid` cookie followed by a real one
/// hashes the real one instead of falling through to the next key source.
#[test]
fn split_key_skips_an_empty_value_for_a_later_value_of_the_same_source() {
    let config = compile(SPLIT_50_50);
    let split = |version, key, b| expect(version, by_rule(0)).split(key, b);
    #[rustfmt::skip]
    let cases = [
        case("empty, then non-empty uid cookie", req().header("cookie", "uid=").header("cookie", "uid=bob").header("x-user-id", "alice"), split("v2", SplitKey::Key(0), 3219)),
        case("empty, then non-empty x-user-id", req().header("x-user-id", "").header("x-user-id", "bob").peer("203.0.113.7:1"), split("v2", SplitKey::Key(1), 3219)),
    ];
    run_table(&config, &cases);
}

#[test]
fn split_without_key_issues_a_sticky_id_that_keeps_the_user_on_its_version() {
    let config = compile(SPLIT_50_50);
    // (entropy, its sticky id, bucket of that id under "android-half", version)
    let issued = [
        (0u128, "00000000000000000000000000000000", 1088, "v2"),
        (1, "00000000000000000000000000000001", 5818, "v1"),
        (0x2a, "0000000000000000000000000000002a", 5474, "v1"),
        (u128::MAX, "ffffffffffffffffffffffffffffffff", 3736, "v2"),
        (
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            "0123456789abcdeffedcba9876543210",
            7635,
            "v1",
        ),
        (
            0xdead_beef_0000_0000_0000_0000_cafe_f00d,
            "deadbeef0000000000000000cafef00d",
            8692,
            "v1",
        ),
    ];
    for (entropy, id, expected_bucket, version) in issued {
        assert_eq!(bucket(b"android-half", id.as_bytes()), expected_bucket);
        let first = engine::decide(&config, &req().header("user-agent", "curl/8"), entropy);
        assert_eq!(
            Outcome::of(&config, &first),
            expect(version, by_rule(0))
                .split(SplitKey::NewStickyId, expected_bucket)
                .sticky(id),
            "entropy {entropy:#x}"
        );
        let issued_id = first.sticky_id.unwrap();
        assert_eq!(issued_id.as_str().len(), 32);
        assert!(issued_id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

        // The follow-up request carries the cookie: same bucket, same version, no new id,
        // whatever the entropy, and even once other keys appear.
        for follow_up in [
            req().cookie("canary-uid", id),
            req().header("cookie", format!("a=1; canary-uid={id}; b=2")),
            req()
                .cookie("canary-uid", id)
                .cookie("uid", "alice")
                .peer("203.0.113.7:1"),
        ] {
            let next = engine::decide(&config, &follow_up, entropy ^ 0x5555);
            assert_eq!(
                Outcome::of(&config, &next),
                expect(version, by_rule(0)).split(SplitKey::StickyCookie, expected_bucket),
                "follow-up {}",
                describe(&follow_up)
            );
        }
    }
}

#[test]
fn split_without_key_or_sticky_cookie_is_random() {
    let config = compile(
        r#"{"versions": ["v1", "v2"], "default_version": "v1",
            "rules": [{"name": "coin", "split": {
                "weights": [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}],
                "key": ["cookie:uid"]}}]}"#,
    );
    let random = |entropy: u128, b: u16, version: &str| {
        assert_eq!(bucket_from_random(entropy), b);
        case(
            "no key: a random bucket",
            req().peer("203.0.113.7:1"),
            expect(version, by_rule(0)).split(SplitKey::Random, b),
        )
        .with_entropy(entropy)
    };
    assert_eq!(bucket(b"coin", b"x"), 240);
    let cases = [
        random(1, 6604, "v1"),
        random(0x2a, 3340, "v2"),
        random(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 4289, "v2"),
        random(0xdead_beef_0000_0000_0000_0000_cafe_f00d, 9485, "v1"),
        case(
            "the key is still used when present",
            req().cookie("uid", "x"),
            expect("v2", by_rule(0)).split(SplitKey::Key(0), 240),
        )
        .with_entropy(1),
    ];
    run_table(&config, &cases);
}

#[test]
fn salt_defaults_to_the_rule_name_and_split_salt_overrides_it() {
    let split_rule = |name: &str, salt: &str| {
        compile(&format!(
            r#"{{"versions": ["v1", "v2"], "default_version": "v1",
                "rules": [{{"name": "{name}", "split": {{
                  "weights": [{{"version": "v2", "percent": 50}}, {{"version": "v1", "percent": 50}}],
                  "key": ["cookie:uid", "source_ip"] {salt}}}}}]}}"#
        ))
    };
    let split = |version, key, b| expect(version, by_rule(0)).split(key, b);
    let (uid, ip) = (SplitKey::Key(0), SplitKey::Key(1));

    #[rustfmt::skip]
    let cases = [
        case("the rule name is the salt (alice)", req().cookie("uid", "alice"), split("v1", uid, 5246)),
        case("the rule name is the salt (bob)", req().cookie("uid", "bob"), split("v2", uid, 3219)),
        case("the rule name is the salt (address)", req().peer("203.0.113.7:9"), split("v2", ip, 2463)),
    ];
    run_table(&split_rule("android-half", ""), &cases);

    // SPEC §3 vectors under salt "ramp".
    #[rustfmt::skip]
    let cases = [
        case("salt ramp, IPv4 key", req().peer("203.0.113.7:9"), split("v1", ip, 5199)),
        case("salt ramp, IPv6 key", req().peer("[2001:db8::1]:9"), split("v1", ip, 6769)),
        case("salt ramp, cookie key", req().cookie("uid", "203.0.113.7"), split("v1", uid, 5199)),
    ];
    run_table(&split_rule("android-half", r#", "salt": "ramp""#), &cases);

    // Renaming a rule while keeping its salt keeps every user where they were.
    #[rustfmt::skip]
    let cases = [
        case("renamed rule, old salt (alice)", req().cookie("uid", "alice"), split("v1", uid, 5246)),
        case("renamed rule, old salt (bob)", req().cookie("uid", "bob"), split("v2", uid, 3219)),
    ];
    run_table(
        &split_rule("android-half-v2", r#", "salt": "android-half""#),
        &cases,
    );
}

#[test]
fn a_ramped_split_decides_with_the_weights_of_the_time_set() {
    // v3 10 % → 100 % over an hour from 2026-12-01T10:00:00Z; v2 and v1 share the rest 3:1.
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
            "rules": [{"name": "ramp", "split": {
                "weights": [{"version": "v3", "percent": 10}, {"version": "v2", "percent": 67.5},
                            {"version": "v1", "percent": 22.5}],
                "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 3600, "to": 100},
                "key": ["source_ip"]}}]}"#,
    );
    let start = 1_796_119_200;
    // SPEC §3 vector: ("ramp", "203.0.113.7") → bucket 5199.
    let at = |now: i64, version: &str| {
        config.set_time(now);
        run_table(
            &config,
            &[case(
                "203.0.113.7",
                req().peer("203.0.113.7:1234"),
                expect(version, by_rule(0)).split(SplitKey::Key(0), 5199),
            )],
        );
    };
    // Compiled, before any time is set: the configured weights.
    run_table(
        &config,
        &[case(
            "203.0.113.7",
            req().peer("203.0.113.7:1234"),
            expect("v2", by_rule(0)).split(SplitKey::Key(0), 5199),
        )],
    );
    at(start - 86_400, "v2"); // v3 0-999, v2 1000-7749, v1 7750-9999
    at(start, "v2");
    at(start + 1800, "v3"); // v3 0-5499, v2 5500-8874, v1 8875-9999
    at(start + 1600, "v2"); // v3 0-4999: time set backwards, the ranges follow
    at(start + 1700, "v3"); // v3 0-5249
    at(start + 3600, "v3");
    at(i64::MAX, "v3");
}

#[test]
fn split_ranges_follow_the_listed_order_to_the_bucket() {
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
            "rules": [{"name": "three-way", "split": {
                "weights": [{"version": "v3", "percent": 10.5}, {"version": "v2", "percent": 39.5},
                            {"version": "v1", "percent": 50}],
                "key": ["cookie:uid"]}}]}"#,
    );
    // Keys found by search whose bucket under the salt sits on a range edge.
    let on = |salt: &[u8], uid: &'static str, b: u16, version: &str| {
        assert_eq!(bucket(salt, uid.as_bytes()), b, "{uid}");
        case(
            uid,
            req().cookie("uid", uid),
            expect(version, by_rule(0)).split(SplitKey::Key(0), b),
        )
    };
    let three = |uid, b, version| on(b"three-way", uid, b, version);
    let cases = [
        three("k18116", 0, "v3"),
        three("k5361", 1, "v3"),
        three("k21525", 1049, "v3"),
        three("k8350", 1050, "v2"),
        three("k15235", 4999, "v2"),
        three("k2655", 5000, "v1"),
        three("k627", 9999, "v1"),
    ];
    run_table(&config, &cases);

    // 0 % gets nobody; 0.01 % gets exactly bucket 0.
    let zero = compile(
        r#"{"versions": ["v1", "v2"], "default_version": "v2", "rules": [{"name": "edge", "split": {
            "weights": [{"version": "v2", "percent": 0}, {"version": "v1", "percent": 100}],
            "key": ["cookie:uid"]}}]}"#,
    );
    let hundredth = compile(
        r#"{"versions": ["v1", "v2"], "default_version": "v1", "rules": [{"name": "edge", "split": {
            "weights": [{"version": "v2", "percent": 0.01}, {"version": "v1", "percent": 99.99}],
            "key": ["cookie:uid"]}}]}"#,
    );
    let edge = |uid, b, version| on(b"edge", uid, b, version);
    run_table(&zero, &[edge("k1649", 0, "v1"), edge("k6412", 9999, "v1")]);
    run_table(
        &hundredth,
        &[
            edge("k1649", 0, "v2"),
            edge("k15541", 1, "v1"),
            edge("k6412", 9999, "v1"),
        ],
    );
}

#[test]
fn split_rule_that_does_not_match_lets_the_next_rule_run() {
    let config = compile(
        r#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
            "sticky_cookie": {"name": "canary-uid"},
            "rules": [
              {"name": "android-half", "match": {"header": "user-agent", "contains": "Android"},
               "split": {"weights": [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}],
                         "key": ["cookie:uid"]}},
              {"name": "rest", "version": "v3"}]}"#,
    );
    let ua = |value: &str| req().header("user-agent", value);
    #[rustfmt::skip]
    let cases = [
        case("Android is split", ua("Android 14").cookie("uid", "bob"), expect("v2", by_rule(0)).split(SplitKey::Key(0), 3219)),
        case("others: no split, no sticky id", ua("iPhone"), expect("v3", by_rule(1))),
        case("a sticky cookie does not make the split match", ua("iPhone").cookie("canary-uid", "abc"), expect("v3", by_rule(1))),
    ];
    run_table(&config, &cases);
}

// ------------------------------------------------------------------ garbage in

#[test]
fn garbage_and_non_utf8_requests_yield_deterministic_known_versions() {
    let config = spec_example();
    // SPEC example rules: 0 testers, 1 office, 2 chrome, 3 pick, 4 android (salt "android").
    assert_eq!(bucket(b"android", b"alice"), 7655);
    assert_eq!(bucket(b"android", b"198.51.100.1"), 1448);
    let huge_cookie = format!("a={}; user=tester", "x".repeat(1 << 20));
    let many_cookies = vec!["uid=alice"; 10_000].join("; ");
    let long_xff = vec!["198.51.100.1"; 10_000].join(", ");
    let huge_ua = "A".repeat(100_000) + " Chrome/120";
    let grpc = || req().header("content-type", "application/grpc");
    let android = |version, key, b| expect(version, by_rule(4)).split(key, b);
    let uid = SplitKey::Key(0);
    #[rustfmt::skip]
    let cases = [
        case("non-UTF-8 around Chrome: .* matches bytes", req().header("user-agent", b"\xff\xfeChrome\x80"), expect("v2", by_rule(2))),
        case("non-UTF-8 user cookie", req().header("cookie", b"user=\xfftester"), expect("v1", DEFAULT)),
        case("non-UTF-8 pair before the tester cookie", req().header("cookie", b"\xff\xff=\xff; user=tester"), expect("v2", by_rule(0))),
        case("cookie header of separators", req().header("cookie", ";;;=;= ;"), expect("v1", DEFAULT)),
        case("non-UTF-8 path and query", req().header(":path", b"/\xff?beta=\xff&%zz").header("user-agent", "Android").cookie("uid", "alice"), android("v1", uid, 7655)),
        case("non-UTF-8 XFF, no peer", req().header("x-forwarded-for", b"\xff, \xfe"), expect("v1", DEFAULT)),
        case("non-UTF-8 grpcsvc is normalized", grpc().header("grpcsvc", b"\xff"), expect("v1", by_rule(3)).normalized(&[0])),
        case("non-UTF-8 tag header", req().header("x-canary-version", b"\xff"), expect("v1", DEFAULT).tag(ClientTag::Stripped)),
        case("NUL bytes", req().header("user-agent", b"Chr\0ome").header("cookie", b"user=tester\0"), expect("v1", DEFAULT)),
        case("1 MiB cookie, the tester cookie last", req().header("cookie", &huge_cookie), expect("v2", by_rule(0))),
        case("10,000 duplicate uid cookies", req().header("cookie", &many_cookies).header("user-agent", "Android"), android("v1", uid, 7655)),
        case("10,000 XFF entries", req().header("x-forwarded-for", &long_xff).header("user-agent", "Android"), android("v2", SplitKey::Key(2), 1448)),
        case("100 kB user-agent", req().header("user-agent", &huge_ua), expect("v2", by_rule(2))),
        case("garbage peer and XFF", req().peer("not an address").header("x-forwarded-for", "a, b, c"), expect("v1", DEFAULT)),
    ];
    run_table(&config, &cases);
    // Deterministic: the same request decides the same way every time.
    for case in &cases {
        let a = engine::decide(&config, &case.request, 7);
        let b = engine::decide(&config, &case.request, 7);
        assert_eq!(a, b, "{}", case.name);
    }
}

// ------------------------------------------------------------------ SPEC §2 example, seeds

/// A request as the gateway sees it behind one load balancer (`trusted_hops: 1`): the LB at
/// 10.0.0.1 wrote the client address into XFF, Envoy appended the peer.
fn from(client: &str) -> OwnedRequest {
    req()
        .peer("10.0.0.1:40000")
        .header("x-forwarded-for", format!("{client}, 10.0.0.1"))
}

const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                         Chrome/120.0 Safari/537.36";
const FIREFOX_UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const ANDROID_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Mobile Safari/537.36";
const ANDROID_CHROME_UA: &str =
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36";

#[test]
fn spec_example_seed_scenarios() {
    let config = spec_example();
    // Rules: 0 testers, 1 office (v3 in this config), 2 chrome, 3 pick, 4 android.
    for (uid, b) in [
        ("alice", 7655),
        ("bob", 5563),
        ("carol", 2399),
        ("dave", 4844),
    ] {
        assert_eq!(bucket(b"android", uid.as_bytes()), b);
    }
    assert_eq!(bucket(b"android", b"203.0.113.7"), 4034);
    assert_eq!(bucket(b"android", b"0000000000000000000000000000002a"), 940);
    const TAG: &str = "x-canary-version";
    let client = || from("203.0.113.7");
    let grpc = || {
        client()
            .header("content-type", "application/grpc")
            .header("user-agent", "grpc-go/1.60")
    };
    let ua = |value: &str| client().header("user-agent", value);
    let android = |version, key, b| expect(version, by_rule(4)).split(key, b);
    let uid = SplitKey::Key(0);
    let stripped = || expect("v1", DEFAULT).tag(ClientTag::Stripped);
    let kept = |version| expect(version, DecidedBy::TrustedClientTag).tag(ClientTag::Kept);
    let sticky_id = "0000000000000000000000000000002a";
    #[rustfmt::skip]
    let cases = [
        // S1: the seed Lua script.
        case("S1 gRPC, grpcsvc missing → v1", grpc(), expect("v1", by_rule(3)).normalized(&[0])),
        case("S1 gRPC, grpcsvc v9 → v1", grpc().header("grpcsvc", "v9"), expect("v1", by_rule(3)).normalized(&[0])),
        case("S1 gRPC+proto, grpcsvc v5 → v1", client().header("content-type", "application/grpc+proto").header("grpcsvc", "v5"), expect("v1", by_rule(3)).normalized(&[0])),
        case("S1 gRPC, v2 untouched", grpc().header("grpcsvc", "v2"), expect("v2", by_rule(3))),
        case("S1 gRPC, v3 untouched", grpc().header("grpcsvc", "v3"), expect("v3", by_rule(3))),
        case("S1 gRPC, v4 untouched (allowed, not a version here)", grpc().header("grpcsvc", "v4"), expect("v1", DEFAULT)),
        case("S1 non-gRPC untouched", client().header("content-type", "application/json").header("grpcsvc", "v9"), expect("v1", DEFAULT)),
        case("S1 non-gRPC without grpcsvc", client(), expect("v1", DEFAULT)),
        // S2: Chrome → v2, others v1.
        case("S2 Chrome → v2", ua(CHROME_UA), expect("v2", by_rule(2))),
        case("S2 Firefox → v1", ua(FIREFOX_UA), expect("v1", DEFAULT)),
        case("S2 Chrome on Android: the chrome rule comes first", ua(ANDROID_CHROME_UA), expect("v2", by_rule(2))),
        // S3: cookie user=tester anywhere.
        case("S3 tester mid-header", ua(FIREFOX_UA).header("cookie", "session=abc; user=tester; theme=dark"), expect("v2", by_rule(0))),
        case("S3 tester in a second cookie header", client().header("cookie", "session=abc").header("cookie", "user=tester"), expect("v2", by_rule(0))),
        case("S3 user=admin", client().header("cookie", "user=admin"), expect("v1", DEFAULT)),
        // S4: the office by XFF; prepending its address spoofs nothing.
        case("S4 office via XFF", from("192.168.0.58"), expect("v3", by_rule(1))),
        case("S4 office IPv6 via XFF", from("2001:db8::5"), expect("v3", by_rule(1))),
        case("S4 client prepends the office address", from("192.168.0.58, 203.0.113.9"), expect("v1", DEFAULT)),
        case("S4 office peer without XFF", req().peer("192.168.0.58:5555"), expect("v3", by_rule(1))),
        // S5: Android 50/50 on uid, then x-user-id, then the client address.
        case("S5 alice", ua(ANDROID_UA).cookie("uid", "alice"), android("v1", uid, 7655)),
        case("S5 bob", ua(ANDROID_UA).cookie("uid", "bob"), android("v1", uid, 5563)),
        case("S5 carol", ua(ANDROID_UA).cookie("uid", "carol"), android("v2", uid, 2399)),
        case("S5 dave by x-user-id", ua(ANDROID_UA).header("x-user-id", "dave"), android("v2", SplitKey::Key(1), 4844)),
        case("S5 no user id: the client address", ua(ANDROID_UA), android("v2", SplitKey::Key(2), 4034)),
        case("S5 beta=0 opts out", ua(ANDROID_UA).path("/?beta=0").cookie("uid", "carol"), expect("v1", DEFAULT)),
        case("S5 beta=1 stays in", ua(ANDROID_UA).path("/?beta=1").cookie("uid", "carol"), android("v2", uid, 2399)),
        case("S5 no key at all: a sticky id", req().header("user-agent", ANDROID_UA), android("v2", SplitKey::NewStickyId, 940).sticky(sticky_id)).with_entropy(0x2a),
        case("S5 the sticky id's follow-up", req().header("user-agent", ANDROID_UA).cookie("canary-uid", sticky_id), android("v2", SplitKey::StickyCookie, 940)),
        // S9: a client-sent tag from an untrusted address is ignored.
        case("S9 untrusted v3", client().header(TAG, "v3"), stripped()),
        case("S9 untrusted v3, Chrome decides", ua(CHROME_UA).header(TAG, "v3"), expect("v2", by_rule(2)).tag(ClientTag::Stripped)),
        case("S9 untrusted tester asks for v3", client().header(TAG, "v3").cookie("user", "tester"), expect("v2", by_rule(0)).tag(ClientTag::Stripped)),
        case("S9 trusted source keeps v3", from("10.20.3.4").header(TAG, "v3"), kept("v3")),
        case("S9 trusted source, gRPC still normalized", from("10.20.3.4").header(TAG, "v2").header("content-type", "application/grpc"), kept("v2").normalized(&[0])),
        case("S9 trusted address prepended by the client", from("10.20.3.4, 203.0.113.7").header(TAG, "v3"), stripped()),
    ];
    run_table(&config, &cases);
}

#[test]
fn spec_example_user_stays_on_one_version_across_requests() {
    let config = spec_example();
    let requests = [
        ("Linux; Android 14", "/", "203.0.113.7"),
        (
            "Linux; Android 13; tablet",
            "/forecast?city=Berlin",
            "198.51.100.20",
        ),
        (
            "Dalvik/2.1.0 (Linux; U; Android 12)",
            "/api/v1/today",
            "2606:4700::1",
        ),
        ("Android", "/?beta=1", "203.0.113.200"),
    ];
    for (uid, version) in [
        ("alice", "v1"),
        ("bob", "v1"),
        ("carol", "v2"),
        ("dave", "v2"),
    ] {
        let b = bucket(b"android", uid.as_bytes());
        for (i, (ua, path, client)) in requests.into_iter().enumerate() {
            let request = from(client)
                .header("user-agent", ua)
                .path(path)
                .cookie("uid", uid);
            let decision = engine::decide(&config, &request, u128::try_from(i).unwrap());
            assert_eq!(
                Outcome::of(&config, &decision),
                expect(version, by_rule(4)).split(SplitKey::Key(0), b),
                "{uid}, request {i}"
            );
        }
    }
}

// ------------------------------------------------------------------ SPEC §7: baggage guard

/// A client-sent `canary-version` member of `baggage` is removed, other members kept,
/// unless the client's tag was kept (trusted source); with `baggage: true` the decided
/// version is written as before. `(label, baggage on, request, member outcome, effect)`,
/// the effect being the `baggage` header after the filter: `None` when it has none.
#[test]
fn a_client_baggage_member_is_stripped_unless_its_tag_is_kept() {
    use canary_tagger::effects::{HeaderWriter, SetMode};
    use canary_tagger::request::RequestView;
    struct Last(Option<Option<Vec<u8>>>);
    impl HeaderWriter for Last {
        fn add(&mut self, _: &str, value: &[u8]) {
            self.0 = Some(Some(value.to_vec()));
        }
        fn replace(&mut self, _: &str, value: &[u8]) {
            self.0 = Some(Some(value.to_vec()));
        }
        fn remove(&mut self, _: &str) {
            self.0 = Some(None);
        }
    }
    let trusted = "10.20.0.9:1234";
    let untrusted = "203.0.113.9:1234";
    let tagged = |peer: &str, baggage: &str| req().peer(peer).header("baggage", baggage);
    #[rustfmt::skip]
    let cases: Vec<(&str, bool, OwnedRequest, ClientTag, Option<&str>)> = vec![
        ("only member, untrusted", false, tagged(untrusted, "canary-version=v3"), ClientTag::Stripped, None),
        ("with properties", false, tagged(untrusted, "canary-version=v3;p=1"), ClientTag::Stripped, None),
        ("among others", false, tagged(untrusted, "a=1, canary-version=v3,b=2"), ClientTag::Stripped, Some("a=1,b=2")),
        ("unknown value", false, tagged(untrusted, "canary-version=zz,a=1"), ClientTag::Stripped, Some("a=1")),
        ("trusted, no tag header", false, tagged(trusted, "canary-version=v3"), ClientTag::Stripped, None),
        ("trusted with kept tag", false,
            tagged(trusted, "canary-version=v3,a=1").header("x-canary-version", "v3"), ClientTag::Kept, Some("canary-version=v3,a=1")),
        ("untrusted with tag", false,
            tagged(untrusted, "canary-version=v3").header("x-canary-version", "v3"), ClientTag::Stripped, None),
        ("no member", false, tagged(untrusted, "a=1,canary-versions=x"), ClientTag::Absent, Some("a=1,canary-versions=x")),
        ("baggage on, replaced", true, tagged(untrusted, "canary-version=v3,a=1"), ClientTag::Stripped, Some("a=1,canary-version=v1")),
        ("baggage on, kept tag", true,
            tagged(trusted, "a=1,canary-version=v3").header("x-canary-version", "v3"), ClientTag::Kept, Some("a=1,canary-version=v3")),
    ];
    for (label, baggage_on, request, outcome, after) in cases {
        let config = compile(&format!(
            r#"{{"versions": ["v1", "v2", "v3"], "default_version": "v1", "baggage": {baggage_on},
                "trusted_tag_sources": ["10.20.0.0/16"]}}"#
        ));
        let decision = engine::decide(&config, &request, 0);
        assert_eq!(decision.client_baggage, outcome, "{label}");
        let mut written = Last(None);
        let mut baggage_effects = decision
            .request_effects(&config, &request)
            .filter(|effect| effect.name == "baggage");
        let effect = baggage_effects.next();
        assert!(
            baggage_effects.next().is_none(),
            "{label}: one baggage effect"
        );
        if let Some(effect) = effect {
            assert_eq!(effect.mode == SetMode::Remove, after.is_none(), "{label}");
            effect.apply(&request, &mut written);
        }
        let before = request.header_values("baggage").next().map(<[u8]>::to_vec);
        let result = match written.0 {
            Some(now) => now,
            None => before,
        };
        assert_eq!(result.as_deref(), after.map(str::as_bytes), "{label}");
    }
}
