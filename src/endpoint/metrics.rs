//! The endpoint's counters and gauges: what the endpoint core counts as it handles SIP
//! (messages, drops, refusals, responses by status, retransmissions, registrar verdicts and
//! lockouts), written straight into the metrics registry. Only the core writes them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::metrics::{Counter, Gauge, Registry};
use crate::registrar::{AuthCounters, Held};
use crate::sip::transaction::Counts;

/// The registrar's answers by verdict, and its lockouts, as counters.
pub(super) struct RegistrarMetrics {
    counters: Vec<Arc<Counter>>,
    reported: AuthCounters,
    /// Lockouts of a user and of a source address.
    lockouts: [Arc<Counter>; 2],
}

impl RegistrarMetrics {
    const VERDICTS: [&'static str; 9] = [
        "challenged",
        "registered",
        "stale",
        "wrong_credentials",
        "unknown_user",
        "replay",
        "bad_request",
        "held",
        "source_not_allowed",
    ];

    pub(super) fn new(registry: &Registry) -> RegistrarMetrics {
        RegistrarMetrics {
            counters: Self::VERDICTS
                .iter()
                .map(|v| {
                    registry.counter(
                        "hotline_registrar_answers_total",
                        "REGISTER requests answered, by verdict",
                        &[("verdict", v)],
                    )
                })
                .collect(),
            reported: AuthCounters::default(),
            lockouts: ["user", "source"].map(|by| {
                registry.counter(
                    "hotline_registrar_lockouts_total",
                    "Users and source addresses locked out after max_failures wrong passwords",
                    &[("by", by)],
                )
            }),
        }
    }

    pub(super) fn lockout(&self, held: Held) {
        let i = match held {
            Held::User => 0,
            Held::Source => 1,
        };
        self.lockouts[i].inc();
    }

    pub(super) fn update(&mut self, now: &AuthCounters) {
        let pairs = |c: &AuthCounters| {
            [
                c.challenges,
                c.registered,
                c.stale,
                c.wrong_credentials,
                c.unknown_users,
                c.replays,
                c.bad_requests,
                c.held,
                c.not_allowed,
            ]
        };
        for ((counter, new), old) in self
            .counters
            .iter()
            .zip(pairs(now))
            .zip(pairs(&self.reported))
        {
            counter.add(new - old);
        }
        self.reported = now.clone();
    }
}

/// A counter family labelled by `reason`, each series looked up in the registry once.
struct ByReason {
    name: &'static str,
    help: &'static str,
    series: HashMap<&'static str, Arc<Counter>>,
}

impl ByReason {
    fn new(name: &'static str, help: &'static str) -> ByReason {
        ByReason {
            name,
            help,
            series: HashMap::new(),
        }
    }

    fn inc(&mut self, registry: &Registry, reason: &'static str) {
        self.series
            .entry(reason)
            .or_insert_with(|| registry.counter(self.name, self.help, &[("reason", reason)]))
            .inc();
    }
}

pub(super) struct Metrics {
    registry: Arc<Registry>,
    pub(super) received: Arc<Counter>,
    dropped: ByReason,
    shed: ByReason,
    tcp_refused: ByReason,
    tcp_closed: ByReason,
    pub(super) rejected: Arc<Counter>,
    responses: HashMap<u16, Arc<Counter>>,
    retransmissions: Arc<Counter>,
    pub(super) calls: Arc<Gauge>,
    pub(super) tcp_connections: Arc<Gauge>,
    transactions: Arc<Gauge>,
    reported_retransmissions: u64,
    /// Requests refused at `max_transactions`.
    refused_full: Arc<Counter>,
    reported_refused_full: u64,
}

impl Metrics {
    pub(super) fn new(registry: &Arc<Registry>) -> Metrics {
        Metrics {
            registry: registry.clone(),
            received: registry.counter(
                "hotline_sip_messages_received_total",
                "SIP messages received",
                &[],
            ),
            dropped: ByReason::new(
                "hotline_sip_dropped_total",
                "SIP datagrams or frames dropped without an answer",
            ),
            shed: ByReason::new(
                "hotline_calls_shed_total",
                "New calls refused with 503 to protect the calls in progress",
            ),
            tcp_refused: ByReason::new(
                "hotline_sip_tcp_refused_total",
                "TCP connections closed at accept (source not allowed, or a cap reached)",
            ),
            tcp_closed: ByReason::new(
                "hotline_sip_tcp_closed_total",
                "TCP connections the engine closed (idle, or a message not finished in time)",
            ),
            rejected: registry.counter(
                "hotline_sip_malformed_rejected_total",
                "Malformed requests answered with an error before reaching a transaction",
                &[],
            ),
            responses: HashMap::new(),
            retransmissions: registry.counter(
                "hotline_sip_retransmissions_total",
                "SIP messages we sent again (lost or late peers)",
                &[],
            ),
            calls: registry.gauge("hotline_calls", "Calls in progress", &[]),
            tcp_connections: registry.gauge(
                "hotline_sip_tcp_connections",
                "Open SIP TCP connections",
                &[],
            ),
            transactions: registry.gauge("hotline_sip_transactions", "Live SIP transactions", &[]),
            reported_retransmissions: 0,
            refused_full: registry.counter(
                "hotline_sip_refused_full_total",
                "New requests answered 503 without a transaction: max_transactions were live",
                &[],
            ),
            reported_refused_full: 0,
        }
    }

    pub(super) fn shed(&mut self, reason: &'static str) {
        self.shed.inc(&self.registry, reason);
    }

    pub(super) fn dropped(&mut self, reason: &'static str) {
        self.dropped.inc(&self.registry, reason);
    }

    pub(super) fn tcp_refused(&mut self, reason: &'static str) {
        self.tcp_refused.inc(&self.registry, reason);
    }

    pub(super) fn tcp_closed(&mut self, reason: &'static str) {
        self.tcp_closed.inc(&self.registry, reason);
    }

    pub(super) fn response(&mut self, bytes: &[u8]) {
        let Some(code) = bytes
            .strip_prefix(b"SIP/2.0 ")
            .and_then(|r| std::str::from_utf8(r.get(..3)?).ok())
            .and_then(|c| c.parse::<u16>().ok())
        else {
            return;
        };
        self.responses
            .entry(code)
            .or_insert_with(|| {
                self.registry.counter(
                    "hotline_sip_responses_total",
                    "SIP responses sent",
                    &[("code", &code.to_string())],
                )
            })
            .inc();
    }

    /// Brings the transaction layer's counts and size into the registry.
    pub(super) fn transactions(&mut self, counts: Counts, live: usize) {
        self.retransmissions
            .add(counts.retransmissions_sent - self.reported_retransmissions);
        self.reported_retransmissions = counts.retransmissions_sent;
        self.refused_full
            .add(counts.refused_full - self.reported_refused_full);
        self.reported_refused_full = counts.refused_full;
        self.transactions.set(live as i64);
    }
}
