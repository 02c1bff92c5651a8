//! Time zones for "since local midnight": a fixed UTC offset or the transitions of a TZif
//! file (/usr/share/zoneinfo), read once at start-up by `Zone::load` and then used as a
//! plain value by the fold. It owns no clock and no files after loading.
//!
//! Only the transition table is read, not the POSIX rule string at the end of a TZif v2
//! file: Debian ships "fat" files listing transitions up to 2037, after which the last
//! offset stays in force.

use std::path::Path;

use crate::events::EpochMs;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    /// (transition instant in ms, UTC offset in ms from then on), sorted by instant.
    transitions: Vec<(EpochMs, i64)>,
    /// The offset before the first transition (or always, for a fixed zone).
    initial: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("time zone {name:?}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
    #[error("time zone {name:?}: not a TZif file ({why})")]
    Format { name: String, why: &'static str },
    #[error(
        "time zone {0:?}: expected an IANA name (Asia/Shanghai), UTC, or an offset like +08:00"
    )]
    Name(String),
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::fixed("UTC", 0)
    }

    fn fixed(name: &str, offset_ms: i64) -> Zone {
        Zone {
            name: name.to_owned(),
            transitions: Vec::new(),
            initial: offset_ms,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `UTC`, `+08:00` / `-05:30`, `local` (/etc/localtime, UTC when absent) or an IANA
    /// name looked up under `zoneinfo_dir`.
    pub fn load(name: &str, zoneinfo_dir: &Path) -> Result<Zone, ZoneError> {
        if name.eq_ignore_ascii_case("utc") {
            return Ok(Zone::utc());
        }
        if let Some(offset) = parse_offset(name) {
            return Ok(Zone::fixed(name, offset));
        }
        if name == "local" {
            return match std::fs::read("/etc/localtime") {
                Ok(bytes) => Zone::from_tzif(name, &bytes),
                Err(_) => Ok(Zone::utc()),
            };
        }
        let valid = !name.is_empty()
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|p| !p.is_empty() && p != ".." && p != ".");
        if !valid {
            return Err(ZoneError::Name(name.to_owned()));
        }
        let bytes = std::fs::read(zoneinfo_dir.join(name)).map_err(|source| ZoneError::Read {
            name: name.to_owned(),
            source,
        })?;
        Zone::from_tzif(name, &bytes)
    }

    /// Parses a TZif file (RFC 8536), preferring the 64-bit section of version 2+.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<Zone, ZoneError> {
        let bad = |why| ZoneError::Format {
            name: name.to_owned(),
            why,
        };
        let v1 = Header::parse(bytes).ok_or(bad("short header"))?;
        let (header, body, time_size) = if bytes[4] >= b'2' {
            let rest = bytes.get(v1.v1_len()..).ok_or(bad("truncated v1 data"))?;
            (
                Header::parse(rest).ok_or(bad("short v2 header"))?,
                &rest[44..],
                8,
            )
        } else {
            (v1, &bytes[44..], 4)
        };
        let times_len = header.timecnt * time_size;
        let need = times_len + header.timecnt + header.typecnt * 6;
        if body.len() < need || header.typecnt == 0 {
            return Err(bad("truncated data"));
        }
        let offset_of = |t: usize| -> Option<i64> {
            let at = times_len + header.timecnt + t * 6;
            let b = body.get(at..at + 4)?;
            Some(i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])) * 1000)
        };
        let mut transitions = Vec::with_capacity(header.timecnt);
        for i in 0..header.timecnt {
            let at = if time_size == 8 {
                let b = &body[i * 8..i * 8 + 8];
                i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            } else {
                let b = &body[i * 4..i * 4 + 4];
                i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            let t = usize::from(body[times_len + i]);
            let offset = offset_of(t).ok_or(bad("transition type out of range"))?;
            transitions.push((at.saturating_mul(1000), offset));
        }
        let initial = offset_of(0).ok_or(bad("no local time type"))?;
        Ok(Zone {
            name: name.to_owned(),
            transitions,
            initial,
        })
    }

    /// The UTC offset in force at `at`, in ms.
    pub fn offset_at(&self, at: EpochMs) -> i64 {
        match self.transitions.partition_point(|(t, _)| *t <= at) {
            0 => self.initial,
            i => self.transitions[i - 1].1,
        }
    }

    /// The instant of the local midnight that starts the day holding `at`.
    pub fn day_start(&self, at: EpochMs) -> EpochMs {
        let local = at + self.offset_at(at);
        let midnight_local = local.div_euclid(DAY_MS) * DAY_MS;
        // The offset at midnight may differ from the one at `at` (a DST change that day).
        let guess = midnight_local - self.offset_at(at);
        midnight_local - self.offset_at(guess)
    }

    /// The local midnight that ends the day holding `at`.
    pub fn day_end(&self, at: EpochMs) -> EpochMs {
        // 26 hours past the start lands inside the next day even across a DST change.
        self.day_start(self.day_start(at) + 26 * 3_600_000)
    }

    /// The local calendar date holding `at`, as (year, month, day).
    pub fn date(&self, at: EpochMs) -> (i32, u32, u32) {
        civil_from_days((at + self.offset_at(at)).div_euclid(DAY_MS))
    }

    /// The local midnight starting the given calendar date.
    pub fn date_start(&self, year: i32, month: u32, day: u32) -> EpochMs {
        let noon_utc = days_from_civil(year, month, day) * DAY_MS + DAY_MS / 2;
        self.day_start(noon_utc - self.offset_at(noon_utc))
    }
}

