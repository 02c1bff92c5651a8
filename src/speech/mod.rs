//! Speech: Vosk recognizer pool, endpointing and the intent classifier. Placeholder until the speech issue lands.

use serde::Deserialize;

/// The `[speech]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {}
