//! Router scenarios in virtual time. This file holds the harness; the scenarios are
//! grouped by subject in the sibling files.

mod agents;
mod offers;
mod props;
mod queues;
mod strategies;

use std::time::{Duration, Instant};

use super::Router;
use crate::acd::config::AcdConfig;
use crate::acd::messages::{
    AgentAction, AgentState, ControlError, EnqueueRequest, HungUpBy, Input, InputError,
    Instruction, OfferId, OfferOutcome, Output,
};
use crate::events::EventKind;
use crate::time::virtual_time::{Timed, advance};

impl Timed for Router {
    fn poll_timeout(&self) -> Option<Instant> {
        Router::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Router::handle_timeout(self, now)
    }
}

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

    /// Moves virtual time to `secs` after the start and runs what fell due, each timer at
    /// its own instant (`time::virtual_time::advance`).
    pub fn at(&mut self, secs: f64) {
        let now = self.t0 + Duration::from_secs_f64(secs);
        assert!(now >= self.now, "time goes forward");
        self.now = advance(&mut self.router, now, |_, _| {});
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
        self.gone_by(call, HungUpBy::Caller);
    }

    /// The call's leg ended by `by` (the caller, or the system).
    pub fn gone_by(&mut self, call: &str, by: HungUpBy) {
        let input = Input::CallerGone {
            call_id: call.to_owned(),
            by,
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

pub(super) const QUEUE: &str = "[[queues]]\nname = \"q\"\nwrap_up_s = 0\nannounce_period_s = 0\n";

pub(super) fn three(strategy: &str) -> Sim {
    three_with(strategy, "")
}

/// Three Mandarin agents at skill levels 1, 9, 5 in queue `q`, plus `extra` queue settings.
pub(super) fn three_with(strategy: &str, extra: &str) -> Sim {
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
