//! One test per defect the fuzz targets found (docs/fuzzing.md lists them): the input, or
//! its shortest form, and the behaviour the fix gives.
#![allow(clippy::panic)]

use canary_tagger::config::CompiledConfig;
use canary_tagger::net::parse_address;
use canary_tagger::request::query_values;

fn rejection(json: &str) -> String {
    match CompiledConfig::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(errors) => errors.to_string(),
    }
}

const BASE: &str = r#""versions": ["v1", "v2"], "default_version": "v1""#;

/// `config` target: `[[` was reported at the path `[0]`, because serde also fills a struct
/// from an array in field order; so the filter accepted `"client_ip": ["xff", 1]` too,
/// which the JSON Schema and the README do not allow.
#[test]
fn config_array_in_place_of_an_object_is_rejected() {
    let expected = "invalid type: array, expected a JSON object";
    assert_eq!(
        rejection(&format!(r#"{{{BASE}, "client_ip": ["xff", 1]}}"#)),
        format!("client_ip: {expected}")
    );
    assert_eq!(
        rejection(&format!(
            r#"{{{BASE}, "sticky_cookie": ["sid", null, null]}}"#
        )),
        format!("sticky_cookie: {expected}")
    );
    assert_eq!(
        rejection(&format!(
            r#"{{{BASE}, "rules": [{{"name": "r", "split": {{"weights": [["v1", 100]]}}}}]}}"#
        )),
        format!("rules[0].split.weights[0]: {expected}")
    );
    assert_eq!(rejection("[["), format!("$: {expected}"));
    assert_eq!(
        rejection(r#"[null, null, ["v1"], "v1", null, [], [], [], null, null, false]"#),
        format!("$: {expected}")
    );
}

/// `config` target: the name of an unknown field was read back out of serde's message up
/// to the first backtick, so a key holding one was misquoted and reported at itself.
#[test]
fn config_unknown_field_with_a_backtick_is_reported_at_its_parent() {
    assert_eq!(
        rejection(&format!(r#"{{"a`b": 1, {BASE}}}"#)),
        "$: unknown field \"a`b\"; expected one of schema, tag_header, versions, \
         default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, \
         response_header, baggage, tracestate, mode, restore, trace_memory"
    );
    assert_eq!(
        rejection(&format!(
            r#"{{{BASE}, "client_ip": {{"from": "xff", "hops`": 1}}}}"#
        )),
        "client_ip: unknown field \"hops`\"; expected one of from, trusted_hops"
    );
}

/// The same code path: a value quoting serde's own words is the user's text, not serde's.
#[test]
fn config_value_quoting_serde_words_is_not_read_as_serde_words() {
    assert_eq!(
        rejection(&format!(r#"{{{BASE}, "baggage": "missing field `x`"}}"#)),
        "baggage: invalid type: string \"missing field `x`\", expected a boolean"
    );
}

/// Found with the fixes above (the `config` target's one-line check guards it): a reason
/// quoting the user's text broke the log line when that text held a newline. Control
/// characters are written escaped.
#[test]
fn config_error_quoting_a_newline_stays_one_line() {
    assert_eq!(
        rejection(r#"{"versions": ["v\n1"], "default_version": "v\n1"}"#),
        "versions[0]: \"v\\n1\" is not a valid version name (1-63 of A-Z a-z 0-9 . _ -)"
    );
    let logged = rejection(r#"{"versions": ["v1"], "default_version": "v1", "x\r\ny": 1}"#);
    assert!(!logged.contains(['\n', '\r']), "{logged}");
}

/// `address` target: `str::trim` also removed Unicode spaces (U+00A0) around an address,
/// which no proxy writes and Envoy does not trim; ASCII whitespace is still ignored.
#[test]
fn address_between_unicode_spaces_is_not_an_address() {
    assert_eq!(parse_address("\u{a0}1.2.3.4".as_bytes()), None);
    assert_eq!(parse_address("1.2.3.4\u{2028}".as_bytes()), None);
    assert_eq!(parse_address(b"\t1.2.3.4 "), "1.2.3.4".parse().ok());
}

/// `query` target: a `?` inside the fragment started a query (`/p#rs?id=0` gave id=0).
#[test]
fn query_after_a_fragment_is_not_read() {
    assert_eq!(query_values(b"/p#rs?id=0", b"id").count(), 0);
    let before: Vec<_> = query_values(b"/p?id=1#x?id=2", b"id").collect();
    assert_eq!(before, vec![&b"1"[..]]);
}
