//! The `[stats]` config section and the fold settings derived from it. Loading the time zone
//! is the only I/O here, done once when the settings are built.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::tz::{Zone, ZoneError};

/// The `[stats]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// The SQLite event log (WAL mode).
    pub database: PathBuf,
    /// Also write an Asterisk-compatible queue_log here (appended; rotate with a move or
    /// copytruncate: the file is reopened for every batch).
    pub queue_log: Option<PathBuf>,
    /// Events older than this are deleted from the database (checked hourly).
    pub retention_days: u32,
    /// Days of 15-minute intervals kept in memory and replayed at start-up.
    pub history_days: u32,
    /// `local`, `UTC`, `+08:00` or an IANA name such as `Asia/Shanghai`.
    pub timezone: String,
    pub zoneinfo_dir: PathBuf,
    /// Callers who hang up before waiting this long are short abandons: left out of offered,
    /// abandoned and the service level, and reported apart.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub short_abandon_s: u32,
    /// The service-level target T (answered within T seconds) for queues without their own.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub service_level_s: u32,
    /// Per-queue settings, `[stats.queue.<name>]`. Listed queues show up even before their
    /// first call.
    pub queue: BTreeMap<String, QueueStatsConfig>,
    /// Shortest gap between two live snapshots sent to subscribers (ms).
    #[serde(deserialize_with = "crate::duration::millis")]
    pub publish_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueStatsConfig {
    #[serde(deserialize_with = "crate::duration::opt_seconds")]
    pub service_level_s: Option<u32>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            database: PathBuf::from("data/events.sqlite"),
            queue_log: None,
            retention_days: 400,
            history_days: 7,
            timezone: "local".to_owned(),
            zoneinfo_dir: PathBuf::from("/usr/share/zoneinfo"),
            short_abandon_s: 5,
            service_level_s: 20,
            queue: BTreeMap::new(),
            publish_ms: 500,
        }
    }
}

/// Everything the fold needs to turn events into figures, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldSettings {
    pub zone: Zone,
    pub short_abandon_ms: u64,
    pub service_level_ms: u64,
    pub queue_service_level_ms: BTreeMap<String, u64>,
    pub history_days: u32,
    /// Queues shown even when no event named them yet.
    pub known_queues: Vec<String>,
}

impl FoldSettings {
    pub fn from_config(config: &StatsConfig) -> Result<FoldSettings, ZoneError> {
        Ok(FoldSettings {
            zone: Zone::load(&config.timezone, &config.zoneinfo_dir)?,
            short_abandon_ms: u64::from(config.short_abandon_s) * 1000,
            service_level_ms: u64::from(config.service_level_s) * 1000,
            queue_service_level_ms: config
                .queue
                .iter()
                .filter_map(|(q, c)| Some((q.clone(), u64::from(c.service_level_s?) * 1000)))
                .collect(),
            history_days: config.history_days.max(1),
            known_queues: config.queue.keys().cloned().collect(),
        })
    }

    /// A UTC zone with the default thresholds: for tests and tools without a config.
    pub fn utc() -> FoldSettings {
        let defaults = StatsConfig::default();
        FoldSettings {
            zone: Zone::utc(),
            short_abandon_ms: u64::from(defaults.short_abandon_s) * 1000,
            service_level_ms: u64::from(defaults.service_level_s) * 1000,
            queue_service_level_ms: BTreeMap::new(),
            history_days: defaults.history_days,
            known_queues: Vec::new(),
        }
    }

    pub fn service_level_ms(&self, queue: &str) -> u64 {
        self.queue_service_level_ms
            .get(queue)
            .copied()
            .unwrap_or(self.service_level_ms)
    }
}
