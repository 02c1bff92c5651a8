//! The RFC 3261 transaction layer (section 17), sans-IO, with RFC 6026's Accepted state.
//!
//! `Transactions` owns every server and client transaction and their timers. It takes
//! parsed messages and `now`, and gives back bytes to send (`poll_transmit`), events for
//! the transaction user (`poll_event`) and the next instant it needs to be woken at
//! (`poll_timeout`). It never reads a clock or touches a socket.
//!
//! Beside the transactions it keeps the UAS core's 2xx retransmission (RFC 3261 13.3.1.4):
//! a 2xx to an INVITE is resent (T1 doubling to T2) until the dialog's ACK arrives, which
//! is matched by Call-ID, CSeq number and From tag and handed up as `TxEvent::Ack`.

mod client;
mod key;
mod server;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rsip::{Method, Request, Response, SipMessage};

use super::{Timers, Transport, build};
use client::ClientTx;
use server::ServerTx;

/// `Transactions::new`'s cap on live server transactions, about 1 KB each (200 MB at the
/// cap). A call holds two for 32 s over UDP (the INVITE's Accepted state and its BYE's
/// Completed state absorb copies), so 2,400 new calls a second, the engine's measured
/// clean rate, need about 154,000. OPTIONS, REGISTERs without credentials and requests
/// from outside the trunks hold none.
pub const DEFAULT_MAX_SERVER: usize = 200_000;
/// Seconds a request refused at the cap is told to wait.
const FULL_RETRY_AFTER: u32 = 5;

/// Where a message came from or goes to. `conn` names the TCP connection (the edge's id)
/// a message arrived on, so responses go back on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: Option<u64>,
}

#[cfg(test)]
impl Peer {
    /// A UDP peer at `addr` (`"ip:port"`), for tests.
    pub(crate) fn udp(addr: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: addr.parse().expect("a socket address"),
            conn: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// A new request (not ACK, not CANCEL) for the transaction user to answer.
    Request {
        tx: ServerTxId,
        request: Request,
        peer: Peer,
    },
    /// A CANCEL, with the INVITE transaction it matches if that still exists.
    Cancel {
        tx: ServerTxId,
        invite: Option<ServerTxId>,
        request: Request,
        peer: Peer,
    },
    /// An ACK outside any transaction: the ACK for a 2xx, for the dialog.
    Ack { request: Request, peer: Peer },
    /// A response to one of our requests: provisional, final, and (RFC 6026) any further
    /// 2xx to an INVITE, which the dialog must ACK again.
    Response { tx: ClientTxId, response: Response },
    /// Our request got no final response in time (Timer B or F), or could not be sent
    /// (a failed TCP connect): treat it as a 408.
    Timeout { tx: ClientTxId },
    /// A 2xx we sent was never ACKed (64*T1): the dialog should end with a BYE.
    AckTimeout { tx: ServerTxId, call_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("the transaction no longer exists")]
    Gone,
    #[error("the transaction already has a final response")]
    AlreadyFinal,
}

/// What the layer counted since it started, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub retransmissions_sent: u64,
    pub retransmissions_absorbed: u64,
    pub stray_responses: u64,
    /// ACKs that carried a live INVITE's branch but another call's Call-ID, CSeq or From
    /// tag.
    pub foreign_acks: u64,
    /// New requests answered 503 without a transaction: `max_server` were live.
    pub refused_full: u64,
}

/// Borrows the output queues of `Transactions` apart from its transaction maps.
macro_rules! out {
    ($self:ident, $now:expr, $wakeups:ident) => {
        Out {
            now: $now,
            timers: $self.timers,
            transmits: &mut $self.transmits,
            events: &mut $self.events,
            wakeups: &mut $wakeups,
            counts: &mut $self.counts,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Server(u64),
    Client(u64),
}

/// Output queues a transaction writes into while it handles an input.
struct Out<'a> {
    now: Instant,
    timers: Timers,
    transmits: &'a mut VecDeque<Transmit>,
    events: &'a mut VecDeque<TxEvent>,
    wakeups: &'a mut Vec<Instant>,
    counts: &'a mut Counts,
}

impl Out<'_> {
    fn send(&mut self, peer: Peer, bytes: &Bytes) {
        self.transmits.push_back(Transmit {
            peer,
            bytes: bytes.clone(),
        });
    }

    fn resend(&mut self, peer: Peer, bytes: &Bytes) {
        self.counts.retransmissions_sent += 1;
        self.send(peer, bytes);
    }

    fn wake_at(&mut self, at: Instant) {
        self.wakeups.push(at);
    }
}

