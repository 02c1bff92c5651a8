//! Offers ending every way: answered, refused, timed out, abandoned, withdrawn.

use super::*;
use crate::acd::messages::{AgentState, HungUpBy, Instruction, OfferOutcome};
use crate::events::EventKind;

#[test]
fn ring_no_answer_goes_to_the_next_agent_and_the_caller_keeps_its_place() {
    let mut s = three_with("skills-based", "retry_s = 100\n");
    s.login(&["a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let first = s.offered("c1", "a2");
    s.at(1.0);
    s.enqueue("c2", "q", "cmn", 0);
    let second = s.offered("c2", "a3");
    s.outcome("c2", second, OfferOutcome::Rejected);
    s.take_events();
    // c1's ring times out after 15 s; c2 has nobody left to try until its retry delay.
    s.at(15.0);
    assert_eq!(
        s.take()[0],
        ("c1".to_owned(), Instruction::CancelOffer { offer: first })
    );
    let events = s.take_events();
    assert!(matches!(
        &events[0],
        EventKind::RingNoAnswer { call_id, agent, ring_ms: 15_000, .. } if call_id == "c1" && agent == "a2"
    ));
    // a3 is free again and c1 is still first in line, so c1 gets it.
    assert!(matches!(
        &events[1],
        EventKind::AgentOffered { call_id, agent, .. } if call_id == "c1" && agent == "a3"
    ));
    assert_eq!(s.waiting("q"), ["c1", "c2"]);
}

#[test]
fn a_caller_is_offered_the_same_agent_again_only_after_the_retry_delay() {
    let mut s = three("longest-idle");
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.at(2.0);
    s.outcome("c1", o, OfferOutcome::NoAnswer);
    assert!(s.offers().is_empty());
    s.at(6.9);
    assert!(s.offers().is_empty());
    s.at(7.0);
    s.offered("c1", "a1");
}

#[test]
fn n_unanswered_offers_in_a_row_pause_the_agent() {
    let text = format!(
        "{QUEUE}max_no_answer = 2\nretry_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.outcome("c1", o, OfferOutcome::NoAnswer);
    let o = s.offered("c1", "a1");
    s.take_events();
    s.outcome("c1", o, OfferOutcome::Failed);
    let events = s.take_events();
    assert!(matches!(&events[0], EventKind::RingNoAnswer { .. }));
    assert_eq!(
        events[1],
        EventKind::AgentPause {
            agent: "a1".into(),
            reason: "no answer".into()
        }
    );
    assert_eq!(
        s.state("a1"),
        AgentState::Paused {
            reason: "no answer".into()
        }
    );
    assert!(s.offers().is_empty());
    assert_eq!(s.waiting("q"), ["c1"]);
}

#[test]
fn an_answer_resets_the_no_answer_streak() {
    let text = format!(
        "{QUEUE}max_no_answer = 2\nretry_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.outcome("c1", o, OfferOutcome::NoAnswer);
    let o = s.offered("c1", "a1");
    s.complete("c1", o);
    s.enqueue("c2", "q", "cmn", 0);
    let o = s.offered("c2", "a1");
    s.outcome("c2", o, OfferOutcome::NoAnswer);
    assert_eq!(s.state("a1"), AgentState::Ringing, "re-offered, not paused");
}

#[test]
fn abandon_while_queued_reports_position_and_wait() {
    let mut s = three("longest-idle");
    s.enqueue("c1", "q", "cmn", 0);
    s.enqueue("c2", "q", "cmn", 0);
    s.at(42.5);
    s.take_events();
    s.gone("c2");
    assert_eq!(
        s.take_events(),
        [EventKind::Abandoned {
            call_id: "c2".into(),
            queue: "q".into(),
            position: 2,
            wait_ms: 42_500
        }]
    );
    assert_eq!(s.waiting("q"), ["c1"]);
    assert_eq!(s.forgotten, ["c2"]);
}

/// A waiting call whose leg the system ended (media timeout, shutdown) did not abandon:
/// it leaves the queue with no exit event, and its own end counts it as interrupted.
#[test]
fn a_call_the_system_ended_while_queued_is_no_abandonment() {
    let mut s = three("longest-idle");
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.enqueue("c2", "q", "cmn", 0);
    s.at(3.0);
    s.take();
    s.take_events();
    s.gone_by("c2", HungUpBy::System);
    assert!(s.take().is_empty());
    s.gone_by("c1", HungUpBy::System);
    assert_eq!(
        s.take(),
        [("c1".into(), Instruction::CancelOffer { offer: o })],
        "the ringing agent is released"
    );
    assert!(s.take_events().is_empty(), "no Abandoned");
    assert!(s.waiting("q").is_empty());
    assert_eq!(s.forgotten, ["c2", "c1"]);
    assert_eq!(s.state("a1"), AgentState::Available);
}

#[test]
fn abandon_while_ringing_cancels_the_offer_and_frees_the_agent() {
    let mut s = three("longest-idle");
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.at(3.0);
    s.take_events();
    s.gone("c1");
    assert_eq!(
        s.take(),
        [("c1".into(), Instruction::CancelOffer { offer: o })]
    );
    let events = s.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EventKind::RingNoAnswer { .. }))
    );
    assert!(matches!(
        &events[..],
        [EventKind::Abandoned {
            position: 1,
            wait_ms: 3000,
            ..
        }]
    ));
    assert_eq!(s.state("a1"), AgentState::Available);
    // The agent's late answer for the gone caller changes nothing.
    s.outcome("c1", o, OfferOutcome::Answered);
    assert!(s.take().is_empty());
    assert_eq!(s.state("a1"), AgentState::Available);
}

#[test]
fn hang_ups_while_connected_end_the_call_once() {
    let text = format!("{QUEUE}{}", agents(&[("a1", "cmn", "q = 1")]));
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.at(4.0);
    s.outcome("c1", o, OfferOutcome::Answered);
    s.at(64.0);
    s.take_events();
    s.gone("c1");
    s.ended("c1", HungUpBy::Agent);
    assert_eq!(
        s.take_events(),
        [EventKind::CallEnded {
            call_id: "c1".into(),
            queue: "q".into(),
            agent: "a1".into(),
            talk_ms: 60_000,
            hung_up_by: HungUpBy::Caller
        }]
    );
    assert_eq!(s.state("a1"), AgentState::Available);
}

#[test]
fn an_agent_may_take_several_calls_when_configured() {
    let text = format!(
        "{QUEUE}[[agents]]\nid = \"multi\"\nuri = \"sip:m@pbx\"\nmax_offers = 2\nskills = {{ q = 1 }}\n"
    );
    let mut s = Sim::new(&text);
    s.login(&["multi"]);
    s.enqueue("c1", "q", "cmn", 0);
    s.enqueue("c2", "q", "cmn", 0);
    s.enqueue("c3", "q", "cmn", 0);
    let offers = s.offers();
    let calls: Vec<&str> = offers.iter().map(|o| o.0.as_str()).collect();
    assert_eq!(calls, ["c1", "c2"]);
}
