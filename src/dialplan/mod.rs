//! Dialplans: the call flows operators write (parse, validate, interpret per call). Placeholder until the dialplan issue lands.

use serde::Deserialize;

/// The `[dialplan]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialplanConfig {}
