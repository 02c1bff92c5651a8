//! The caller's side of the router: joining a queue (and being refused), offers ending,
//! hanging up at every stage, leaving for an overflow target, and announcements.

use std::time::Instant;

use super::Router;
use super::state::{Caller, CallerIdx, CallerStatus, QueueIdx, ms_between};
use super::timers::Timer;
use crate::acd::config::OverflowTarget;
use crate::acd::estimate::estimated_wait;
use crate::acd::messages::{
    EnqueueRequest, HungUpBy, InputError, Instruction, LeaveReason, OfferId, OfferOutcome, Output,
};
use crate::events::EventKind;

/// Why a caller leaves a queue without an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    MaxWait,
    Empty,
}

impl Router {
    pub(super) fn enqueue(
        &mut self,
        now: Instant,
        request: EnqueueRequest,
    ) -> Result<(), InputError> {
        if self.by_call.contains_key(&request.call_id) {
            return Err(InputError::DuplicateCall(request.call_id));
        }
        let q = *self
            .by_queue
            .get(&request.queue)
            .ok_or(InputError::UnknownQueue(request.queue))?;
        let caller = Caller {
            call_id: request.call_id.clone(),
            number: request.caller,
            language: request.language,
            intent: request.intent,
            priority: request.priority,
            seq: 0,
            queue: q,
            entered: now,
            status: CallerStatus::Waiting,
            offers: Vec::new(),
            tried: Vec::new(),
            retry_at: None,
            max_wait_at: None,
            relax_at: None,
            next_announce: None,
        };
        let c = match self.free_slots.pop() {
            Some(slot) => {
                self.callers[slot] = Some(caller);
                slot
            }
            None => {
                self.callers.push(Some(caller));
                self.callers.len() - 1
            }
        };
        self.by_call.insert(request.call_id, c);
        self.place(now, c, q, None);
        Ok(())
    }

    /// Puts a caller who is in no queue into `q`. A queue that refuses callers while no
    /// member is logged in passes them on to its overflow target, as far as the chain goes
    /// without visiting a queue twice (`from` counts as visited).
    fn place(&mut self, now: Instant, c: CallerIdx, q: QueueIdx, from: Option<QueueIdx>) {
        let mut visited: Vec<QueueIdx> = from.into_iter().collect();
        let mut q = q;
        loop {
            visited.push(q);
            if self.queues[q].rules.join_when_empty || self.any_logged_in(q) {
                self.join(now, c, q);
                return;
            }
            if let Some(caller) = self.caller(c) {
                let kind = EventKind::JoinRefused {
                    call_id: caller.call_id.clone(),
                    queue: self.queues[q].name.clone(),
                };
                self.emit(kind);
            }
            let next_step = match &self.queues[q].rules.overflow {
                Some(OverflowTarget::Queue(name)) => match self.by_queue.get(name) {
                    Some(&next) if !visited.contains(&next) => {
                        q = next;
                        continue;
                    }
                    _ => None,
                },
                Some(OverflowTarget::Step(step)) => Some(step.clone()),
                None => None,
            };
            self.leave_acd(c, LeaveReason::JoinRefused, next_step);
            return;
        }
    }

