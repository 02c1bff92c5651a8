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
