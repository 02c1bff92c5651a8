//! OPTIONS qualify, sans IO: which trunks and agents (reached by URI) answer, decided from
//! probes sent every `interval`, with hysteresis so that one lost datagram does not take
//! a trunk out of service nor one lucky answer put it back. It owns each peer's state,
//! its probes in flight and its gauges; the endpoint core sends the OPTIONS in its client
//! transactions and hands back their answers, and the edge looks each peer's name up
//! before each probe (so a trunk that moves is followed). No sockets, no clock, no lookups.
//!
//! A peer that answers at all is up, whatever the code: a PBX that does not know the
//! Request-URI's user, or takes no OPTIONS, still answers INVITEs. Only 408, 480, 503 and
//! 504 (it says it cannot take requests now), no answer within `timeout`, a transport
//! error or a name that does not resolve count as failed probes.

#![warn(unreachable_pub, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsip::{Header, Headers, Method, Request, Response};

use crate::metrics::{Counter, Gauge, Registry};
use crate::sip::build;
use crate::sip::transaction::{ClientTxId, Peer};

/// How peers are probed.
#[derive(Debug, Clone, Copy)]
pub struct QualifySettings {
    /// From one probe's start to the next's.
    pub interval: Duration,
    /// A probe unanswered this long failed.
    pub timeout: Duration,
    /// Failed probes in a row that take an up (or not yet known) peer down.
    pub down_after: u32,
    /// Answered probes in a row that bring a down peer back up.
    pub up_after: u32,
}

/// What a probed peer is to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// A named trunk (`[trunks.named.NAME] uri`).
    Trunk,
    /// An agent on the PBX (`[[acd.agents]] uri`).
    Agent,
}

impl PeerKind {
    /// The name metrics and events use.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::Trunk => "trunk",
            PeerKind::Agent => "agent",
        }
    }
}

/// Where a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Not probed to a conclusion yet: calls still go to it.
    Unknown,
    /// Answering.
    Up,
    /// Not answering: calls skip it.
    Down,
}

/// A peer to probe.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The trunk's or agent's name.
    pub name: String,
    /// Which of the two.
    pub kind: PeerKind,
    /// The SIP URI probed (the Request-URI of the OPTIONS).
    pub uri: String,
}

/// Where the edge found a peer: its address and our Via sent-by as it reaches us.
#[derive(Debug, Clone)]
pub struct ProbeAddress {
    /// The peer's address and transport.
    pub peer: Peer,
    /// `host:port` we are reached at from there.
    pub sent_by: String,
}

/// A peer's reachability, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    /// The trunk's or agent's name.
    pub name: String,
    /// `trunk` or `agent`.
    pub kind: PeerKind,
    /// The URI probed.
    pub uri: String,
    /// `unknown`, `up` or `down`.
    pub state: Reach,
    /// The last answered probe's round trip, in milliseconds.
    pub rtt_ms: Option<u64>,
    /// Why the last probe failed, if it did.
    pub reason: Option<String>,
}

/// A peer went up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachChange {
    /// The trunk's or agent's name.
    pub name: String,
    /// Which of the two.
    pub kind: PeerKind,
    /// Up (answering) or down.
    pub up: bool,
    /// Down: why the last probe failed.
    pub reason: Option<String>,
}

/// Which peer a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerId(usize);

/// Where a peer's probing stands.
#[derive(Debug)]
enum Probe {
    /// The next probe starts at `due`.
    Idle { due: Instant },
    /// The edge is looking the peer's name up for the probe that started at `started`.
    LookingUp { started: Instant },
    /// The OPTIONS went out at `sent` in `tx`.
    Waiting {
        tx: ClientTxId,
        started: Instant,
        sent: Instant,
    },
}

struct Probed {
    target: ProbeTarget,
    state: Reach,
    answered: u32,
    failed: u32,
    probe: Probe,
    rtt: Option<Duration>,
    reason: Option<String>,
    up: Arc<Gauge>,
    failures: Arc<Counter>,
}

/// Every probed peer (see the module doc).
pub(super) struct Qualify {
    settings: QualifySettings,
    peers: Vec<Probed>,
    /// OPTIONS transactions in flight, to the peer they probe.
    waiting: HashMap<ClientTxId, usize>,
    lookups: VecDeque<PeerId>,
    changes: VecDeque<ReachChange>,
    changed: bool,
    stopped: bool,
}

/// The codes a peer that cannot take requests now answers with.
const REFUSING: [u16; 4] = [408, 480, 503, 504];

