//! Router scenarios in virtual time: every strategy, priority, language relaxation, ring
//! timeouts, abandons at each stage, agents changing state mid-offer, wrap-up, overflow,
//! join/leave rules and announcements.

use std::time::{Duration, Instant};

use super::Router;
use crate::acd::config::AcdConfig;
use crate::acd::messages::{
    AgentAction, AgentState, ControlError, EnqueueRequest, HungUpBy, Input, InputError,
    Instruction, LeaveReason, OfferId, OfferOutcome, Output, Target,
};
use crate::events::EventKind;

/// Drives a router and records everything it says.
pub(super) struct Sim {
    pub router: Router,
    pub t0: Instant,
    pub now: Instant,
    pub events: Vec<EventKind>,
    pub said: Vec<(String, Instruction)>,
    pub forgotten: Vec<String>,
}

/// `[[agents]]` blocks reached through the trunk: (id, languages, skills as inline TOML).
pub(super) fn agents(specs: &[(&str, &str, &str)]) -> String {
    let mut text = String::new();
    for (id, languages, skills) in specs {
        let languages: Vec<String> = languages.split(',').map(|l| format!("\"{l}\"")).collect();
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\nuri = \"sip:{id}@pbx.example\"\nlanguages = [{}]\n\
             skills = {{ {skills} }}\n",
            languages.join(", ")
        ));
    }
    text
}

impl Sim {
    pub fn new(text: &str) -> Sim {
        let config: AcdConfig = toml::from_str(text).expect("test config parses");
        let t0 = Instant::now();
        Sim {
            router: Router::new(&config, t0).expect("test config is valid"),
            t0,
            now: t0,
            events: Vec::new(),
            said: Vec::new(),
            forgotten: Vec::new(),
        }
    }

    /// Moves virtual time to `secs` after the start and runs what fell due.
    pub fn at(&mut self, secs: f64) {
        let now = self.t0 + Duration::from_secs_f64(secs);
        assert!(now >= self.now, "time goes forward");
        self.now = now;
        self.router.handle_timeout(now);
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(out) = self.router.poll_output() {
            match out {
                Output::Event(kind) => self.events.push(kind),
                Output::Call {
                    call_id,
                    instruction,
                } => self.said.push((call_id, instruction)),
                Output::Forget { call_id } => self.forgotten.push(call_id),
            }
        }
    }

    pub fn input(&mut self, input: Input) -> Result<(), InputError> {
        let result = self.router.handle_input(self.now, input);
        self.drain();
        result
    }

    pub fn enqueue(&mut self, call: &str, queue: &str, language: &str, priority: i32) {
        let request = EnqueueRequest {
            call_id: call.to_owned(),
            queue: queue.to_owned(),
            language: language.to_owned(),
            intent: None,
            priority,
            caller: "13800000000".to_owned(),
        };
        self.input(Input::Enqueue(request)).expect("enqueue");
    }

    pub fn outcome(&mut self, call: &str, offer: OfferId, outcome: OfferOutcome) {
        let input = Input::OfferOutcome {
            call_id: call.to_owned(),
            offer,
            outcome,
        };
        self.input(input).expect("outcome");
    }

    pub fn gone(&mut self, call: &str) {
        let input = Input::CallerGone {
            call_id: call.to_owned(),
        };
        self.input(input).expect("gone");
    }

    pub fn ended(&mut self, call: &str, by: HungUpBy) {
        let input = Input::CallEnded {
            call_id: call.to_owned(),
            hung_up_by: by,
        };
        self.input(input).expect("ended");
    }

    pub fn control(
        &mut self,
        agent: &str,
        action: AgentAction,
    ) -> Result<AgentState, ControlError> {
        let result = self.router.control(self.now, agent, action);
        self.drain();
        result.map(|v| v.state)
    }

    pub fn login(&mut self, agents: &[&str]) {
        for a in agents {
            self.control(a, AgentAction::Login).expect("login");
        }
    }

    /// Instructions said since the last call, in order.
    pub fn take(&mut self) -> Vec<(String, Instruction)> {
        std::mem::take(&mut self.said)
    }

    pub fn take_events(&mut self) -> Vec<EventKind> {
        std::mem::take(&mut self.events)
    }

    /// The offers made since the last `take`: (call, offer, agent).
    pub fn offers(&mut self) -> Vec<(String, OfferId, String)> {
        self.take()
            .into_iter()
            .filter_map(|(call, i)| match i {
                Instruction::Offer { offer, agent, .. } => Some((call, offer, agent)),
                _ => None,
            })
            .collect()
    }

