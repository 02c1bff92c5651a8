//! Endpointing, sans-IO: decides from the audio alone when the caller started speaking,
//! when they stopped (enough trailing silence), when they said nothing at all, and when
//! an utterance ran too long. Energy VAD with an adaptive noise floor. Time is audio time
//! (the frames pushed so far), so the same decisions come out at real-time pace on a call
//! and at full speed offline. The recogniser's own view (no words at all = noise) is
//! applied by `utterance`, which can `resume` this after a false start.

use std::time::Duration;

use super::SAMPLE_RATE;

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Trailing silence that ends an utterance.
    pub end_silence: Duration,
    /// No speech for this long after listening starts: no input.
    pub no_input: Duration,
    /// Longest utterance, from the start of speech.
    pub max_utterance: Duration,
    /// Voiced audio in a row needed to call it speech (clicks and pops are shorter).
    pub onset: Duration,
    /// A frame is voiced when its energy is this far above the noise floor...
    pub snr_db: f32,
    /// ...and above this absolute level (dBFS).
    pub min_speech_db: f32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            end_silence: Duration::from_millis(700),
            no_input: Duration::from_secs(5),
            max_utterance: Duration::from_secs(15),
            onset: Duration::from_millis(60),
            snr_db: 10.0,
            min_speech_db: -45.0,
        }
    }
}

/// Why an utterance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `end_silence` of silence after speech.
    Silence,
    /// The utterance reached `max_utterance`.
    MaxLength,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Speech began at `at` (audio time since listening started).
    SpeechStarted {
        at: Duration,
    },
    /// The utterance is over; `speech_end` is the end of the last voiced frame.
    EndOfSpeech {
        at: Duration,
        speech_end: Duration,
        reason: EndReason,
    },
    NoInput {
        at: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting {
        voiced_run: Duration,
    },
    Speaking {
        started: Duration,
        last_voiced: Duration,
    },
    Done,
}

#[derive(Debug, Clone)]
pub struct Endpointer {
    cfg: EndpointConfig,
    now: Duration,
    noise_db: f32,
    state: State,
}

/// Silence as far as the VAD is concerned (digital zero after G.711 is -inf).
const FLOOR_DB: f32 = -90.0;

impl Endpointer {
    pub fn new(cfg: EndpointConfig) -> Endpointer {
        Endpointer {
            cfg,
            now: Duration::ZERO,
            noise_db: -60.0,
            state: State::Waiting {
                voiced_run: Duration::ZERO,
            },
        }
    }

    /// Audio time so far.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Takes the next frame of 8 kHz audio (any length; 20 ms on a call).
    pub fn on_frame(&mut self, samples: &[i16]) -> Option<EndpointEvent> {
        let len = Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE));
        let db = energy_db(samples);
        let voiced = db > (self.noise_db + self.cfg.snr_db).max(self.cfg.min_speech_db);
        // The floor follows quiet frames quickly and loud ones very slowly, so a steady
        // background noise stops counting as speech after a while.
        let rate = if voiced { 0.002 } else { 0.05 };
        self.noise_db += rate * (db - self.noise_db);
        self.now += len;
        let now = self.now;
        match self.state {
            State::Done => None,
            State::Waiting { voiced_run } => {
                let run = if voiced {
                    voiced_run + len
                } else {
                    Duration::ZERO
                };
                if voiced && run >= self.cfg.onset {
                    let at = now - run;
                    self.state = State::Speaking {
                        started: at,
                        last_voiced: now,
                    };
                    Some(EndpointEvent::SpeechStarted { at })
                } else if now >= self.cfg.no_input {
                    self.state = State::Done;
                    Some(EndpointEvent::NoInput { at: now })
                } else {
                    self.state = State::Waiting { voiced_run: run };
                    None
                }
            }
            State::Speaking {
                started,
                last_voiced,
            } => {
                let last_voiced = if voiced { now } else { last_voiced };
                self.state = State::Speaking {
                    started,
                    last_voiced,
                };
                let reason = if now - last_voiced >= self.cfg.end_silence {
                    EndReason::Silence
                } else if now - started >= self.cfg.max_utterance {
                    EndReason::MaxLength
                } else {
                    return None;
                };
                self.state = State::Done;
                Some(EndpointEvent::EndOfSpeech {
                    at: now,
                    speech_end: last_voiced,
                    reason,
                })
            }
        }
    }

    /// Back to waiting for speech after a false start (what sounded like speech had no
    /// words in it). The no-input clock keeps running from when listening started.
    pub fn resume(&mut self) {
        self.state = State::Waiting {
            voiced_run: Duration::ZERO,
        };
    }
}

