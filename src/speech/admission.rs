//! Who may start listening, decided from measured decoder load, sans-IO. A listening session
//! costs nothing while its caller is silent (the voice-activity gate feeds the recogniser
//! speech only), so capacity is not a count of recognisers: a new session is admitted
//! while the decoder threads were busy less than `max_load` of the recent window, the audio
//! waiting for them is short, and the session count is under its hard cap. Time is an
//! input (`now`); the decoder threads report their busy time with `handle_busy`.

use std::time::{Duration, Instant};

/// The admission limits of one language's decoders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Decoder threads.
    pub decoders: usize,
    /// Sessions listening at once, whatever the load (memory and descriptors are finite).
    pub max_sessions: usize,
    /// Share of the decoders' time, 0..1, above which new sessions are refused. 1 turns
    /// load admission off (offline recognition feeds audio as fast as it decodes).
    pub max_load: f64,
    /// Audio waiting to be decoded, per decoder, above which new sessions are refused: the
    /// load figure lags a sudden burst of speakers, the queue does not.
    pub max_queued: Duration,
}

/// Why a session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Sessions,
    Load,
    Queue,
}

/// The load window: `BUCKETS` buckets of `BUCKET` each.
const BUCKET: Duration = Duration::from_millis(250);
const BUCKETS: usize = 8;

#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    /// Decoder busy time per bucket, oldest first.
    busy: [Duration; BUCKETS],
    /// Start of the newest bucket.
    newest: Option<Instant>,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            busy: [Duration::ZERO; BUCKETS],
            newest: None,
        }
    }

    /// A decoder thread spent `busy` decoding, ending at `now`.
    pub fn handle_busy(&mut self, now: Instant, busy: Duration) {
        self.advance(now);
        self.busy[BUCKETS - 1] += busy;
    }

    /// The share of decoder time used over the window ending at `now`, 0..1 (more when
    /// reports bunch up at a bucket edge).
    pub fn load(&mut self, now: Instant) -> f64 {
        self.advance(now);
        let capacity = BUCKET.as_secs_f64() * BUCKETS as f64 * self.limits.decoders.max(1) as f64;
        self.busy.iter().map(Duration::as_secs_f64).sum::<f64>() / capacity
    }

    /// Whether one more session may start, with `sessions` running and `queued` audio
    /// waiting for the decoders.
    pub fn admit(
        &mut self,
        now: Instant,
        sessions: usize,
        queued: Duration,
    ) -> Result<(), Refusal> {
        if sessions >= self.limits.max_sessions {
            return Err(Refusal::Sessions);
        }
        if self.limits.max_load >= 1.0 {
            return Ok(());
        }
        if queued > self.limits.max_queued * self.limits.decoders.max(1) as u32 {
            return Err(Refusal::Queue);
        }
        if self.load(now) > self.limits.max_load {
            return Err(Refusal::Load);
        }
        Ok(())
    }

    /// Moves the window so that its newest bucket holds `now`.
    fn advance(&mut self, now: Instant) {
        let Some(newest) = self.newest else {
            self.newest = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(newest);
        let steps = (elapsed.as_nanos() / BUCKET.as_nanos()) as usize;
        if steps == 0 {
            return;
        }
        let shift = steps.min(BUCKETS);
        self.busy.rotate_left(shift);
        for b in &mut self.busy[BUCKETS - shift..] {
            *b = Duration::ZERO;
        }
        self.newest = Some(newest + BUCKET * steps as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            decoders: 2,
            max_sessions: 3,
            max_load: 0.8,
            max_queued: Duration::from_secs(1),
        }
    }

    #[test]
    fn idle_decoders_admit_up_to_the_session_cap() {
        let now = Instant::now();
        let mut a = Admission::new(limits());
        assert_eq!(a.admit(now, 0, Duration::ZERO), Ok(()));
        assert_eq!(a.admit(now, 2, Duration::ZERO), Ok(()));
        assert_eq!(a.admit(now, 3, Duration::ZERO), Err(Refusal::Sessions));
    }

    #[test]
    fn measured_load_refuses_and_recovers_as_the_window_moves() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits());
        // Two decoders busy 90% of every 250 ms for two seconds.
        for i in 1..=8u32 {
            let now = t0 + BUCKET * i;
            a.handle_busy(now, BUCKET.mul_f64(0.9));
            a.handle_busy(now, BUCKET.mul_f64(0.9));
        }
        let busy_until = t0 + BUCKET * 8;
        assert!(
            (a.load(busy_until) - 0.9).abs() < 0.12,
            "{}",
            a.load(busy_until)
        );
        assert_eq!(a.admit(busy_until, 0, Duration::ZERO), Err(Refusal::Load));
        let mut offline = Admission::new(Limits {
            max_load: 1.0,
            ..limits()
        });
        offline.handle_busy(busy_until, BUCKET * 16);
        assert_eq!(
            offline.admit(busy_until, 2, Duration::from_secs(60)),
            Ok(())
        );
        // Half the window later the old buckets have gone: 0.45.
        let later = busy_until + BUCKET * 4;
        assert!(a.load(later) < 0.6, "{}", a.load(later));
        assert_eq!(a.admit(later, 0, Duration::ZERO), Ok(()));
        // A whole idle window: nothing left.
        assert_eq!(a.load(later + BUCKET * 20), 0.0);
    }

    #[test]
    fn a_queue_of_audio_refuses_before_the_load_shows_it() {
        let now = Instant::now();
        let mut a = Admission::new(limits());
        assert_eq!(a.admit(now, 0, Duration::from_millis(1900)), Ok(()));
        assert_eq!(
            a.admit(now, 0, Duration::from_millis(2100)),
            Err(Refusal::Queue)
        );
    }
}
