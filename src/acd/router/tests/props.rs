//! Property test: random sequences of calls, outcomes, hang-ups, agent control,
//! registrations and time keep the router's promises —
//! - a caller is in at most one queue,
//! - an agent never holds more calls (ringing or connected) than its `max_offers`,
//! - offers go only to agents logged in, not paused, not in wrap-up, who speak the
//!   caller's language unless it has relaxed,
//! - every stay in a queue ends with exactly one of Connected, Abandoned, Overflowed,
//!   ExitWithTimeout, ExitEmpty, and every connected call with CallEnded, before the
//!   router forgets the call; once every caller hangs up, nothing is left open.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::Router;
use crate::acd::config::AcdConfig;
use crate::acd::messages::{
    AgentAction, EnqueueRequest, HungUpBy, Input, Instruction, OfferId, OfferOutcome, Output,
};
use crate::events::EventKind;

const CONFIG: &str = r#"
[[queues]]
name = "a"
ring_timeout_s = 10
retry_s = 3
max_wait_s = 120
overflow = { queue = "b" }
language_relax_s = 30
wrap_up_s = 5
announce_period_s = 20
max_no_answer = 2

[[queues]]
name = "b"
strategy = "ring-all"
join_when_empty = false
leave_when_empty = true
max_wait_s = 60
overflow = { step = "voicemail" }
wrap_up_s = 0

[[queues]]
name = "c"
strategy = "skills-based"
max_wait_s = 90
overflow = { queue = "a" }

[[queues]]
name = "d"
strategy = "round-robin"

[[queues]]
name = "e"
strategy = "fewest-calls"
wrap_up_s = 0

[[agents]]
id = "x1"
uri = "sip:x1@pbx"
languages = ["cmn"]
skills = { a = 1, b = 2, d = 1, e = 1 }

[[agents]]
id = "x2"
uri = "sip:x2@pbx"
languages = ["yue"]
skills = { a = 3, c = 5, e = 1 }

[[agents]]
id = "x3"
password = "pw3"
languages = ["cmn", "yue"]
max_offers = 2
skills = { b = 1, c = 1, d = 2 }

[[agents]]
id = "x4"
password = "pw4"
auto_login = true
languages = ["cmn"]
skills = { a = 2, b = 2, c = 9, d = 3, e = 2 }

[[agents]]
id = "x5"
uri = "sip:x5@pbx"
languages = ["yue"]
skills = { c = 2, e = 3 }
"#;