    fn join(&mut self, now: Instant, c: CallerIdx, q: QueueIdx) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let rules = &self.queues[q].rules;
        let (max_wait, relax, announce) =
            (rules.max_wait, rules.language_relax, rules.announce_period);
        let Some(caller) = self.caller_mut(c) else {
            return;
        };
        caller.seq = seq;
        caller.queue = q;
        caller.entered = now;
        caller.status = CallerStatus::Waiting;
        caller.tried.clear();
        caller.retry_at = None;
        caller.max_wait_at = max_wait.map(|d| now + d);
        caller.relax_at = relax
            .filter(|_| !caller.language.is_empty())
            .map(|d| now + d);
        caller.next_announce = announce.map(|d| now + d);
        let key = caller.key();
        let deadlines = [
            (caller.max_wait_at, Timer::MaxWait(c, seq)),
            (caller.relax_at, Timer::Relax(c, seq)),
            (caller.next_announce, Timer::Announce(c, seq)),
        ];
        for (at, timer) in deadlines {
            if let Some(at) = at {
                self.timers.schedule(at, timer);
            }
        }
        self.queues[q].waiting.insert(key, c);
        let position = self.queues[q].position(key);
        let estimated_wait = self.estimate(now, c, position);
        let Some(caller) = self.caller(c) else {
            return;
        };
        let kind = EventKind::EnterQueue {
            call_id: caller.call_id.clone(),
            queue: self.queues[q].name.clone(),
            position,
            language: caller.language.clone(),
            intent: caller.intent.clone(),
            priority: caller.priority,
        };
        self.emit(kind);
        let queue = self.queues[q].name.clone();
        self.tell(
            c,
            Instruction::Queued {
                queue,
                position,
                estimated_wait,
            },
        );
        self.mark_dirty(q);
    }

    /// The estimate for a waiting caller at `position` (see `estimate.rs`).
    fn estimate(&self, now: Instant, c: CallerIdx, position: u32) -> Option<std::time::Duration> {
        let caller = self.caller(c)?;
        let queue = &self.queues[caller.queue];
        let relaxed = caller.language_relaxed(now);
        let staffed = queue
            .members
            .iter()
            .map(|m| &self.agents[m.agent])
            .filter(|a| a.working() && (relaxed || a.speaks(&caller.language)))
            .count();
        estimated_wait(
            position,
            queue.handle_times.mean(),
            u32::try_from(staffed).unwrap_or(u32::MAX),
        )
    }

    /// Whether any member is logged in and reachable (a PBX agent that probes find down
    /// does not staff its queues).
    pub(super) fn any_logged_in(&self, q: QueueIdx) -> bool {
        self.queues[q]
            .members
            .iter()
            .any(|m| self.agents[m.agent].staffing())
    }

    /// The caller's leg ended. A waiting caller who hung up abandoned the queue; one whose
    /// leg the system ended (its media stopped, the engine stopped) did not, and leaves no
    /// exit event: the call's own end counts it as interrupted in its queue's figures.
    pub(super) fn caller_gone(&mut self, now: Instant, call_id: &str, by: HungUpBy) {
        let Some(&c) = self.by_call.get(call_id) else {
            return;
        };
        match self.caller(c).map(|x| x.status) {
            Some(CallerStatus::Waiting) if by == HungUpBy::Caller => self.abandon(now, c),
            Some(CallerStatus::Waiting) => self.leave_quietly(now, c),
            Some(CallerStatus::Connected { .. }) => self.end_connected(now, c, by),
            None => {}
        }
    }

    /// A connected call ended (the flow tells only those). Any other is ended as the
    /// router's invariant needs: every queue stay ends with an exit event.
    pub(super) fn call_ended(&mut self, now: Instant, call_id: &str, by: HungUpBy) {
        let Some(&c) = self.by_call.get(call_id) else {
            return;
        };
        match self.caller(c).map(|x| x.status) {
            Some(CallerStatus::Connected { .. }) => self.end_connected(now, c, by),
            Some(CallerStatus::Waiting) => self.abandon(now, c),
            None => {}
        }
    }

    /// Takes a waiting caller out with no exit event of its own.
    fn leave_quietly(&mut self, now: Instant, c: CallerIdx) {
        if self.take_from_queue(now, c).is_some() {
            self.remove_caller(c);
        }
    }

    fn abandon(&mut self, now: Instant, c: CallerIdx) {
        let Some((position, wait_ms)) = self.take_from_queue(now, c) else {
            return;
        };
        if let Some(caller) = self.caller(c) {
            let kind = EventKind::Abandoned {
                call_id: caller.call_id.clone(),
                queue: self.queues[caller.queue].name.clone(),
                position,
                wait_ms,
            };
            self.emit(kind);
        }
        self.remove_caller(c);
    }

    /// Takes a waiting caller out of its queue, withdrawing its offers; returns the
    /// position it had and how long it waited.
    fn take_from_queue(&mut self, now: Instant, c: CallerIdx) -> Option<(u32, u64)> {
        let caller = self.caller(c)?;
        let (q, key, entered) = (caller.queue, caller.key(), caller.entered);
        let position = self.queues[q].position(key);
        self.withdraw_caller_offers(now, c);
        self.queues[q].waiting.remove(&key);
        let caller = self.caller_mut(c)?;
        caller.max_wait_at = None;
        caller.relax_at = None;
        caller.next_announce = None;
        caller.retry_at = None;
        Some((position, ms_between(entered, now)))
    }

    fn end_connected(&mut self, now: Instant, c: CallerIdx, by: HungUpBy) {
        let Some(caller) = self.caller(c) else {
            return;
        };
        let CallerStatus::Connected { agent, since, .. } = caller.status else {
            return;
        };
        let q = caller.queue;
        let talk = now.saturating_duration_since(since);
        let kind = EventKind::CallEnded {
            call_id: caller.call_id.clone(),
            queue: self.queues[q].name.clone(),
            agent: self.agents[agent].id.clone(),
            talk_ms: ms_between(since, now),
            hung_up_by: by,
        };
        self.emit(kind);
        let wrap_up = self.queues[q].rules.wrap_up;
        self.queues[q].handle_times.record(talk + wrap_up);
        self.agents[agent].connected.retain(|&x| x != c);
        self.start_wrap_up(now, agent, q);
        self.refresh_agent(agent, now);
        self.remove_caller(c);
    }

    pub(super) fn offer_outcome(
        &mut self,
        now: Instant,
        call_id: &str,
        offer: OfferId,
        outcome: OfferOutcome,
    ) {
        let Some(&c) = self.by_call.get(call_id) else {
            return;
        };
        let live = self.offers.get(&offer).is_some_and(|o| o.caller == c);
        match (live, outcome) {
            (true, OfferOutcome::Answered) => self.connect(now, offer),
            (true, _) => self.offer_failed(now, offer),
            // The offer was withdrawn meanwhile (another agent answered first, the ring
            // timed out, the agent paused): the leg that answered late must go.
            (false, OfferOutcome::Answered) => self.tell(c, Instruction::CancelOffer { offer }),
            (false, _) => {}
        }
    }

    fn connect(&mut self, now: Instant, id: OfferId) {
        let Some(offer) = self.offers.remove(&id) else {
            return;
        };
        let (c, a, q) = (offer.caller, offer.agent, offer.queue);
        self.agents[a].offers.retain(|&x| x != id);
        if let Some(caller) = self.caller_mut(c) {
            caller.offers.retain(|&x| x != id);
        }
        let Some((_, wait_ms)) = self.take_from_queue(now, c) else {
            return;
        };
        let Some(caller) = self.caller_mut(c) else {
            return;
        };
        caller.status = CallerStatus::Connected {
            agent: a,
            offer: id,
            since: now,
        };
        let call_id = caller.call_id.clone();
        let agent = &mut self.agents[a];
        agent.connected.push(c);
        agent.no_answer_streak = 0;
        agent.answered += 1;
        let agent_id = agent.id.clone();
        if let Some(m) = self.queues[q].members.iter_mut().find(|m| m.agent == a) {
            m.answered += 1;
        }
        self.emit(EventKind::Connected {
            call_id,
            queue: self.queues[q].name.clone(),
            agent: agent_id.clone(),
            wait_ms,
            ring_ms: ms_between(offer.started, now),
        });
        self.tell(
            c,
            Instruction::Connected {
                offer: id,
                agent: agent_id,
            },
        );
        self.refresh_agent(a, now);
    }

    /// The ring timer ran out: the router withdraws the offer itself.
    pub(super) fn ring_timeout(&mut self, now: Instant, id: OfferId) {
        if let Some(c) = self.offers.get(&id).map(|o| o.caller) {
            self.tell(c, Instruction::CancelOffer { offer: id });
            self.offer_failed(now, id);
        }
    }

    /// The agent did not take the call: the caller keeps its place and goes to the next
    /// agent; the agent may be paused after too many of these in a row.
    fn offer_failed(&mut self, now: Instant, id: OfferId) {
        let Some(offer) = self.offers.remove(&id) else {
            return;
        };
        let (c, a, q) = (offer.caller, offer.agent, offer.queue);
        self.agents[a].offers.retain(|&x| x != id);
        let retry_at = now + self.queues[q].rules.retry;
        let Some(caller) = self.caller_mut(c) else {
            return;
        };
        caller.offers.retain(|&x| x != id);
        caller.tried.push(a);
        caller.retry_at = Some(retry_at);
        let (call_id, seq) = (caller.call_id.clone(), caller.seq);
        self.timers.schedule(retry_at, Timer::Retry(c, seq));
        self.emit(EventKind::RingNoAnswer {
            call_id,
            queue: self.queues[q].name.clone(),
            agent: self.agents[a].id.clone(),
            ring_ms: ms_between(offer.started, now),
        });
        let agent = &mut self.agents[a];
        agent.no_answer_streak += 1;
        let limit = self.queues[q].rules.max_no_answer;
        if limit > 0 && agent.no_answer_streak >= limit && agent.logged_in() {
            self.pause(now, a, "no answer".to_owned());
        }
        self.refresh_agent(a, now);
        self.mark_dirty(q);
    }

    /// Withdraws one offer without blaming the agent (the caller left or was connected
    /// elsewhere, the agent paused or logged out). A caller who is still waiting keeps
    /// its place.
    pub(super) fn withdraw(&mut self, now: Instant, id: OfferId) {
        let Some(offer) = self.offers.remove(&id) else {
            return;
        };
        self.agents[offer.agent].offers.retain(|&x| x != id);
        if let Some(caller) = self.caller_mut(offer.caller) {
            caller.offers.retain(|&x| x != id);
        }
        self.tell(offer.caller, Instruction::CancelOffer { offer: id });
        self.refresh_agent(offer.agent, now);
        self.mark_dirty(offer.queue);
    }

    fn withdraw_caller_offers(&mut self, now: Instant, c: CallerIdx) {
        while let Some(id) = self.caller(c).and_then(|x| x.offers.last().copied()) {
            self.withdraw(now, id);
        }
    }

    pub(super) fn max_wait_passed(&mut self, now: Instant, c: CallerIdx) {
        self.leave_queue(now, c, Exit::MaxWait);
    }

    /// The caller leaves its queue without an agent, with the event that closes its stay,
    /// and goes on to the queue's overflow target.
    pub(super) fn leave_queue(&mut self, now: Instant, c: CallerIdx, why: Exit) {
        let Some(q) = self.caller(c).map(|x| x.queue) else {
            return;
        };
        let Some((position, wait_ms)) = self.take_from_queue(now, c) else {
            return;
        };
        let Some(call_id) = self.caller(c).map(|x| x.call_id.clone()) else {
            return;
        };
        let queue = self.queues[q].name.clone();
        let overflow = self.queues[q].rules.overflow.clone();
        let (kind, reason) = match (why, &overflow) {
            (Exit::MaxWait, Some(target)) => (
                EventKind::Overflowed {
                    call_id,
                    queue,
                    target: target.to_string(),
                    wait_ms,
                    position,
                },
                LeaveReason::Overflow,
            ),
            (Exit::MaxWait, None) => (
                EventKind::ExitWithTimeout {
                    call_id,
                    queue,
                    position,
                    wait_ms,
                },
                LeaveReason::Timeout,
            ),
            (Exit::Empty, _) => (
                EventKind::ExitEmpty {
                    call_id,
                    queue,
                    position,
                    wait_ms,
                },
                LeaveReason::Empty,
            ),
        };
        self.emit(kind);
        match overflow {
            Some(OverflowTarget::Queue(name)) => match self.by_queue.get(&name) {
                Some(&next) => self.place(now, c, next, Some(q)),
                None => self.leave_acd(c, reason, None),
            },
            Some(OverflowTarget::Step(step)) => self.leave_acd(c, reason, Some(step)),
            None => self.leave_acd(c, reason, None),
        }
    }

    fn leave_acd(&mut self, c: CallerIdx, reason: LeaveReason, next_step: Option<String>) {
        self.tell(c, Instruction::Leave { reason, next_step });
        self.remove_caller(c);
    }

    fn remove_caller(&mut self, c: CallerIdx) {
        if let Some(caller) = self.callers.get_mut(c).and_then(Option::take) {
            self.by_call.remove(&caller.call_id);
            self.free_slots.push(c);
            self.out.push_back(Output::Forget {
                call_id: caller.call_id,
            });
        }
    }

    pub(super) fn announce(&mut self, now: Instant, c: CallerIdx) {
        let Some(caller) = self.caller(c) else {
            return;
        };
        let (q, seq, key, ringing) = (
            caller.queue,
            caller.seq,
            caller.key(),
            !caller.offers.is_empty(),
        );
        let (Some(at), Some(period)) = (caller.next_announce, self.queues[q].rules.announce_period)
        else {
            return;
        };
        let next = at + period;
        if let Some(caller) = self.caller_mut(c) {
            caller.next_announce = Some(next);
        }
        self.timers.schedule(next, Timer::Announce(c, seq));
        // A caller whose agent is ringing is about to be connected: no announcement.
        if !ringing {
            let position = self.queues[q].position(key);
            let estimated_wait = self.estimate(now, c, position);
            self.tell(
                c,
                Instruction::Announce {
                    position,
                    estimated_wait,
                },
            );
        }
    }
}
