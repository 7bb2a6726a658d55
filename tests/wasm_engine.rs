//! The engine on wasm32: SPEC §3 says buckets must be identical on wasm32 and x86_64, or a
//! user would change version depending on where the module runs. These tests run natively
//! (`cargo test`) and on wasm32-unknown-unknown under Node (`make wasm-test`), so every
//! expected value below is checked on both architectures.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use canary_tagger::engine::{self, ClientTag, DecidedBy, SplitKey, StickyId};
use canary_tagger::hash::{bucket, bucket_from_random, fmix64, Fnv1a64};
use canary_tagger::request::OwnedRequest;
use common::{by_rule, case, expect, run_table, spec_example, DEFAULT};

/// SPEC §3's test vectors: (salt, key, bucket).
const SPEC_VECTORS: &[(&[u8], &[u8], u16)] = &[
    (b"android-half", b"alice", 5246),
    (b"android-half", b"bob", 3219),
    (b"ramp", b"203.0.113.7", 5199),
    (b"ramp", b"2001:db8::1", 6769),
    (b"", b"", 1709),
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn spec_hash_test_vectors() {
    for &(salt, key, expected) in SPEC_VECTORS {
        assert_eq!(
            bucket(salt, key),
            expected,
            "({:?}, {:?})",
            String::from_utf8_lossy(salt),
            String::from_utf8_lossy(key)
        );
    }
}

/// Expected values computed once by running this crate's hash natively on x86_64 and
/// pasted here. They are not a specification of their own: on wasm32 they prove that the
/// 64-bit wrapping arithmetic gives the same numbers as on x86_64 (a cross-architecture
/// check), and natively they catch any change to the hash.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn buckets_match_the_values_computed_on_x86_64() {
    let long_key = "k".repeat(300);
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let table: &[(&[u8], &[u8], u16)] = &[
        (b"android", b"alice", 7655),
        (b"android", b"bob", 5563),
        (b"android", b"carol", 2399),
        (b"android", b"dave", 4844),
        (b"android", b"192.168.0.58", 3018),
        (b"android", b"203.0.113.7", 4034),
        (b"ramp", b"::ffff:192.0.2.1", 4051),
        (b"", b"x", 1934),
        (b"x", b"", 1164),
        (b"rollout-2024", b"0123456789abcdef0123456789abcdef", 33),
        (b"rollout-2024", b"ffffffffffffffffffffffffffffffff", 967),
        ("checkout".as_bytes(), "Jörg Müller".as_bytes(), 5454),
        ("checkout".as_bytes(), "用户-42".as_bytes(), 787),
        // `salt ":" key` is hashed as one string, so these two collide by design.
        (b"a:b", b"c", 5280),
        (b"a", b"b:c", 5280),
        (b"canary", b"user-99999", 2598),
        (b"long", long_key.as_bytes(), 4840),
        (b"bytes", &all_bytes, 4165),
    ];
    // The SPEC's vectors too: the same arithmetic, the same check on both architectures.
    let differing: Vec<String> = SPEC_VECTORS
        .iter()
        .chain(table)
        .filter(|(salt, key, expected)| bucket(salt, key) != *expected)
        .map(|(salt, key, expected)| {
            format!(
                "({:?}, {:?}): expected {expected}, got {}",
                String::from_utf8_lossy(salt),
                String::from_utf8_lossy(key),
                bucket(salt, key)
            )
        })
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));

    // The two stages on their own: FNV-1a 64 of `salt:key`, then fmix64.
    let stages: &[(&[u8], u64, u64)] = &[
        (b"", 0xcbf2_9ce4_8422_2325, 0xefd0_1f60_ba99_2926),
        (b"a", 0xaf63_dc4c_8601_ec8c, 0x82a2_a958_a9be_ce5b),
        (b"foobar", 0x8594_4171_f739_67e8, 0x2c22_1949_22d1_672b),
        (
            b"android-half:alice",
            0x4d53_5c74_3aa7_24e4,
            0x196e_1291_000e_4b5e,
        ),
        (
            b"ramp:2001:db8::1",
            0x1cd7_f15d_fa89_f0db,
            0x3dfb_4089_6858_cfb1,
        ),
        (
            "Jörg".as_bytes(),
            0x4c5e_9910_d056_557f,
            0xe526_d0a7_a146_d677,
        ),
    ];
    for &(input, fnv, mixed) in stages {
        let hash = Fnv1a64::default().write(input).finish();
        assert_eq!(hash, fnv, "fnv1a64({:?})", String::from_utf8_lossy(input));
        assert_eq!(fmix64(hash), mixed, "fmix64 of {hash:#x}");
    }

    // 128-bit entropy: random buckets and sticky ids.
    let random: &[(u128, u16)] = &[
        (0, 0),
        (1, 6604),
        (0x2a, 3340),
        (0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 4289),
        (0xdead_beef_0000_0000_0000_0000_cafe_f00d, 9485),
        (0x8000_0000_0000_0000_0000_0000_0000_0000, 8707),
        (0xffff_ffff_ffff_ffff_0000_0000_0000_0000, 4289),
    ];
    for &(entropy, expected) in random {
        assert_eq!(bucket_from_random(entropy), expected, "{entropy:#x}");
    }
    assert_eq!(
        StickyId::from_entropy(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210).as_str(),
        "0123456789abcdeffedcba9876543210"
    );
    assert_eq!(
        StickyId::from_entropy(u128::MAX).as_str(),
        "ffffffffffffffffffffffffffffffff"
    );
}

