//! One listening session, sans-IO, whatever recogniser decodes it: the endpointer's view
//! of the audio plus the recogniser's words, assembled into `SpeechEvent`s and a final
//! `Recognition` with its intent decision. The Vosk worker thread and the vosk-server
//! client both drive this; neither duplicates the rules (partials only when they change,
//! segments joined, an "utterance" without a single word is noise and listening resumes).

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;
use std::time::Duration;

use super::Language;
use super::classifier::{Classifier, Decision};
use super::endpoint::{EndReason, EndpointConfig, EndpointEvent, Endpointer};
use super::session::{Frame, SpeechEvent};

/// One recognised word with its timing (audio time since listening started).
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: Duration,
    pub end: Duration,
    /// The recogniser's confidence, 0..1.
    pub confidence: f32,
}

/// What the caller said, once the utterance is over.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    pub language: Language,
    /// The words joined as written (no spaces between Chinese words).
    pub transcript: String,
    pub words: Vec<Word>,
    /// Mean word confidence, 0..1.
    pub confidence: f32,
    /// When speech started and ended, and when the endpoint fired (audio time).
    pub speech_start: Duration,
    pub speech_end: Duration,
    pub endpoint: Duration,
    pub reason: EndReason,
    /// The intent classifier's decision on `transcript`.
    pub decision: Decision,
    pub stats: SessionStats,
}

/// Cost of one session, for capacity planning and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// Audio received.
    pub audio: Duration,
    /// Time spent decoding it (recogniser calls on the worker thread, or waiting for the
    /// server's replies).
    pub decode: Duration,
    /// From the endpoint to the decision: the final decode plus classification.
    pub finalize: Duration,
    /// From the arrival of the audio frame on which the endpoint fired to the decision:
    /// the wait for a decoder, the decoding still queued, and `finalize`.
    pub decision_latency: Duration,
}

impl SessionStats {
    /// Decode time per second of audio.
    pub fn real_time_factor(&self) -> f64 {
        if self.audio.is_zero() {
            0.0
        } else {
            self.decode.as_secs_f64() / self.audio.as_secs_f64()
        }
    }
}

/// What the driver must do after a frame.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    Continue,
    /// Send this event to the listener and continue.
    Emit(SpeechEvent),
    /// The utterance is over: get the recogniser's final words and call `finish`.
    Finalize {
        at: Duration,
        speech_end: Duration,
        reason: EndReason,
    },
    /// Send this event; the session is over.
    End(SpeechEvent),
}

/// Audio kept from before speech is detected (300 ms), fed to the recogniser when it is:
/// the endpointer needs `onset` of voiced audio to call it speech, and a word starts
/// before that.
const PRE_ROLL_FRAMES: usize = 15;

/// The voice-activity gate in front of a recogniser: only speech (with its pre-roll and
/// the trailing silence up to the endpoint) is decoded, so a session whose caller is
/// silent or listening to a prompt costs no decoding at all.
#[derive(Default)]
pub(crate) struct Gate {
    frames: VecDeque<Frame>,
    open: bool,
}

impl Gate {
    /// The frames to decode now, given `frame` and the endpointer's `step` on it: none
    /// before speech, the pre-roll and this frame when speech starts, each frame until the
    /// utterance ends.
    pub fn pass(&mut self, frame: Frame, step: &Step) -> Drain<'_, Frame> {
        self.frames.push_back(frame);
        if matches!(step, Step::Emit(SpeechEvent::SpeechStarted { .. })) {
            self.open = true;
        }
        if self.open {
            if matches!(step, Step::Finalize { .. } | Step::End(_)) {
                self.open = false;
            }
            return self.frames.drain(..);
        }
        let keep = self.frames.len().saturating_sub(PRE_ROLL_FRAMES);
        self.frames.drain(..keep);
        self.frames.drain(0..0)
    }
}

