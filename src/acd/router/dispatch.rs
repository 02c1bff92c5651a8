//! Matching waiting callers with free agents. Only queues marked dirty since the last pass
//! are looked at: a caller who could not be served stays unserved until an agent frees up,
//! its language requirement relaxes or its retry delay ends, and each of those marks the
//! queue. Callers are served in one global order (priority, then arrival); each caller's
//! queue strategy picks among the members free and allowed to take it.

use std::cmp::Reverse;
use std::time::Instant;

use super::Router;
use super::state::{CallerIdx, QueueIdx, QueueKey};
use super::timers::Timer;
use crate::acd::config::Strategy;
use crate::acd::messages::{Instruction, OfferId};
use crate::acd::router::state::{AgentIdx, Offer};
use crate::events::EventKind;

impl Router {
    pub(super) fn dispatch(&mut self, now: Instant) {
        let mut candidates: Vec<(QueueKey, CallerIdx)> = Vec::new();
        // Offers to agents who can take more than one call leave them free and mark their
        // queues again; a pass that makes no offer marks nothing, so this ends.
        while !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            for &q in &dirty {
                self.queues[q].dirty = false;
            }
            if self.free_agents == 0 {
                return;
            }
            candidates.clear();
            for &q in &dirty {
                let queue = &self.queues[q];
                if !queue.members.iter().any(|m| self.agents[m.agent].free) {
                    continue;
                }
                let ring_all = queue.rules.strategy == Strategy::RingAll;
                for (&key, &c) in &queue.waiting {
                    if ring_all || self.caller(c).is_some_and(|x| x.offers.is_empty()) {
                        candidates.push((key, c));
                    }
                }
            }
            candidates.sort_unstable();
            for &(_, c) in &candidates {
                if self.free_agents == 0 {
                    return;
                }
                self.serve(now, c);
            }
        }
    }

    /// Offers the caller to the agent(s) its queue's strategy picks, if any may take it.
    fn serve(&mut self, now: Instant, c: CallerIdx) {
        let Some(caller) = self.caller(c) else {
            return;
        };
        let q = caller.queue;
        let relaxed = caller.language_relaxed(now);
        let mut eligible = Vec::new();
        let mut tried_only = false;
        for (pos, m) in self.queues[q].members.iter().enumerate() {
            let agent = &self.agents[m.agent];
            if !agent.free || !(relaxed || agent.speaks(&caller.language)) {
                continue;
            }
            let ringing_here = caller
                .offers
                .iter()
                .any(|o| self.offers.get(o).is_some_and(|o| o.agent == m.agent));
            if ringing_here {
                continue;
            }
            if caller.tried.contains(&m.agent) {
                tried_only = true;
                continue;
            }
            eligible.push(pos);
        }
        if eligible.is_empty() {
            // Everyone allowed has had a go: start a new round once the retry delay passed.
            if !tried_only || caller.retry_at.is_some_and(|t| now < t) {
                return;
            }
            if let Some(caller) = self.caller_mut(c) {
                caller.tried.clear();
            }
            return self.serve(now, c);
        }
        for pos in self.pick(q, &eligible) {
            let a = self.queues[q].members[pos].agent;
            self.offer(now, c, q, a);
        }
    }

    /// The member positions (among `eligible`, never empty) the queue's strategy offers to.
    fn pick(&mut self, q: QueueIdx, eligible: &[usize]) -> Vec<usize> {
        let queue = &self.queues[q];
        let idle = |pos: usize| self.agents[queue.members[pos].agent].idle_since;
        let best = match queue.rules.strategy {
            Strategy::RingAll => return eligible.to_vec(),
            Strategy::LongestIdle => eligible.iter().copied().min_by_key(|&p| (idle(p), p)),
            Strategy::SkillsBased => eligible
                .iter()
                .copied()
                .min_by_key(|&p| (Reverse(queue.members[p].level), idle(p), p)),
            Strategy::FewestCalls => eligible
                .iter()
                .copied()
                .min_by_key(|&p| (queue.members[p].answered, idle(p), p)),
            Strategy::RoundRobin => {
                let n = queue.members.len();
                let start = queue.rr_next % n.max(1);
                let best = eligible
                    .iter()
                    .copied()
                    .min_by_key(|&p| (p + n - start) % n);
                if let Some(p) = best {
                    self.queues[q].rr_next = p + 1;
                }
                best
            }
        };
        best.into_iter().collect()
    }

    fn offer(&mut self, now: Instant, c: CallerIdx, q: QueueIdx, a: AgentIdx) {
        let Some(target) = self.agents[a].target() else {
            return;
        };
        let id = OfferId(self.next_offer);
        self.next_offer += 1;
        let deadline = now + self.queues[q].rules.ring_timeout;
        let Some(caller) = self.caller_mut(c) else {
            return;
        };
        caller.offers.push(id);
        let call_id = caller.call_id.clone();
        self.offers.insert(
            id,
            Offer {
                caller: c,
                agent: a,
                queue: q,
                started: now,
                deadline,
            },
        );
        self.agents[a].offers.push(id);
        self.timers.schedule(deadline, Timer::Ring(id));
        self.refresh_agent(a, now);
        let (queue, agent) = (self.queues[q].name.clone(), self.agents[a].id.clone());
        self.emit(EventKind::AgentOffered {
            call_id,
            queue: queue.clone(),
            agent: agent.clone(),
        });
        self.tell(
            c,
            Instruction::Offer {
                offer: id,
                queue,
                agent,
                target,
            },
        );
    }
}
