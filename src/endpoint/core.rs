//! The endpoint core, sans-IO: everything the SIP endpoint decides. It owns the transaction
//! layer, the registrar, admission of new calls, the Call-ID routes to calls, the client
//! transactions calls are waiting on, and the table of TCP connections (which one a message
//! goes out on). It takes received bytes, commands from calls and `now`; it gives back
//! bytes to send with where to send them (`poll_transmit`), events for calls and for the
//! engine (`poll_event`) and the instant it must next be woken (`poll_timeout`).
//!
//! It never reads a clock, touches a socket or holds a channel: the tokio loop in
//! `event_loop` owns the sockets, the connections' tasks and the calls' channels, reads the
//! clock once per turn and moves bytes and events. Timers that fire late fire at the
//! instant `handle_timeout` is given, each in deadline order.

#![warn(unreachable_pub, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::{Header, Method, Request, SipMessage};
use tracing::{debug, info, warn};

use super::CallEvent;
use super::admission::Admission;
use super::conns::{ConnRefusal, Conns, TcpLimits};
use super::metrics::{Metrics, RegistrarMetrics};
use super::outgoing::Outgoing;
use super::qualify::{
    PeerId, PeerStatus, ProbeAddress, ProbeTarget, Qualify, QualifySettings, ReachChange,
};
use super::trunk_limits::TrunkLimits;
use super::trunks::{TrunkLookup, TrunkRegistration, TrunkStatus, Trunks};
use crate::cidr::Cidr;
use crate::metrics::Registry;
use crate::registrar::{BindingChange, Held, Registrar, Verdict};
use crate::sip::parse::{self, ParseError};
use crate::sip::policy::{self, Decision};
use crate::sip::registration::RegState;
use crate::sip::transaction::{ClientTxId, Peer, ServerTxId, Transactions, TxEvent};
use crate::sip::{Timers, Transport, build, headers};

/// What the core needs to know from the configuration.
pub struct Settings {
    /// RFC 3261 T1, T2 and T4.
    pub timers: Timers,
    /// Live server transactions beyond which new requests get a stateless 503.
    pub max_transactions: usize,
    /// Sources allowed to send requests other than REGISTER.
    pub allow: Vec<Cidr>,
    /// Named trunks and their source networks (also allowed).
    pub named: Vec<(String, Vec<Cidr>)>,
    /// Our Server header value.
    pub server: String,
    /// Whether a new call may come in (`max_calls`, `max_cps`, overload, fair share).
    pub admission: Admission,
    /// Limits of named trunks on their calls and call rate.
    pub trunk_limits: TrunkLimits,
    /// Caps and deadlines of TCP connections.
    pub tcp: TcpLimits,
    /// The trunks to register with (those whose registrar's name did not resolve wait for
    /// `handle_registrar_lookup`), and when the first REGISTERs go.
    pub registrations: Vec<TrunkLookup>,
    /// How peers are probed with OPTIONS.
    pub qualify: QualifySettings,
    /// The trunks and agents probed (none when `[trunks.qualify] interval_s = 0`).
    pub probes: Vec<ProbeTarget>,
    /// The instant the core starts at.
    pub started: Instant,
}

/// Where the edge sends bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A datagram from our UDP socket.
    Udp(SocketAddr),
    /// An open (or opening) TCP or TLS connection.
    Conn(u64),
    /// No connection to `addr` exists: open one, named `conn`, and send on it.
    Connect {
        /// The name the connection's later messages and events use.
        conn: u64,
        /// Where to connect.
        addr: SocketAddr,
        /// TCP, or TLS over it.
        transport: Transport,
        /// For TLS: the name the server's certificate must carry (`None`: its IP address).
        tls_name: Option<String>,
    },
}

/// Bytes for the edge to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub dest: Dest,
    /// One whole SIP message.
    pub bytes: Bytes,
}

/// A new INVITE the core admitted: the edge starts a call for it.
#[derive(Debug)]
pub struct NewCall {
    /// What the call's messages are routed by.
    pub call_id: String,
    /// The INVITE as received.
    pub invite: Request,
    /// Its server transaction, which the call's responses answer in.
    pub tx: ServerTxId,
    /// Where it came from (and the TCP connection it came on).
    pub peer: Peer,
    /// The named trunk whose networks hold the source.
    pub trunk: Option<String>,
}

