//! `canary-tagger status`: where a gateway's requests went, from canary-tagger's own
//! counters (docs/metrics.md) and Envoy's per-cluster upstream stats — per version, per
//! rule, per kind of decision, each ramp, and the health of each version's upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use canary_tagger::metrics::{
    CLIENT_TAG_STRIPPED, CONFIG_REJECTED, DECIDED_BY, RAMP_PERCENT, REQUESTS, RESTORED, RULE,
    SOURCE, STICKY_ID_ISSUED, STICKY_ID_REJECTED, TRACE_MISSES, TRACE_REMEMBERED, VERSION,
};
use regex::Regex;
use serde::{Serialize, Serializer};

use crate::args::{StatusArgs, UsageError};
use crate::status_source::{base_url, ClusterStats, Snapshot, Source, SourceError};

pub const HELP: &str = "\
Usage: canary-tagger status (--admin URL | --prometheus URL | --stats FILE) [options]

Shows where a gateway's requests went, from canary-tagger's counters: per version its
requests and share, per rule the versions it sent requests to, how many were decided by a
rule, a split, the default or a trusted client's tag, each ramp's percent, the counters of
stripped tags, sticky ids and rejected configurations, sidecar restores; and per version
the health of its upstream from Envoy's own cluster stats (requests, 5xx, p99).

  --admin URL        a gateway's Envoy admin, e.g. http://127.0.0.1:15000 (reads
                     URL/stats/prometheus, filtered to the series shown here;
                     kubectl port-forward POD 15000)
  --prometheus URL   a Prometheus server that scrapes the gateways (its HTTP API): every
                     scraped gateway pod, summed
  --stats FILE       a saved /stats or /stats/prometheus page (`-` reads standard input):
                       kubectl exec POD -c istio-proxy -- curl -s localhost:15000/stats \\
                         | canary-tagger status --stats -
  --window DURATION  rates over this window (10s, 500ms, 2m) instead of totals: the admin
                     is read twice, DURATION apart; Prometheus is asked for now and for
                     DURATION ago (make it longer than the scrape interval)
  --json             the same as JSON: versions, rules, decided_by, ramps, counters,
                     restored, trace_misses, upstream
  --cluster-version REGEX
                     which cluster serves which version: the first capture group of REGEX
                     in the cluster's name. Default: Istio's names, outbound|PORT|SUBSET|HOST
                     (SUBSET is the version) and outbound|PORT||SERVICE-VERSION.NS.svc...

Only versions seen in canary-tagger's counters are shown. URLs are plain http.
Exit status: 0 shown, 2 a usage error or a source that cannot be read.
";

/// What `status` was asked.
pub struct Options {
    pub source: Source,
    pub window: Option<Duration>,
    pub json: bool,
    pub cluster_version: Option<Regex>,
}

pub fn options_from(parsed: &StatusArgs) -> Result<Options, UsageError> {
    if let Some(extra) = parsed.extra.first() {
        return Err(UsageError(format!(
            "status: unexpected argument {extra:?}; see `canary-tagger help status`"
        )));
    }
    let usage = |message: String| UsageError(format!("status: {message}"));
    let source = match (&parsed.admin, &parsed.prometheus, &parsed.stats) {
        (Some(url), None, None) => Source::Admin(admin_url(url).map_err(usage)?),
        (None, Some(url), None) => {
            Source::Prometheus(base_url("--prometheus", url).map_err(usage)?)
        }
        (None, None, Some(file)) => Source::Stats(file.clone()),
        _ => {
            return Err(usage(
                "give one of --admin URL, --prometheus URL or --stats FILE; \
                 see `canary-tagger help status`"
                    .into(),
            ))
        }
    };
    let window = parsed
        .window
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(usage)?;
    if window.is_some() && matches!(source, Source::Stats(_)) {
        return Err(usage(
            "--window needs --admin or --prometheus (a dump is one moment)".into(),
        ));
    }
    let cluster_version = match &parsed.cluster_version {
        None => None,
        Some(text) => Some(cluster_regex(text).map_err(usage)?),
    };
    Ok(Options {
        source,
        window,
        json: parsed.json,
        cluster_version,
    })
}

