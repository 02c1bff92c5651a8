//! Speech: what a caller says, turned into an intent and a queue.
//!
//! Two halves. The text half is sans-IO: `grammar` loads the operator's intent files,
//! `classifier` maps a transcript to a `Decision`, `check` runs a grammar's examples.
//! The audio half (`service`) owns the recognizers: a bounded pool of Vosk recognizers on
//! dedicated threads (`vosk_pool`) or a vosk-server over WebSocket (`remote`), each
//! session driven by the sans-IO endpointer (`endpoint`, `utterance`). The call task
//! only sees `SpeechService::listen`, `Listener::push` and `SpeechEvent`s.
//! This module touches no SIP, RTP or dialplan state.

mod admission;
mod check;
mod classifier;
mod config;
pub mod corpus;
pub mod devset;
mod endpoint;
mod grammar;
mod intent_model;
mod language;
mod offline;
mod phonetic;
mod remote;
mod service;
mod session;
mod text;
mod utterance;
mod vosk_pool;

pub use check::{check_grammar, check_grammar_with};
pub use classifier::{Classifier, Decision, Evaluation, Evidence, Score};
pub use config::{Backend, LocalCapacity, RecognizerConfig, SpeechConfig};
pub use endpoint::{EndReason, EndpointConfig};
pub use grammar::{Example, Grammar, GrammarNames, Intent, Settings, Source, Term, TermKind};
pub use intent_model::Contribution;
pub use language::LanguageGuess;
pub use offline::{ClipRun, Pace, read_wav, run_clip};
pub use remote::{CONFIG_MESSAGE, EOF_MESSAGE};
pub use service::{AudioSink, ListenOptions, Listener, SpeechEvents, SpeechService};
pub use session::{PushError, SpeechEvent, Unavailable};
pub use text::TextTools;
pub use utterance::{Recognition, SessionStats, Word};

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Audio inside the engine: 8 kHz, 20 ms frames of 160 samples.
pub const SAMPLE_RATE: u32 = 8000;
pub const FRAME_SAMPLES: usize = 160;

/// The languages a caller can be served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Mandarin,
    Cantonese,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Mandarin, Language::Cantonese];

    /// ISO 639-3 code, used in grammar files and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Language::Mandarin => "cmn",
            Language::Cantonese => "yue",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    /// "mandarin", "cantonese", or their codes "cmn", "yue".
    fn from_str(s: &str) -> Result<Language, String> {
        match s.to_ascii_lowercase().as_str() {
            "mandarin" | "cmn" => Ok(Language::Mandarin),
            "cantonese" | "yue" => Ok(Language::Cantonese),
            other => Err(format!("unknown language `{other}`: mandarin or cantonese")),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("loading the OpenCC/jieba dictionaries: {0}")]
    TextTools(String),
    #[error("grammar {dir}: {count} error(s), first: {first}", dir = .dir.display())]
    Grammar {
        dir: PathBuf,
        count: usize,
        first: String,
    },
    #[error("{lang} speech model {path}: {reason}", path = .path.display())]
    Model {
        lang: Language,
        path: PathBuf,
        reason: String,
    },
    #[error("[speech.{section}]: {message}")]
    Config {
        section: &'static str,
        message: String,
    },
    #[error("starting a {lang} recognizer thread: {source}")]
    Thread {
        lang: Language,
        source: std::io::Error,
    },
    #[error("{path}: {reason}", path = .path.display())]
    File { path: PathBuf, reason: String },
}
