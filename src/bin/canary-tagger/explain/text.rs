//! An explanation for people: the text `explain` prints without `--json`.

use canary_tagger::config::{Action, ClientIpMode, CompiledConfig};
use canary_tagger::engine::{ClientTag, RuleOutcome};
use canary_tagger::net::ClientIpSource;

use super::report::{
    ClientTagOut, DecidedByOut, Explanation, HeaderOut, KeyKind, NormalizedOut, RuleStep, SplitOut,
    StickyStatus,
};

/// The explanation for people.
pub fn render_text(config: &CompiledConfig, explained: &Explanation) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("version:     {}", explained.version));
    line(format!(
        "decided by:  {}",
        decided_by_text(config, &explained.decided_by)
    ));
    rule_lines(&mut line, &explained.rules);
    if let Some(split) = &explained.split {
        split_lines(&mut line, split, &explained.version);
    }
    line(format!(
        "client ip:   {} ({})",
        explained.client_ip.as_deref().unwrap_or("unknown"),
        client_ip_source_text(config, explained.client_ip_source)
    ));
    line(format!(
        "client tag:  {}",
        client_tag_text(config, &explained.client_tag)
    ));
    match explained.client_baggage {
        ClientTag::Absent => {}
        ClientTag::Kept => line("client baggage: canary-version member kept (with the tag)".into()),
        ClientTag::Stripped => line(
            "client baggage: canary-version member stripped (only a trusted, kept tag keeps it)"
                .into(),
        ),
    }
    normalized_lines(&mut line, &explained.normalized);
    header_lines(
        &mut line,
        &explained.request_headers,
        &explained.request_headers_removed,
        &explained.response_headers,
    );
    out
}

/// `rules[0] "beta users" (split)`, or what decided when no rule did.
fn decided_by_text(config: &CompiledConfig, decided_by: &DecidedByOut) -> String {
    match decided_by {
        DecidedByOut::Rule { index, name } => {
            let action = match config.rules.get(*index).map(|r| &r.action) {
                Some(Action::Fixed(_)) => "version",
                Some(Action::VersionFrom(_)) => "version_from",
                Some(Action::Split(_)) => "split",
                None => "?",
            };
            format!("rules[{index}] \"{name}\" ({action})")
        }
        DecidedByOut::Default => "default_version (no rule matched)".to_string(),
        DecidedByOut::TrustedClientTag => {
            "the client's tag header (trusted source, known version; no rule ran)".to_string()
        }
    }
}

/// Each rule evaluated and what came of it (nothing when no rule ran).
fn rule_lines(line: &mut impl FnMut(String), rules: &[RuleStep]) {
    if rules.is_empty() {
        return;
    }
    line("rules:".into());
    for step in rules {
        let result = match step.result {
            RuleOutcome::NoMatch => "no match".to_string(),
            RuleOutcome::Decided => "matched, decided".to_string(),
            RuleOutcome::NoVersion => format!(
                "matched, but {}; next rule",
                step.note.as_deref().unwrap_or("no version")
            ),
        };
        line(format!("  rules[{}] {}: {result}", step.index, step.name));
    }
}

