//! The table of SIP connections (TCP, and TLS over TCP), sans-IO: which are open, to whom
//! and by which transport, which one a
//! message leaves on, how many one source may hold, and when each must close: a
//! connection must finish a message it started (and its first one) within
//! `message_deadline`, and one that says nothing for `idle` is closed. Owned by the
//! endpoint core; knows nothing of sockets, and who may connect at all is the core's call.

#![warn(unreachable_pub, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::sip::Transport;
use crate::sip::transaction::Peer;

/// How often the deadlines are checked while connections exist: closing a few hundred
/// milliseconds late is harmless, and a sweep keeps `poll_timeout` free of a scan.
const SWEEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, ours included; accepts beyond it are refused.
    pub max_connections: usize,
    /// Accepted connections one source address may hold.
    pub max_per_source: usize,
    /// A connection that sends nothing (not even a keep-alive) for this long is closed.
    pub idle: Duration,
    /// A message, once begun (and the first one, from the accept), must be complete
    /// within this long: a slow drip cannot hold a connection.
    pub message_deadline: Duration,
}

/// Descriptors kept for everything but SIP TCP: per call, the caller's and an agent's RTP
/// sockets and a recording; and a fixed share for the API, the event log and models.
const PER_CALL_DESCRIPTORS: usize = 3;
const OTHER_DESCRIPTORS: usize = 512;

/// How many TCP connections may be open when the process may hold `descriptors` files
/// and `max_calls` calls: at most `configured`, and never so many that a full engine runs
/// out of descriptors for RTP sockets or the API. At least 16, so SIP over TCP works.
pub(super) fn tcp_connection_cap(configured: usize, descriptors: u64, max_calls: usize) -> usize {
    let reserve = PER_CALL_DESCRIPTORS * max_calls + OTHER_DESCRIPTORS;
    let room = usize::try_from(descriptors)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve);
    configured.min(room).max(16)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    /// The source is neither a trunk nor in the agent phones' networks.
    NotAllowed,
    MaxConnections,
    MaxPerSource,
}

impl ConnRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnRefusal::NotAllowed => "not_allowed",
            ConnRefusal::MaxConnections => "max_connections",
            ConnRefusal::MaxPerSource => "max_per_source",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseReason {
    Idle,
    MessageDeadline,
}

impl CloseReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::MessageDeadline => "message_deadline",
        }
    }
}

struct Conn {
    addr: SocketAddr,
    /// TCP or TLS: a reply for a TLS peer must not leave on its plain connection.
    transport: Transport,
    /// Accepted (counts against its source's share), not opened by us.
    accepted: bool,
    /// Bytes of an unfinished message are buffered.
    mid_message: bool,
    /// When it closes unless something arrives first.
    deadline: Instant,
}

pub(super) struct Conns {
    limits: TcpLimits,
    conns: HashMap<u64, Conn>,
    per_source: HashMap<IpAddr, usize>,
    next_id: u64,
    next_sweep: Option<Instant>,
    closing: VecDeque<(u64, CloseReason)>,
}

impl Conns {
    pub(super) fn new(limits: TcpLimits) -> Conns {
        Conns {
            limits,
            conns: HashMap::new(),
            per_source: HashMap::new(),
            next_id: 0,
            next_sweep: None,
            closing: VecDeque::new(),
        }
    }

    /// A connection from `addr` the edge accepted: its name, unless a cap refuses it.
    pub(super) fn accept(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        transport: Transport,
    ) -> Result<u64, ConnRefusal> {
        if self.conns.len() >= self.limits.max_connections {
            return Err(ConnRefusal::MaxConnections);
        }
        let held = self.per_source.entry(addr.ip()).or_default();
        if *held >= self.limits.max_per_source {
            return Err(ConnRefusal::MaxPerSource);
        }
        *held += 1;
        // Until its first message is complete it is as good as a started one.
        let deadline = self.limits.message_deadline;
        Ok(self.insert(now, addr, transport, true, true, deadline))
    }