pub struct Transactions {
    timers: Timers,
    /// Live server transactions beyond which a new request is answered 503 statelessly: a
    /// flood of requests must not grow memory without bound.
    max_server: usize,
    next_id: u64,
    server: HashMap<u64, ServerTx>,
    server_keys: HashMap<String, u64>,
    /// 2xx-ACK matching: `key::ack_key` of an accepted INVITE -> its server transaction.
    accepted: HashMap<String, u64>,
    client: HashMap<u64, ClientTx>,
    client_keys: HashMap<String, u64>,
    wheel: BinaryHeap<Reverse<(Instant, Side)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
    counts: Counts,
}

impl Transactions {
    pub fn new(timers: Timers) -> Transactions {
        Transactions::with_limit(timers, DEFAULT_MAX_SERVER)
    }

    /// As `new`, holding at most `max_server` server transactions.
    pub fn with_limit(timers: Timers, max_server: usize) -> Transactions {
        Transactions {
            timers,
            max_server,
            next_id: 0,
            server: HashMap::new(),
            server_keys: HashMap::new(),
            accepted: HashMap::new(),
            client: HashMap::new(),
            client_keys: HashMap::new(),
            wheel: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counts: Counts::default(),
        }
    }

    /// Feeds one parsed message received from `peer`.
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: SipMessage) {
        match msg {
            SipMessage::Request(req) => self.handle_request(now, peer, req),
            SipMessage::Response(resp) => self.handle_response(now, resp),
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, req: Request) {
        let Some(k) = key::server_key(&req, peer.addr) else {
            return;
        };
        let id = self.server_keys.get(&k).copied().filter(|id| {
            // An ACK with the INVITE's branch that names another call is not this
            // transaction's: it goes to the dialogs like any other ACK.
            let foreign = req.method == Method::Ack
                && self.server.get(id).is_some_and(|tx| !tx.owns_ack(&req));
            if foreign {
                self.counts.foreign_acks += 1;
            }
            !foreign
        });
        if let Some(id) = id {
            let mut wakeups = Vec::new();
            if let Some(tx) = self.server.get_mut(&id) {
                let mut out = out!(self, now, wakeups);
                // An ACK with the INVITE's own branch while the 2xx is being resent comes
                // from a UA that reuses branches: it is still the dialog's ACK.
                if tx.on_retransmission(&mut out, req.method == Method::Ack) {
                    self.events.push_back(TxEvent::Ack { request: req, peer });
                }
            }
            self.schedule(Side::Server(id), wakeups);
            return;
        }
        if req.method != Method::Ack && self.server.len() >= self.max_server {
            self.counts.refused_full += 1;
            let mut busy = build::response(&req, 503, Some(&build::new_tag()));
            busy.headers.push(rsip::Header::Other(
                "Retry-After".into(),
                FULL_RETRY_AFTER.to_string(),
            ));
            let bytes = build::encode(&SipMessage::Response(busy));
            self.transmits.push_back(Transmit { peer, bytes });
            return;
        }
        match req.method {
            Method::Ack => {
                // Not part of any transaction: the ACK of a 2xx. Stop resending that 2xx.
                if let Some(id) = key::ack_key(&req)
                    .and_then(|k| self.accepted.get(&k))
                    .copied()
                    && let Some(tx) = self.server.get_mut(&id)
                {
                    tx.on_dialog_ack();
                }
                self.events.push_back(TxEvent::Ack { request: req, peer });
            }
            Method::Cancel => {
                let invite = key::invite_key_for_cancel(&req, peer.addr)
                    .and_then(|k| self.server_keys.get(&k))
                    .copied()
                    .map(ServerTxId);
                let tx = self.new_server(now, k, peer, &req);
                self.events.push_back(TxEvent::Cancel {
                    tx,
                    invite,
                    request: req,
                    peer,
                });
            }
            _ => {
                let tx = self.new_server(now, k, peer, &req);
                self.events.push_back(TxEvent::Request {
                    tx,
                    request: req,
                    peer,
                });
            }
        }
    }

    fn new_server(&mut self, now: Instant, k: String, peer: Peer, req: &Request) -> ServerTxId {
        let id = self.alloc_id();
        let mut wakeups = Vec::new();
        let tx = {
            let mut out = out!(self, now, wakeups);
            ServerTx::new(&mut out, k.clone(), peer, req)
        };
        self.server.insert(id, tx);
        self.server_keys.insert(k, id);
        self.schedule(Side::Server(id), wakeups);
        ServerTxId(id)
    }

    fn handle_response(&mut self, now: Instant, resp: Response) {
        let Some(id) = key::client_key_of_response(&resp).and_then(|k| self.client_keys.get(&k))
        else {
            self.counts.stray_responses += 1;
            return;
        };
        let id = *id;
        let mut wakeups = Vec::new();
        if let Some(tx) = self.client.get_mut(&id) {
            let mut out = out!(self, now, wakeups);
            tx.on_response(&mut out, ClientTxId(id), resp);
        }
        self.schedule(Side::Client(id), wakeups);
        self.reap(Side::Client(id));
    }

    /// Sends `response` on server transaction `tx`.
    pub fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        response: Response,
    ) -> Result<(), TxError> {
        let mut wakeups = Vec::new();
        let t = self.server.get_mut(&tx.0).ok_or(TxError::Gone)?;
        let result = {
            let mut out = out!(self, now, wakeups);
            t.respond(&mut out, response)
        };
        if let Some(ack) = t.ack_key.clone() {
            self.accepted.insert(ack, tx.0);
        }
        self.schedule(Side::Server(tx.0), wakeups);
        self.reap(Side::Server(tx.0));
        result
    }

    /// Whether INVITE transaction `tx` still waits for its final response.
    pub fn is_proceeding(&self, tx: ServerTxId) -> bool {
        self.server.get(&tx.0).is_some_and(ServerTx::is_proceeding)
    }

    /// Starts a client transaction for `request`, whose top Via must carry a fresh branch.
    pub fn send_request(&mut self, now: Instant, peer: Peer, request: Request) -> ClientTxId {
        let id = self.alloc_id();
        let k = key::client_key_of_request(&request).unwrap_or_else(|| format!("unkeyed-{id}"));
        let mut wakeups = Vec::new();
        let tx = {
            let mut out = out!(self, now, wakeups);
            ClientTx::new(&mut out, k.clone(), peer, request)
        };
        self.client.insert(id, tx);
        self.client_keys.insert(k, id);
        self.schedule(Side::Client(id), wakeups);
        ClientTxId(id)
    }

    /// Sends a message outside any transaction (the ACK for a 2xx).
    pub fn send_stateless(&mut self, peer: Peer, msg: &SipMessage) {
        self.transmits.push_back(Transmit {
            peer,
            bytes: build::encode(msg),
        });
    }

    /// A TCP connect to `addr` failed (RFC 3261 17.1.4): every client transaction whose
    /// request waited on it fails now, reported as `TxEvent::Timeout`.
    pub fn handle_connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        let failed: Vec<u64> = self
            .client
            .iter()
            .filter(|(_, tx)| tx.awaits_connect_to(addr))
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            let mut wakeups = Vec::new();
            if let Some(tx) = self.client.get_mut(&id) {
                let mut out = out!(self, now, wakeups);
                tx.fail(&mut out, ClientTxId(id));
            }
            self.reap(Side::Client(id));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, side))) = self.wheel.peek().copied() {
            if at > now {
                break;
            }
            self.wheel.pop();
            let mut wakeups = Vec::new();
            {
                let mut out = out!(self, now, wakeups);
                match side {
                    Side::Server(id) => {
                        if let Some(tx) = self.server.get_mut(&id) {
                            tx.on_timer(&mut out, ServerTxId(id));
                        }
                    }
                    Side::Client(id) => {
                        if let Some(tx) = self.client.get_mut(&id) {
                            tx.on_timer(&mut out, ClientTxId(id));
                        }
                    }
                }
            }
            self.schedule(side, wakeups);
            self.reap(side);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next run. May be early (a timer that no longer
    /// matters), never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wheel.peek().map(|Reverse((at, _))| *at)
    }

    /// Live server and client transactions.
    pub fn len(&self) -> (usize, usize) {
        (self.server.len(), self.client.len())
    }

    pub fn is_empty(&self) -> bool {
        self.server.is_empty() && self.client.is_empty()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, side: Side, wakeups: Vec<Instant>) {
        for at in wakeups {
            self.wheel.push(Reverse((at, side)));
        }
    }

    /// Drops a transaction that reached Terminated.
    fn reap(&mut self, side: Side) {
        match side {
            Side::Server(id) => {
                if self.server.get(&id).is_some_and(ServerTx::is_terminated)
                    && let Some(tx) = self.server.remove(&id)
                {
                    self.server_keys.remove(&tx.key);
                    if let Some(ack) = &tx.ack_key {
                        self.accepted.remove(ack);
                    }
                }
            }
            Side::Client(id) => {
                if self.client.get(&id).is_some_and(ClientTx::is_terminated)
                    && let Some(tx) = self.client.remove(&id)
                {
                    self.client_keys.remove(&tx.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
