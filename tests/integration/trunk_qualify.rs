//! OPTIONS qualify and failover with real peers over loopback: a trunk whose address
//! answers nothing is probed down and skipped, a trunk (SIPp) that answers the transfer's
//! INVITE 503 hands it to the next, and a baresip phone playing the last trunk, which
//! answers its probes, takes the call. The API, the metrics and the event log show which
//! trunk is up. An agent on the PBX (baresip) whose phone goes away is probed down and
//! offered no call, and stays logged in.

use crate::common;

use std::net::UdpSocket;
use std::time::Duration;

use common::baresip::{Baresip, PhoneOptions};
use common::{Engine, Sipp, out_dir, tone_callers, wait_until};
use serde_json::Value;

/// Greets, then transfers to `desk` through three trunks in order.
const STEPS: &str = "  start:\n    play: hello\n    next: out\n  out:\n    transfer: trunk\n    \
number: desk\n    trunks: [dead, busy, pbx]\n    ring_timeout: 10s\n    failed: sorry\n  \
sorry:\n    hangup: transfer_failed\n";

/// The state `/api/v1/peers` gives `name`.
fn state(peers: &Value, name: &str) -> Option<String> {
    peers
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["state"].as_str().map(str::to_owned))
}

#[test]
fn a_transfer_skips_a_dead_trunk_and_fails_over_from_one_that_cannot_take_the_call() {
    let dir = out_dir("trunk_failover");
    // A trunk that has gone away: its socket takes the probes and answers nothing.
    let dead = UdpSocket::bind("127.0.0.1:0").expect("bind the dead trunk's socket");
    let busy_port = common::free_port();
    let desk = Baresip::start(
        &dir,
        PhoneOptions {
            call_limit: Duration::from_secs(3),
            ..PhoneOptions::unregistered("desk")
        },
    );
    let dead_section = format!("uri = \"sip:{}\"\n", dead.local_addr().expect("addr"));
    // Not probed: only a call finds out that it cannot take one.
    let busy_section = format!("uri = \"sip:127.0.0.1:{busy_port}\"\nqualify = false\n");
    let pbx_section = format!("uri = \"sip:{}\"\n", desk.addr());
    let engine = Engine::start_steps(
        &dir,
        0.5,
        STEPS,
        &[
            ("trunks.named.dead", &dead_section),
            ("trunks.named.busy", &busy_section),
            ("trunks.named.pbx", &pbx_section),
            (
                "trunks.qualify",
                "interval_s = 1\ntimeout_ms = 500\ndown_after = 2\nup_after = 1\n",
            ),
        ],
    );
    let mut peers = Value::Null;
    assert!(
        wait_until(Duration::from_secs(15), || {
            peers = engine.api_get("/api/v1/peers");
            state(&peers, "dead").as_deref() == Some("down")
                && state(&peers, "pbx").as_deref() == Some("up")
        }),
        "{peers}\n{}",
        engine.log()
    );
    assert_eq!(state(&peers, "busy"), None, "qualify = false: not probed");
    assert_eq!(
        engine.metric("hotline_peer_up{peer=\"dead\",kind=\"trunk\"}"),
        Some(0.0)
    );
    assert_eq!(
        engine.metric("hotline_peer_up{peer=\"pbx\",kind=\"trunk\"}"),
        Some(1.0)
    );

    let busy = Sipp::start_on(
        &dir,
        busy_port,
        engine.addr(),
        "trunk_unavailable.xml",
        &[],
        &["-m", "1"],
    );
    let caller = tone_callers(&engine, "100", 10.0, &["-m", "1"]).finish(Duration::from_secs(60));
    assert!(caller.success, "{}\n{}", caller.output, caller.errors);
    let busy = busy.finish(Duration::from_secs(10));
    assert!(
        busy.success,
        "the second trunk got the INVITE and its ACK: {}\n{}",
        busy.output, busy.errors
    );
    assert_eq!(desk.calls_answered(), 1, "{}", desk.log());
    let invite = &desk.invites()[0];
    assert!(
        invite.starts_with(&format!("INVITE sip:desk@{} SIP/2.0", desk.addr())),
        "{invite}"
    );

    // The dead trunk heard probes only, never the call.
    dead.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    let mut methods = Vec::new();
    while let Ok(n) = dead.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        methods.push(text.split(' ').next().unwrap_or_default().to_owned());
    }
    assert!(!methods.is_empty(), "no probe reached the dead trunk");
    assert!(methods.iter().all(|m| m == "OPTIONS"), "{methods:?}");

    let events = engine.wait_events(Duration::from_secs(10), |e| {
        e.iter().any(|e| e["event"] == "call_finished")
    });
    let of = |kind: &str, peer: &str| {
        events
            .iter()
            .any(|e| e["event"] == kind && e["peer"] == peer && e["kind"] == "trunk")
    };
    assert!(
        of("peer_down", "dead") && of("peer_up", "pbx"),
        "{events:?}"
    );
    let finished = events
        .iter()
        .find(|e| e["event"] == "call_finished")
        .expect("the call's end");
    assert_eq!(finished["outcome"], "transferred", "{events:?}");
    assert!(
        engine
            .log()
            .contains("the trunk cannot take the call: trying the next"),
        "{}",
        engine.log()
    );
}

