//! Local Vosk recognition for many callers on a few cores. The model of a language is
//! loaded once and shared; a few decoder threads (one per core by default, never the tokio
//! runtime: `accept_waveform` blocks for milliseconds) serve every listening session. A
//! session is cheap: its frames wait in its own inbox, and it joins the decoders' run queue
//! only when it has audio. The voice-activity gate (`utterance::Gate`) keeps speech only,
//! so a session whose caller is silent or hearing a prompt costs no decoding; the speech is
//! held and decoded in one burst at the endpoint by a recogniser lent from a small warm
//! set. Vosk caches its decoding graph per recogniser and a new one decodes several times
//! slower (0.79 s against 0.11 s for the same 2.2 s clip, measured here), so few
//! recognisers, each busy only for a burst, serve more callers than one per speaker.
//! Partial transcripts are not produced (the call uses voice activity for barge-in). New
//! sessions are admitted by measured decoder load (`admission`).
//! Owns the threads, the run queue, the warm recognisers and the admission state; the
//! per-utterance rules live in `utterance`.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vosk::{CompleteResult, DecodingState, Model, Recognizer};

use super::admission::{Admission, Limits, Refusal};
use super::config::LocalCapacity;
use super::session::{Frame, Lease, PushError, SessionContext, SpeechEvent, Unavailable};
use super::utterance::{Gate, Step, Utterance, Word};
use super::{FRAME_SAMPLES, Language, SAMPLE_RATE, SpeechError};
use crate::media::resample::Upsampler;

/// Vosk reports word times as seconds since the recogniser was created, and the crate
/// reads them as f32: past an hour they lose milliseconds, so the recogniser is renewed.
const RENEW_AFTER_SECONDS: u64 = 3600;
/// Audio waiting per decoder beyond which new sessions are refused: a burst of speakers
/// shows here before the measured load catches up. Inboxes fill while a decoder works
/// through an utterance in one burst, so the bound is several bursts long.
const MAX_QUEUED: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent at each step: a panic in
    // another holder (caught and reported by the decoder) does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct VoskPool {
    shared: Arc<Shared>,
}

struct Shared {
    language: Language,
    model: Arc<Model>,
    sample_rate: u32,
    /// Sessions with audio (or an end) to process, oldest first.
    run: Mutex<VecDeque<Arc<Session>>>,
    wake: Condvar,
    /// Recognisers not in use, kept warm.
    idle: Mutex<Vec<Warm>>,
    /// Recognisers in existence, and how many may be: a new one decodes several times
    /// slower than a warm one until its graph cache fills, so speakers beyond the cap
    /// wait (their audio held) for a warm one rather than get a cold one.
    created: AtomicUsize,
    max_recognizers: usize,
    /// Sessions whose speech waits for a recogniser, oldest first.
    waiting: Mutex<VecDeque<Arc<Session>>>,
    admission: Mutex<Admission>,
    sessions: AtomicUsize,
    /// Frames waiting in every inbox.
    queued: AtomicUsize,
    /// The pool was dropped: decoders finish the run queue and exit.
    stopping: std::sync::atomic::AtomicBool,
}

/// One listening session: an inbox the media side fills and the decoder state only the
/// thread that scheduled it touches.
pub(crate) struct Session {
    inbox: Mutex<Inbox>,
    work: Mutex<Work>,
    shared: Arc<Shared>,
    backlog: usize,
}

struct Inbox {
    /// Each frame with when it arrived, to measure how long a decision took.
    frames: VecDeque<(Frame, Instant)>,
    /// In the run queue or being processed.
    scheduled: bool,
    /// The lease was given back: finish and free the recogniser.
    closed: bool,
    /// A recogniser was given back while this session waited for one.
    woken: bool,
}