/// What the core tells the engine.
#[derive(Debug)]
pub enum Event {
    /// Start a call; its route exists from now on, and `Call` events may follow for it.
    NewCall(NewCall),
    /// For the call that routes `call_id`. If it is gone, give the event back with
    /// `handle_undelivered`.
    Call {
        /// The call's (or its far leg's) Call-ID.
        call_id: String,
        /// What happened.
        event: CallEvent,
    },
    /// An agent phone's registration changed.
    Binding(BindingChange),
    /// Close this TCP connection (it sat idle, or dripped a message too slowly).
    CloseConn(u64),
    /// Draining, no call is left and no request of a call awaits its answer: the engine
    /// may stop. Emitted once.
    Drained,
    /// A registering trunk's state changed: every trunk's status.
    Trunks(Vec<TrunkStatus>),
    /// Look this trunk's registrar's name up again and answer with
    /// `handle_registrar_lookup` (it did not resolve before).
    LookUpRegistrar(String),
    /// Look up where a probed peer's URI points, for its next OPTIONS, and answer with
    /// `handle_peer_lookup`.
    LookUpPeer {
        /// Which peer.
        id: PeerId,
        /// Its URI.
        uri: String,
    },
    /// A probed peer's state changed: every peer's status.
    Peers(Vec<PeerStatus>),
    /// A probed peer went up or down.
    Reach(ReachChange),
}

/// Commands from calls.
#[derive(Debug)]
pub enum Command {
    /// Answer a request the call received.
    Respond {
        /// The transaction the request came in.
        tx: ServerTxId,
        /// The answer.
        response: rsip::Response,
    },
    /// Send a request in a client transaction.
    Send {
        /// Where to.
        peer: Peer,
        /// The request, with its Via branch.
        request: Request,
    },
    /// Send a request outside any transaction (the ACK for a 2xx).
    SendStateless {
        /// Where to.
        peer: Peer,
        /// The request.
        request: Request,
    },
    /// Route messages with this Call-ID to a call (an outgoing leg).
    Route {
        /// The leg's Call-ID.
        call_id: String,
    },
    /// Stop routing a Call-ID (the call or leg ended).
    Unroute {
        /// The Call-ID no call needs any more.
        call_id: String,
    },
}

/// How a TCP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEnd {
    /// Closed by either side after it was open.
    Closed,
    /// Our connect to the peer failed: nothing we sent on it was delivered.
    ConnectFailed,
}

struct Route {
    /// For a call that came in: the source it was admitted from.
    incoming: Option<IpAddr>,
    /// The named trunk it came in on.
    trunk: Option<String>,
    /// The client transactions the call sent, so its end finds them without a scan.
    sent: Vec<ClientTxId>,
}

/// Shutting down: no new calls; the calls in progress are told to end at `hang_up_at`.
struct Drain {
    hang_up_at: Option<Instant>,
    drained: bool,
}

/// The SIP endpoint, sans IO (see the module doc).
pub struct Core {
    tx: Transactions,
    routes: HashMap<String, Route>,
    /// Client transactions of calls, so a timeout reaches the call that sent the request.
    pending: HashMap<ClientTxId, (String, u32, Method)>,
    /// Open or opening TCP connections.
    conns: Conns,
    allow: Vec<Cidr>,
    named: Vec<(String, Vec<Cidr>)>,
    /// Our User-Agent and the names TLS servers must prove.
    outgoing: Outgoing,
    admission: Admission,
    trunk_limits: TrunkLimits,
    /// The media workers' running count of late ticks, as last told.
    media_late_ticks: u64,
    registrar: Option<Registrar>,
    trunks: Trunks,
    qualify: Qualify,
    drain: Option<Drain>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    metrics: Metrics,
    registrar_metrics: RegistrarMetrics,
}

impl Core {
    /// A core with its settings, the registrar when agent phones register, and the
    /// registry its gauges and counters go to.
    pub fn new(settings: Settings, registrar: Option<Registrar>, registry: &Arc<Registry>) -> Core {
        Core {
            tx: Transactions::with_limit(settings.timers, settings.max_transactions),
            routes: HashMap::new(),
            pending: HashMap::new(),
            conns: Conns::new(settings.tcp),
            allow: settings.allow,
            named: settings.named,
            outgoing: Outgoing::new(settings.server),
            admission: settings.admission,
            trunk_limits: settings.trunk_limits,
            media_late_ticks: 0,
            registrar,
            trunks: Trunks::new(settings.registrations, settings.started, registry),
            qualify: Qualify::new(
                settings.qualify,
                settings.probes,
                settings.started,
                registry,
            ),
            drain: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            metrics: Metrics::new(registry),
            registrar_metrics: RegistrarMetrics::new(registry),
        }
    }