/// An admin URL, also given as its stats page (`…/stats/prometheus`, `…/stats`).
pub fn admin_url(url: &str) -> Result<String, String> {
    let base = base_url("--admin", url)?;
    let base = base.strip_suffix("/stats/prometheus").unwrap_or(&base);
    Ok(base.strip_suffix("/stats").unwrap_or(base).to_string())
}

fn cluster_regex(text: &str) -> Result<Regex, String> {
    let regex = Regex::new(text).map_err(|error| {
        let reason = error.to_string();
        let last = reason.lines().last().unwrap_or_default().trim().to_string();
        // The filter's regex engine, without Unicode tables (they would weigh on the module).
        let hint = if last.contains("Unicode") {
            " (\\d, \\w and \\s are not available: write [0-9], [A-Za-z0-9_], [ \\t])"
        } else {
            ""
        };
        format!("--cluster-version {text:?} is not a regex: {last}{hint}")
    })?;
    if regex.captures_len() < 2 {
        return Err(format!(
            "--cluster-version {text:?} has no capture group (the first one is the version)"
        ));
    }
    Ok(regex)
}

/// `10s`, `500ms`, `2m`, or seconds as a bare number; more than 0 and at most an hour.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("--window {text:?} is not a duration (10s, 500ms, 2m)");
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!(
            "--window {text:?} must be more than 0 and at most 1h"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Reads the source (twice with a window) and renders the report.
pub fn run(options: &Options) -> Result<String, SourceError> {
    let status = match (options.window, &options.source) {
        (None, source) => Status::new(&source.read(None)?, source, None, options),
        (Some(window), Source::Prometheus(_)) => {
            let before = options.source.read(Some(window))?;
            let after = options.source.read(None)?;
            let rates = rates(&before, &after, window);
            Status::new(&rates, &options.source, Some(window), options)
        }
        (Some(window), source) => {
            let before = source.read(None)?;
            let started = std::time::Instant::now();
            // The window itself: the admin is read again when it has passed.
            std::thread::sleep(window);
            let after = source.read(None)?;
            let rates = rates(&before, &after, started.elapsed());
            Status::new(&rates, source, Some(window), options)
        }
    };
    if options.json {
        serde_json::to_string_pretty(&status)
            .map(|json| format!("{json}\n"))
            .map_err(|error| SourceError(format!("cannot write JSON: {error}")))
    } else {
        Ok(render_text(&status))
    }
}

/// Per second between two snapshots: counters' increase, gauges' latest value. A counter
/// that went down (Envoy restarted) counts from zero.
pub fn rates(before: &Snapshot, after: &Snapshot, elapsed: Duration) -> Snapshot {
    let seconds = elapsed.as_secs_f64().max(0.001);
    let per_second = |now: f64, then: Option<f64>| {
        let then = then.unwrap_or_default();
        (if now >= then { now - then } else { now }) / seconds
    };
    let series = after
        .series
        .iter()
        .map(|(key, value)| {
            let rate = if key.0 == RAMP_PERCENT {
                *value
            } else {
                per_second(*value, before.series.get(key).copied())
            };
            (key.clone(), rate)
        })
        .collect();
    let clusters = after
        .clusters
        .iter()
        .map(|(name, stats)| {
            let then = before.clusters.get(name);
            let rate = ClusterStats {
                requests: per_second(stats.requests, then.map(|t| t.requests)),
                errors_5xx: per_second(stats.errors_5xx, then.map(|t| t.errors_5xx)),
                p99_ms: stats.p99_ms,
            };
            (name.clone(), rate)
        })
        .collect();
    Snapshot { series, clusters }
}

// ------------------------------------------------------------------------ the model

/// A count, or a rate: written as an integer when it is one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            // A whole number below 2^53: exact as an i64.
            #[allow(clippy::cast_possible_truncation)]
            return serializer.serialize_i64(value as i64);
        }
        serializer.serialize_f64((value * 1000.0).round() / 1000.0)
    }
}

