//! The `[api]` config section: where the supervisor API listens, who may use it (bearer
//! tokens with a role), and the dashboard's colour thresholds. Tokens never appear in
//! `Debug` output, so they cannot leak into logs.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, PathKey, Problem};

/// The `[api]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// `[[api.tokens]]`: no token, no data.
    pub tokens: Vec<TokenConfig>,
    /// Serve /metrics without a token (for a Prometheus on a trusted network).
    pub metrics_open: bool,
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
    /// Connections one address may hold.
    pub max_per_source: usize,
    /// Seconds a connection may move no byte before it is closed (at least 2, and longer
    /// than any answer takes); the live stream writes a keep-alive at least twice as often.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub idle_s: u64,
    /// Live streams (/api/v1/stream) at once; more get 503.
    pub max_streams: usize,
    pub dashboard: DashboardConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tokens: Vec::new(),
            metrics_open: false,
            max_connections: 256,
            max_per_source: 64,
            idle_s: 60,
            max_streams: 64,
            dashboard: DashboardConfig::default(),
        }
    }
}

impl ApiConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.idle_s < 2 {
            out.push(Problem {
                path: vec![
                    PathKey::Key("api".to_owned()),
                    PathKey::Key("idle_s".to_owned()),
                ],
                message: "idle_s must be at least 2".to_owned(),
            });
        }
        out
    }

    pub fn diagnostics(&self, file: &Path, text: &str) -> Vec<Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token: shown in logs and audit lines instead of the token.
    pub name: String,
    /// Never printed or written back out.
    pub token: crate::registrar::Secret,
    pub role: Role,
}

/// Supervisors read; admins read and control agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Supervisor,
    Admin,
}

/// Colour thresholds of the dashboard: a figure at or past `warn` shows amber, at or past
/// `alert` red (for the service level: at or below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    pub waiting_warn: u32,
    pub waiting_alert: u32,
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub longest_wait_warn_s: u32,
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub longest_wait_alert_s: u32,
    pub service_level_warn_pct: f64,
    pub service_level_alert_pct: f64,
    pub abandoned_warn_pct: f64,
    pub abandoned_alert_pct: f64,
    /// The page's language at first load: `zh` or `en` (the page has a switch).
    pub language: String,
    /// The page's title.
    pub title: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            waiting_warn: 5,
            waiting_alert: 15,
            longest_wait_warn_s: 60,
            longest_wait_alert_s: 180,
            service_level_warn_pct: 80.0,
            service_level_alert_pct: 60.0,
            abandoned_warn_pct: 5.0,
            abandoned_alert_pct: 10.0,
            language: "zh".to_owned(),
            title: "12345".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn sections_parse_and_tokens_stay_out_of_debug_output() {
        let text = r#"
[stats]
database = "/var/lib/hotline/events.sqlite"
queue_log = "/var/log/hotline/queue_log"
timezone = "Asia/Shanghai"
short_abandon_s = 8
[stats.queue.tax]
service_level_s = 30

[api]
listen = "0.0.0.0:9000"
metrics_open = true
[[api.tokens]]
name = "wall screen"
token = "very-secret-value"
role = "supervisor"
[api.dashboard]
waiting_alert = 20
language = "en"
"#;
        let c = Config::parse(Path::new("hotline.toml"), text).expect("valid");
        assert_eq!(c.stats.short_abandon_s, 8);
        assert_eq!(c.stats.queue["tax"].service_level_s, Some(30));
        assert_eq!(c.api.tokens[0].role, Role::Supervisor);
        assert_eq!(c.api.dashboard.waiting_alert, 20);
        assert_eq!(c.api.dashboard.waiting_warn, 5);
        let debug = format!("{:?}", c.api);
        assert!(!debug.contains("very-secret-value"), "{debug}");
        assert!(debug.contains("wall screen"));
        let err = Config::parse(
            Path::new("h.toml"),
            "[api]\n[[api.tokens]]\nname = \"x\"\ntoken = \"y\"\nrole = \"root\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("h.toml:5:8: "), "{err}");
    }
}