    /// A connection we open to `addr` to send a message: its name.
    pub(super) fn open(&mut self, now: Instant, addr: SocketAddr, transport: Transport) -> u64 {
        self.insert(now, addr, transport, false, false, self.limits.idle)
    }

    fn insert(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        transport: Transport,
        accepted: bool,
        mid_message: bool,
        wait: Duration,
    ) -> u64 {
        self.next_id += 1;
        self.conns.insert(
            self.next_id,
            Conn {
                addr,
                transport,
                accepted,
                mid_message,
                deadline: now + wait,
            },
        );
        self.next_sweep.get_or_insert(now + SWEEP);
        self.next_id
    }

    /// The connection closed (either side) or failed to connect: its peer's address.
    pub(super) fn remove(&mut self, conn: u64) -> Option<SocketAddr> {
        let c = self.conns.remove(&conn)?;
        if c.accepted
            && let Some(held) = self.per_source.get_mut(&c.addr.ip())
        {
            *held -= 1;
            if *held == 0 {
                self.per_source.remove(&c.addr.ip());
            }
        }
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
        Some(c.addr)
    }

    /// Bytes arrived on `conn`; `mid_message` when part of a message is still awaited.
    /// A message that began gets `message_deadline` to finish however slowly it drips;
    /// between messages the idle timeout runs from now.
    pub(super) fn received(&mut self, now: Instant, conn: u64, mid_message: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !mid_message {
            c.mid_message = false;
            c.deadline = now + self.limits.idle;
        } else if !c.mid_message {
            c.mid_message = true;
            c.deadline = now + self.limits.message_deadline;
        }
    }