pub(crate) struct Utterance {
    language: Language,
    endpointer: Endpointer,
    words: Vec<Word>,
    partial: String,
    speech_start: Duration,
    pub(crate) stats: SessionStats,
}

impl Utterance {
    pub fn new(language: Language, cfg: EndpointConfig) -> Utterance {
        Utterance {
            language,
            endpointer: Endpointer::new(cfg),
            words: Vec::new(),
            partial: String::new(),
            speech_start: Duration::ZERO,
            stats: SessionStats::default(),
        }
    }

    pub fn on_audio(&mut self, frame: &[i16]) -> Step {
        let event = self.endpointer.on_frame(frame);
        self.stats.audio = self.endpointer.now();
        match event {
            None => Step::Continue,
            Some(EndpointEvent::SpeechStarted { at }) => {
                self.speech_start = at;
                Step::Emit(SpeechEvent::SpeechStarted { at })
            }
            Some(EndpointEvent::EndOfSpeech {
                at,
                speech_end,
                reason,
            }) => Step::Finalize {
                at,
                speech_end,
                reason,
            },
            Some(EndpointEvent::NoInput { at }) => Step::End(SpeechEvent::NoInput { at }),
        }
    }

    /// The recogniser's current guess; an event only when it changed.
    pub fn on_partial(&mut self, text: &str) -> Option<SpeechEvent> {
        let text = join(text.split_whitespace());
        if text == self.partial {
            return None;
        }
        self.partial.clone_from(&text);
        let done: String = join(self.words.iter().map(|w| w.text.as_str()));
        Some(SpeechEvent::Partial { text: done + &text })
    }

    /// The recogniser closed a segment on its own (a pause shorter than our endpoint).
    pub fn on_segment(&mut self, words: Vec<Word>) {
        self.words.extend(words);
        self.partial.clear();
    }

    /// The utterance with the recogniser's last words, or `None` when no word was heard at
    /// all: then it was noise, and listening resumes (the no-input clock keeps running).
    pub fn finish(
        &mut self,
        last: Vec<Word>,
        end: (Duration, Duration, EndReason),
        classifier: &Classifier,
    ) -> Option<Recognition> {
        self.words.extend(last);
        self.partial.clear();
        if self.words.is_empty() {
            self.endpointer.resume();
            return None;
        }
        let (endpoint, speech_end, reason) = end;
        let words = std::mem::take(&mut self.words);
        let transcript = join(words.iter().map(|w| w.text.as_str()));
        let confidence = words.iter().map(|w| w.confidence).sum::<f32>() / words.len() as f32;
        Some(Recognition {
            language: self.language,
            decision: classifier.classify(&transcript),
            transcript,
            words,
            confidence,
            speech_start: self.speech_start,
            speech_end,
            endpoint,
            reason,
            stats: self.stats,
        })
    }
}

