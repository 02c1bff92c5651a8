//! Waiting at the async edges: the one way a tokio loop sleeps until a sans-IO core's next
//! timeout. Owns nothing; the cores never call it (they only take `now`).

use std::time::Instant;

/// Sleeps until `at`, or for ever when there is nothing to wait for (a core with no
/// timer), so a `select!` arm can take a core's `poll_timeout()` as it is.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Virtual time for the cores' unit tests: a test moves `now`, nothing waits.
#[cfg(test)]
pub mod virtual_time {
    use std::time::Instant;

    /// The timer half of every core's vocabulary.
    pub trait Timed {
        fn poll_timeout(&self) -> Option<Instant>;
        fn handle_timeout(&mut self, now: Instant);
    }

    /// Fires `core`'s timers due by `until`, each at its own instant and in deadline
    /// order (the rule every core follows for a timer that fires late), calling `each`
    /// after every firing with its instant. Returns `until`, the new `now`.
    pub fn advance<T: Timed>(
        core: &mut T,
        until: Instant,
        mut each: impl FnMut(&mut T, Instant),
    ) -> Instant {
        while let Some(at) = core.poll_timeout().filter(|at| *at <= until) {
            core.handle_timeout(at);
            each(core, at);
        }
        until
    }
}