impl Qualify {
    /// Probes `targets` from `now` on.
    pub(super) fn new(
        settings: QualifySettings,
        targets: Vec<ProbeTarget>,
        now: Instant,
        registry: &Registry,
    ) -> Qualify {
        let peers = targets
            .into_iter()
            .map(|target| {
                let labels = [
                    ("peer", target.name.as_str()),
                    ("kind", target.kind.as_str()),
                ];
                Probed {
                    up: registry.gauge(
                        "hotline_peer_up",
                        "1 while the trunk or agent answers OPTIONS probes ([trunks.qualify])",
                        &labels,
                    ),
                    failures: registry.counter(
                        "hotline_peer_probe_failures_total",
                        "OPTIONS probes the trunk or agent left unanswered or refused",
                        &labels,
                    ),
                    target,
                    state: Reach::Unknown,
                    answered: 0,
                    failed: 0,
                    probe: Probe::Idle { due: now },
                    rtt: None,
                    reason: None,
                }
            })
            .collect();
        Qualify {
            settings,
            peers,
            waiting: HashMap::new(),
            lookups: VecDeque::new(),
            changes: VecDeque::new(),
            changed: true,
            stopped: false,
        }
    }

    /// Time has come to `now`: probes due start (by asking for a lookup), probes
    /// unanswered for `timeout` fail.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        for i in 0..self.peers.len() {
            match self.peers[i].probe {
                Probe::Idle { due } if due <= now => {
                    self.peers[i].probe = Probe::LookingUp { started: now };
                    self.lookups.push_back(PeerId(i));
                }
                Probe::Waiting { sent, started, .. } if sent + self.settings.timeout <= now => {
                    let why = format!(
                        "no answer to OPTIONS in {} ms",
                        self.settings.timeout.as_millis()
                    );
                    self.failed(i, now, started, why);
                }
                _ => {}
            }
        }
    }

    /// The next peer whose name the edge must look up, with the URI to look up.
    pub(super) fn poll_lookup(&mut self) -> Option<(PeerId, String)> {
        let id = self.lookups.pop_front()?;
        Some((id, self.peers[id.0].target.uri.clone()))
    }

    /// The edge looked a peer up: the OPTIONS goes out through `send`, or the probe failed.
    pub(super) fn handle_lookup(
        &mut self,
        now: Instant,
        id: PeerId,
        found: Result<ProbeAddress, String>,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) {
        let Some(p) = self.peers.get_mut(id.0) else {
            return;
        };
        let Probe::LookingUp { started } = p.probe else {
            return;
        };
        if self.stopped {
            p.probe = Probe::Idle {
                due: started + self.settings.interval,
            };
            return;
        }
        match found.and_then(|a| options(&p.target.uri, &a).map(|r| (a.peer, r))) {
            Ok((peer, request)) => {
                let tx = send(peer, request);
                self.waiting.insert(tx, id.0);
                self.peers[id.0].probe = Probe::Waiting {
                    tx,
                    started,
                    sent: now,
                };
            }
            Err(why) => self.failed(id.0, now, started, why),
        }
    }

    /// The answer to a client transaction: `true` if it was one of our OPTIONS.
    pub(super) fn handle_response(&mut self, now: Instant, tx: ClientTxId, r: &Response) -> bool {
        let code = r.status_code.code();
        let Some(&i) = self.waiting.get(&tx) else {
            return false;
        };
        if code < 200 {
            return true;
        }
        self.waiting.remove(&tx);
        if let Probe::Waiting {
            tx: current,
            started,
            sent,
        } = self.peers[i].probe
            && current == tx
        {
            if REFUSING.contains(&code) {
                let why = format!("answered OPTIONS {code} {}", build::reason_phrase(code));
                self.failed(i, now, started, why);
            } else {
                self.answered(i, now, started, now.saturating_duration_since(sent));
            }
        }
        true
    }

    /// A client transaction ended unanswered (or its transport failed): `true` if it was
    /// one of our OPTIONS.
    pub(super) fn handle_no_answer(&mut self, now: Instant, tx: ClientTxId) -> bool {
        let Some(i) = self.waiting.remove(&tx) else {
            return false;
        };
        if let Probe::Waiting {
            tx: current,
            started,
            ..
        } = self.peers[i].probe
            && current == tx
        {
            self.failed(i, now, started, "no answer to OPTIONS".into());
        }
        true
    }

    /// The engine is stopping: no probe starts from now on.
    pub(super) fn stop(&mut self) {
        self.stopped = true;
        self.lookups.clear();
    }

    /// When `handle_timeout` must next run.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        self.peers
            .iter()
            .filter_map(|p| match p.probe {
                Probe::Idle { due } => Some(due),
                Probe::Waiting { sent, .. } => Some(sent + self.settings.timeout),
                Probe::LookingUp { .. } => None,
            })
            .min()
    }

    /// The next peer that went up or down.
    pub(super) fn poll_change(&mut self) -> Option<ReachChange> {
        self.changes.pop_front()
    }

    /// Every peer's status, if any changed since the last call.
    pub(super) fn poll_statuses(&mut self) -> Option<Vec<PeerStatus>> {
        if !std::mem::take(&mut self.changed) || self.peers.is_empty() {
            return None;
        }
        Some(
            self.peers
                .iter()
                .map(|p| PeerStatus {
                    name: p.target.name.clone(),
                    kind: p.target.kind,
                    uri: p.target.uri.clone(),
                    state: p.state,
                    rtt_ms: p.rtt.map(|d| d.as_millis() as u64),
                    reason: p.reason.clone(),
                })
                .collect(),
        )
    }

    fn answered(&mut self, i: usize, now: Instant, started: Instant, rtt: Duration) {
        let settings = self.settings;
        let p = &mut self.peers[i];
        p.answered += 1;
        p.failed = 0;
        p.rtt = Some(rtt);
        p.reason = None;
        p.probe = Probe::Idle {
            due: next_due(now, started, settings.interval),
        };
        // A peer not known yet is taken at its first answer: calls went to it anyway.
        if p.state == Reach::Unknown || (p.state == Reach::Down && p.answered >= settings.up_after)
        {
            self.set(i, Reach::Up);
        }
        self.changed = true;
    }

    fn failed(&mut self, i: usize, now: Instant, started: Instant, why: String) {
        let settings = self.settings;
        let p = &mut self.peers[i];
        tracing::debug!(peer = %p.target.name, kind = p.target.kind.as_str(), %why, "probe failed");
        p.failed += 1;
        p.answered = 0;
        p.failures.inc();
        p.reason = Some(why);
        p.probe = Probe::Idle {
            due: next_due(now, started, settings.interval),
        };
        if p.state != Reach::Down && p.failed >= settings.down_after {
            self.set(i, Reach::Down);
        }
        self.changed = true;
    }

    fn set(&mut self, i: usize, state: Reach) {
        let p = &mut self.peers[i];
        p.state = state;
        p.up.set(i64::from(state == Reach::Up));
        let up = state == Reach::Up;
        if up {
            tracing::info!(peer = %p.target.name, kind = p.target.kind.as_str(), "peer answers: up");
        } else {
            tracing::warn!(peer = %p.target.name, kind = p.target.kind.as_str(), reason = ?p.reason, "peer does not answer: down");
        }
        self.changes.push_back(ReachChange {
            name: p.target.name.clone(),
            kind: p.target.kind,
            up,
            reason: (!up).then(|| p.reason.clone()).flatten(),
        });
    }
}

