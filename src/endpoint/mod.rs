//! The SIP endpoint: a sans-IO core (`core`: transactions, registrar, admission, Call-ID
//! routes, TCP connection choice) driven by one tokio task (`event_loop`) that owns the UDP
//! and TCP sockets and the calls' channels. Calls talk to it with `EndpointHandle` commands
//! and hear from it through `CallEvent`s; it never looks inside a call.

mod admission;
mod conns;
pub mod core;
mod event_loop;
mod metrics;
mod outgoing;
mod qualify;
mod tcp;
mod tls;
mod trunk_limits;
mod trunks;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use rsip::{Method, Request, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

pub use crate::cidr::{Cidr, CidrError};
pub use event_loop::{Endpoint, Probing, Registrations, StartError};
pub use qualify::{
    PeerId, PeerKind, PeerStatus, ProbeAddress, ProbeTarget, QualifySettings, Reach, ReachChange,
};
pub use tls::TlsError;
pub use trunks::{TrunkLookup, TrunkRegistration, TrunkStatus};

use self::core::Command;
use crate::diag::{Diagnostic, PathKey, Problem};
use crate::secret::Secret;
use crate::sip::Transport;
use crate::sip::digest::ClientCredentials;
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::uri::SipUri;

/// The `[trunks]` section: who may send us SIP.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Source networks (CIDR) allowed to send requests; others get 403.
    pub allow: Vec<String>,
    /// Named trunks (`[trunks.named.pbx1] allow = [...]`): their sources are allowed too,
    /// and dialplans can choose a flow by the trunk a call came in on.
    pub named: BTreeMap<String, NamedTrunk>,
    /// OPTIONS probes of the named trunks' `uri` and the agents reached by URI.
    pub qualify: QualifyConfig,
    /// A trunk named in a transfer's `trunks` that answers its INVITE with nothing at all
    /// (not even 100 Trying) for this long is passed over for the next; 0: never.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub no_answer_ms: u64,
}

/// `[trunks.qualify]`: how the engine tells which trunks and PBX agents answer.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualifyConfig {
    /// Seconds from one probe of a peer to the next; 0: nothing is probed.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub interval_s: u64,
    /// A probe unanswered this long (milliseconds) failed.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub timeout_ms: u64,
    /// Failed probes in a row that take a peer down (calls skip it).
    pub down_after: u32,
    /// Answered probes in a row that bring a down peer back.
    pub up_after: u32,
    /// Probe the agents reached by URI (`[[acd.agents]] uri`) too; one that is down is
    /// offered no call. Off by default: a PBX that drops OPTIONS would leave its agents
    /// offered nothing.
    pub agents: bool,
}

impl Default for QualifyConfig {
    fn default() -> Self {
        QualifyConfig {
            interval_s: 30,
            timeout_ms: 3000,
            down_after: 2,
            up_after: 2,
            agents: false,
        }
    }
}

impl QualifyConfig {
    /// Whether anything is probed.
    pub fn enabled(&self) -> bool {
        self.interval_s > 0
    }

