//! The W3C `baggage` header: add or replace our `canary-version` member, keep the others.

/// The baggage member key that carries the version.
pub const MEMBER_KEY: &str = "canary-version";

/// The new `baggage` value given the request's existing values (several headers are one
/// comma-separated list). Empty members are dropped; other members are kept verbatim.
pub fn with_version<'a>(existing: impl Iterator<Item = &'a [u8]>, version: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for value in existing {
        for member in value.split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() || is_version_member(member) {
                continue;
            }
            out.extend_from_slice(member);
            out.push(b',');
        }
    }
    out.extend_from_slice(MEMBER_KEY.as_bytes());
    out.push(b'=');
    out.extend_from_slice(version.as_bytes());
    out
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
        String::from_utf8(with_version(values.iter().map(|v| v.as_bytes()), version)).unwrap()
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
}
