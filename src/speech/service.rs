//! The speech service a call task talks to: `SpeechService::listen` hands out a `Listener`
//! at once or refuses at once (busy, or no recogniser for the language: the caller then
//! gets the DTMF menu); the call pushes 20 ms frames without ever blocking and receives
//! `SpeechEvent`s on a tokio channel. Owns the classifier and one backend per language;
//! the per-session work happens in `vosk_pool` (threads) or `remote` (tokio tasks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::classifier::Classifier;
use super::config::{Backend, SpeechConfig};
use super::endpoint::EndpointConfig;
use super::remote::RemoteBackend;
use super::session::{
    Frame, LangMetrics, Lease, PushError, SessionContext, SpeechEvent, Unavailable,
};
use super::text::TextTools;
use super::vosk_pool::VoskPool;
use super::{Language, SpeechError};
use crate::metrics::{Counter, Registry};

/// Per-listen settings; `None` takes the `[speech]` config.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenOptions {
    pub no_input: Option<Duration>,
    pub end_silence: Option<Duration>,
    pub max_utterance: Option<Duration>,
    /// Audio allowed to wait for the recogniser before frames are dropped.
    pub max_backlog: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            no_input: None,
            end_silence: None,
            max_utterance: None,
            // Longer than any utterance: while the decoders work through a burst of
            // speakers a session's audio waits rather than being lost (30 s of 8 kHz
            // audio is 480 KB, and only sessions that fell behind hold that much).
            max_backlog: Duration::from_secs(30),
        }
    }
}

/// Where a session's frames go: its inbox at the local decoders, or a tokio task's queue.
pub(crate) enum FrameTx {
    Local(Arc<super::vosk_pool::Session>),
    Task(mpsc::Sender<Frame>),
}

enum BackendKind {
    Vosk(VoskPool),
    Server(RemoteBackend),
    None,
}

struct LangBackend {
    language: Language,
    kind: BackendKind,
    metrics: LangMetrics,
}

/// Recognisers for every configured language plus the intent classifier; shared by all
/// calls (`Arc`).
pub struct SpeechService {
    classifier: Arc<Classifier>,
    endpointing: EndpointConfig,
    backends: Vec<LangBackend>,
    load_time: Duration,
}

impl SpeechService {
    /// Loads the dictionaries, the grammar and every configured model, and starts the
    /// recogniser threads. Blocking and slow (about a second per model): call it before
    /// serving, or from `spawn_blocking`.
    pub fn start(
        config: &SpeechConfig,
        registry: &Registry,
    ) -> Result<Arc<SpeechService>, SpeechError> {
        let started = Instant::now();
        let tools = TextTools::load()?;
        let classifier =
            Classifier::load(&config.grammar_dir, tools).map_err(|diags| SpeechError::Grammar {
                dir: config.grammar_dir.clone(),
                count: diags.len(),
                first: diags.first().map(|d| d.to_string()).unwrap_or_default(),
            })?;
        let mut backends = Vec::new();
        for language in Language::ALL {
            let metrics = LangMetrics::new(registry, language);
            let backend = config.backend(language)?;
            let size = match &backend {
                Backend::Vosk { capacity, .. } => capacity.max_sessions,
                Backend::Server { max_sessions, .. } => *max_sessions,
                Backend::None => 0,
            };
            registry
                .gauge(
                    "hotline_speech_max_sessions",
                    "Listening sessions that may run at once, per language (local decoding also admits by measured load)",
                    &[("lang", language.code())],
                )
                .set(size as i64);
            let kind = match backend {
                Backend::Vosk { model, capacity } => BackendKind::Vosk(VoskPool::start(
                    language,
                    &model,
                    capacity,
                    config.vosk_sample_rate,
                )?),
                Backend::Server { url, max_sessions } => {
                    BackendKind::Server(RemoteBackend::new(url, max_sessions))
                }
                Backend::None => BackendKind::None,
            };
            backends.push(LangBackend {
                language,
                kind,
                metrics,
            });
        }
        let load_time = started.elapsed();
        tracing::info!(?load_time, "speech service started");
        Ok(Arc::new(SpeechService {
            classifier: Arc::new(classifier),
            endpointing: config.endpointing(),
            backends,
            load_time,
        }))
    }

    /// How long `start` took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The intent classifier, for text that did not come from a recogniser.
    pub fn classifier(&self) -> &Arc<Classifier> {
        &self.classifier
    }

    /// Whether `lang` has a recogniser at all (busy or not). Without one the flow should
    /// go straight to that language's DTMF menu.
    pub fn has_recognizer(&self, lang: Language) -> bool {
        self.backends
            .iter()
            .any(|b| b.language == lang && !matches!(b.kind, BackendKind::None))
    }

