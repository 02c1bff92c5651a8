//! The stats actor: the one owner of the event log and the fold. It takes events from the
//! `EventSink`'s receiver in batches, writes each batch to SQLite (and the queue_log), then
//! folds it and publishes it to subscribers; queries arrive as messages. It runs on its own
//! thread with a small runtime, so SQLite's blocking writes never stall the engine's tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::events::{EpochMs, Event, EventKind, now_ms};
use crate::metrics::{Counter, Registry};

use super::config::{FoldSettings, StatsConfig};
use super::figures::{Overview, QueueDay};
use super::fold::{Fold, Roster};
use super::log::{EventLog, LogError, StoredEvent};
use super::queue_log::{self, QueueLogFile};
use super::tz::ZoneError;

/// Events taken from the channel per transaction at most: big enough to amortise the
/// fsync under load, small enough to keep one transaction short.
const MAX_BATCH: usize = 1024;
/// How long the first event of a batch waits for others before the batch is written.
const GROUP_COMMIT: Duration = Duration::from_millis(10);
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cannot start the stats thread: {0}")]
    Thread(std::io::Error),
    #[error("the stats actor has stopped")]
    Stopped,
}

/// What subscribers (the live stream) receive.
#[derive(Debug, Clone)]
pub enum Update {
    /// A batch just made durable and folded.
    Events(Arc<Vec<StoredEvent>>),
    /// The figures after recent batches, at most one per `publish_ms`.
    Overview(Arc<Overview>),
}

