//! What must hold of a decision: its invariants whatever the config and request
//! ([`check_invariants`]), the steps [`canary_tagger::engine::decide_observed`] reports ([`Steps`],
//! [`check_steps`]), and the request and response after its effects ([`check_effects`]).

use canary_tagger::config::{Action, CompiledConfig, VersionId};
use canary_tagger::effects::{HeaderWriter, SetMode};
use canary_tagger::engine::{
    ClientTag, DecidedBy, Decision, NormalizeCheck, Observer, RuleOutcome, SplitKey, TagCheck,
};
use canary_tagger::hash::BUCKETS;
use canary_tagger::net::ClientIpSource;
use canary_tagger::request::{OwnedRequest, RequestView};

/// What must hold of every decision, whatever the config and request.
pub fn check_invariants(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    if decision.version.index() >= config.versions().len() {
        return fail("version index out of range");
    }
    if decision
        .normalized
        .iter()
        .any(|i| i >= config.normalize.len())
    {
        return fail("normalized index out of range");
    }
    if (decision.client_tag == ClientTag::Kept)
        != (decision.decided_by == DecidedBy::TrustedClientTag)
    {
        return fail("a kept tag and TrustedClientTag go together");
    }
    let no_address = matches!(
        decision.client_ip_source,
        ClientIpSource::Unknown | ClientIpSource::NotNeeded
    );
    if decision.client_ip.is_none() != no_address {
        return fail("no client address iff its source is Unknown or NotNeeded");
    }
    check_split_and_sticky_id(config, decision)?;
    check_decided_by(config, decision)
}

/// The split's bucket, and a sticky id issued exactly when a split asked for a new one.
fn check_split_and_sticky_id(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    if let Some(split) = decision.split {
        if split.bucket >= BUCKETS {
            return fail("bucket out of range");
        }
        if (split.key == SplitKey::NewStickyId) != decision.sticky_id.is_some() {
            return fail("a sticky id is issued iff the split key is NewStickyId");
        }
        if split.key == SplitKey::NewStickyId && config.sticky_cookie.is_none() {
            return fail("sticky id without a sticky cookie configured");
        }
    } else if decision.sticky_id.is_some() {
        return fail("sticky id without a split");
    }
    if let Some(id) = decision.sticky_id {
        let text = id.as_str();
        if text.len() != 32
            || !text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return fail("sticky id is not 32 lower-case hex digits");
        }
    }
    Ok(())
}

