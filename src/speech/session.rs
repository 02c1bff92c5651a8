//! One listening session's vocabulary, shared by the service and its backends (the local
//! decoders in `vosk_pool`, the vosk-server client in `remote`): the events a listener
//! receives, why a listen or a push is refused, the lease on a recogniser and the context a
//! backend runs a session with. Types only and their bookkeeping; no backend, no threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Language;
use super::classifier::Classifier;
use super::endpoint::EndpointConfig;
use super::utterance::Recognition;
use crate::metrics::{Counter, Gauge, Registry};

/// What a listener reports, in order; `Final`, `NoInput` and `Failed` end the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// The caller started talking (for barge-in: stop the prompt). Audio time since
    /// `listen`.
    SpeechStarted { at: Duration },
    /// The recogniser's current guess at the whole utterance so far.
    Partial { text: String },
    /// The utterance is over: transcript, words, timing and the intent decision.
    Final(Box<Recognition>),
    /// Nothing was said before the no-input timeout.
    NoInput { at: Duration },
    /// The recogniser failed (server unreachable, decoder error): fall back to DTMF.
    Failed { reason: String },
}

/// Why `listen` refused: the ask step falls back to the DTMF menu at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("every recogniser for this language is busy")]
    Busy,
    #[error("no recogniser is configured for this language")]
    NoRecognizer,
}

/// Why a frame was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The recogniser is behind by `max_backlog`: the frame was dropped (and counted).
    #[error("the recogniser is behind; frame dropped")]
    Backlog,
    /// The session is over (final result given, or the recogniser stopped).
    #[error("the recognition session is over")]
    Ended,
}

/// 20 ms of a caller's audio at 8 kHz (what the endpointer reads, and what every
/// recogniser can take), with the 16 kHz original when the caller's codec is wideband
/// (G.722): a recogniser fed at 16 kHz takes that instead of upsampling.
#[derive(Clone)]
pub(crate) struct Frame {
    /// The 8 kHz samples, then the 16 kHz ones if any: one allocation a frame.
    samples: Box<[i16]>,
    narrow: usize,
}

impl Frame {
    pub fn new(narrow: &[i16], wide: &[i16]) -> Frame {
        Frame {
            samples: [narrow, wide].concat().into(),
            narrow: narrow.len(),
        }
    }

    pub fn narrow(&self) -> &[i16] {
        &self.samples[..self.narrow]
    }

    pub fn wide(&self) -> Option<&[i16]> {
        Some(&self.samples[self.narrow..]).filter(|w| !w.is_empty())
    }
}

/// A claim on one recogniser, given back exactly once: by the session when it ends, or
/// by the listener when it is dropped, whichever comes first.
pub(crate) struct Lease {
    give_back: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Lease {
    pub fn new(give_back: impl FnOnce() + Send + 'static) -> Arc<Lease> {
        Arc::new(Lease {
            give_back: Mutex::new(Some(Box::new(give_back))),
        })
    }

    pub fn release(&self) {
        let give_back = self.lock().take();
        if let Some(f) = give_back {
            f();
        }
    }

    pub fn is_released(&self) -> bool {
        self.lock().is_none()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<dyn FnOnce() + Send>>> {
        // Taking the closure out cannot be interrupted half-way: a poisoned lock is fine.
        self.give_back.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

/// The metrics of one language.
#[derive(Clone)]
pub(crate) struct LangMetrics {
    pub active: Arc<Gauge>,
    pub busy: Arc<Counter>,
    pub no_recognizer: Arc<Counter>,
    finals: Arc<Counter>,
    no_input: Arc<Counter>,
    failed: Arc<Counter>,
    pub dropped: Arc<Counter>,
}

impl LangMetrics {
    pub fn new(registry: &Registry, lang: Language) -> LangMetrics {
        let l = lang.code();
        let unavailable = |reason| {
            registry.counter(
                "hotline_speech_unavailable_total",
                "Listens refused at once (the ask step falls back to DTMF), by reason",
                &[("lang", l), ("reason", reason)],
            )
        };
        let outcome = |outcome| {
            registry.counter(
                "hotline_speech_recognitions_total",
                "Recognition sessions ended, by outcome",
                &[("lang", l), ("outcome", outcome)],
            )
        };
        LangMetrics {
            active: registry.gauge(
                "hotline_speech_sessions_active",
                "Recognition sessions holding a recogniser",
                &[("lang", l)],
            ),
            busy: unavailable("busy"),
            no_recognizer: unavailable("no_recognizer"),
            finals: outcome("final"),
            no_input: outcome("no_input"),
            failed: outcome("failed"),
            dropped: registry.counter(
                "hotline_speech_frames_dropped_total",
                "Audio frames dropped because a recogniser fell behind",
                &[("lang", l)],
            ),
        }
    }
}

/// Everything a backend needs to run one session.
pub(crate) struct SessionContext {
    pub language: Language,
    pub endpointing: EndpointConfig,
    pub classifier: Arc<Classifier>,
    pub metrics: LangMetrics,
    pub events: mpsc::UnboundedSender<SpeechEvent>,
}

impl SessionContext {
    /// Sends an event to the listener (gone listeners are fine) and counts outcomes.
    pub fn emit(&self, event: SpeechEvent) {
        match &event {
            SpeechEvent::Final(_) => self.metrics.finals.inc(),
            SpeechEvent::NoInput { .. } => self.metrics.no_input.inc(),
            SpeechEvent::Failed { .. } => self.metrics.failed.inc(),
            SpeechEvent::SpeechStarted { .. } | SpeechEvent::Partial { .. } => {}
        }
        let _ = self.events.send(event);
    }

    /// Ends the session with `event`: the recogniser is given back first, so a listener
    /// that sees the event can already listen again, and its pushes report `Ended`.
    pub fn end(&self, lease: &Lease, event: SpeechEvent) {
        lease.release();
        self.emit(event);
    }
}
