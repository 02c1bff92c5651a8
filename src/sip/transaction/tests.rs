//! The transaction layer driven with virtual time: every timer fires because the test
//! moves `now`, never because it waits.

use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::*;
use crate::sip::parse::parse;
use crate::sip::{Timers, Transport, build};

const T1: Duration = Duration::from_millis(500);

fn peer(transport: Transport) -> Peer {
    Peer {
        transport,
        addr: "127.0.0.1:5070".parse().expect("addr"),
        conn: None,
    }
}

fn request(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let text = format!(
        "{method} sip:12345@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:caller@127.0.0.1>;tag=from1\r\nTo: <sip:12345@127.0.0.1>{to_tag}\r\n\
Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes(), Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request must parse: {other:?}"),
    }
}

fn response_to(req: &Request, code: u16) -> Response {
    build::response(req, code, Some("to1"))
}

/// Status codes (or methods) of everything transmitted so far.
fn sent(t: &mut Transactions) -> Vec<String> {
    std::iter::from_fn(|| t.poll_transmit())
        .map(|x| {
            let text = String::from_utf8_lossy(&x.bytes).into_owned();
            let first = text.lines().next().unwrap_or_default().to_owned();
            match first.strip_prefix("SIP/2.0 ") {
                Some(status) => status[..3].to_owned(),
                None => first.split(' ').next().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

fn events(t: &mut Transactions) -> Vec<TxEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// Runs the timers up to `until`, returning at which offsets from `start` something was sent.
fn run_until(t: &mut Transactions, start: Instant, until: Duration) -> Vec<(Duration, String)> {
    let mut out = Vec::new();
    while let Some(at) = t.poll_timeout() {
        if at > start + until {
            break;
        }
        t.handle_timeout(at);
        for s in sent(t) {
            out.push((at - start, s));
        }
    }
    out
}

fn server_tx(e: &[TxEvent]) -> ServerTxId {
    match e {
        [TxEvent::Request { tx, .. }] => *tx,
        other => panic!("expected one request event, got {other:?}"),
    }
}

/// Delivers `req` over UDP and answers it with `code`: what was sent.
fn receive_and_answer(t: &mut Transactions, now: Instant, req: &Request, code: u16) -> Vec<String> {
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(req.clone()));
    let tx = server_tx(&events(t));
    t.respond(now, tx, response_to(req, code)).expect("live");
    sent(t)
}

#[test]
fn invite_gets_100_at_once_and_retransmissions_are_absorbed() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKa", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    assert_eq!(sent(&mut t), ["100"]);
    let tx = server_tx(&events(&mut t));
    assert!(t.is_proceeding(tx));

    t.handle_message(
        now + T1,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    assert_eq!(
        sent(&mut t),
        ["100"],
        "a copy of the INVITE gets the last provisional again"
    );
    assert!(
        events(&mut t).is_empty(),
        "a copy never reaches the transaction user"
    );

    t.respond(now + T1, tx, response_to(&invite, 180))
        .expect("live");
    t.handle_message(
        now + 2 * T1,
        peer(Transport::Udp),
        SipMessage::Request(invite),
    );
    assert_eq!(sent(&mut t), ["180", "180"]);
}

#[test]
fn a_2xx_is_resent_until_the_ack_and_then_stops() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKb", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&invite, 200)).expect("live");
    assert_eq!(sent(&mut t), ["100", "200"]);

    // Lost ACK: the 200 goes out again at T1, 2*T1 and 4*T1 after the first.
    let resent = run_until(&mut t, now, Duration::from_millis(3600));
    let times: Vec<u64> = resent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(times, [500, 1500, 3500]);
    assert!(resent.iter().all(|(_, s)| s == "200"));

    // The ACK (a new branch: it is not part of the INVITE transaction) reaches the dialog.
    let ack = request("ACK", "z9hG4bKack", 1, Some("to1"));
    t.handle_message(
        now + Duration::from_millis(3600),
        peer(Transport::Udp),
        SipMessage::Request(ack),
    );
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::Ack { .. }]));
    assert!(
        run_until(&mut t, now, Duration::from_secs(40)).is_empty(),
        "no resend after the ACK"
    );
    assert!(t.is_empty(), "the transaction ends after Timer L");
    assert!(
        events(&mut t).is_empty(),
        "an acknowledged 2xx raises no AckTimeout"
    );
}

