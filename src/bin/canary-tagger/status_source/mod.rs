//! Where `canary-tagger status` reads the counters: a gateway's Envoy admin
//! (`/stats/prometheus`), a Prometheus server (`/api/v1/query`) or a saved dump of `/stats`
//! or `/stats/prometheus`. Every source becomes the same [`Snapshot`]: canary-tagger's
//! series by metric and labels, and Envoy's per-cluster upstream stats.
//!
//! The Prometheus text format is parsed here and not with a crate: the candidates split
//! label values on `,` and `=` (a rule name may hold both) and skip the lines they cannot
//! read, where a truncated or foreign page must be an error.

//!
//! This file holds the types and the reading of each source; [`dump`] parses a page,
//! [`prometheus`] asks a Prometheus server, [`merge`] sums the samples into one snapshot.

mod dump;
mod merge;
mod prometheus;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use dump::{parse_dump, parse_value, Labels};
use merge::{canonical, snapshot};
use prometheus::read_prometheus;

/// Why a source could not be read: one line, exit status 2.
#[derive(Debug)]
pub struct SourceError(pub String);

/// One sample as the Prometheus text format has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A series of ours: its metric and its labels (ours only, sorted).
pub type SeriesKey = (String, Vec<(String, String)>);

/// Envoy's upstream stats of one cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStats {
    pub requests: f64,
    pub errors_5xx: f64,
    /// Milliseconds, since Envoy started (Envoy's cumulative histogram).
    pub p99_ms: Option<f64>,
}

/// Everything `status` shows, read once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub series: BTreeMap<SeriesKey, f64>,
    pub clusters: BTreeMap<String, ClusterStats>,
}

/// Where to read.
#[derive(Clone, Debug)]
pub enum Source {
    /// The base URL of an Envoy admin (`http://127.0.0.1:15000`).
    Admin(String),
    /// The base URL of a Prometheus server.
    Prometheus(String),
    /// A dump file, or `-` for standard input.
    Stats(String),
}

/// The stats Envoy keeps per cluster that `status` reads, as `/stats/prometheus` names them.
const RQ_TOTAL: &str = "envoy_cluster_upstream_rq_total";
const RQ_XX: &str = "envoy_cluster_upstream_rq_xx";
/// `upstream_rq_5xx` with Istio's `response_code_class` tag (its value `5xx`).
const RQ_CLASS: &str = "envoy_cluster_upstream_rq";
const RQ_TIME_BUCKET: &str = "envoy_cluster_upstream_rq_time_bucket";
/// Not a Prometheus name: the p99 `/stats` prints for `cluster.X.upstream_rq_time`.
const RQ_TIME_P99: &str = "upstream_rq_time p99";
/// Istio's cluster tag (the whole name), then Envoy's default one.
const CLUSTER_LABELS: [&str; 2] = ["cluster_name", "envoy_cluster_name"];

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Envoy admin's `filter` (on the stat names, before tags are extracted): only the series
/// `status` reads, not a big gateway's thousands of others.
const ADMIN_FILTER: &str = r"canary_tagger_|^cluster\..*\.upstream_rq_(total|5xx|time)$";

impl Source {
    /// What the source is, for the output's heading.
    pub fn describe(&self) -> String {
        match self {
            Source::Admin(url) => format!("Envoy admin {url}"),
            Source::Prometheus(url) => format!("Prometheus {url}"),
            Source::Stats(path) if path == "-" => "stats from standard input".into(),
            Source::Stats(path) => format!("stats dump {path}"),
        }
    }

    /// One snapshot; `ago` reads Prometheus as it was that long ago (the other sources
    /// read only now).
    pub fn read(&self, ago: Option<Duration>) -> Result<Snapshot, SourceError> {
        match self {
            Source::Admin(url) => {
                let page = format!("{url}/stats/prometheus");
                let text = http_get(&page, &[("filter", ADMIN_FILTER)])?;
                let samples = parse_dump(&text).map_err(|reason| {
                    SourceError(format!("{page} is not Envoy's stats: {reason}"))
                })?;
                snapshot(&samples, &page)
            }
            Source::Prometheus(url) => read_prometheus(url, ago),
            Source::Stats(path) => {
                let text = read_dump(path)?;
                let name = if path == "-" { "standard input" } else { path };
                let samples =
                    parse_dump(&text).map_err(|reason| SourceError(format!("{name}: {reason}")))?;
                snapshot(&samples, name)
            }
        }
    }
}

/// A `--admin` or `--prometheus` URL: http only, without a trailing `/`.
pub fn base_url(flag: &str, url: &str) -> Result<String, String> {
    if url.starts_with("https://") {
        return Err(format!(
            "{flag} {url:?}: https is not supported; reach the port over plain http \
             (kubectl port-forward)"
        ));
    }
    match url.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => {
            let port = if flag == "--prometheus" { 9090 } else { 15000 };
            Err(format!(
                "{flag} {url:?} is not an http URL (e.g. http://127.0.0.1:{port})"
            ))
        }
    }
}

fn http_get(url: &str, query: &[(&str, &str)]) -> Result<String, SourceError> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(url);
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    let mut response = request
        .call()
        .map_err(|error| SourceError(format!("cannot read {url}: {error}")))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|error| SourceError(format!("cannot read {url}: {error}")))?;
    if !status.is_success() {
        let first = body.lines().next().unwrap_or_default();
        return Err(SourceError(format!(
            "{url} answered {}: {}",
            status.as_u16(),
            first.chars().take(120).collect::<String>()
        )));
    }
    Ok(body)
}

fn read_dump(path: &str) -> Result<String, SourceError> {
    let mut text = String::new();
    let read = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::InvalidData => "not UTF-8 text".to_string(),
            _ => error.to_string(),
        };
        SourceError(format!("cannot read {path}: {reason}"))
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn base_urls_are_plain_http() {
        assert_eq!(
            base_url("--admin", "http://127.0.0.1:15000/").unwrap(),
            "http://127.0.0.1:15000"
        );
        assert!(base_url("--admin", "https://x")
            .unwrap_err()
            .contains("https is not supported"));
        assert!(base_url("--admin", "127.0.0.1:15000").is_err());
    }
}