/// Mean energy of a frame in dBFS.
pub fn energy_db(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return FLOOR_DB;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let mean = sum / samples.len() as f64 / (32768.0 * 32768.0);
    if mean <= 0.0 {
        FLOOR_DB
    } else {
        ((10.0 * mean.log10()) as f32).max(FLOOR_DB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::FRAME_SAMPLES;

    fn tone(amplitude: f32) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| (amplitude * (i as f32 * 0.3).sin()) as i16)
            .collect()
    }

    /// Feeds `ms` of a frame and returns every event with the audio time it came at.
    fn feed(ep: &mut Endpointer, frame: &[i16], ms: u64) -> Vec<EndpointEvent> {
        (0..ms / 20).filter_map(|_| ep.on_frame(frame)).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn speech_then_silence_ends_after_the_configured_silence() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let silence = vec![0i16; FRAME_SAMPLES];
        let speech = tone(8000.0);
        assert!(feed(&mut ep, &silence, 300).is_empty());
        assert_eq!(
            feed(&mut ep, &speech, 1000),
            vec![EndpointEvent::SpeechStarted { at: ms(300) }]
        );
        assert!(feed(&mut ep, &silence, 680).is_empty());
        assert_eq!(
            feed(&mut ep, &silence, 20),
            vec![EndpointEvent::EndOfSpeech {
                at: ms(2000),
                speech_end: ms(1300),
                reason: EndReason::Silence
            }]
        );
        assert!(feed(&mut ep, &speech, 200).is_empty());
    }

    #[test]
    fn a_short_pause_does_not_end_the_utterance() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let silence = vec![0i16; FRAME_SAMPLES];
        let speech = tone(8000.0);
        feed(&mut ep, &speech, 500);
        assert!(feed(&mut ep, &silence, 600).is_empty());
        assert!(feed(&mut ep, &speech, 500).is_empty());
        // Still listening: a long silence now ends it.
        assert_eq!(feed(&mut ep, &silence, 700).len(), 1);
    }

    #[test]
    fn silence_only_gives_no_input_at_the_timeout() {
        let cfg = EndpointConfig {
            no_input: ms(3000),
            ..EndpointConfig::default()
        };
        let mut ep = Endpointer::new(cfg);
        let events = feed(&mut ep, &[0i16; FRAME_SAMPLES], 5000);
        assert_eq!(events, vec![EndpointEvent::NoInput { at: ms(3000) }]);
    }

    #[test]
    fn clicks_and_quiet_noise_are_not_speech() {
        let mut ep = Endpointer::new(EndpointConfig::default());
        let quiet = tone(60.0); // about -55 dBFS: line noise
        let loud = tone(8000.0);
        for _ in 0..20 {
            assert_eq!(ep.on_frame(&quiet), None);
            // A 40 ms click is shorter than the 60 ms onset.
            assert_eq!(ep.on_frame(&loud), None);
            assert_eq!(ep.on_frame(&loud), None);
        }
    }

    #[test]
    fn talking_on_is_cut_at_max_length() {
        let cfg = EndpointConfig {
            max_utterance: ms(2000),
            ..EndpointConfig::default()
        };
        let mut ep = Endpointer::new(cfg);
        let events = feed(&mut ep, &tone(8000.0), 4000);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            EndpointEvent::EndOfSpeech {
                at: ms(2000),
                speech_end: ms(2000),
                reason: EndReason::MaxLength
            }
        );
    }

    #[test]
    fn resume_after_a_false_start_keeps_the_no_input_clock() {
        let cfg = EndpointConfig {
            no_input: ms(3000),
            ..EndpointConfig::default()
        };
        let mut ep = Endpointer::new(cfg);
        let silence = vec![0i16; FRAME_SAMPLES];
        feed(&mut ep, &tone(8000.0), 200);
        let end = feed(&mut ep, &silence, 700);
        assert!(matches!(end[..], [EndpointEvent::EndOfSpeech { .. }]));
        ep.resume();
        let events = feed(&mut ep, &silence, 3000);
        assert_eq!(events, vec![EndpointEvent::NoInput { at: ms(3000) }]);
    }
}