    /// The probes' timing and hysteresis.
    pub fn settings(&self) -> QualifySettings {
        QualifySettings {
            interval: std::time::Duration::from_secs(self.interval_s),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            down_after: self.down_after.max(1),
            up_after: self.up_after.max(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamedTrunk {
    pub allow: Vec<String>,
    /// Calls this trunk may carry at once (503 beyond); 0: only `[sip] max_calls` applies.
    pub max_calls: usize,
    /// New calls a second this trunk may start (503 beyond); 0: no limit of its own.
    pub max_cps: u32,
    /// Register with the trunk's registrar (a registration-based trunk); its credentials
    /// also answer the trunk's challenges to our INVITEs and BYEs.
    pub register: Option<RegisterConfig>,
    /// `"optional"`: the trunk's calls are SRTP (SDES, RFC 4568) when its offer asks for
    /// it, RTP otherwise; `"sdes"`: SRTP only, an RTP offer gets 488.
    pub media_encryption: crate::media::sdp::Encryption,
    /// Where calls through this trunk go (`transfer: trunk` with `trunks: [...]`), and
    /// the address probed with OPTIONS; empty: the trunk only sends us calls (a transfer
    /// cannot name it in `trunks`).
    pub uri: String,
    /// Probe `uri` with OPTIONS (`[trunks.qualify]`); off for a carrier that answers none.
    pub qualify: bool,
}

impl Default for NamedTrunk {
    fn default() -> Self {
        NamedTrunk {
            allow: Vec::new(),
            max_calls: 0,
            max_cps: 0,
            register: None,
            media_encryption: crate::media::sdp::Encryption::default(),
            uri: String::new(),
            qualify: true,
        }
    }
}

/// `[trunks.named.NAME.register]`: the engine keeps a binding at the trunk's registrar
/// (RFC 3261 10), and calls sent to that binding come in on this trunk.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// The registrar's SIP URI (`sip:host[:port]`); also where the trunk's challenges come
    /// from.
    pub registrar: String,
    /// The user registered (the address of record's user part, often the DID).
    pub user: String,
    /// The address of record's domain; empty: the registrar's host.
    pub domain: String,
    /// The digest user name; empty: `user`.
    pub auth_user: String,
    /// The digest password; none for a registrar that does not challenge.
    pub password: Option<Secret>,
    /// Answer challenges of this realm only; empty: whatever realm the trunk names.
    pub realm: String,
    /// The binding's lifetime asked for; renewed a minute before it ends (half-way for
    /// short ones).
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub expires_s: u64,
    /// `udp`, `tcp` or `tls`; empty: TLS for a `sips:` registrar, else the registrar URI's
    /// `transport` parameter, else UDP.
    pub transport: String,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            registrar: String::new(),
            user: String::new(),
            domain: String::new(),
            auth_user: String::new(),
            password: None,
            realm: String::new(),
            expires_s: 3600,
            transport: String::new(),
        }
    }
}

impl RegisterConfig {
    /// The registrar's URI, read.
    pub fn registrar_uri(&self) -> Option<SipUri<'_>> {
        SipUri::parse(&self.registrar)
    }

    /// How REGISTERs travel.
    pub fn transport(&self) -> Transport {
        Transport::from_name(&self.transport).unwrap_or_else(|| {
            self.registrar_uri()
                .map_or(Transport::Udp, |u| u.transport())
        })
    }

    /// The digest user name.
    pub fn auth_user(&self) -> &str {
        if self.auth_user.is_empty() {
            &self.user
        } else {
            &self.auth_user
        }
    }
}

impl TrunkConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let qualify = |key: &str, message: String| Problem {
            path: ["trunks", "qualify", key]
                .map(|k| PathKey::Key(k.to_owned()))
                .to_vec(),
            message,
        };
        let q = &self.qualify;
        if q.interval_s > 0 && (q.timeout_ms == 0 || q.timeout_ms >= q.interval_s * 1000) {
            out.push(qualify(
                "timeout_ms",
                format!(
                    "timeout_ms {} must be above 0 and below interval_s ({} s)",
                    q.timeout_ms, q.interval_s
                ),
            ));
        }
        for (key, n) in [("down_after", q.down_after), ("up_after", q.up_after)] {
            if n == 0 {
                out.push(qualify(key, format!("{key} must be at least 1")));
            }
        }
        for (name, trunk) in &self.named {
            if !trunk.uri.is_empty() && SipUri::parse(&trunk.uri).is_none() {
                out.push(Problem {
                    path: ["trunks", "named", name.as_str(), "uri"]
                        .map(|k| PathKey::Key(k.to_owned()))
                        .to_vec(),
                    message: format!(
                        "{:?} is not a SIP URI: write where the trunk takes calls as \"sip:host\" or \"sip:host:port\"",
                        trunk.uri
                    ),
                });
            }
            let Some(r) = &trunk.register else {
                continue;
            };
            let at = |key: &str, message: String| Problem {
                path: ["trunks", "named", name.as_str(), "register", key]
                    .map(|k| PathKey::Key(k.to_owned()))
                    .to_vec(),
                message,
            };
            if r.registrar_uri().is_none() {
                out.push(at(
                    "registrar",
                    format!(
                        "{:?} is not a SIP URI: write the registrar as \"sip:host\" or \"sip:host:port\"",
                        r.registrar
                    ),
                ));
            }
            if r.user.is_empty() {
                out.push(at("user", "the user to register is missing".into()));
            }
            if r.expires_s == 0 {
                out.push(at("expires_s", "expires_s must be at least 1".into()));
            }
            if !r.transport.is_empty() && Transport::from_name(&r.transport).is_none() {
                out.push(at(
                    "transport",
                    format!(
                        "transport {:?}: write \"udp\", \"tcp\" or \"tls\"",
                        r.transport
                    ),
                ));
            }
        }
        out
    }

    pub fn diagnostics(&self, file: &std::path::Path, text: &str) -> Vec<Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }

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
            qualify: QualifyConfig::default(),
            no_answer_ms: 4000,
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
    tls_port: u16,
    /// The registering trunks' credentials, by their registrar's address (one joins when
    /// a registrar's name resolves after the start).
    credentials: Arc<RwLock<Vec<(IpAddr, ClientCredentials)>>>,
    /// The probed trunks' and agents' reachability, as it last changed.
    peers: tokio::sync::watch::Receiver<Vec<PeerStatus>>,
}

