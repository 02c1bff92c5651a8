//! The `[speech]` section of the engine config: where the grammar and the recognizers of
//! each language are, how many sessions may run at once, and the endpointing times.
//! Only parsing and defaults; nothing here loads a model or opens a connection.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::endpoint::EndpointConfig;
use super::{Language, SpeechError};

/// Where the Mandarin model is looked for when the config names none and
/// `HOTLINE_VOSK_MODEL` is unset (scripts/setup.sh unpacks it there).
pub const DEFAULT_MANDARIN_MODEL: &str = "data/models/vosk-model-small-cn-0.22";

/// The `[speech]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {
    /// Folder holding the hotline's intent grammar (grammars/README.md).
    pub grammar_dir: PathBuf,
    /// Decoder threads per local (Vosk) model; 0: one per CPU core. Every listening
    /// session shares them; only speech is decoded.
    pub decoders: usize,
    /// Listening sessions at once per language, whatever the load (for a vosk-server:
    /// connections at once) unless its section says otherwise.
    pub max_sessions: usize,
    /// New sessions are refused (the caller is told, then offered keys) while the
    /// decoders were busy more than this share of the last two seconds, or five seconds of
    /// audio per decoder wait to be decoded. 1.0 admits by `max_sessions` alone (offline
    /// recognition, which feeds audio as fast as it is decoded).
    pub max_load: f64,
    /// Recognisers created at start; more are made when more callers speak at once.
    /// 0: one per decoder.
    pub warm_recognizers: usize,
    /// Most recognisers per local model; 0: one per decoder. A recogniser is lent for the
    /// decoding of one utterance at its endpoint; beyond this many at once, speech waits
    /// (held, not dropped) for a warm one, which decodes several times faster than a new one.
    /// A decoder thread decodes one utterance at a time, so more than one per decoder only
    /// spreads the traffic that warms them over more recognisers.
    pub recognizers: usize,
    /// The rate audio is fed to a local Vosk model at: 8000 (as it arrives from RTP) or
    /// 16000 (upsampled here first). bench/speech_accuracy.sh measures both.
    pub vosk_sample_rate: u32,
    /// Silence after speech that ends the utterance.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub end_silence_ms: u64,
    /// How long to wait for the caller to start speaking.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub no_input_ms: u64,
    /// Longest utterance; the recognition is cut there.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub max_utterance_ms: u64,
    pub mandarin: RecognizerConfig,
    pub cantonese: RecognizerConfig,
}

/// `[speech.mandarin]` / `[speech.cantonese]`: a Vosk model folder or a vosk-server URL.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecognizerConfig {
    /// A Vosk-format model folder, loaded once and shared by the pool.
    pub model: Option<PathBuf>,
    /// A vosk-server WebSocket URL (`ws://host:2700`), one connection per recognition.
    pub server: Option<String>,
    /// Overrides `[speech] max_sessions` for this language.
    pub max_sessions: Option<usize>,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            grammar_dir: PathBuf::from("grammars/12345"),
            decoders: 0,
            max_sessions: 500,
            max_load: 0.85,
            warm_recognizers: 0,
            recognizers: 0,
            vosk_sample_rate: 8000,
            end_silence_ms: 700,
            no_input_ms: 5000,
            max_utterance_ms: 15000,
            mandarin: RecognizerConfig::default(),
            cantonese: RecognizerConfig::default(),
        }
    }
}

/// What serves one language, once defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Vosk {
        model: PathBuf,
        capacity: LocalCapacity,
    },
    Server {
        url: String,
        max_sessions: usize,
    },
    None,
}

/// How a local model's decoding is shared out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalCapacity {
    pub decoders: usize,
    pub max_sessions: usize,
    pub max_load: f64,
    pub warm: usize,
    pub recognizers: usize,
}

impl SpeechConfig {
    pub fn recognizer(&self, lang: Language) -> &RecognizerConfig {
        match lang {
            Language::Mandarin => &self.mandarin,
            Language::Cantonese => &self.cantonese,
        }
    }