/// What decided agrees with the version and the split outcome.
fn check_decided_by(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {decision:?}"));
    match decision.decided_by {
        DecidedBy::Default => {
            if decision.version != config.default_version || decision.split.is_some() {
                return fail("Default decides default_version without a split");
            }
        }
        DecidedBy::TrustedClientTag => {
            if decision.split.is_some() {
                return fail("a kept tag runs no split");
            }
        }
        DecidedBy::Rule(index) => {
            let Some(rule) = config.rules.get(index) else {
                return fail("rule index out of range");
            };
            match &rule.action {
                Action::Fixed(version) if *version != decision.version => {
                    return fail("a fixed rule decided another version")
                }
                Action::Split(split) => {
                    let Some(outcome) = decision.split else {
                        return fail("a split rule decided without a split outcome");
                    };
                    if split.version_for(outcome.bucket) != Some(decision.version) {
                        return fail("the version is not the one of the bucket's range");
                    }
                }
                Action::Fixed(_) | Action::VersionFrom(_) if decision.split.is_some() => {
                    return fail("a split outcome from a rule without split")
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every step [`canary_tagger::engine::decide_observed`] reports.
#[derive(Default, Debug)]
pub struct Steps {
    client_tag: Vec<TagCheck>,
    normalize: Vec<(usize, NormalizeCheck)>,
    rules: Vec<(usize, RuleOutcome)>,
    splits: Vec<(usize, SplitKey, u16)>,
}

impl Observer for Steps {
    fn client_tag(&mut self, check: TagCheck) {
        self.client_tag.push(check);
    }

    fn normalize(&mut self, index: usize, check: NormalizeCheck) {
        self.normalize.push((index, check));
    }

    fn version_from_value(&mut self, _rule: usize, _value: &[u8], _version: Option<VersionId>) {}

    fn split_hashed(&mut self, rule: usize, key: SplitKey, _hashed: Option<&[u8]>, bucket: u16) {
        self.splits.push((rule, key, bucket));
    }

    fn rule(&mut self, index: usize, outcome: RuleOutcome) {
        self.rules.push((index, outcome));
    }
}

/// The steps say what the decision says: one client tag check, every `normalize` entry in
/// order, the rules in order up to the one that decided, and the split it hashed.
pub fn check_steps(
    config: &CompiledConfig,
    decision: &Decision,
    steps: &Steps,
) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {steps:?}"));
    if steps
        .client_tag
        .iter()
        .map(|check| check.outcome())
        .ne([decision.client_tag])
    {
        return fail("one client tag check, with the decision's outcome");
    }
    if !steps
        .normalize
        .iter()
        .map(|(i, _)| *i)
        .eq(0..config.normalize.len())
    {
        return fail("every normalize entry checked, in order");
    }
    let rewritten = steps.normalize.iter().filter(|(_, check)| check.rewrites());
    if !rewritten.map(|(i, _)| *i).eq(decision.normalized.iter()) {
        return fail("the rewriting checks are the decision's normalized set");
    }
    if !steps.rules.iter().map(|(i, _)| *i).eq(0..steps.rules.len()) {
        return fail("rules evaluated in order, none skipped");
    }
    let decided: Vec<usize> = steps
        .rules
        .iter()
        .filter(|(_, outcome)| *outcome == RuleOutcome::Decided)
        .map(|(i, _)| *i)
        .collect();
    match decision.decided_by {
        DecidedBy::TrustedClientTag if !steps.rules.is_empty() => {
            return fail("no rule runs for a kept tag")
        }
        DecidedBy::Default if steps.rules.len() != config.rules.len() || !decided.is_empty() => {
            return fail("the default comes after every rule failed")
        }
        DecidedBy::Rule(index) if decided != [index] || steps.rules.len() != index + 1 => {
            return fail("the trace ends at the deciding rule")
        }
        _ => {}
    }
    let expected_split = decision.split.map(|outcome| {
        let DecidedBy::Rule(index) = decision.decided_by else {
            return (usize::MAX, outcome.key, outcome.bucket);
        };
        (index, outcome.key, outcome.bucket)
    });
    if steps.splits.iter().copied().ne(expected_split) {
        return fail("the split hashed is the decision's");
    }
    Ok(())
}

/// A header map as Envoy holds it, written by the effects. An add never lands on a header
/// that is already there (it would make a second line).
struct Headers(Vec<(String, Vec<u8>)>);

impl HeaderWriter for Headers {
    fn add(&mut self, name: &str, value: &[u8]) {
        assert!(
            !self.0.iter().any(|(n, _)| n == name),
            "a plain add of {name}, which is present"
        );
        self.0.push((name.to_string(), value.to_vec()));
    }

    fn replace(&mut self, name: &str, value: &[u8]) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value.to_vec()));
    }

    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }
}

