//! The request, the seed and the moment `explain` runs, from its flags.

use canary_tagger::net;
use canary_tagger::ramp::{parse_rfc3339_utc, UnixSeconds};
use canary_tagger::request::OwnedRequest;

use crate::args::{ExplainArgs, UsageError};

/// The request `explain` runs, built from the flags.
pub fn request_from(parsed: &ExplainArgs) -> Result<(OwnedRequest, u64), UsageError> {
    let mut headers: Vec<(String, String)> = vec![
        (
            ":method".into(),
            parsed.method.as_deref().unwrap_or("GET").into(),
        ),
        (":path".into(), parsed.path.as_deref().unwrap_or("/").into()),
    ];
    if let Some(host) = &parsed.host {
        headers.push((":authority".into(), host.clone()));
    }
    for text in &parsed.header {
        let (name, value) = header_arg(text)?;
        if name.starts_with(':') {
            // A pseudo-header replaces the default.
            headers.retain(|(existing, _)| *existing != name);
        }
        headers.push((name, value));
    }
    let cookies = &parsed.cookie;
    for cookie in cookies {
        if !cookie.contains('=') {
            return Err(UsageError(format!(
                "explain: --cookie expects NAME=VALUE, got {cookie:?}"
            )));
        }
    }
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.join("; ")));
    }
    for xff in &parsed.xff {
        headers.push(("x-forwarded-for".into(), xff.clone()));
    }
    let mut request = headers
        .into_iter()
        .fold(OwnedRequest::new(), |request, (name, value)| {
            request.header(&name, value)
        });
    if let Some(ip) = &parsed.ip {
        if net::parse_address(ip.as_bytes()).is_none() {
            return Err(UsageError(format!(
                "explain: --ip {ip:?} is not an address (203.0.113.7, 203.0.113.7:51000, 2001:db8::1 or [2001:db8::1]:443)"
            )));
        }
        request = request.peer(ip);
    }
    let seed = match &parsed.seed {
        None => 0,
        Some(text) => parse_seed(text).ok_or_else(|| {
            UsageError(format!(
                "explain: --seed {text:?} is not a number (decimal, or hex with 0x)"
            ))
        })?,
    };
    Ok((request, seed))
}

/// `NAME: VALUE` (`:authority: example.com` for a pseudo-header); `Host` is Envoy's
/// `:authority`.
fn header_arg(text: &str) -> Result<(String, String), UsageError> {
    // `NAME: VALUE`, or `NAME=VALUE` (`baggage=canary-version=v2`): a header name holds
    // neither character, so whichever comes first ends it.
    let search_from = usize::from(text.starts_with(':'));
    let colon = text
        .get(search_from..)
        .and_then(|rest| rest.find([':', '=']))
        .map(|at| at + search_from);
    let parts = colon.and_then(|at| Some((text.get(..at)?, text.get(at + 1..)?)));
    let valid = |name: &str| canary_tagger::http::is_token(name.strip_prefix(':').unwrap_or(name));
    match parts {
        Some((name, value)) if valid(name.trim()) => {
            let name = name.trim().to_ascii_lowercase();
            let name = if name == "host" {
                ":authority".to_string()
            } else {
                name
            };
            Ok((name, value.trim().to_string()))
        }
        _ => Err(UsageError(format!(
            "explain: --header expects 'NAME: VALUE', got {text:?}"
        ))),
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// 128 bits of entropy from a 64-bit seed (SplitMix64, twice).
pub fn entropy_from_seed(seed: u64) -> u128 {
    let mix = |state: u64| {
        let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = mix(seed);
    let low = mix(high);
    (u128::from(high) << 64) | u128::from(low)
}

/// `--at`, or now: the second the ramps are explained at.
pub fn at_from(parsed: &ExplainArgs) -> Result<UnixSeconds, UsageError> {
    match &parsed.at {
        Some(text) => parse_rfc3339_utc(text).map_err(|error| {
            let reason = canary_tagger::config::ErrorKind::InvalidTime {
                text: text.to_string(),
                error,
            };
            UsageError(format!("explain: --at {reason}"))
        }),
        None => Ok(now()),
    }
}

/// The system clock in whole seconds since the Unix epoch.
pub fn now() -> UnixSeconds {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    UnixSeconds::try_from(since_epoch).unwrap_or(UnixSeconds::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_arguments() {
        let ok = |text: &str| header_arg(text).unwrap();
        assert_eq!(
            ok("User-Agent: Chrome/1"),
            ("user-agent".into(), "Chrome/1".into())
        );
        assert_eq!(ok("x-empty:"), ("x-empty".into(), String::new()));
        assert_eq!(ok(":path: /a?b=c"), (":path".into(), "/a?b=c".into()));
        assert_eq!(
            ok("Host: example.com"),
            (":authority".into(), "example.com".into())
        );
        assert_eq!(ok("x: a: b"), ("x".into(), "a: b".into()));
        assert_eq!(
            ok("baggage=canary-version=v2"),
            ("baggage".into(), "canary-version=v2".into())
        );
        assert_eq!(ok("x: a=b"), ("x".into(), "a=b".into()));
        for bad in ["no colon", ": v", "bad name: v", ":: v", ""] {
            assert!(header_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeds() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0xff"), Some(255));
        assert_eq!(parse_seed("-1"), None);
        assert_ne!(entropy_from_seed(0), 0);
        assert_ne!(entropy_from_seed(0), entropy_from_seed(1));
    }
}
