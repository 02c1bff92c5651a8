//! The qualify core in virtual time: probes, their answers and silences, hysteresis.

use super::*;
use crate::sip::transaction::Transactions;
use crate::sip::{Timers, Transport, headers};

const PBX: &str = "192.0.2.10:5060";

fn settings() -> QualifySettings {
    QualifySettings {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(3),
        down_after: 2,
        up_after: 2,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A qualify core probing one trunk, with the transactions its OPTIONS go out in.
struct Rig {
    q: Qualify,
    tx: Transactions,
    /// The OPTIONS sent, in order, with their transactions.
    sent: Vec<(ClientTxId, Request)>,
}

impl Rig {
    fn new(now: Instant) -> Rig {
        let target = ProbeTarget {
            name: "pbx1".into(),
            kind: PeerKind::Trunk,
            uri: "sip:pbx.example.net".into(),
        };
        Rig {
            q: Qualify::new(settings(), vec![target], now, &Registry::new()),
            tx: Transactions::new(Timers::default()),
            sent: Vec::new(),
        }
    }

    /// Runs the timers at `now` and answers the lookup they ask for with `found`.
    fn probe(&mut self, now: Instant, found: Result<ProbeAddress, String>) {
        self.q.handle_timeout(now);
        let (id, uri) = self.q.poll_lookup().expect("a probe is due");
        assert_eq!(uri, "sip:pbx.example.net");
        assert!(self.q.poll_lookup().is_none(), "one lookup per probe");
        let (tx, sent) = (&mut self.tx, &mut self.sent);
        self.q.handle_lookup(now, id, found, &mut |peer, request| {
            let id = tx.send_request(now, peer, request.clone());
            sent.push((id, request));
            id
        });
    }

    fn probe_found(&mut self, now: Instant) {
        self.probe(now, Ok(address()));
    }

    /// Answers the last OPTIONS with `code`.
    fn answer(&mut self, now: Instant, code: u16) -> bool {
        let (id, request) = self.sent.last().expect("an OPTIONS went out").clone();
        let response = build::response(&request, code, Some("t"));
        self.q.handle_response(now, id, &response)
    }

    fn state(&mut self) -> Reach {
        self.statuses()[0].state
    }

    fn statuses(&mut self) -> Vec<PeerStatus> {
        self.q.poll_statuses().expect("the status changed")
    }

    fn changes(&mut self) -> Vec<(bool, Option<String>)> {
        std::iter::from_fn(|| self.q.poll_change())
            .map(|c| {
                assert_eq!((c.name.as_str(), c.kind), ("pbx1", PeerKind::Trunk));
                (c.up, c.reason)
            })
            .collect()
    }
}

fn address() -> ProbeAddress {
    ProbeAddress {
        peer: Peer {
            transport: Transport::Udp,
            addr: PBX.parse().expect("addr"),
            conn: None,
        },
        sent_by: "192.0.2.1:5060".into(),
    }
}

#[test]
fn the_first_probe_goes_at_once_and_its_answer_puts_the_trunk_up() {
    let t0 = Instant::now();
    let mut rig = Rig::new(t0);
    assert_eq!(
        rig.q.poll_timeout(),
        Some(t0),
        "the first probe is due at the start"
    );
    assert_eq!(rig.state(), Reach::Unknown, "not known before any probe");
    rig.probe_found(t0);
    let (_, options) = rig.sent[0].clone();
    assert_eq!(options.method, Method::Options);
    assert_eq!(options.uri.to_string(), "sip:pbx.example.net");
    let text = options.to_string();
    assert!(
        text.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"),
        "{text}"
    );
    assert!(text.contains("To: <sip:pbx.example.net>"), "{text}");
    assert_eq!(headers::cseq(&options.headers).map(|c| c.0), Some(1));
    assert_eq!(
        rig.q.poll_timeout(),
        Some(t0 + secs(3)),
        "the answer's deadline"
    );

    assert!(rig.answer(t0 + Duration::from_millis(40), 200));
    assert_eq!(rig.changes(), vec![(true, None)]);
    let status = rig.statuses().remove(0);
    assert_eq!(status.state, Reach::Up);
    assert_eq!(status.rtt_ms, Some(40));
    assert_eq!(
        rig.q.poll_timeout(),
        Some(t0 + secs(30)),
        "the next probe one interval after this one started"
    );
    rig.q.handle_timeout(t0 + secs(29));
    assert!(rig.q.poll_lookup().is_none(), "not due yet");
}

#[test]
fn one_lost_probe_keeps_the_trunk_up_and_two_take_it_down_until_two_are_answered() {
    let t0 = Instant::now();
    let mut rig = Rig::new(t0);
    rig.probe_found(t0);
    rig.answer(t0, 200);
    rig.changes();

    // Unanswered for the timeout: one failure, still up.
    rig.probe_found(t0 + secs(30));
    rig.q.handle_timeout(t0 + secs(33));
    assert_eq!(rig.changes(), vec![]);
    let status = rig.statuses().remove(0);
    assert_eq!(status.state, Reach::Up);
    assert_eq!(
        status.reason.as_deref(),
        Some("no answer to OPTIONS in 3000 ms")
    );
    // Its late answer is ours, and changes nothing.
    assert!(rig.answer(t0 + secs(34), 200));
    assert_eq!(rig.changes(), vec![]);

    // A second failure in a row (the peer says it cannot take requests): down.
    rig.probe_found(t0 + secs(60));
    assert!(rig.answer(t0 + secs(60), 503));
    assert_eq!(
        rig.changes(),
        vec![(
            false,
            Some("answered OPTIONS 503 Service Unavailable".into())
        )]
    );
    assert_eq!(rig.state(), Reach::Down);

    // One answer is not enough to come back; two are.
    rig.probe_found(t0 + secs(90));
    rig.answer(t0 + secs(90), 200);
    assert_eq!(rig.changes(), vec![]);
    assert_eq!(rig.state(), Reach::Down);
    rig.probe_found(t0 + secs(120));
    rig.answer(t0 + secs(120), 200);
    assert_eq!(rig.changes(), vec![(true, None)]);
    assert_eq!(rig.state(), Reach::Up);
}

#[test]
fn any_answer_but_a_refusal_means_the_peer_is_there() {
    let t0 = Instant::now();
    let mut rig = Rig::new(t0);
    let mut now = t0;
    // A PBX that does not know the user, or takes no OPTIONS, is still up.
    for code in [404, 405] {
        rig.probe_found(now);
        assert!(rig.answer(now, code));
        now += secs(30);
    }
    rig.probe_found(now);
    assert!(rig.answer(now, 180));
    assert!(
        matches!(rig.q.peers[0].probe, Probe::Waiting { .. }),
        "a 1xx is not the answer"
    );
    rig.answer(now, 200);
    now += secs(30);
    assert_eq!(rig.changes(), vec![(true, None)]);
    for code in [480, 408] {
        rig.probe_found(now);
        rig.answer(now, code);
        now += secs(30);
    }
    assert_eq!(rig.changes().len(), 1, "two refusals take it down");
    assert_eq!(rig.state(), Reach::Down);
}

#[test]
fn a_peer_never_reached_goes_down_after_the_failures_and_a_name_that_does_not_resolve_fails_its_probe()
 {
    let t0 = Instant::now();
    let mut rig = Rig::new(t0);
    rig.probe(t0, Err("no such host".into()));
    assert!(rig.sent.is_empty(), "nothing to send to");
    assert_eq!(
        rig.changes(),
        vec![],
        "one failure: still unknown, calls still go"
    );
    assert_eq!(rig.state(), Reach::Unknown);
    assert_eq!(rig.q.poll_timeout(), Some(t0 + secs(30)));
    // The transaction layer gives up on the next (a transport error, or Timer F).
    rig.probe_found(t0 + secs(30));
    let (id, _) = rig.sent[0];
    assert!(rig.q.handle_no_answer(t0 + secs(31), id));
    assert_eq!(
        rig.changes(),
        vec![(false, Some("no answer to OPTIONS".into()))]
    );
    assert!(!rig.q.handle_no_answer(t0 + secs(31), id), "ended once");
}

#[test]
fn once_stopped_no_probe_starts_and_a_late_lookup_sends_nothing() {
    let t0 = Instant::now();
    let mut rig = Rig::new(t0);
    rig.q.handle_timeout(t0);
    let (id, _) = rig.q.poll_lookup().expect("a lookup");
    rig.q.stop();
    assert_eq!(rig.q.poll_timeout(), None);
    rig.q.handle_lookup(t0, id, Ok(address()), &mut |_, _| {
        panic!("sent while stopping")
    });
    rig.q.handle_timeout(t0 + secs(60));
    assert!(rig.q.poll_lookup().is_none());
}
