//! W3C Trace Context: the trace id of `traceparent`, and `tracestate` as a carrier of the
//! version (SPEC §12) — its member `canary=<version>`, put first at the gateway and read
//! back wherever the tag has to be restored.
//!
//! Tracing libraries forward `tracestate` unchanged, so apps that forward trace context but
//! not `baggage` still carry the version. The rewrite keeps every other member in order
//! (W3C Trace Context §3.3.1.3: a vendor puts its own member first) and drops what the
//! grammar does not allow, so the value we write is always a valid `tracestate`.
//!
//! The new `tracestate`: `canary=<version>` first (`None`: ours removed), then every other
//! valid member in order, at most [`MAX_MEMBERS`] in all (the last ones dropped). Several
//! `tracestate` lines are one list.

use crate::members::{self, Pieces};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Our member's key.
pub const MEMBER_KEY: &str = "canary";

/// A `tracestate` holds at most this many list members (W3C Trace Context §3.3.1.1).
pub const MAX_MEMBERS: usize = 32;

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The trace-id field of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`): lower-case
/// hex, neither id all zeros, version `ff` invalid; a version above `00` may append fields
/// after a `-` (W3C Trace Context §3.2).
pub fn traceparent_trace_id(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let version = value.get(..2)?;
    let trace_id = value.get(3..35)?;
    let parent_id = value.get(36..52)?;
    let flags = value.get(53..55)?;
    let dashes = [2, 35, 52].iter().all(|&at| value.get(at) == Some(&b'-'));
    let well_formed = dashes
        && is_lower_hex(version)
        && version != b"ff"
        && is_lower_hex(trace_id)
        && is_lower_hex(parent_id)
        && is_lower_hex(flags)
        && trace_id.iter().any(|&b| b != b'0')
        && parent_id.iter().any(|&b| b != b'0');
    let rest_ok = match value.get(55..) {
        None | Some([]) => true,
        Some(rest) => version != b"00" && rest.first() == Some(&b'-'),
    };
    (well_formed && rest_ok).then_some(trace_id)
}

/// Whether the request's `traceparent` values are exactly one well-formed header: only
/// then does `tracestate` belong to a trace (W3C Trace Context §3.3: without a valid
/// `traceparent` a `tracestate` is discarded).
pub fn has_valid_traceparent<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> bool {
    match (values.next(), values.next()) {
        (Some(value), None) => traceparent_trace_id(value).is_some(),
        _ => false,
    }
}

/// A list member's key: what comes before `=`, or the whole member without one.
fn key_of(member: &[u8]) -> &[u8] {
    let end = member
        .iter()
        .position(|&b| b == b'=')
        .unwrap_or(member.len());
    member.get(..end).unwrap_or(member).trim_ascii()
}

fn is_ours(member: &[u8]) -> bool {
    key_of(member) == MEMBER_KEY.as_bytes()
}

/// The value of the first `canary` member across the request's `tracestate` values.
pub fn version_member<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let mut found = None;
    members::each_member(lines, &mut |member| {
        if !is_ours(member) {
            return true;
        }
        found = member.get(MEMBER_KEY.len()..).and_then(|rest| {
            let rest = rest.trim_ascii_start();
            rest.strip_prefix(b"=").map(<[u8]>::trim_ascii)
        });
        false
    });
    found
}

/// Whether any member of the request's `tracestate` values is ours (any value).
pub fn has_version_member<'a>(lines: impl Iterator<Item = &'a [u8]>) -> bool {
    !members::each_member(lines, &mut |member| !is_ours(member))
}

/// Whether the request's `tracestate` has members other than ours.
pub fn has_other_members<'a>(lines: impl Iterator<Item = &'a [u8]>) -> bool {
    !members::each_member(lines, &mut is_ours)
}

/// A key character after the first: `lcalpha / DIGIT / "_" / "-" / "*" / "/"`.
fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// A W3C `tracestate` key: `simple-key` (lcalpha, then up to 255 key characters) or
/// `multi-tenant-key` (`tenant-id@system-id`: 1–241 key characters starting with lcalpha
/// or a digit, `@`, 1–14 key characters starting with lcalpha).
pub fn is_valid_key(key: &[u8]) -> bool {
    let starts = |part: &[u8], digit_ok: bool, max: usize| match part.first() {
        Some(&b) => {
            (b.is_ascii_lowercase() || (digit_ok && b.is_ascii_digit()))
                && part.len() <= max
                && part.iter().all(|&b| is_key_char(b))
        }
        None => false,
    };
    match key.iter().position(|&b| b == b'@') {
        None => starts(key, false, 256),
        Some(at) => {
            let (tenant, system) = (key.get(..at), key.get(at + 1..));
            tenant.is_some_and(|t| starts(t, true, 241))
                && system.is_some_and(|s| starts(s, false, 14))
        }
    }
}

/// A W3C `tracestate` value: 1–256 printable ASCII characters but `,` and `=`, the last
/// not a space.
pub fn is_valid_value(value: &[u8]) -> bool {
    let allowed = |b: &u8| (0x20..=0x7e).contains(b) && *b != b',' && *b != b'=';
    !value.is_empty()
        && value.len() <= 256
        && value.iter().all(allowed)
        && value.last() != Some(&b' ')
}

/// Whether a list member (already trimmed) is `key=value` as the grammar allows.
pub fn is_valid_member(member: &[u8]) -> bool {
    match member.iter().position(|&b| b == b'=') {
        Some(eq) => {
            member.get(..eq).is_some_and(is_valid_key)
                && member.get(eq + 1..).is_some_and(is_valid_value)
        }
        None => false,
    }
}

members::rewrites!("tracestate");

/// The layout of [`with_version`]'s value: `canary=<version>` first, then the other valid
/// members.
impl<'a, I: Iterator<Item = &'a [u8]> + Clone> Pieces for Value<'_, I> {
    fn each(&self, piece: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let mut count = 0;
        if let Some(version) = self.version {
            if !(piece(MEMBER_KEY.as_bytes()) && piece(b"=") && piece(version.as_bytes())) {
                return false;
            }
            count = 1;
        }
        // Stops at the 32nd member: the value is complete then. (A piece refused past our
        // member is not reported: every later piece is the line's own bytes, so
        // `members::is_exactly` sees the mismatch as bytes left over.)
        members::each_member(self.existing.clone(), &mut |member| {
            if is_ours(member) || !is_valid_member(member) {
                return true;
            }
            let went = (count == 0 || piece(b",")) && piece(member);
            count += 1;
            went && count < MAX_MEMBERS
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(values: &[&str], version: Option<&str>) -> String {
        let lines = values.iter().map(|v| v.as_bytes());
        let rewritten = String::from_utf8(with_version(lines.clone(), version)).unwrap();
        write_with_version(lines, version, |written| {
            assert_eq!(written, rewritten.as_bytes())
        });
        if let ([line], Some(version)) = (values, version) {
            assert_eq!(is_current(line.as_bytes(), version), *line == rewritten);
        }
        rewritten
    }

    #[test]
    fn our_member_goes_first_and_the_others_keep_their_order() {
        assert_eq!(rewrite(&[], Some("v2")), "canary=v2");
        assert_eq!(
            rewrite(&["rojo=00f067aa0ba902b7"], Some("v2")),
            "canary=v2,rojo=00f067aa0ba902b7"
        );
        assert_eq!(
            rewrite(&["a=1, canary=v1 ,b=2", "c@d=3"], Some("v3")),
            "canary=v3,a=1,b=2,c@d=3"
        );
        assert_eq!(rewrite(&["canary=v2,a=1"], Some("v2")), "canary=v2,a=1");
        assert_eq!(rewrite(&["a=1,canary=v2"], None), "a=1");
        assert_eq!(rewrite(&["canary=v2", "canary=v3"], None), "");
    }

    #[test]
    fn invalid_members_are_dropped() {
        assert_eq!(
            rewrite(&["A=1,a=,=x,a b=1,ok=1,x=a=b,1a=2,t@S=1,t@s=1"], Some("v1")),
            "canary=v1,ok=1,t@s=1"
        );
        assert_eq!(rewrite(&["a=\u{e9}"], Some("v1")), "canary=v1");
        assert_eq!(rewrite(&["a=x "], Some("v1")), "canary=v1,a=x");
    }

    #[test]
    fn at_most_32_members() {
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        let line = many.join(",");
        let out = rewrite(&[&line], Some("v1"));
        let members: Vec<&str> = out.split(',').collect();
        assert_eq!(members.len(), MAX_MEMBERS);
        assert_eq!(members[0], "canary=v1");
        assert_eq!(members[31], "k30=v");
        assert_eq!(rewrite(&[&line], None).split(',').count(), MAX_MEMBERS);
    }

    #[test]
    fn reads_the_first_canary_member() {
        let read = |values: &[&str]| {
            version_member(values.iter().map(|v| v.as_bytes()))
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(read(&["a=1,canary=v2,canary=v3"]), Some("v2".into()));
        assert_eq!(read(&["a=1", " canary = v3 "]), Some("v3".into()));
        assert_eq!(
            read(&["canaryx=v2,canary"]),
            Some(String::new()).filter(|_| false)
        );
        assert_eq!(read(&[]), None);
        assert!(has_version_member([&b"x=1,canary"[..]].into_iter()));
        assert!(!has_version_member([&b"canaryx=1"[..]].into_iter()));
        assert!(has_other_members([&b"canary=v1,x=1"[..]].into_iter()));
        assert!(!has_other_members([&b"canary=v1, ,"[..]].into_iter()));
    }

    #[test]
    fn keys_follow_the_grammar() {
        for good in [
            "a",
            "a0_-*/",
            "0t@s",
            "t@s0",
            &"a".repeat(256),
            &format!("{}@{}", "t".repeat(241), "s".repeat(14)),
        ] {
            assert!(is_valid_key(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "A",
            "0a",
            "a.b",
            "@s",
            "t@",
            "t@0s",
            "t@s@x",
            &"a".repeat(257),
            &format!("{}@s", "t".repeat(242)),
            &format!("t@{}", "s".repeat(15)),
        ] {
            assert!(!is_valid_key(bad.as_bytes()), "{bad}");
        }
        assert!(is_valid_value(b"a b"));
        assert!(!is_valid_value(&[b'x'; 257]));
    }

    #[test]
    fn traceparent_must_be_one_valid_header() {
        let good = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(has_valid_traceparent([&good[..]].into_iter()));
        assert!(!has_valid_traceparent([&good[..], &good[..]].into_iter()));
        assert!(!has_valid_traceparent([&good[..54]].into_iter()));
        assert!(!has_valid_traceparent(std::iter::empty()));
    }
}
