//! The endpoint's tokio edge: the one task that owns the UDP socket, the TCP connections'
//! write halves and the calls' channels. Each turn it reads the clock once, feeds the
//! endpoint core with what arrived (datagrams, framed TCP messages, commands from calls,
//! connection changes) and with time, then sends what the core transmits and delivers its
//! events. Every decision is the core's; this file only moves bytes, events and time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::admission::Admission;
use super::conns::{TcpLimits, tcp_connection_cap};
use super::core::{Command, ConnEnd, Core, Dest, Event, Settings, Transmit};
use super::qualify::{PeerId, PeerKind, PeerStatus, ProbeAddress, ProbeTarget, ReachChange};
use super::tls::{self, Tls};
use super::trunk_limits::{TrunkLimit, TrunkLimits};
use super::trunks::{TrunkLookup, TrunkRegistration, TrunkStatus};
use super::{
    CallEvent, CallStarter, EndpointHandle, IncomingCall, RegisterConfig, TrunkConfig, tcp,
};
use crate::cidr::Cidr;
use crate::metrics::{Counter, Registry};
use crate::registrar::{BindingChange, Registrar};
use crate::secret::Secret;
use crate::sip::digest::ClientCredentials;
use crate::sip::registration::RegisterSettings;
use crate::sip::transaction::Peer;
use crate::sip::uri::SipUri;
use crate::sip::{SipConfig, Transport};
use crate::time::sleep_until;

/// Datagrams read in one turn of the loop before its output is flushed.
const BATCH: usize = 64;
/// Inputs from calls and connections handled in one turn.
const INPUT_BATCH: usize = 256;

/// The agents reached by URI whose OPTIONS probes the engine sends besides the named
/// trunks', and where the peers' ups and downs go.
pub struct Probing {
    pub agents: Vec<ProbeTarget>,
    pub changes: mpsc::UnboundedSender<ReachChange>,
}

/// Agent phones' registrations: the sans-IO registrar and where its binding changes go.
pub struct Registrations {
    pub registrar: Registrar,
    pub changes: mpsc::UnboundedSender<BindingChange>,
}

