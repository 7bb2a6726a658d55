//! Shared parts of canary-tagger's fuzz targets (`fuzz_targets/`, run with `cargo fuzz`;
//! see docs/fuzzing.md): structured inputs, the fixed configurations requests are decided
//! under, and the checks every decision must pass.

use std::sync::OnceLock;

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine::{ClientTag, DecidedBy, Decision, SplitKey};

pub mod config_check;
pub mod input;
pub mod parsers;
pub mod request;

/// The configurations the `request` and `header_map` targets decide under, by name. One
/// more entry is one more configuration every input is decided under (the sidecar mode's
/// config belongs here once it exists).
pub const FIXED_CONFIGS: &[(&str, &[u8])] = &[
    // SPEC §2's example: XFF with one trusted hop, a trusted range, normalize, five rules.
    (
        "seed",
        include_bytes!("../../fixtures/configs/spec-example.json"),
    ),
    // The benchmark's worst case: 50 rules of every kind.
    (
        "rules50",
        include_bytes!("../../fixtures/configs/rules50.json"),
    ),
    // The peer address, chained normalizations, version_from, ignore_case, a keyless split.
    (
        "peer-normalize",
        include_bytes!("../configs/peer-normalize.json"),
    ),
];

/// [`FIXED_CONFIGS`], compiled once.
pub fn fixed_configs() -> &'static [(&'static str, CompiledConfig)] {
    static COMPILED: OnceLock<Vec<(&'static str, CompiledConfig)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        FIXED_CONFIGS
            .iter()
            .map(|(name, json)| match CompiledConfig::from_json(json) {
                Ok(config) => (*name, config),
                Err(errors) => panic!("fixed config {name} is rejected: {errors}"),
            })
            .collect()
    })
}

/// What every decision must satisfy, whatever the request: a known version, indices
/// within the configuration, and a story that holds together.
pub fn check_decision(config: &CompiledConfig, decision: &Decision) {
    assert!(
        decision.version.index() < config.versions().len(),
        "decided version {:?} is not one of {:?}",
        decision.version,
        config.versions()
    );
    match decision.decided_by {
        DecidedBy::Rule(index) => assert!(index < config.rules.len()),
        DecidedBy::TrustedClientTag => assert_eq!(decision.client_tag, ClientTag::Kept),
        DecidedBy::Default => assert_eq!(decision.version, config.default_version),
    }
    if decision.client_tag == ClientTag::Kept {
        assert_eq!(decision.decided_by, DecidedBy::TrustedClientTag);
    }
    assert!(decision
        .normalized
        .iter()
        .all(|i| i < config.normalize.len()));
    if let Some(id) = decision.sticky_id {
        assert!(
            config.sticky_cookie.is_some(),
            "sticky id without a sticky cookie"
        );
        let split = decision.split.map(|s| s.key);
        assert_eq!(split, Some(SplitKey::NewStickyId));
        assert_eq!(id.as_str().len(), 32);
        assert!(id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    if let Some(split) = decision.split {
        assert!(split.bucket < canary_tagger::hash::BUCKETS);
        assert!(matches!(decision.decided_by, DecidedBy::Rule(_)));
    }
}

/// Whether the decision used the entropy (a keyless split); otherwise it must not depend
/// on it.
pub fn uses_entropy(decision: &Decision) -> bool {
    matches!(
        decision.split.map(|s| s.key),
        Some(SplitKey::NewStickyId | SplitKey::Random)
    )
}

/// Percent-encodes every byte outside RFC 3986's unreserved set (so `%`, `+`, `&`, `=`, `#`
/// and spaces are all escaped).
pub fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        }
    }
    out
}

/// `baggage::with_version` over `existing` re-parses as: every member of the request that
/// is not ours, in order and verbatim (trimmed), then exactly one `canary-version=VERSION`;
/// without a version (SPEC §7's strip), the same members and nothing else.
pub fn check_baggage_rewrite<'a>(existing: impl Iterator<Item = &'a [u8]> + Clone, version: &str) {
    let key_of = |member: &[u8]| -> Vec<u8> {
        let end = member
            .iter()
            .position(|&b| b == b'=' || b == b';')
            .unwrap_or(member.len());
        member.get(..end).unwrap_or_default().trim_ascii().to_vec()
    };
    let ours = canary_tagger::baggage::MEMBER_KEY.as_bytes();
    let kept: Vec<Vec<u8>> = existing
        .clone()
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|member| member.trim_ascii().to_vec())
        .filter(|member| !member.is_empty() && key_of(member) != ours)
        .collect();
    let stripped = canary_tagger::baggage::with_version(existing.clone(), None);
    let stripped_members: Vec<&[u8]> = match stripped.as_slice() {
        [] => Vec::new(),
        value => value.split(|&b| b == b',').collect(),
    };
    assert_eq!(
        stripped_members,
        kept.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    let members = canary_tagger::baggage::members(existing.clone());
    assert_eq!(members.others, !kept.is_empty());
    let rewritten = canary_tagger::baggage::with_version(existing, Some(version));
    let members: Vec<&[u8]> = rewritten.split(|&b| b == b',').collect();
    let empty: &[u8] = b"";
    let (last, others) = members.split_last().unwrap_or((&empty, &[]));
    assert_eq!(
        *last,
        format!("{}={version}", canary_tagger::baggage::MEMBER_KEY).as_bytes()
    );
    assert_eq!(
        others,
        kept.iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>()
            .as_slice()
    );
    let ours_count = members.iter().filter(|m| key_of(m) == ours).count();
    assert_eq!(ours_count, 1, "{:?}", String::from_utf8_lossy(&rewritten));
}
