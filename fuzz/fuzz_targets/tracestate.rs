//! `tracestate` (SPEC §12): raw header values never panic; the rewrite is exactly a plain
//! reading of W3C Trace Context §3.3 — `canary=<version>` first, then every other valid
//! member in order, at most 32 in all — and re-reads as that version; the read is the
//! first `canary` member; the stack-built value equals the heap-built one.
#![no_main]

use canary_tagger::trace_context::{self, MAX_MEMBERS};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::{TracestateInput, VERSIONS};
use libfuzzer_sys::fuzz_target;

/// A key as the grammar spells it, checked with a regex-free reading of §3.3.1.3.
fn reference_key(key: &[u8]) -> bool {
    let chars = |s: &[u8]| {
        s.iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b))
    };
    let parts: Vec<&[u8]> = key.split(|&b| b == b'@').collect();
    match parts.as_slice() {
        [simple] => {
            (1..=256).contains(&simple.len()) && simple[0].is_ascii_lowercase() && chars(simple)
        }
        [tenant, system] => {
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && chars(tenant)
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && chars(system)
        }
        _ => false,
    }
}

fn reference_member(member: &[u8]) -> bool {
    let Some(eq) = member.iter().position(|&b| b == b'=') else {
        return false;
    };
    let (key, value) = (&member[..eq], &member[eq + 1..]);
    reference_key(key)
        && (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && value.last() != Some(&b' ')
}

fn key_of(member: &[u8]) -> &[u8] {
    let end = member
        .iter()
        .position(|&b| b == b'=')
        .unwrap_or(member.len());
    member[..end].trim_ascii()
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<TracestateInput>(data) else {
        return;
    };
    let version = VERSIONS[usize::from(input.version) % VERSIONS.len()];
    let lines = || input.values.iter().map(|v| v.0.as_slice());
    let members: Vec<&[u8]> = lines()
        .flat_map(|line| line.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|m| !m.is_empty())
        .collect();
    let kept: Vec<&[u8]> = members
        .iter()
        .copied()
        .filter(|m| key_of(m) != b"canary" && reference_member(m))
        .collect();

    let rewritten = trace_context::with_version(lines(), Some(version));
    let mut expected = vec![format!("canary={version}").into_bytes()];
    expected.extend(kept.iter().take(MAX_MEMBERS - 1).map(|m| m.to_vec()));
    assert_eq!(rewritten, expected.join(&b","[..]));
    trace_context::write_with_version(lines(), Some(version), |written| {
        assert_eq!(written, rewritten.as_slice())
    });
    let reread = [rewritten.as_slice()];
    assert_eq!(
        trace_context::version_member(reread.into_iter()),
        Some(version.as_bytes())
    );
    assert!(trace_context::is_current(&rewritten, version));

    let stripped = trace_context::with_version(lines(), None);
    let expected: Vec<&[u8]> = kept.iter().copied().take(MAX_MEMBERS).collect();
    assert_eq!(stripped, expected.join(&b","[..]));
    assert!(!trace_context::has_version_member(
        [stripped.as_slice()].into_iter()
    ));

    let first_ours = members.iter().find(|m| key_of(m) == b"canary");
    assert_eq!(
        trace_context::has_version_member(lines()),
        first_ours.is_some()
    );
    let read = trace_context::version_member(lines());
    match first_ours {
        Some(m) => {
            let rest = m[b"canary".len()..].trim_ascii_start();
            assert_eq!(read, rest.strip_prefix(b"=").map(<[u8]>::trim_ascii));
        }
        None => assert_eq!(read, None),
    }
});