pub(crate) enum Input {
    Command(Box<Command>),
    /// Route a Call-ID's messages to this channel (an outgoing leg of a call).
    Route {
        call_id: String,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    /// A connection the TCP or TLS listener accepted (TLS: before the handshake).
    Accepted {
        stream: TcpStream,
        addr: SocketAddr,
        transport: Transport,
    },
    /// A read on a connection that completed no message: a keep-alive, or part of one.
    Read {
        conn: u64,
        mid_message: bool,
    },
    /// One framed message from a TCP or TLS connection.
    Frame {
        conn: u64,
        addr: SocketAddr,
        transport: Transport,
        bytes: Bytes,
    },
    ConnClosed {
        conn: u64,
        end: ConnEnd,
    },
    /// Stop taking calls, hang up the ones left after `grace`; `done` hears when none is.
    Drain {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
    /// A probed peer looked up (`Event::LookUpPeer`).
    PeerLookup {
        id: PeerId,
        found: Result<ProbeAddress, String>,
    },
    /// A trunk's registrar looked up again (`Event::LookUpRegistrar`).
    RegistrarLookup {
        trunk: String,
        result: Box<Result<TrunkRegistration, String>>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("[trunks] allow: {0}")]
    Allow(#[from] super::CidrError),
    #[error("[sip] public_address {0:?} is not an IP address")]
    PublicAddress(String),
    #[error(transparent)]
    Tls(#[from] super::TlsError),
    #[error("[trunks.named.{trunk}.register] registrar {registrar:?}: {why}")]
    Registrar {
        trunk: String,
        registrar: String,
        why: String,
    },
}

/// A running endpoint.
pub struct Endpoint {
    handle: EndpointHandle,
    pub udp_addr: Option<SocketAddr>,
    pub tcp_addr: Option<SocketAddr>,
    pub tls_addr: Option<SocketAddr>,
    /// The registering trunks' status, as it last changed.
    pub trunks: watch::Receiver<Vec<TrunkStatus>>,
}

impl Endpoint {
    /// Binds the listeners and spawns the endpoint task on the current runtime.
    pub async fn start(
        sip: &SipConfig,
        trunks: &TrunkConfig,
        registry: &Arc<Registry>,
        starter: CallStarter,
        agent_registrations: Option<Registrations>,
        probing: Probing,
        descriptors: u64,
    ) -> Result<Endpoint, StartError> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<Cidr>, _>>()
        };
        let allow = parse(&trunks.allow)?;
        let named = trunks
            .named
            .iter()
            .map(|(name, t)| Ok((name.clone(), parse(&t.allow)?)))
            .collect::<Result<Vec<(String, Vec<Cidr>)>, super::CidrError>>()?;
        let public_ip = match sip.public_address.trim() {
            "" => None,
            s => Some(
                s.parse()
                    .map_err(|_| StartError::PublicAddress(s.to_owned()))?,
            ),
        };
        let bind_err = |transport, addr: &str| {
            let addr = addr.to_owned();
            move |source| StartError::Bind {
                transport,
                addr,
                source,
            }
        };
        let udp = match sip.udp.trim() {
            "" => None,
            a => Some(Arc::new(
                UdpSocket::bind(a).await.map_err(bind_err("UDP", a))?,
            )),
        };
        let tcp = match sip.tcp.trim() {
            "" => None,
            a => Some(tcp::listen(a).await.map_err(bind_err("TCP", a))?),
        };
        let tls = Tls::from_config(sip)?;
        let tls_listener = match (&tls.acceptor, sip.tls.trim()) {
            (None, _) => None,
            (Some(_), a) => Some(tcp::listen(a).await.map_err(bind_err("TLS", a))?),
        };
        let udp_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
        let tcp_addr = tcp.as_ref().and_then(|t| t.local_addr().ok());
        let tls_addr = tls_listener.as_ref().and_then(|t| t.local_addr().ok());
        let (tx, rx) = mpsc::unbounded_channel();
        let (peers_tx, peers_rx) = watch::channel(Vec::new());
        let mut handle = EndpointHandle {
            tx: tx.clone(),
            public_ip,
            udp_port: udp_addr.map_or(5060, |a| a.port()),
            tcp_port: tcp_addr.map_or(5060, |a| a.port()),
            tls_port: tls_addr.map_or(5061, |a| a.port()),
            credentials: Arc::default(),
            peers: peers_rx,
        };
        let registrations = trunk_registrations(trunks, &handle).await?;
        let resolved = || {
            registrations.iter().filter_map(|r| match r {
                TrunkLookup::Resolved(t) => Some(t.as_ref()),
                TrunkLookup::Unresolved { .. } => None,
            })
        };
        if tls_addr.is_none()
            && let Some(r) = resolved().find(|r| r.settings.transport == Transport::Tls)
        {
            warn!(
                trunk = %r.settings.trunk,
                "registering by TLS without a TLS listener: calls sent to the binding reach us only on the registration's own connection (set [sip] tls)"
            );
        }
        handle.credentials = Arc::new(RwLock::new(resolved().map(credentials_of).collect()));
        if let Some(listener) = tcp {
            tokio::spawn(tcp::accept_loop(listener, Transport::Tcp, tx.clone()));
        }
        if let Some(listener) = tls_listener {
            tokio::spawn(tcp::accept_loop(listener, Transport::Tls, tx.clone()));
        }
        let max_connections =
            tcp_connection_cap(sip.tcp_max_connections, descriptors, sip.max_calls);
        if max_connections < sip.tcp_max_connections {
            warn!(
                configured = sip.tcp_max_connections,
                allowed = max_connections,
                descriptors,
                max_calls = sip.max_calls,
                "[sip] tcp_max_connections lowered: the descriptor limit must keep room for every call's RTP sockets (raise `ulimit -n`)"
            );
        }
        let probes = if !trunks.qualify.enabled() {
            Vec::new()
        } else {
            trunks
                .named
                .iter()
                .filter(|(_, t)| t.qualify && !t.uri.is_empty())
                .map(|(name, t)| ProbeTarget {
                    name: name.clone(),
                    kind: PeerKind::Trunk,
                    uri: t.uri.clone(),
                })
                .chain(probing.agents.into_iter().filter(|_| trunks.qualify.agents))
                .collect()
        };
        let settings = Settings {
            registrations,
            qualify: trunks.qualify.settings(),
            probes,
            started: Instant::now(),
            timers: sip.timers(),
            max_transactions: sip.max_transactions,
            allow,
            named,
            server: sip.user_agent.clone(),
            admission: Admission::new(
                sip.max_calls,
                sip.max_cps,
                sip.adaptive_shedding,
                sip.fair_share,
            ),
            trunk_limits: TrunkLimits::new(trunks.named.iter().map(|(name, t)| {
                let limit = TrunkLimit {
                    max_calls: t.max_calls,
                    max_cps: t.max_cps,
                };
                (name.clone(), limit)
            })),
            tcp: TcpLimits {
                max_connections,
                max_per_source: sip.tcp_max_per_source,
                idle: Duration::from_secs(sip.tcp_idle_s),
                message_deadline: Duration::from_secs(sip.tcp_message_deadline_s),
            },
        };
        let (registrar, changes) = match agent_registrations {
            Some(r) => (Some(r.registrar), Some(r.changes)),
            None => (None, None),
        };
        let (trunks_tx, trunks_rx) = watch::channel(Vec::new());
        let lp = Loop {
            trunks: trunks_tx,
            peers: peers_tx,
            reach: probing.changes,
            core: Core::new(settings, registrar, registry),
            udp,
            conns: HashMap::new(),
            tls,
            closed: Vec::new(),
            calls: HashMap::new(),
            input: tx,
            starter,
            handle: handle.clone(),
            registers: trunks
                .named
                .iter()
                .filter_map(|(name, t)| Some((name.clone(), t.register.clone()?)))
                .collect(),
            changes,
            local_ips: HashMap::new(),
            media_late_ticks: crate::media::worker::late_ticks(registry),
            send_failed: registry.counter(
                "hotline_sip_dropped_total",
                "SIP datagrams or frames dropped without an answer",
                &[("reason", "send_failed")],
            ),
            drain_waiters: Vec::new(),
            drained: false,
        };
        info!(udp = ?udp_addr, tcp = ?tcp_addr, tls = ?tls_addr, "SIP listening");
        tokio::spawn(lp.run(rx));
        Ok(Endpoint {
            handle,
            udp_addr,
            tcp_addr,
            tls_addr,
            trunks: trunks_rx,
        })
    }

    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }
}

struct Loop {
    core: Core,
    udp: Option<Arc<UdpSocket>>,
    /// The TCP and TLS connections, by the core's name for them.
    conns: HashMap<u64, tcp::ConnHandle>,
    /// What TLS connections are wrapped with.
    tls: Tls,
    /// Connections that closed this turn.
    closed: Vec<u64>,
    /// The channel of each call the core routes, by Call-ID.
    calls: HashMap<String, mpsc::UnboundedSender<CallEvent>>,
    input: mpsc::UnboundedSender<Input>,
    starter: CallStarter,
    handle: EndpointHandle,
    /// The registering trunks' settings, for looking a registrar up again.
    registers: HashMap<String, RegisterConfig>,
    changes: Option<mpsc::UnboundedSender<BindingChange>>,
    local_ips: HashMap<IpAddr, IpAddr>,
    /// The media workers' count of late ticks: the core sheds calls when media runs late.
    media_late_ticks: Arc<Counter>,
    send_failed: Arc<Counter>,
    /// Who waits for the drain to finish, and whether it has.
    drain_waiters: Vec<oneshot::Sender<()>>,
    drained: bool,
    /// Where the trunks' status goes (the API reads it).
    trunks: watch::Sender<Vec<TrunkStatus>>,
    /// Where the probed peers' status goes (the API and dialling calls read it).
    peers: watch::Sender<Vec<PeerStatus>>,
    /// Where the peers' ups and downs go (the ACD and the event log).
    reach: mpsc::UnboundedSender<ReachChange>,
}

impl Loop {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self.core.poll_timeout();
            // One clock read per turn: what arrived, the timers and the flush share it.
            let now = tokio::select! {
                r = recv(&self.udp, &mut buf) => {
                    let now = Instant::now();
                    if let Ok((n, from)) = r {
                        self.core.handle_datagram(now, udp_peer(from), &buf[..n]);
                        // Drain what else is queued before flushing, to batch under load; a
                        // full batch means the socket holds more: the engine is behind.
                        let mut drained = 0;
                        while drained < BATCH {
                            let Some(Ok((n, from))) = self.udp.as_ref().map(|u| u.try_recv_from(&mut buf)) else { break };
                            self.core.handle_datagram(now, udp_peer(from), &buf[..n]);
                            drained += 1;
                        }
                        self.core.handle_backlog(now, drained == BATCH);
                    }
                    now
                }
                input = rx.recv() => {
                    let Some(input) = input else { break };
                    let now = Instant::now();
                    self.input(now, input);
                    for _ in 0..INPUT_BATCH {
                        let Ok(input) = rx.try_recv() else { break };
                        self.input(now, input);
                    }
                    now
                }
                _ = sleep_until(deadline) => Instant::now(),
            };
            self.core
                .handle_media_late_ticks(self.media_late_ticks.get());
            self.core.handle_timeout(now);
            self.flush(now).await;
        }
    }

    fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Command(c) => {
                if let Command::Unroute { call_id } = c.as_ref() {
                    self.calls.remove(call_id);
                }
                self.core.handle_command(now, *c);
            }
            Input::Route { call_id, events } => {
                self.calls.insert(call_id.clone(), events);
                self.core.handle_command(now, Command::Route { call_id });
            }
            Input::Accepted {
                stream,
                addr,
                transport,
            } => {
                // A refused connection is closed by dropping its stream.
                if let Ok(conn) = self.core.handle_accept(now, addr, transport) {
                    let tls = match transport {
                        Transport::Tls => self.tls.acceptor.clone(),
                        Transport::Tcp | Transport::Udp => None,
                    };
                    let handle = tcp::spawn(stream, addr, conn, self.input.clone(), tls);
                    self.conns.insert(conn, handle);
                }
            }
            Input::Read { conn, mid_message } => {
                self.core.handle_conn_read(now, conn, mid_message);
            }
            Input::Frame {
                conn,
                addr,
                transport,
                bytes,
            } => {
                let peer = Peer {
                    transport,
                    addr,
                    conn: Some(conn),
                };
                self.core.handle_datagram(now, peer, &bytes);
            }
            Input::PeerLookup { id, found } => self.core.handle_peer_lookup(now, id, found),
            Input::RegistrarLookup { trunk, result } => {
                let found = match &*result {
                    Ok(t) => Some((t.peer.addr, credentials_of(t))),
                    Err(_) => None,
                };
                if self.core.handle_registrar_lookup(now, &trunk, *result)
                    && let Some((registrar, credentials)) = found
                {
                    info!(%trunk, %registrar, "registering at the registrar's address");
                    let mut list = self
                        .handle
                        .credentials
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    // A registrar that moved is answered at its new address only.
                    list.retain(|(_, c)| *c != credentials.1);
                    list.push(credentials);
                }
            }
            Input::Drain { grace, done } => {
                if self.drained {
                    let _ = done.send(());
                } else {
                    self.drain_waiters.push(done);
                    self.core.handle_drain(now, grace);
                }
            }
            Input::ConnClosed { conn, end } => {
                // What the core already queued for it (the 400 to a broken frame) still
                // goes out: the write half is dropped after this turn's flush.
                self.closed.push(conn);
                self.core.handle_conn_closed(now, conn, end);
            }
        }
    }

    async fn flush(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = self.core.poll_transmit() {
                busy = true;
                self.transmit(t).await;
            }
            while let Some(ev) = self.core.poll_event() {
                busy = true;
                self.deliver(now, ev);
            }
            if !busy {
                break;
            }
        }
        for conn in self.closed.drain(..) {
            self.conns.remove(&conn);
        }
    }

    fn deliver(&mut self, now: Instant, event: Event) {
        match event {
            Event::NewCall(call) => {
                let (events_tx, events) = mpsc::unbounded_channel();
                self.calls.insert(call.call_id, events_tx);
                let local = self.local_addr(call.peer);
                (self.starter)(IncomingCall {
                    invite: call.invite,
                    tx: call.tx,
                    peer: call.peer,
                    local,
                    trunk: call.trunk,
                    events,
                    endpoint: self.handle.clone(),
                });
            }
            Event::Call { call_id, event } => {
                let undelivered = match self.calls.get(&call_id) {
                    Some(events) => events.send(event).err().map(|e| e.0),
                    None => Some(event),
                };
                if let Some(event) = undelivered {
                    self.calls.remove(&call_id);
                    self.core.handle_undelivered(now, &call_id, event);
                }
            }
            Event::Binding(change) => {
                if let Some(changes) = &self.changes {
                    let _ = changes.send(change);
                }
            }
            Event::CloseConn(conn) => {
                self.conns.remove(&conn);
            }
            Event::Trunks(statuses) => {
                self.trunks.send_replace(statuses);
            }
            Event::Peers(statuses) => {
                self.peers.send_replace(statuses);
            }
            Event::Reach(change) => {
                let _ = self.reach.send(change);
            }
            Event::LookUpPeer { id, uri } => {
                let (handle, input) = (self.handle.clone(), self.input.clone());
                tokio::spawn(async move {
                    let found =
                        match tokio::time::timeout(LOOKUP_TIMEOUT, probe_address(&uri, &handle))
                            .await
                        {
                            Ok(found) => found,
                            Err(_) => Err(format!(
                                "the name did not resolve in {} s",
                                LOOKUP_TIMEOUT.as_secs()
                            )),
                        };
                    let _ = input.send(Input::PeerLookup { id, found });
                });
            }
            Event::LookUpRegistrar(trunk) => {
                let Some(register) = self.registers.get(&trunk).cloned() else {
                    return;
                };
                let (handle, input) = (self.handle.clone(), self.input.clone());
                tokio::spawn(async move {
                    // A resolver that never answers must not stop the retries.
                    let lookup = resolve_trunk(&trunk, &register, &handle);
                    let result = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer in {} s", LOOKUP_TIMEOUT.as_secs())),
                    };
                    let result = Box::new(result);
                    let _ = input.send(Input::RegistrarLookup { trunk, result });
                });
            }
            Event::Drained => {
                self.drained = true;
                for done in self.drain_waiters.drain(..) {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn transmit(&mut self, t: Transmit) {
        match t.dest {
            Dest::Udp(addr) => {
                // A full socket buffer is waited out rather than dropping a SIP message.
                let sent = match &self.udp {
                    Some(udp) => udp.send_to(&t.bytes, addr).await.is_ok(),
                    None => false,
                };
                if !sent {
                    self.send_failed.inc();
                }
            }
            Dest::Conn(conn) => {
                if let Some(c) = self.conns.get(&conn) {
                    let _ = c.writes.send(t.bytes);
                }
            }
            Dest::Connect {
                conn,
                addr,
                transport,
                tls_name,
            } => {
                let tls = (transport == Transport::Tls).then(|| {
                    let name = tls::server_name(tls_name.as_deref(), addr);
                    (self.tls.connector.clone(), name)
                });
                let handle = tcp::connect(addr, conn, self.input.clone(), t.bytes, tls);
                self.conns.insert(conn, handle);
            }
        }
    }

    /// As `EndpointHandle::local_addr`, with the kernel's route per peer address looked up
    /// once: trunks are few, and each lookup costs a socket.
    fn local_addr(&mut self, peer: Peer) -> SocketAddr {
        let ip = match self.handle.public_ip {
            Some(ip) => ip,
            None => *self
                .local_ips
                .entry(peer.addr.ip())
                .or_insert_with(|| route_to(peer.addr)),
        };
        SocketAddr::new(ip, self.handle.port(peer.transport))
    }
}

fn udp_peer(addr: SocketAddr) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr,
        conn: None,
    }
}

