//! ACD: queues and agent states, owned by one actor around a sans-IO router. Placeholder until the ACD issue lands.

use serde::Deserialize;

/// The `[acd]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcdConfig {}