#[derive(Serialize, Debug)]
pub struct VersionRow {
    pub requests: Num,
    /// Of all requests, 0..1.
    pub share: Num,
}

#[derive(Serialize, Debug)]
pub struct RuleRow {
    pub rule: String,
    pub versions: BTreeMap<String, Num>,
}

#[derive(Serialize, Debug)]
pub struct RampRow {
    pub rule: String,
    pub percent: Num,
}

#[derive(Serialize, Debug)]
pub struct Counters {
    pub client_tag_stripped: Num,
    pub sticky_id_issued: Num,
    pub sticky_id_rejected: Num,
    pub config_rejected: Num,
}

#[derive(Serialize, Debug)]
pub struct UpstreamRow {
    pub requests: Num,
    #[serde(rename = "5xx")]
    pub errors_5xx: Num,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<Num>,
}

#[derive(Serialize, Debug)]
pub struct Status {
    pub source: String,
    /// Rates per second over this many seconds; absent: totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_s: Option<Num>,
    pub versions: BTreeMap<String, VersionRow>,
    pub rules: Vec<RuleRow>,
    pub decided_by: BTreeMap<String, Num>,
    pub ramps: Vec<RampRow>,
    pub counters: Counters,
    /// Sidecar mode: per `source`, per version.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub restored: BTreeMap<String, BTreeMap<String, Num>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_misses: Option<Num>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub upstream: BTreeMap<String, UpstreamRow>,
}

fn label<'k>(labels: &'k [(String, String)], name: &str) -> Option<&'k str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Status {
    pub fn new(
        snapshot: &Snapshot,
        source: &Source,
        window: Option<Duration>,
        options: &Options,
    ) -> Status {
        let sum = |metric: &str| {
            snapshot
                .series
                .iter()
                .filter(|((m, _), _)| m == metric)
                .map(|(_, v)| *v)
                .fold(0.0, |total, v| total + v)
        };
        let known = known_versions(snapshot);
        Status {
            source: source.describe(),
            window_s: window.map(|w| Num(w.as_secs_f64())),
            versions: versions(snapshot),
            rules: rules(snapshot),
            decided_by: by_label(snapshot, REQUESTS, DECIDED_BY),
            ramps: ramps(snapshot),
            counters: Counters {
                client_tag_stripped: Num(sum(CLIENT_TAG_STRIPPED)),
                sticky_id_issued: Num(sum(STICKY_ID_ISSUED)),
                sticky_id_rejected: Num(sum(STICKY_ID_REJECTED)),
                config_rejected: Num(sum(CONFIG_REJECTED)),
            },
            restored: restored(snapshot),
            trace_misses: snapshot
                .series
                .keys()
                .any(|(m, _)| m == TRACE_MISSES)
                .then(|| Num(sum(TRACE_MISSES))),
            upstream: upstream(snapshot, &known, options.cluster_version.as_ref()),
        }
    }
}

