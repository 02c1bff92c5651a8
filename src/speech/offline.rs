//! A whole recording through a `Listener`, the way a call feeds one: 20 ms frames, then
//! silence until the endpoint decides. Used by `hotline recognize`, the accuracy
//! benchmark and the clip tests, so all three measure the path calls take. Reading the
//! WAV file is the only file I/O of the speech module besides loading grammars.

use std::path::Path;
use std::time::{Duration, Instant};

use super::service::Listener;
use super::session::{PushError, SpeechEvent};
use super::utterance::Recognition;
use super::{FRAME_SAMPLES, SAMPLE_RATE, SpeechError};

/// Most silence pushed after a recording before giving up on an end event.
const MAX_PADDING: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One frame every 20 ms, as RTP delivers them: latency figures are meaningful.
    RealTime,
    /// As fast as the recogniser takes them (waiting when its queue is full).
    Fast,
}

#[derive(Debug)]
pub struct ClipRun {
    /// Every event, with the wall time since the first frame.
    pub events: Vec<(Duration, SpeechEvent)>,
    /// Real-time pace only: from pushing the frame on which the endpoint fired to
    /// receiving the final result with its decision.
    pub decision_latency: Option<Duration>,
    pub wall: Duration,
}

impl ClipRun {
    pub fn recognition(&self) -> Option<&Recognition> {
        self.events.iter().find_map(|(_, e)| match e {
            SpeechEvent::Final(r) => Some(r.as_ref()),
            _ => None,
        })
    }

    /// The event that ended the session (final, no input or failure), if any.
    pub fn end(&self) -> Option<&SpeechEvent> {
        self.events.iter().map(|(_, e)| e).find(|e| ends(e))
    }
}

fn ends(e: &SpeechEvent) -> bool {
    matches!(
        e,
        SpeechEvent::Final(_) | SpeechEvent::NoInput { .. } | SpeechEvent::Failed { .. }
    )
}

/// Pushes `samples` (8 kHz) and then silence through `listener` until the session ends.
pub async fn run_clip(mut listener: Listener, samples: &[i16], pace: Pace) -> ClipRun {
    let started = Instant::now();
    let silence = [0i16; FRAME_SAMPLES];
    let mut frames = samples.chunks(FRAME_SAMPLES);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // (audio time at the end of the frame, when it was pushed)
    let mut pushed: Vec<(Duration, Instant)> = Vec::new();
    let mut audio = Duration::ZERO;
    let mut log = Log {
        started,
        pace,
        events: Vec::new(),
        latency: None,
    };
    let mut padding = Duration::ZERO;
    'feed: while padding < MAX_PADDING {
        let frame = match frames.next() {
            Some(f) => f,
            None => {
                padding += Duration::from_millis(20);
                &silence[..]
            }
        };
        if pace == Pace::RealTime {
            ticker.tick().await;
        }
        loop {
            match listener.push(frame) {
                Ok(()) => break,
                Err(PushError::Backlog) if pace == Pace::Fast => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(PushError::Backlog) => break,
                Err(PushError::Ended) => break 'feed,
            }
        }
        audio += Duration::from_secs_f64(frame.len() as f64 / 8000.0);
        pushed.push((audio, Instant::now()));
        while let Some(e) = listener.try_recv() {
            if log.take(e, &pushed) {
                break 'feed;
            }
        }
        // Fast: after the recording, let the recogniser catch up every 500 ms of silence
        // instead of queueing a minute of it.
        let catch_up = padding > Duration::ZERO && padding.as_millis().is_multiple_of(500);
        if pace == Pace::Fast
            && catch_up
            && let Ok(Some(e)) =
                tokio::time::timeout(Duration::from_millis(50), listener.recv()).await
            && log.take(e, &pushed)
        {
            break 'feed;
        }
    }
    if !log.events.iter().any(|(_, e)| ends(e)) {
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await
        {
            if log.take(e, &pushed) {
                break;
            }
        }
    }
    ClipRun {
        events: log.events,
        decision_latency: log.latency,
        wall: started.elapsed(),
    }
}

struct Log {
    started: Instant,
    pace: Pace,
    events: Vec<(Duration, SpeechEvent)>,
    latency: Option<Duration>,
}

impl Log {
    /// Records an event; true when it ended the session.
    fn take(&mut self, e: SpeechEvent, pushed: &[(Duration, Instant)]) -> bool {
        let now = Instant::now();
        if let (SpeechEvent::Final(r), Pace::RealTime) = (&e, self.pace) {
            self.latency = pushed
                .iter()
                .find(|(end, _)| *end >= r.endpoint)
                .map(|(_, at)| now - *at);
        }
        let done = ends(&e);
        self.events.push((now - self.started, e));
        done
    }
}

/// Reads a telephone recording: a PCM WAV file, 8 kHz, mono, 16-bit.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, SpeechError> {
    let error = |reason: String| SpeechError::File {
        path: path.to_owned(),
        reason,
    };
    let reader = hound::WavReader::open(path).map_err(|e| error(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(error(format!(
            "{} Hz, {} channel(s), {}-bit: convert it to 8000 Hz mono 16-bit PCM first \
             (sox IN.wav -r 8000 -c 1 -b 16 -e signed-integer OUT.wav)",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        )));
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))
}