#[test]
fn an_ack_with_the_invites_branch_but_another_call_id_leaves_the_2xx_unacknowledged() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKf", 1, None);
    receive_and_answer(&mut t, now, &invite, 200);

    // The same branch, sent-by and source, but another call's Call-ID (found by fuzzing:
    // it used to stop this call's 2xx and its ACK timer for good).
    let text = String::from_utf8_lossy(&build::encode(&SipMessage::Request(request(
        "ACK",
        "z9hG4bKf",
        1,
        Some("to1"),
    ))))
    .replace("Call-ID: call-1", "Call-ID: someone-else");
    let foreign = match parse(text.as_bytes(), Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("the forged ACK must parse: {other:?}"),
    };
    t.handle_message(
        now + Duration::from_millis(100),
        peer(Transport::Udp),
        SipMessage::Request(foreign),
    );
    match events(&mut t).as_slice() {
        [TxEvent::Ack { request, .. }] => assert_eq!(
            crate::sip::headers::call_id(&request.headers),
            Some("someone-else"),
            "handed to the dialogs under its own Call-ID, where no call takes it"
        ),
        other => panic!("expected the ACK passed up, got {other:?}"),
    }
    assert_eq!(t.counts().foreign_acks, 1);
    let resent = run_until(&mut t, now, Duration::from_millis(1600));
    assert_eq!(resent.len(), 2, "the 200 is still resent: {resent:?}");

    // Nobody ACKs the real call: it is reported, so the call can end with a BYE.
    run_until(&mut t, now, Duration::from_secs(40));
    assert!(
        events(&mut t)
            .iter()
            .any(|e| matches!(e, TxEvent::AckTimeout { call_id, .. } if call_id == "call-1")),
        "the real call's missing ACK is reported"
    );

    // The INVITE's own ACK with the same branch is still taken as the dialog's ACK.
    let mut t = Transactions::new(Timers::default());
    receive_and_answer(&mut t, now, &invite, 200);
    let own = request("ACK", "z9hG4bKf", 1, Some("to1"));
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(own));
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::Ack { .. }]));
    assert!(run_until(&mut t, now, Duration::from_secs(40)).is_empty());
    assert_eq!(t.counts().foreign_acks, 0);
}

#[test]
fn a_2xx_never_acked_is_resent_capped_at_t2_then_reported() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKc", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&invite, 200)).expect("live");
    sent(&mut t);
    let resent = run_until(&mut t, now, Duration::from_secs(40));
    let times: Vec<u64> = resent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(
        times,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    match events(&mut t).as_slice() {
        [TxEvent::AckTimeout { tx: id, call_id }] => {
            assert_eq!(*id, tx);
            assert_eq!(call_id, "call-1");
        }
        other => panic!("expected AckTimeout, got {other:?}"),
    }
    assert!(t.is_empty());
}

#[test]
fn a_copy_of_the_invite_after_a_lost_200_gets_the_200_again() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKd", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&invite, 200)).expect("live");
    sent(&mut t);
    t.handle_message(
        now + Duration::from_millis(100),
        peer(Transport::Udp),
        SipMessage::Request(invite),
    );
    assert_eq!(sent(&mut t), ["200"]);
    assert!(events(&mut t).is_empty());
    assert_eq!(t.counts().retransmissions_sent, 1);
}

