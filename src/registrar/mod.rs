//! Registrar: agent phones' REGISTER with digest authentication and their bindings. Placeholder until the ACD issue lands.

use serde::Deserialize;

/// The `[registrar]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {}
