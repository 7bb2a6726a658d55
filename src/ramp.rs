//! Time-based ramps (SPEC §9): a split whose first listed version grows by itself, from its
//! configured percent at `start` to `to` at `start + duration_s`.
//!
//! Pure: the time comes in as whole seconds since the Unix epoch (the filter reads the
//! host's wall clock once a second, `explain --at` parses it), and everything here is
//! integer arithmetic on buckets (0.01 % each), so a replica, the CLI and the tests compute
//! the same ranges for the same second.
//!
//! Granularity: the first version's share is a whole number of buckets, `from + (to -
//! from) × elapsed / duration_s` rounded down, with `elapsed` in whole seconds. So it moves
//! in steps of at most 0.01 point per step of the ramp's own pace, never by more than the
//! ramp covers in one second; a ramp slower than 1 point per second therefore moves in steps
//! of at most one point.

use std::fmt;

use crate::hash::BUCKETS;

/// A moment, in whole seconds since 1970-01-01T00:00:00Z.
pub type UnixSeconds = i64;

/// A ramp of a split's first listed version, as compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ramp {
    pub start: UnixSeconds,
    /// At least 1.
    pub duration_s: u64,
    /// The first version's buckets once the ramp has ended; at least its configured weight.
    pub to: u16,
}

/// Where a ramp is at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// At or before `start`: the configured weights.
    NotStarted,
    Running,
    /// At or after `start + duration_s`: the first version has `to`.
    Ended,
}

impl Ramp {
    /// `start + duration_s`.
    pub fn end(&self) -> UnixSeconds {
        let duration = i64::try_from(self.duration_s).unwrap_or(i64::MAX);
        self.start.saturating_add(duration)
    }

    pub fn phase(&self, now: UnixSeconds) -> Phase {
        if now <= self.start {
            Phase::NotStarted
        } else if now >= self.end() {
            Phase::Ended
        } else {
            Phase::Running
        }
    }

    /// The first version's buckets at `now`, growing from `from` (its configured weight):
    /// `from` until `start`, then linearly (rounded down to a bucket) up to `to` at the end.
    /// Never decreases as `now` grows.
    pub fn first_at(&self, from: u16, now: UnixSeconds) -> u16 {
        let to = self.to.max(from);
        let mut duration = self.duration_s.max(1);
        let mut elapsed = u64::try_from(now.saturating_sub(self.start))
            .unwrap_or(0)
            .min(duration);
        // (to - from) < 2^14: keep the product within 64 bits (64-bit arithmetic only; the
        // module has no 128-bit division). Only ramps longer than 2^50 s lose precision.
        let excess_bits = (64 - duration.leading_zeros()).saturating_sub(50);
        duration = (duration >> excess_bits).max(1);
        elapsed = (elapsed >> excess_bits).min(duration);
        let grown = u64::from(to - from) * elapsed / duration;
        from.saturating_add(u16::try_from(grown).unwrap_or(to - from))
    }
}

/// The end of each weight's bucket range when the first version has `first` buckets and
/// the others share the rest in their configured proportions (`weights` in buckets, in the
/// listed order, summing to [`BUCKETS`]). Ends are rounded down cumulatively, so they never
/// decrease along the list and the last is exactly [`BUCKETS`]: the ranges always cover
/// every bucket once. `end(i, value)` receives them in order.
pub fn ends_with_first<I>(weights: I, first: u16, mut end: impl FnMut(usize, u16))
where
    I: Iterator<Item = u16> + Clone,
{
    let first = first.min(BUCKETS);
    let mut others = weights;
    if others.next().is_none() {
        return;
    }
    end(0, first);
    let others_total: u32 = others.clone().map(u32::from).sum();
    let rest = u32::from(BUCKETS - first);
    let mut so_far: u32 = 0;
    for (i, weight) in others.enumerate() {
        so_far += u32::from(weight);
        let share = if others_total == 0 {
            rest
        } else {
            // so_far ≤ others_total, so this is at most `rest`.
            u32::try_from(u64::from(rest) * u64::from(so_far) / u64::from(others_total))
                .unwrap_or(rest)
        };
        let value = u16::try_from(u32::from(first) + share).unwrap_or(BUCKETS);
        end(i + 1, value);
    }
}

/// A bucket count as a percent with up to two decimals (`1050` → `10.5`).
pub struct Percent(pub u16);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole}"),
            h if h % 10 == 0 => write!(f, "{whole}.{}", h / 10),
            h => write!(f, "{whole}.{h:02}"),
        }
    }
}

// ---------------------------------------------------------------------------- RFC 3339

