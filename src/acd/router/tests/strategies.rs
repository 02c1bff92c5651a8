//! Each queue strategy, caller priority and language requirements.

use std::time::Duration;

use super::*;
use crate::acd::messages::{AgentState, Instruction, OfferOutcome};

#[test]
fn longest_idle_offers_the_agent_free_the_longest() {
    let mut s = three("longest-idle");
    s.login(&["a2"]);
    s.at(1.0);
    s.login(&["a1", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a2");
    s.at(2.0);
    s.complete("c1", o);
    // a2 just finished; a1 and a3 have been idle since 1 s, a1 first in config order.
    s.enqueue("c2", "q", "cmn", 0);
    let o = s.offered("c2", "a1");
    s.complete("c2", o);
    s.enqueue("c3", "q", "cmn", 0);
    s.offered("c3", "a3");
}

#[test]
fn round_robin_continues_after_the_last_agent_offered() {
    let mut s = three("round-robin");
    s.login(&["a1", "a2", "a3"]);
    let mut order = Vec::new();
    for i in 0..4 {
        let call = format!("c{i}");
        s.enqueue(&call, "q", "cmn", 0);
        let offers = s.offers();
        let (_, id, agent) = offers[0].clone();
        order.push(agent);
        s.complete(&call, id);
    }
    assert_eq!(order, ["a1", "a2", "a3", "a1"]);
    // a2 is busy: the memory skips it and goes on from where it was.
    s.enqueue("busy", "q", "cmn", 0);
    let busy = s.offered("busy", "a2");
    s.outcome("busy", busy, OfferOutcome::Answered);
    s.enqueue("c5", "q", "cmn", 0);
    s.offered("c5", "a3");
}

#[test]
fn fewest_calls_prefers_the_member_with_fewest_answered_calls() {
    let mut s = three("fewest-calls");
    s.login(&["a1", "a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.complete("c1", o);
    s.enqueue("c2", "q", "cmn", 0);
    let o = s.offered("c2", "a2");
    s.complete("c2", o);
    s.enqueue("c3", "q", "cmn", 0);
    let o = s.offered("c3", "a3");
    s.complete("c3", o);
    // All have one call: the tie goes to the longest idle (a1 finished first).
    s.enqueue("c4", "q", "cmn", 0);
    let o = s.offered("c4", "a1");
    s.complete("c4", o);
    s.enqueue("c5", "q", "cmn", 0);
    let o = s.offered("c5", "a2");
    s.complete("c5", o);

    // a1 (two calls) logs out and in again: its count starts over, so it is first.
    s.control(
        "a1",
        AgentAction::Logout {
            reason: "break".into(),
        },
    )
    .expect("logout");
    s.login(&["a1"]);
    s.enqueue("c6", "q", "cmn", 0);
    s.offered("c6", "a1");
}

#[test]
fn skills_based_offers_the_highest_level_then_the_next() {
    let mut s = three("skills-based");
    s.login(&["a1", "a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a2");
    s.outcome("c1", o, OfferOutcome::Answered);
    s.enqueue("c2", "q", "cmn", 0);
    s.offered("c2", "a3");
}

#[test]
fn ring_all_rings_everyone_and_the_first_answer_wins() {
    let mut s = three("ring-all");
    s.login(&["a1", "a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let offers = s.offers();
    let agents: Vec<&str> = offers.iter().map(|(_, _, a)| a.as_str()).collect();
    assert_eq!(agents, ["a1", "a2", "a3"]);
    let id = |agent: &str| offers.iter().find(|o| o.2 == agent).map(|o| o.1).unwrap();
    s.outcome("c1", id("a2"), OfferOutcome::Answered);
    let said = s.take();
    assert!(said.contains(&("c1".into(), Instruction::CancelOffer { offer: id("a1") })));
    assert!(said.contains(&("c1".into(), Instruction::CancelOffer { offer: id("a3") })));
    assert!(said.contains(&(
        "c1".into(),
        Instruction::Connected {
            offer: id("a2"),
            agent: "a2".into()
        }
    )));
    assert_eq!(s.state("a1"), AgentState::Available);
    assert_eq!(s.state("a2"), AgentState::OnCall);
    // a3's phone answered a moment too late: its leg is dropped.
    s.outcome("c1", id("a3"), OfferOutcome::Answered);
    assert_eq!(
        s.take(),
        [("c1".into(), Instruction::CancelOffer { offer: id("a3") })]
    );
    assert_eq!(s.state("a3"), AgentState::Available);
}

#[test]
fn a_priority_caller_goes_ahead() {
    let mut s = three("longest-idle");
    s.enqueue("c1", "q", "cmn", 0);
    s.enqueue("c2", "q", "cmn", 0);
    s.enqueue("vip", "q", "cmn", 5);
    let positions: Vec<(String, u32)> = s
        .take()
        .into_iter()
        .filter_map(|(c, i)| match i {
            Instruction::Queued { position, .. } => Some((c, position)),
            _ => None,
        })
        .collect();
    assert_eq!(
        positions,
        [("c1".into(), 1), ("c2".into(), 2), ("vip".into(), 1)]
    );
    assert_eq!(s.waiting("q"), ["vip", "c1", "c2"]);
    s.login(&["a1"]);
    s.offered("vip", "a1");
}

#[test]
fn language_is_required_until_the_relax_time() {
    let text = format!(
        "{QUEUE}language_relax_s = 60\n{}",
        agents(&[("m", "cmn", "q = 1"), ("y", "yue", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["m"]);
    s.enqueue("canto", "q", "yue", 0);
    assert!(s.offers().is_empty(), "a Mandarin-only agent never gets it");
    // A Mandarin caller behind is served by the free Mandarin agent meanwhile.
    s.enqueue("mando", "q", "cmn", 0);
    let o = s.offered("mando", "m");
    s.at(30.0);
    s.complete("mando", o);
    assert!(s.offers().is_empty(), "still before the relax time");
    assert_eq!(
        s.router.poll_timeout(),
        Some(s.t0 + Duration::from_secs(60))
    );
    s.at(60.0);
    s.offered("canto", "m");
}

#[test]
fn a_cantonese_agent_gets_the_cantonese_caller_before_relaxing() {
    let text = format!(
        "{QUEUE}language_relax_s = 60\n{}",
        agents(&[("m", "cmn", "q = 1"), ("y", "yue,cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["m"]);
    s.enqueue("canto", "q", "yue", 0);
    s.at(10.0);
    s.login(&["y"]);
    s.offered("canto", "y");
}
