//! `canary-tagger watch`: `status` redrawn in place every interval, with the rates since
//! the last draw, until `q` (or Ctrl-C, or Esc). The terminal is restored however it ends.

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::{cursor, execute};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Terminal;

use crate::args::{UsageError, WatchArgs};
use crate::status::{self, bar, upstream_cells, Options, Status};
use crate::status_source::{base_url, Snapshot, Source, SourceError};

pub const HELP: &str = "\
Usage: canary-tagger watch (--admin URL | --prometheus URL) [--interval DURATION]

`canary-tagger status` on one screen, redrawn in place every DURATION (default 2s): per
version its requests and their rate since the last draw, with the share of that rate;
each ramp's percent as a bar; where each rule sent requests; each version's upstream
(requests, 5xx, p99); the counters. q, Esc or Ctrl-C quits and restores the terminal.

  --admin URL           a gateway's Envoy admin, e.g. http://127.0.0.1:15000
  --prometheus URL      a Prometheus server that scrapes the gateways
  --interval DURATION   between draws (500ms, 2s, 1m; default 2s)

Colour only on a terminal, and never with NO_COLOR set. A source that cannot be read
before the first draw exits with status 2; later failures show on the screen's last line
until a read works again.
";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// What `watch` was asked.
pub struct WatchOptions {
    pub status: Options,
    pub interval: Duration,
}

pub fn options_from(parsed: &WatchArgs) -> Result<WatchOptions, UsageError> {
    let usage = |message: String| UsageError(format!("watch: {message}"));
    if let Some(extra) = parsed.extra.first() {
        return Err(usage(format!(
            "unexpected argument {extra:?}; see `canary-tagger help watch`"
        )));
    }
    let source = match (&parsed.live.admin, &parsed.live.prometheus) {
        (Some(url), None) => Source::Admin(status::admin_url(url).map_err(usage)?),
        (None, Some(url)) => Source::Prometheus(base_url("--prometheus", url).map_err(usage)?),
        _ => {
            return Err(usage(
                "give one of --admin URL or --prometheus URL; see `canary-tagger help watch`"
                    .into(),
            ))
        }
    };
    let interval = match parsed.interval.as_deref() {
        None => DEFAULT_INTERVAL,
        Some(text) => status::parse_duration(text)
            .map_err(|reason| usage(reason.replace("--window", "--interval")))?,
    };
    Ok(WatchOptions {
        status: Options {
            source,
            window: None,
            json: false,
            cluster_version: None,
        },
        interval,
    })
}

/// Puts the terminal in raw mode on the alternate screen; [`Drop`] puts it back, whatever
/// way `run` returns.
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let mut stdout = std::io::stdout();
        if let Err(error) = execute!(stdout, EnterAlternateScreen, cursor::Hide) {
            let _ = terminal::disable_raw_mode();
            return Err(error);
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            self.terminal.backend_mut(),
            LeaveAlternateScreen,
            cursor::Show
        );
    }
}

/// What the last reads gave.
struct Reading {
    previous: Snapshot,
    at: Instant,
    totals: Status,
    rates: Option<Status>,
    error: Option<String>,
    updated: SystemTime,
}

pub fn run(options: &WatchOptions) -> Result<(), SourceError> {
    // Read once before taking the terminal: an unreadable source is one line, status 2.
    let source = &options.status.source;
    let first = source.read(None)?;
    if !std::io::stdout().is_terminal() {
        return Err(SourceError(
            "watch: standard output is not a terminal; `canary-tagger status --window` \
             prints one report"
                .into(),
        ));
    }
    let colour = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let mut reading = Reading {
        totals: Status::new(&first, source, None, &options.status),
        previous: first,
        at: Instant::now(),
        rates: None,
        error: None,
        updated: SystemTime::now(),
    };
    let mut screen =
        Screen::enter().map_err(|error| SourceError(format!("watch: the terminal: {error}")))?;
    let terminal_error =
        |error: std::io::Error| SourceError(format!("watch: the terminal: {error}"));
    loop {
        let lines = screen_lines(&reading, options, colour);
        screen
            .terminal
            .draw(|frame| frame.render_widget(Paragraph::new(lines), frame.area()))
            .map_err(terminal_error)?;
        if wait_for_quit(options.interval).map_err(terminal_error)? {
            return Ok(());
        }
        refresh(&mut reading, options);
    }
}

/// Waits up to `interval` for a key; true when it asks to quit. A resize ends the wait
/// early, so that the next draw fits.
fn wait_for_quit(interval: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + interval;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if !event::poll(left)? {
            break;
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
                    && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'));
                if ctrl_c
                    || matches!(
                        key.code,
                        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc
                    )
                {
                    return Ok(true);
                }
            }
            Event::Resize(_, _) => break,
            _ => {}
        }
    }
    Ok(false)
}

fn refresh(reading: &mut Reading, options: &WatchOptions) {
    let source = &options.status.source;
    match source.read(None) {
        Ok(now) => {
            let rates = status::rates(&reading.previous, &now, reading.at.elapsed());
            reading.rates = Some(Status::new(&rates, source, None, &options.status));
            reading.totals = Status::new(&now, source, None, &options.status);
            reading.previous = now;
            reading.at = Instant::now();
            reading.error = None;
            reading.updated = SystemTime::now();
        }
        Err(error) => reading.error = Some(error.0),
    }
}

// ------------------------------------------------------------------------ the screen

/// The screen's styles: none without colour.
struct Styles {
    heading: Style,
    bar: Style,
    bad: Style,
    dim: Style,
}