    /// Starts recognising one utterance in `lang`. Never waits: when every recogniser is
    /// busy or none is configured it refuses at once, and the refusal is counted.
    /// A remote (vosk-server) language must be asked from inside a tokio runtime.
    pub fn listen(&self, lang: Language, opts: ListenOptions) -> Result<Listener, Unavailable> {
        let Some(backend) = self.backends.iter().find(|b| b.language == lang) else {
            return Err(Unavailable::NoRecognizer);
        };
        let endpointing = EndpointConfig {
            no_input: opts.no_input.unwrap_or(self.endpointing.no_input),
            end_silence: opts.end_silence.unwrap_or(self.endpointing.end_silence),
            max_utterance: opts.max_utterance.unwrap_or(self.endpointing.max_utterance),
            ..self.endpointing.clone()
        };
        let backlog = (opts.max_backlog.as_millis() / 20).max(1) as usize;
        let (events, rx) = mpsc::unbounded_channel();
        let ctx = SessionContext {
            language: lang,
            endpointing,
            classifier: self.classifier.clone(),
            metrics: backend.metrics.clone(),
            events,
        };
        let wide = matches!(&backend.kind, BackendKind::Vosk(pool) if pool.takes_wide());
        let opened = match &backend.kind {
            BackendKind::Vosk(pool) => pool
                .open(ctx, backlog)
                .map(|(session, lease)| (FrameTx::Local(session), lease)),
            BackendKind::Server(server) => server
                .open(ctx, backlog)
                .map(|(tx, lease)| (FrameTx::Task(tx), lease)),
            BackendKind::None => Err(Unavailable::NoRecognizer),
        };
        match opened {
            Ok((tx, lease)) => Ok(Listener {
                audio: AudioSink {
                    tx,
                    wide,
                    lease: lease.clone(),
                    language: lang,
                    dropped: backend.metrics.dropped.clone(),
                },
                events: SpeechEvents { rx, lease },
            }),
            Err(e) => {
                match e {
                    Unavailable::Busy => backend.metrics.busy.inc(),
                    Unavailable::NoRecognizer => backend.metrics.no_recognizer.inc(),
                }
                tracing::debug!(lang = %lang, reason = %e, "speech unavailable");
                Err(e)
            }
        }
    }
}

/// One utterance being recognised. Dropping it ends the session and gives the recogniser
/// back at once.
pub struct Listener {
    audio: AudioSink,
    events: SpeechEvents,
}

impl Listener {
    /// Queues a frame of 8 kHz audio (20 ms, 160 samples on a call). Never blocks.
    pub fn push(&self, frame: &[i16]) -> Result<(), PushError> {
        self.audio.push(frame, &[])
    }

    /// The next event; `None` once the session is over and every event was read.
    pub async fn recv(&mut self) -> Option<SpeechEvent> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SpeechEvent> {
        self.events.try_recv()
    }

    pub fn language(&self) -> Language {
        self.audio.language
    }

    /// The audio side (for the media task) and the event side (for the call task).
    /// Dropping either ends the session.
    pub fn split(self) -> (AudioSink, SpeechEvents) {
        (self.audio, self.events)
    }
}

/// The event side of a listener. Dropping it ends the session at once: the call's step is
/// over, and the next step may listen again without waiting for the audio side (which
/// the media worker lets go of on its next tick).
pub struct SpeechEvents {
    rx: mpsc::UnboundedReceiver<SpeechEvent>,
    lease: Arc<Lease>,
}

impl SpeechEvents {
    /// The next event; `None` once the session is over and every event was read.
    pub async fn recv(&mut self) -> Option<SpeechEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SpeechEvent> {
        self.rx.try_recv().ok()
    }
}

impl Drop for SpeechEvents {
    fn drop(&mut self) {
        self.lease.release();
    }
}

/// The audio side of a listener. Dropping it ends the session.
pub struct AudioSink {
    tx: FrameTx,
    /// The recogniser takes 16 kHz audio (a local pool fed at 16 kHz); otherwise a
    /// wideband caller's 16 kHz side is not copied along.
    wide: bool,
    lease: Arc<Lease>,
    language: Language,
    dropped: Arc<Counter>,
}

impl AudioSink {
    /// Queues a frame of 8 kHz audio, with the 16 kHz original when the caller's codec is
    /// wideband (`wide` is empty otherwise). Never blocks.
    pub fn push(&self, narrow: &[i16], wide: &[i16]) -> Result<(), PushError> {
        if self.lease.is_released() {
            return Err(PushError::Ended);
        }
        let frame = Frame::new(narrow, if self.wide { wide } else { &[] });
        let full = match &self.tx {
            FrameTx::Local(session) => match session.push(frame) {
                Ok(()) => false,
                Err(PushError::Backlog) => true,
                Err(PushError::Ended) => return Err(PushError::Ended),
            },
            FrameTx::Task(tx) => match tx.try_send(frame) {
                Ok(()) => false,
                Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(PushError::Ended),
            },
        };
        if full {
            self.dropped.inc();
            return Err(PushError::Backlog);
        }
        Ok(())
    }

    pub fn language(&self) -> Language {
        self.language
    }
}

impl Drop for AudioSink {
    fn drop(&mut self) {
        self.lease.release();
    }
}