/// The split that decided: its sticky cookie, key, bucket and ranges, and its ramp.
fn split_lines(line: &mut impl FnMut(String), split: &SplitOut, version: &str) {
    if let Some(sticky) = &split.sticky_cookie {
        let verdict = match (sticky.status, &sticky.key_id, sticky.reason) {
            (StickyStatus::Verified, Some(kid), _) => {
                format!("verified with key {kid:?}; its ID is hashed")
            }
            (StickyStatus::Rejected, _, Some(reason)) => format!(
                "rejected ({reason}): treated as no sticky cookie (counted in sticky_id_rejected)"
            ),
            _ => "hashed as sent (no signing)".to_string(),
        };
        line(format!("sticky:      {:?} {verdict}", sticky.value));
    }
    let key = match (split.key_kind, &split.key, &split.value) {
        (KeyKind::Key, Some(key), Some(value)) => format!(
            "{key} = {value:?} (split.key[{}])",
            split.key_index.unwrap_or_default()
        ),
        (KeyKind::StickyCookie, Some(key), Some(value)) => {
            format!("{key} = {value:?} (the sticky cookie)")
        }
        (KeyKind::NewStickyId, Some(key), Some(value)) => {
            format!("none of split.key present; a new sticky id is issued: {key} = {value:?}")
        }
        _ => {
            "none of split.key present and no sticky_cookie: random bucket, not sticky".to_string()
        }
    };
    line(format!("split key:   {key}"));
    let ranges: Vec<String> = split
        .ranges
        .iter()
        .map(|r| format!("{} {}-{}", r.version, r.first, r.last))
        .collect();
    line(format!(
        "bucket:      {} of 0-9999 (salt {:?}) -> {}; ranges: {}",
        split.bucket,
        split.salt,
        version,
        ranges.join(", ")
    ));
    if let Some(ramp) = &split.ramp {
        line(format!(
            "ramp:        {}% at {} ({}); {}",
            ramp.percent,
            ramp.at,
            ramp.phase.words(),
            ramp.schedule
        ));
    }
}

/// Where the client address came from, in words.
fn client_ip_source_text(config: &CompiledConfig, source: ClientIpSource) -> String {
    match source {
        ClientIpSource::Peer => "peer address".to_string(),
        ClientIpSource::ForwardedFor => match config.client_ip {
            ClientIpMode::ForwardedFor { trusted_hops } => format!(
                "x-forwarded-for, {trusted_hops} trusted hop{}",
                if trusted_hops == 1 { "" } else { "s" }
            ),
            ClientIpMode::Peer => "x-forwarded-for".to_string(),
        },
        ClientIpSource::PeerAfterXffFallback => {
            "peer address: x-forwarded-for has too few entries, or a malformed one, at the trusted position"
                .to_string()
        }
        ClientIpSource::Unknown | ClientIpSource::NotNeeded => {
            "no peer address (give --ip)".to_string()
        }
    }
}

/// The tag the client sent and its fate: `"v2" stripped: client ... is not in ...`.
fn client_tag_text(config: &CompiledConfig, tag: &ClientTagOut) -> String {
    let sent = |status: &str| {
        let values: Vec<String> = tag.values.iter().map(|v| format!("{v:?}")).collect();
        format!(
            "{} {status}: {}",
            values.join(", "),
            tag.reason.as_deref().unwrap_or("")
        )
    };
    match tag.status {
        ClientTag::Absent => format!("none sent ({})", config.tag_header),
        ClientTag::Kept => sent("kept"),
        ClientTag::Stripped => sent("stripped"),
    }
}

/// The headers `normalize` rewrote, from the client's values to the default.
fn normalized_lines(line: &mut impl FnMut(String), normalized: &[NormalizedOut]) {
    if normalized.is_empty() {
        line("normalized:  none".into());
        return;
    }
    line("normalized:".into());
    for n in normalized {
        let from = if n.from.is_empty() {
            "missing".to_string()
        } else {
            n.from
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        line(format!(
            "  {}: {from} -> {:?} (normalize[{}])",
            n.header, n.to, n.index
        ));
    }
}

/// The headers a decision sets, removes and adds, as `explain`'s text shows them (gateway
/// and sidecar mode alike).
pub fn header_lines(
    line: &mut impl FnMut(String),
    set: &[HeaderOut],
    removed: &[String],
    added: &[HeaderOut],
) {
    line("request headers set:".into());
    for header in set {
        line(format!("  {}: {}", header.name, header.value));
    }
    if !removed.is_empty() {
        line(format!("request headers removed: {}", removed.join(", ")));
    }
    if added.is_empty() {
        line("response headers added: none".into());
    } else {
        line("response headers added:".into());
        for header in added {
            line(format!("  {}: {}", header.name, header.value));
        }
    }
}
