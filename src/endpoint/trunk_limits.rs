//! Per-trunk limits on new calls, sans-IO: a named trunk may carry at most its `max_calls`
//! calls at once and start at most `max_cps` a second (a one-second token bucket), so one
//! PBX or carrier cannot take the capacity the others need, whatever addresses it sends
//! from. Owns the count of calls in progress per limited trunk; trunks without limits are
//! not tracked (the engine-wide `admission` still applies to every call).

#![warn(unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

use super::admission::Refusal;

/// `[trunks.named.NAME] max_calls` and `max_cps`; 0 is no limit of the trunk's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrunkLimit {
    pub max_calls: usize,
    pub max_cps: u32,
}

#[derive(Debug)]
struct Trunk {
    limit: TrunkLimit,
    calls: usize,
    tokens: f64,
    refilled: Option<Instant>,
}

impl Trunk {
    fn refill(&mut self, now: Instant) {
        let elapsed = self
            .refilled
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        let max = f64::from(self.limit.max_cps);
        self.tokens = (self.tokens + elapsed * max).min(max);
        self.refilled = Some(now);
    }
}

#[derive(Debug, Default)]
pub struct TrunkLimits {
    trunks: HashMap<String, Trunk>,
}

impl TrunkLimits {
    pub fn new(limits: impl IntoIterator<Item = (String, TrunkLimit)>) -> TrunkLimits {
        let trunks = limits
            .into_iter()
            .filter(|(_, l)| l.max_calls > 0 || l.max_cps > 0)
            .map(|(name, limit)| {
                let trunk = Trunk {
                    limit,
                    calls: 0,
                    tokens: f64::from(limit.max_cps),
                    refilled: None,
                };
                (name, trunk)
            })
            .collect();
        TrunkLimits { trunks }
    }

    /// Whether `trunk` may start a call now (nothing is counted yet: `started` does).
    pub fn check(&mut self, now: Instant, trunk: Option<&str>) -> Result<(), Refusal> {
        let Some(t) = trunk.and_then(|name| self.trunks.get_mut(name)) else {
            return Ok(());
        };
        if t.limit.max_calls > 0 && t.calls >= t.limit.max_calls {
            return Err(Refusal::TrunkCalls);
        }
        if t.limit.max_cps > 0 {
            t.refill(now);
            if t.tokens < 1.0 {
                return Err(Refusal::TrunkRate);
            }
        }
        Ok(())
    }

    /// A call `check` let through was admitted: it counts until `ended`.
    pub fn started(&mut self, now: Instant, trunk: Option<&str>) {
        if let Some(t) = trunk.and_then(|name| self.trunks.get_mut(name)) {
            t.calls += 1;
            if t.limit.max_cps > 0 {
                t.refill(now);
                t.tokens = (t.tokens - 1.0).max(0.0);
            }
        }
    }

    pub fn ended(&mut self, trunk: Option<&str>) {
        if let Some(t) = trunk.and_then(|name| self.trunks.get_mut(name)) {
            t.calls = t.calls.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> TrunkLimits {
        TrunkLimits::new([
            (
                "pbx".to_owned(),
                TrunkLimit {
                    max_calls: 2,
                    max_cps: 0,
                },
            ),
            (
                "carrier".to_owned(),
                TrunkLimit {
                    max_calls: 0,
                    max_cps: 2,
                },
            ),
            ("open".to_owned(), TrunkLimit::default()),
        ])
    }

    fn start(l: &mut TrunkLimits, now: Instant, trunk: &str) -> Result<(), Refusal> {
        l.check(now, Some(trunk))?;
        l.started(now, Some(trunk));
        Ok(())
    }

    #[test]
    fn a_trunk_holds_at_most_its_calls_until_one_ends() {
        let t = Instant::now();
        let mut l = limits();
        assert_eq!(start(&mut l, t, "pbx"), Ok(()));
        assert_eq!(start(&mut l, t, "pbx"), Ok(()));
        assert_eq!(start(&mut l, t, "pbx"), Err(Refusal::TrunkCalls));
        assert_eq!(
            start(&mut l, t, "open"),
            Ok(()),
            "other trunks are unaffected"
        );
        assert_eq!(l.check(t, None), Ok(()), "calls on no named trunk too");
        l.ended(Some("pbx"));
        assert_eq!(start(&mut l, t, "pbx"), Ok(()));
    }

    #[test]
    fn a_trunk_starts_at_most_its_rate_and_refills_in_a_second() {
        let t = Instant::now();
        let mut l = limits();
        assert_eq!(start(&mut l, t, "carrier"), Ok(()));
        assert_eq!(start(&mut l, t, "carrier"), Ok(()));
        assert_eq!(start(&mut l, t, "carrier"), Err(Refusal::TrunkRate));
        let later = t + Duration::from_millis(500);
        assert_eq!(
            start(&mut l, later, "carrier"),
            Ok(()),
            "half a second: one token"
        );
        assert_eq!(start(&mut l, later, "carrier"), Err(Refusal::TrunkRate));
    }
}
