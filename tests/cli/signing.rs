//! Signed sticky ids: keys from the environment, and `explain`'s verdict on a cookie.

use super::*;

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
