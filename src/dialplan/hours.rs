//! Opening hours for the `hours` step: weekly opening times, holidays, and the time zone
//! they are read in. Pure: the caller supplies the instant; nothing here reads a clock.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Where schedules are read: the time zone and the dates closed in every schedule, both
/// from the `[dialplan]` config section.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub timezone: TimeZone,
    pub holidays: Vec<Date>,
}

/// Open on `days` from `from` to `to`, in minutes since midnight (`to` may be 24:00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// Monday first.
    pub days: [bool; 7],
    pub from: u16,
    pub to: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub open: Vec<Opening>,
    /// Closed all day, on top of the calendar's holidays.
    pub holidays: Vec<Date>,
}

impl Schedule {
    pub fn is_open(&self, calendar: &Calendar, at: Timestamp) -> bool {
        let local = calendar.timezone.to_datetime(at);
        let date = local.date();
        if self.holidays.contains(&date) || calendar.holidays.contains(&date) {
            return false;
        }
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        self.open
            .iter()
            .any(|o| o.days[day] && o.from <= minute && minute < o.to)
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(name: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|d| *d == name)
        .ok_or_else(|| format!("unknown day `{name}` (use mon, tue, wed, thu, fri, sat, sun)"))
}

/// `mon-fri`, `sat`, `daily`, or a comma-separated mix such as `mon,wed,fri-sun`.
pub fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.trim() == "daily" {
        return Ok([true; 7]);
    }
    for part in text.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a.trim())?, day_index(b.trim())?);
                if a > b {
                    return Err(format!(
                        "`{part}` runs backwards; weeks start on mon (write e.g. `sat-sun`)"
                    ));
                }
                days[a..=b].iter_mut().for_each(|d| *d = true);
            }
            None => days[day_index(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minutes <= 24 * 60).then_some(minutes)
}

/// `08:30-17:30`; `00:00-24:00` for the whole day. Ranges across midnight are two openings.
pub fn parse_times(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{text}` is not a time range such as `08:30-17:30`");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (from, to) = (
        parse_clock(a).ok_or_else(bad)?,
        parse_clock(b).ok_or_else(bad)?,
    );
    if from >= to {
        return Err(format!(
            "`{text}` ends before it starts; split a range across midnight into two openings"
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn shanghai() -> Calendar {
        Calendar {
            timezone: TimeZone::fixed(jiff::tz::offset(8)),
            holidays: vec![Date::constant(2025, 10, 1)],
        }
    }

    #[test]
    fn weekly_openings_in_the_calendar_time_zone() {
        let office = Schedule {
            open: vec![Opening {
                days: parse_days("mon-fri").unwrap(),
                from: 9 * 60,
                to: 18 * 60,
            }],
            holidays: vec![Date::constant(2025, 6, 2)],
        };
        let cal = shanghai();
        // 2025-06-03 is a Tuesday; 01:30 UTC is 09:30 in Shanghai.
        assert!(office.is_open(&cal, at("2025-06-03T01:30:00Z")));
        assert!(!office.is_open(&cal, at("2025-06-03T00:59:00Z")));
        assert!(!office.is_open(&cal, at("2025-06-03T10:00:00Z")));
        // Saturday.
        assert!(!office.is_open(&cal, at("2025-06-07T03:00:00Z")));
        // The schedule's own holiday, and the calendar's.
        assert!(!office.is_open(&cal, at("2025-06-02T03:00:00Z")));
        assert!(!office.is_open(&cal, at("2025-10-01T03:00:00Z")));
    }

    #[test]
    fn whole_day_includes_the_last_minute() {
        let always = Schedule {
            open: vec![Opening {
                days: [true; 7],
                from: 0,
                to: 24 * 60,
            }],
            holidays: vec![],
        };
        assert!(always.is_open(&shanghai(), at("2025-06-03T15:59:59Z")));
        assert!(!always.is_open(&shanghai(), at("2025-10-01T12:00:00Z")));
    }

    #[test]
    fn day_and_time_syntax() {
        assert_eq!(
            parse_days("mon,wed,fri-sun"),
            Ok([true, false, true, false, true, true, true])
        );
        assert_eq!(parse_days("daily"), Ok([true; 7]));
        assert!(parse_days("sun-mon").is_err());
        assert!(parse_days("monday").is_err());
        assert_eq!(parse_times("08:30-17:30"), Ok((510, 1050)));
        assert_eq!(parse_times("00:00-24:00"), Ok((0, 1440)));
        assert!(parse_times("22:00-06:00").is_err());
        assert!(parse_times("8-17").is_err());
        assert!(parse_times("08:60-09:00").is_err());
    }
}
