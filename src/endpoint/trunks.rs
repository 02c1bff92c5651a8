//! The trunks the engine registers with, sans IO: each named trunk's `Registration`, where
//! its REGISTERs go, the client transactions they wait in, and what tells an incoming call
//! that it came through a registration (our Contact's `line` token, or the registrar's
//! address). It owns the registrations and their gauges; the endpoint core sends their
//! REGISTERs in its transactions and hands back the answers. No sockets, no clock.

#![warn(unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rsip::{Request, Response};

use crate::metrics::{Counter, Gauge, Registry};
use crate::sip::registration::{RegState, RegisterSettings, Registration};
use crate::sip::transaction::{ClientTxId, Peer};
use crate::sip::uri::SipUri;

/// One trunk to register, as the edge resolved it.
#[derive(Debug, Clone)]
pub struct TrunkRegistration {
    /// What to register.
    pub settings: RegisterSettings,
    /// The registrar's address.
    pub peer: Peer,
    /// The `line` parameter of our Contact: calls sent to the binding carry it.
    pub token: String,
}

/// A trunk's registration as the API shows it, taken when it last changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrunkStatus {
    /// The named trunk.
    pub trunk: String,
    /// `registering`, `registered`, `failed` or `stopped`.
    pub state: &'static str,
    /// Registered: the binding's lifetime the registrar granted, in seconds.
    pub expires_s: Option<u64>,
    /// Failed: what went wrong.
    pub reason: Option<String>,
    /// Failed: the wait before the next try, in seconds.
    pub retry_s: Option<u64>,
}

impl TrunkStatus {
    fn of(trunk: &str, state: &RegState, now: Instant) -> TrunkStatus {
        let secs = |t: Instant| Some(t.saturating_duration_since(now).as_secs());
        let (name, expires_s, reason, retry_s) = match state {
            RegState::Registering => ("registering", None, None, None),
            RegState::Registered { until } => ("registered", secs(*until), None, None),
            RegState::Failed { why, retry_at } => {
                ("failed", None, Some(why.clone()), secs(*retry_at))
            }
            RegState::Stopped => ("stopped", None, None, None),
        };
        TrunkStatus {
            trunk: trunk.to_owned(),
            state: name,
            expires_s,
            reason,
            retry_s,
        }
    }
}

struct Entry {
    reg: Registration,
    peer: Peer,
    token: String,
    registered: Arc<Gauge>,
    failures: Arc<Counter>,
    /// The registration's failures already counted.
    counted: u64,
    /// The state last reported.
    reported: Option<RegState>,
}

/// Every registration (see the module doc).
pub(super) struct Trunks {
    entries: Vec<Entry>,
    /// The REGISTER transactions in flight: which registration, and its CSeq.
    waiting: HashMap<ClientTxId, (usize, u32)>,
}

impl Trunks {
    pub(super) fn new(list: Vec<TrunkRegistration>, now: Instant, registry: &Registry) -> Trunks {
        let entries = list
            .into_iter()
            .map(|t| {
                let labels = [("trunk", t.settings.trunk.as_str())];
                Entry {
                    registered: registry.gauge(
                        "hotline_trunk_registered",
                        "1 while the trunk's registration is bound at its registrar",
                        &labels,
                    ),
                    failures: registry.counter(
                        "hotline_trunk_registration_failures_total",
                        "Registrations the trunk's registrar refused or left unanswered",
                        &labels,
                    ),
                    reg: Registration::new(t.settings, now),
                    peer: t.peer,
                    token: t.token,
                    counted: 0,
                    reported: None,
                }
            })
            .collect();
        Trunks {
            entries,
            waiting: HashMap::new(),
        }
    }

    /// Time has come to `now`; REGISTERs due go out through `send`.
    pub(super) fn handle_timeout(
        &mut self,
        now: Instant,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) {
        for e in &mut self.entries {
            if e.reg.poll_timeout().is_some_and(|t| t <= now) {
                e.reg.handle_timeout(now);
            }
        }
        self.flush(send);
    }

    /// The answer to a client transaction: `true` if it was one of our REGISTERs.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        response: &Response,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) -> bool {
        let Some(&(i, _)) = self.waiting.get(&tx) else {
            return false;
        };
        if response.status_code.code() >= 200 {
            self.waiting.remove(&tx);
        }
        self.entries[i].reg.handle_response(now, response);
        self.flush(send);
        true
    }

    /// A client transaction got no answer: `true` if it was one of our REGISTERs.
    pub(super) fn handle_no_answer(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) -> bool {
        let Some((i, seq)) = self.waiting.remove(&tx) else {
            return false;
        };
        self.entries[i].reg.handle_no_answer(now, seq);
        self.flush(send);
        true
    }

    /// The engine is stopping: every binding is removed (Expires: 0).
    pub(super) fn stop(&mut self, send: &mut dyn FnMut(Peer, Request) -> ClientTxId) {
        for e in &mut self.entries {
            e.reg.stop();
        }
        self.flush(send);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| e.reg.poll_timeout())
            .min()
    }

    /// The trunk whose registration an incoming request came through: its Request-URI
    /// carries our Contact's `line` token, or it came from the registrar's address.
    pub(super) fn trunk_of(&self, request_uri: &rsip::Uri, source: IpAddr) -> Option<&str> {
        if self.entries.is_empty() {
            return None;
        }
        let uri = request_uri.to_string();
        let line = SipUri::parse(&uri).and_then(|u| u.param("line"));
        self.entries
            .iter()
            .find(|e| line == Some(e.token.as_str()))
            .or_else(|| self.entries.iter().find(|e| e.peer.addr.ip() == source))
            .map(|e| e.reg.trunk())
    }

    /// Whether `ip` is a registering trunk's registrar: it may open connections to us (to
    /// relay the calls sent to our binding).
    pub(super) fn is_registrar(&self, ip: IpAddr) -> bool {
        self.entries.iter().any(|e| e.peer.addr.ip() == ip)
    }

    /// Each trunk's registration state.
    pub(super) fn states(&self) -> impl Iterator<Item = (&str, &RegState)> {
        self.entries.iter().map(|e| (e.reg.trunk(), e.reg.state()))
    }

    /// Every trunk's status, if any changed since the last call.
    pub(super) fn poll_changed(&mut self, now: Instant) -> Option<Vec<TrunkStatus>> {
        let changed = self
            .entries
            .iter()
            .any(|e| e.reported.as_ref() != Some(e.reg.state()));
        if !changed {
            return None;
        }
        Some(
            self.entries
                .iter_mut()
                .map(|e| {
                    e.reported = Some(e.reg.state().clone());
                    TrunkStatus::of(e.reg.trunk(), e.reg.state(), now)
                })
                .collect(),
        )
    }

    /// Sends what the registrations asked for and brings the gauges up to date.
    fn flush(&mut self, send: &mut dyn FnMut(Peer, Request) -> ClientTxId) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            while let Some(req) = e.reg.poll_request() {
                let seq = crate::sip::headers::cseq(&req.headers).map_or(0, |c| c.0);
                let tx = send(e.peer, req);
                self.waiting.insert(tx, (i, seq));
            }
            let bound = matches!(e.reg.state(), RegState::Registered { .. });
            e.registered.set(i64::from(bound));
            e.failures.add(e.reg.failures() - e.counted);
            e.counted = e.reg.failures();
        }
    }
}
