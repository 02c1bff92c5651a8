//! The SIP endpoint: a sans-IO core (`core`: transactions, registrar, admission, Call-ID
//! routes, TCP connection choice) driven by one tokio task (`event_loop`) that owns the UDP
//! and TCP sockets and the calls' channels. Calls talk to it with `EndpointHandle` commands
//! and hear from it through `CallEvent`s; it never looks inside a call.

mod admission;
mod conns;
pub mod core;
mod event_loop;
mod metrics;
mod tcp;
mod trunk_limits;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rsip::{Method, Request, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

pub use crate::cidr::{Cidr, CidrError};
pub use event_loop::{Endpoint, Registrations, StartError};

use self::core::Command;
use crate::sip::transaction::{Peer, ServerTxId};

/// The `[trunks]` section: who may send us SIP.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Source networks (CIDR) allowed to send requests; others get 403.
    pub allow: Vec<String>,
    /// Named trunks (`[trunks.named.pbx1] allow = [...]`): their sources are allowed too,
    /// and dialplans can choose a flow by the trunk a call came in on.
    pub named: BTreeMap<String, NamedTrunk>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamedTrunk {
    pub allow: Vec<String>,
    /// Calls this trunk may carry at once (503 beyond); 0: only `[sip] max_calls` applies.
    pub max_calls: usize,
    /// New calls a second this trunk may start (503 beyond); 0: no limit of its own.
    pub max_cps: u32,
}

impl TrunkConfig {
    /// Every network a trunk may send from: `allow` and each named trunk's.
    pub fn networks(&self) -> Result<Vec<Cidr>, CidrError> {
        self.allow
            .iter()
            .chain(self.named.values().flat_map(|t| &t.allow))
            .map(|s| s.parse())
            .collect()
    }
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
            named: BTreeMap::new(),
        }
    }
}

/// What the endpoint tells a call task.
#[derive(Debug)]
pub enum CallEvent {
    /// A request inside the call's dialog(s): BYE, re-INVITE, INFO...
    Request {
        tx: ServerTxId,
        request: Request,
        peer: Peer,
    },
    /// A CANCEL for the call's INVITE, still pending (the endpoint answered the CANCEL
    /// 200): the call must answer its INVITE 487. The endpoint does so itself if the call
    /// is already gone.
    Cancelled {
        invite: ServerTxId,
        request: Request,
    },
    /// The ACK for a 2xx we sent.
    Ack { request: Request },
    /// A response to a request the call sent.
    Response { response: Response },
    /// A request the call sent got no final response in time.
    Timeout {
        call_id: String,
        cseq: u32,
        method: Method,
    },
    /// A 2xx the call sent was never acknowledged.
    AckTimeout,
    /// The engine is stopping and the grace is over: hang up now (BYE).
    Shutdown,
}

/// A new INVITE, for whoever starts calls.
pub struct IncomingCall {
    pub invite: Request,
    pub tx: ServerTxId,
    pub peer: Peer,
    /// Our address as the peer reaches it (for Contact, Via and SDP).
    pub local: SocketAddr,
    /// The named trunk the call came in on.
    pub trunk: Option<String>,
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    pub endpoint: EndpointHandle,
}

/// Starts a call task for each new INVITE. Must not block.
pub type CallStarter = Arc<dyn Fn(IncomingCall) + Send + Sync>;

/// How call tasks drive the endpoint. Cheap to clone.
#[derive(Clone)]
pub struct EndpointHandle {
    tx: mpsc::UnboundedSender<event_loop::Input>,
    public_ip: Option<IpAddr>,
    udp_port: u16,
    tcp_port: u16,
}

impl EndpointHandle {
    /// Our address as `peer` reaches it (for Via, Contact and SDP): the configured public
    /// address, or the local address the kernel routes to the peer from, with the listening
    /// port of the peer's transport.
    pub fn local_addr(&self, peer: Peer) -> SocketAddr {
        let ip = self
            .public_ip
            .unwrap_or_else(|| event_loop::route_to(peer.addr));
        SocketAddr::new(ip, self.port(peer.transport))
    }

    /// Our listening port for a transport.
    fn port(&self, transport: crate::sip::Transport) -> u16 {
        match transport {
            crate::sip::Transport::Udp => self.udp_port,
            crate::sip::Transport::Tcp => self.tcp_port,
        }
    }

    fn input(&self, input: event_loop::Input) {
        // The endpoint outlives every call; a failed send means the engine is stopping.
        let _ = self.tx.send(input);
    }

    /// Hands a call core's SIP command to the endpoint.
    pub fn command(&self, c: Box<Command>) {
        self.input(event_loop::Input::Command(c));
    }

    /// Answers a request the call received.
    pub fn respond(&self, tx: ServerTxId, response: Response) {
        self.command(Box::new(Command::Respond { tx, response }));
    }

    /// Routes messages with this Call-ID to `events` (an outgoing leg of a call).
    pub fn route(&self, call_id: String, events: mpsc::UnboundedSender<CallEvent>) {
        self.input(event_loop::Input::Route { call_id, events });
    }

    /// Stops taking calls: INVITE and OPTIONS get 503 from now on, and the calls in
    /// progress are hung up after `grace`. The receiver hears when no call is left.
    pub fn drain(&self, grace: std::time::Duration) -> tokio::sync::oneshot::Receiver<()> {
        let (done, drained) = tokio::sync::oneshot::channel();
        self.input(event_loop::Input::Drain { grace, done });
        drained
    }

    /// Stops routing a Call-ID (the call ended).
    pub fn unroute(&self, call_id: String) {
        self.command(Box::new(Command::Unroute { call_id }));
    }
}