struct Work {
    ctx: SessionContext,
    lease: Arc<Lease>,
    utterance: Utterance,
    gate: Gate,
    /// The recogniser lent for decoding the held utterance (kept here so a decoder panic
    /// or failure can account for it).
    warm: Option<Warm>,
    /// The utterance's speech so far, decoded at its endpoint, from `held_from` on.
    held: Vec<Frame>,
    held_from: Duration,
    /// Waiting in the pool's queue for a recogniser.
    waiting: bool,
    /// The endpoint came while frames were still held: (at, speech end, reason, arrival
    /// of the endpoint frame).
    ending: Option<(Duration, Duration, super::endpoint::EndReason, Instant)>,
    /// Where the recogniser's clock stood when this utterance's first frame went in, and
    /// that frame's audio time in the session: Vosk's word times are mapped through it.
    origin: (u64, Duration),
    upsampler: Option<Upsampler>,
    wide: Vec<i16>,
    done: bool,
}

impl VoskPool {
    /// Loads the model in `dir` and starts the decoder threads fed at `sample_rate`
    /// (8000, or 16000 after upsampling here).
    pub fn start(
        language: Language,
        dir: &Path,
        size: LocalCapacity,
        sample_rate: u32,
    ) -> Result<VoskPool, SpeechError> {
        let model_error = |reason: String| SpeechError::Model {
            lang: language,
            path: dir.to_owned(),
            reason,
        };
        if sample_rate != 8000 && sample_rate != 16000 {
            return Err(SpeechError::Config {
                section: "speech",
                message: format!("vosk_sample_rate must be 8000 or 16000, not {sample_rate}"),
            });
        }
        if !dir.join("am").is_dir() {
            return Err(model_error(
                "not a Vosk model folder (run `make setup`, or set HOTLINE_VOSK_MODEL or \
                 [speech.<language>] model)"
                    .into(),
            ));
        }
        vosk::set_log_level(vosk::LogLevel::Warn);
        let started = Instant::now();
        let model = Model::new(dir.to_string_lossy())
            .ok_or_else(|| model_error("Vosk could not load it".into()))?;
        let model = Arc::new(model);
        let idle = (0..size.warm)
            .map(|_| Warm::new(&model, sample_rate))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| model_error("Vosk could not create a recogniser".into()))?;
        tracing::info!(lang = %language, path = %dir.display(), load_time = ?started.elapsed(),
            decoders = size.decoders, warm = size.warm, recognizers = size.recognizers,
            "speech model loaded");
        let limits = Limits {
            decoders: size.decoders,
            max_sessions: size.max_sessions,
            max_load: size.max_load,
            max_queued: MAX_QUEUED,
        };
        let shared = Arc::new(Shared {
            language,
            model,
            sample_rate,
            run: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            created: AtomicUsize::new(idle.len()),
            max_recognizers: size.recognizers.max(size.warm).max(1),
            waiting: Mutex::new(VecDeque::new()),
            idle: Mutex::new(idle),
            admission: Mutex::new(Admission::new(limits)),
            stopping: std::sync::atomic::AtomicBool::new(false),
            sessions: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
        });
        for i in 0..size.decoders.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("vosk-{}-{i}", language.code()))
                .spawn(move || decoder(&shared))
                .map_err(|source| SpeechError::Thread {
                    lang: language,
                    source,
                })?;
        }
        Ok(VoskPool { shared })
    }

    /// Its recognisers are fed at 16 kHz: a wideband caller's own audio is worth sending.
    pub fn takes_wide(&self) -> bool {
        self.shared.sample_rate == 16000
    }

    /// Opens a session, or refuses at once when the decoders are out of capacity.
    pub fn open(
        &self,
        ctx: SessionContext,
        backlog: usize,
    ) -> Result<(Arc<Session>, Arc<Lease>), Unavailable> {
        let shared = &self.shared;
        let queued = frames_duration(shared.queued.load(Ordering::Acquire));
        let sessions = shared.sessions.load(Ordering::Acquire);
        if let Err(refusal) = lock(&shared.admission).admit(Instant::now(), sessions, queued) {
            let why = match refusal {
                Refusal::Sessions => "session cap",
                Refusal::Load => "decoder load",
                Refusal::Queue => "audio queued",
            };
            tracing::info!(lang = %shared.language, sessions, ?queued, why, "speech session refused");
            return Err(Unavailable::Busy);
        }
        shared.sessions.fetch_add(1, Ordering::AcqRel);
        ctx.metrics.active.inc();
        let active = ctx.metrics.active.clone();
        let utterance = Utterance::new(ctx.language, ctx.endpointing.clone());
        // The lease and the session refer to each other: the session is built first and
        // the lease closes it through a weak reference.
        let session = Arc::new_cyclic(|weak: &std::sync::Weak<Session>| {
            let weak = weak.clone();
            let lease = Lease::new(move || {
                active.dec();
                if let Some(s) = weak.upgrade() {
                    s.shared.sessions.fetch_sub(1, Ordering::AcqRel);
                    s.close();
                }
            });
            Session {
                inbox: Mutex::new(Inbox {
                    frames: VecDeque::new(),
                    scheduled: false,
                    closed: false,
                    woken: false,
                }),
                work: Mutex::new(Work {
                    ctx,
                    lease,
                    utterance,
                    gate: Gate::default(),
                    warm: None,
                    held: Vec::new(),
                    held_from: Duration::ZERO,
                    waiting: false,
                    ending: None,
                    origin: (0, Duration::ZERO),
                    upsampler: (shared.sample_rate == 16000).then(Upsampler::new),
                    wide: Vec::new(),
                    done: false,
                }),
                shared: shared.clone(),
                backlog,
            }
        });
        let lease = lock(&session.work).lease.clone();
        Ok((session, lease))
    }
}

