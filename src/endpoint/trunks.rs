//! The trunks the engine registers with, sans IO: each named trunk's `Registration`, where
//! its REGISTERs go, the client transactions they wait in, and what tells an incoming call
//! that it came through a registration (our Contact's `line` token, or the registrar's
//! address). A trunk whose registrar's name did not resolve (DNS down as the engine
//! starts) waits here, failed, and asks the edge to look the name up again, later each
//! time, until it does; a registrar named by a host name that stops answering is looked
//! up again before the next try, so a carrier that moves its registrar is followed. It owns the registrations and their gauges; the endpoint core
//! sends their REGISTERs in its transactions and hands back the answers. No sockets, no
//! clock, no name lookups.

#![warn(unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The first wait before a registrar's name is looked up again; it doubles up to `MAX_LOOKUP_WAIT`.
const FIRST_LOOKUP_WAIT: Duration = Duration::from_secs(5);
const MAX_LOOKUP_WAIT: Duration = Duration::from_secs(300);

/// What the edge made of a trunk's registrar at start.
#[derive(Debug, Clone)]
pub enum TrunkLookup {
    /// Resolved: register.
    Resolved(Box<TrunkRegistration>),
    /// The registrar's name did not resolve (`why`): look it up again later.
    Unresolved {
        /// The named trunk.
        trunk: String,
        /// What the lookup said.
        why: String,
    },
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
    trunk: String,
    binding: Binding,
    registered: Arc<Gauge>,
    failures: Arc<Counter>,
    /// The registration's failures already counted.
    counted: u64,
    /// The state last reported.
    reported: Option<RegState>,
}

/// A trunk registering, or waiting for its registrar's name to resolve.
enum Binding {
    Registering {
        reg: Box<Registration>,
        peer: Peer,
        token: String,
        /// The registrar is named by a host name, which may point elsewhere now.
        named: bool,
        /// Its REGISTER went unanswered: the name is to be looked up again (`Some(false)`),
        /// or the edge is looking it up (`Some(true)`).
        relookup: Option<bool>,
    },
    /// `state` is `Failed` with the lookup's error and when it is tried again; `asked`
    /// while the edge looks the name up.
    Unresolved {
        state: RegState,
        wait: Duration,
        asked: bool,
    },
}

impl Entry {
    fn state(&self) -> &RegState {
        match &self.binding {
            Binding::Registering { reg, .. } => reg.state(),
            Binding::Unresolved { state, .. } => state,
        }
    }

    fn peer(&self) -> Option<&Peer> {
        match &self.binding {
            Binding::Registering { peer, .. } => Some(peer),
            Binding::Unresolved { .. } => None,
        }
    }

    fn registration(&mut self) -> Option<&mut Registration> {
        match &mut self.binding {
            Binding::Registering { reg, .. } => Some(reg),
            Binding::Unresolved { .. } => None,
        }
    }

    /// When it next needs the clock.
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.binding {
            Binding::Registering { reg, .. } => reg.poll_timeout(),
            Binding::Unresolved {
                state: RegState::Failed { retry_at, .. },
                asked: false,
                ..
            } => Some(*retry_at),
            Binding::Unresolved { .. } => None,
        }
    }

    /// The registrar's address is known: register from `now`.
    fn bind(&mut self, t: TrunkRegistration, now: Instant) {
        self.counted = 0;
        let named =
            SipUri::parse(&t.settings.registrar).is_some_and(|u| u.host.parse::<IpAddr>().is_err());
        self.binding = Binding::Registering {
            reg: Box::new(Registration::new(t.settings, now)),
            peer: t.peer,
            token: t.token,
            named,
            relookup: None,
        };
    }

    /// The lookup failed (again): wait longer before the next.
    fn unresolved(&mut self, now: Instant, why: &str, wait: Duration) {
        let why = format!("the registrar's name does not resolve: {why}");
        tracing::warn!(trunk = %self.trunk, %why, retry_in_s = wait.as_secs(), "registration failed");
        self.binding = Binding::Unresolved {
            state: RegState::Failed {
                why,
                retry_at: now + wait,
            },
            wait: (wait * 2).min(MAX_LOOKUP_WAIT),
            asked: false,
        };
        self.failures.inc();
    }
}