#[test]
fn a_non_2xx_final_is_resent_until_its_ack_which_stays_in_the_transaction() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKe", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&invite, 486)).expect("live");
    assert_eq!(sent(&mut t), ["100", "486"]);
    let resent = run_until(&mut t, now, Duration::from_millis(1600));
    assert_eq!(
        resent.len(),
        2,
        "Timer G fired at 0.5 s and 1.5 s: {resent:?}"
    );

    // The ACK of a non-2xx carries the INVITE's branch.
    let ack = request("ACK", "z9hG4bKe", 1, Some("to1"));
    t.handle_message(
        now + Duration::from_millis(1600),
        peer(Transport::Udp),
        SipMessage::Request(ack.clone()),
    );
    t.handle_message(
        now + Duration::from_millis(1700),
        peer(Transport::Udp),
        SipMessage::Request(ack),
    );
    assert!(
        events(&mut t).is_empty(),
        "the ACK of a non-2xx never reaches the TU"
    );
    assert!(run_until(&mut t, now, Duration::from_secs(10)).is_empty());
    assert!(t.is_empty(), "Timer I ended the transaction");
    assert_eq!(
        t.respond(
            now,
            tx,
            response_to(&request("INVITE", "z9hG4bKe", 1, None), 200)
        ),
        Err(TxError::Gone)
    );
}

#[test]
fn a_non_2xx_without_ack_ends_at_timer_h() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKf", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&invite, 487)).expect("live");
    run_until(&mut t, now, Duration::from_millis(31_999));
    assert!(!t.is_empty());
    run_until(&mut t, now, Duration::from_secs(32));
    assert!(t.is_empty());
}

#[test]
fn cancel_finds_its_invite_before_and_after_the_final_response() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKg", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(invite.clone()),
    );
    let tx = server_tx(&events(&mut t));

    let cancel = request("CANCEL", "z9hG4bKg", 1, None);
    t.handle_message(
        now,
        peer(Transport::Udp),
        SipMessage::Request(cancel.clone()),
    );
    let cancel_tx = match events(&mut t).as_slice() {
        [
            TxEvent::Cancel {
                tx: c,
                invite: Some(i),
                ..
            },
        ] if *i == tx => *c,
        other => panic!("expected a CANCEL matching the INVITE, got {other:?}"),
    };
    assert!(t.is_proceeding(tx));
    t.respond(now, cancel_tx, response_to(&cancel, 200))
        .expect("live");
    t.respond(now, tx, response_to(&invite, 487)).expect("live");
    assert_eq!(sent(&mut t), ["100", "200", "487"]);

    // A late CANCEL (after the final response) still finds the INVITE, which is no
    // longer proceeding: the TU answers 200 to the CANCEL and nothing else.
    let late = request("CANCEL", "z9hG4bKg", 1, None);
    t.handle_message(now + T1, peer(Transport::Udp), SipMessage::Request(late));
    assert!(
        sent(&mut t).contains(&"200".to_owned()),
        "the copy of the CANCEL gets its 200 again"
    );

    let other = request("CANCEL", "z9hG4bKnone", 1, None);
    t.handle_message(now + T1, peer(Transport::Udp), SipMessage::Request(other));
    assert!(matches!(
        events(&mut t).as_slice(),
        [TxEvent::Cancel { invite: None, .. }]
    ));
}

#[test]
fn non_invite_server_resends_its_final_then_ends_at_timer_j_or_at_once_on_tcp() {
    for (transport, lives) in [
        (Transport::Udp, Duration::from_secs(32)),
        (Transport::Tcp, Duration::ZERO),
    ] {
        let mut t = Transactions::new(Timers::default());
        let now = Instant::now();
        let info = request("INFO", "z9hG4bKh", 5, None);
        t.handle_message(now, peer(transport), SipMessage::Request(info.clone()));
        let tx = server_tx(&events(&mut t));
        t.respond(now, tx, response_to(&info, 200)).expect("live");
        assert_eq!(sent(&mut t), ["200"], "no 100 for a non-INVITE");
        if transport == Transport::Udp {
            t.handle_message(now, peer(transport), SipMessage::Request(info.clone()));
            assert_eq!(sent(&mut t), ["200"]);
            assert!(events(&mut t).is_empty());
        }
        run_until(&mut t, now, lives);
        assert!(t.is_empty(), "{transport:?}");
    }
}