    /// The one offer made since the last `take`, to `agent` for `call`.
    pub fn offered(&mut self, call: &str, agent: &str) -> OfferId {
        let offers = self.offers();
        match offers.as_slice() {
            [(c, id, a)] if c == call && a == agent => *id,
            _ => panic!("expected one offer of {call} to {agent}, got {offers:?}"),
        }
    }

    /// Connects `call` through `offer` and ends the call at once (no wrap-up in most tests).
    pub fn complete(&mut self, call: &str, offer: OfferId) {
        self.outcome(call, offer, OfferOutcome::Answered);
        self.ended(call, HungUpBy::Agent);
        self.take();
    }

    pub fn state(&self, agent: &str) -> AgentState {
        self.router
            .snapshot(self.now)
            .agents
            .into_iter()
            .find(|a| a.id == agent)
            .map(|a| a.state)
            .expect("known agent")
    }

    pub fn waiting(&self, queue: &str) -> Vec<String> {
        self.router
            .snapshot(self.now)
            .queues
            .into_iter()
            .find(|q| q.name == queue)
            .map(|q| q.waiting.into_iter().map(|w| w.call_id).collect())
            .expect("known queue")
    }
}

const QUEUE: &str = "[[queues]]\nname = \"q\"\nwrap_up_s = 0\nannounce_period_s = 0\n";

fn three(strategy: &str) -> Sim {
    three_with(strategy, "")
}