struct Header {
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
    leapcnt: usize,
    isstdcnt: usize,
    isutcnt: usize,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 44 || &b[..4] != b"TZif" {
            return None;
        }
        let n = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        Some(Header {
            isutcnt: n(20),
            isstdcnt: n(24),
            leapcnt: n(28),
            timecnt: n(32),
            typecnt: n(36),
            charcnt: n(40),
        })
    }

    /// Length of the header plus the version 1 data block that follows it.
    fn v1_len(&self) -> usize {
        44 + self.timecnt * 5
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * 8
            + self.isstdcnt
            + self.isutcnt
    }
}

fn parse_offset(s: &str) -> Option<i64> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':').unwrap_or((&s[1..], "0"));
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// `YYYY-MM-DD` into its parts, checking the ranges.
pub fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let mut it = s.splitn(3, '-');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let d = it.next()?.parse().ok()?;
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && civil_from_days(days_from_civil(y, m, d)) == (y, m, d);
    valid.then_some((y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONEINFO: &str = "/usr/share/zoneinfo";

    #[test]
    fn fixed_offset_day_start() {
        let z = Zone::load("+08:00", Path::new(ZONEINFO)).unwrap();
        // 2025-03-10T01:30:00+08:00 is 2025-03-09T17:30:00Z.
        let at = days_from_civil(2025, 3, 9) * DAY_MS + 17 * 3_600_000 + 1_800_000;
        assert_eq!(z.date(at), (2025, 3, 10));
        assert_eq!(
            z.day_start(at),
            days_from_civil(2025, 3, 9) * DAY_MS + 16 * 3_600_000
        );
        assert_eq!(z.day_end(at) - z.day_start(at), DAY_MS);
        assert_eq!(z.date_start(2025, 3, 10), z.day_start(at));
    }

    #[test]
    fn tzif_new_york_has_a_23_hour_day_in_march() {
        let z = Zone::load("America/New_York", Path::new(ZONEINFO)).unwrap();
        let start = z.date_start(2025, 3, 9);
        // Midnight EST is 05:00 UTC; the next midnight is EDT, 04:00 UTC.
        assert_eq!(start, days_from_civil(2025, 3, 9) * DAY_MS + 5 * 3_600_000);
        assert_eq!(z.day_end(start) - start, 23 * 3_600_000);
        assert_eq!(z.date(start), (2025, 3, 9));
        assert_eq!(z.date(start - 1), (2025, 3, 8));
    }

    #[test]
    fn shanghai_is_utc_plus_8() {
        let z = Zone::load("Asia/Shanghai", Path::new(ZONEINFO)).unwrap();
        let at = days_from_civil(2025, 6, 1) * DAY_MS;
        assert_eq!(z.offset_at(at), 8 * 3_600_000);
    }

    #[test]
    fn bad_names_and_files_are_errors() {
        assert!(Zone::load("../etc/passwd", Path::new(ZONEINFO)).is_err());
        assert!(Zone::load("No/Such_Zone", Path::new(ZONEINFO)).is_err());
        assert!(Zone::from_tzif("x", b"TZif2 not really").is_err());
        assert!(Zone::from_tzif("x", &[0u8; 3]).is_err());
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2024-02-29"), Some((2024, 2, 29)));
    }
}
