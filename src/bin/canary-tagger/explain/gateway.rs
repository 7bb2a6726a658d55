//! A gateway configuration's decision, traced step by step through the engine's observer
//! ([`engine::decide_observed`]) into an [`Explanation`].

use std::net::IpAddr;

use canary_tagger::config::{Action, CompiledConfig, Split, VersionId};
use canary_tagger::effects::SetMode;
use canary_tagger::engine::{
    self, DecidedBy, Decision, NormalizeCheck, Observer, RuleOutcome, SplitKey, StickyCheck,
    TagCheck,
};
use canary_tagger::net::ClientIpSource;
use canary_tagger::ramp::UnixSeconds;
use canary_tagger::request::{OwnedRequest, RequestView};

use super::ramp::ramp_out;
use super::report::{
    ClientTagOut, DecidedByOut, Explanation, HeaderOut, KeyKind, NormalizedOut, RangeOut, RuleStep,
    SplitOut, StickyCookieOut, StickyStatus,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The engine's steps as [`engine::decide_observed`] reports them.
#[derive(Default)]
struct Trace {
    client_tag: Option<TagCheck>,
    /// `normalize` entries that rewrote their header.
    normalized: Vec<usize>,
    rules: Vec<(usize, RuleOutcome)>,
    /// The first value each `version_from` rule read, by rule index.
    version_from_first: Vec<(usize, Vec<u8>)>,
    /// The split's key and the bytes it hashed (`None`: a random bucket).
    split: Option<(SplitKey, Option<Vec<u8>>)>,
    /// The sticky cookie the split judged, and how.
    sticky_cookie: Option<(Vec<u8>, StickyCheck)>,
}

impl Observer for Trace {
    fn client_tag(&mut self, check: TagCheck) {
        self.client_tag = Some(check);
    }

    fn normalize(&mut self, index: usize, check: NormalizeCheck) {
        if check.rewrites() {
            self.normalized.push(index);
        }
    }

    fn version_from_value(&mut self, rule: usize, value: &[u8], _version: Option<VersionId>) {
        if !self.version_from_first.iter().any(|(r, _)| *r == rule) {
            self.version_from_first.push((rule, value.to_vec()));
        }
    }

    fn split_hashed(&mut self, _rule: usize, key: SplitKey, hashed: Option<&[u8]>, _bucket: u16) {
        self.split = Some((key, hashed.map(<[u8]>::to_vec)));
    }

    fn rule(&mut self, index: usize, outcome: RuleOutcome) {
        self.rules.push((index, outcome));
    }

    fn sticky_cookie(&mut self, _rule: usize, value: &[u8], check: StickyCheck) {
        self.sticky_cookie = Some((value.to_vec(), check));
    }
}

/// `config`'s ramps must be set to `at` ([`CompiledConfig::set_time`]).
pub fn explain(
    config: &CompiledConfig,
    request: &OwnedRequest,
    entropy: u128,
    at: UnixSeconds,
) -> Explanation {
    let mut trace = Trace::default();
    let decision = engine::decide_observed(config, request, entropy, &mut trace);
    // The filter resolves the client IP only when the decision consults it; explain shows
    // it either way.
    let (client_ip, client_ip_source) = match decision.client_ip_source {
        ClientIpSource::NotNeeded => engine::client_ip(config, request),
        source => (decision.client_ip, source),
    };
    let decided_by = match decision.decided_by {
        DecidedBy::Rule(index) => DecidedByOut::Rule {
            index,
            name: rule_name(config, index),
        },
        DecidedBy::Default => DecidedByOut::Default,
        DecidedBy::TrustedClientTag => DecidedByOut::TrustedClientTag,
    };
    let (request_headers, request_headers_removed, response_headers) =
        headers_out(config, request, &decision);
    Explanation {
        version: config.version_name(decision.version).to_string(),
        decided_by,
        rules: rule_steps(config, &trace),
        split: split_out(config, &decision, &trace, at),
        client_ip: client_ip.map(|ip| ip.to_string()),
        client_ip_source,
        client_tag: client_tag_out(config, request, &decision, &trace, client_ip),
        client_baggage: decision.client_baggage,
        normalized: normalized_out(config, request, &trace),
        request_headers,
        request_headers_removed,
        response_headers,
        sticky_id: decision.sticky_id.map(|id| id.as_str().to_string()),
    }
}

fn rule_name(config: &CompiledConfig, index: usize) -> String {
    config
        .rules
        .get(index)
        .map(|rule| rule.name.clone())
        .unwrap_or_default()
}

/// The rules evaluated, in order, and why a matched one found no version.
fn rule_steps(config: &CompiledConfig, trace: &Trace) -> Vec<RuleStep> {
    trace
        .rules
        .iter()
        .map(|&(index, result)| RuleStep {
            index,
            name: rule_name(config, index),
            result,
            note: (result == RuleOutcome::NoVersion)
                .then(|| no_version_note(config, trace, index))
                .flatten(),
        })
        .collect()
}

/// The `normalize` entries that rewrote their header: the client's values and the default.
fn normalized_out(
    config: &CompiledConfig,
    request: &OwnedRequest,
    trace: &Trace,
) -> Vec<NormalizedOut> {
    trace
        .normalized
        .iter()
        .filter_map(|&index| {
            let entry = config.normalize.get(index)?;
            Some(NormalizedOut {
                index,
                header: entry.header.clone(),
                from: request.header_values(&entry.header).map(text).collect(),
                to: entry.default.clone(),
            })
        })
        .collect()
}

/// The decision's header effects: request headers set, request headers removed, response
/// headers added.
fn headers_out(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
) -> (Vec<HeaderOut>, Vec<String>, Vec<HeaderOut>) {
    let (removed, set): (Vec<_>, Vec<_>) = decision
        .request_effects(config, request)
        .partition(|effect| effect.mode == SetMode::Remove);
    let request_headers = set
        .iter()
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value(request)),
        })
        .collect();
    let request_headers_removed = removed
        .iter()
        .map(|effect| effect.name.to_string())
        .collect();
    let response_headers = decision
        .response_effects(config)
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value()),
        })
        .collect();
    (request_headers, request_headers_removed, response_headers)
}

