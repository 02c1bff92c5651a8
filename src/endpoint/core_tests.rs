//! The endpoint core driven with virtual time: SIP text in, what it sends and tells calls
//! out. No socket, no clock, no task.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::*;
use crate::endpoint::trunks::{TrunkLookup, TrunkRegistration};
use crate::registrar::test_phone::{Phone, challenge_in};
use crate::registrar::{RegistrarConfig, Secret};
use crate::sip::parse::parse;
use crate::sip::registration::{RegState, RegisterSettings};
use crate::time::virtual_time::{Timed, advance};

impl Timed for Core {
    fn poll_timeout(&self) -> Option<Instant> {
        Core::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Core::handle_timeout(self, now)
    }
}

const TRUNK: &str = "10.0.0.1:5060";
const STRANGER: &str = "192.0.2.9:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn tcp(from: &str, conn: u64) -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: addr(from),
        conn: Some(conn),
    }
}

impl Core {
    /// A core for tests: the trunk `pbx` is 10.0.0.1 (2 calls at most), anyone in
    /// 10.0.0.0/8 may send requests, `max_calls` calls in all.
    pub(crate) fn for_tests(max_calls: usize, registrar: Option<Registrar>) -> Core {
        Core::new(test_settings(max_calls), registrar, &Registry::new())
    }
}

/// `Core::for_tests`'s settings.
fn test_settings(max_calls: usize) -> Settings {
    Settings {
        timers: Timers::default(),
        max_transactions: 1000,
        allow: vec!["10.0.0.0/8".parse().expect("cidr")],
        named: vec![("pbx".into(), vec!["10.0.0.1/32".parse().expect("cidr")])],
        server: "hotline-test".into(),
        admission: Admission::new(max_calls, 0, false, false),
        trunk_limits: crate::endpoint::trunk_limits::TrunkLimits::new([(
            "pbx".to_owned(),
            crate::endpoint::trunk_limits::TrunkLimit {
                max_calls: 2,
                max_cps: 0,
            },
        )]),
        tcp: crate::endpoint::conns::TcpLimits {
            max_connections: 100,
            max_per_source: 10,
            idle: Duration::from_secs(600),
            message_deadline: Duration::from_secs(20),
        },
        registrations: Vec::new(),
        qualify: crate::endpoint::QualifyConfig::default().settings(),
        probes: Vec::new(),
        started: Instant::now(),
    }
}

struct Bench {
    core: Core,
    now: Instant,
}

impl Bench {
    fn new(max_calls: usize) -> Bench {
        Bench::with_registrar(max_calls, None)
    }

    fn with_registrar(max_calls: usize, registrar: Option<Registrar>) -> Bench {
        Bench {
            core: Core::for_tests(max_calls, registrar),
            now: Instant::now(),
        }
    }

    /// A bench whose registrar knows agent 1001 (password `right`), from its `now`.
    fn with_agent_1001() -> Bench {
        let now = Instant::now();
        let registrar = Registrar::new(
            &RegistrarConfig::default(),
            vec![("1001".to_owned(), Secret::new("right"))],
            [7; 32],
            now,
        )
        .expect("a valid registrar");
        let mut b = Bench::with_registrar(10, Some(registrar));
        b.now = now;
        b
    }

    fn receive(&mut self, peer: Peer, text: &str) {
        self.core.handle_datagram(self.now, peer, text.as_bytes());
    }

    fn command(&mut self, command: Command) {
        self.core.handle_command(self.now, command);
    }