async fn recv(
    udp: &Option<Arc<UdpSocket>>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(u) => u.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The trunks that register, each with its registrar's address and our Contact as that
/// registrar reaches us; a registrar whose name does not resolve now is looked up again
/// later (the engine starts without waiting for DNS), but one that is not a SIP URI stops
/// the start.
async fn trunk_registrations(
    trunks: &TrunkConfig,
    handle: &EndpointHandle,
) -> Result<Vec<TrunkLookup>, StartError> {
    let mut out = Vec::new();
    for (name, trunk) in &trunks.named {
        let Some(r) = &trunk.register else {
            continue;
        };
        out.push(match resolve_trunk(name, r, handle).await {
            Ok(t) => TrunkLookup::Resolved(Box::new(t)),
            Err(e @ LookupError::NotSip) => {
                return Err(StartError::Registrar {
                    trunk: name.clone(),
                    registrar: r.registrar.clone(),
                    why: e.to_string(),
                });
            }
            Err(e) => TrunkLookup::Unresolved {
                trunk: name.clone(),
                why: e.to_string(),
            },
        });
    }
    Ok(out)
}

/// How long a registrar's name may take to resolve, after the start, before the lookup
/// counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a trunk's registrar has no address.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("not a SIP URI")]
    NotSip,
    #[error("{0}")]
    Lookup(std::io::Error),
    #[error("the name resolves to no address")]
    NoAddress,
}