/// Why a text is not an RFC 3339 time in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)`.
    Format,
    Month(u32),
    /// The month has no such day.
    Day {
        year: i64,
        month: u32,
        day: u32,
    },
    Hour(u32),
    Minute(u32),
    Second(u32),
    /// A valid time with another offset than UTC; `utc` is the same moment.
    NotUtc {
        utc: UnixSeconds,
    },
}

/// Parses an RFC 3339 date and time in UTC — `2026-12-01T10:00:00Z` — to whole seconds.
///
/// Accepted: `T` or `t` between date and time, `Z`, `z` or `+00:00` for UTC, and a fraction
/// of a second (`10:00:00.250Z`), which is dropped (the ramp's clock counts whole seconds).
/// Any other offset is refused with the same moment in UTC ([`TimeError::NotUtc`]); so is a
/// leap second (`:60`).
///
/// Our own parser rather than `time`, `chrono` or `jiff`: it runs in the module, once per
/// ramp per configuration, on one fixed form; those crates bring time zones, formatting and
/// locale tables the module would carry on every gateway, and none says "not UTC: that is
/// 09:00:00Z" as [`TimeError::NotUtc`] does. The tests below hold it to RFC 3339: round
/// trips through [`format_rfc3339`] and a table of what is refused and why.
pub fn parse_rfc3339_utc(text: &str) -> Result<UnixSeconds, TimeError> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Result<u32, TimeError> {
        let field = bytes.get(from..from + len).ok_or(TimeError::Format)?;
        field.iter().try_fold(0u32, |value, &b| {
            b.is_ascii_digit()
                .then(|| value * 10 + u32::from(b - b'0'))
                .ok_or(TimeError::Format)
        })
    };
    let byte_is = |at: usize, allowed: &[u8]| bytes.get(at).is_some_and(|b| allowed.contains(b));
    if !(byte_is(4, b"-")
        && byte_is(7, b"-")
        && byte_is(10, b"Tt")
        && byte_is(13, b":")
        && byte_is(16, b":"))
    {
        return Err(TimeError::Format);
    }
    let year = i64::from(digits(0, 4)?);
    let (month, day) = (digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut at = 19;
    if byte_is(at, b".") {
        at += 1;
        let fraction = bytes.get(at..).unwrap_or_default();
        let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return Err(TimeError::Format);
        }
        at += len;
    }
    let offset_s: i64 = match bytes.get(at..).unwrap_or_default() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return Err(TimeError::Format);
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return Err(TimeError::Format),
    };
    check_ranges(year, month, day, hour, minute, second)?;
    let local =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_s;
    // `-00:00` is RFC 3339's "offset unknown": not UTC either.
    if offset_s != 0 || bytes.get(at) == Some(&b'-') {
        return Err(TimeError::NotUtc { utc });
    }
    Ok(utc)
}

/// The first field of a well-formed time that is out of its range, as its error.
/// `#[inline(always)]`: as a call (or merely `#[inline]`) it took 150 bytes more of the
/// module; inlined it takes 12 fewer than the checks written in the parser did.
#[inline(always)]
fn check_ranges(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Result<(), TimeError> {
    if !(1..=12).contains(&month) {
        return Err(TimeError::Month(month));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimeError::Day { year, month, day });
    }
    if hour > 23 {
        return Err(TimeError::Hour(hour));
    }
    if minute > 59 {
        return Err(TimeError::Minute(minute));
    }
    if second > 59 {
        return Err(TimeError::Second(second));
    }
    Ok(())
}