impl Headers {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// SPEC §12: with `tracestate` on and a valid `traceparent`, `tracestate` is one valid line,
/// `canary=<version>` first and only there, at most 32 members; otherwise a client's
/// `canary` member survives only along with a kept tag.
fn check_tracestate(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    use canary_tagger::trace_context;
    let rewritten = config.tag_header == "tracestate"
        || decision
            .normalized
            .iter()
            .any(|index| config.normalize[index].header == "tracestate");
    if rewritten {
        return Ok(());
    }
    let lines = headers.values("tracestate");
    let ours = |line: &&[u8]| {
        line.split(|&b| b == b',')
            .filter(|m| m.split(|&b| b == b'=').next().unwrap().trim_ascii() == b"canary")
            .count()
    };
    let traced = trace_context::has_valid_traceparent(request.header_values("traceparent"));
    if config.tracestate && traced {
        let version = config.version_name(decision.version);
        let [line] = lines.as_slice() else {
            return Err("tracestate is one line".into());
        };
        let members: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        let first = format!("canary={version}");
        if members[0] != first.as_bytes() || ours(line) != 1 || members.len() > 32 {
            return Err(format!(
                "tracestate starts with {first}, once, at most 32 members"
            ));
        }
        if !members.iter().all(|m| trace_context::is_valid_member(m)) {
            return Err("tracestate holds an invalid member".into());
        }
    } else if decision.client_tag != ClientTag::Kept
        && trace_context::has_version_member(lines.iter().copied())
    {
        return Err("a client's canary member was left in tracestate".into());
    }
    Ok(())
}

/// The request after the effects: the tag header and `baggage` have exactly one line naming
/// the version, each rewritten header exactly its default, nothing else changed; nothing is
/// written that is already so. The response gets the sticky cookie and the version.
pub fn check_effects(
    config: &CompiledConfig,
    request: &OwnedRequest,
    decision: &Decision,
) -> Result<(), String> {
    let version = config.version_name(decision.version);
    let mut headers = Headers(request.headers().to_vec());
    let mut written = Vec::new();
    for effect in decision.request_effects(config, request) {
        let value = effect.value(request);
        let is_noop = headers.values(effect.name) == [value.as_ref()];
        if effect.mode == SetMode::Unchanged && !is_noop {
            return Err(format!(
                "{effect:?}: left unchanged, but it is not that yet"
            ));
        }
        // A client's stripped tag is written even when it names the decided version.
        if effect.name == "baggage" && is_noop && effect.mode != SetMode::Unchanged {
            return Err(format!(
                "{effect:?}: baggage already current, written again"
            ));
        }
        effect.apply(request, &mut headers);
        written.push(effect.name);
    }
    if headers.values(&config.tag_header) != [version.as_bytes()] {
        return Err("the tag header is one line naming the version".into());
    }
    check_baggage(config, decision, &headers)?;
    check_tracestate(config, request, decision, &headers)?;
    check_normalized(config, decision, &headers)?;
    let untouched = |(name, _): &&(String, Vec<u8>)| !written.contains(&name.as_str());
    if !request
        .headers()
        .iter()
        .filter(untouched)
        .eq(headers.0.iter().filter(untouched))
    {
        return Err("a header no effect names was changed".into());
    }
    check_response_effects(config, decision)
}

/// `baggage` after the effects: with `"baggage": true` one line ending with our member,
/// once; otherwise no client's member left unless its tag was kept (SPEC §7).
fn check_baggage(
    config: &CompiledConfig,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    let version = config.version_name(decision.version);
    if config.baggage {
        let lines = headers.values("baggage");
        let expected_last = format!("canary-version={version}");
        let members: Vec<&[u8]> = match lines.as_slice() {
            [line] => line.split(|&b| b == b',').collect(),
            _ => return Err("baggage is one line".into()),
        };
        let ours = members
            .iter()
            .filter(|m| m.starts_with(b"canary-version"))
            .count();
        if members.last() != Some(&expected_last.as_bytes()) || ours != 1 {
            return Err(format!("baggage ends with {expected_last}, once"));
        }
    }
    // SPEC §7: a client's `canary-version` member survives only along with a kept tag.
    let rewrites_baggage = config.tag_header == "baggage"
        || decision
            .normalized
            .iter()
            .any(|index| config.normalize[index].header == "baggage");
    if !config.baggage && !rewrites_baggage && decision.client_tag != ClientTag::Kept {
        let members = canary_tagger::baggage::members(headers.values("baggage").into_iter());
        if members.ours {
            return Err("a client's canary-version member was left in baggage".into());
        }
    }
    Ok(())
}

/// Each normalized header is exactly the default of the last entry naming it.
fn check_normalized(
    config: &CompiledConfig,
    decision: &Decision,
    headers: &Headers,
) -> Result<(), String> {
    for index in decision.normalized.iter() {
        let header = &config.normalize[index].header;
        let last_default = decision
            .normalized
            .iter()
            .map(|i| &config.normalize[i])
            .filter(|entry| entry.header == *header)
            .last()
            .map(|entry| entry.default.as_bytes());
        if headers.values(header) != [last_default.unwrap()] {
            return Err(format!("{header} is exactly its default"));
        }
    }
    Ok(())
}

/// The response effects: the sticky id's `Set-Cookie`, then the response header, no more.
fn check_response_effects(config: &CompiledConfig, decision: &Decision) -> Result<(), String> {
    let version = config.version_name(decision.version);
    let response: Vec<(String, String)> = decision
        .response_effects(config)
        .map(|effect| {
            let value = String::from_utf8(effect.value().into_owned()).unwrap();
            (effect.name.to_string(), value)
        })
        .collect();
    let mut expected = Vec::new();
    if let (Some(id), Some(sticky)) = (decision.sticky_id, &config.sticky_cookie) {
        expected.push(("set-cookie".to_string(), sticky.set_cookie(id.as_str())));
    }
    if let Some(header) = &config.response_header {
        expected.push((header.clone(), version.to_string()));
    }
    if response != expected {
        return Err(format!(
            "response effects {response:?}, expected {expected:?}"
        ));
    }
    Ok(())
}