/// One trunk's registration: its registrar's address, looked up now, and our Contact as
/// that registrar reaches us.
async fn resolve_trunk(
    name: &str,
    r: &RegisterConfig,
    handle: &EndpointHandle,
) -> Result<TrunkRegistration, LookupError> {
    let uri = r.registrar_uri().ok_or(LookupError::NotSip)?;
    let transport = r.transport();
    let port = uri.port.unwrap_or(transport.default_port());
    let addr = tokio::net::lookup_host((uri.host, port))
        .await
        .map_err(LookupError::Lookup)?
        .next()
        .ok_or(LookupError::NoAddress)?;
    let peer = Peer {
        transport,
        addr,
        conn: None,
    };
    let local_ip = handle.public_ip.unwrap_or_else(|| route_to(addr));
    let sent_by = crate::sip::uri::host_port(SocketAddr::new(local_ip, handle.port(transport)));
    let token = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let transport_param = transport.uri_param();
    let domain = if r.domain.is_empty() {
        uri.host
    } else {
        r.domain.as_str()
    };
    let user = crate::sip::uri::percent_encode(&r.user);
    Ok(TrunkRegistration {
        settings: RegisterSettings {
            trunk: name.to_owned(),
            registrar: r.registrar.trim_matches(['<', '>']).to_owned(),
            aor: format!("sip:{user}@{domain}"),
            contact: format!("sip:{user}@{sent_by};line={token}{transport_param}"),
            auth_user: r.auth_user().to_owned(),
            password: r.password.clone().unwrap_or_else(|| Secret::new("")),
            realm: r.realm.clone(),
            expires: u32::try_from(r.expires_s).unwrap_or(u32::MAX),
            transport,
            sent_by,
        },
        peer,
        token,
    })
}

/// Where a probed peer's URI points now, and our Via sent-by as it reaches us.
async fn probe_address(uri: &str, handle: &EndpointHandle) -> Result<ProbeAddress, String> {
    let parsed = SipUri::parse(uri).ok_or_else(|| format!("{uri:?} is not a SIP URI"))?;
    let (peer, local) = handle
        .locate(&parsed)
        .await
        .map_err(|e| format!("{} does not resolve: {e}", parsed.host))?;
    let sent_by = crate::sip::uri::host_port(local);
    Ok(ProbeAddress { peer, sent_by })
}

/// What answers a registering trunk's challenges, by its registrar's address.
fn credentials_of(t: &TrunkRegistration) -> (IpAddr, ClientCredentials) {
    let s = &t.settings;
    let credentials = ClientCredentials {
        username: s.auth_user.clone(),
        password: s.password.clone(),
        realm: s.realm.clone(),
    };
    (t.peer.addr.ip(), credentials)
}

/// The local IP the kernel would send from to reach `peer` (no packet is sent).
pub(super) fn route_to(peer: SocketAddr) -> IpAddr {
    let unspecified: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(unspecified)
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified.ip())
}
