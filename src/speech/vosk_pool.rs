//! Local Vosk recognition: the model of a language is loaded once and shared; a fixed
//! number of dedicated threads each own one recogniser (never the tokio runtime:
//! `accept_waveform` blocks for milliseconds). A session takes an idle thread from the
//! free list or is refused at once; its frames reach the thread over a bounded queue.
//! Owns the threads and the free list; the per-session rules live in `utterance`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vosk::{CompleteResult, DecodingState, Model, Recognizer};

use super::resample::Upsampler;
use super::service::{Frame, FrameTx, Lease, SessionContext, SpeechEvent, Unavailable};
use super::utterance::{Step, Utterance, Word};
use super::{Language, SpeechError};

/// Ask for a partial result every this many frames (100 ms): often enough for barge-in
/// and the agent's screen, rarely enough to cost little.
const PARTIAL_EVERY: u32 = 5;
/// Vosk reports word times as seconds since the recogniser was created, and the crate
/// reads them as f32: past an hour they lose milliseconds, so the recogniser is renewed.
const RENEW_AFTER_SECONDS: u64 = 3600;

pub(crate) struct VoskPool {
    free: Arc<Mutex<Vec<Worker>>>,
}

struct Worker {
    jobs: Sender<Job>,
}

struct Job {
    ctx: SessionContext,
    lease: Arc<Lease>,
    frames: Receiver<Frame>,
}

fn lock(free: &Mutex<Vec<Worker>>) -> MutexGuard<'_, Vec<Worker>> {
    // Push and pop cannot be interrupted half-way: a poisoned lock is still consistent.
    free.lock().unwrap_or_else(|e| e.into_inner())
}

impl VoskPool {
    /// Loads the model in `dir` and starts `size` recogniser threads fed at
    /// `sample_rate` (8000, or 16000 after upsampling here).
    pub fn start(
        language: Language,
        dir: &Path,
        size: usize,
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
        tracing::info!(lang = %language, path = %dir.display(), load_time = ?started.elapsed(), "speech model loaded");

        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut free = Vec::with_capacity(size);
        for i in 0..size {
            let (jobs, jobs_rx) = std::sync::mpsc::channel();
            let model = model.clone();
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("vosk-{}-{i}", language.code()))
                .spawn(move || worker(&model, sample_rate, &jobs_rx, ready))
                .map_err(|source| SpeechError::Thread {
                    lang: language,
                    source,
                })?;
            free.push(Worker { jobs });
        }
        drop(ready_tx);
        for _ in 0..size {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => return Err(model_error(reason)),
                Err(_) => return Err(model_error("a recogniser thread died at start".into())),
            }
        }
        Ok(VoskPool {
            free: Arc::new(Mutex::new(free)),
        })
    }

    /// Hands the session to an idle recogniser thread, or refuses at once.
    pub fn open(
        &self,
        ctx: SessionContext,
        backlog: usize,
    ) -> Result<(FrameTx, Arc<Lease>), Unavailable> {
        let worker = lock(&self.free).pop().ok_or(Unavailable::Busy)?;
        let jobs = worker.jobs.clone();
        let (tx, frames) = std::sync::mpsc::sync_channel(backlog);
        let active = ctx.metrics.active.clone();
        active.inc();
        let free = self.free.clone();
        let lease = Lease::new(move || {
            lock(&free).push(worker);
            active.dec();
        });
        let job = Job {
            ctx,
            lease: lease.clone(),
            frames,
        };
        if jobs.send(job).is_err() {
            tracing::error!("a Vosk recogniser thread is gone");
            return Err(Unavailable::Busy);
        }
        Ok((FrameTx::Thread(tx), lease))
    }
}

/// A recogniser kept warm across sessions: Vosk composes its decoding graph lazily and
/// caches it per recogniser, so a fresh one per call decodes several times slower
/// (measured by bench/speech_accuracy.sh). Each session still starts clean: ending it
/// with a final result makes Vosk build a new feature pipeline and decoder for the next
/// audio, so no speaker adaptation carries over from one caller to the next.
struct Warm {
    recognizer: Recognizer,
    /// Samples fed since it was created: Vosk's word times count from there.
    fed: u64,
}

