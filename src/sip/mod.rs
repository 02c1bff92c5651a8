//! SIP, sans-IO: message parsing and building (over rsip), stream framing, the RFC 3261
//! transaction layer and dialogs. Nothing here owns a socket, reads a clock or spawns a
//! task: callers pass `now` and bytes in, and take bytes and events out.

use std::time::Duration;

use serde::Deserialize;

/// The `[sip]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address; empty disables UDP.
    pub udp: String,
    /// TCP listen address; empty disables TCP.
    pub tcp: String,
    /// Address written into Contact and SDP. Empty: the local address that routes to the peer.
    pub public_address: String,
    /// Value of the Server and User-Agent headers.
    pub user_agent: String,
    /// Calls in progress above which new INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// Live server transactions above which any new request gets 503 with Retry-After,
    /// answered without keeping state (a request flood must not grow memory without end).
    pub max_transactions: usize,
    /// New calls per second above which INVITEs get 503; 0: no fixed limit (the engine
    /// still sheds when it falls behind on its input).
    pub max_cps: u32,
    /// Also shed new calls (503) while the engine stays behind on its input or its media
    /// ticks run late; false leaves only `max_calls` and `max_cps`.
    pub adaptive_shedding: bool,
    /// Share refusals out between sources: past three quarters of `max_calls` no source
    /// may hold more than its share (the last quarter is kept for others), and while
    /// shedding, sources admitted less than the average still get in. Turn off when one
    /// trunk carries every call.
    pub fair_share: bool,
    /// Open TCP connections at most (ours included); fewer if the descriptor limit must
    /// keep room for every call's RTP sockets (see `tcp_connection_cap`).
    pub tcp_max_connections: usize,
    /// TCP connections one source address may hold.
    pub tcp_max_per_source: usize,
    /// Seconds a TCP connection may send nothing (not even a CRLF keep-alive) before it
    /// is closed.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub tcp_idle_s: u64,
    /// Seconds a TCP connection has to finish a message it began (and its first one).
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub tcp_message_deadline_s: u64,
    /// How long a caller hears ringing (180) before the engine answers.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub answer_delay_ms: u64,
    /// At SIGTERM the engine takes no new call (INVITE and OPTIONS get 503, so a proxy
    /// moves to another engine) and lets calls in progress go on for this long; then it
    /// hangs up (BYE) the calls left. A second SIGTERM hangs up at once.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub shutdown_grace_s: u64,
    /// RFC 3261 timer base values, in milliseconds.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub t1_ms: u64,
    #[serde(deserialize_with = "crate::duration::millis")]
    pub t2_ms: u64,
    #[serde(deserialize_with = "crate::duration::millis")]
    pub t4_ms: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: "0.0.0.0:5060".into(),
            tcp: "0.0.0.0:5060".into(),
            public_address: String::new(),
            user_agent: concat!("hotline/", env!("CARGO_PKG_VERSION")).into(),
            max_calls: 5000,
            max_transactions: transaction::DEFAULT_MAX_SERVER,
            max_cps: 0,
            adaptive_shedding: true,
            fair_share: true,
            tcp_max_connections: 4096,
            tcp_max_per_source: 256,
            tcp_idle_s: 600,
            tcp_message_deadline_s: 20,
            answer_delay_ms: 0,
            shutdown_grace_s: 30,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

impl SipConfig {
    pub fn timers(&self) -> Timers {
        Timers {
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms),
            t4: Duration::from_millis(self.t4_ms),
        }
    }
}

/// The RFC 3261 timer base values every transaction timer derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        SipConfig::default().timers()
    }
}

/// The methods the engine answers, in every Allow header it sends (RFC 3261 20.5): one
/// list, so an OPTIONS answer, a 405 and a dialog's 200 never disagree. INFO carries keys
/// inside a call.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";
/// `ALLOW` for an engine with a registrar (agent phones configured).
pub const ALLOW_WITH_REGISTER: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER";

pub mod build;
pub mod dialog;
pub mod framing;
pub mod headers;
pub mod parse;
pub mod policy;
pub mod transaction;
pub mod uri;

/// How a message travels: datagrams, or a byte stream framed by Content-Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The name used in Via and `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}
