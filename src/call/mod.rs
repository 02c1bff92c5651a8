//! Calls: one tokio task per call that owns its dialog and media handle, and runs the call
//! flow on them.

use serde::Deserialize;

/// The `[flow]` section: the first call flow, until dialplans drive calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// 8 kHz WAV played to every answered call, which is then hung up.
    pub prompt: String,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            prompt: "prompts/welcome.wav".into(),
        }
    }
}
