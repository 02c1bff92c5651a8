//! Supervisor API: REST, live stream, metrics and dashboard. Placeholder until the statistics issue lands.

use serde::Deserialize;

/// The `[api]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {}
