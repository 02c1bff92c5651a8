//! The engine assembled: checks the config, dialplans and prompts, starts every part
//! (stats, media, speech, ACD, registrar, SIP endpoint, API) and connects their channels.
//! It owns the running parts' handles and swaps in new dialplans on reload, when they
//! validate; calls in progress keep the ones they started with.

pub mod check;
mod descriptors;
mod trim;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::acd::{self, AcdHandle, AgentAction, Router};
use crate::api::{AgentCommand, AgentControl, Api, ControlError, ReloadRequest};
use crate::call::{
    self, CallContext, Flows, SpeechAccess, TrunkRoute, TrunkRoutes, announce::Announcer,
};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::diag::InvalidSection;
use crate::endpoint::{
    Endpoint, EndpointHandle, PeerKind, ProbeTarget, Probing, ReachChange, Registrations,
    StartError,
};
use crate::events::{EventKind, EventSink};
use crate::media::worker::Media;
use crate::metrics::Registry;
use crate::registrar::Registrar;
use crate::stats::{Roster, Stats, StatsError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config, dialplans, grammars or prompts have problems; nothing was started.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), join(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("starting the event log: {0}")]
    Stats(#[from] StatsError),
    #[error("starting speech recognition: {0}")]
    Speech(String),
    /// A start-up step running on the blocking pool panicked or was cancelled.
    #[error("{step} failed: {reason}")]
    Task { step: &'static str, reason: String },
    #[error("{0}")]
    Section(#[from] InvalidSection),
    #[error("starting the SIP endpoint: {0}")]
    Endpoint(#[from] StartError),
    #[error("binding the API on {addr}: {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The configured queues and agents (with the queues their skills name), which the
/// figures show from the start even before any call or login.
pub fn roster(config: &Config) -> Roster {
    Roster {
        queues: config.acd.queues.iter().map(|q| q.name.clone()).collect(),
        agents: config
            .acd
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.skills.keys().cloned().collect()))
            .collect(),
    }
}

/// The error for a start-up step whose blocking task did not finish.
fn task(step: &'static str) -> impl FnOnce(tokio::task::JoinError) -> EngineError {
    move |e| EngineError::Task {
        step,
        reason: e.to_string(),
    }
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running engine. Dropping it does not stop the tasks; `stop` flushes the event log.
pub struct Engine {
    pub sip_udp: Option<SocketAddr>,
    pub sip_tcp: Option<SocketAddr>,
    pub api: SocketAddr,
    reloader: Arc<Reloader>,
    stats: Stats,
    api_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    endpoint: EndpointHandle,
    events: EventSink,
    /// `[sip] shutdown_grace_s`.
    pub shutdown_grace: Duration,
}

/// How long a drain waits, after the grace, for the hung-up calls' BYEs to be answered.
const DRAIN_LINGER: Duration = Duration::from_secs(10);

/// What a reload needs: the config and grammar to check against, and where the new flows go.
struct Reloader {
    config: Config,
    speech: SpeechAccess,
    flows: watch::Sender<Arc<Flows>>,
}

impl Engine {
    /// Checks everything (all problems at once) and starts the engine on the current
    /// runtime. `config_text` is the config file's text, for positions in diagnostics.
    pub async fn start(
        config: Config,
        config_file: &Path,
        config_text: &str,
    ) -> Result<Engine, EngineError> {
        let mut problems = check::config_diagnostics(&config, config_file, config_text);
        let registry = Registry::new();
        let speech = {
            let (speech_config, registry) = (config.speech.clone(), registry.clone());
            tokio::task::spawn_blocking(move || SpeechAccess::start(&speech_config, &registry))
                .await
                .map_err(task("starting speech recognition"))?
                .map_err(|e| EngineError::Speech(e.to_string()))?
        };
        let flows = {
            let config = config.clone();
            let ctx = check::validation_context(&config, speech.grammar_names());
            tokio::task::spawn_blocking(move || check::load_flows(&config, &[], &ctx))
                .await
                .map_err(task("loading the dialplans and prompts"))?
        };
        let flows = match flows {
            Ok(f) if problems.is_empty() => f,
            Ok(_) => return Err(EngineError::Invalid(problems)),
            Err(mut d) => {
                problems.append(&mut d);
                return Err(EngineError::Invalid(problems));
            }
        };
        let report = flows.prompts.report();
        info!(
            dialplans = flows.dialplans.plans().len(),
            prompts_rendered = report.rendered,
            prompts_cached = report.cached,
            prompts_recorded = report.recorded,
            "dialplans loaded"
        );

        let (sink, events_rx) = EventSink::new();
        let stats = {
            let stats_config = config.stats.clone();
            let registry = registry.clone();
            let roster = roster(&config);
            tokio::task::spawn_blocking(move || {
                Stats::start(&stats_config, &roster, events_rx, &registry)
            })
            .await
            .map_err(task("opening the event log"))??
        };
        let media = Media::start(
            &config.media,
            &config.recording,
            &registry,
            config.trunks.networks().map_err(StartError::Allow)?,
        );

        let acd = if config.acd.queues.is_empty() {
            None
        } else {
            let router = Router::new(&config.acd, Instant::now())?;
            let (handle, _task) = acd::spawn(router, sink.clone());
            Some(handle)
        };
        let registrations = match (&acd, config.acd.credentials()) {
            (Some(acd), credentials) if !credentials.is_empty() => {
                let secret: [u8; 32] = rand::random();
                let registrar =
                    Registrar::new(&config.registrar, credentials, secret, Instant::now())?;
                let (changes, mut rx) = mpsc::unbounded_channel();
                let acd = acd.clone();
                tokio::spawn(async move {
                    while let Some(change) = rx.recv().await {
                        let change: crate::registrar::BindingChange = change;
                        acd.registration(&change.user, change.contact);
                    }
                });
                Some(Registrations { registrar, changes })
            }
            _ => None,
        };

        let (flows_tx, flows_rx) = watch::channel(Arc::new(flows));
        // The endpoint needs the call starter and the calls need the endpoint's handle: the
        // starter waits for the context, which is made once the endpoint is up.
        let ctx_cell: Arc<std::sync::OnceLock<Arc<CallContext>>> = Arc::default();
        let cell = ctx_cell.clone();
        let starter: crate::endpoint::CallStarter = Arc::new(move |incoming| {
            if let Some(ctx) = cell.get() {
                call::start(ctx, incoming);
            } else {
                call::refuse(incoming, 503);
            }
        });
        let endpoint = Endpoint::start(
            &config.sip,
            &config.trunks,
            &registry,
            starter,
            registrations,
            probing(&config, acd.clone(), sink.clone()),
            descriptors::raise_limit(),
        )
        .await?;
        let ctx = Arc::new(CallContext {
            media,
            endpoint: endpoint.handle(),
            flows: flows_rx,
            acd: acd.clone(),
            speech: speech.clone(),
            events: sink.clone(),
            announcer: Arc::new(Announcer::new(config.prompts.clone())),
            answering: config.sip.answering(),
            agent_refer: config.sip.agent_refer,
            trunks: Arc::new(TrunkRoutes {
                routes: config
                    .trunks
                    .named
                    .iter()
                    .map(|(name, t)| {
                        let route = TrunkRoute {
                            uri: (!t.uri.is_empty()).then(|| t.uri.clone()),
                            srtp_required: t.media_encryption
                                == crate::media::sdp::Encryption::Required,
                        };
                        (name.clone(), route)
                    })
                    .collect(),
                no_answer: Duration::from_millis(config.trunks.no_answer_ms),
            }),
        });
        let _ = ctx_cell.set(ctx);

        let (control_tx, control_rx) = mpsc::channel::<AgentControl>(64);
        if let Some(acd) = acd.clone() {
            tokio::spawn(relay_control(control_rx, acd));
        }
        let reloader = Arc::new(Reloader {
            config: config.clone(),
            speech,
            flows: flows_tx,
        });
        let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
        tokio::spawn(serve_reloads(reload_rx, reloader.clone()));
        let api = Api::new(
            &config.api,
            stats.handle.clone(),
            registry.clone(),
            acd.as_ref().map(|_| control_tx),
            Some(reload_tx),
            endpoint.trunks.clone(),
            endpoint.handle().peers(),
        );
        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .map_err(|source| EngineError::Api {
                addr: config.api.listen,
                source,
            })?;
        let api_addr = listener.local_addr().unwrap_or(config.api.listen);
        let (api_shutdown, api_stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api.serve(listener, async move {
            let _ = api_stop.await;
        }));
        tokio::spawn(trim::periodically(Duration::from_secs(10)));
        info!(udp = ?endpoint.udp_addr, tcp = ?endpoint.tcp_addr, tls = ?endpoint.tls_addr, api = %api_addr, "hotline is running");
        Ok(Engine {
            sip_udp: endpoint.udp_addr,
            sip_tcp: endpoint.tcp_addr,
            api: api_addr,
            reloader,
            stats,
            api_shutdown: Some(api_shutdown),
            endpoint: endpoint.handle(),
            events: sink,
            shutdown_grace: Duration::from_secs(config.sip.shutdown_grace_s),
        })
    }

    /// Loads the dialplans and prompts again; swaps them in only if they validate. New calls
    /// take them, calls in progress finish on theirs.
    pub async fn reload(&self) -> Result<usize, Vec<Diagnostic>> {
        self.reloader.reload().await
    }

    /// Stops taking calls (INVITE and OPTIONS get 503) and lets the calls in progress go
    /// on for `grace`, then hangs them up. The future ends when no call is left (true) or
    /// `DRAIN_LINGER` after the grace (false). The drain starts at the call, not at the
    /// first poll: a second drain with a shorter grace hangs up sooner.
    pub fn drain(&self, grace: Duration) -> impl Future<Output = bool> + use<> {
        let drained = self.endpoint.drain(grace);
        async move {
            tokio::time::timeout(grace + DRAIN_LINGER, drained)
                .await
                .is_ok_and(|r| r.is_ok())
        }
    }

    /// Logs `engine_stopped`, stops serving the API and writes every event already sent
    /// to the log.
    pub async fn stop(mut self) {
        self.events.emit(EventKind::EngineStopped {});
        if let Some(s) = self.api_shutdown.take() {
            let _ = s.send(());
        }
        self.stats.stop().await;
    }
}

impl Reloader {
    async fn reload(&self) -> Result<usize, Vec<Diagnostic>> {
        let config = self.config.clone();
        let ctx = check::validation_context(&config, self.speech.grammar_names());
        let loaded = tokio::task::spawn_blocking(move || check::load_flows(&config, &[], &ctx))
            .await
            .map_err(|e| vec![Diagnostic::whole(PathBuf::new(), e.to_string())])??;
        let n = loaded.dialplans.plans().len();
        self.flows.send_replace(Arc::new(loaded));
        info!(dialplans = n, "dialplans reloaded");
        Ok(n)
    }
}

/// Reloads asked for through the API.
async fn serve_reloads(mut rx: mpsc::Receiver<ReloadRequest>, reloader: Arc<Reloader>) {
    while let Some(r) = rx.recv().await {
        info!(by = %r.requested_by, "reload requested");
        let result = reloader.reload().await.map_err(|problems| {
            for p in &problems {
                warn!("{p}");
            }
            problems.iter().map(|p| p.to_string()).collect()
        });
        let _ = r.reply.send(result);
    }
}

/// Agent commands from the API, answered by the ACD.
async fn relay_control(mut rx: mpsc::Receiver<AgentControl>, acd: AcdHandle) {
    while let Some(c) = rx.recv().await {
        let action = match c.command {
            AgentCommand::Login => AgentAction::Login,
            AgentCommand::Logout { reason } => AgentAction::Logout { reason },
            AgentCommand::Pause { reason } => AgentAction::Pause { reason },
            AgentCommand::Resume => AgentAction::Resume,
        };
        info!(agent = %c.agent, by = %c.requested_by, ?action, "agent control");
        let result = match acd.control(&c.agent, action).await {
            Ok(_) => Ok(()),
            Err(acd::ControlError::UnknownAgent(_)) => {
                Err(ControlError::UnknownAgent(c.agent.clone()))
            }
            Err(e) => {
                warn!(agent = %c.agent, error = %e, "agent control refused");
                Err(ControlError::Refused(e.to_string()))
            }
        };
        let _ = c.reply.send(result);
    }
}

/// The agents reached by URI to probe, and a task that tells the ACD and the event log
/// when a probed trunk or agent goes up or down.
fn probing(config: &Config, acd: Option<AcdHandle>, events: EventSink) -> Probing {
    let agents = config
        .acd
        .agents
        .iter()
        .filter_map(|a| {
            Some(ProbeTarget {
                name: a.id.clone(),
                kind: PeerKind::Agent,
                uri: a.uri.clone()?,
            })
        })
        .collect();
    let (changes, mut rx) = mpsc::unbounded_channel::<ReachChange>();
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            if let (PeerKind::Agent, Some(acd)) = (change.kind, &acd) {
                acd.reachability(&change.name, change.up);
            }
            let (peer, kind) = (change.name, change.kind.as_str().to_owned());
            events.emit(if change.up {
                EventKind::PeerUp { peer, kind }
            } else {
                EventKind::PeerDown {
                    peer,
                    kind,
                    reason: change.reason.unwrap_or_default(),
                }
            });
        }
    });
    Probing { agents, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A start-up task that dies is reported as that step's failure, not as speech's.
    #[tokio::test]
    async fn a_failed_start_up_task_names_its_step() {
        let died = tokio::task::spawn_blocking(|| panic!("boom"))
            .await
            .expect_err("the task panicked");
        let error = task("loading the dialplans and prompts")(died);
        assert!(matches!(error, EngineError::Task { .. }));
        assert!(
            error
                .to_string()
                .starts_with("loading the dialplans and prompts failed: task "),
            "{error}"
        );
    }
}
