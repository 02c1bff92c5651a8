//! Admission control for new calls, sans-IO: a call is refused (503 with Retry-After) when
//! the engine is at `max_calls`, above `max_cps`, or behind on its input. Refusing early
//! keeps the calls already admitted clean when callers come faster than the engine can
//! serve them; the trunk retries elsewhere or later.
//!
//! Refusals are fair between sources (trunks, PBXs): one source flooding the engine must
//! not take every call slot or every refusal. Past three quarters of `max_calls`, a source
//! already holding its share (`max_calls` over the sources with calls, at least two: the
//! last quarter is kept for a source that has none yet) is refused while the others still
//! get in; while shedding for rate or overload, a source that was admitted less than the
//! average source in the last second still gets in. `fair_share = false` turns both off
//! (one trunk carries every call). Owns the count of calls in progress per source.

#![warn(unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::IpAddr;
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
    /// The engine is nearly full and this source holds its share of the calls.
    SourceShare,
    /// The call's named trunk carries its `max_calls` already.
    TrunkCalls,
    /// The call's named trunk started its `max_cps` in the last second.
    TrunkRate,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxCalls => "max_calls",
            Refusal::Rate => "max_cps",
            Refusal::Overload => "overload",
            Refusal::SourceShare => "source_share",
            Refusal::TrunkCalls => "trunk_max_calls",
            Refusal::TrunkRate => "trunk_max_cps",
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
    /// Whether refusals are shared out between sources.
    fair: bool,
    tokens: f64,
    refilled: Option<Instant>,
    shed_until: Option<Instant>,
    /// Since when every read of the input found a full batch.
    backlog_since: Option<Instant>,
    /// The media workers' late-tick count at the start of the current one-second window.
    late_window: Option<(Instant, u64)>,
    /// Calls in progress per source, and their sum.
    calls: HashMap<IpAddr, usize>,
    total: usize,
    /// Calls admitted per source since `recent_since` (a one-second window).
    recent: HashMap<IpAddr, u32>,
    recent_since: Option<Instant>,
}

impl Admission {
    pub fn new(max_calls: usize, max_cps: u32, adaptive: bool, fair: bool) -> Admission {
        Admission {
            max_calls,
            max_cps,
            adaptive,
            fair,
            tokens: max_cps as f64,
            refilled: None,
            shed_until: None,
            backlog_since: None,
            late_window: None,
            calls: HashMap::new(),
            total: 0,
            recent: HashMap::new(),
            recent_since: None,
        }
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.total
    }

    /// A call admitted from `source` ended.
    pub fn ended(&mut self, source: IpAddr) {
        if let Some(n) = self.calls.get_mut(&source) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.calls.remove(&source);
            }
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

