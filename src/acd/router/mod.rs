//! The sans-IO router: owns queues, callers, agent states and offers, and decides who gets
//! which call. Time comes in as `now`; decisions come out of `poll_output`, and the next
//! deadline from `poll_timeout`. It never reads a clock, sleeps, or touches a channel.
//!
//! The work is split by subject: `calls` (enqueue, outcomes, hang-ups, leaving a queue),
//! `agents` (control, registration, wrap-up), `dispatch` (matching callers with agents),
//! `views` (snapshots).

mod agents;
mod calls;
mod dispatch;
mod state;
mod timers;
mod views;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use state::{Agent, AgentIdx, Caller, CallerIdx, Member, Offer, Presence, Queue, QueueIdx};
use timers::{Timer, Timers};

use super::config::AcdConfig;
use super::messages::{
    AgentAction, AgentView, ControlError, Input, InputError, Instruction, OfferId, Output,
};
use crate::diag::InvalidSection;
use crate::events::EventKind;

pub struct Router {
    agents: Vec<Agent>,
    queues: Vec<Queue>,
    /// Slots reused through `free_slots`; a caller's `seq` tells generations apart.
    callers: Vec<Option<Caller>>,
    free_slots: Vec<CallerIdx>,
    by_call: HashMap<String, CallerIdx>,
    by_agent: HashMap<String, AgentIdx>,
    by_user: HashMap<String, AgentIdx>,
    by_queue: HashMap<String, QueueIdx>,
    offers: HashMap<OfferId, Offer>,
    next_offer: u64,
    next_seq: u64,
    timers: Timers,
    dirty: Vec<QueueIdx>,
    /// Agents for which `can_take_calls()` holds.
    free_agents: usize,
    out: VecDeque<Output>,
}