/// Share of 100,000 sequential keys whose bucket under `salt` is below `end`, in percent.
fn share_below(salt: &[u8], end: u16) -> f64 {
    let count = (0..100_000u32)
        .filter(|i| bucket(salt, format!("user-{i}").as_bytes()) < end)
        .count();
    100.0 * f64::from(u32::try_from(count).unwrap()) / 100_000.0
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn split_distribution_over_100k_keys_within_one_point() {
    // Weights in the listed order: the first version gets buckets 0..percent × 100.
    let fifty = share_below(b"android-half", 5000);
    assert!((fifty - 50.0).abs() <= 1.0, "50/50 split: {fifty:.2} %");
    let ten = share_below(b"ramp", 1000);
    assert!((ten - 10.0).abs() <= 1.0, "10/90 split: {ten:.2} %");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn spec_example_decisions() {
    let config = spec_example();
    let from = |client: &str| {
        OwnedRequest::new()
            .peer("10.0.0.1:40000")
            .header("x-forwarded-for", format!("{client}, 10.0.0.1"))
    };
    let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36";
    let cases = [
        case(
            "S1 gRPC without grpcsvc",
            from("203.0.113.7").header("content-type", "application/grpc"),
            expect("v1", by_rule(3)).normalized(&[0]),
        ),
        case(
            "S2 Chrome",
            from("203.0.113.7").header("user-agent", "Mozilla/5.0 Chrome/120.0"),
            expect("v2", by_rule(2)),
        ),
        case(
            "S3 tester cookie mid-header",
            from("203.0.113.7").header("cookie", "a=1; user=tester; b=2"),
            expect("v2", by_rule(0)),
        ),
        case(
            "S4 office via XFF",
            from("192.168.0.58"),
            expect("v3", by_rule(1)),
        ),
        case(
            "S5 alice",
            from("203.0.113.7")
                .header("user-agent", android)
                .cookie("uid", "alice"),
            expect("v1", by_rule(4)).split(SplitKey::Key(0), 7655),
        ),
        case(
            "S5 carol",
            from("203.0.113.7")
                .header("user-agent", android)
                .cookie("uid", "carol"),
            expect("v2", by_rule(4)).split(SplitKey::Key(0), 2399),
        ),
        case(
            "S5 by client address",
            from("203.0.113.7").header("user-agent", android),
            expect("v2", by_rule(4)).split(SplitKey::Key(2), 4034),
        ),
        case(
            "S5 new sticky id",
            OwnedRequest::new().header("user-agent", android),
            expect("v2", by_rule(4))
                .split(SplitKey::NewStickyId, 940)
                .sticky("0000000000000000000000000000002a"),
        )
        .with_entropy(0x2a),
        case(
            "S9 untrusted tag",
            from("203.0.113.7").header("x-canary-version", "v3"),
            expect("v1", DEFAULT).tag(ClientTag::Stripped),
        ),
        case(
            "S9 trusted tag",
            from("10.20.3.4").header("x-canary-version", "v3"),
            expect("v3", DecidedBy::TrustedClientTag).tag(ClientTag::Kept),
        ),
    ];
    run_table(&config, &cases);

    // Non-UTF-8 input decides the same way on both architectures.
    let garbage = OwnedRequest::new()
        .header("user-agent", b"\xff\xfeChrome\x80")
        .header("x-forwarded-for", b"\xff, \xfe");
    let decision = engine::decide(&config, &garbage, 7);
    assert_eq!(config.version_name(decision.version), "v2");
    assert_eq!(decision.decided_by, by_rule(2));
}

/// SPEC §10: signed sticky ids verify alike wherever the module runs. The MACs were
/// computed with Python's `hmac` (HMAC-SHA256, first 16 bytes, hex), not by this crate;
/// a 64-byte key is exactly one SHA-256 block, the edge of HMAC's key handling.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn signed_sticky_ids_match_pythons_hmac() {
    use canary_tagger::signing::SigningKeys;
    let vectors = [
        (
            "k:b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVm",
            "00112233445566778899aabbccddeeff",
            "2de39a988325604ef6746c9bae1a341e",
        ),
        (
            "k:AAAAAAAAAAAAAAAAAAAAAA==",
            "ffffffffffffffffffffffffffffffff",
            "b5b9ca3a6911739f5ff1c5359becb13a",
        ),
        (
            "k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
            "0123456789abcdef0123456789abcdef",
            "b3192110fdb64efe6ba008a6f766b9b0",
        ),
    ];
    for (keys, id, mac) in vectors {
        let keys = SigningKeys::from_env_value("K", keys).unwrap();
        let value = format!("{id}.k.{mac}");
        assert_eq!(keys.sign(id.as_bytes()).as_str(), value);
        assert_eq!(keys.verify(value.as_bytes()), Ok((id.as_bytes(), 0)));
    }
}

/// SPEC §9: a ramp's ranges at a second are integer arithmetic, the same on wasm32 (whose
/// `usize` is 32 bits) as on x86_64; the dates parse to the same seconds.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn ramp_ranges_match_on_both_architectures() {
    use canary_tagger::config::{Action, CompiledConfig};
    use canary_tagger::ramp::parse_rfc3339_utc;

    assert_eq!(parse_rfc3339_utc("2026-12-01T10:00:00Z"), Ok(1_796_119_200));
    assert_eq!(
        parse_rfc3339_utc("9999-12-31T23:59:59Z"),
        Ok(253_402_300_799)
    );
    let config = CompiledConfig::from_json(
        br#"{"versions": ["v1", "v2", "v3"], "default_version": "v1",
             "rules": [{"name": "ramp", "split": {
               "weights": [{"version": "v3", "percent": 10}, {"version": "v2", "percent": 67.5},
                           {"version": "v1", "percent": 22.5}],
               "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 4000000000, "to": 99.99},
               "key": ["source_ip"]}}]}"#,
    )
    .unwrap();
    let Action::Split(split) = &config.rules[0].action else {
        panic!("not a split")
    };
    let start = 1_796_119_200i64;
    for (offset, ends) in [
        (-1i64, [1000u16, 7750, 10_000]),
        (1, [1000, 7750, 10_000]),
        (1_234_567_891, [3777, 8444, 10_000]),
        (3_999_999_999, [9998, 9999, 10_000]),
        (4_000_000_000, [9999, 9999, 10_000]),
    ] {
        config.set_time(start + offset);
        let now: Vec<u16> = split.ranges().map(|(end, _)| end).collect();
        assert_eq!(now, ends, "at start{offset:+}");
    }
}