impl EndpointHandle {
    /// Every probed trunk's and agent's status (`[trunks.qualify]`).
    pub fn peers(&self) -> tokio::sync::watch::Receiver<Vec<PeerStatus>> {
        self.peers.clone()
    }

    /// Whether OPTIONS probes found the named trunk down (calls skip it).
    pub fn trunk_down(&self, trunk: &str) -> bool {
        self.peers
            .borrow()
            .iter()
            .any(|p| p.kind == PeerKind::Trunk && p.name == trunk && p.state == Reach::Down)
    }

    /// The credentials of the trunk at `addr` (a registrar we register with), which
    /// answer its challenges to the requests of calls we send it.
    pub fn credentials_for(&self, addr: SocketAddr) -> Option<ClientCredentials> {
        let credentials = self.credentials.read().unwrap_or_else(|e| e.into_inner());
        credentials
            .iter()
            .find(|(ip, _)| *ip == addr.ip())
            .map(|(_, c)| c.clone())
    }

    /// Our address as `peer` reaches it (for Via, Contact and SDP): the configured public
    /// address, or the local address the kernel routes to the peer from, with the listening
    /// port of the peer's transport.
    pub fn local_addr(&self, peer: Peer) -> SocketAddr {
        let ip = self
            .public_ip
            .unwrap_or_else(|| event_loop::route_to(peer.addr));
        SocketAddr::new(ip, self.port(peer.transport))
    }

    /// Where `uri` points now (its host looked up; an address is taken as it is), and our
    /// address as it reaches us there: what a call's far leg or a probe is sent to.
    pub async fn locate(
        &self,
        uri: &crate::sip::uri::SipUri<'_>,
    ) -> std::io::Result<(Peer, SocketAddr)> {
        let addr = tokio::net::lookup_host((uri.host, uri.port_or_default()))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
        let peer = Peer {
            transport: uri.transport(),
            addr,
            conn: None,
        };
        Ok((peer, self.local_addr(peer)))
    }

    /// Our listening port for a transport.
    fn port(&self, transport: crate::sip::Transport) -> u16 {
        match transport {
            crate::sip::Transport::Udp => self.udp_port,
            crate::sip::Transport::Tcp => self.tcp_port,
            crate::sip::Transport::Tls => self.tls_port,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(text: &str) -> Vec<String> {
        let config = crate::config::Config::parse(Path::new("x.toml"), text).expect("parses");
        config
            .trunks
            .diagnostics(Path::new("x.toml"), text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_trunk_uri_and_probe_timing_that_cannot_work_are_reported_where_written() {
        let good = "[trunks.named.pbx1]\nuri = \"sip:pbx1.example:5070;transport=tcp\"\n\
                    [trunks.qualify]\ninterval_s = 10\ntimeout_ms = 2000\n";
        assert_eq!(check(good), Vec::<String>::new());
        let found = check("[trunks.named.pbx1]\nuri = \"pbx1.example\"\n");
        assert!(
            found.len() == 1
                && found[0].starts_with("x.toml:2:1: ")
                && found[0].contains("write where the trunk takes calls as \"sip:host\""),
            "{found:?}"
        );
        let found = check("[trunks.qualify]\ninterval_s = 5\ntimeout_ms = 5000\ndown_after = 0\n");
        assert!(
            found.len() == 2
                && found[0].starts_with("x.toml:3:")
                && found[0].contains("below interval_s (5 s)")
                && found[1].starts_with("x.toml:4:")
                && found[1].contains("down_after must be at least 1"),
            "{found:?}"
        );
        assert_eq!(
            check("[trunks.qualify]\ninterval_s = 0\ntimeout_ms = 0\n"),
            Vec::<String>::new(),
            "nothing is probed: its timing does not matter"
        );
    }
}
