//! Admission control for new calls, sans-IO: a call is refused (503 with Retry-After) when
//! the engine is at `max_calls`, above `max_cps`, or behind on its input. Refusing early
//! keeps the calls already admitted clean when callers come faster than the engine can
//! serve them; the trunk retries elsewhere or later.

use std::time::{Duration, Instant};

/// How long the engine sheds new calls after it found itself behind.
const OVERLOAD_HOLD: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MaxCalls,
    Rate,
    Overload,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxCalls => "max_calls",
            Refusal::Rate => "max_cps",
            Refusal::Overload => "overload",
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    max_calls: usize,
    /// New calls per second (a token bucket one second deep); 0: no limit.
    max_cps: u32,
    tokens: f64,
    refilled: Option<Instant>,
    shed_until: Option<Instant>,
    /// The media workers' count of late ticks when last looked at.
    late_ticks: u64,
}

impl Admission {
    pub fn new(max_calls: usize, max_cps: u32) -> Admission {
        Admission {
            max_calls,
            max_cps,
            tokens: max_cps as f64,
            refilled: None,
            shed_until: None,
            late_ticks: 0,
        }
    }

    /// The media workers' running count of late ticks: a rise means they are short of CPU,
    /// and new calls would make every call's audio late.
    pub fn media_late_ticks(&mut self, now: Instant, count: u64) {
        if count > self.late_ticks {
            self.behind(now);
        }
        self.late_ticks = count;
    }

    /// The input queue held more than one batch: the engine is behind.
    pub fn behind(&mut self, now: Instant) {
        self.shed_until = Some(now + OVERLOAD_HOLD);
    }

    /// Whether a new call may start now, with `calls` in progress.
    pub fn admit(&mut self, now: Instant, calls: usize) -> Result<(), Refusal> {
        if calls >= self.max_calls {
            return Err(Refusal::MaxCalls);
        }
        if self.shed_until.is_some_and(|t| now < t) {
            return Err(Refusal::Overload);
        }
        if self.max_cps > 0 {
            let elapsed = self
                .refilled
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
            self.tokens = (self.tokens + elapsed * self.max_cps as f64).min(self.max_cps as f64);
            self.refilled = Some(now);
            if self.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            self.tokens -= 1.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn calls_over_the_limit_are_refused() {
        let t = Instant::now();
        let mut a = Admission::new(2, 0);
        assert_eq!(a.admit(t, 1), Ok(()));
        assert_eq!(a.admit(t, 2), Err(Refusal::MaxCalls));
    }

    #[test]
    fn the_rate_limit_refills_over_time() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 10);
        let admitted = (0..15).filter(|_| a.admit(t, 0).is_ok()).count();
        assert_eq!(admitted, 10, "a full bucket holds one second of calls");
        assert_eq!(a.admit(t + 50 * MS, 0), Err(Refusal::Rate));
        assert_eq!(
            a.admit(t + 100 * MS, 0),
            Ok(()),
            "one call's worth refilled"
        );
    }

    #[test]
    fn late_media_ticks_shed_too() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 0);
        a.media_late_ticks(t, 0);
        assert_eq!(a.admit(t, 0), Ok(()));
        a.media_late_ticks(t, 3);
        assert_eq!(a.admit(t + 10 * MS, 0), Err(Refusal::Overload));
        a.media_late_ticks(t + 300 * MS, 3);
        assert_eq!(a.admit(t + 300 * MS, 0), Ok(()), "no new late tick");
    }

    #[test]
    fn falling_behind_sheds_for_a_moment() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 0);
        a.behind(t);
        assert_eq!(a.admit(t + 249 * MS, 0), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 250 * MS, 0), Ok(()));
    }
}