/// Every series of `metric`, with its labels.
fn series_of<'s>(
    snapshot: &'s Snapshot,
    metric: &'s str,
) -> impl Iterator<Item = (&'s [(String, String)], f64)> + 's {
    snapshot
        .series
        .iter()
        .filter(move |((m, _), _)| m == metric)
        .map(|((_, labels), value)| (labels.as_slice(), *value))
}

fn by_label(snapshot: &Snapshot, metric: &str, name: &str) -> BTreeMap<String, Num> {
    let mut out: BTreeMap<String, Num> = BTreeMap::new();
    for (labels, value) in series_of(snapshot, metric) {
        if let Some(key) = label(labels, name) {
            out.entry(key.to_string()).or_default().0 += value;
        }
    }
    out
}

/// Requests per version; a sidecar counts its outbound calls (restored) instead.
fn versions(snapshot: &Snapshot) -> BTreeMap<String, VersionRow> {
    let mut counts = by_label(snapshot, REQUESTS, VERSION);
    if !snapshot.series.keys().any(|(m, _)| m == REQUESTS) {
        counts = by_label(snapshot, RESTORED, VERSION);
    }
    let total = counts.values().fold(0.0, |total, n| total + n.0);
    counts
        .into_iter()
        .map(|(version, requests)| {
            let share = if total > 0.0 { requests.0 / total } else { 0.0 };
            (
                version,
                VersionRow {
                    requests,
                    share: Num(share),
                },
            )
        })
        .collect()
}

fn known_versions(snapshot: &Snapshot) -> BTreeSet<String> {
    [REQUESTS, RESTORED, TRACE_REMEMBERED]
        .iter()
        .flat_map(|metric| series_of(snapshot, metric))
        .filter_map(|(labels, _)| label(labels, VERSION).map(str::to_string))
        .collect()
}

fn rules(snapshot: &Snapshot) -> Vec<RuleRow> {
    let mut rules: BTreeMap<String, BTreeMap<String, Num>> = BTreeMap::new();
    for (labels, value) in series_of(snapshot, REQUESTS) {
        if let (Some("rule"), Some(rule), Some(version)) = (
            label(labels, DECIDED_BY),
            label(labels, RULE),
            label(labels, VERSION),
        ) {
            let versions = rules.entry(rule.to_string()).or_default();
            versions.entry(version.to_string()).or_default().0 += value;
        }
    }
    rules
        .into_iter()
        .map(|(rule, versions)| RuleRow { rule, versions })
        .collect()
}

fn ramps(snapshot: &Snapshot) -> Vec<RampRow> {
    by_label(snapshot, RAMP_PERCENT, RULE)
        .into_iter()
        .map(|(rule, percent)| RampRow { rule, percent })
        .collect()
}

fn restored(snapshot: &Snapshot) -> BTreeMap<String, BTreeMap<String, Num>> {
    let mut out: BTreeMap<String, BTreeMap<String, Num>> = BTreeMap::new();
    for (labels, value) in series_of(snapshot, RESTORED) {
        if let (Some(source), Some(version)) = (label(labels, SOURCE), label(labels, VERSION)) {
            let versions = out.entry(source.to_string()).or_default();
            versions.entry(version.to_string()).or_default().0 += value;
        }
    }
    out
}

fn upstream(
    snapshot: &Snapshot,
    known: &BTreeSet<String>,
    custom: Option<&Regex>,
) -> BTreeMap<String, UpstreamRow> {
    let mut out: BTreeMap<String, UpstreamRow> = BTreeMap::new();
    for (cluster, stats) in &snapshot.clusters {
        let Some(version) = cluster_version(cluster, known, custom) else {
            continue;
        };
        let row = out.entry(version).or_insert(UpstreamRow {
            requests: Num(0.0),
            errors_5xx: Num(0.0),
            p99_ms: None,
        });
        row.requests.0 += stats.requests;
        row.errors_5xx.0 += stats.errors_5xx;
        // Several clusters of one version: the worst p99.
        if let Some(p99) = stats.p99_ms {
            row.p99_ms = Some(Num(row.p99_ms.map_or(p99, |Num(was)| was.max(p99))));
        }
    }
    out
}

/// The version a cluster serves, if it is one of `known`: by `custom`'s first group, or
/// by Istio's names `outbound|PORT|SUBSET|HOST` and `outbound|PORT||SERVICE-VERSION.NS...`.
pub fn cluster_version(
    cluster: &str,
    known: &BTreeSet<String>,
    custom: Option<&Regex>,
) -> Option<String> {
    let is = |version: &String, name: &str| {
        version == name || crate::render::subset_name(version) == name
    };
    if let Some(regex) = custom {
        let found = regex.captures(cluster)?.get(1)?.as_str();
        return known.iter().find(|v| is(v, found)).cloned();
    }
    let mut parts = cluster.split('|');
    let (Some("outbound"), Some(_port), Some(subset), Some(host), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !subset.is_empty() {
        return known.iter().find(|v| is(v, subset)).cloned();
    }
    let service = host.split('.').next().unwrap_or_default();
    known
        .iter()
        .filter(|v| {
            let dashed = |name: &str| service.ends_with(&format!("-{name}"));
            dashed(v) || dashed(&crate::render::subset_name(v))
        })
        .max_by_key(|v| v.len())
        .cloned()
}

// ------------------------------------------------------------------------ text

const BAR_WIDTH: usize = 30;

fn number(value: Num, rates: bool) -> String {
    if rates {
        format!("{:.1}/s", value.0)
    } else {
        format!("{:.0}", value.0)
    }
}

/// `fraction` (clamped to 0..=1) of `width` cells filled: the shares and ramps of `status`
/// and `watch`.
pub fn bar(fraction: f64, width: usize) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * width as f64).round();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = filled as usize;
    format!(
        "{}{}",
        "█".repeat(filled),
        "░".repeat(width.saturating_sub(filled))
    )
}