/// Words as written: Chinese words run together, a space only between two words that
/// start and end in Latin letters or digits ("OT 补水" stays apart from "OK").
fn join<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for w in words {
        let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if latin(out.chars().last()) && latin(w.chars().next()) {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::FRAME_SAMPLES;

    fn word(text: &str, start_ms: u64, conf: f32) -> Word {
        Word {
            text: text.into(),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(start_ms + 200),
            confidence: conf,
        }
    }

    #[test]
    fn the_gate_feeds_speech_with_its_pre_roll_and_nothing_else() {
        let mut u = Utterance::new(Language::Mandarin, EndpointConfig::default());
        let mut gate = Gate::default();
        let loud: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| if i % 2 == 0 { 6000 } else { -6000 })
            .collect();
        let loud = Frame::new(&loud, &[]);
        let silence = Frame::new(&[0i16; FRAME_SAMPLES], &[]);
        let mut fed = Vec::new();
        let mut feed = |u: &mut Utterance, gate: &mut Gate, f: &Frame| {
            let step = u.on_audio(f.narrow());
            let n = gate.pass(f.clone(), &step).count();
            fed.push(n);
            step
        };
        // Two seconds of silence cost nothing.
        for _ in 0..100 {
            feed(&mut u, &mut gate, &silence);
        }
        // Speech is detected on its third frame: the pre-roll (15 frames) goes first.
        feed(&mut u, &mut gate, &loud);
        feed(&mut u, &mut gate, &loud);
        let started = feed(&mut u, &mut gate, &loud);
        assert_eq!(
            started,
            Step::Emit(SpeechEvent::SpeechStarted {
                at: Duration::from_secs(2)
            })
        );
        assert!(gate.open);
        for _ in 0..10 {
            feed(&mut u, &mut gate, &loud);
        }
        let mut last = Step::Continue;
        while !matches!(last, Step::Finalize { .. }) {
            last = feed(&mut u, &mut gate, &silence);
        }
        assert!(!gate.open, "closed at the endpoint");
        assert_eq!(fed[..102].iter().sum::<usize>(), 0, "nothing before speech");
        assert_eq!(fed[102], 16, "the pre-roll and the detecting frame");
        assert!(fed[103..].iter().all(|&n| n == 1), "then each frame");
        // After the endpoint, silence is held back again.
        assert_eq!(gate.pass(silence.clone(), &Step::Continue).count(), 0);
    }

    #[test]
    fn words_join_like_text() {
        assert_eq!(
            join(["我", "想", "查询", "社保"].into_iter()),
            "我想查询社保"
        );
        assert_eq!(join(["做", "OT", "3", "小时"].into_iter()), "做OT 3小时");
    }

    #[test]
    fn partials_are_sent_when_they_change_and_include_closed_segments() {
        let mut u = Utterance::new(Language::Mandarin, EndpointConfig::default());
        assert_eq!(
            u.on_partial("我 想"),
            Some(SpeechEvent::Partial {
                text: "我想".into()
            })
        );
        assert_eq!(u.on_partial("我想"), None);
        u.on_segment(vec![word("我", 0, 1.0), word("想", 200, 1.0)]);
        assert_eq!(
            u.on_partial("查询"),
            Some(SpeechEvent::Partial {
                text: "我想查询".into()
            })
        );
    }

    #[test]
    fn noise_without_words_resumes_listening_and_speech_finishes() {
        let classifier = crate::speech::classifier::tests::shipped();
        let mut u = Utterance::new(Language::Mandarin, EndpointConfig::default());
        let loud: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| if i % 2 == 0 { 6000 } else { -6000 })
            .collect();
        let silence = [0i16; FRAME_SAMPLES];
        let mut steps = Vec::new();
        for _ in 0..10 {
            steps.push(u.on_audio(&loud));
        }
        for _ in 0..35 {
            steps.push(u.on_audio(&silence));
        }
        assert_eq!(
            steps[2],
            Step::Emit(SpeechEvent::SpeechStarted { at: Duration::ZERO })
        );
        let end = match steps.last() {
            Some(Step::Finalize {
                at,
                speech_end,
                reason,
            }) => (*at, *speech_end, *reason),
            other => panic!("no endpoint: {other:?}"),
        };
        assert_eq!(end.0, Duration::from_millis(900));
        assert!(u.finish(Vec::new(), end, &classifier).is_none());
        // Listening again: the next speech is a new utterance.
        for _ in 0..10 {
            u.on_audio(&loud);
        }
        u.on_segment(vec![word("社保", 1000, 0.9)]);
        let r = u
            .finish(vec![word("查询", 1300, 0.7)], end, &classifier)
            .expect("words were heard");
        assert_eq!(r.transcript, "社保查询");
        assert!((r.confidence - 0.8).abs() < 1e-6);
        assert_eq!(r.speech_start, Duration::from_millis(900));
        assert_eq!(
            r.decision.intent.map(|s| s.intent),
            Some("social_insurance".to_owned())
        );
        assert_eq!(r.stats.audio, Duration::from_millis(1100));
    }
}