const AGENTS: [&str; 5] = ["x1", "x2", "x3", "x4", "x5"];
const MAX_OFFERS: [usize; 5] = [1, 1, 2, 1, 1];
const SPEAKS: [&[&str]; 5] = [&["cmn"], &["yue"], &["cmn", "yue"], &["cmn"], &["yue"]];
const QUEUES: [&str; 6] = ["a", "b", "c", "d", "e", "nope"];
const LANGUAGES: [&str; 3] = ["", "cmn", "yue"];

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        call: u8,
        queue: usize,
        language: usize,
        priority: i32,
    },
    Gone {
        call: u8,
    },
    Outcome {
        pick: usize,
        outcome: OfferOutcome,
        stale: bool,
    },
    Ended {
        call: u8,
        by_agent: bool,
    },
    Register {
        agent: usize,
        up: bool,
    },
    Control {
        agent: usize,
        action: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        3 => Just(OfferOutcome::Answered),
        1 => Just(OfferOutcome::Rejected),
        1 => Just(OfferOutcome::NoAnswer),
        1 => Just(OfferOutcome::Failed),
    ];
    prop_oneof![
        4 => (0u8..12, 0usize..6, 0usize..3, 0i32..3).prop_map(|(call, queue, language, priority)| {
            Op::Enqueue { call, queue, language, priority }
        }),
        1 => (0u8..12).prop_map(|call| Op::Gone { call }),
        4 => (0usize..8, outcome, proptest::bool::weighted(0.1))
            .prop_map(|(pick, outcome, stale)| Op::Outcome { pick, outcome, stale }),
        2 => (0u8..12, any::<bool>()).prop_map(|(call, by_agent)| Op::Ended { call, by_agent }),
        1 => (2usize..4, proptest::bool::weighted(0.7))
            .prop_map(|(agent, up)| Op::Register { agent, up }),
        3 => (0usize..5, 0usize..5).prop_map(|(agent, action)| Op::Control { agent, action }),
        4 => (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Out,
    Ready,
    Paused,
    WrapUp,
}

/// What the outputs so far say, checked against every new output.
struct Model {
    router: Router,
    now: Instant,
    /// Live offers: offer -> (call, agent).
    offers: HashMap<OfferId, (String, String)>,
    every_offer: Vec<(String, OfferId)>,
    /// Connected calls: call -> agent.
    connected: HashMap<String, String>,
    /// Open queue stays: call -> (queue, language, earliest possible entry time).
    stays: HashMap<String, (String, String, Instant)>,
    /// Connected calls whose CallEnded has not come yet.
    talks: HashMap<String, String>,
    /// Calls the router still knows.
    known: HashSet<String>,
    presence: HashMap<String, Presence>,
}

impl Model {
    fn new() -> Model {
        let config: AcdConfig = toml::from_str(CONFIG).expect("config parses");
        let now = Instant::now();
        Model {
            router: Router::new(&config, now).expect("config is valid"),
            now,
            offers: HashMap::new(),
            every_offer: Vec::new(),
            connected: HashMap::new(),
            stays: HashMap::new(),
            talks: HashMap::new(),
            known: HashSet::new(),
            presence: AGENTS
                .iter()
                .map(|a| (a.to_string(), Presence::Out))
                .collect(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before = self.now;
        match op {
            Op::Enqueue {
                call,
                queue,
                language,
                priority,
            } => {
                let call_id = format!("k{call}");
                let request = EnqueueRequest {
                    call_id: call_id.clone(),
                    queue: QUEUES[*queue].to_owned(),
                    language: LANGUAGES[*language].to_owned(),
                    intent: None,
                    priority: *priority,
                    caller: String::new(),
                };
                if self
                    .router
                    .handle_input(self.now, Input::Enqueue(request))
                    .is_ok()
                {
                    self.known.insert(call_id);
                }
            }
            Op::Gone { call } => self.input(Input::CallerGone {
                call_id: format!("k{call}"),
                by: HungUpBy::Caller,
            }),
            Op::Outcome {
                pick,
                outcome,
                stale,
            } => {
                let chosen = if *stale {
                    self.every_offer.get(*pick).cloned()
                } else {
                    let mut live: Vec<_> = self.offers.iter().collect();
                    live.sort_by_key(|(id, _)| **id);
                    live.get(*pick % live.len().max(1))
                        .map(|(id, (call, _))| (call.clone(), **id))
                };
                if let Some((call_id, offer)) = chosen {
                    if *outcome != OfferOutcome::Answered {
                        self.offers.remove(&offer);
                    }
                    self.input(Input::OfferOutcome {
                        call_id,
                        offer,
                        outcome: *outcome,
                    });
                }
            }
            Op::Ended { call, by_agent } => {
                let hung_up_by = if *by_agent {
                    HungUpBy::Agent
                } else {
                    HungUpBy::Caller
                };
                self.input(Input::CallEnded {
                    call_id: format!("k{call}"),
                    hung_up_by,
                });
            }
            Op::Register { agent, up } => {
                let contact = up.then(|| format!("sip:{}@127.0.0.1:5070", AGENTS[*agent]));
                self.input(Input::Registration {
                    user: AGENTS[*agent].to_owned(),
                    contact,
                });
            }
            Op::Control { agent, action } => {
                let action = match action {
                    0 | 1 => AgentAction::Login,
                    2 => AgentAction::Logout {
                        reason: "shift end".into(),
                    },
                    3 => AgentAction::Pause {
                        reason: "break".into(),
                    },
                    _ => AgentAction::Resume,
                };
                // Refusals (unreachable, logged out) are part of the game.
                let _ = self.router.control(self.now, AGENTS[*agent], action);
            }
            Op::Advance { ms } => {
                self.now += Duration::from_millis(*ms);
                self.router.handle_timeout(self.now);
            }
        }
        self.absorb(before)?;
        self.check_now()
    }

    fn input(&mut self, input: Input) {
        // Unknown users and calls are refused or ignored; the invariants still hold.
        let _ = self.router.handle_input(self.now, input);
    }

    /// Checks every output of the last step in order. `before` is the time before the step:
    /// an event of the step happened at or after it.
    fn absorb(&mut self, before: Instant) -> Result<(), TestCaseError> {
        while let Some(out) = self.router.poll_output() {
            match out {
                Output::Event(kind) => self.event(kind, before)?,
                Output::Call {
                    call_id,
                    instruction,
                } => self.instruction(call_id, instruction)?,
                Output::Forget { call_id } => {
                    prop_assert!(
                        !self.stays.contains_key(&call_id),
                        "{call_id} forgotten inside a queue stay"
                    );
                    prop_assert!(
                        !self.talks.contains_key(&call_id),
                        "{call_id} forgotten while connected"
                    );
                    prop_assert!(
                        !self.offers.values().any(|(c, _)| *c == call_id),
                        "{call_id} forgotten with offers live"
                    );
                    prop_assert!(self.known.remove(&call_id));
                    self.connected.remove(&call_id);
                }
            }
        }
        Ok(())
    }

    fn event(&mut self, kind: EventKind, before: Instant) -> Result<(), TestCaseError> {
        match kind {
            EventKind::EnterQueue {
                call_id,
                queue,
                language,
                ..
            } => {
                prop_assert!(
                    !self.stays.contains_key(&call_id),
                    "{call_id} entered {queue} while in another queue"
                );
                self.stays.insert(call_id, (queue, language, before));
            }
            EventKind::Connected {
                call_id,
                queue,
                agent,
                ..
            } => {
                self.close_stay(&call_id, &queue)?;
                self.talks.insert(call_id, agent);
            }
            EventKind::Abandoned { call_id, queue, .. }
            | EventKind::Overflowed { call_id, queue, .. }
            | EventKind::ExitWithTimeout { call_id, queue, .. }
            | EventKind::ExitEmpty { call_id, queue, .. } => self.close_stay(&call_id, &queue)?,
            EventKind::CallEnded { call_id, agent, .. } => {
                prop_assert_eq!(self.talks.remove(&call_id), Some(agent));
            }
            EventKind::AgentOffered {
                call_id,
                queue,
                agent,
            } => {
                let Some((stay, language, entered)) = self.stays.get(&call_id).cloned() else {
                    return Err(TestCaseError::fail(format!(
                        "{call_id} offered outside a stay"
                    )));
                };
                prop_assert_eq!(&stay, &queue);
                prop_assert_eq!(
                    self.presence[&agent],
                    Presence::Ready,
                    "{} not ready",
                    agent
                );
                let i = AGENTS.iter().position(|a| *a == agent).unwrap_or(0);
                let relax = (queue == "a").then_some(Duration::from_secs(30));
                let relaxed = relax.is_some_and(|r| self.now >= entered + r);
                prop_assert!(
                    language.is_empty() || SPEAKS[i].contains(&language.as_str()) || relaxed,
                    "{agent} does not speak {language}"
                );
            }
            EventKind::RingNoAnswer { call_id, .. } => {
                prop_assert!(self.stays.contains_key(&call_id));
            }
            EventKind::AgentLogin { agent, .. } => self.set(&agent, Presence::Ready),
            EventKind::AgentLogout { agent, .. } => self.set(&agent, Presence::Out),
            EventKind::AgentPause { agent, .. } => self.set(&agent, Presence::Paused),
            EventKind::AgentResume { agent } | EventKind::WrapUpEnded { agent } => {
                self.set(&agent, Presence::Ready)
            }
            EventKind::WrapUpStarted { agent, .. } => self.set(&agent, Presence::WrapUp),
            _ => {}
        }
        Ok(())
    }

    fn set(&mut self, agent: &str, presence: Presence) {
        self.presence.insert(agent.to_owned(), presence);
    }

    fn close_stay(&mut self, call_id: &str, queue: &str) -> Result<(), TestCaseError> {
        let stay = self.stays.remove(call_id);
        prop_assert!(
            stay.as_ref().is_some_and(|s| s.0 == queue),
            "{call_id} left {queue} without being in it ({stay:?})"
        );
        Ok(())
    }

    fn instruction(&mut self, call_id: String, i: Instruction) -> Result<(), TestCaseError> {
        prop_assert!(
            self.known.contains(&call_id),
            "told {call_id} after forgetting it"
        );
        match i {
            Instruction::Offer { offer, agent, .. } => {
                self.every_offer.push((call_id.clone(), offer));
                self.offers.insert(offer, (call_id, agent));
            }
            Instruction::CancelOffer { offer } => {
                self.offers.remove(&offer);
            }
            Instruction::Connected { offer, agent } => {
                let live = self.offers.remove(&offer);
                prop_assert_eq!(live, Some((call_id.clone(), agent.clone())));
                self.connected.insert(call_id, agent);
            }
            Instruction::Leave { .. } => {
                prop_assert!(
                    !self.offers.values().any(|(c, _)| *c == call_id),
                    "{call_id} left with offers live"
                );
            }
            Instruction::Queued { .. } | Instruction::Announce { .. } => {}
        }
        Ok(())
    }

    /// Invariants of the state after a step.
    fn check_now(&self) -> Result<(), TestCaseError> {
        for (i, agent) in AGENTS.iter().enumerate() {
            let ringing = self.offers.values().filter(|(_, a)| a == agent).count();
            let talking = self.connected.values().filter(|a| a == agent).count();
            prop_assert!(
                ringing + talking <= MAX_OFFERS[i],
                "{agent} holds {ringing} offers and {talking} calls"
            );
        }
        let snapshot = self.router.snapshot(self.now);
        let mut seen = HashMap::new();
        for q in &snapshot.queues {
            for w in &q.waiting {
                prop_assert!(
                    seen.insert(w.call_id.clone(), q.name.clone()).is_none(),
                    "{} waits in two queues",
                    w.call_id
                );
                prop_assert_eq!(
                    self.stays.get(&w.call_id).map(|s| s.0.as_str()),
                    Some(q.name.as_str())
                );
            }
        }
        prop_assert_eq!(
            seen.len(),
            self.stays.len(),
            "every open stay is a waiting caller"
        );
        Ok(())
    }

    /// Every caller hangs up: nothing may stay open.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        let mut calls: Vec<String> = self.known.iter().cloned().collect();
        calls.sort();
        for call_id in calls {
            let before = self.now;
            self.input(Input::CallerGone {
                call_id,
                by: HungUpBy::Caller,
            });
            self.absorb(before)?;
        }
        prop_assert!(self.known.is_empty(), "calls left: {:?}", self.known);
        prop_assert!(self.stays.is_empty() && self.talks.is_empty());
        prop_assert!(self.offers.is_empty(), "offers left: {:?}", self.offers);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_sequences_keep_the_router_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op)?;
        }
        model.finish()?;
    }
}
