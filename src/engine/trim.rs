//! Giving freed memory back to the system. glibc keeps memory freed by ended calls in its
//! arenas for reuse, so after a busy hour the engine's RSS would stay at its peak (measured
//! in bench/sip_load.py: 2,000 held calls took 50 MB that stayed after they ended).
//! `malloc_trim` releases free pages from every arena; it is cheap when little is free.

use std::time::Duration;

unsafe extern "C" {
    /// glibc: release free memory at the top of the heap and in every arena (glibc >= 2.8).
    fn malloc_trim(pad: usize) -> i32;
}

/// Trims every `period`, for the life of the runtime.
pub async fn periodically(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // SAFETY: malloc_trim takes a plain integer and only walks glibc's own heap
        // structures under glibc's locks; it has no preconditions on the caller.
        unsafe {
            malloc_trim(0);
        }
    }
}
