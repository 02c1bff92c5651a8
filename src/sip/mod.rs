//! SIP, sans-IO: message parsing and building (over rsip), stream framing, the RFC 3261
//! transaction layer and dialogs. Nothing here owns a socket, reads a clock or spawns a
//! task: callers pass `now` and bytes in, and take bytes and events out.

use std::time::Duration;

use serde::Deserialize;

/// How an agent's transfer of its caller (a REFER from the agent's phone) is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRefer {
    /// The engine calls the target and bridges the caller to it.
    Bridge,
    /// The engine REFERs the caller's trunk to the target and leaves the call.
    Refer,
}

/// The `[sip]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address; empty disables UDP.
    pub udp: String,
    /// TCP listen address; empty disables TCP.
    pub tcp: String,
    /// TLS listen address (SIP over TLS, RFC 3261 26.2, usually port 5061); empty disables
    /// it. Needs `tls_certificate` and `tls_private_key`. Calls out to `sips:` or
    /// `transport=tls` URIs use TLS whether or not this is set.
    pub tls: String,
    /// PEM file with the certificate chain the engine presents: to peers connecting to the
    /// TLS listener, and to servers asking for a client certificate.
    pub tls_certificate: String,
    /// PEM file with that certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_private_key: String,
    /// PEM file of the certificate authorities trusted to sign the certificates of servers
    /// the engine connects to by TLS (a carrier's own CA, or its self-signed certificate);
    /// empty: the system's bundle, `/etc/ssl/certs/ca-certificates.crt` (a file given
    /// replaces it). The server's name
    /// (the URI's host, or its IP address) must match its certificate.
    pub tls_ca: String,
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
    /// A REFER from the caller's side (its PBX transferring the call, blind or attended,
    /// RFC 3515) is carried out: the engine calls the Refer-To target, which takes the
    /// caller's place in the call (the IVR or the agent goes on with it). Only from the
    /// address the call came from, and only to that host or a named trunk's (403
    /// otherwise). false: 405.
    pub accept_refer: bool,
    /// What a REFER from an agent's phone (its transfer of the caller) does: `bridge`, the
    /// engine calls the target and bridges the caller to it, staying in the call; `refer`,
    /// the engine passes the transfer on to the caller's trunk by REFER and leaves the call
    /// once the trunk connected it (its media released), for PBXs that take REFER.
    pub agent_refer: AgentRefer,
    /// At SIGTERM the engine takes no new call (INVITE and OPTIONS get 503, so a proxy
    /// moves to another engine) and lets calls in progress go on for this long; then it
    /// hangs up (BYE) the calls left. A second SIGTERM hangs up at once.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub shutdown_grace_s: u64,
    /// The session interval (RFC 4028) the engine asks for when a caller's side asks for
    /// none; it refreshes such a session itself (by UPDATE when the peer allows it, else
    /// re-INVITE) and hangs up one whose peer was to refresh and did not. 0: ask for none
    /// (a caller's own Session-Expires is still honoured).
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub session_expires_s: u64,
    /// The shortest session interval accepted; a shorter one gets 422 with this Min-SE
    /// (RFC 4028 never allows below 90 s).
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub min_se_s: u64,
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
            tls: String::new(),
            tls_certificate: String::new(),
            tls_private_key: String::new(),
            tls_ca: String::new(),
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
            accept_refer: true,
            agent_refer: AgentRefer::Bridge,
            shutdown_grace_s: 30,
            session_expires_s: 1800,
            min_se_s: 90,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

