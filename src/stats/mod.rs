//! Statistics: the durable event log and the figures folded from it. Placeholder until the statistics issue lands.

use serde::Deserialize;

/// The `[stats]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {}
