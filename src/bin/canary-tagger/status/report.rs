//! The report `status` builds from one snapshot of the counters: rows per version, rule,
//! ramp and upstream (`--json` prints it as it is).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use canary_tagger::metrics::{
    CLIENT_TAG_STRIPPED, CONFIG_REJECTED, DECIDED_BY, RAMP_PERCENT, REQUESTS, RESTORED, RULE,
    SOURCE, STICKY_ID_ISSUED, STICKY_ID_REJECTED, TRACE_MISSES, TRACE_REMEMBERED, VERSION,
};
use regex::Regex;
use serde::{Serialize, Serializer};

use super::Options;
use crate::status_source::{Snapshot, Source};

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
    fn counts_are_integers_in_json_and_rates_are_not() {
        assert_eq!(serde_json::to_string(&Num(3.0)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&Num(0.25)).unwrap(), "0.25");
        assert_eq!(serde_json::to_string(&Num(1.0 / 3.0)).unwrap(), "0.333");
    }
}
