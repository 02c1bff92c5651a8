//! Prompt audio: texts rendered to 8 kHz audio once (espeak-ng) into a cache, recorded WAVs overriding them. Placeholder until the dialplan issue lands.

use serde::Deserialize;

/// The `[prompts]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptConfig {}