#[test]
fn non_invite_client_retransmits_on_timer_e_and_times_out_on_f() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let bye = request("BYE", "z9hG4bKi", 2, Some("to1"));
    let tx = t.send_request(now, peer(Transport::Udp), bye);
    assert_eq!(sent(&mut t), ["BYE"]);
    let resent = run_until(&mut t, now, Duration::from_secs(40));
    let times: Vec<u64> = resent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(
        times,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(events(&mut t), [TxEvent::Timeout { tx }]);
    assert!(t.is_empty());
}

#[test]
fn non_invite_client_completes_on_a_final_and_absorbs_its_copies() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let bye = request("BYE", "z9hG4bKj", 2, Some("to1"));
    let tx = t.send_request(now, peer(Transport::Udp), bye.clone());
    sent(&mut t);
    let ok = response_to(&bye, 200);
    t.handle_message(
        now + T1 / 2,
        peer(Transport::Udp),
        SipMessage::Response(ok.clone()),
    );
    t.handle_message(now + T1, peer(Transport::Udp), SipMessage::Response(ok));
    assert!(matches!(events(&mut t).as_slice(), [TxEvent::Response { tx: id, .. }] if *id == tx));
    assert!(
        run_until(&mut t, now, Duration::from_secs(10)).is_empty(),
        "no resend after a final"
    );
    assert!(t.is_empty(), "Timer K ended it");
}

#[test]
fn invite_client_acks_a_failure_itself_and_passes_every_2xx_up() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bKk", 1, None);
    let tx = t.send_request(now, peer(Transport::Udp), invite.clone());
    sent(&mut t);
    let resent = run_until(&mut t, now, Duration::from_millis(1600));
    assert_eq!(resent.len(), 2, "Timer A: {resent:?}");
    sent(&mut t);
    t.handle_message(
        now + Duration::from_millis(1600),
        peer(Transport::Udp),
        SipMessage::Response(response_to(&invite, 180)),
    );
    assert!(
        run_until(&mut t, now, Duration::from_secs(60)).is_empty(),
        "no resend once proceeding, no Timer B"
    );

    let busy = response_to(&invite, 486);
    t.handle_message(
        now + Duration::from_secs(61),
        peer(Transport::Udp),
        SipMessage::Response(busy.clone()),
    );
    let out: Vec<Transmit> = std::iter::from_fn(|| t.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    let ack = String::from_utf8_lossy(&out[0].bytes).into_owned();
    assert!(
        ack.starts_with("ACK sip:12345@127.0.0.1 SIP/2.0\r\n"),
        "{ack}"
    );
    assert!(
        ack.contains("branch=z9hG4bKk"),
        "same branch as the INVITE: {ack}"
    );
    assert!(ack.contains("tag=to1"), "the response's To tag: {ack}");
    assert!(ack.contains("CSeq: 1 ACK"), "{ack}");
    t.handle_message(
        now + Duration::from_secs(62),
        peer(Transport::Udp),
        SipMessage::Response(busy),
    );
    assert_eq!(
        sent(&mut t),
        ["ACK"],
        "a copy of the failure gets the ACK again"
    );
    let e = events(&mut t);
    assert_eq!(
        e.iter()
            .filter(|e| matches!(e, TxEvent::Response { tx: id, .. } if *id == tx))
            .count(),
        2
    );

    let mut t = Transactions::new(Timers::default());
    let invite = request("INVITE", "z9hG4bKl", 1, None);
    t.send_request(now, peer(Transport::Tcp), invite.clone());
    sent(&mut t);
    assert!(
        run_until(&mut t, now, Duration::from_secs(5)).is_empty(),
        "no Timer A over TCP"
    );
    let ok = response_to(&invite, 200);
    t.handle_message(now, peer(Transport::Tcp), SipMessage::Response(ok.clone()));
    t.handle_message(now, peer(Transport::Tcp), SipMessage::Response(ok));
    assert_eq!(
        events(&mut t).len(),
        2,
        "both 2xx reach the dialog, which ACKs each"
    );
}