/// Three Mandarin agents at skill levels 1, 9, 5 in queue `q`, plus `extra` queue settings.
fn three_with(strategy: &str, extra: &str) -> Sim {
    let text = format!(
        "{QUEUE}strategy = \"{strategy}\"\n{extra}{}",
        agents(&[
            ("a1", "cmn", "q = 1"),
            ("a2", "cmn", "q = 9"),
            ("a3", "cmn", "q = 5")
        ])
    );
    Sim::new(&text)
}

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
    s.offered("c5", "a2");
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
        s.router.next_timeout(),
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
fn pausing_or_logging_out_while_ringing_sends_the_caller_to_the_next_agent() {
    let mut s = three("skills-based");
    s.login(&["a1", "a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a2");
    s.take_events();
    assert_eq!(
        s.control(
            "a2",
            AgentAction::Pause {
                reason: "lunch".into()
            }
        ),
        Ok(AgentState::Paused {
            reason: "lunch".into()
        })
    );
    let said = s.take();
    assert_eq!(
        said[0],
        ("c1".into(), Instruction::CancelOffer { offer: o })
    );
    assert!(matches!(&said[1], (_, Instruction::Offer { agent, .. }) if agent == "a3"));
    assert!(
        !s.take_events()
            .iter()
            .any(|e| matches!(e, EventKind::RingNoAnswer { .. })),
        "not the agent's no-answer"
    );
    // a3 logs out while ringing: back to a1; a3's late answer is refused.
    let a3_offer = match &said[1].1 {
        Instruction::Offer { offer, .. } => *offer,
        _ => unreachable!(),
    };
    s.control("a3", AgentAction::Logout).unwrap();
    let said = s.take();
    assert_eq!(said[0].1, Instruction::CancelOffer { offer: a3_offer });
    assert!(matches!(&said[1].1, Instruction::Offer { agent, .. } if agent == "a1"));
    s.outcome("c1", a3_offer, OfferOutcome::Answered);
    assert_eq!(
        s.take(),
        [("c1".into(), Instruction::CancelOffer { offer: a3_offer })]
    );
}

#[test]
fn losing_registration_logs_the_agent_out_and_reroutes_the_caller() {
    let text = format!(
        "{QUEUE}[[agents]]\nid = \"p\"\npassword = \"pw\"\nauto_login = true\nskills = {{ q = 1 }}\n{}",
        agents(&[("t", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    assert_eq!(
        s.control("p", AgentAction::Login),
        Err(ControlError::NotReachable("p".into()))
    );
    let up = Input::Registration {
        user: "p".into(),
        contact: Some("sip:p@127.0.0.1:5070".into()),
    };
    s.input(up).unwrap();
    assert_eq!(s.state("p"), AgentState::Available, "auto login");
    s.enqueue("c1", "q", "cmn", 0);
    let said = s.take();
    assert!(matches!(
        &said[1].1,
        Instruction::Offer { agent, target: Target::Registered(uri), .. }
            if agent == "p" && uri == "sip:p@127.0.0.1:5070"
    ));
    s.login(&["t"]);
    s.take_events();
    let down = Input::Registration {
        user: "p".into(),
        contact: None,
    };
    s.input(down).unwrap();
    assert_eq!(
        s.take_events()[0],
        EventKind::AgentLogout {
            agent: "p".into(),
            reason: "registration lost".into()
        }
    );
    let said = s.take();
    assert!(matches!(&said[0].1, Instruction::CancelOffer { .. }));
    assert!(matches!(
        &said[1].1,
        Instruction::Offer { agent, target: Target::Trunk(_), .. } if agent == "t"
    ));
    let unknown = Input::Registration {
        user: "nobody".into(),
        contact: None,
    };
    assert_eq!(
        s.input(unknown),
        Err(InputError::UnknownUser("nobody".into()))
    );
}

#[test]
fn wrap_up_holds_the_agent_until_its_timer_or_resume() {
    let text = format!(
        "[[queues]]\nname = \"q\"\nwrap_up_s = 20\nannounce_period_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.outcome("c1", o, OfferOutcome::Answered);
    s.at(100.0);
    s.take_events();
    s.ended("c1", HungUpBy::Agent);
    assert_eq!(
        s.take_events()[1],
        EventKind::WrapUpStarted {
            agent: "a1".into(),
            queue: "q".into()
        }
    );
    assert_eq!(s.state("a1"), AgentState::WrapUp);
    s.enqueue("c2", "q", "cmn", 0);
    assert!(s.offers().is_empty());
    s.at(119.9);
    assert!(s.offers().is_empty());
    s.at(120.0);
    let o = s.offered("c2", "a1");
    assert!(
        s.take_events()
            .contains(&EventKind::WrapUpEnded { agent: "a1".into() })
    );
    // Resume cuts a wrap-up short.
    s.complete("c2", o);
    assert_eq!(s.state("a1"), AgentState::WrapUp);
    assert_eq!(
        s.control("a1", AgentAction::Resume),
        Ok(AgentState::Available)
    );
}

#[test]
fn max_wait_overflows_to_another_queue_then_to_a_step() {
    let text = "[[queues]]\nname = \"a\"\nmax_wait_s = 60\noverflow = { queue = \"b\" }\n\
                announce_period_s = 0\n\
                [[queues]]\nname = \"b\"\nmax_wait_s = 30\noverflow = { step = \"voicemail\" }\n\
                announce_period_s = 0\n\
                [[queues]]\nname = \"c\"\nmax_wait_s = 10\nannounce_period_s = 0\n";
    let mut s = Sim::new(text);
    s.enqueue("c1", "a", "cmn", 0);
    s.enqueue("c2", "c", "cmn", 0);
    s.take();
    s.take_events();
    s.at(10.0);
    assert_eq!(
        s.take_events(),
        [EventKind::ExitWithTimeout {
            call_id: "c2".into(),
            queue: "c".into(),
            position: 1,
            wait_ms: 10_000
        }]
    );
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Leave {
                reason: LeaveReason::Timeout,
                next_step: None
            }
        )]
    );
    s.at(60.0);
    let events = s.take_events();
    assert_eq!(
        events[0],
        EventKind::Overflowed {
            call_id: "c1".into(),
            queue: "a".into(),
            target: "queue:b".into(),
            wait_ms: 60_000,
            position: 1
        }
    );
    assert!(matches!(&events[1], EventKind::EnterQueue { queue, position: 1, .. } if queue == "b"));
    assert!(matches!(&s.take()[..], [(_, Instruction::Queued { queue, .. })] if queue == "b"));
    s.at(90.0);
    assert!(matches!(
        &s.take_events()[..],
        [EventKind::Overflowed { target, wait_ms: 30_000, .. }] if target == "step:voicemail"
    ));
    assert_eq!(
        s.take(),
        [(
            "c1".into(),
            Instruction::Leave {
                reason: LeaveReason::Overflow,
                next_step: Some("voicemail".into())
            }
        )]
    );
    assert_eq!(s.router.next_timeout(), None);
}

#[test]
fn max_wait_while_ringing_withdraws_the_offer() {
    let text = format!(
        "{QUEUE}max_wait_s = 10\nring_timeout_s = 30\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.at(10.0);
    assert_eq!(
        s.take(),
        [
            ("c1".into(), Instruction::CancelOffer { offer: o }),
            (
                "c1".into(),
                Instruction::Leave {
                    reason: LeaveReason::Timeout,
                    next_step: None
                }
            )
        ]
    );
    assert_eq!(s.state("a1"), AgentState::Available);
}

#[test]
fn join_and_leave_rules_when_no_agent_is_logged_in() {
    let text = format!(
        "[[queues]]\nname = \"q\"\njoin_when_empty = false\nleave_when_empty = true\n\
         overflow = {{ step = \"sorry\" }}\nannounce_period_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.enqueue("c1", "q", "cmn", 0);
    assert_eq!(
        s.take(),
        [(
            "c1".into(),
            Instruction::Leave {
                reason: LeaveReason::JoinRefused,
                next_step: Some("sorry".into())
            }
        )]
    );
    assert!(s.take_events().is_empty(), "never entered the queue");
    s.login(&["a1"]);
    s.control(
        "a1",
        AgentAction::Pause {
            reason: "meeting".into(),
        },
    )
    .unwrap();
    s.enqueue("c2", "q", "cmn", 0);
    assert!(
        matches!(&s.take()[..], [(_, Instruction::Queued { .. })]),
        "paused counts as logged in"
    );
    s.at(5.0);
    s.take_events();
    s.control("a1", AgentAction::Logout).unwrap();
    assert!(matches!(
        &s.take_events()[..],
        [
            EventKind::AgentLogout { .. },
            EventKind::ExitEmpty {
                position: 1,
                wait_ms: 5000,
                ..
            }
        ]
    ));
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Leave {
                reason: LeaveReason::Empty,
                next_step: Some("sorry".into())
            }
        )]
    );
}

#[test]
fn announcements_give_position_and_estimate_and_skip_ringing_callers() {
    let text = "[[queues]]\nname = \"q\"\nannounce_period_s = 30\nwrap_up_s = 20\nring_timeout_s = 60\n\
                handle_time_estimate_s = 120\n[[agents]]\nid = \"a1\"\nuri = \"sip:a1@pbx\"\n\
                skills = { q = 1 }\n[[agents]]\nid = \"a2\"\nuri = \"sip:a2@pbx\"\n\
                skills = { q = 1 }\n";
    let mut s = Sim::new(text);
    s.login(&["a1"]);
    s.enqueue("ringing", "q", "cmn", 0);
    let o = s.offered("ringing", "a1");
    s.enqueue("c2", "q", "cmn", 0);
    // One agent staffed, AHT 120 s before any call completed: 2 × 120 / 1.
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Queued {
                queue: "q".into(),
                position: 2,
                estimated_wait: Some(Duration::from_secs(240))
            }
        )]
    );
    s.login(&["a2"]);
    s.take();
    s.outcome("ringing", o, OfferOutcome::Answered);
    s.take();
    s.gone("c2");
    s.enqueue("c3", "q", "cmn", 0);
    s.control("a2", AgentAction::Pause { reason: "x".into() })
        .unwrap();
    s.take();
    // a1 on a call counts as staffed, a2 paused does not; no call completed yet: 1 × 120 / 1.
    s.at(60.0);
    let early = Instruction::Announce {
        position: 1,
        estimated_wait: Some(Duration::from_secs(120)),
    };
    assert_eq!(
        s.take(),
        [("c3".into(), early.clone()), ("c3".into(), early)]
    );
    s.at(75.0);
    s.ended("ringing", HungUpBy::Caller);
    // Handle time 75 s talk + 20 s wrap-up; a1 in wrap-up still counts as staffed.
    s.at(90.0);
    assert_eq!(
        s.take(),
        [(
            "c3".into(),
            Instruction::Announce {
                position: 1,
                estimated_wait: Some(Duration::from_secs(95))
            }
        )]
    );
    s.at(95.0);
    s.offered("c3", "a1");
    s.at(120.0);
    assert!(s.take().is_empty(), "no announcement while the agent rings");
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

