//! The report as text: a table per part, with share bars.

use super::report::{Num, Status, UpstreamRow};

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

/// An upstream's 5xx share and p99 as the tables show them (`-` when unknown): `status` and
/// `watch`.
pub fn upstream_cells(row: &UpstreamRow) -> (String, String) {
    let percent = if row.requests.0 > 0.0 {
        format!("{:.1}%", row.errors_5xx.0 / row.requests.0 * 100.0)
    } else {
        "-".into()
    };
    let p99 = row
        .p99_ms
        .map_or_else(|| "-".to_string(), |Num(ms)| format!("{ms:.1} ms"));
    (percent, p99)
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
        let (percent, p99) = upstream_cells(row);
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