enum Request {
    Overview {
        now: EpochMs,
        reply: oneshot::Sender<Overview>,
    },
    QueueDay {
        queue: String,
        date: Option<(i32, u32, u32)>,
        now: EpochMs,
        reply: oneshot::Sender<Option<QueueDay>>,
    },
    Recent {
        limit: u32,
        before: Option<i64>,
        reply: oneshot::Sender<Result<Vec<StoredEvent>, LogError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// How other tasks talk to the stats actor. Cheap to clone.
#[derive(Clone)]
pub struct StatsHandle {
    requests: mpsc::Sender<Request>,
    updates: broadcast::Sender<Update>,
}

impl StatsHandle {
    pub async fn overview(&self, now: EpochMs) -> Result<Overview, StatsError> {
        self.ask(|reply| Request::Overview { now, reply }).await
    }

    /// One queue's local calendar day (year, month, day), today when `None`; `None` for a
    /// queue the fold has never seen.
    pub async fn queue_day(
        &self,
        queue: &str,
        date: Option<(i32, u32, u32)>,
        now: EpochMs,
    ) -> Result<Option<QueueDay>, StatsError> {
        let queue = queue.to_owned();
        self.ask(|reply| Request::QueueDay {
            queue,
            date,
            now,
            reply,
        })
        .await
    }

    /// The newest stored events, newest first, optionally only those before sequence `before`.
    pub async fn recent(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<StoredEvent>, StatsError> {
        Ok(self
            .ask(|reply| Request::Recent {
                limit,
                before,
                reply,
            })
            .await??)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    async fn ask<T>(
        &self,
        req: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, StatsError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(req(tx))
            .await
            .map_err(|_| StatsError::Stopped)?;
        rx.await.map_err(|_| StatsError::Stopped)
    }
}

/// The running actor: its handle, and the thread to wait for after `stop`.
pub struct Stats {
    pub handle: StatsHandle,
    thread: std::thread::JoinHandle<()>,
}

impl Stats {
    /// Opens the log, replays `history_days` of it into a fresh fold, records
    /// `EngineStarted`, and starts the actor on its own thread reading `events`.
    pub fn start(
        config: &StatsConfig,
        roster: &Roster,
        events: mpsc::UnboundedReceiver<Event>,
        metrics: &Registry,
    ) -> Result<Stats, StatsError> {
        let settings = FoldSettings::from_config(config)?;
        let mut log = EventLog::open(&config.database)?;
        let now = now_ms();
        let retention_ms = i64::from(config.retention_days.max(1)) * DAY_MS;
        let deleted = log.delete_before(now - retention_ms)?;
        let mut fold = replay(&log, settings, now)?;
        fold.roster(now, roster);
        // Calls the last run never ended are closed at its last event, then the start.
        let closing = fold.closing_events();
        let last = if fold.latest == i64::MIN {
            now
        } else {
            fold.latest.min(now)
        };
        let interrupted = closing.len();
        let opening: Vec<Event> = closing
            .into_iter()
            .map(|kind| Event { at: last, kind })
            .chain(std::iter::once(Event {
                at: now,
                kind: EventKind::EngineStarted {},
            }))
            .collect();
        let stored = log.append(&opening)?;
        tracing::info!(
            path = %config.database.display(),
            deleted,
            interrupted,
            "event log opened"
        );
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "calls the last run left open are logged as interrupted"
            );
        }
        let (req_tx, req_rx) = mpsc::channel(256);
        let (updates, _) = broadcast::channel(256);
        let mut actor = Actor {
            log,
            fold,
            queue_log: config.queue_log.as_deref().map(QueueLogFile::new),
            pending: Vec::new(),
            updates: updates.clone(),
            dirty: true,
            retention_ms,
            logged: metrics.counter(
                "hotline_events_logged_total",
                "Events written to the event log",
                &[],
            ),
            log_errors: metrics.counter(
                "hotline_event_log_errors_total",
                "Failed event log writes (the batch is retried)",
                &[],
            ),
        };
        actor.logged.add(stored.len() as u64);
        actor.folded(stored);
        let publish = Duration::from_millis(config.publish_ms.max(10));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(StatsError::Thread)?;
        let thread = std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || runtime.block_on(actor.run(events, req_rx, publish)))
            .map_err(StatsError::Thread)?;
        Ok(Stats {
            handle: StatsHandle {
                requests: req_tx,
                updates,
            },
            thread,
        })
    }

    /// Writes every event already sent, then stops the actor and waits for its thread.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self
            .handle
            .requests
            .send(Request::Stop { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// A fold of the log's last `history_days` as seen at `now`: what the actor starts from,
/// and what `hotline stats --db` shows.
pub fn replay(log: &EventLog, settings: FoldSettings, now: EpochMs) -> Result<Fold, LogError> {
    let from = Fold::window_start_for(&settings, now);
    let mut fold = Fold::new(settings);
    let n = log.replay_since(from, |s| fold.apply(&s.event))?;
    tracing::info!(events = n, "event log replayed");
    Ok(fold)
}

struct Actor {
    log: EventLog,
    fold: Fold,
    queue_log: Option<QueueLogFile>,
    /// Events not yet durable (the last write failed): retried before anything newer.
    pending: Vec<Event>,
    updates: broadcast::Sender<Update>,
    dirty: bool,
    retention_ms: i64,
    logged: Arc<Counter>,
    log_errors: Arc<Counter>,
}

impl Actor {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut requests: mpsc::Receiver<Request>,
        publish: Duration,
    ) {
        let mut publish_tick = tokio::time::interval(publish);
        let mut retention_tick = tokio::time::interval(Duration::from_secs(3600));
        let mut retry_tick = tokio::time::interval(Duration::from_secs(1));
        let mut events_open = true;
        loop {
            tokio::select! {
                biased;
                ev = events.recv(), if events_open => match ev {
                    Some(ev) => {
                        // Group commit: the events of the next few milliseconds share this
                        // batch's transaction and fsync, so a busy engine pays one fsync per
                        // window rather than per call.
                        tokio::time::sleep(GROUP_COMMIT).await;
                        let mut batch = vec![ev];
                        while batch.len() < MAX_BATCH {
                            match events.try_recv() {
                                Ok(ev) => batch.push(ev),
                                Err(_) => break,
                            }
                        }
                        self.commit(batch);
                    }
                    None => events_open = false,
                },
                req = requests.recv() => match req {
                    Some(Request::Stop { reply }) => {
                        let mut rest = Vec::new();
                        while let Ok(ev) = events.try_recv() {
                            rest.push(ev);
                        }
                        self.commit(rest);
                        let _ = reply.send(());
                        return;
                    }
                    Some(req) => self.answer(req),
                    None => return,
                },
                _ = retry_tick.tick(), if !self.pending.is_empty() => self.commit(Vec::new()),
                _ = publish_tick.tick(), if self.dirty => {
                    self.dirty = false;
                    let overview = self.fold.overview(now_ms());
                    let _ = self.updates.send(Update::Overview(Arc::new(overview)));
                }
                _ = retention_tick.tick() => {
                    match self.log.delete_before(now_ms() - self.retention_ms) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "event log retention"),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
        }
    }

    /// Makes the batch durable, then folds and publishes it. On a write error the events
    /// stay pending, ahead of any later ones, and are retried every second.
    fn commit(&mut self, batch: Vec<Event>) {
        self.pending.extend(batch);
        if self.pending.is_empty() {
            return;
        }
        match self.log.append(&self.pending) {
            Ok(stored) => {
                self.pending.clear();
                self.logged.add(stored.len() as u64);
                self.folded(stored);
            }
            Err(e) => {
                self.log_errors.inc();
                tracing::error!(pending = self.pending.len(), "{e}; will retry");
            }
        }
    }

    fn folded(&mut self, stored: Vec<StoredEvent>) {
        let mut lines = Vec::new();
        for s in &stored {
            if self.queue_log.is_some() {
                lines.extend(queue_log::lines(&s.event, &self.fold));
            }
            self.fold.apply(&s.event);
        }
        if let Some(q) = &self.queue_log
            && let Err(e) = q.append(&lines)
        {
            tracing::error!("queue_log: {e}");
        }
        self.dirty = true;
        let _ = self.updates.send(Update::Events(Arc::new(stored)));
    }

    fn answer(&mut self, req: Request) {
        match req {
            Request::Overview { now, reply } => {
                let _ = reply.send(self.fold.overview(now));
            }
            Request::QueueDay {
                queue,
                date,
                now,
                reply,
            } => {
                let zone = &self.fold.settings().zone;
                let day = date.map_or(now, |(y, m, d)| zone.date_start(y, m, d));
                let _ = reply.send(self.fold.queue_day(&queue, day, now));
            }
            Request::Recent {
                limit,
                before,
                reply,
            } => {
                let _ = reply.send(self.log.recent(limit, before));
            }
            Request::Stop { reply } => {
                let _ = reply.send(());
            }
        }
    }
}