/// `2026-12-01T10:00:00Z`. Years outside 0000-9999 are written with as many digits as they
/// need (never produced by [`parse_rfc3339_utc`]'s times plus a ramp of sane length).
pub fn format_rfc3339(time: UnixSeconds) -> String {
    let days = time.div_euclid(86_400);
    let seconds = time.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_1: UnixSeconds = 1_796_119_200; // 2026-12-01T10:00:00Z

    #[test]
    fn rfc3339_utc_times_parse_to_unix_seconds_and_back() {
        for (text, seconds) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-12-01T10:00:00Z", DEC_1),
            ("2026-12-01t10:00:00z", DEC_1),
            ("2026-12-01T10:00:00+00:00", DEC_1),
            ("2026-12-01T10:00:00.999Z", DEC_1),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("1969-12-31T23:59:59Z", -1),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
        ] {
            assert_eq!(parse_rfc3339_utc(text), Ok(seconds), "{text}");
        }
        for seconds in [0, DEC_1, 951_868_799, -1, 253_402_300_799, 1_709_164_800] {
            let text = format_rfc3339(seconds);
            assert_eq!(parse_rfc3339_utc(&text), Ok(seconds), "{text}");
        }
        assert_eq!(format_rfc3339(DEC_1 + 1800), "2026-12-01T10:30:00Z");
    }

    #[test]
    fn what_is_not_an_rfc3339_utc_time_says_why() {
        for (text, error) in [
            ("", TimeError::Format),
            ("2026-12-01", TimeError::Format),
            ("2026-12-01 10:00:00Z", TimeError::Format),
            ("2026-12-01T10:00:00", TimeError::Format),
            ("2026-12-01T10:00Z", TimeError::Format),
            ("2026-12-01T10:00:00.Z", TimeError::Format),
            ("2026-12-01T10:00:00ZZ", TimeError::Format),
            ("26-12-01T10:00:00Z", TimeError::Format),
            ("2026-1a-01T10:00:00Z", TimeError::Format),
            ("+026-12-01T10:00:00Z", TimeError::Format),
            ("2026-12-01T10:00:00+0100", TimeError::Format),
            ("2026-13-01T10:00:00Z", TimeError::Month(13)),
            ("2026-00-01T10:00:00Z", TimeError::Month(0)),
            (
                "2026-02-29T10:00:00Z",
                TimeError::Day {
                    year: 2026,
                    month: 2,
                    day: 29,
                },
            ),
            ("2026-12-01T24:00:00Z", TimeError::Hour(24)),
            ("2026-12-01T10:60:00Z", TimeError::Minute(60)),
            ("2026-12-01T10:00:60Z", TimeError::Second(60)),
            (
                "2026-12-01T11:30:00+01:30",
                TimeError::NotUtc { utc: DEC_1 },
            ),
            (
                "2026-12-01T10:00:00-00:00",
                TimeError::NotUtc { utc: DEC_1 },
            ),
        ] {
            assert_eq!(parse_rfc3339_utc(text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn the_first_version_grows_linearly_from_its_weight_to_to() {
        let ramp = Ramp {
            start: DEC_1,
            duration_s: 3600,
            to: 10_000,
        };
        let at = |offset: i64| ramp.first_at(1000, DEC_1 + offset);
        assert_eq!(at(-1_000_000), 1000);
        assert_eq!(at(0), 1000);
        assert_eq!(at(1), 1002); // 9000 × 1 / 3600 = 2.5, rounded down
        assert_eq!(at(1800), 5500);
        assert_eq!(at(3599), 9997);
        assert_eq!(at(3600), 10_000);
        assert_eq!(at(i64::MAX - DEC_1), 10_000);
        assert_eq!(ramp.phase(DEC_1), Phase::NotStarted);
        assert_eq!(ramp.phase(DEC_1 + 1), Phase::Running);
        assert_eq!(ramp.phase(DEC_1 + 3600), Phase::Ended);
        let mut previous = at(-6);
        for offset in -5..3700 {
            let now = at(offset);
            assert!(now >= previous && now - previous <= 3, "{offset}: {now}");
            previous = now;
        }
        // A ramp that would last past the end of time still grows.
        let forever = Ramp {
            start: i64::MAX - 10,
            duration_s: u64::MAX,
            to: 2000,
        };
        assert_eq!(forever.first_at(1000, i64::MAX), 1000);
        assert_eq!(forever.end(), i64::MAX);
    }

    #[test]
    fn the_others_share_the_rest_in_their_proportions_to_the_last_bucket() {
        let ends = |weights: &[u16], first: u16| {
            let mut ends = vec![0; weights.len()];
            ends_with_first(weights.iter().copied(), first, |i, end| ends[i] = end);
            ends
        };
        assert_eq!(ends(&[1000, 9000], 5500), [5500, 10_000]);
        assert_eq!(ends(&[1000, 6000, 3000], 1000), [1000, 7000, 10_000]);
        assert_eq!(ends(&[1000, 6000, 3000], 5500), [5500, 8500, 10_000]);
        assert_eq!(
            ends(&[1000, 3000, 3000, 3000], 1001),
            [1001, 4000, 7000, 10_000]
        );
        assert_eq!(ends(&[1000, 0, 9000], 2000), [2000, 2000, 10_000]);
        assert_eq!(ends(&[1000, 9000], 10_000), [10_000, 10_000]);
        assert_eq!(ends(&[10_000, 0], 10_000), [10_000, 10_000]);
        assert_eq!(ends(&[10_000], 10_000), [10_000]);
        assert_eq!(ends(&[], 10_000), [0u16; 0]);
    }

    #[test]
    fn percents_keep_their_decimals() {
        let text = |buckets| Percent(buckets).to_string();
        assert_eq!(text(1000), "10");
        assert_eq!(text(1050), "10.5");
        assert_eq!(text(1005), "10.05");
        assert_eq!(text(0), "0");
    }
}