    /// The open connection for `peer`: the one it used if still open, else any to its
    /// address by its transport.
    pub(super) fn route(&self, peer: Peer) -> Option<u64> {
        peer.conn
            .filter(|c| self.conns.contains_key(c))
            .or_else(|| {
                self.conns
                    .iter()
                    .find(|(_, c)| c.addr == peer.addr && c.transport == peer.transport)
                    .map(|(id, _)| *id)
            })
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_none_or(|t| t > now) {
            return;
        }
        let expired: Vec<(u64, CloseReason)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, c)| {
                let reason = if c.mid_message {
                    CloseReason::MessageDeadline
                } else {
                    CloseReason::Idle
                };
                (*id, reason)
            })
            .collect();
        for (id, reason) in expired {
            self.remove(id);
            self.closing.push_back((id, reason));
        }
        if !self.conns.is_empty() {
            self.next_sweep = Some(now + SWEEP);
        }
    }

    /// A connection the table closed: the edge must drop it.
    pub(super) fn poll_close(&mut self) -> Option<(u64, CloseReason)> {
        self.closing.pop_front()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::virtual_time::{Timed, advance};

    impl Timed for Conns {
        fn poll_timeout(&self) -> Option<Instant> {
            Conns::poll_timeout(self)
        }
        fn handle_timeout(&mut self, now: Instant) {
            Conns::handle_timeout(self, now)
        }
    }

    const S: Duration = Duration::from_secs(1);

    fn limits() -> TcpLimits {
        TcpLimits {
            max_connections: 3,
            max_per_source: 2,
            idle: 60 * S,
            message_deadline: 10 * S,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    fn closed(c: &mut Conns) -> Vec<(u64, CloseReason)> {
        std::iter::from_fn(|| c.poll_close()).collect()
    }

    #[test]
    fn the_connection_cap_keeps_descriptors_for_every_call() {
        assert_eq!(tcp_connection_cap(4096, 20_000, 5000), 4096);
        assert_eq!(tcp_connection_cap(8192, 20_000, 5000), 4488);
        assert_eq!(
            tcp_connection_cap(4096, 1024, 5000),
            16,
            "a floor, with a warning"
        );
    }

    #[test]
    fn caps_hold_per_source_and_in_total_and_free_up_on_close() {
        let t = Instant::now();
        let mut c = Conns::new(limits());
        let a1 = c
            .accept(t, addr("10.0.0.1:5000"), Transport::Tcp)
            .expect("first");
        c.accept(t, addr("10.0.0.1:5001"), Transport::Tcp)
            .expect("second");
        assert_eq!(
            c.accept(t, addr("10.0.0.1:5002"), Transport::Tcp),
            Err(ConnRefusal::MaxPerSource)
        );
        c.accept(t, addr("10.0.0.2:5000"), Transport::Tcp)
            .expect("another source");
        assert_eq!(
            c.accept(t, addr("10.0.0.3:5000"), Transport::Tcp),
            Err(ConnRefusal::MaxConnections)
        );
        c.remove(a1);
        c.accept(t, addr("10.0.0.1:5003"), Transport::Tcp)
            .expect("room again");
    }

    #[test]
    fn a_silent_or_dripping_connection_is_closed_and_a_talking_one_is_not() {
        let t = Instant::now();
        let mut c = Conns::new(limits());
        let silent = c
            .accept(t, addr("10.0.0.1:5000"), Transport::Tcp)
            .expect("silent");
        let drip = c
            .accept(t, addr("10.0.0.2:5000"), Transport::Tcp)
            .expect("drip");
        let talker = c
            .accept(t, addr("10.0.0.3:5000"), Transport::Tcp)
            .expect("talker");
        c.received(t + S, talker, false);
        c.received(t + S, drip, false);
        // The drip starts a message and sends a byte every second, never finishing it.
        let mut now = t + S;
        for _ in 0..9 {
            now = advance(&mut c, now + S, |_, _| {});
            c.received(now, drip, true);
        }
        now = advance(&mut c, t + 10 * S, |_, _| {});
        assert_eq!(closed(&mut c), [(silent, CloseReason::MessageDeadline)]);
        advance(&mut c, now + 2 * S, |_, _| {});
        assert_eq!(closed(&mut c), [(drip, CloseReason::MessageDeadline)]);
        // The talker sent a whole message at 1 s and nothing since: idle at 61 s.
        advance(&mut c, t + 60 * S, |_, _| {});
        assert!(closed(&mut c).is_empty());
        advance(&mut c, t + 62 * S, |_, _| {});
        assert_eq!(closed(&mut c), [(talker, CloseReason::Idle)]);
        assert_eq!(c.poll_timeout(), None, "no sweep without connections");
    }

    #[test]
    fn replies_take_the_connection_the_request_used_or_another_to_the_peer() {
        let t = Instant::now();
        let mut c = Conns::new(limits());
        let a = c
            .accept(t, addr("10.0.0.1:5000"), Transport::Tcp)
            .expect("a");
        let b = c
            .accept(t, addr("10.0.0.1:5000"), Transport::Tcp)
            .expect("b");
        let peer = |conn| Peer {
            transport: Transport::Tcp,
            addr: addr("10.0.0.1:5000"),
            conn,
        };
        assert_eq!(c.route(peer(Some(b))), Some(b));
        c.remove(b);
        assert_eq!(c.route(peer(Some(b))), Some(a));
        c.remove(a);
        assert_eq!(c.route(peer(Some(a))), None);
        let ours = c.open(t, addr("10.0.0.1:5000"), Transport::Tcp);
        assert_eq!(c.route(peer(None)), Some(ours));
        let secure = Peer {
            transport: Transport::Tls,
            ..peer(None)
        };
        assert_eq!(c.route(secure), None, "a TLS peer never gets the plain one");
        let tls = c.open(t, addr("10.0.0.1:5000"), Transport::Tls);
        assert_eq!(c.route(secure), Some(tls));
        assert_eq!(c.route(peer(None)), Some(ours));
    }
}
