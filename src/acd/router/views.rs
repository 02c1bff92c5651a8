//! Read-only views of the router's state for the API and the control replies.

use std::time::Instant;

use super::Router;
use super::state::{AgentIdx, ms_between};
use crate::acd::messages::{AcdSnapshot, AgentView, QueueView, WaitingView};

impl Router {
    pub(super) fn agent_view(&self, a: AgentIdx, now: Instant) -> AgentView {
        let agent = &self.agents[a];
        AgentView {
            id: agent.id.clone(),
            name: agent.name.clone(),
            state: agent.state(),
            in_state_ms: ms_between(agent.state_since, now),
            queues: agent
                .queues
                .iter()
                .map(|&q| self.queues[q].name.clone())
                .collect(),
            registered: agent.contact.is_some(),
            reachable: agent.reachable,
            answered: agent.answered,
        }
    }

    /// Every queue with its waiting callers in order, and every agent.
    pub fn snapshot(&self, now: Instant) -> AcdSnapshot {
        let queues = self
            .queues
            .iter()
            .map(|queue| {
                let waiting = queue
                    .waiting
                    .values()
                    .zip(1u32..)
                    .filter_map(|(&c, position)| {
                        let caller = self.caller(c)?;
                        Some(WaitingView {
                            call_id: caller.call_id.clone(),
                            caller: caller.number.clone(),
                            position,
                            priority: caller.priority,
                            language: caller.language.clone(),
                            waited_ms: ms_between(caller.entered, now),
                            ringing: caller
                                .offers
                                .iter()
                                .filter_map(|o| self.offers.get(o))
                                .map(|o| self.agents[o.agent].id.clone())
                                .collect(),
                        })
                    })
                    .collect();
                let members = || queue.members.iter().map(|m| &self.agents[m.agent]);
                QueueView {
                    name: queue.name.clone(),
                    waiting,
                    logged_in: count(members().filter(|a| a.logged_in())),
                    available: count(members().filter(|a| a.free)),
                    handle_time_ms: u64::try_from(queue.handle_times.mean().as_millis())
                        .unwrap_or(u64::MAX),
                }
            })
            .collect();
        AcdSnapshot {
            queues,
            agents: (0..self.agents.len())
                .map(|a| self.agent_view(a, now))
                .collect(),
        }
    }
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}
