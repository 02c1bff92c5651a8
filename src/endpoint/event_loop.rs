//! The endpoint task: reads UDP datagrams and framed TCP messages, parses them, feeds the
//! transaction layer with them and with time, sends what it transmits, and hands its events
//! to call tasks by Call-ID, or answers them itself (policy). It is the only owner of the
//! transaction layer and of the Call-ID routing table.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use bytes::Bytes;
use rsip::{Header, Method, Request, SipMessage};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::admission::Admission;
use super::{CallEvent, CallStarter, Command, EndpointHandle, IncomingCall, TrunkConfig, tcp};
use crate::cidr::Cidr;
use crate::metrics::{Counter, Gauge, Registry};
use crate::registrar::{AuthCounters, BindingChange, Held, Registrar, Verdict};
use crate::sip::parse::{self, ParseError};
use crate::sip::policy::{self, Decision};
use crate::sip::transaction::{ClientTxId, Peer, ServerTxId, Transactions, Transmit, TxEvent};
use crate::sip::{SipConfig, Transport, build, headers};
use crate::time::sleep_until;

/// Datagrams read in one turn of the loop before its output is flushed.
const BATCH: usize = 64;

/// Agent phones' registrations: the sans-IO registrar and where its binding changes go.
pub struct Registrations {
    pub registrar: Registrar,
    pub changes: mpsc::UnboundedSender<BindingChange>,
}

/// The registrar's answers by verdict, and its lockouts, as counters.
struct RegistrarMetrics {
    counters: Vec<Arc<Counter>>,
    reported: AuthCounters,
    /// Lockouts of a user and of a source address.
    lockouts: [Arc<Counter>; 2],
}

impl RegistrarMetrics {
    const VERDICTS: [&'static str; 9] = [
        "challenged",
        "registered",
        "stale",
        "wrong_credentials",
        "unknown_user",
        "replay",
        "bad_request",
        "held",
        "source_not_allowed",
    ];

    fn new(registry: &Registry) -> RegistrarMetrics {
        RegistrarMetrics {
            counters: Self::VERDICTS
                .iter()
                .map(|v| {
                    registry.counter(
                        "hotline_registrar_answers_total",
                        "REGISTER requests answered, by verdict",
                        &[("verdict", v)],
                    )
                })
                .collect(),
            reported: AuthCounters::default(),
            lockouts: ["user", "source"].map(|by| {
                registry.counter(
                    "hotline_registrar_lockouts_total",
                    "Users and source addresses locked out after max_failures wrong passwords",
                    &[("by", by)],
                )
            }),
        }
    }

    fn lockout(&self, held: Held) {
        let i = match held {
            Held::User => 0,
            Held::Source => 1,
        };
        self.lockouts[i].inc();
    }

    fn update(&mut self, now: &AuthCounters) {
        let pairs = |c: &AuthCounters| {
            [
                c.challenges,
                c.registered,
                c.stale,
                c.wrong_credentials,
                c.unknown_users,
                c.replays,
                c.bad_requests,
                c.held,
                c.not_allowed,
            ]
        };
        for ((counter, new), old) in self
            .counters
            .iter()
            .zip(pairs(now))
            .zip(pairs(&self.reported))
        {
            counter.add(new - old);
        }
        self.reported = now.clone();
    }
}