impl SipConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<crate::diag::Problem> {
        use crate::diag::{PathKey, Problem};
        let at = |key: &str, message: String| Problem {
            path: vec![PathKey::Key("sip".to_owned()), PathKey::Key(key.to_owned())],
            message,
        };
        let floor = u64::from(session_timer::FLOOR_S);
        let mut out = Vec::new();
        if self.min_se_s < floor {
            out.push(at(
                "min_se_s",
                format!("min_se_s must be at least {floor} (RFC 4028)"),
            ));
        }
        if self.session_expires_s != 0 && self.session_expires_s < self.min_se_s {
            out.push(at(
                "session_expires_s",
                "session_expires_s is below min_se_s (write 0 to ask for no session timer)"
                    .to_owned(),
            ));
        }
        if !self.tls.trim().is_empty() {
            for (key, value) in [
                ("tls_certificate", &self.tls_certificate),
                ("tls_private_key", &self.tls_private_key),
            ] {
                if value.trim().is_empty() {
                    out.push(at(
                        key,
                        format!("the TLS listener needs {key} (a PEM file), or write tls = \"\""),
                    ));
                }
            }
        }
        if self.tls_certificate.trim().is_empty() != self.tls_private_key.trim().is_empty() {
            out.push(at(
                "tls_private_key",
                "tls_certificate and tls_private_key go together: write both or neither".to_owned(),
            ));
        }
        for (key, path) in [
            ("tls_certificate", &self.tls_certificate),
            ("tls_private_key", &self.tls_private_key),
            ("tls_ca", &self.tls_ca),
        ] {
            let path = path.trim();
            if !path.is_empty() && !std::path::Path::new(path).is_file() {
                out.push(at(
                    key,
                    format!("no file at {path:?} (a path from the directory the engine runs in)"),
                ));
            }
        }
        out
    }

    pub fn diagnostics(&self, file: &std::path::Path, text: &str) -> Vec<crate::diag::Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }

    /// How the caller's leg answers: ringing time, T1, session timers.
    pub fn answering(&self) -> crate::call::Answering {
        let secs = |s: u64| u32::try_from(s).unwrap_or(u32::MAX);
        crate::call::Answering {
            ring: Duration::from_millis(self.answer_delay_ms),
            t1: Duration::from_millis(self.t1_ms),
            timers: session_timer::TimerSettings {
                expires: secs(self.session_expires_s),
                min_se: secs(self.min_se_s),
            },
            takes_refer: self.accept_refer,
        }
    }

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
/// list, so an OPTIONS answer, a 405, a dialog's 200 and our INVITEs never disagree. INFO
/// carries keys inside a call; PRACK acknowledges reliable provisional responses (RFC
/// 3262); UPDATE refreshes a session (RFC 3311, 4028); NOTIFY reports on a REFER we sent
/// (RFC 3515). REGISTER is understood even without agents (every user is then unknown:
/// 403).
macro_rules! allow_list {
    () => {
        "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, PRACK, UPDATE, NOTIFY, REGISTER"
    };
}
pub const ALLOW: &str = allow_list!();
/// `ALLOW` and REFER: what an agent's dialog takes (its phone transfers the caller by
/// REFER), and the caller's with `[sip] accept_refer`.
pub const ALLOW_REFER: &str = concat!(allow_list!(), ", REFER");
/// The option tags (RFC 3261 19.2) we implement, as the Supported header sends them: a
/// Require of anything else gets 420. `100rel`: reliable provisional responses (RFC 3262);
/// `timer`: session timers (RFC 4028).
pub const SUPPORTED: &str = "100rel, timer";

/// What a dialog of ours takes, as its Allow says: with REFER where a transfer asked by
/// the other side is acted on.
pub fn allow_header(takes_refer: bool) -> &'static str {
    if takes_refer { ALLOW_REFER } else { ALLOW }
}

/// Whether `tag` is one of ours (`SUPPORTED`).
pub fn is_supported(tag: &str) -> bool {
    SUPPORTED
        .split(", ")
        .any(|s| s.eq_ignore_ascii_case(tag.trim()))
}

pub mod build;
pub mod dialog;
pub mod digest;
pub mod framing;
pub mod headers;
pub mod parse;
pub mod policy;
pub mod registration;
pub mod session_timer;
pub mod transaction;
pub mod uri;

/// How a message travels: datagrams, or a byte stream framed by Content-Length, plain or
/// inside TLS (RFC 3261 26.2; same framing, encrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The name used in Via and `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `;transport=` parameter a Contact or URI of ours carries (none for UDP, the
    /// default).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        }
    }

    /// The port a URI without one means (RFC 3261 19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// `udp`, `tcp` or `tls` as config files write it.
    pub fn from_name(name: &str) -> Option<Transport> {
        match name.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let c: SipConfig = toml::from_str(toml_text).expect("a [sip] section");
        c.problems()
            .into_iter()
            .map(|p| format!("{:?}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn a_tls_listener_needs_a_certificate_and_key_that_exist() {
        let p = problems("tls = \"0.0.0.0:5061\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("tls_certificate") && p[0].contains("a PEM file"),
            "{p:?}"
        );
        let p = problems(
            "tls = \"0.0.0.0:5061\"\ntls_certificate = \"/nonexistent/cert.pem\"\n\
             tls_private_key = \"Cargo.toml\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("no file at \"/nonexistent/cert.pem\""),
            "{p:?}"
        );
        let p = problems("tls_certificate = \"Cargo.toml\"\n");
        assert!(p[0].contains("go together"), "{p:?}");
        assert!(problems("").is_empty(), "TLS stays off by default");
    }
}
