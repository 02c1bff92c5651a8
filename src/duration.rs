//! The one way operators write a duration, in dialplans (`timeout: 5s`) and in the config
//! file (`shutdown_grace_s = "30s"`, or a bare number in the unit the key ends with): a
//! number with `ms`, `s` or `m`. Pure functions; no state.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// `500ms`, `5s`, `1.5s`, `2m` (`min` too); a bare number is seconds.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" | "min" => number * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// `#[serde(deserialize_with)]` for a config key in whole seconds (`_s`): `30` or `"30s"`.
pub fn seconds<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(InUnit::<T>::new(Duration::from_secs(1), "seconds"))
}

/// As `seconds`, for a key that may be left out.
pub fn opt_seconds<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    seconds(d).map(Some)
}

/// `#[serde(deserialize_with)]` for a config key in milliseconds (`_ms`): `700` or `"0.7s"`.
pub fn millis<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(InUnit::<T>::new(Duration::from_millis(1), "milliseconds"))
}

const EXAMPLES: &str = "\"500ms\", \"30s\" or \"2m\"";

/// Reads a number in `unit`s, or a duration that is a whole number of them.
struct InUnit<T> {
    unit: Duration,
    name: &'static str,
    _value: PhantomData<T>,
}

impl<T> InUnit<T> {
    fn new(unit: Duration, name: &'static str) -> Self {
        InUnit {
            unit,
            name,
            _value: PhantomData,
        }
    }
}

impl<T: TryFrom<u64>> Visitor<'_> for InUnit<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a number of {} or a duration such as {EXAMPLES}",
            self.name
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} {} is too long", self.name)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("a duration cannot be negative, not {v}"))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        // A string must say its unit: "30" could be read either way.
        let Some(d) = parse(v).filter(|_| v.trim().ends_with(|c: char| c.is_alphabetic())) else {
            return Err(E::custom(format!(
                "`{v}` is not a duration such as {EXAMPLES}"
            )));
        };
        let (nanos, unit) = (d.as_nanos(), self.unit.as_nanos());
        if nanos % unit != 0 {
            return Err(E::custom(format!(
                "`{v}` is not a whole number of {}",
                self.name
            )));
        }
        let count =
            u64::try_from(nanos / unit).map_err(|_| E::custom(format!("`{v}` is too long")))?;
        self.visit_u64(count)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Keys {
        #[serde(deserialize_with = "super::seconds")]
        grace_s: u64,
        #[serde(default, deserialize_with = "super::opt_seconds")]
        wait_s: Option<u32>,
        #[serde(deserialize_with = "super::millis")]
        delay_ms: u64,
    }

    fn read(text: &str) -> Result<Keys, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn the_dialplan_syntax() {
        assert_eq!(super::parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(super::parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(super::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(super::parse("5"), Some(Duration::from_secs(5)));
        assert_eq!(super::parse("soon"), None);
        assert_eq!(super::parse("5 hours"), None);
        assert_eq!(super::parse("s"), None);
    }

    #[test]
    fn config_keys_take_a_number_in_their_unit_or_a_duration() {
        let k = read("grace_s = 30\nwait_s = \"2m\"\ndelay_ms = \"1.5s\"\n").expect("valid");
        assert_eq!((k.grace_s, k.wait_s, k.delay_ms), (30, Some(120), 1500));
        let k = read("grace_s = \"45s\"\ndelay_ms = 700\n").expect("valid");
        assert_eq!((k.grace_s, k.wait_s, k.delay_ms), (45, None, 700));
    }

    #[test]
    fn wrong_durations_say_what_to_write() {
        let e = read("grace_s = \"500ms\"\ndelay_ms = 1\n").expect_err("not whole seconds");
        assert_eq!(e, "`500ms` is not a whole number of seconds");
        let e = read("grace_s = \"30\"\ndelay_ms = 1\n").expect_err("no unit");
        assert_eq!(
            e,
            "`30` is not a duration such as \"500ms\", \"30s\" or \"2m\""
        );
        let e = read("grace_s = -1\ndelay_ms = 1\n").expect_err("negative");
        assert_eq!(e, "a duration cannot be negative, not -1");
        let e = read("grace_s = 1\nwait_s = 5000000000\ndelay_ms = 1\n").expect_err("u32");
        assert_eq!(e, "5000000000 seconds is too long");
    }
}
