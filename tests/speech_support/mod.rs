//! What the speech integration tests share: the dev set, a service on the real model.
#![allow(dead_code)]

pub mod vosk_ws_server;

use std::path::PathBuf;
use std::sync::Arc;

use hotline::metrics::Registry;
use hotline::speech::{SpeechConfig, SpeechService, devset};

/// `../shared/speech/dev` (or `$HOTLINE_SHARED/speech/dev`).
pub fn dev_dir() -> PathBuf {
    devset::dev_dir().expect("the shared dev set: ../shared beside the project or HOTLINE_SHARED")
}

/// The engine's defaults (shipped grammar, Mandarin model from `make setup`) with
/// `sessions` listening sessions at most, as many decoder threads and warm recognisers,
/// admitted by that count alone: the tests feed clips as fast as they decode, as
/// `hotline recognize` does, which keeps the decoders busy by design.
pub fn config(sessions: usize) -> SpeechConfig {
    SpeechConfig {
        decoders: sessions,
        max_sessions: sessions,
        warm_recognizers: sessions,
        max_load: 1.0,
        ..SpeechConfig::default()
    }
}

pub fn start(config: &SpeechConfig) -> (Arc<SpeechService>, Arc<Registry>) {
    let registry = Registry::new();
    let service = SpeechService::start(config, &registry).expect("the speech service starts");
    (service, registry)
}
