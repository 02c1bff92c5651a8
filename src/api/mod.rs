//! Supervisor API: REST (JSON) over the stats actor's figures, a live stream (SSE), agent
//! control relayed to the ACD, Prometheus /metrics, the OpenAPI description and the
//! dashboard page. It owns no statistics: every answer comes from the stats actor, every
//! agent change from the ACD.

mod auth;
pub mod config;
pub mod control;
mod dashboard;
mod error;
mod listener;
mod prometheus;
mod routes;
mod state;
mod stream;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::metrics::Registry;
use crate::stats::StatsHandle;

pub use config::{ApiConfig, DashboardConfig, Role, TokenConfig};
pub use control::{AgentCommand, AgentControl, ControlError, ReloadRequest};

/// The API, ready to serve.
pub struct Api {
    router: Router,
    limits: listener::Limits,
    refused: Arc<crate::metrics::Counter>,
}

impl Api {
    /// `control` is where agent commands go (the ACD actor's receiver), `reload` where
    /// dialplan reloads go (the engine); `None` answers them with 503. `trunks` is the
    /// registering trunks' status as the endpoint publishes it, `peers` the probed trunks'
    /// and agents' reachability.
    pub fn new(
        config: &ApiConfig,
        stats: StatsHandle,
        metrics: Arc<Registry>,
        control: Option<mpsc::Sender<AgentControl>>,
        reload: Option<mpsc::Sender<ReloadRequest>>,
        trunks: tokio::sync::watch::Receiver<Vec<crate::endpoint::TrunkStatus>>,
        peers: tokio::sync::watch::Receiver<Vec<crate::endpoint::PeerStatus>>,
    ) -> Api {
        let state = state::AppState(Arc::new(state::Shared {
            stats,
            metrics,
            control,
            reload,
            tokens: auth::Tokens::new(&config.tokens),
            metrics_open: config.metrics_open,
            dashboard: config.dashboard.clone(),
            streams: Arc::default(),
            trunks,
            peers,
            max_streams: config.max_streams,
            keep_alive: (std::time::Duration::from_secs(config.idle_s) / 2)
                .min(std::time::Duration::from_secs(15)),
        }));
        let refused = state.metrics.counter(
            "hotline_api_connections_refused_total",
            "API connections closed at accept: max_connections or max_per_source were open",
            &[],
        );
        let router = routes::table()
            .into_iter()
            .fold(Router::new(), |r, (_, path, handler)| {
                r.route(path, handler)
            })
            .layer(axum::middleware::map_response(security_headers))
            .with_state(state);
        Api {
            router,
            limits: listener::Limits {
                max_connections: config.max_connections,
                max_per_source: config.max_per_source,
                idle: std::time::Duration::from_secs(config.idle_s),
            },
            refused,
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = listener::LimitedListener::new(listener, self.limits, self.refused);
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Every (method, path) the API answers: what the OpenAPI description must cover.
    pub fn routes() -> Vec<(String, &'static str)> {
        routes::table()
            .into_iter()
            .map(|(m, p, _)| (m.as_str().to_ascii_lowercase(), p))
            .collect()
    }

    /// The OpenAPI description served at /openapi.json.
    pub fn openapi() -> &'static str {
        routes::OPENAPI
    }
}

/// What every answer carries so a browser keeps the dashboard to itself: its own scripts
/// and styles only, never inside another site's frame, no type sniffing, no address (the
/// stream's token) in a Referer.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}
