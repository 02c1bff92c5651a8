//! Registrar: agent phones' REGISTER with digest authentication and their bindings.

mod secret;

pub use secret::Secret;

use serde::Deserialize;

/// The `[registrar]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {}