/// Every registration (see the module doc).
pub(super) struct Trunks {
    entries: Vec<Entry>,
    /// The REGISTER transactions in flight: which registration, and its CSeq.
    waiting: HashMap<ClientTxId, (usize, u32)>,
}

impl Trunks {
    pub(super) fn new(list: Vec<TrunkLookup>, now: Instant, registry: &Registry) -> Trunks {
        let entries = list
            .into_iter()
            .map(|lookup| {
                let trunk = match &lookup {
                    TrunkLookup::Resolved(t) => t.settings.trunk.clone(),
                    TrunkLookup::Unresolved { trunk, .. } => trunk.clone(),
                };
                let labels = [("trunk", trunk.as_str())];
                let mut entry = Entry {
                    registered: registry.gauge(
                        "hotline_trunk_registered",
                        "1 while the trunk's registration is bound at its registrar",
                        &labels,
                    ),
                    failures: registry.counter(
                        "hotline_trunk_registration_failures_total",
                        "Registrations the trunk's registrar refused or left unanswered, or whose registrar's name did not resolve",
                        &labels,
                    ),
                    trunk,
                    binding: Binding::Unresolved {
                        state: RegState::Registering,
                        wait: FIRST_LOOKUP_WAIT,
                        asked: true,
                    },
                    counted: 0,
                    reported: None,
                };
                match lookup {
                    TrunkLookup::Resolved(t) => entry.bind(*t, now),
                    TrunkLookup::Unresolved { why, .. } => {
                        entry.unresolved(now, &why, FIRST_LOOKUP_WAIT)
                    }
                }
                entry
            })
            .collect();
        Trunks {
            entries,
            waiting: HashMap::new(),
        }
    }

    /// The trunks whose registrar's name is due to be looked up again; each is named
    /// once, and waits for `handle_lookup`.
    pub(super) fn poll_lookup(&mut self, now: Instant) -> Option<String> {
        self.entries.iter_mut().find_map(|e| match &mut e.binding {
            Binding::Registering {
                relookup: Some(asked @ false),
                ..
            } => {
                *asked = true;
                Some(e.trunk.clone())
            }
            Binding::Unresolved {
                state: RegState::Failed { retry_at, .. },
                asked,
                ..
            } if !*asked && *retry_at <= now => {
                *asked = true;
                Some(e.trunk.clone())
            }
            _ => None,
        })
    }

    /// The edge looked a registrar's name up again: register now, or wait longer. `true`
    /// if the trunk now registers with it (not when the engine stopped meanwhile).
    pub(super) fn handle_lookup(
        &mut self,
        now: Instant,
        trunk: &str,
        result: Result<TrunkRegistration, String>,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) -> bool {
        let Some(e) = self.entries.iter_mut().find(|e| e.trunk == trunk) else {
            return false;
        };
        if let Binding::Registering {
            peer,
            relookup,
            reg,
            ..
        } = &mut e.binding
        {
            if *relookup != Some(true) || *reg.state() == RegState::Stopped {
                return false;
            }
            *relookup = None;
            // The next try (after the failure's backoff) goes where the name points now.
            return match result {
                Ok(t) if t.peer.addr != peer.addr => {
                    tracing::info!(trunk = %e.trunk, from = %peer.addr, to = %t.peer.addr, "the registrar's name points elsewhere now");
                    *peer = t.peer;
                    true
                }
                _ => false,
            };
        }
        let Binding::Unresolved {
            state: RegState::Failed { .. },
            wait,
            asked: true,
        } = &e.binding
        else {
            return false;
        };
        let wait = *wait;
        let bound = match result {
            Ok(t) => {
                e.bind(t, now);
                true
            }
            Err(why) => {
                e.unresolved(now, &why, wait);
                false
            }
        };
        self.flush(send);
        bound
    }