pub fn render_text(status: &Status) -> String {
    let rates = status.window_s.is_some();
    let mut out = match status.window_s {
        Some(Num(seconds)) => format!("{} — rates over {seconds}s\n", status.source),
        None => format!("{} — totals\n", status.source),
    };
    render_versions(&mut out, status, rates);
    render_rules(&mut out, status, rates);
    render_ramps(&mut out, status);
    render_counters(&mut out, status, rates);
    render_upstream(&mut out, status, rates);
    out
}

fn render_versions(out: &mut String, status: &Status, rates: bool) {
    out.push_str(&format!(
        "\n{:<16} {:>10} {:>6}\n",
        "VERSION", "REQUESTS", "SHARE"
    ));
    for (version, row) in &status.versions {
        out.push_str(&format!(
            "{:<16} {:>10} {:>5.1}% {}\n",
            version,
            number(row.requests, rates),
            row.share.0 * 100.0,
            bar(row.share.0, BAR_WIDTH)
        ));
    }
    if status.versions.is_empty() {
        out.push_str("(no requests counted yet)\n");
    }
}

fn render_rules(out: &mut String, status: &Status, rates: bool) {
    if !status.rules.is_empty() {
        out.push_str(&format!("\n{:<24} SENT TO\n", "RULE"));
        for rule in &status.rules {
            let sent: Vec<String> = rule
                .versions
                .iter()
                .map(|(version, n)| format!("{version} {}", number(*n, rates)))
                .collect();
            out.push_str(&format!("{:<24} {}\n", rule.rule, sent.join(", ")));
        }
    }
    if !status.decided_by.is_empty() {
        out.push_str(&format!("\n{:<24} {:>10}\n", "DECIDED BY", "REQUESTS"));
        for (by, n) in &status.decided_by {
            out.push_str(&format!("{by:<24} {:>10}\n", number(*n, rates)));
        }
    }
}

fn render_ramps(out: &mut String, status: &Status) {
    if status.ramps.is_empty() {
        return;
    }
    out.push_str(&format!("\n{:<24} {:>7}\n", "RAMP", "PERCENT"));
    for ramp in &status.ramps {
        out.push_str(&format!(
            "{:<24} {:>6.0}% [{}]\n",
            ramp.rule,
            ramp.percent.0,
            bar(ramp.percent.0 / 100.0, BAR_WIDTH)
        ));
    }
}

fn render_counters(out: &mut String, status: &Status, rates: bool) {
    let c = &status.counters;
    out.push_str("\nCOUNTERS\n");
    for (name, n) in [
        ("client tags stripped", c.client_tag_stripped),
        ("sticky ids issued", c.sticky_id_issued),
        ("sticky ids rejected", c.sticky_id_rejected),
        ("configs rejected", c.config_rejected),
    ] {
        out.push_str(&format!("{name:<24} {:>10}\n", number(n, rates)));
    }
    if !status.restored.is_empty() {
        out.push_str(&format!("\n{:<24} RESTORED\n", "SIDECAR SOURCE"));
        for (source, versions) in &status.restored {
            let sent: Vec<String> = versions
                .iter()
                .filter(|(_, n)| n.0 != 0.0)
                .map(|(version, n)| format!("{version} {}", number(*n, rates)))
                .collect();
            let sent = if sent.is_empty() {
                number(Num(0.0), rates)
            } else {
                sent.join(", ")
            };
            out.push_str(&format!("{source:<24} {sent}\n"));
        }
    }
    if let Some(misses) = status.trace_misses {
        out.push_str(&format!(
            "{:<24} {:>10}\n",
            "trace misses",
            number(misses, rates)
        ));
    }
}

