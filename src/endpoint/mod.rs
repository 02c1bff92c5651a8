//! The SIP endpoint's tokio edge: UDP and TCP listeners, the loop that feeds the sans-IO
//! transaction layer with bytes and time, and the routing of requests to call tasks.

use serde::Deserialize;

/// The `[trunks]` section: who may send us SIP.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Source networks (CIDR) allowed to send requests; others get 403.
    pub allow: Vec<String>,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}