    /// Where each transmit went and its first line.
    fn sent(&mut self) -> Vec<(Dest, String)> {
        std::iter::from_fn(|| self.core.poll_transmit())
            .map(|t| {
                let text = String::from_utf8_lossy(&t.bytes).into_owned();
                (t.dest, text.lines().next().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// Just the status codes or methods sent.
    fn sent_lines(&mut self) -> Vec<String> {
        self.sent()
            .into_iter()
            .map(|(_, line)| match line.strip_prefix("SIP/2.0 ") {
                Some(status) => status[..3].to_owned(),
                None => line.split(' ').next().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    /// The one event, which must be a new call.
    fn new_call(&mut self) -> NewCall {
        let mut events = self.events();
        match (events.pop(), events.is_empty()) {
            (Some(Event::NewCall(call)), true) => call,
            (last, _) => panic!("expected one new call, got {events:?} then {last:?}"),
        }
    }

    /// The one event, which must be for a call.
    fn call_event(&mut self) -> (String, CallEvent) {
        let mut events = self.events();
        match (events.pop(), events.is_empty()) {
            (Some(Event::Call { call_id, event }), true) => (call_id, event),
            (last, _) => panic!("expected one call event, got {events:?} then {last:?}"),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now = advance(&mut self.core, self.now + by, |_, _| {});
    }
}

fn invite(call_id: &str, branch: &str) -> String {
    request("INVITE", call_id, branch, 1, None)
}

fn request(method: &str, call_id: &str, branch: &str, cseq: u32, to_tag: Option<&str>) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:12345@10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
From: <sip:caller@10.0.0.1>;tag=from1\r\nTo: <sip:12345@10.0.0.2>{to_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@10.0.0.1>\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The CANCEL for `invite(call_id, branch)` (RFC 3261 9.1: same branch and CSeq number).
fn cancel(call_id: &str, branch: &str) -> String {
    request("CANCEL", call_id, branch, 1, None)
}

fn parsed_request(text: &str) -> Request {
    match parse(text.as_bytes(), Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request must parse: {other:?}"),
    }
}

fn parsed_response(bytes: &[u8]) -> Response {
    match parse(bytes, Transport::Udp) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("expected a response: {other:?}"),
    }
}

#[test]
fn an_invite_from_a_named_trunk_starts_a_call_on_that_trunk() {
    let mut b = Bench::new(10);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    let call = b.new_call();
    assert_eq!(call.call_id, "c1");
    assert_eq!(call.trunk.as_deref(), Some("pbx"));
    assert_eq!(b.core.calls(), 1);
    assert_eq!(
        b.sent(),
        [(Dest::Udp(addr(TRUNK)), "SIP/2.0 100 Trying".into())]
    );

    b.receive(Peer::udp("10.0.0.3:5060"), &invite("c2", "z9hG4bKb"));
    assert_eq!(b.new_call().trunk, None, "allowed, but on no named trunk");
    b.sent();

    b.receive(Peer::udp(STRANGER), &invite("c3", "z9hG4bKc"));
    assert_eq!(
        b.sent_lines(),
        ["403"],
        "at once, with no 100: no transaction is kept"
    );
    assert!(b.events().is_empty());
    b.receive(
        Peer::udp(STRANGER),
        &request("OPTIONS", "probe", "z9hG4bKp", 1, None),
    );
    assert_eq!(b.sent_lines(), ["403"]);
}

#[test]
fn cancel_of_a_pending_invite_reaches_its_call_or_ends_the_invite_when_the_call_is_gone() {
    let mut b = Bench::new(10);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    b.new_call();
    b.sent();
    b.receive(Peer::udp(TRUNK), &cancel("c1", "z9hG4bKa"));
    assert_eq!(b.sent_lines(), ["200"], "the CANCEL is answered at once");
    let (call_id, event) = b.call_event();
    assert_eq!(call_id, "c1");
    assert!(matches!(event, CallEvent::Cancelled { .. }), "{event:?}");

    // The call's task ended before it read the event: the core answers the INVITE.
    b.core.handle_undelivered(b.now, &call_id, event);
    assert_eq!(b.sent_lines(), ["487"]);
    assert_eq!(b.core.calls(), 0, "the call no longer counts");
}

#[test]
fn cancel_of_an_answered_invite_changes_nothing_and_an_unknown_one_gets_481() {
    let mut b = Bench::new(10);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    let call = b.new_call();
    let ok = crate::sip::build::response(&call.invite, 200, Some("ours"));
    b.command(Command::Respond {
        tx: call.tx,
        response: ok,
    });
    b.sent();
    b.receive(Peer::udp(TRUNK), &cancel("c1", "z9hG4bKa"));
    assert_eq!(b.sent_lines(), ["200"]);
    assert!(b.events().is_empty(), "the call hears nothing");

    b.receive(Peer::udp(TRUNK), &cancel("c9", "z9hG4bKz"));
    assert_eq!(b.sent_lines(), ["481"], "no INVITE matches");
}

#[test]
fn requests_for_a_call_that_is_gone_get_481() {
    let mut b = Bench::new(10);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    b.new_call();
    b.receive(
        Peer::udp(TRUNK),
        &request("BYE", "c1", "z9hG4bKbye1", 2, Some("ours")),
    );
    let (call_id, event) = b.call_event();
    assert!(matches!(event, CallEvent::Request { .. }));
    b.sent();
    // Its task is gone without an unroute yet: the BYE is answered for it.
    b.core.handle_undelivered(b.now, &call_id, event);
    assert_eq!(b.sent_lines(), ["481"]);
    assert_eq!(b.core.calls(), 0);
    // The unroute that follows changes nothing, and a copy gets 481 too.
    b.command(Command::Unroute { call_id });
    assert_eq!(b.core.calls(), 0);
    b.receive(
        Peer::udp(TRUNK),
        &request("BYE", "c1", "z9hG4bKbye2", 3, Some("ours")),
    );
    assert_eq!(b.sent_lines(), ["481"]);
    assert!(b.events().is_empty());
}

#[test]
fn calls_over_max_calls_are_shed_with_503_until_one_ends() {
    let mut b = Bench::new(1);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    b.new_call();
    b.sent();
    b.receive(Peer::udp(TRUNK), &invite("c2", "z9hG4bKb"));
    let refusal = std::iter::from_fn(|| b.core.poll_transmit())
        .map(|t| parsed_response(&t.bytes))
        .last()
        .expect("a refusal after the 100");
    assert_eq!(refusal.status_code.code(), 503);
    assert!(
        refusal
            .headers
            .iter()
            .any(|h| h.to_string() == "Retry-After: 2"),
        "{refusal}"
    );
    assert!(b.events().is_empty());

    b.command(Command::Unroute {
        call_id: "c1".into(),
    });
    b.receive(Peer::udp(TRUNK), &invite("c3", "z9hG4bKc"));
    assert_eq!(b.new_call().call_id, "c3");
}

#[test]
fn a_registration_is_told_to_the_engine_and_expires_in_virtual_time() {
    let mut b = Bench::with_agent_1001();
    let mut phone = Phone::new("1001", "right");
    let from = Peer::udp("127.0.0.1:5070");
    let headers = "Contact: <sip:1001@127.0.0.1:5070>\r\nExpires: 120\r\n";
    b.receive(from, &phone.request(headers, None).to_string());
    let challenge = b.core.poll_transmit().expect("a challenge");
    let challenge = parsed_response(&challenge.bytes);
    assert_eq!(challenge.status_code.code(), 401);
    let (nonce, _) = challenge_in(challenge.headers.iter(), "SHA-256");
    let auth = phone.answer(&nonce, "SHA-256", "1001");
    b.receive(from, &phone.request(headers, Some(&auth)).to_string());
    assert_eq!(b.sent_lines(), ["200"]);
    match b.events().as_slice() {
        [Event::Binding(c)] => {
            assert_eq!(c.user, "1001");
            assert_eq!(c.contact.as_deref(), Some("sip:1001@127.0.0.1:5070"));
        }
        other => panic!("expected the binding, got {other:?}"),
    }

    b.advance(Duration::from_secs(119));
    assert!(b.events().is_empty(), "still registered");
    b.advance(Duration::from_secs(2));
    match b.events().as_slice() {
        [Event::Binding(c)] => assert_eq!((c.user.as_str(), c.contact.as_deref()), ("1001", None)),
        other => panic!("expected the expiry, got {other:?}"),
    }
}

#[test]
fn responses_go_back_on_the_connection_the_request_came_on() {
    let mut b = Bench::new(10);
    let first = b
        .core
        .handle_accept(b.now, addr(TRUNK), Transport::Tcp)
        .expect("a trunk");
    let second = b
        .core
        .handle_accept(b.now, addr(TRUNK), Transport::Tcp)
        .expect("a trunk");
    b.receive(tcp(TRUNK, second), &invite("c1", "z9hG4bKa"));
    let call = b.new_call();
    assert_eq!(call.peer.conn, Some(second));
    b.sent();
    let ringing = crate::sip::build::response(&call.invite, 180, Some("ours"));
    b.command(Command::Respond {
        tx: call.tx,
        response: ringing.clone(),
    });
    assert_eq!(b.sent()[0].0, Dest::Conn(second));

    // That connection closed: another one to the same peer carries the reply.
    b.core.handle_conn_closed(b.now, second, ConnEnd::Closed);
    b.command(Command::Respond {
        tx: call.tx,
        response: ringing,
    });
    assert_eq!(b.sent()[0].0, Dest::Conn(first));

    // None is left: a new connection is opened to the peer.
    b.core.handle_conn_closed(b.now, first, ConnEnd::Closed);
    let busy = crate::sip::build::response(&call.invite, 486, Some("ours"));
    b.command(Command::Respond {
        tx: call.tx,
        response: busy,
    });
    match b.sent().as_slice() {
        [
            (
                Dest::Connect {
                    conn,
                    addr: to,
                    transport: Transport::Tcp,
                    tls_name: None,
                },
                line,
            ),
        ] => {
            assert!(![first, second].contains(conn), "a fresh name");
            assert_eq!(*to, addr(TRUNK));
            assert!(line.starts_with("SIP/2.0 486"), "{line}");
        }
        other => panic!("expected a connect, got {other:?}"),
    }
}

/// An INVITE the engine sends to an agent's phone at `to` over `transport`.
fn outgoing_invite(call_id: &str, transport: &str) -> Request {
    parsed_request(&format!(
        "INVITE sip:1001@10.0.0.7 SIP/2.0\r\n\
Via: SIP/2.0/{transport} 10.0.0.2:5060;branch=z9hG4bKout1\r\n\
From: <sip:12345@10.0.0.2>;tag=ours\r\nTo: <sip:1001@10.0.0.7>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:12345@10.0.0.2>\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ))
}

#[test]
fn a_tls_peer_is_reached_by_tls_checked_against_the_name_it_was_sent_to() {
    let mut b = Bench::new(10);
    let pbx = Peer {
        transport: Transport::Tls,
        addr: addr("10.0.0.7:5061"),
        conn: None,
    };
    b.command(Command::Route {
        call_id: "leg1".into(),
    });
    let invite = outgoing_invite("leg1", "TLS");
    let text = invite.to_string().replace(
        "INVITE sip:1001@10.0.0.7 ",
        "INVITE sip:1001@pbx.example;transport=tls ",
    );
    b.command(Command::Send {
        peer: pbx,
        request: parsed_request(&text),
    });
    match b.sent().as_slice() {
        [
            (
                Dest::Connect {
                    addr: to,
                    transport: Transport::Tls,
                    tls_name: Some(name),
                    ..
                },
                line,
            ),
        ] => {
            assert_eq!(*to, pbx.addr);
            assert_eq!(name, "pbx.example");
            assert!(line.starts_with("INVITE "), "{line}");
        }
        other => panic!("expected a TLS connect, got {other:?}"),
    }
    // A plain TCP request to the same address opens a connection of its own.
    b.command(Command::Route {
        call_id: "leg2".into(),
    });
    b.command(Command::Send {
        peer: Peer {
            transport: Transport::Tcp,
            ..pbx
        },
        request: outgoing_invite("leg2", "TCP"),
    });
    assert!(
        matches!(
            b.sent().as_slice(),
            [(
                Dest::Connect {
                    transport: Transport::Tcp,
                    tls_name: None,
                    ..
                },
                _
            )]
        ),
        "a TLS connection never carries plain TCP's messages"
    );
}

#[test]
fn a_failed_tcp_connect_fails_its_transaction_at_once() {
    let mut b = Bench::new(10);
    let phone = Peer {
        transport: Transport::Tcp,
        addr: addr("10.0.0.7:5060"),
        conn: None,
    };
    b.command(Command::Route {
        call_id: "leg1".into(),
    });
    b.command(Command::Send {
        peer: phone,
        request: outgoing_invite("leg1", "TCP"),
    });
    let conn = match b.sent().as_slice() {
        [
            (
                Dest::Connect {
                    conn,
                    addr: to,
                    transport: Transport::Tcp,
                    tls_name: None,
                },
                line,
            ),
        ] if *to == phone.addr => {
            assert!(line.starts_with("INVITE "), "{line}");
            *conn
        }
        other => panic!("expected a connect to the phone, got {other:?}"),
    };
    b.core
        .handle_conn_closed(b.now, conn, ConnEnd::ConnectFailed);
    let (call_id, event) = b.call_event();
    assert_eq!(call_id, "leg1");
    assert!(
        matches!(
            event,
            CallEvent::Timeout {
                cseq: 1,
                method: rsip::Method::Invite,
                ..
            }
        ),
        "{event:?}"
    );
}

#[test]
fn an_unanswered_udp_request_times_out_after_timer_b() {
    let mut b = Bench::new(10);
    b.command(Command::Route {
        call_id: "leg1".into(),
    });
    b.command(Command::Send {
        peer: Peer::udp("10.0.0.7:5060"),
        request: outgoing_invite("leg1", "UDP"),
    });
    b.advance(Duration::from_millis(31_900));
    assert!(b.events().is_empty(), "Timer B is 64*T1 = 32 s");
    assert!(b.sent().len() > 1, "resent meanwhile (Timer A)");
    b.advance(Duration::from_millis(200));
    let (_, event) = b.call_event();
    assert!(matches!(event, CallEvent::Timeout { .. }), "{event:?}");
}

#[test]
fn a_draining_core_refuses_new_calls_and_hangs_up_the_rest_after_the_grace() {
    let mut b = Bench::new(10);
    b.receive(Peer::udp(TRUNK), &invite("c1", "z9hG4bKa"));
    b.new_call();
    b.command(Command::Route {
        call_id: "agent-leg".into(),
    });
    b.sent();
    b.core.handle_drain(b.now, Duration::from_secs(30));
    assert!(b.events().is_empty(), "the call goes on during the grace");

    b.receive(Peer::udp(TRUNK), &invite("c2", "z9hG4bKb"));
    assert_eq!(b.sent_lines(), ["100", "503"], "no new call");
    b.receive(
        Peer::udp(TRUNK),
        &request("OPTIONS", "probe", "z9hG4bKo", 1, None),
    );
    assert_eq!(b.sent_lines(), ["503"], "a proxy's probe learns it too");
    b.receive(
        Peer::udp(TRUNK),
        &request("INFO", "c1", "z9hG4bKi", 2, Some("ours")),
    );
    assert!(matches!(b.call_event(), (_, CallEvent::Request { .. })));

    b.advance(Duration::from_millis(29_999));
    assert!(b.events().is_empty());
    b.advance(Duration::from_millis(1));
    let (call_id, event) = b.call_event();
    assert_eq!(
        call_id, "c1",
        "only calls that came in are told (they end their legs)"
    );
    assert!(matches!(event, CallEvent::Shutdown), "{event:?}");

    // The call hangs up: its BYE must be answered before the engine counts as drained.
    let bye = parsed_request(
        "BYE sip:caller@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKbye\r\n\
From: <sip:12345@10.0.0.2>;tag=ours\r\nTo: <sip:caller@10.0.0.1>;tag=from1\r\n\
Call-ID: c1\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    );
    let ok = crate::sip::build::response(&bye, 200, None);
    b.command(Command::Send {
        peer: Peer::udp(TRUNK),
        request: bye,
    });
    b.command(Command::Unroute { call_id });
    assert!(b.events().is_empty(), "the BYE is not answered yet");
    b.receive(Peer::udp(TRUNK), &SipMessage::Response(ok).to_string());
    assert!(matches!(b.events().as_slice(), [Event::Drained]));
}

#[test]
fn only_trunks_and_agent_networks_may_open_tcp_connections() {
    let mut b = Bench::new(10);
    assert!(
        b.core
            .handle_accept(b.now, addr(TRUNK), Transport::Tcp)
            .is_ok()
    );
    assert_eq!(
        b.core.handle_accept(b.now, addr(STRANGER), Transport::Tcp),
        Err(crate::endpoint::conns::ConnRefusal::NotAllowed)
    );
    let config = RegistrarConfig {
        allow: vec!["192.0.2.0/24".into()],
        ..RegistrarConfig::default()
    };
    let registrar = Registrar::new(&config, Vec::new(), [7; 32], b.now).expect("valid");
    let mut b = Bench::with_registrar(10, Some(registrar));
    assert!(
        b.core
            .handle_accept(b.now, addr(STRANGER), Transport::Tcp)
            .is_ok(),
        "agent phones' network"
    );
    assert!(
        b.core
            .handle_accept(b.now, addr("198.51.100.1:5060"), Transport::Tcp)
            .is_err()
    );
}

#[test]
fn a_connection_that_never_finishes_its_first_message_is_closed() {
    let mut b = Bench::new(10);
    let conn = b
        .core
        .handle_accept(b.now, addr(TRUNK), Transport::Tcp)
        .expect("a trunk");
    b.core.handle_conn_read(b.now, conn, true);
    b.advance(Duration::from_secs(19));
    assert!(b.events().is_empty());
    b.advance(Duration::from_secs(2));
    assert!(matches!(b.events().as_slice(), [Event::CloseConn(c)] if *c == conn));
}

/// What the engine must do with each RFC 4475 torture message: file, answer (a final
/// status, `call`, or `-` for nothing), and why when it is not plain.
const RFC_4475: &str = include_str!("../../tests/rfc4475_answers.tsv");

/// Every RFC 4475 message through parsing, policy, the registrar and the transaction
/// layer, with no network: each gets exactly its answer (the integration test sends the
/// same files to the running engine over UDP and TCP).
#[test]
fn rfc_4475_torture_messages_get_exactly_their_answers() {
    let Some(shared) = crate::speech::devset::shared_dir() else {
        panic!("../shared (with conformance/rfc4475) must be beside the project");
    };
    let dir = shared.join("conformance/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let listed: Vec<&str> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let table: Vec<(&str, &str)> = RFC_4475
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?, cols.next()?))
        })
        .collect();
    let files: Vec<&str> = table.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        files, listed,
        "one expectation per INDEX.tsv line, in its order"
    );
    let mut wrong = Vec::new();
    for (file, expected) in table {
        let bytes = std::fs::read(dir.join(file)).expect("a torture file");
        let mut b = Bench::with_agent_1001();
        b.core.handle_datagram(b.now, Peer::udp(TRUNK), &bytes);
        let sent: Vec<String> = std::iter::from_fn(|| b.core.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .filter(|text| !text.starts_with("SIP/2.0 1"))
            .collect();
        let finals: Vec<String> = sent
            .iter()
            .filter_map(|text| text.strip_prefix("SIP/2.0 "))
            .map(|status| status[..3].to_owned())
            .collect();
        let warning = sent
            .iter()
            .flat_map(|text| text.lines())
            .find(|l| l.starts_with("Warning"))
            .unwrap_or_default();
        let calls = b
            .events()
            .iter()
            .filter(|e| matches!(e, Event::NewCall(_)))
            .count();
        let got = match (finals.as_slice(), calls) {
            ([], 1) => "call".to_owned(),
            ([], 0) => "-".to_owned(),
            ([one], 0) => one.clone(),
            _ => format!("{finals:?} and {calls} calls"),
        };
        if got != expected {
            wrong.push(format!("{file}: expected {expected}, got {got} {warning}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_named_trunk_holds_at_most_its_calls_while_others_still_get_in() {
    let mut b = Bench::new(10);
    for id in ["p1", "p2"] {
        b.receive(Peer::udp(TRUNK), &invite(id, &format!("z9hG4bK{id}")));
        assert_eq!(b.new_call().trunk.as_deref(), Some("pbx"));
    }
    b.sent();
    b.receive(Peer::udp(TRUNK), &invite("p3", "z9hG4bKp3"));
    assert_eq!(
        b.sent_lines(),
        ["100", "503"],
        "the pbx trunk is at its max_calls"
    );
    b.receive(Peer::udp("10.0.0.3:5060"), &invite("o1", "z9hG4bKo1"));
    assert_eq!(
        b.new_call().call_id,
        "o1",
        "another source is not held back"
    );
    b.command(Command::Unroute {
        call_id: "p1".into(),
    });
    b.receive(Peer::udp(TRUNK), &invite("p4", "z9hG4bKp4"));
    assert_eq!(b.new_call().call_id, "p4");
}

/// Trunk "carrier", registering with `registrar` as 12345 (Contact token `tok1`).
fn carrier(registrar: &str) -> TrunkRegistration {
    TrunkRegistration {
        settings: RegisterSettings {
            trunk: "carrier".into(),
            registrar: format!("sip:{registrar}"),
            aor: "sip:12345@carrier.example".into(),
            contact: "sip:12345@10.0.0.2:5060;line=tok1".into(),
            auth_user: "12345".into(),
            password: Secret::new("right"),
            realm: String::new(),
            expires: 600,
            transport: Transport::Udp,
            sent_by: "10.0.0.2:5060".into(),
        },
        peer: Peer::udp(registrar),
        token: "tok1".into(),
    }
}

/// The trunks' statuses the core reported, as (state, reason, retry_s) of the first.
fn trunk_reports(b: &mut Bench) -> Vec<(&'static str, Option<String>, Option<u64>)> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Trunks(s) => Some((s[0].state, s[0].reason.clone(), s[0].retry_s)),
            _ => None,
        })
        .collect()
}

/// A core started at `now` whose trunk "carrier" registers with a registrar whose name
/// did not resolve (`why`).
fn unresolved_carrier(now: Instant, why: &str) -> Bench {
    let mut settings = test_settings(10);
    settings.started = now;
    settings.registrations = vec![TrunkLookup::Unresolved {
        trunk: "carrier".into(),
        why: why.into(),
    }];
    Bench {
        core: Core::new(settings, None, &Registry::new()),
        now,
    }
}

#[test]
fn a_registrar_whose_name_does_not_resolve_is_looked_up_again_later_until_it_registers() {
    const REGISTRAR: &str = "192.0.2.1:5060";
    let now = Instant::now();
    let secs = Duration::from_secs;
    let mut b = unresolved_carrier(now, "failed to lookup address information");
    b.core.handle_timeout(now);
    assert!(b.core.poll_transmit().is_none(), "nothing to send it to");
    let reports = trunk_reports(&mut b);
    let [(state, Some(reason), retry)] = reports.as_slice() else {
        panic!("one report: {reports:?}");
    };
    assert_eq!((*state, *retry), ("failed", Some(5)));
    assert!(
        reason.contains("does not resolve: failed to lookup"),
        "{reason}"
    );
    assert_eq!(b.core.poll_timeout(), Some(now + secs(5)));

    // When the wait is over the edge is asked, once, to look the name up again.
    b.core.handle_timeout(now + secs(5));
    let asked = |b: &mut Bench| {
        b.events()
            .into_iter()
            .filter(|e| matches!(e, Event::LookUpRegistrar(t) if t == "carrier"))
            .count()
    };
    assert_eq!(asked(&mut b), 1);
    assert_ne!(b.core.poll_timeout(), Some(now + secs(5)), "no busy loop");
    b.core.handle_timeout(now + secs(6));
    assert_eq!(asked(&mut b), 0, "asked already");
    // Down again: the wait doubles.
    b.core
        .handle_registrar_lookup(now + secs(6), "carrier", Err("no route".into()));
    assert!(matches!(
        trunk_reports(&mut b).as_slice(),
        [("failed", Some(r), Some(10))] if r.contains("no route")
    ));
    b.core.handle_timeout(now + secs(16));
    assert_eq!(asked(&mut b), 1);
    // Resolved: it registers at once, and takes the calls sent to its binding.
    b.core
        .handle_registrar_lookup(now + secs(16), "carrier", Ok(carrier(REGISTRAR)));
    b.core.handle_timeout(now + secs(16));
    let t = b.core.poll_transmit().expect("a REGISTER");
    assert_eq!(t.dest, Dest::Udp(addr(REGISTRAR)));
    assert!(matches!(
        b.core.registrations().as_slice(),
        [(trunk, RegState::Registering)] if trunk == "carrier"
    ));
}

#[test]
fn a_registrar_that_resolves_once_the_engine_is_stopping_is_not_registered_with() {
    const REGISTRAR: &str = "192.0.2.1:5060";
    let now = Instant::now();
    let secs = Duration::from_secs;
    let mut b = unresolved_carrier(now, "no route");
    b.core.handle_timeout(now + secs(5));
    assert!(
        b.events()
            .iter()
            .any(|e| matches!(e, Event::LookUpRegistrar(t) if t == "carrier"))
    );
    b.core.handle_drain(now + secs(6), secs(30));
    assert!(
        !b.core
            .handle_registrar_lookup(now + secs(7), "carrier", Ok(carrier(REGISTRAR))),
        "too late"
    );
    b.core.handle_timeout(now + secs(7));
    assert!(b.core.poll_transmit().is_none(), "no REGISTER");
    assert!(matches!(
        b.core.registrations().as_slice(),
        [(_, RegState::Stopped)]
    ));
    b.core.handle_timeout(now + secs(600));
    assert!(
        b.events()
            .iter()
            .all(|e| !matches!(e, Event::LookUpRegistrar(_)))
    );
}

#[test]
fn a_registering_trunk_registers_at_start_and_takes_the_calls_sent_to_its_binding() {
    const REGISTRAR: &str = "192.0.2.1:5060";
    let now = Instant::now();
    let mut settings = test_settings(10);
    settings.started = now;
    settings.registrations = vec![TrunkLookup::Resolved(Box::new(carrier(REGISTRAR)))];
    let mut b = Bench {
        core: Core::new(settings, None, &Registry::new()),
        now,
    };
    assert_eq!(b.core.poll_timeout(), Some(now), "it registers at once");
    b.core.handle_timeout(now);
    let t = b.core.poll_transmit().expect("a REGISTER");
    assert_eq!(t.dest, Dest::Udp(addr(REGISTRAR)));
    let register = match parse(&t.bytes, Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("a request: {other:?}"),
    };
    assert_eq!(register.method, Method::Register);
    assert!(
        register
            .headers
            .iter()
            .any(|h| matches!(h, Header::UserAgent(_))),
        "signed like every request we send"
    );
    let ok = crate::sip::build::response(&register, 200, Some("r1"));
    let ok = crate::sip::build::encode(&SipMessage::Response(ok));
    b.core.handle_datagram(now, Peer::udp(REGISTRAR), &ok);
    let statuses: Vec<_> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Trunks(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses.last().map(|s| (s[0].state, s[0].expires_s)),
        Some(("registered", Some(600))),
        "the API hears of it: {statuses:?}"
    );
    assert!(matches!(
        b.core.registrations().as_slice(),
        [(trunk, RegState::Registered { until })] if trunk == "carrier" && *until == now + Duration::from_secs(600)
    ));
    // A call sent to the binding, from an address no [trunks] list names.
    let to_binding = invite("c1", "z9hG4bKa").replace(
        "INVITE sip:12345@10.0.0.2 SIP/2.0",
        "INVITE sip:12345@10.0.0.2:5060;line=tok1 SIP/2.0",
    );
    b.receive(Peer::udp("198.51.100.7:5060"), &to_binding);
    assert_eq!(b.new_call().trunk.as_deref(), Some("carrier"));
    b.sent();
    // The same address without the binding's token is a stranger.
    b.receive(Peer::udp("198.51.100.7:5060"), &invite("c2", "z9hG4bKb"));
    assert_eq!(b.sent_lines(), ["403"]);
    // The registrar may connect (by TLS here: it relays calls to a binding naming our TLS
    // listener); a stranger may not, whatever it would send.
    assert!(
        b.core
            .handle_accept(now, addr("192.0.2.1:40123"), Transport::Tls)
            .is_ok()
    );
    assert_eq!(
        b.core
            .handle_accept(now, addr("198.51.100.7:40124"), Transport::Tls),
        Err(crate::endpoint::conns::ConnRefusal::NotAllowed)
    );
    // Stopping unregisters.
    b.core.handle_drain(now, Duration::from_secs(1));
    let lines = b.sent();
    assert!(
        lines
            .iter()
            .any(|(d, l)| *d == Dest::Udp(addr(REGISTRAR)) && l.starts_with("REGISTER")),
        "{lines:?}"
    );
}

#[test]
fn a_probed_trunk_gets_options_and_its_answer_is_reported_until_the_engine_stops() {
    use crate::endpoint::ProbeAddress;
    use crate::endpoint::{PeerKind, ProbeTarget, Reach};
    const PBX: &str = "192.0.2.20:5060";
    let now = Instant::now();
    let secs = Duration::from_secs;
    let mut settings = test_settings(10);
    settings.started = now;
    settings.probes = vec![ProbeTarget {
        name: "pbx2".into(),
        kind: PeerKind::Trunk,
        uri: "sip:pbx2.example.net".into(),
    }];
    let mut b = Bench {
        core: Core::new(settings, None, &Registry::new()),
        now,
    };
    b.core.handle_timeout(now);
    let id = b
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::LookUpPeer { id, uri } if uri == "sip:pbx2.example.net" => Some(id),
            _ => None,
        })
        .expect("the edge is asked where pbx2 is");
    let found = ProbeAddress {
        peer: Peer::udp(PBX),
        sent_by: "192.0.2.1:5060".into(),
    };
    b.core.handle_peer_lookup(now, id, Ok(found));
    let sent: Vec<Transmit> = std::iter::from_fn(|| b.core.poll_transmit()).collect();
    let [options] = sent.as_slice() else {
        panic!("one OPTIONS: {sent:?}");
    };
    assert_eq!(options.dest, Dest::Udp(PBX.parse().expect("addr")));
    let text = String::from_utf8_lossy(&options.bytes).into_owned();
    assert!(
        text.starts_with("OPTIONS sip:pbx2.example.net SIP/2.0\r\n"),
        "{text}"
    );
    assert!(text.contains("User-Agent: hotline-test"), "{text}");
    // The PBX answers 200: up, reported to the engine and the API.
    let response = match crate::sip::parse::parse(&options.bytes, Transport::Udp) {
        Ok(rsip::SipMessage::Request(r)) => build::response(&r, 200, Some("pbx")),
        other => panic!("{other:?}"),
    };
    b.now = now + Duration::from_millis(25);
    b.receive(Peer::udp(PBX), &response.to_string());
    let events = b.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Reach(c) if c.up && c.name == "pbx2")),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Peers(s) if s[0].state == Reach::Up && s[0].rtt_ms == Some(25))
        ),
        "{events:?}"
    );
    assert!(
        b.sent().is_empty(),
        "an answer to our OPTIONS is not a call's"
    );
    let lookups = |b: &mut Bench| {
        b.events()
            .iter()
            .filter(|e| matches!(e, Event::LookUpPeer { .. }))
            .count()
    };
    b.core.handle_timeout(now + secs(29));
    assert_eq!(
        lookups(&mut b),
        0,
        "the next probe is one interval after this one"
    );
    b.core.handle_timeout(now + secs(30));
    assert_eq!(lookups(&mut b), 1);
    // Once stopping, nothing more is probed.
    b.core.handle_drain(now + secs(31), secs(5));
    b.core.handle_timeout(now + secs(60));
    assert_eq!(lookups(&mut b), 0, "no probe while draining");
}

#[test]
fn a_registrar_named_by_host_that_stops_answering_is_looked_up_again_and_followed() {
    const OLD: &str = "192.0.2.1:5060";
    const NEW: &str = "192.0.2.2:5060";
    let named = |at: &str| {
        let mut t = carrier(at);
        t.settings.registrar = "sip:registrar.carrier.example".into();
        t
    };
    let now = Instant::now();
    let mut settings = test_settings(10);
    settings.started = now;
    settings.registrations = vec![TrunkLookup::Resolved(Box::new(named(OLD)))];
    let mut b = Bench {
        core: Core::new(settings, None, &Registry::new()),
        now,
    };
    let asked = |b: &mut Bench| {
        b.events()
            .iter()
            .filter(|e| matches!(e, Event::LookUpRegistrar(t) if t == "carrier"))
            .count()
    };
    // The REGISTER to the old address goes unanswered until its transaction gives up;
    // the core is woken only when it asks, as the edge does.
    let mut sent_to = Vec::new();
    let mut at = now;
    let lookup_at = loop {
        b.core.handle_timeout(at);
        sent_to.extend(b.sent().into_iter().map(|(d, _)| d));
        if asked(&mut b) > 0 {
            break at;
        }
        at = b.core.poll_timeout().expect("a timer");
        assert!(at < now + Duration::from_secs(60), "never looked up again");
    };
    assert!(
        lookup_at <= now + Duration::from_secs(33),
        "asked as the REGISTER went unanswered (Timer F), before the retry"
    );
    assert!(
        sent_to.iter().all(|d| *d == Dest::Udp(addr(OLD))),
        "{sent_to:?}"
    );
    assert!(
        b.core.handle_registrar_lookup(
            lookup_at + Duration::from_secs(1),
            "carrier",
            Ok(named(NEW))
        ),
        "it moved: its credentials must answer challenges from the new address"
    );
    // The retry after the failure's backoff goes to where the name points now.
    let mut next = Vec::new();
    while next.is_empty() {
        at = b.core.poll_timeout().expect("a timer");
        assert!(at < now + Duration::from_secs(120), "no retry");
        b.core.handle_timeout(at);
        next.extend(b.sent());
    }
    assert!(
        next.first()
            .is_some_and(|(d, l)| *d == Dest::Udp(addr(NEW)) && l.starts_with("REGISTER")),
        "{next:?}"
    );
    // A registrar given by its address is never looked up.
    let mut settings = test_settings(10);
    settings.started = now;
    settings.registrations = vec![TrunkLookup::Resolved(Box::new(carrier(OLD)))];
    let mut b = Bench {
        core: Core::new(settings, None, &Registry::new()),
        now,
    };
    let mut lookups = 0;
    for s in 0..=40 {
        b.core.handle_timeout(now + Duration::from_secs(s));
        b.sent();
        lookups += asked(&mut b);
    }
    assert_eq!(lookups, 0);
}
