//! What every request handler shares: handles to the stats actor, the metrics registry and
//! the ACD's control channel, plus the settings read from config. Read-only after start.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{mpsc, watch};

use crate::endpoint::TrunkStatus;
use crate::metrics::Registry;
use crate::stats::StatsHandle;

use super::auth::Tokens;
use super::config::DashboardConfig;
use super::control::{AgentControl, ReloadRequest};

#[derive(Clone)]
pub(super) struct AppState(pub Arc<Shared>);

pub(super) struct Shared {
    pub stats: StatsHandle,
    pub metrics: Arc<Registry>,
    pub control: Option<mpsc::Sender<AgentControl>>,
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    pub tokens: Tokens,
    pub metrics_open: bool,
    pub dashboard: DashboardConfig,
    /// Live streams open, and how many may be.
    pub streams: Arc<AtomicUsize>,
    pub max_streams: usize,
    /// How often a live stream writes a keep-alive: often enough that the connection is
    /// never idle, and that proxies and browsers see it alive.
    pub keep_alive: std::time::Duration,
    /// The registering trunks' status, from the endpoint.
    pub trunks: watch::Receiver<Vec<TrunkStatus>>,
    /// The probed trunks' and agents' reachability, from the endpoint.
    pub peers: watch::Receiver<Vec<crate::endpoint::PeerStatus>>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