/// Why `rules[index]`, a `version_from` rule that matched, found no version.
fn no_version_note(config: &CompiledConfig, trace: &Trace, index: usize) -> Option<String> {
    let Action::VersionFrom(source) = &config.rules.get(index)?.action else {
        return None;
    };
    let first = trace
        .version_from_first
        .iter()
        .find(|(rule, _)| *rule == index);
    Some(match first {
        Some((_, value)) => format!("{source} is {:?}, not one of the versions", text(value)),
        None => format!("{source} is absent"),
    })
}

fn split_out(
    config: &CompiledConfig,
    decision: &Decision,
    trace: &Trace,
    at: UnixSeconds,
) -> Option<SplitOut> {
    let outcome = decision.split?;
    let DecidedBy::Rule(index) = decision.decided_by else {
        return None;
    };
    let Action::Split(split) = &config.rules.get(index)?.action else {
        return None;
    };
    let (key_kind, key, key_index) = key_out(config, split, outcome.key);
    Some(SplitOut {
        key_kind,
        key,
        key_index,
        value: trace
            .split
            .as_ref()
            .and_then(|(_, hashed)| hashed.as_deref())
            .map(text),
        salt: split.salt.clone(),
        bucket: outcome.bucket,
        ranges: ranges_out(config, split),
        sticky_cookie: trace
            .sticky_cookie
            .as_ref()
            .map(|(value, check)| sticky_cookie_out(config, value, *check)),
        ramp: ramp_out(config, split, at),
    })
}

/// What the split hashed: the kind of key, its source and its index into `split.key`.
fn key_out(
    config: &CompiledConfig,
    split: &Split,
    key: SplitKey,
) -> (KeyKind, Option<String>, Option<usize>) {
    let sticky_cookie = || {
        config
            .sticky_cookie
            .as_ref()
            .map(|sticky| format!("cookie:{}", sticky.name))
    };
    match key {
        SplitKey::StickyCookie => (KeyKind::StickyCookie, sticky_cookie(), None),
        SplitKey::Key(key_index) => (
            KeyKind::Key,
            split.keys.get(key_index).map(ToString::to_string),
            Some(key_index),
        ),
        SplitKey::NewStickyId => (KeyKind::NewStickyId, sticky_cookie(), None),
        SplitKey::Random => (KeyKind::Random, None, None),
    }
}

/// Each version's buckets, first and last inclusive (a version with none left out).
fn ranges_out(config: &CompiledConfig, split: &Split) -> Vec<RangeOut> {
    let mut start = 0u16;
    let mut ranges = Vec::new();
    for (end, version) in split.ranges() {
        if end > start {
            ranges.push(RangeOut {
                version: config.version_name(version).to_string(),
                first: start,
                last: end - 1,
            });
        }
        start = end;
    }
    ranges
}

/// How the split judged the sticky cookie the request carried.
fn sticky_cookie_out(config: &CompiledConfig, value: &[u8], check: StickyCheck) -> StickyCookieOut {
    let keys = config
        .sticky_cookie
        .as_ref()
        .and_then(|s| s.signing.as_ref());
    let (status, key_id, reason) = match check {
        StickyCheck::AsSent => (StickyStatus::AsSent, None, None),
        StickyCheck::Verified { key } => (
            StickyStatus::Verified,
            keys.and_then(|keys| keys.kids().nth(key))
                .map(str::to_string),
            None,
        ),
        StickyCheck::Rejected(rejection) => {
            (StickyStatus::Rejected, None, Some(rejection.as_str()))
        }
    };
    StickyCookieOut {
        value: text(value),
        status,
        key_id,
        reason,
    }
}

fn client_tag_out(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
    trace: &Trace,
    client_ip: Option<IpAddr>,
) -> ClientTagOut {
    let values: Vec<String> = request
        .header_values(&config.tag_header)
        .map(text)
        .collect();
    let reason = match trace.client_tag {
        None | Some(TagCheck::Absent) => None,
        Some(TagCheck::Kept) => {
            Some("sent from trusted_tag_sources and names a known version".to_string())
        }
        Some(TagCheck::NotAVersion) => Some(format!(
            "{:?} is not one of the versions",
            values.first().map(String::as_str).unwrap_or_default()
        )),
        Some(TagCheck::UntrustedSource) => Some(match client_ip {
            Some(ip) => format!("client {ip} is not in trusted_tag_sources"),
            None => "the client address is unknown".to_string(),
        }),
        Some(TagCheck::Repeated) => Some(format!("sent {} times", values.len())),
    };
    ClientTagOut {
        status: decision.client_tag,
        values,
        reason,
    }
}