    /// The backend for `lang`. Mandarin falls back to `HOTLINE_VOSK_MODEL`, then to the
    /// model scripts/setup.sh unpacks; Cantonese has none unless configured.
    pub fn backend(&self, lang: Language) -> Result<Backend, SpeechError> {
        let section = match lang {
            Language::Mandarin => "mandarin",
            Language::Cantonese => "cantonese",
        };
        let r = self.recognizer(lang);
        let max_sessions = r.max_sessions.unwrap_or(self.max_sessions);
        if max_sessions == 0 || !(self.max_load > 0.0 && self.max_load <= 1.0) {
            return Err(SpeechError::Config {
                section: "speech",
                message: format!(
                    "max_sessions must be at least 1 (it is {max_sessions}) and max_load in 0 < x <= 1 (it is {})",
                    self.max_load
                ),
            });
        }
        let decoders = match self.decoders {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let capacity = LocalCapacity {
            decoders,
            max_sessions,
            max_load: self.max_load,
            warm: match self.warm_recognizers {
                0 => decoders,
                n => n,
            },
            recognizers: match self.recognizers {
                0 => decoders,
                n => n,
            },
        };
        match (&r.model, &r.server) {
            (Some(_), Some(_)) => Err(SpeechError::Config {
                section,
                message: "set either `model` or `server`, not both".into(),
            }),
            (Some(model), None) => Ok(Backend::Vosk {
                model: model.clone(),
                capacity,
            }),
            (None, Some(url)) => {
                if url.starts_with("ws://") {
                    Ok(Backend::Server {
                        url: url.clone(),
                        max_sessions,
                    })
                } else {
                    Err(SpeechError::Config {
                        section,
                        message: format!("server `{url}` is not a ws:// URL"),
                    })
                }
            }
            (None, None) if lang == Language::Mandarin => Ok(Backend::Vosk {
                model: std::env::var_os("HOTLINE_VOSK_MODEL")
                    .map_or_else(|| PathBuf::from(DEFAULT_MANDARIN_MODEL), PathBuf::from),
                capacity,
            }),
            (None, None) => Ok(Backend::None),
        }
    }

    pub fn endpointing(&self) -> EndpointConfig {
        EndpointConfig {
            end_silence: Duration::from_millis(self.end_silence_ms),
            no_input: Duration::from_millis(self.no_input_ms),
            max_utterance: Duration::from_millis(self.max_utterance_ms),
            ..EndpointConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn sections_parse_and_resolve_backends() {
        let text = "[speech]\ndecoders = 3\nmax_sessions = 40\nend_silence_ms = 500\n\
                    [speech.mandarin]\nmodel = \"m\"\n\
                    [speech.cantonese]\nserver = \"ws://127.0.0.1:2700\"\nmax_sessions = 5\n";
        let c = Config::parse(Path::new("x.toml"), text).expect("valid");
        let s = c.speech;
        assert_eq!(
            s.backend(Language::Mandarin).expect("ok"),
            Backend::Vosk {
                model: PathBuf::from("m"),
                capacity: LocalCapacity {
                    decoders: 3,
                    max_sessions: 40,
                    max_load: 0.85,
                    warm: 3,
                    recognizers: 3
                }
            }
        );
        assert_eq!(
            s.backend(Language::Cantonese).expect("ok"),
            Backend::Server {
                url: "ws://127.0.0.1:2700".into(),
                max_sessions: 5
            }
        );
        assert_eq!(s.endpointing().end_silence, Duration::from_millis(500));
        assert_eq!(s.endpointing().no_input, Duration::from_millis(5000));
    }

    #[test]
    fn cantonese_defaults_to_none_and_bad_urls_are_refused() {
        let s = SpeechConfig::default();
        assert_eq!(s.backend(Language::Cantonese).expect("ok"), Backend::None);
        let mut s = SpeechConfig::default();
        s.cantonese.server = Some("http://x".into());
        let err = s.backend(Language::Cantonese).unwrap_err().to_string();
        assert!(err.starts_with("[speech.cantonese]: "), "{err}");
        let err = Config::parse(Path::new("x.toml"), "[speech.mandarin]\nmodle = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml:2:1: "), "{err}");
        let s = SpeechConfig {
            max_load: 1.5,
            ..SpeechConfig::default()
        };
        let err = s.backend(Language::Mandarin).unwrap_err().to_string();
        assert!(err.contains("max_load in 0 < x <= 1 (it is 1.5)"), "{err}");
    }
}