#[test]
fn invite_client_times_out_on_timer_b() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let tx = t.send_request(
        now,
        peer(Transport::Udp),
        request("INVITE", "z9hG4bKm", 1, None),
    );
    sent(&mut t);
    let resent = run_until(&mut t, now, Duration::from_secs(40));
    let times: Vec<u64> = resent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(
        times,
        [500, 1500, 3500, 7500, 15500, 31500],
        "Timer A doubles without a cap"
    );
    assert_eq!(events(&mut t), [TxEvent::Timeout { tx }]);
}

#[test]
fn stray_responses_are_counted_and_dropped() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let resp = response_to(&request("INVITE", "z9hG4bKnobody", 1, None), 200);
    t.handle_message(now, peer(Transport::Udp), SipMessage::Response(resp));
    assert!(events(&mut t).is_empty());
    assert_eq!(t.counts().stray_responses, 1);
}

#[test]
fn rfc_2543_requests_without_a_cookie_still_match_their_copies() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let info = request("INFO", "oldstyle", 3, None);
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(info.clone()));
    let tx = server_tx(&events(&mut t));
    t.respond(now, tx, response_to(&info, 200)).expect("live");
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(info));
    assert!(events(&mut t).is_empty());
    assert_eq!(sent(&mut t), ["200", "200"]);
}

#[test]
fn options_and_first_registers_end_with_their_answer_and_a_copy_is_answered_again() {
    let mut t = Transactions::new(Timers::default());
    let now = Instant::now();
    let options = request("OPTIONS", "z9hG4bKo", 1, None);
    assert_eq!(receive_and_answer(&mut t, now, &options, 200), ["200"]);
    assert!(t.is_empty(), "nothing kept for 32 s");
    assert_eq!(receive_and_answer(&mut t, now, &options, 200), ["200"]);

    // So does a REGISTER that carries no credentials yet: its answer is a challenge.
    let register = request("REGISTER", "z9hG4bKr", 1, None);
    assert_eq!(receive_and_answer(&mut t, now, &register, 401), ["401"]);
    assert!(t.is_empty(), "a challenge keeps nothing");

    // Other non-INVITE requests still absorb their copies for 64*T1 over UDP, and so does a
    // REGISTER with credentials (a copy must not be judged again as a replay).
    let info = request("INFO", "z9hG4bKi", 2, Some("to1"));
    receive_and_answer(&mut t, now, &info, 200);
    assert_eq!(t.len(), (1, 0));
    let text = format!("{}", request("REGISTER", "z9hG4bKr2", 2, None)).replace(
        "Max-Forwards: 70",
        "Authorization: Digest username=\"1001\"\r\nMax-Forwards: 70",
    );
    let authorized = match parse(text.as_bytes(), Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("must parse: {other:?}"),
    };
    receive_and_answer(&mut t, now, &authorized, 200);
    assert_eq!(t.len(), (2, 0));
}

#[test]
fn beyond_the_cap_new_requests_get_503_without_a_transaction() {
    let mut t = Transactions::with_limit(Timers::default(), 2);
    let now = Instant::now();
    for (i, branch) in ["z9hG4bK1", "z9hG4bK2"].iter().enumerate() {
        let invite = request("INVITE", branch, i as u32 + 1, None);
        t.handle_message(now, peer(Transport::Udp), SipMessage::Request(invite));
    }
    assert_eq!(events(&mut t).len(), 2);
    sent(&mut t);
    let third = request("REGISTER", "z9hG4bK3", 3, None);
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(third));
    assert_eq!(sent(&mut t), ["503"]);
    assert!(
        events(&mut t).is_empty(),
        "the transaction user never sees it"
    );
    assert_eq!(t.counts().refused_full, 1);
    assert_eq!(t.len(), (2, 0));
    // An ACK is never answered, at the cap or not.
    let ack = request("ACK", "z9hG4bK9", 1, Some("to1"));
    t.handle_message(now, peer(Transport::Udp), SipMessage::Request(ack));
    assert!(sent(&mut t).is_empty());
}