impl Drop for VoskPool {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Under the run lock, so no decoder misses the wake-up between its check and wait.
        let _run = lock(&self.shared.run);
        self.shared.wake.notify_all();
    }
}

impl Session {
    /// Queues a frame for the decoders. Never blocks for longer than two short locks.
    pub fn push(self: &Arc<Self>, frame: Frame) -> Result<(), PushError> {
        let mut inbox = lock(&self.inbox);
        if inbox.closed {
            return Err(PushError::Ended);
        }
        if inbox.frames.len() >= self.backlog {
            return Err(PushError::Backlog);
        }
        inbox.frames.push_back((frame, Instant::now()));
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.schedule(inbox);
        Ok(())
    }

    /// Marks the session over and lets a decoder free its recogniser.
    fn close(self: &Arc<Self>) {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        self.schedule(inbox);
    }

    /// A recogniser was given back: try again to get one.
    fn wake(self: &Arc<Self>) {
        let mut inbox = lock(&self.inbox);
        inbox.woken = true;
        self.schedule(inbox);
    }

    fn schedule(self: &Arc<Self>, mut inbox: MutexGuard<'_, Inbox>) {
        if inbox.scheduled {
            return;
        }
        inbox.scheduled = true;
        drop(inbox);
        lock(&self.shared.run).push_back(self.clone());
        self.shared.wake.notify_one();
    }

    /// Decodes everything in the inbox; returns when it is empty (and unscheduled).
    fn process(self: &Arc<Self>) {
        let shared = &self.shared;
        let mut work = lock(&self.work);
        loop {
            let (frames, closed, woken) = {
                let mut inbox = lock(&self.inbox);
                let woken = std::mem::take(&mut inbox.woken);
                if inbox.frames.is_empty() && (!inbox.closed || work.done) && !woken {
                    inbox.scheduled = false;
                    drop(inbox);
                    if work.waiting && !work.done {
                        lock(&shared.waiting).push_back(self.clone());
                    }
                    return;
                }
                (std::mem::take(&mut inbox.frames), inbox.closed, woken)
            };
            // Woken by a returned recogniser, or still waiting (a wake-up can come between
            // asking for one and joining the queue): try again.
            if woken || work.waiting {
                work.resume(shared);
            }
            shared.queued.fetch_sub(frames.len(), Ordering::AcqRel);
            for (frame, arrived) in frames {
                if work.done {
                    break;
                }
                let run = catch_unwind(AssertUnwindSafe(|| work.step(shared, frame, arrived)));
                if run.is_err() {
                    tracing::error!("the Vosk recogniser panicked; replacing it");
                    if work.warm.take().is_some() {
                        shared.created.fetch_sub(1, Ordering::AcqRel);
                    }
                    let reason = "the recogniser crashed".into();
                    work.ctx.end(&work.lease, SpeechEvent::Failed { reason });
                    work.done = true;
                }
            }
            if closed || work.done {
                work.done = true;
                work.give_back(shared);
            }
        }
    }
}

