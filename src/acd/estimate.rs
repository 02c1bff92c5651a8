//! Estimated wait time for a queued caller, from the queue's recent handle times and the
//! agents staffed for the call.
//!
//! EWT = position × AHT / N, where
//! - position is the caller's place in the queue (1 = next),
//! - AHT is the mean handle time (talk time + the queue's wrap-up time) of the queue's last
//!   `WINDOW` completed calls, or the queue's `handle_time_estimate_s` before it has any,
//! - N is the number of members logged in, not paused, who may take this call (they speak
//!   the caller's language, or the language requirement has relaxed).
//!
//! N agents working through calls of mean length AHT free one every AHT / N on average, and
//! the caller needs `position` of those. With N = 0 there is nothing to estimate from, and
//! the estimate is `None` (the announcement then gives the position only).

use std::collections::VecDeque;
use std::time::Duration;

/// Completed calls the mean handle time is taken over.
pub const WINDOW: usize = 20;

/// The queue's most recent handle times.
#[derive(Debug, Clone)]
pub struct HandleTimes {
    recent: VecDeque<Duration>,
    sum: Duration,
    default: Duration,
}

impl HandleTimes {
    pub fn new(default: Duration) -> HandleTimes {
        HandleTimes {
            recent: VecDeque::with_capacity(WINDOW),
            sum: Duration::ZERO,
            default,
        }
    }

    pub fn record(&mut self, handle: Duration) {
        if self.recent.len() == WINDOW
            && let Some(old) = self.recent.pop_front()
        {
            self.sum -= old;
        }
        self.recent.push_back(handle);
        self.sum += handle;
    }

    /// The mean over the window, or the configured default before any call completed.
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.recent.len()) {
            Ok(n) if n > 0 => self.sum / n,
            _ => self.default,
        }
    }
}

/// position × AHT / staffed; `None` when nobody is staffed.
pub fn estimated_wait(position: u32, mean_handle: Duration, staffed: u32) -> Option<Duration> {
    if staffed == 0 {
        return None;
    }
    Some(mean_handle.saturating_mul(position) / staffed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_uses_the_default_then_the_last_window_of_calls() {
        let mut h = HandleTimes::new(Duration::from_secs(180));
        assert_eq!(h.mean(), Duration::from_secs(180));
        h.record(Duration::from_secs(100));
        h.record(Duration::from_secs(200));
        assert_eq!(h.mean(), Duration::from_secs(150));
        for _ in 0..WINDOW {
            h.record(Duration::from_secs(60));
        }
        assert_eq!(h.mean(), Duration::from_secs(60));
    }

    #[test]
    fn estimate_scales_with_position_and_divides_by_staff() {
        let aht = Duration::from_secs(120);
        assert_eq!(estimated_wait(3, aht, 2), Some(Duration::from_secs(180)));
        assert_eq!(estimated_wait(1, aht, 4), Some(Duration::from_secs(30)));
        assert_eq!(estimated_wait(1, aht, 0), None);
    }
}