/// One interval after the probe started, and never in the past.
fn next_due(now: Instant, started: Instant, interval: Duration) -> Instant {
    (started + interval).max(now)
}

/// The OPTIONS that probes `uri` at `at`.
fn options(uri: &str, at: &ProbeAddress) -> Result<Request, String> {
    let uri = uri.trim_matches(['<', '>']);
    let request_uri =
        crate::sip::uri::to_rsip(uri).ok_or_else(|| format!("{uri:?} is not a SIP URI"))?;
    let mut h = Headers::default();
    h.push(build::via(
        at.peer.transport,
        &at.sent_by,
        &build::new_branch(),
    ));
    h.push(Header::MaxForwards("70".into()));
    h.push(Header::From(
        format!("<sip:hotline@{}>;tag={}", at.sent_by, build::new_tag()).into(),
    ));
    h.push(Header::To(format!("<{uri}>").into()));
    h.push(Header::CallId(build::new_call_id().into()));
    h.push(Header::CSeq("1 OPTIONS".into()));
    h.push(Header::Accept("application/sdp".into()));
    h.push(Header::ContentLength("0".into()));
    Ok(Request {
        method: Method::Options,
        uri: request_uri,
        version: rsip::Version::V2,
        headers: h,
        body: Vec::new(),
    })
}

#[cfg(test)]
#[path = "qualify_tests.rs"]
mod tests;