impl Work {
    /// One frame through the endpointer, the gate and (if speech) the recogniser.
    /// `arrived`: when the frame reached the inbox.
    fn step(&mut self, shared: &Shared, frame: Frame, arrived: Instant) {
        let step = self.utterance.on_audio(frame.narrow());
        let at = self.utterance.stats.audio;
        let passed = self.gate.pass(frame, &step);
        if passed.len() > 0 && self.held.is_empty() {
            // The first frame's audio time: the frames end with the current one.
            self.held_from = at.saturating_sub(frames_duration(passed.len()));
        }
        // Held until the endpoint, then decoded in one burst: a recogniser is busy for the
        // decoding only (a fraction of the utterance), so a few warm ones serve every
        // caller, and a warm one decodes several times faster.
        self.held.extend(passed);
        // Speech started: say so (barge-in) before decoding its pre-roll.
        let step = match step {
            Step::Emit(event) => {
                self.ctx.emit(event);
                Step::Continue
            }
            other => other,
        };
        match step {
            Step::Continue | Step::Emit(_) => {}
            Step::End(event) => {
                self.ctx.end(&self.lease, event);
                self.done = true;
            }
            Step::Finalize {
                at,
                speech_end,
                reason,
            } => {
                self.ending = Some((at, speech_end, reason, arrived));
                self.resume(shared);
            }
        }
    }

    /// Decodes the held utterance if a recogniser can be had; else it waits until one is
    /// given back.
    fn decode_held(&mut self, shared: &Shared) {
        if self.done || self.held.is_empty() {
            return;
        }
        if self.warm.is_none() {
            match take_warm(shared) {
                Taken::Warm(w) => {
                    self.origin = (w.fed, self.held_from);
                    self.warm = Some(w);
                }
                Taken::Wait => {
                    self.waiting = true;
                    return;
                }
                Taken::Failed => {
                    let reason = "Vosk could not create a recogniser".into();
                    self.ctx.end(&self.lease, SpeechEvent::Failed { reason });
                    self.done = true;
                    return;
                }
            }
        }
        let Work {
            warm: Some(w),
            held,
            origin,
            upsampler,
            wide,
            ctx,
            lease,
            utterance,
            done,
            ..
        } = self
        else {
            return;
        };
        for f in held.drain(..) {
            let started = Instant::now();
            // A 16 kHz recogniser takes a wideband caller's own audio, else the 8 kHz
            // audio upsampled; an 8 kHz one takes the 8 kHz audio.
            let samples: &[i16] = match (upsampler.as_mut(), f.wide()) {
                (Some(_), Some(original)) => original,
                (Some(u), None) => {
                    u.process(f.narrow(), wide);
                    wide
                }
                (None, _) => f.narrow(),
            };
            w.fed += samples.len() as u64;
            match w.recognizer.accept_waveform(samples) {
                Ok(DecodingState::Finalized) => {
                    let segment = words(w.recognizer.result(), *origin, shared.sample_rate);
                    utterance.on_segment(segment);
                }
                Ok(DecodingState::Running) => {}
                Ok(DecodingState::Failed) | Err(_) => {
                    let reason = "the Vosk decoder rejected the audio".into();
                    ctx.end(lease, SpeechEvent::Failed { reason });
                    *done = true;
                    return;
                }
            }
            utterance.stats.decode += started.elapsed();
        }
    }

    /// At the endpoint, once every frame of the utterance is decoded: the final words, the
    /// decision, and the recogniser back to the warm set.
    fn finish_if_decoded(&mut self, shared: &Shared) {
        if self.done || !self.held.is_empty() {
            return;
        }
        let Some((at, speech_end, reason, arrived)) = self.ending.take() else {
            return;
        };
        let started = Instant::now();
        let last = match self.warm.take() {
            Some(mut w) => {
                let last = words(w.recognizer.final_result(), self.origin, shared.sample_rate);
                give_warm(shared, w);
                last
            }
            None => Vec::new(),
        };
        if let Some(mut r) =
            self.utterance
                .finish(last, (at, speech_end, reason), &self.ctx.classifier)
        {
            r.stats.finalize = started.elapsed();
            r.stats.decision_latency = arrived.elapsed();
            self.ctx.end(&self.lease, SpeechEvent::Final(Box::new(r)));
            self.done = true;
        }
    }