fn render_upstream(out: &mut String, status: &Status, rates: bool) {
    if status.upstream.is_empty() {
        return;
    }
    out.push_str(&format!(
        "\n{:<16} {:>10} {:>10} {:>6} {:>10}\n",
        "UPSTREAM", "REQUESTS", "5XX", "5XX%", "P99"
    ));
    for (version, row) in &status.upstream {
        let percent = if row.requests.0 > 0.0 {
            format!("{:.1}%", row.errors_5xx.0 / row.requests.0 * 100.0)
        } else {
            "-".into()
        };
        let p99 = row
            .p99_ms
            .map_or_else(|| "-".to_string(), |Num(ms)| format!("{ms:.1} ms"));
        out.push_str(&format!(
            "{:<16} {:>10} {:>10} {:>6} {:>10}\n",
            version,
            number(row.requests, rates),
            number(row.errors_5xx, rates),
            percent,
            p99
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn known(versions: &[&str]) -> BTreeSet<String> {
        versions.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn istio_cluster_names_map_to_versions() {
        let known = known(&["v1", "v2", "v1.2"]);
        let version = |cluster: &str| cluster_version(cluster, &known, None);
        assert_eq!(
            version("outbound|8080|v1|shop.ns.svc.cluster.local").as_deref(),
            Some("v1")
        );
        assert_eq!(
            version("outbound|8080||shop-v2.ns.svc.cluster.local").as_deref(),
            Some("v2")
        );
        assert_eq!(
            version("outbound|8080|v1-2|shop.ns.svc.cluster.local").as_deref(),
            Some("v1.2")
        );
        assert_eq!(version("outbound|8080|v9|shop.ns.svc.cluster.local"), None);
        assert_eq!(version("inbound|8080||"), None);
        assert_eq!(version("outbound|8080||shop.ns.svc.cluster.local"), None);
        let custom = Regex::new(r"^backend-(.+)$").unwrap();
        assert_eq!(
            cluster_version("backend-v2", &known, Some(&custom)).as_deref(),
            Some("v2")
        );
        assert_eq!(cluster_version("backend-v7", &known, Some(&custom)), None);
    }

    #[test]
    fn an_admin_url_may_name_its_stats_page() {
        for url in [
            "http://127.0.0.1:15000",
            "http://127.0.0.1:15000/",
            "http://127.0.0.1:15000/stats",
            "http://127.0.0.1:15000/stats/prometheus",
        ] {
            assert_eq!(admin_url(url).unwrap(), "http://127.0.0.1:15000", "{url}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn counts_are_integers_in_json_and_rates_are_not() {
        assert_eq!(serde_json::to_string(&Num(3.0)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&Num(0.25)).unwrap(), "0.25");
        assert_eq!(serde_json::to_string(&Num(1.0 / 3.0)).unwrap(), "0.333");
    }

    #[test]
    fn a_restart_between_samples_counts_from_zero() {
        let key = (
            REQUESTS.to_string(),
            vec![(VERSION.to_string(), "v1".to_string())],
        );
        let ramp = (
            RAMP_PERCENT.to_string(),
            vec![(RULE.to_string(), "r".to_string())],
        );
        let at = |n: f64, percent: f64| Snapshot {
            series: [(key.clone(), n), (ramp.clone(), percent)]
                .into_iter()
                .collect(),
            clusters: BTreeMap::new(),
        };
        let rates = rates(&at(10.0, 20.0), &at(30.0, 25.0), Duration::from_secs(2));
        assert_eq!(rates.series.get(&key), Some(&10.0));
        assert_eq!(rates.series.get(&ramp), Some(&25.0));
        let restarted = super::rates(&at(30.0, 0.0), &at(4.0, 0.0), Duration::from_secs(2));
        assert_eq!(restarted.series.get(&key), Some(&2.0));
    }
}