impl Router {
    pub fn new(config: &AcdConfig, now: Instant) -> Result<Router, InvalidSection> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(InvalidSection {
                section: "acd",
                problems,
            });
        }
        let mut queues: Vec<Queue> = config.queues.iter().map(Queue::new).collect();
        let by_queue: HashMap<String, QueueIdx> = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.clone(), i))
            .collect();
        let mut agents = Vec::with_capacity(config.agents.len());
        let mut by_agent = HashMap::new();
        let mut by_user = HashMap::new();
        for (a, cfg) in config.agents.iter().enumerate() {
            let mut member_of = Vec::new();
            for (queue, &level) in &cfg.skills {
                if let Some(&q) = by_queue.get(queue) {
                    queues[q].members.push(Member {
                        agent: a,
                        level,
                        answered: 0,
                    });
                    member_of.push(q);
                }
            }
            by_agent.insert(cfg.id.clone(), a);
            if cfg.password.is_some() {
                by_user.insert(cfg.sip_user().to_owned(), a);
            }
            agents.push(Agent::new(cfg, member_of, now));
        }
        Ok(Router {
            agents,
            queues,
            callers: Vec::new(),
            free_slots: Vec::new(),
            by_call: HashMap::new(),
            by_agent,
            by_user,
            by_queue,
            offers: HashMap::new(),
            next_offer: 1,
            next_seq: 1,
            timers: Timers::default(),
            dirty: Vec::new(),
            free_agents: 0,
            out: VecDeque::new(),
        })
    }

    /// Feeds one input; its consequences wait in `poll_output`.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), InputError> {
        let result = match input {
            Input::Enqueue(request) => self.enqueue(now, request),
            Input::CallerGone { call_id, by } => {
                self.caller_gone(now, &call_id, by);
                Ok(())
            }
            Input::OfferOutcome {
                call_id,
                offer,
                outcome,
            } => {
                self.offer_outcome(now, &call_id, offer, outcome);
                Ok(())
            }
            Input::CallEnded {
                call_id,
                hung_up_by,
            } => {
                self.call_ended(now, &call_id, hung_up_by);
                Ok(())
            }
            Input::Registration { user, contact } => self.registration(now, &user, contact),
            Input::Reachability { agent, up } => self.reachability(now, &agent, up),
        };
        self.settle(now);
        result
    }

    /// Agent control from the API; answers with the agent's state afterwards.
    pub fn control(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
    ) -> Result<AgentView, ControlError> {
        let a = *self
            .by_agent
            .get(agent)
            .ok_or_else(|| ControlError::UnknownAgent(agent.to_owned()))?;
        let result = self.agent_action(now, a, action);
        self.settle(now);
        result.map(|()| self.agent_view(a, now))
    }

    /// Runs every deadline due at `now`, each at its own instant and followed by matching,
    /// as if woken exactly on time: the outcome does not depend on how late the wake-up was.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            if self.timer_live(at, timer) {
                self.fire(at, timer);
                self.settle(at);
            }
        }
        self.settle(now);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(at, _)| at)
    }

    /// After every input: hand free agents to waiting callers, then drop dead deadlines
    /// from the top of the heap so `poll_timeout` is exact.
    fn settle(&mut self, now: Instant) {
        self.dispatch(now);
        while let Some((at, timer)) = self.timers.peek() {
            if self.timer_live(at, timer) {
                break;
            }
            self.timers.pop();
        }
    }

    fn caller(&self, c: CallerIdx) -> Option<&Caller> {
        self.callers.get(c).and_then(Option::as_ref)
    }

    fn caller_mut(&mut self, c: CallerIdx) -> Option<&mut Caller> {
        self.callers.get_mut(c).and_then(Option::as_mut)
    }

    /// The caller in slot `c` if it is still the generation `seq`.
    fn caller_seq(&self, c: CallerIdx, seq: u64) -> Option<&Caller> {
        self.caller(c).filter(|caller| caller.seq == seq)
    }

    fn timer_live(&self, at: Instant, timer: Timer) -> bool {
        match timer {
            Timer::Ring(id) => self.offers.get(&id).is_some_and(|o| o.deadline == at),
            Timer::WrapUp(a) => matches!(
                self.agents[a].presence,
                Presence::WrapUp { until, .. } if until == at
            ),
            Timer::MaxWait(c, seq) => self
                .caller_seq(c, seq)
                .is_some_and(|x| x.max_wait_at == Some(at)),
            Timer::Announce(c, seq) => self
                .caller_seq(c, seq)
                .is_some_and(|x| x.next_announce == Some(at)),
            Timer::Relax(c, seq) => self
                .caller_seq(c, seq)
                .is_some_and(|x| x.relax_at == Some(at)),
            Timer::Retry(c, seq) => self
                .caller_seq(c, seq)
                .is_some_and(|x| x.retry_at == Some(at)),
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Ring(id) => self.ring_timeout(now, id),
            Timer::WrapUp(a) => self.end_wrap_up(now, a),
            Timer::MaxWait(c, _) => self.max_wait_passed(now, c),
            Timer::Announce(c, _) => self.announce(now, c),
            Timer::Relax(c, _) | Timer::Retry(c, _) => {
                if let Some(q) = self.caller(c).map(|x| x.queue) {
                    self.mark_dirty(q);
                }
            }
        }
    }

    fn mark_dirty(&mut self, q: QueueIdx) {
        if !self.queues[q].dirty {
            self.queues[q].dirty = true;
            self.dirty.push(q);
        }
    }

    /// Keeps the cached free flag, the free count and the time in state true after any
    /// change to the agent; an agent that became free makes its queues worth a look.
    fn refresh_agent(&mut self, a: AgentIdx, now: Instant) {
        let agent = &mut self.agents[a];
        let free = agent.can_take_calls();
        if free != agent.free {
            agent.free = free;
            if free {
                self.free_agents += 1;
            } else {
                self.free_agents -= 1;
            }
        }
        let state = agent.state();
        if state != agent.last_state {
            agent.last_state = state;
            agent.state_since = now;
        }
        if free {
            for i in 0..self.agents[a].queues.len() {
                let q = self.agents[a].queues[i];
                self.mark_dirty(q);
            }
        }
    }

    fn emit(&mut self, kind: EventKind) {
        self.out.push_back(Output::Event(kind));
    }

    fn tell(&mut self, c: CallerIdx, instruction: Instruction) {
        if let Some(caller) = self.caller(c) {
            let call_id = caller.call_id.clone();
            self.out.push_back(Output::Call {
                call_id,
                instruction,
            });
        }
    }
}

#[cfg(test)]
mod tests;