impl Styles {
    fn new(colour: bool) -> Styles {
        if !colour {
            return Styles {
                heading: Style::default(),
                bar: Style::default(),
                bad: Style::default(),
                dim: Style::default(),
            };
        }
        Styles {
            heading: Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            bar: Style::default().fg(Color::Green),
            bad: Style::default().fg(Color::Red),
            dim: Style::default().fg(Color::DarkGray),
        }
    }
}

fn screen_lines(reading: &Reading, options: &WatchOptions, colour: bool) -> Vec<Line<'static>> {
    let styles = Styles::new(colour);
    let interval = options.interval.as_secs_f64();
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "canary-tagger watch · {} · every {interval}s",
            reading.totals.source
        ),
        styles.heading,
    ))];
    lines.extend(version_lines(reading, &styles));
    lines.extend(ramp_lines(&reading.totals, &styles));
    lines.extend(rule_lines(&reading.totals, &styles));
    lines.extend(upstream_lines(reading, &styles));
    lines.push(Line::default());
    lines.push(counter_line(&reading.totals));
    lines.push(Line::default());
    lines.push(footer(reading, &styles));
    lines
}

fn version_lines(reading: &Reading, styles: &Styles) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::default(),
        Line::from(Span::styled(
            format!(
                "{:<14} {:>9} {:>9} {:>6}",
                "VERSION", "TOTAL", "RATE/s", "SHARE"
            ),
            styles.heading,
        )),
    ];
    for (version, row) in &reading.totals.versions {
        // The share of the rate since the last draw; of the totals before a second read.
        let (rate, share) = match reading.rates.as_ref().and_then(|r| r.versions.get(version)) {
            Some(now) => (format!("{:.1}", now.requests.0), now.share.0),
            None => ("-".to_string(), row.share.0),
        };
        lines.push(Line::from(vec![
            Span::raw(format!(
                "{:<14} {:>9.0} {:>9} {:>5.1}% ",
                clip(version, 14),
                row.requests.0,
                rate,
                share * 100.0
            )),
            Span::styled(bar(share, 34), styles.bar),
        ]));
    }
    lines
}

/// A section without a heading: a blank line, then a line per item; nothing for no items.
fn section<T>(items: &[T], line: impl Fn(&T) -> Line<'static>) -> Vec<Line<'static>> {
    if items.is_empty() {
        return Vec::new();
    }
    std::iter::once(Line::default())
        .chain(items.iter().map(line))
        .collect()
}

fn ramp_lines(totals: &Status, styles: &Styles) -> Vec<Line<'static>> {
    section(&totals.ramps, |ramp| {
        Line::from(vec![
            Span::styled("RAMP ", styles.heading),
            Span::raw(format!(
                "{:<20} {:>4.0}% ",
                clip(&ramp.rule, 20),
                ramp.percent.0
            )),
            Span::styled(bar(ramp.percent.0 / 100.0, 40), styles.bar),
        ])
    })
}

fn rule_lines(totals: &Status, styles: &Styles) -> Vec<Line<'static>> {
    section(&totals.rules, |rule| {
        let sent: Vec<String> = rule
            .versions
            .iter()
            .map(|(version, n)| format!("{version} {:.0}", n.0))
            .collect();
        Line::from(vec![
            Span::styled("RULE ", styles.heading),
            Span::raw(clip(
                &format!("{:<20} → {}", clip(&rule.rule, 20), sent.join(", ")),
                74,
            )),
        ])
    })
}

fn upstream_lines(reading: &Reading, styles: &Styles) -> Vec<Line<'static>> {
    if reading.totals.upstream.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![
        Line::default(),
        Line::from(Span::styled(
            format!(
                "{:<14} {:>9} {:>9} {:>8} {:>6} {:>10}",
                "UPSTREAM", "REQUESTS", "RATE/s", "5XX", "5XX%", "P99"
            ),
            styles.heading,
        )),
    ];
    for (version, row) in &reading.totals.upstream {
        let rate = reading
            .rates
            .as_ref()
            .and_then(|r| r.upstream.get(version))
            .map_or_else(|| "-".to_string(), |now| format!("{:.1}", now.requests.0));
        let (percent, p99) = upstream_cells(row);
        let failing = row.errors_5xx.0 > 0.0;
        lines.push(Line::from(Span::styled(
            format!(
                "{:<14} {:>9.0} {:>9} {:>8.0} {:>6} {:>10}",
                clip(version, 14),
                row.requests.0,
                rate,
                row.errors_5xx.0,
                percent,
                p99
            ),
            if failing {
                styles.bad
            } else {
                Style::default()
            },
        )));
    }
    lines
}

fn counter_line(totals: &Status) -> Line<'static> {
    let c = &totals.counters;
    let mut text = format!(
        "tags stripped {:.0} · sticky ids {:.0} issued, {:.0} rejected · configs rejected {:.0}",
        c.client_tag_stripped.0, c.sticky_id_issued.0, c.sticky_id_rejected.0, c.config_rejected.0
    );
    if let Some(misses) = totals.trace_misses {
        text.push_str(&format!(" · trace misses {:.0}", misses.0));
    }
    Line::from(clip(&text, 80))
}

fn footer(reading: &Reading, styles: &Styles) -> Line<'static> {
    match &reading.error {
        Some(error) => Line::from(Span::styled(clip(error, 80), styles.bad)),
        None => Line::from(Span::styled(
            format!("q quit · read at {} UTC", clock(reading.updated)),
            styles.dim,
        )),
    }
}

/// `HH:MM:SS` of `at`, UTC.
fn clock(at: SystemTime) -> String {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_and_bars_fit_their_width() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(bar(0.5, 10).chars().count(), 10);
        assert_eq!(bar(2.0, 4), "████");
        assert_eq!(
            clock(UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)),
            "01:02:03"
        );
    }
}
