//! Signed sticky ids (SPEC §10) through the engine: which key a split hashes, what it
//! issues, and what it counts, for every kind of cookie value.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine::{decide, decide_observed, Observer, SplitKey, StickyCheck};
use canary_tagger::hash;
use canary_tagger::request::OwnedRequest;
use canary_tagger::signing::Rejection;

const NEW: &str = "new:bmV3LWtleS0wMTIzNDU2Nzg5YWJjZGVm"; // "new-key-0123456789abcdef"
const OLD: &str = "old:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm"; // "old-key-0123456789abcdef"
const ID: &str = "00112233445566778899aabbccddeeff";

fn config(keys: &str, split_key: &str) -> CompiledConfig {
    let json = format!(
        r#"{{"versions": ["v1", "v2"], "default_version": "v1",
            "rules": [{{"name": "half", "split": {{"weights": [{{"version": "v2", "percent": 50}},
                                                             {{"version": "v1", "percent": 50}}],
                                                  "key": [{split_key}]}}}}],
            "sticky_cookie": {{"name": "uid", "signing": {{"keys_env": "KEYS"}}}}}}"#
    );
    CompiledConfig::from_json_in(json.as_bytes(), &[("KEYS", keys)]).unwrap()
}

fn signed(keys: &str, id: &str) -> String {
    let config = config(keys, "");
    let keys = config.sticky_cookie.unwrap().signing.unwrap();
    keys.sign(id.as_bytes()).as_str().to_string()
}

fn with_cookie(value: &str) -> OwnedRequest {
    OwnedRequest::new().cookie("uid", value)
}

#[test]
fn a_signed_cookie_hashes_its_id_under_every_key_that_verifies_it() {
    let bucket = hash::bucket(b"half", ID.as_bytes());
    let by_old = signed(OLD, ID);
    assert_eq!(by_old.len(), 32 + 1 + 3 + 1 + 32);
    for keys in [OLD.to_string(), format!("{NEW},{OLD}")] {
        let config = config(&keys, "");
        let decision = decide(&config, &with_cookie(&by_old), 1);
        let split = decision.split.unwrap();
        assert_eq!(
            (split.key, split.bucket),
            (SplitKey::StickyCookie, bucket),
            "{keys}"
        );
        assert_eq!((decision.sticky_id, decision.sticky_rejected), (None, None));
    }
}

#[test]
fn a_value_that_does_not_verify_is_no_sticky_cookie() {
    let config = config(&format!("{NEW},{OLD}"), "");
    let good = signed(NEW, ID);
    let cases = [
        (
            format!("{}0{}", &good[..31], &good[32..]),
            Rejection::BadMac,
        ),
        (
            signed("new:b3RoZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=", ID),
            Rejection::BadMac,
        ),
        (
            signed("gone:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm", ID),
            Rejection::UnknownKey,
        ),
        (good[..good.len() - 2].to_string(), Rejection::Malformed),
        (good.to_uppercase(), Rejection::Malformed),
        (ID.to_string(), Rejection::Unsigned),
        ("tester".to_string(), Rejection::Malformed),
    ];
    for (value, rejection) in cases {
        let decision = decide(&config, &with_cookie(&value), 0xfeed);
        assert_eq!(decision.sticky_rejected, Some(rejection), "{value}");
        let split = decision.split.unwrap();
        assert_eq!(split.key, SplitKey::NewStickyId, "{value}");
        // The fresh id is issued signed by the first key, and the split hashed its ID.
        let id = decision.sticky_id.unwrap();
        assert_eq!(split.bucket, hash::bucket(b"half", id.as_str().as_bytes()));
        let set_cookie = decision.response_effects(&config).next().unwrap().value();
        let set_cookie = String::from_utf8(set_cookie.into_owned()).unwrap();
        let issued = signed(NEW, id.as_str());
        assert!(issued.contains(".new."));
        assert_eq!(
            set_cookie,
            format!("uid={issued}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax")
        );
        // And it verifies next time.
        let next = decide(&config, &with_cookie(&issued), 1);
        assert_eq!(next.split.unwrap().key, SplitKey::StickyCookie);
        assert_eq!(next.version, decision.version);
    }
}

#[test]
fn after_a_rejection_the_split_keys_still_apply() {
    let config = config(NEW, r#""header:x-user-id""#);
    let request = with_cookie(ID).header("x-user-id", "alice");
    let decision = decide(&config, &request, 3);
    assert_eq!(decision.sticky_rejected, Some(Rejection::Unsigned));
    let split = decision.split.unwrap();
    assert_eq!(split.key, SplitKey::Key(0));
    assert_eq!(split.bucket, hash::bucket(b"half", b"alice"));
    assert_eq!(decision.sticky_id, None);
}

#[test]
fn without_signing_a_cookie_is_hashed_as_sent() {
    let json = r#"{"versions": ["v1", "v2"], "default_version": "v1",
        "rules": [{"name": "half", "split": {"weights": [{"version": "v2", "percent": 50},
                                                        {"version": "v1", "percent": 50}]}}],
        "sticky_cookie": {"name": "uid"}}"#;
    let config = CompiledConfig::from_json(json.as_bytes()).unwrap();
    let decision = decide(&config, &with_cookie("anything"), 0);
    let split = decision.split.unwrap();
    assert_eq!(split.bucket, hash::bucket(b"half", b"anything"));
    assert_eq!(decision.sticky_rejected, None);
    let issued = decide(&config, &OwnedRequest::new(), 0xfeed)
        .sticky_id
        .unwrap();
    let set_cookie = decide(&config, &OwnedRequest::new(), 0xfeed)
        .response_effects(&config)
        .next()
        .unwrap()
        .value()
        .into_owned();
    assert!(String::from_utf8(set_cookie)
        .unwrap()
        .starts_with(&format!("uid={}; ", issued.as_str())));
}

#[derive(Default)]
struct Checks(Vec<(usize, String, StickyCheck)>);

impl Observer for Checks {
    fn sticky_cookie(&mut self, rule: usize, value: &[u8], check: StickyCheck) {
        self.0
            .push((rule, String::from_utf8_lossy(value).into_owned(), check));
    }
}

#[test]
fn the_observer_sees_how_the_cookie_was_judged() {
    let config = config(&format!("{NEW},{OLD}"), "");
    let cases = [
        (signed(NEW, ID), StickyCheck::Verified { key: 0 }),
        (signed(OLD, ID), StickyCheck::Verified { key: 1 }),
        (ID.to_string(), StickyCheck::Rejected(Rejection::Unsigned)),
    ];
    for (value, check) in cases {
        let mut checks = Checks::default();
        decide_observed(&config, &with_cookie(&value), 0, &mut checks);
        assert_eq!(checks.0, vec![(0, value, check)]);
    }
    let mut checks = Checks::default();
    decide_observed(&config, &OwnedRequest::new(), 0, &mut checks);
    assert!(checks.0.is_empty(), "no cookie, nothing judged");
}