pub(crate) enum Input {
    Command(Box<Command>),
    /// One framed TCP message.
    Frame {
        conn: u64,
        addr: SocketAddr,
        bytes: Bytes,
    },
    ConnOpened {
        conn: u64,
        addr: SocketAddr,
        tx: mpsc::UnboundedSender<Bytes>,
    },
    ConnClosed {
        conn: u64,
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
}

/// A running endpoint.
pub struct Endpoint {
    handle: EndpointHandle,
    pub udp_addr: Option<SocketAddr>,
    pub tcp_addr: Option<SocketAddr>,
}

impl Endpoint {
    /// Binds the listeners and spawns the endpoint task on the current runtime.
    pub async fn start(
        sip: &SipConfig,
        trunks: &TrunkConfig,
        registry: &Arc<Registry>,
        starter: CallStarter,
        registrations: Option<Registrations>,
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
            a => Some(TcpListener::bind(a).await.map_err(bind_err("TCP", a))?),
        };
        let udp_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
        let tcp_addr = tcp.as_ref().and_then(|t| t.local_addr().ok());
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = EndpointHandle {
            tx: tx.clone(),
            public_ip,
            udp_port: udp_addr.map_or(5060, |a| a.port()),
            tcp_port: tcp_addr.map_or(5060, |a| a.port()),
        };
        let conn_ids = Arc::new(AtomicU64::new(1));
        if let Some(listener) = tcp {
            tokio::spawn(tcp::accept_loop(listener, tx.clone(), conn_ids.clone()));
        }
        let lp = Loop {
            core: Transactions::with_limit(sip.timers(), sip.max_transactions),
            udp,
            conns: HashMap::new(),
            conn_ids,
            input: tx,
            routes: HashMap::new(),
            pending: HashMap::new(),
            allow,
            named,
            starter,
            handle: handle.clone(),
            server: sip.user_agent.clone(),
            admission: Admission::new(
                sip.max_calls,
                sip.max_cps,
                sip.adaptive_shedding,
                sip.fair_share,
            ),
            registrations,
            registrar_metrics: RegistrarMetrics::new(registry),
            local_ips: HashMap::new(),
            metrics: Metrics::new(registry),
        };
        info!(udp = ?udp_addr, tcp = ?tcp_addr, "SIP listening");
        tokio::spawn(lp.run(rx));
        Ok(Endpoint {
            handle,
            udp_addr,
            tcp_addr,
        })
    }

    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }
}

struct Metrics {
    registry: Arc<Registry>,
    received: Arc<Counter>,
    dropped: HashMap<&'static str, Arc<Counter>>,
    shed: HashMap<&'static str, Arc<Counter>>,
    rejected: Arc<Counter>,
    responses: HashMap<u16, Arc<Counter>>,
    retransmissions: Arc<Counter>,
    calls: Arc<Gauge>,
    /// The media workers' count (same series): read to shed calls when media runs late.
    media_late_ticks: Arc<Counter>,
    transactions: Arc<Gauge>,
    reported_retransmissions: u64,
    /// Requests refused at `max_transactions`.
    refused_full: Arc<Counter>,
    reported_refused_full: u64,
}

impl Metrics {
    fn new(registry: &Arc<Registry>) -> Metrics {
        Metrics {
            registry: registry.clone(),
            received: registry.counter(
                "hotline_sip_messages_received_total",
                "SIP messages received",
                &[],
            ),
            dropped: HashMap::new(),
            shed: HashMap::new(),
            rejected: registry.counter(
                "hotline_sip_malformed_rejected_total",
                "Malformed requests answered with an error before reaching a transaction",
                &[],
            ),
            responses: HashMap::new(),
            retransmissions: registry.counter(
                "hotline_sip_retransmissions_total",
                "SIP messages we sent again (lost or late peers)",
                &[],
            ),
            calls: registry.gauge("hotline_calls", "Calls in progress", &[]),
            media_late_ticks: crate::media::worker::late_ticks(registry),
            transactions: registry.gauge("hotline_sip_transactions", "Live SIP transactions", &[]),
            reported_retransmissions: 0,
            refused_full: registry.counter(
                "hotline_sip_refused_full_total",
                "New requests answered 503 without a transaction: max_transactions were live",
                &[],
            ),
            reported_refused_full: 0,
        }
    }

    fn shed(&mut self, reason: &'static str) {
        self.shed
            .entry(reason)
            .or_insert_with(|| {
                self.registry.counter(
                    "hotline_calls_shed_total",
                    "New calls refused with 503 to protect the calls in progress",
                    &[("reason", reason)],
                )
            })
            .inc();
    }

    fn dropped(&mut self, reason: &'static str) {
        self.dropped
            .entry(reason)
            .or_insert_with(|| {
                self.registry.counter(
                    "hotline_sip_dropped_total",
                    "SIP datagrams or frames dropped without an answer",
                    &[("reason", reason)],
                )
            })
            .inc();
    }

    fn response(&mut self, bytes: &[u8]) {
        let Some(code) = bytes
            .strip_prefix(b"SIP/2.0 ")
            .and_then(|r| std::str::from_utf8(r.get(..3)?).ok())
            .and_then(|c| c.parse::<u16>().ok())
        else {
            return;
        };
        self.responses
            .entry(code)
            .or_insert_with(|| {
                self.registry.counter(
                    "hotline_sip_responses_total",
                    "SIP responses sent",
                    &[("code", &code.to_string())],
                )
            })
            .inc();
    }
}

struct Route {
    events: mpsc::UnboundedSender<CallEvent>,
    /// For a call that came in: the source it was admitted from.
    incoming: Option<IpAddr>,
}

