//! Admission control for new calls, sans-IO: a call is refused (503 with Retry-After) when
//! the engine is at `max_calls`, above `max_cps`, or behind on its input. Refusing early
//! keeps the calls already admitted clean when callers come faster than the engine can
//! serve them; the trunk retries elsewhere or later.

use std::time::{Duration, Instant};

/// How long the engine sheds new calls after it found itself behind.
const OVERLOAD_HOLD: Duration = Duration::from_millis(250);
/// How long the input must stay backed up before it counts as overload: bursts of a few
/// milliseconds are normal at high call rates and clear on their own.
const BACKLOG_LIMIT: Duration = Duration::from_millis(100);
/// Late media ticks per second (of 50 per worker) that mean the workers are starved.
const LATE_TICKS_LIMIT: u64 = 10;

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
    /// Whether falling behind (input backlog, late media ticks) sheds calls too.
    adaptive: bool,
    tokens: f64,
    refilled: Option<Instant>,
    shed_until: Option<Instant>,
    /// Since when every read of the input found a full batch.
    backlog_since: Option<Instant>,
    /// The media workers' late-tick count at the start of the current one-second window.
    late_window: Option<(Instant, u64)>,
}

impl Admission {
    pub fn new(max_calls: usize, max_cps: u32, adaptive: bool) -> Admission {
        Admission {
            max_calls,
            max_cps,
            adaptive,
            tokens: max_cps as f64,
            refilled: None,
            shed_until: None,
            backlog_since: None,
            late_window: None,
        }
    }

    /// One read of the input: `full` when it filled a whole batch (more was waiting). A
    /// backlog that lasts means the engine is behind.
    pub fn input(&mut self, now: Instant, full: bool) {
        if !full {
            self.backlog_since = None;
            return;
        }
        let since = *self.backlog_since.get_or_insert(now);
        if now.duration_since(since) >= BACKLOG_LIMIT {
            self.shed(now);
        }
    }

    /// The media workers' running count of late ticks: many in a second means they are
    /// short of CPU, and new calls would make every call's audio late.
    pub fn media_late_ticks(&mut self, now: Instant, count: u64) {
        let (start, _) = *self.late_window.get_or_insert((now, count));
        if now.duration_since(start) >= Duration::from_secs(1) {
            self.late_window = Some((now, count));
        }
        let base = self.late_window.map_or(count, |(_, base)| base);
        if count.saturating_sub(base) >= LATE_TICKS_LIMIT {
            self.shed(now);
        }
    }

    fn shed(&mut self, now: Instant) {
        if self.adaptive {
            self.shed_until = Some(now + OVERLOAD_HOLD);
        }
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
        let mut a = Admission::new(2, 0, true);
        assert_eq!(a.admit(t, 1), Ok(()));
        assert_eq!(a.admit(t, 2), Err(Refusal::MaxCalls));
    }

    #[test]
    fn the_rate_limit_refills_over_time() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 10, true);
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
    fn many_late_media_ticks_shed_a_few_do_not() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 0, true);
        a.media_late_ticks(t, 0);
        a.media_late_ticks(t + 100 * MS, 3);
        assert_eq!(
            a.admit(t + 100 * MS, 0),
            Ok(()),
            "an occasional late tick is no overload"
        );
        a.media_late_ticks(t + 200 * MS, 12);
        assert_eq!(a.admit(t + 200 * MS, 0), Err(Refusal::Overload));
        a.media_late_ticks(t + 1500 * MS, 12);
        a.media_late_ticks(t + 1600 * MS, 14);
        assert_eq!(
            a.admit(t + 1600 * MS, 0),
            Ok(()),
            "a new window starts from the count then"
        );
    }

    #[test]
    fn a_lasting_backlog_sheds_for_a_moment_a_burst_does_not() {
        let t = Instant::now();
        let mut a = Admission::new(1000, 0, true);
        a.input(t, true);
        a.input(t + 50 * MS, true);
        a.input(t + 60 * MS, false);
        a.input(t + 99 * MS, true);
        assert_eq!(a.admit(t + 100 * MS, 0), Ok(()), "the burst cleared");
        a.input(t + 200 * MS, true);
        assert_eq!(a.admit(t + 200 * MS, 0), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 449 * MS, 0), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 450 * MS, 0), Ok(()));
    }

    #[test]
    fn without_adaptive_shedding_only_the_fixed_limits_refuse() {
        let t = Instant::now();
        let mut a = Admission::new(2, 0, false);
        a.input(t, true);
        a.input(t + 200 * MS, true);
        a.media_late_ticks(t + 200 * MS, 0);
        a.media_late_ticks(t + 300 * MS, 50);
        assert_eq!(a.admit(t + 300 * MS, 1), Ok(()));
        assert_eq!(a.admit(t + 300 * MS, 2), Err(Refusal::MaxCalls));
    }
}