#[test]
fn a_pbx_agent_that_stops_answering_probes_is_offered_no_call_and_stays_logged_in() {
    let dir = out_dir("qualify_agent");
    let desk = Baresip::start(&dir, PhoneOptions::unregistered("desk"));
    let pbx_agent = format!(
        "\n[[acd.agents]]\nid = \"pbx1\"\nname = \"Desk on the PBX\"\nuri = \"{}\"\n\
         skills = {{ support = 1 }}\n",
        desk.uri()
    );
    let engine = common::agents::engine_with(
        &dir,
        &[],
        &pbx_agent,
        &[(
            "trunks.qualify",
            "agents = true\ninterval_s = 1\ntimeout_ms = 500\ndown_after = 2\nup_after = 1\n",
        )],
    );
    common::agents::login(&engine, "pbx1");
    let wait_state = |want: &str| {
        let mut peers = Value::Null;
        let reached = wait_until(Duration::from_secs(15), || {
            peers = engine.api_get("/api/v1/peers");
            state(&peers, "pbx1").as_deref() == Some(want)
        });
        assert!(reached, "pbx1 never {want}: {peers}\n{}", engine.log());
    };
    wait_state("up");
    // The desk goes away: two probes later the agent is down.
    drop(desk);
    wait_state("down");
    // Supervisors see it too.
    let mut view = Value::Null;
    let shown = wait_until(Duration::from_secs(5), || {
        view = engine.api_get("/api/v1/agents/pbx1");
        view["reachable"] == false
    });
    assert!(shown, "the agent's view says nothing of it: {view}");
    let caller = tone_callers(&engine, "100", 10.0, &["-m", "1"]);
    assert!(
        engine
            .wait_event(Duration::from_secs(10), |e| e["event"] == "enter_queue")
            .is_some(),
        "{}",
        engine.log()
    );
    assert!(
        engine
            .wait_event(Duration::from_secs(3), |e| e["event"] == "agent_offered")
            .is_none(),
        "nothing rings on an agent that does not answer"
    );
    assert!(common::agents::wait_agent_state(
        &engine,
        "pbx1",
        "available"
    ));
    let events = engine.events();
    let of = |kind: &str| {
        events
            .iter()
            .any(|e| e["event"] == kind && e["peer"] == "pbx1" && e["kind"] == "agent")
    };
    assert!(of("peer_up") && of("peer_down"), "{events:?}");
    // The caller is still waiting; SIPp is stopped here.
    let _ = caller.finish(Duration::from_secs(1));
}