#[test]
fn bad_requests_are_refused() {
    let mut s = three("longest-idle");
    s.enqueue("c1", "q", "cmn", 0);
    let again = EnqueueRequest {
        call_id: "c1".into(),
        queue: "q".into(),
        language: String::new(),
        intent: None,
        priority: 0,
        caller: String::new(),
    };
    assert_eq!(
        s.input(Input::Enqueue(again.clone())),
        Err(InputError::DuplicateCall("c1".into()))
    );
    let elsewhere = EnqueueRequest {
        call_id: "c9".into(),
        queue: "nope".into(),
        ..again
    };
    assert_eq!(
        s.input(Input::Enqueue(elsewhere)),
        Err(InputError::UnknownQueue("nope".into()))
    );
    assert_eq!(
        s.control("zz", AgentAction::Login),
        Err(ControlError::UnknownAgent("zz".into()))
    );
    assert_eq!(
        s.control("a1", AgentAction::Resume),
        Err(ControlError::LoggedOut("a1".into()))
    );
    assert_eq!(s.waiting("q"), ["c1"]);
}

#[test]
fn an_invalid_config_is_refused_with_every_problem() {
    let config: AcdConfig =
        toml::from_str("[[agents]]\nid = \"x\"\nskills = { nowhere = 1 }\n").unwrap();
    let err = Router::new(&config, Instant::now()).err().expect("invalid");
    assert_eq!(err.0.len(), 2, "{err}");
}
