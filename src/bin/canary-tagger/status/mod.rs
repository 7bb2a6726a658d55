//! `canary-tagger status`: where a gateway's requests went, from canary-tagger's own
//! counters (docs/metrics.md) and Envoy's per-cluster upstream stats — per version, per
//! rule, per kind of decision, each ramp, and the health of each version's upstream.
//!
//! This file reads the flags and the source (twice for rates); [`report`] builds the
//! report from a snapshot, [`text`] renders it.

mod report;
mod text;

use std::time::Duration;

use canary_tagger::metrics::RAMP_PERCENT;
use regex::Regex;

use crate::args::{StatusArgs, UsageError};
use crate::status_source::{base_url, ClusterStats, Snapshot, Source, SourceError};

pub use report::Status;
pub use text::{bar, render_text, upstream_cells};

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
    let source = match (&parsed.live.admin, &parsed.live.prometheus, &parsed.stats) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use canary_tagger::metrics::{REQUESTS, RULE, VERSION};

    use super::*;

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
