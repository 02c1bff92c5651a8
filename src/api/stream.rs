//! The live stream (Server-Sent Events): on connect the current overview, then every batch
//! of events as it is made durable (`event: events`) and the figures after it
//! (`event: overview`, throttled by the stats actor). A client that falls behind gets a
//! fresh overview instead of the updates it missed.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::events::now_ms;
use crate::stats::{StatsHandle, Update};

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;

pub(super) async fn stream(
    _: Caller,
    State(s): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let open = StreamSlot::take(&s.streams, s.max_streams).ok_or_else(|| {
        ApiError::Unavailable(format!("{} live streams are open already", s.max_streams))
    })?;
    // Subscribe before reading the overview, so nothing falls between the two.
    let rx = s.stats.subscribe();
    let first = s.stats.overview(now_ms()).await?;
    let first = SseEvent::default().event("overview").json_data(&first).ok();
    let state = (rx, s.stats.clone(), first, open);
    let events = stream::unfold(state, |(mut rx, stats, first, open)| async move {
        if let Some(ev) = first {
            return Some((Ok(ev), (rx, stats, None, open)));
        }
        loop {
            if let Some(ev) = next(&mut rx, &stats).await? {
                return Some((Ok(ev), (rx, stats, None, open)));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(s.keep_alive)))
}

/// One open live stream, counted until the stream is dropped.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<StreamSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        Some(StreamSlot(open.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The next SSE event: `None` when the stats actor is gone (the stream ends), `Some(None)`
/// for an update that could not be encoded (skipped).
async fn next(rx: &mut Receiver<Update>, stats: &StatsHandle) -> Option<Option<SseEvent>> {
    let ev = match rx.recv().await {
        Ok(Update::Events(batch)) => SseEvent::default().event("events").json_data(&*batch),
        Ok(Update::Overview(o)) => SseEvent::default().event("overview").json_data(&*o),
        Err(RecvError::Lagged(_)) => {
            let o = stats.overview(now_ms()).await.ok()?;
            SseEvent::default().event("overview").json_data(&o)
        }
        Err(RecvError::Closed) => return None,
    };
    Some(ev.ok())
}