/// One recogniser thread: runs sessions one after the other until the pool is dropped.
fn worker(
    model: &Model,
    sample_rate: u32,
    jobs: &Receiver<Job>,
    ready: Sender<Result<(), String>>,
) {
    let new_recognizer = || {
        let mut r = Recognizer::new(model, sample_rate as f32)?;
        r.set_words(true);
        Some(Warm {
            recognizer: r,
            fed: 0,
        })
    };
    let Some(mut warm) = new_recognizer() else {
        let _ = ready.send(Err("Vosk could not create a recogniser".into()));
        return;
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    while let Ok(Job { ctx, lease, frames }) = jobs.recv() {
        if warm.fed > RENEW_AFTER_SECONDS * u64::from(sample_rate)
            && let Some(w) = new_recognizer()
        {
            warm = w;
        }
        let run = catch_unwind(AssertUnwindSafe(|| {
            run(&mut warm, sample_rate, &ctx, &lease, &frames);
            // Close whatever is left of the session (a no-op after a final result).
            let _ = warm.recognizer.final_result();
        }));
        if run.is_err() {
            tracing::error!("the Vosk recogniser panicked; replacing it");
            let reason = "the recogniser crashed".into();
            ctx.end(&lease, SpeechEvent::Failed { reason });
            match new_recognizer() {
                Some(w) => warm = w,
                None => return,
            }
        }
        lease.release();
    }
}

/// One session: frames in, events out, until an end event or the listener goes away.
fn run(
    warm: &mut Warm,
    sample_rate: u32,
    ctx: &SessionContext,
    lease: &Lease,
    frames: &Receiver<Frame>,
) {
    let offset = Duration::from_secs_f64(warm.fed as f64 / f64::from(sample_rate));
    let recognizer = &mut warm.recognizer;
    let mut utterance = Utterance::new(ctx.language, ctx.endpointing.clone());
    let mut upsampler = (sample_rate == 16000).then(Upsampler::new);
    let mut wide = Vec::new();
    let mut count = 0u32;
    while let Ok(frame) = frames.recv() {
        if lease.is_released() {
            return;
        }
        let step = utterance.on_audio(&frame);
        let started = Instant::now();
        let samples: &[i16] = match upsampler.as_mut() {
            Some(u) => {
                u.process(&frame, &mut wide);
                &wide
            }
            None => &frame,
        };
        warm.fed += samples.len() as u64;
        match recognizer.accept_waveform(samples) {
            Ok(DecodingState::Finalized) => {
                utterance.on_segment(words(recognizer.result(), offset));
            }
            Ok(DecodingState::Running) => {
                count += 1;
                if count.is_multiple_of(PARTIAL_EVERY)
                    && let Some(event) = utterance.on_partial(recognizer.partial_result().partial)
                {
                    ctx.emit(event);
                }
            }
            Ok(DecodingState::Failed) | Err(_) => {
                let reason = "the Vosk decoder rejected the audio".into();
                ctx.end(lease, SpeechEvent::Failed { reason });
                return;
            }
        }
        utterance.stats.decode += started.elapsed();
        match step {
            Step::Continue => {}
            Step::Emit(event) => ctx.emit(event),
            Step::End(event) => {
                ctx.end(lease, event);
                return;
            }
            Step::Finalize {
                at,
                speech_end,
                reason,
            } => {
                let started = Instant::now();
                let last = words(recognizer.final_result(), offset);
                if let Some(mut r) =
                    utterance.finish(last, (at, speech_end, reason), &ctx.classifier)
                {
                    r.stats.finalize = started.elapsed();
                    ctx.end(lease, SpeechEvent::Final(Box::new(r)));
                    return;
                }
            }
        }
    }
}

/// Vosk's words, with times made relative to the start of the session.
fn words(result: CompleteResult<'_>, offset: Duration) -> Vec<Word> {
    let time = |t: f32| {
        Duration::try_from_secs_f32(t)
            .unwrap_or_default()
            .saturating_sub(offset)
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