    /// One UDP datagram or framed TCP message from `peer`.
    pub fn handle_datagram(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        self.metrics.received.inc();
        if let Some(conn) = peer.conn {
            self.conns.received(now, conn, false);
        }
        match parse::parse(bytes, peer.transport) {
            Ok(SipMessage::Request(req)) if self.refused_statelessly(&req, peer) => {
                // No transaction: a flood from outside costs no memory and cannot fill
                // `max_transactions` for the trunks.
                self.metrics.dropped("untrusted_source");
                let refusal = build::response(&req, 403, Some(&build::new_tag()));
                let bytes = build::encode(&SipMessage::Response(self.stamp(refusal)));
                self.push_transmit(now, peer, bytes);
            }
            Ok(SipMessage::Request(mut req)) => {
                // RFC 3581: where the request really came from, for its responses and,
                // behind a NAT, for the requests we send back in its dialog.
                headers::stamp_received(&mut req.headers, peer.addr);
                self.tx.handle_message(now, peer, SipMessage::Request(req))
            }
            Ok(msg) => self.tx.handle_message(now, peer, msg),
            Err(ParseError::Drop(reason)) => {
                if reason != parse::DropReason::KeepAlive {
                    debug!(%peer.addr, reason = reason.as_str(), "dropped a SIP message");
                }
                self.metrics.dropped(reason.as_str());
            }
            Err(ParseError::Reject(r)) => {
                debug!(%peer.addr, status = r.status, detail = %r.detail, "rejected a malformed request");
                self.metrics.rejected.inc();
                let bytes = build::reject(&r, &self.outgoing.server);
                self.push_transmit(now, peer, bytes);
            }
        }
        self.drive(now);
    }