    /// Time has come to `now`; REGISTERs due go out through `send`.
    pub(super) fn handle_timeout(
        &mut self,
        now: Instant,
        send: &mut dyn FnMut(Peer, Request) -> ClientTxId,
    ) {
        for reg in self.entries.iter_mut().filter_map(Entry::registration) {
            if reg.poll_timeout().is_some_and(|t| t <= now) {
                reg.handle_timeout(now);
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
        if let Some(reg) = self.entries[i].registration() {
            reg.handle_response(now, response);
        }
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
        if let Binding::Registering {
            reg,
            named,
            relookup,
            ..
        } = &mut self.entries[i].binding
        {
            reg.handle_no_answer(now, seq);
            if *named && relookup.is_none() && matches!(reg.state(), RegState::Failed { .. }) {
                *relookup = Some(false);
            }
        }
        self.flush(send);
        true
    }

    /// The engine is stopping: every binding is removed (Expires: 0).
    pub(super) fn stop(&mut self, send: &mut dyn FnMut(Peer, Request) -> ClientTxId) {
        for e in &mut self.entries {
            match &mut e.binding {
                Binding::Registering { reg, relookup, .. } => {
                    reg.stop();
                    *relookup = None;
                }
                // No more lookups, and a late answer to one is not taken.
                Binding::Unresolved { state, .. } => *state = RegState::Stopped,
            }
        }
        self.flush(send);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.entries.iter().filter_map(Entry::poll_timeout).min()
    }

    /// The trunk whose registration an incoming request came through: its Request-URI
    /// carries our Contact's `line` token, or it came from the registrar's address.
    pub(super) fn trunk_of(&self, request_uri: &rsip::Uri, source: IpAddr) -> Option<&str> {
        if self.entries.is_empty() {
            return None;
        }
        let uri = request_uri.to_string();
        let line = SipUri::parse(&uri).and_then(|u| u.param("line"));
        let token = |e: &&Entry| match &e.binding {
            Binding::Registering { token, .. } => line == Some(token.as_str()),
            Binding::Unresolved { .. } => false,
        };
        self.entries
            .iter()
            .find(token)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.peer().is_some_and(|p| p.addr.ip() == source))
            })
            .map(|e| e.trunk.as_str())
    }

    /// Whether `ip` is a registering trunk's registrar: it may open connections to us (to
    /// relay the calls sent to our binding).
    pub(super) fn is_registrar(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .any(|e| e.peer().is_some_and(|p| p.addr.ip() == ip))
    }

    /// Each trunk's registration state.
    pub(super) fn states(&self) -> impl Iterator<Item = (&str, &RegState)> {
        self.entries.iter().map(|e| (e.trunk.as_str(), e.state()))
    }

    /// Every trunk's status, if any changed since the last call.
    pub(super) fn poll_changed(&mut self, now: Instant) -> Option<Vec<TrunkStatus>> {
        let changed = self
            .entries
            .iter()
            .any(|e| e.reported.as_ref() != Some(e.state()));
        if !changed {
            return None;
        }
        Some(
            self.entries
                .iter_mut()
                .map(|e| {
                    e.reported = Some(e.state().clone());
                    TrunkStatus::of(&e.trunk, e.state(), now)
                })
                .collect(),
        )
    }

    /// Sends what the registrations asked for and brings the gauges up to date.
    fn flush(&mut self, send: &mut dyn FnMut(Peer, Request) -> ClientTxId) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            let bound = matches!(e.state(), RegState::Registered { .. });
            e.registered.set(i64::from(bound));
            let Binding::Registering { reg, peer, .. } = &mut e.binding else {
                continue;
            };
            while let Some(req) = reg.poll_request() {
                let seq = crate::sip::headers::cseq(&req.headers).map_or(0, |c| c.0);
                let tx = send(*peer, req);
                self.waiting.insert(tx, (i, seq));
            }
            e.failures.add(reg.failures() - e.counted);
            e.counted = reg.failures();
        }
    }
}