struct Loop {
    core: Transactions,
    udp: Option<Arc<UdpSocket>>,
    conns: HashMap<u64, (SocketAddr, mpsc::UnboundedSender<Bytes>)>,
    conn_ids: Arc<AtomicU64>,
    input: mpsc::UnboundedSender<Input>,
    routes: HashMap<String, Route>,
    /// Client transactions of calls, so a timeout reaches the call that sent the request.
    pending: HashMap<ClientTxId, (String, u32, Method)>,
    allow: Vec<Cidr>,
    named: Vec<(String, Vec<Cidr>)>,
    starter: CallStarter,
    handle: EndpointHandle,
    server: String,
    admission: Admission,
    registrations: Option<Registrations>,
    registrar_metrics: RegistrarMetrics,
    local_ips: HashMap<IpAddr, IpAddr>,
    metrics: Metrics,
}

impl Loop {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self.next_timeout();
            tokio::select! {
                r = recv(&self.udp, &mut buf) => {
                    if let Ok((n, from)) = r {
                        self.datagram(&buf[..n], from);
                        // Drain what else is queued before flushing, to batch under load; a
                        // full batch means the socket holds more: the engine is behind.
                        let mut drained = 0;
                        while drained < BATCH {
                            let Some(Ok((n, from))) = self.udp.as_ref().map(|u| u.try_recv_from(&mut buf)) else { break };
                            self.datagram(&buf[..n], from);
                            drained += 1;
                        }
                        self.admission.input(Instant::now(), drained == BATCH);
                    }
                }
                input = rx.recv() => {
                    let Some(input) = input else { break };
                    self.input(input);
                    for _ in 0..256 {
                        let Ok(input) = rx.try_recv() else { break };
                        self.input(input);
                    }
                }
                _ = sleep_until(deadline) => {}
            }
            let now = Instant::now();
            if self.core.next_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
            if let Some(r) = self.registrations.as_mut()
                && r.registrar.next_timeout().is_some_and(|t| t <= now)
            {
                r.registrar.handle_timeout(now);
                r.forward_changes();
            }
            self.flush().await;
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        let registrar = self
            .registrations
            .as_ref()
            .and_then(|r| r.registrar.next_timeout());
        match (self.core.next_timeout(), registrar) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn allow(&self) -> &'static str {
        if self.registrations.is_some() {
            crate::sip::ALLOW_WITH_REGISTER
        } else {
            crate::sip::ALLOW
        }
    }

    fn datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let peer = Peer {
            transport: Transport::Udp,
            addr: from,
            conn: None,
        };
        self.message(bytes, peer);
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Command(c) => self.command(*c),
            Input::Frame { conn, addr, bytes } => {
                let peer = Peer {
                    transport: Transport::Tcp,
                    addr,
                    conn: Some(conn),
                };
                self.message(&bytes, peer);
            }
            Input::ConnOpened { conn, addr, tx } => {
                self.conns.insert(conn, (addr, tx));
            }
            Input::ConnClosed { conn } => {
                self.conns.remove(&conn);
            }
        }
    }

    fn message(&mut self, bytes: &[u8], peer: Peer) {
        self.metrics.received.inc();
        match parse::parse(bytes, peer.transport) {
            Ok(msg) => self.core.handle_message(Instant::now(), peer, msg),
            Err(ParseError::Drop(reason)) => {
                if reason != parse::DropReason::KeepAlive {
                    debug!(%peer.addr, reason = reason.as_str(), "dropped a SIP message");
                }
                self.metrics.dropped(reason.as_str());
            }
            Err(ParseError::Reject(r)) => {
                debug!(%peer.addr, status = r.status, detail = %r.detail, "rejected a malformed request");
                self.metrics.rejected.inc();
                let bytes = build::reject(&r, &self.server, self.allow());
                self.transmit(Transmit { peer, bytes });
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Respond { tx, response } => {
                let _ = self.core.respond(now, tx, self.stamp(response));
            }
            Command::Send { peer, request } => {
                let route = headers::call_id(&request.headers)
                    .zip(headers::cseq(&request.headers))
                    .map(|(id, (seq, m))| (id.to_owned(), seq, m));
                let tx = self.core.send_request(now, peer, request);
                if let Some(route) = route {
                    self.pending.insert(tx, route);
                }
            }
            Command::SendStateless { peer, request } => {
                self.core
                    .send_stateless(peer, &SipMessage::Request(request));
            }
            Command::Route { call_id, events } => {
                self.routes.insert(
                    call_id,
                    Route {
                        events,
                        incoming: None,
                    },
                );
            }
            Command::Unroute { call_id } => {
                if let Some(source) = self.routes.remove(&call_id).and_then(|r| r.incoming) {
                    self.admission.ended(source);
                    self.metrics.calls.set(self.admission.calls() as i64);
                }
            }
        }
    }

    /// Adds our Server header to responses the calls build.
    fn stamp(&self, mut response: rsip::Response) -> rsip::Response {
        response
            .headers
            .push(Header::Server(self.server.clone().into()));
        response
    }

    async fn flush(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.core.poll_transmit() {
                busy = true;
                self.transmit_async(t).await;
            }
            while let Some(ev) = self.core.poll_event() {
                busy = true;
                self.dispatch(ev);
            }
            if !busy {
                break;
            }
        }
        let retransmissions = self.core.counts().retransmissions_sent;
        self.metrics
            .retransmissions
            .add(retransmissions - self.metrics.reported_retransmissions);
        self.metrics.reported_retransmissions = retransmissions;
        let refused = self.core.counts().refused_full;
        self.metrics
            .refused_full
            .add(refused - self.metrics.reported_refused_full);
        self.metrics.reported_refused_full = refused;
        let (server, client) = self.core.len();
        self.metrics.transactions.set((server + client) as i64);
    }

    fn dispatch(&mut self, ev: TxEvent) {
        match ev {
            TxEvent::Request { tx, request, peer } => self.request(tx, request, peer),
            TxEvent::Cancel {
                tx,
                invite,
                request,
                peer: _,
            } => {
                let Some(invite) = invite else {
                    return self.respond(tx, &request, 481, Vec::new());
                };
                self.respond(tx, &request, 200, Vec::new());
                if self.core.is_proceeding(invite) {
                    let routed = headers::call_id(&request.headers)
                        .and_then(|id| self.routes.get(id))
                        .is_some_and(|r| r.events.send(CallEvent::Cancelled).is_ok());
                    if !routed {
                        let terminated = build::response(&request, 487, Some(&build::new_tag()));
                        let _ = self
                            .core
                            .respond(Instant::now(), invite, self.stamp(terminated));
                    }
                }
            }
            TxEvent::Ack { request, .. } => {
                match headers::call_id(&request.headers).and_then(|id| self.routes.get(id)) {
                    Some(r) => {
                        let _ = r.events.send(CallEvent::Ack { request });
                    }
                    // An ACK of no call of ours (a late copy, or another call's ACK with
                    // a reused branch): nothing answers an ACK, so it is counted.
                    None => self.metrics.dropped("stray_ack"),
                }
            }
            TxEvent::Response { tx, response } => {
                if response.status_code.code() >= 200 {
                    self.pending.remove(&tx);
                }
                if let Some(r) =
                    headers::call_id(&response.headers).and_then(|id| self.routes.get(id))
                {
                    let _ = r.events.send(CallEvent::Response { response });
                }
            }
            TxEvent::Timeout { tx } => {
                if let Some((call_id, cseq, method)) = self.pending.remove(&tx)
                    && let Some(r) = self.routes.get(&call_id)
                {
                    let _ = r.events.send(CallEvent::Timeout {
                        call_id,
                        cseq,
                        method,
                    });
                }
            }
            TxEvent::AckTimeout { call_id, .. } => {
                if let Some(r) = self.routes.get(&call_id) {
                    let _ = r.events.send(CallEvent::AckTimeout);
                }
            }
        }
    }

    fn request(&mut self, tx: ServerTxId, request: Request, peer: Peer) {
        let call_id = headers::call_id(&request.headers)
            .unwrap_or_default()
            .to_owned();
        let ip = peer.addr.ip();
        let trunk = self
            .named
            .iter()
            .find(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
            .map(|(name, _)| name.clone());
        let ctx = policy::Context {
            trusted_source: trunk.is_some() || self.allow.iter().any(|c| c.contains(ip)),
            known_dialog: self.routes.contains_key(&call_id),
            registrar: self.registrations.is_some(),
            allow: self.allow(),
        };
        match policy::screen(&request, ctx) {
            Decision::Dialog => {
                let event = CallEvent::Request { tx, request, peer };
                if let Some(r) = self.routes.get(&call_id)
                    && let Err(mpsc::error::SendError(CallEvent::Request { request, .. })) =
                        r.events.send(event)
                {
                    // The call ended between our lookup and its unroute.
                    self.routes.remove(&call_id);
                    self.respond(tx, &request, 481, Vec::new());
                }
            }
            Decision::Respond(code, extra) => self.respond(tx, &request, code, extra),
            Decision::Register => self.register(tx, &request, peer),
            Decision::NewCall => {
                let now = Instant::now();
                self.admission
                    .media_late_ticks(now, self.metrics.media_late_ticks.get());
                if let Err(refusal) = self.admission.admit(now, peer.addr.ip()) {
                    debug!(
                        calls = self.admission.calls(),
                        source = %peer.addr.ip(),
                        reason = refusal.as_str(),
                        "refusing a call with 503"
                    );
                    self.metrics.shed(refusal.as_str());
                    return self.respond(tx, &request, 503, vec![("Retry-After", "2".into())]);
                }
                let (events_tx, events) = mpsc::unbounded_channel();
                self.routes.insert(
                    call_id,
                    Route {
                        events: events_tx,
                        incoming: Some(peer.addr.ip()),
                    },
                );
                self.metrics.calls.set(self.admission.calls() as i64);
                let local = self.local_addr(peer);
                (self.starter)(IncomingCall {
                    invite: request,
                    tx,
                    peer,
                    local,
                    trunk,
                    events,
                    endpoint: self.handle.clone(),
                });
            }
        }
    }

    fn register(&mut self, tx: ServerTxId, request: &Request, peer: Peer) {
        let Some(r) = self.registrations.as_mut() else {
            return self.respond(tx, request, 403, Vec::new());
        };
        let reply = r
            .registrar
            .handle_request(Instant::now(), peer.addr.ip(), request);
        match &reply.verdict {
            Verdict::Registered { user, algorithm } => {
                debug!(%user, %peer.addr, algorithm = %algorithm.name(), "registered");
            }
            Verdict::Challenged => {}
            other => info!(verdict = ?other, %peer.addr, "REGISTER refused"),
        }
        r.forward_changes();
        while let Some(lockout) = r.registrar.poll_lockout() {
            let by = match lockout.held {
                Held::User => "user",
                Held::Source => "source",
            };
            let for_s = lockout
                .until
                .saturating_duration_since(Instant::now())
                .as_secs();
            warn!(by, who = %lockout.who, failures = lockout.failures, for_s,
                "registration locked out after wrong passwords");
            self.registrar_metrics.lockout(lockout.held);
        }
        self.registrar_metrics.update(r.registrar.counters());
        let mut response = build::response(request, reply.status.code(), Some(&build::new_tag()));
        response.headers.extend(reply.headers);
        let _ = self.core.respond(Instant::now(), tx, self.stamp(response));
    }

    fn respond(
        &mut self,
        tx: ServerTxId,
        request: &Request,
        code: u16,
        extra: Vec<(&'static str, String)>,
    ) {
        let mut response = build::response(request, code, Some(&build::new_tag()));
        for (name, value) in extra {
            response.headers.push(Header::Other(name.into(), value));
        }
        let _ = self.core.respond(Instant::now(), tx, self.stamp(response));
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

    fn transmit(&mut self, t: Transmit) {
        self.metrics.response(&t.bytes);
        match t.peer.transport {
            Transport::Udp => {
                if let Some(udp) = &self.udp
                    && udp.try_send_to(&t.bytes, t.peer.addr).is_err()
                {
                    self.metrics.dropped("send_failed");
                }
            }
            Transport::Tcp => self.transmit_tcp(t),
        }
    }

    async fn transmit_async(&mut self, t: Transmit) {
        if t.peer.transport == Transport::Udp
            && let Some(udp) = self.udp.clone()
        {
            self.metrics.response(&t.bytes);
            // A full socket buffer is waited out rather than dropping a SIP message.
            if udp.send_to(&t.bytes, t.peer.addr).await.is_err() {
                self.metrics.dropped("send_failed");
            }
            return;
        }
        self.transmit(t);
    }

    fn transmit_tcp(&mut self, t: Transmit) {
        let by_id = t.peer.conn.and_then(|c| self.conns.get(&c));
        let by_addr = || self.conns.values().find(|(a, _)| *a == t.peer.addr);
        match by_id.or_else(by_addr) {
            Some((_, tx)) => {
                let _ = tx.send(t.bytes);
            }
            None => {
                let id = self
                    .conn_ids
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tcp::connect(t.peer.addr, id, self.input.clone(), t.bytes);
            }
        }
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

impl Registrations {
    fn forward_changes(&mut self) {
        while let Some(change) = self.registrar.poll_change() {
            let _ = self.changes.send(change);
        }
    }
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
