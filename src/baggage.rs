//! The W3C `baggage` header: add, replace or remove our `canary-version` member, keep the
//! others.
//!
//! The new value given the request's existing values (several headers are one
//! comma-separated list): every member but ours kept verbatim, then ours naming `version`
//! (`None`: ours removed, SPEC §7). Empty members are dropped.

use crate::members::{self, Pieces};

/// The W3C baggage header.
pub const HEADER: &str = "baggage";

/// The baggage member key that carries the version.
pub const MEMBER_KEY: &str = "canary-version";

members::rewrites!("baggage");

pub use members::STACK_VALUE;

/// The layout of [`with_version`]'s value: the kept members with commas between them, then
/// `canary-version=<version>`.
impl<'a, I: Iterator<Item = &'a [u8]> + Clone> Pieces for Value<'_, I> {
    fn each(&self, piece: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let mut first = true;
        let kept = members::each_member(self.existing.clone(), &mut |member| {
            if is_version_member(member) {
                return true;
            }
            let went = (first || piece(b",")) && piece(member);
            first = false;
            went
        });
        kept && match self.version {
            Some(version) => {
                (first || piece(b","))
                    && piece(MEMBER_KEY.as_bytes())
                    && piece(b"=")
                    && piece(version.as_bytes())
            }
            None => true,
        }
    }
}

/// What the request's `baggage` holds besides empty members: whether one member is ours
/// (`canary-version`, with any value or properties) and whether any other is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Members {
    pub ours: bool,
    pub others: bool,
}

/// [`Members`] of the request's `baggage` values. Reads without allocating.
pub fn members<'a>(existing: impl Iterator<Item = &'a [u8]>) -> Members {
    let mut found = Members::default();
    for value in existing {
        for member in value.split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() {
                continue;
            }
            if is_version_member(member) {
                found.ours = true;
            } else {
                found.others = true;
            }
        }
    }
    found
}

fn is_version_member(member: &[u8]) -> bool {
    let key_end = member
        .iter()
        .position(|&b| b == b'=' || b == b';')
        .unwrap_or(member.len());
    member.get(..key_end).map(<[u8]>::trim_ascii) == Some(MEMBER_KEY.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(values: &[&str], version: &str) -> String {
        let lines = values.iter().map(|v| v.as_bytes());
        let rewritten = String::from_utf8(with_version(lines.clone(), Some(version))).unwrap();
        write_with_version(lines, Some(version), |written| {
            assert_eq!(written, rewritten.as_bytes())
        });
        // Current exactly when the one line is already the result.
        if let [line] = values {
            let current = is_current(line.as_bytes(), version);
            assert_eq!(current, *line == rewritten, "{line:?}");
        }
        rewritten
    }

    #[test]
    fn adds_replaces_and_keeps_members() {
        assert_eq!(rewrite(&[], "v2"), "canary-version=v2");
        assert_eq!(
            rewrite(&["userId=alice"], "v2"),
            "userId=alice,canary-version=v2"
        );
        assert_eq!(
            rewrite(&["a=1, canary-version=v1;p=x ,b=2"], "v3"),
            "a=1,b=2,canary-version=v3"
        );
        assert_eq!(
            rewrite(&["a=1", "canary-version = v1", ""], "v2"),
            "a=1,canary-version=v2"
        );
        assert_eq!(
            rewrite(&["canary-versions=x"], "v2"),
            "canary-versions=x,canary-version=v2"
        );
    }

    fn strip(values: &[&str]) -> String {
        let lines = values.iter().map(|v| v.as_bytes());
        let stripped = String::from_utf8(with_version(lines.clone(), None)).unwrap();
        write_with_version(lines, None, |written| {
            assert_eq!(written, stripped.as_bytes())
        });
        stripped
    }

    #[test]
    fn removes_our_member_and_keeps_the_others() {
        assert_eq!(strip(&["canary-version=v3"]), "");
        assert_eq!(strip(&["canary-version=v3;p=1"]), "");
        assert_eq!(strip(&["a=1,canary-version=v3,b=2"]), "a=1,b=2");
        assert_eq!(strip(&["canary-version=v3, a=1;x"]), "a=1;x");
        assert_eq!(strip(&["a=1", " canary-version =v2", "b=2"]), "a=1,b=2");
        assert_eq!(strip(&["canary-versions=x"]), "canary-versions=x");
        assert_eq!(strip(&["", "a=1,,"]), "a=1");
    }

    #[test]
    fn members_tells_ours_from_the_others() {
        let members_of = |values: &[&str]| members(values.iter().map(|v| v.as_bytes()));
        assert_eq!(
            members_of(&[]),
            Members {
                ours: false,
                others: false
            }
        );
        assert_eq!(
            members_of(&[" , "]),
            Members {
                ours: false,
                others: false
            }
        );
        assert_eq!(
            members_of(&["canary-version=v1;p"]),
            Members {
                ours: true,
                others: false
            }
        );
        assert_eq!(
            members_of(&["a=1", "canary-version=v1"]),
            Members {
                ours: true,
                others: true
            }
        );
        assert_eq!(
            members_of(&["canary-versionx=1"]),
            Members {
                ours: false,
                others: true
            }
        );
    }

    #[test]
    fn current_only_when_the_line_is_exactly_the_result() {
        for (values, version) in [
            (&["canary-version=v2"][..], "v2"),
            (&["a=1,canary-version=v2"], "v2"),
            (&["a=1,b=2,canary-version=v3"], "v3"),
            (&["canary-version=v1"], "v2"),
            (&["canary-version=v2,a=1"], "v2"),
            (&["a=1, canary-version=v2"], "v2"),
            (&["a=1,canary-version=v2", "b=2"], "v2"),
            (&["canary-version=v2", ""], "v2"),
            (&["canary-version=v22"], "v2"),
            (&["canary-version=v"], "v2"),
            (&[""], "v2"),
            (&[], "v2"),
        ] {
            rewrite(values, version);
        }
        assert!(is_current(b"a=1,canary-version=v2", "v2"));
        assert!(!is_current(b"a=1,canary-version=v2,", "v2"));
        assert!(!is_current(b"a=1,canary-version=v2x", "v2"));
    }

    #[test]
    fn long_values_are_built_on_the_heap_alike() {
        let long = format!("a={}", "x".repeat(STACK_VALUE));
        for len in [
            STACK_VALUE - 20,
            STACK_VALUE - 17,
            STACK_VALUE - 16,
            STACK_VALUE,
        ] {
            let member = &long[..len];
            assert_eq!(
                rewrite(&[member], "v2"),
                format!("{member},canary-version=v2")
            );
        }
    }
}