    /// A call's command.
    pub fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Respond { tx, response } => {
                let _ = self.tx.respond(now, tx, self.stamp(response));
            }
            Command::Send { peer, mut request } => {
                self.outgoing.prepare(peer, &mut request);
                let route = headers::call_id(&request.headers)
                    .zip(headers::cseq(&request.headers))
                    .map(|(id, (seq, m))| (id.to_owned(), seq, m));
                let tx = self.tx.send_request(now, peer, request);
                if let Some((call_id, seq, method)) = route {
                    if let Some(r) = self.routes.get_mut(&call_id) {
                        r.sent.push(tx);
                    }
                    self.pending.insert(tx, (call_id, seq, method));
                }
            }
            Command::SendStateless { peer, mut request } => {
                self.outgoing.prepare(peer, &mut request);
                self.tx.send_stateless(peer, &SipMessage::Request(request));
            }
            Command::Route { call_id } => {
                let route = Route {
                    incoming: None,
                    trunk: None,
                    sent: Vec::new(),
                };
                self.routes.insert(call_id, route);
            }
            Command::Unroute { call_id } => self.unroute(&call_id),
        }
        self.drive(now);
    }

    /// An event for a call whose task is gone (it ended between the routing and its
    /// unroute): the call no longer routes, and a request it would have answered is
    /// answered here.
    pub fn handle_undelivered(&mut self, now: Instant, call_id: &str, event: CallEvent) {
        self.unroute(call_id);
        match event {
            CallEvent::Request { tx, request, .. } => self.respond(now, tx, &request, 481, vec![]),
            CallEvent::Cancelled { invite, request } => self.terminate(now, invite, &request),
            _ => {}
        }
        self.drive(now);
    }

    /// The edge accepted a TCP or TLS connection from `addr`: the name it goes by from now
    /// on, or why it must be closed at once. Only trunks (a registering trunk's registrar
    /// among them) and the networks agent phones may register from get a connection,
    /// within the caps.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        transport: Transport,
    ) -> Result<u64, ConnRefusal> {
        let ip = addr.ip();
        let allowed = self.trusted(ip)
            || self.trunks.is_registrar(ip)
            || self.registrar.as_ref().is_some_and(|r| r.admits(ip));
        let accepted = if allowed {
            self.conns.accept(now, addr, transport)
        } else {
            Err(ConnRefusal::NotAllowed)
        };
        if let Err(refusal) = accepted {
            debug!(%addr, reason = refusal.as_str(), "refused a TCP connection");
            self.metrics.tcp_refused(refusal.as_str());
        }
        self.metrics.tcp_connections.set(self.conns.len() as i64);
        accepted
    }

    /// Bytes arrived on connection `conn` that made no whole message (a keep-alive, or
    /// part of a message: `mid_message`).
    pub fn handle_conn_read(&mut self, now: Instant, conn: u64, mid_message: bool) {
        self.conns.received(now, conn, mid_message);
    }

    /// A TCP connection is gone; what was waiting on it fails or finds another way.
    pub fn handle_conn_closed(&mut self, now: Instant, conn: u64, end: ConnEnd) {
        let Some(addr) = self.conns.remove(conn) else {
            return;
        };
        self.metrics.tcp_connections.set(self.conns.len() as i64);
        if end == ConnEnd::ConnectFailed {
            self.tx.handle_connect_failed(now, addr);
            self.drive(now);
        }
    }

    /// One read of the UDP socket: `full` when it filled a whole batch (more was waiting).
    pub fn handle_backlog(&mut self, now: Instant, full: bool) {
        self.admission.input(now, full);
    }

    /// The media workers' running count of late ticks (read at each turn of the loop).
    pub fn handle_media_late_ticks(&mut self, count: u64) {
        self.media_late_ticks = count;
    }

    /// The engine is stopping: from now on new calls and OPTIONS probes get 503; calls in
    /// progress may finish for `grace`, then each is told to end (`CallEvent::Shutdown`,
    /// which hangs it up with a BYE). `Event::Drained` follows once none is left. A second
    /// drain can only shorten the grace.
    pub fn handle_drain(&mut self, now: Instant, grace: Duration) {
        if self.drain.is_none() {
            let (tx, out) = (&mut self.tx, &mut self.outgoing);
            self.trunks.stop(&mut sender(tx, out, now));
            self.qualify.stop();
        }
        let at = now + grace;
        let drain = self.drain.get_or_insert(Drain {
            hang_up_at: Some(at),
            drained: false,
        });
        if let Some(t) = drain.hang_up_at.as_mut() {
            *t = (*t).min(at);
        }
        self.handle_timeout(now);
    }

    /// Time has come to `now`: transaction timers, registrations, connections, draining.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conns.handle_timeout(now);
        while let Some((conn, reason)) = self.conns.poll_close() {
            debug!(conn, reason = reason.as_str(), "closing a TCP connection");
            self.metrics.tcp_closed(reason.as_str());
            self.events.push_back(Event::CloseConn(conn));
        }
        self.metrics.tcp_connections.set(self.conns.len() as i64);
        if let Some(drain) = self.drain.as_mut()
            && drain.hang_up_at.is_some_and(|t| t <= now)
        {
            drain.hang_up_at = None;
            for (call_id, route) in &self.routes {
                if route.incoming.is_some() {
                    self.events.push_back(Event::Call {
                        call_id: call_id.clone(),
                        event: CallEvent::Shutdown,
                    });
                }
            }
        }
        if self.tx.poll_timeout().is_some_and(|t| t <= now) {
            self.tx.handle_timeout(now);
        }
        // Once per turn of the edge's loop (which always ends with this call), not per
        // message: the gauges need no finer grain.
        let (server, client) = self.tx.len();
        self.metrics.transactions(self.tx.counts(), server + client);
        if let Some(r) = self.registrar.as_mut()
            && r.poll_timeout().is_some_and(|t| t <= now)
        {
            r.handle_timeout(now);
        }
        let (tx, out) = (&mut self.tx, &mut self.outgoing);
        self.trunks.handle_timeout(now, &mut sender(tx, out, now));
        self.qualify.handle_timeout(now);
        while let Some((id, uri)) = self.qualify.poll_lookup() {
            self.events.push_back(Event::LookUpPeer { id, uri });
        }
        self.drive(now);
    }

    /// The edge looked a probed peer up (`Event::LookUpPeer`): its OPTIONS goes out, or
    /// the probe failed.
    pub fn handle_peer_lookup(
        &mut self,
        now: Instant,
        id: PeerId,
        found: Result<ProbeAddress, String>,
    ) {
        let (tx, out) = (&mut self.tx, &mut self.outgoing);
        self.qualify
            .handle_lookup(now, id, found, &mut sender(tx, out, now));
        self.drive(now);
    }

    /// The edge looked `trunk`'s registrar up again (`Event::LookUpRegistrar`): it
    /// registers now, or the lookup is tried again later. `true` if it registers with
    /// this result (not once the engine is stopping).
    pub fn handle_registrar_lookup(
        &mut self,
        now: Instant,
        trunk: &str,
        result: Result<TrunkRegistration, String>,
    ) -> bool {
        let (tx, out) = (&mut self.tx, &mut self.outgoing);
        let bound = self
            .trunks
            .handle_lookup(now, trunk, result, &mut sender(tx, out, now));
        self.drive(now);
        bound
    }

    /// Each registering trunk and where its registration stands.
    pub fn registrations(&self) -> Vec<(String, RegState)> {
        self.trunks
            .states()
            .map(|(t, s)| (t.to_owned(), s.clone()))
            .collect()
    }

    /// The next message to send, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the engine must know, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next run: may be early, never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let registrar = self.registrar.as_ref().and_then(Registrar::poll_timeout);
        let hang_up = self.drain.as_ref().and_then(|d| d.hang_up_at);
        [
            self.tx.poll_timeout(),
            registrar,
            self.trunks.poll_timeout(),
            self.qualify.poll_timeout(),
            hang_up,
            self.conns.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Calls in progress that came in (admitted and not yet unrouted).
    pub fn calls(&self) -> usize {
        self.admission.calls()
    }

    /// Moves what the transaction layer and the registrar produced into our queues, until
    /// handling their events produces nothing more.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = self.tx.poll_transmit() {
                busy = true;
                self.push_transmit(now, t.peer, t.bytes);
            }
            while let Some(ev) = self.tx.poll_event() {
                busy = true;
                self.dispatch(now, ev);
            }
            if !busy {
                break;
            }
        }
        if let Some(r) = self.registrar.as_mut() {
            while let Some(change) = r.poll_change() {
                self.events.push_back(Event::Binding(change));
            }
        }
        if let Some(statuses) = self.trunks.poll_changed(now) {
            self.events.push_back(Event::Trunks(statuses));
        }
        // Here, not only at timers: a REGISTER that just went unanswered asks at once, so
        // the lookup is back before the retry.
        while let Some(trunk) = self.trunks.poll_lookup(now) {
            self.events.push_back(Event::LookUpRegistrar(trunk));
        }
        while let Some(change) = self.qualify.poll_change() {
            self.events.push_back(Event::Reach(change));
        }
        if let Some(statuses) = self.qualify.poll_statuses() {
            self.events.push_back(Event::Peers(statuses));
        }
        if let Some(drain) = self.drain.as_mut()
            && !drain.drained
            && self.admission.calls() == 0
            && self.pending.is_empty()
        {
            drain.drained = true;
            self.events.push_back(Event::Drained);
        }
    }

    /// Chooses how bytes for `peer` leave: UDP, the connection a request came in on, any
    /// open connection to the peer's address, or a new connection.
    fn push_transmit(&mut self, now: Instant, peer: Peer, bytes: Bytes) {
        self.metrics.response(&bytes);
        let dest = match peer.transport {
            Transport::Udp => Dest::Udp(peer.addr),
            Transport::Tcp | Transport::Tls => match self.conns.route(peer) {
                Some(conn) => Dest::Conn(conn),
                None => {
                    let conn = self.conns.open(now, peer.addr, peer.transport);
                    self.metrics.tcp_connections.set(self.conns.len() as i64);
                    Dest::Connect {
                        conn,
                        addr: peer.addr,
                        transport: peer.transport,
                        tls_name: (peer.transport == Transport::Tls)
                            .then(|| self.outgoing.tls_name(peer.addr))
                            .flatten(),
                    }
                }
            },
        };
        self.transmits.push_back(Transmit { dest, bytes });
    }

    fn dispatch(&mut self, now: Instant, ev: TxEvent) {
        match ev {
            TxEvent::Request { tx, request, peer } => self.request(now, tx, request, peer),
            TxEvent::Cancel {
                tx,
                invite,
                request,
                peer: _,
            } => {
                let Some(invite) = invite else {
                    return self.respond(now, tx, &request, 481, Vec::new());
                };
                self.respond(now, tx, &request, 200, Vec::new());
                if !self.tx.is_proceeding(invite) {
                    return;
                }
                match headers::call_id(&request.headers).filter(|id| self.routes.contains_key(*id))
                {
                    Some(id) => self.events.push_back(Event::Call {
                        call_id: id.to_owned(),
                        event: CallEvent::Cancelled { invite, request },
                    }),
                    None => self.terminate(now, invite, &request),
                }
            }
            TxEvent::Ack { request, .. } => {
                match headers::call_id(&request.headers).filter(|id| self.routes.contains_key(*id))
                {
                    Some(id) => self.events.push_back(Event::Call {
                        call_id: id.to_owned(),
                        event: CallEvent::Ack { request },
                    }),
                    // An ACK of no call of ours (a late copy, or another call's ACK with
                    // a reused branch): nothing answers an ACK, so it is counted.
                    None => self.metrics.dropped("stray_ack"),
                }
            }
            TxEvent::Response { tx, response } => {
                let (txs, out) = (&mut self.tx, &mut self.outgoing);
                let mut send = sender(txs, out, now);
                if self.trunks.handle_response(now, tx, &response, &mut send)
                    || self.qualify.handle_response(now, tx, &response)
                {
                    return;
                }
                if response.status_code.code() >= 200 {
                    self.pending.remove(&tx);
                }
                if let Some(id) =
                    headers::call_id(&response.headers).filter(|id| self.routes.contains_key(*id))
                {
                    self.events.push_back(Event::Call {
                        call_id: id.to_owned(),
                        event: CallEvent::Response { response },
                    });
                }
            }
            TxEvent::Timeout { tx } => {
                let (txs, out) = (&mut self.tx, &mut self.outgoing);
                if self
                    .trunks
                    .handle_no_answer(now, tx, &mut sender(txs, out, now))
                    || self.qualify.handle_no_answer(now, tx)
                {
                    return;
                }
                if let Some((call_id, cseq, method)) = self.pending.remove(&tx)
                    && self.routes.contains_key(&call_id)
                {
                    self.events.push_back(Event::Call {
                        call_id: call_id.clone(),
                        event: CallEvent::Timeout {
                            call_id,
                            cseq,
                            method,
                        },
                    });
                }
            }
            TxEvent::AckTimeout { call_id, .. } => {
                if self.routes.contains_key(&call_id) {
                    self.events.push_back(Event::Call {
                        call_id,
                        event: CallEvent::AckTimeout,
                    });
                }
            }
        }
    }

    fn request(&mut self, now: Instant, tx: ServerTxId, request: Request, peer: Peer) {
        let call_id = headers::call_id(&request.headers)
            .unwrap_or_default()
            .to_owned();
        let ip = peer.addr.ip();
        // A call sent to a trunk's registration comes in on that trunk, wherever from.
        let registered = self.trunks.trunk_of(&request.uri, ip);
        let trunk = registered.or_else(|| self.trunk_of(ip)).map(str::to_owned);
        let ctx = policy::Context {
            trusted_source: registered.is_some() || self.trusted(ip),
            known_dialog: self.routes.contains_key(&call_id),
            registrar: self.registrar.is_some(),
            draining: self.drain.is_some(),
        };
        match policy::screen(&request, ctx) {
            Decision::Dialog => self.events.push_back(Event::Call {
                call_id,
                event: CallEvent::Request { tx, request, peer },
            }),
            Decision::Respond(code, extra) => self.respond(now, tx, &request, code, extra),
            Decision::Register => self.register(now, tx, &request, peer),
            Decision::NewCall => {
                self.admission.media_late_ticks(now, self.media_late_ticks);
                let admitted = self
                    .trunk_limits
                    .check(now, trunk.as_deref())
                    .and_then(|()| self.admission.admit(now, ip));
                if let Err(refusal) = admitted {
                    debug!(
                        calls = self.admission.calls(),
                        source = %ip,
                        reason = refusal.as_str(),
                        "refusing a call with 503"
                    );
                    self.metrics.shed(refusal.as_str());
                    return self.respond(now, tx, &request, 503, vec![("Retry-After", "2".into())]);
                }
                self.trunk_limits.started(now, trunk.as_deref());
                let route = Route {
                    incoming: Some(ip),
                    trunk: trunk.clone(),
                    sent: Vec::new(),
                };
                self.routes.insert(call_id.clone(), route);
                self.metrics.calls.set(self.admission.calls() as i64);
                self.events.push_back(Event::NewCall(NewCall {
                    call_id,
                    invite: request,
                    tx,
                    peer,
                    trunk,
                }));
            }
        }
    }

    fn register(&mut self, now: Instant, tx: ServerTxId, request: &Request, peer: Peer) {
        let Some(r) = self.registrar.as_mut() else {
            return self.respond(now, tx, request, 403, Vec::new());
        };
        let reply = r.handle_request(now, peer.addr.ip(), request);
        match &reply.verdict {
            Verdict::Registered { user, algorithm } => {
                debug!(%user, %peer.addr, algorithm = %algorithm.name(), "registered");
            }
            Verdict::Challenged => {}
            other => info!(verdict = ?other, %peer.addr, "REGISTER refused"),
        }
        while let Some(lockout) = r.poll_lockout() {
            let by = match lockout.held {
                Held::User => "user",
                Held::Source => "source",
            };
            let for_s = lockout.until.saturating_duration_since(now).as_secs();
            warn!(by, who = %lockout.who, failures = lockout.failures, for_s,
                "registration locked out after wrong passwords");
            self.registrar_metrics.lockout(lockout.held);
        }
        self.registrar_metrics.update(r.counters());
        let mut response = build::response(request, reply.status.code(), Some(&build::new_tag()));
        response.headers.extend(reply.headers);
        let _ = self.tx.respond(now, tx, self.stamp(response));
    }

    /// A request from a source that is no trunk, outside any call, and not a REGISTER (which
    /// the registrar judges) nor an ACK (which is never answered): the policy would answer it
    /// 403, so it is answered 403 at once, without a transaction.
    fn refused_statelessly(&self, req: &Request, peer: Peer) -> bool {
        let ip = peer.addr.ip();
        !matches!(req.method, Method::Register | Method::Ack)
            && !self.trusted(ip)
            && !headers::call_id(&req.headers).is_some_and(|id| self.routes.contains_key(id))
            && self.trunks.trunk_of(&req.uri, ip).is_none()
    }

    /// Whether `ip` is a trunk's: in `[trunks] allow` or a named trunk's networks.
    fn trusted(&self, ip: IpAddr) -> bool {
        self.trunk_of(ip).is_some() || self.allow.iter().any(|c| c.contains(ip))
    }

    /// The named trunk whose networks hold `ip`.
    fn trunk_of(&self, ip: IpAddr) -> Option<&str> {
        self.named
            .iter()
            .find(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
            .map(|(name, _)| name.as_str())
    }

    fn unroute(&mut self, call_id: &str) {
        let Some(route) = self.routes.remove(call_id) else {
            return;
        };
        // Nobody waits for the answers any more. A BYE's is still awaited by a drain (its
        // transaction ends by Timer F at worst); an INVITE left after its 1xx may never get
        // one and must not hold the drain.
        for tx in &route.sent {
            if self
                .pending
                .get(tx)
                .is_some_and(|(_, _, m)| *m != Method::Bye)
            {
                self.pending.remove(tx);
            }
        }
        if let Some(source) = route.incoming {
            self.admission.ended(source);
            self.trunk_limits.ended(route.trunk.as_deref());
            self.metrics.calls.set(self.admission.calls() as i64);
        }
    }

    /// Ends a still-pending INVITE with 487 after its CANCEL.
    fn terminate(&mut self, now: Instant, invite: ServerTxId, cancel: &Request) {
        if self.tx.is_proceeding(invite) {
            let terminated = build::response(cancel, 487, Some(&build::new_tag()));
            let _ = self.tx.respond(now, invite, self.stamp(terminated));
        }
    }

    fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        request: &Request,
        code: u16,
        extra: Vec<(&'static str, String)>,
    ) {
        let mut response = build::response(request, code, Some(&build::new_tag()));
        for (name, value) in extra {
            response.headers.push(Header::Other(name.into(), value));
        }
        let _ = self.tx.respond(now, tx, self.stamp(response));
    }

    /// Adds our Server header to the responses we send.
    fn stamp(&self, mut response: rsip::Response) -> rsip::Response {
        response
            .headers
            .push(Header::Server(self.outgoing.server.clone().into()));
        response
    }
}

/// Sends a request of the core's own (a trunk's REGISTER) in a client transaction.
fn sender<'a>(
    tx: &'a mut Transactions,
    out: &'a mut Outgoing,
    now: Instant,
) -> impl FnMut(Peer, Request) -> ClientTxId + 'a {
    move |peer, mut request| {
        out.prepare(peer, &mut request);
        tx.send_request(now, peer, request)
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