    /// Whether a new call from `source` may start now; if so it counts as in progress
    /// until `ended`.
    pub fn admit(&mut self, now: Instant, source: IpAddr) -> Result<(), Refusal> {
        if self.total >= self.max_calls {
            return Err(Refusal::MaxCalls);
        }
        let holding = self.calls.get(&source).copied().unwrap_or(0);
        if self.fair && self.total * 4 >= self.max_calls * 3 {
            let sources = self.calls.len() + usize::from(holding == 0);
            if holding >= self.max_calls / sources.max(2) {
                return Err(Refusal::SourceShare);
            }
        }
        if self
            .recent_since
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.recent.clear();
            self.recent_since = Some(now);
        }
        // A source admitted less than the average one lately is not what overloads the
        // engine: shedding passes it by.
        let lately = self.recent.get(&source).copied().unwrap_or(0);
        let admitted: u32 = self.recent.values().sum();
        let quiet = self.fair
            && !self.recent.is_empty()
            && u64::from(lately) * (self.recent.len() as u64) < u64::from(admitted);
        if self.shed_until.is_some_and(|t| now < t) && !quiet {
            return Err(Refusal::Overload);
        }
        if self.max_cps > 0 {
            let elapsed = self
                .refilled
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
            self.tokens = (self.tokens + elapsed * self.max_cps as f64).min(self.max_cps as f64);
            self.refilled = Some(now);
            if self.tokens < 1.0 && !quiet {
                return Err(Refusal::Rate);
            }
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
        *self.calls.entry(source).or_default() += 1;
        self.total += 1;
        *self.recent.entry(source).or_default() += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn calls_over_the_limit_are_refused_until_one_ends() {
        let t = Instant::now();
        let trunk = ip("10.0.0.1");
        let mut a = Admission::new(2, 0, true, false);
        assert_eq!(a.admit(t, trunk), Ok(()));
        assert_eq!(a.admit(t, trunk), Ok(()));
        assert_eq!(a.admit(t, trunk), Err(Refusal::MaxCalls));
        assert_eq!(a.calls(), 2);
        a.ended(trunk);
        assert_eq!(a.admit(t, trunk), Ok(()));
        a.ended(ip("10.9.9.9"));
        assert_eq!(a.calls(), 2, "an unknown source ends nothing");
    }

    #[test]
    fn the_rate_limit_refills_over_time() {
        let t = Instant::now();
        let trunk = ip("10.0.0.1");
        let mut a = Admission::new(1000, 10, true, true);
        let admitted = (0..15).filter(|_| a.admit(t, trunk).is_ok()).count();
        assert_eq!(admitted, 10, "a full bucket holds one second of calls");
        assert_eq!(a.admit(t + 50 * MS, trunk), Err(Refusal::Rate));
        assert_eq!(
            a.admit(t + 100 * MS, trunk),
            Ok(()),
            "one call's worth refilled"
        );
    }

    #[test]
    fn many_late_media_ticks_shed_a_few_do_not() {
        let t = Instant::now();
        let trunk = ip("10.0.0.1");
        let mut a = Admission::new(1000, 0, true, true);
        a.media_late_ticks(t, 0);
        a.media_late_ticks(t + 100 * MS, 3);
        assert_eq!(
            a.admit(t + 100 * MS, trunk),
            Ok(()),
            "an occasional late tick is no overload"
        );
        a.media_late_ticks(t + 200 * MS, 12);
        assert_eq!(a.admit(t + 200 * MS, trunk), Err(Refusal::Overload));
        a.media_late_ticks(t + 1500 * MS, 12);
        a.media_late_ticks(t + 1600 * MS, 14);
        assert_eq!(
            a.admit(t + 1600 * MS, trunk),
            Ok(()),
            "a new window starts from the count then"
        );
    }

    #[test]
    fn a_lasting_backlog_sheds_for_a_moment_a_burst_does_not() {
        let t = Instant::now();
        let trunk = ip("10.0.0.1");
        let mut a = Admission::new(1000, 0, true, true);
        a.input(t, true);
        a.input(t + 50 * MS, true);
        a.input(t + 60 * MS, false);
        a.input(t + 99 * MS, true);
        assert_eq!(a.admit(t + 100 * MS, trunk), Ok(()), "the burst cleared");
        a.input(t + 200 * MS, true);
        assert_eq!(a.admit(t + 200 * MS, trunk), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 449 * MS, trunk), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 450 * MS, trunk), Ok(()));
    }

    #[test]
    fn without_adaptive_shedding_only_the_fixed_limits_refuse() {
        let t = Instant::now();
        let trunk = ip("10.0.0.1");
        let mut a = Admission::new(2, 0, false, true);
        a.input(t, true);
        a.input(t + 200 * MS, true);
        a.media_late_ticks(t + 200 * MS, 0);
        a.media_late_ticks(t + 300 * MS, 50);
        assert_eq!(a.admit(t + 300 * MS, trunk), Ok(()));
        assert_eq!(a.admit(t + 300 * MS, ip("10.0.0.2")), Ok(()));
        assert_eq!(a.admit(t + 300 * MS, trunk), Err(Refusal::MaxCalls));
    }

    #[test]
    fn a_flooding_source_leaves_room_and_refusals_for_the_others() {
        let t = Instant::now();
        let (flood, trunk) = (ip("192.0.2.66"), ip("10.0.0.1"));
        let mut a = Admission::new(100, 0, true, true);
        let flooded = (0..200).filter(|_| a.admit(t, flood).is_ok()).count();
        assert_eq!(flooded, 75, "one source alone stops at three quarters");
        assert_eq!(a.admit(t, flood), Err(Refusal::SourceShare));
        let answered = (0..100).filter(|_| a.admit(t, trunk).is_ok()).count();
        assert_eq!(answered, 25, "the trunk gets the rest");
        assert_eq!(a.admit(t, trunk), Err(Refusal::MaxCalls));

        // Shedding under overload passes by a source admitted less than the average.
        let mut a = Admission::new(10_000, 0, true, true);
        for _ in 0..500 {
            a.admit(t, flood).expect("room");
        }
        a.admit(t, trunk).expect("room");
        a.input(t, true);
        a.input(t + 100 * MS, true);
        assert_eq!(a.admit(t + 100 * MS, flood), Err(Refusal::Overload));
        assert_eq!(a.admit(t + 100 * MS, trunk), Ok(()));

        // With fair_share off, one trunk may fill the engine.
        let mut a = Admission::new(100, 0, true, false);
        assert_eq!((0..200).filter(|_| a.admit(t, trunk).is_ok()).count(), 100);
    }
}