    /// A recogniser may be free now: decode what waited for one.
    fn resume(&mut self, shared: &Shared) {
        self.waiting = false;
        self.decode_held(shared);
        self.finish_if_decoded(shared);
    }

    /// The session is over: its recogniser goes back to the warm set, clean.
    fn give_back(&mut self, shared: &Shared) {
        self.held.clear();
        if let Some(mut w) = self.warm.take() {
            let _ = w.recognizer.final_result();
            give_warm(shared, w);
        }
    }
}

/// A recogniser kept warm across sessions: Vosk composes its decoding graph lazily and
/// caches it per recogniser, so a fresh one per utterance decodes several times slower
/// (measured by bench/speech_accuracy.sh). Each utterance still starts clean: ending it
/// with a final result makes Vosk build a new feature pipeline and decoder for the next
/// audio, so no speaker adaptation carries over from one caller to the next.
struct Warm {
    recognizer: Recognizer,
    /// Samples fed since it was created: Vosk's word times count from there.
    fed: u64,
}

impl Warm {
    fn new(model: &Model, sample_rate: u32) -> Option<Warm> {
        let mut r = Recognizer::new(model, sample_rate as f32)?;
        r.set_words(true);
        Some(Warm {
            recognizer: r,
            fed: 0,
        })
    }
}

/// What asking for a recogniser gave.
enum Taken {
    Warm(Warm),
    /// Every recogniser is lent out and no more may be made: wait for one.
    Wait,
    Failed,
}

/// A warm recogniser; a new one while fewer than the cap exist (the set grows to the peak
/// of callers speaking at once and stays warm); else wait.
fn take_warm(shared: &Shared) -> Taken {
    let found = lock(&shared.idle).pop();
    match found {
        Some(w) if w.fed <= RENEW_AFTER_SECONDS * u64::from(shared.sample_rate) => Taken::Warm(w),
        // Renewed (its word times would lose precision): the count stays.
        Some(_) => Warm::new(&shared.model, shared.sample_rate).map_or(Taken::Failed, Taken::Warm),
        None => {
            let grown = shared
                .created
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < shared.max_recognizers).then_some(n + 1)
                })
                .is_ok();
            if !grown {
                return Taken::Wait;
            }
            match Warm::new(&shared.model, shared.sample_rate) {
                Some(w) => Taken::Warm(w),
                None => {
                    shared.created.fetch_sub(1, Ordering::AcqRel);
                    Taken::Failed
                }
            }
        }
    }
}

/// Back to the warm set, and the longest-waiting session is told.
fn give_warm(shared: &Shared, w: Warm) {
    lock(&shared.idle).push(w);
    let next = lock(&shared.waiting).pop_front();
    if let Some(session) = next {
        session.wake();
    }
}

fn frames_duration(frames: usize) -> Duration {
    Duration::from_millis(frames as u64 * (FRAME_SAMPLES as u64 * 1000 / u64::from(SAMPLE_RATE)))
}

/// One decoder thread: takes the oldest session with audio and decodes all it has.
fn decoder(shared: &Arc<Shared>) {
    loop {
        let session = {
            let mut run = lock(&shared.run);
            loop {
                if let Some(s) = run.pop_front() {
                    break s;
                }
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                run = shared.wake.wait(run).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        session.process();
        let now = Instant::now();
        lock(&shared.admission).handle_busy(now, now - started);
    }
}

/// Vosk's words, with times made relative to the start of the session.
fn words(result: CompleteResult<'_>, origin: (u64, Duration), sample_rate: u32) -> Vec<Word> {
    let (fed, at) = origin;
    let base = Duration::from_secs_f64(fed as f64 / f64::from(sample_rate));
    let time = |t: f32| {
        Duration::try_from_secs_f32(t)
            .unwrap_or_default()
            .saturating_sub(base)
            + at
    };
    result.single().map_or_else(Vec::new, |r| {
        r.result
            .iter()
            .map(|w| Word {
                text: w.word.to_owned(),
                start: time(w.start),
                end: time(w.end),
                confidence: w.conf,
            })
            .collect()
    })
}
