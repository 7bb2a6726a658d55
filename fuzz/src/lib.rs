//! Shared parts of canary-tagger's fuzz targets (`fuzz_targets/`, run with `cargo fuzz`;
//! see docs/fuzzing.md): structured inputs, the fixed configurations requests are decided
//! under, and the checks every decision must pass.

use std::sync::OnceLock;

use canary_tagger::config::{CompiledConfig, RestoreSource, VersionId};
use canary_tagger::engine::{ClientTag, DecidedBy, Decision, SplitKey};
use canary_tagger::request::RequestView;
use canary_tagger::sidecar::{self, RestoredFrom, TraceKey, TraceTable};

pub mod config_check;
pub mod input;
pub mod parsers;
pub mod request;

/// The configurations the `request` and `header_map` targets decide under, by name. One
/// more entry is one more configuration every input is decided under. A sidecar-mode
/// configuration is checked with [`check_sidecar`] instead of `decide`.
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
    // SPEC §8's sidecar example.
    (
        "sidecar",
        include_bytes!("../../fixtures/configs/sidecar.json"),
    ),
    // Sidecar mode with trace first, baggage written, and a table of 3 slots, so that trace
    // ids share slots.
    (
        "sidecar-small",
        include_bytes!("../configs/sidecar-small.json"),
    ),
    // SPEC §12: waypoint mode with every restore source, tracestate and baggage written.
    (
        "waypoint-tracestate",
        include_bytes!("../configs/waypoint-tracestate.json"),
    ),
    // SPEC §12 at the gateway: tracestate written, a client's canary member stripped.
    (
        "gateway-tracestate",
        include_bytes!("../../fixtures/configs/gateway-tracestate.json"),
    ),
];

/// Envoy's shared data as the filter uses it in sidecar mode: slot → entry, and a clock.
#[derive(Default)]
pub struct MemoryTable {
    pub slots: std::cell::RefCell<std::collections::HashMap<u32, Vec<u8>>>,
    pub now_s: u64,
}

impl TraceTable for MemoryTable {
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T {
        read(self.slots.borrow().get(&slot).map(Vec::as_slice))
    }

    fn now_s(&self) -> u64 {
        self.now_s
    }
}

impl MemoryTable {
    /// What the filter does with an inbound request; the version remembered, if any.
    pub fn remember<R: RequestView>(
        &self,
        config: &CompiledConfig,
        request: &R,
    ) -> Option<VersionId> {
        let sidecar = config.sidecar()?;
        let version = sidecar::inbound_version(config, request)?;
        let mut any = false;
        for (header, id) in sidecar::trace_ids(request) {
            let key = TraceKey::new(header, id, &sidecar.trace_memory);
            assert!(key.slot < sidecar.trace_memory.entries);
            let mut buf = [0u8; sidecar::MAX_ENTRY];
            let entry =
                sidecar::encode_entry(key, self.now_s, config.version_name(version), &mut buf);
            assert_eq!(
                sidecar::decode_entry(entry),
                Some((
                    key.check,
                    self.now_s,
                    config.version_name(version).as_bytes()
                ))
            );
            let slot = sidecar::slot_to_write(self, key, &sidecar.trace_memory, self.now_s);
            assert!(slot == key.slot || slot == key.alt);
            self.slots.borrow_mut().insert(slot, entry.to_vec());
            any = true;
        }
        any.then_some(version)
    }
}

/// Sidecar mode over one request, read by `request` and (if given) by a second reader of
/// the same headers: the outbound decision is a known version, the same twice and from both
/// readers, `header` restores only a tag sent once naming a version, the effects are the tag
/// (and `baggage` when configured, rewritten keeping every other member); and once the
/// request was remembered inbound, the same request outbound finds its version again when
/// `trace` comes first.
pub fn check_sidecar<R: RequestView, S: RequestView>(
    config: &CompiledConfig,
    request: &R,
    other_reader: Option<&S>,
) {
    let Some(sidecar_config) = config.sidecar() else {
        return;
    };
    let table = MemoryTable::default();
    let restored = sidecar::restore(config, request, &table);
    assert!(restored.version.index() < config.versions().len());
    assert_eq!(restored, sidecar::restore(config, request, &table));
    if let Some(other) = other_reader {
        assert_eq!(restored, sidecar::restore(config, other, &table));
    }
    match restored.from {
        RestoredFrom::Default => assert_eq!(restored.version, config.default_version),
        RestoredFrom::Source(RestoreSource::Header) => {
            let tags: Vec<&[u8]> = request.header_values(&config.tag_header).collect();
            assert_eq!(tags, vec![config.version_name(restored.version).as_bytes()]);
        }
        RestoredFrom::Source(RestoreSource::Trace) => panic!("an empty table restored a trace"),
        RestoredFrom::Source(RestoreSource::Tracestate) => {
            let read =
                canary_tagger::trace_context::version_member(request.header_values("tracestate"));
            assert_eq!(read, Some(config.version_name(restored.version).as_bytes()));
        }
        RestoredFrom::Source(RestoreSource::Baggage) => {}
    }
    let effects: Vec<_> = restored.request_effects(config, request).collect();
    let traced = config.tracestate
        && canary_tagger::trace_context::has_valid_traceparent(
            request.header_values("traceparent"),
        );
    assert_eq!(
        effects.len(),
        1 + usize::from(config.baggage) + usize::from(traced)
    );
    if config.baggage {
        check_baggage_rewrite(
            request.header_values("baggage"),
            config.version_name(restored.version),
        );
    }
    if let Some(version) = table.remember(config, request) {
        if sidecar_config.restore.first() == Some(&RestoreSource::Trace) {
            let again = sidecar::restore(config, request, &table);
            assert_eq!(
                (again.version, again.from),
                (version, RestoredFrom::Source(RestoreSource::Trace)),
                "remembered, then not found"
            );
        }
    }
}

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
