//! The agent's side of the router: login, logout, pause and resume (from the API, from
//! the registrar, and the automatic pause after unanswered offers), and wrap-up.

use std::time::Instant;

use super::Router;
use super::calls::Exit;
use super::state::{AgentIdx, Presence, QueueIdx};
use super::timers::Timer;
use crate::acd::messages::{AgentAction, ControlError, InputError};
use crate::events::EventKind;

impl Router {
    pub(super) fn agent_action(
        &mut self,
        now: Instant,
        a: AgentIdx,
        action: AgentAction,
    ) -> Result<(), ControlError> {
        let agent = &self.agents[a];
        match action {
            AgentAction::Login if agent.logged_in() => Ok(()),
            AgentAction::Login if !agent.has_phone() => {
                Err(ControlError::NotReachable(agent.id.clone()))
            }
            AgentAction::Login => {
                self.login(now, a);
                Ok(())
            }
            AgentAction::Logout { reason } => {
                if agent.logged_in() {
                    self.logout(now, a, &reason);
                }
                Ok(())
            }
            _ if !agent.logged_in() => Err(ControlError::LoggedOut(agent.id.clone())),
            AgentAction::Pause { reason } => {
                self.pause(now, a, reason);
                Ok(())
            }
            AgentAction::Resume => {
                match agent.presence {
                    Presence::Paused(_) => self.resume(now, a),
                    Presence::WrapUp { .. } => self.end_wrap_up(now, a),
                    Presence::Ready | Presence::LoggedOut => {}
                }
                Ok(())
            }
        }
    }

    /// The registrar's news about a phone.
    pub(super) fn registration(
        &mut self,
        now: Instant,
        user: &str,
        contact: Option<String>,
    ) -> Result<(), InputError> {
        let a = *self
            .by_user
            .get(user)
            .ok_or_else(|| InputError::UnknownUser(user.to_owned()))?;
        let registered = contact.is_some();
        let staffed = self.agents[a].staffing();
        self.agents[a].contact = contact;
        let agent = &self.agents[a];
        if registered && agent.auto_login && !agent.logged_in() {
            self.login(now, a);
        } else if agent.logged_in() && !agent.has_phone() {
            self.logout(now, a, "registration lost");
        } else if staffed && !agent.staffing() {
            // Still logged in through its URI, which probes find down.
            self.let_empty_queues_go(now, a);
        }
        self.refresh_agent(a, now);
        Ok(())
    }

    /// OPTIONS probes' news about an agent reached by URI. Unlike a phone that
    /// unregisters, it stays logged in: it takes calls again as soon as it answers.
    pub(super) fn reachability(
        &mut self,
        now: Instant,
        agent: &str,
        up: bool,
    ) -> Result<(), InputError> {
        let a = *self
            .by_agent
            .get(agent)
            .ok_or_else(|| InputError::UnknownAgent(agent.to_owned()))?;
        let staffed = self.agents[a].staffing();
        self.agents[a].reachable = up;
        self.refresh_agent(a, now);
        if staffed && !self.agents[a].staffing() {
            self.let_empty_queues_go(now, a);
        }
        Ok(())
    }

    fn login(&mut self, now: Instant, a: AgentIdx) {
        for &q in &self.agents[a].queues {
            for m in self.queues[q].members.iter_mut().filter(|m| m.agent == a) {
                m.answered = 0;
            }
        }
        let agent = &mut self.agents[a];
        agent.presence = Presence::Ready;
        agent.idle_since = now;
        agent.no_answer_streak = 0;
        let kind = EventKind::AgentLogin {
            agent: agent.id.clone(),
            queues: agent
                .queues
                .iter()
                .map(|&q| self.queues[q].name.clone())
                .collect(),
        };
        self.emit(kind);
        self.refresh_agent(a, now);
    }

    /// Ends the agent's wrap-up and withdraws the calls ringing on it (their callers keep
    /// their places), before a pause or logout.
    fn stand_down(&mut self, now: Instant, a: AgentIdx) {
        if matches!(self.agents[a].presence, Presence::WrapUp { .. }) {
            self.agents[a].presence = Presence::Ready;
            let agent = self.agents[a].id.clone();
            self.emit(EventKind::WrapUpEnded { agent });
        }
        while let Some(id) = self.agents[a].offers.last().copied() {
            self.withdraw(now, id);
        }
    }

    /// Logs the agent out; calls in progress go on, and queues that send callers away when
    /// empty do so.
    fn logout(&mut self, now: Instant, a: AgentIdx, reason: &str) {
        self.stand_down(now, a);
        self.agents[a].presence = Presence::LoggedOut;
        let agent = self.agents[a].id.clone();
        self.emit(EventKind::AgentLogout {
            agent,
            reason: reason.to_owned(),
        });
        self.refresh_agent(a, now);
        self.let_empty_queues_go(now, a);
    }

    /// The agent `a` no longer staffs its queues: the callers of those left with nobody
    /// leave them, when they are to (`leave_when_empty`).
    fn let_empty_queues_go(&mut self, now: Instant, a: AgentIdx) {
        for i in 0..self.agents[a].queues.len() {
            let q = self.agents[a].queues[i];
            if self.queues[q].rules.leave_when_empty && !self.any_logged_in(q) {
                let waiting: Vec<_> = self.queues[q].waiting.values().copied().collect();
                for c in waiting {
                    self.leave_queue(now, c, Exit::Empty);
                }
            }
        }
    }

    /// Pauses a logged-in agent; pausing again with another reason changes the reason
    /// (a new `AgentPause` event).
    pub(super) fn pause(&mut self, now: Instant, a: AgentIdx, reason: String) {
        if matches!(&self.agents[a].presence, Presence::Paused(r) if *r == reason) {
            return;
        }
        self.stand_down(now, a);
        let agent = &mut self.agents[a];
        agent.presence = Presence::Paused(reason.clone());
        agent.no_answer_streak = 0;
        let agent = agent.id.clone();
        self.emit(EventKind::AgentPause { agent, reason });
        self.refresh_agent(a, now);
    }

    fn resume(&mut self, now: Instant, a: AgentIdx) {
        let agent = &mut self.agents[a];
        agent.presence = Presence::Ready;
        agent.idle_since = now;
        agent.no_answer_streak = 0;
        let agent = agent.id.clone();
        self.emit(EventKind::AgentResume { agent });
        self.refresh_agent(a, now);
    }

    /// After a connected call of queue `q` ended: the queue's wrap-up for an agent who is
    /// working (a paused or logged-out agent stays so); an agent already in wrap-up gets
    /// the longer of the two.
    pub(super) fn start_wrap_up(&mut self, now: Instant, a: AgentIdx, q: QueueIdx) {
        let wrap_up = self.queues[q].rules.wrap_up;
        let agent = &mut self.agents[a];
        let until = now + wrap_up;
        match agent.presence {
            Presence::Ready if !wrap_up.is_zero() => {
                agent.presence = Presence::WrapUp { until };
                self.timers.schedule(until, Timer::WrapUp(a));
                let kind = EventKind::WrapUpStarted {
                    agent: agent.id.clone(),
                    queue: self.queues[q].name.clone(),
                };
                self.emit(kind);
            }
            Presence::WrapUp { until: current } if until > current => {
                agent.presence = Presence::WrapUp { until };
                self.timers.schedule(until, Timer::WrapUp(a));
            }
            Presence::Ready if agent.connected.is_empty() => agent.idle_since = now,
            _ => {}
        }
    }

    pub(super) fn end_wrap_up(&mut self, now: Instant, a: AgentIdx) {
        let agent = &mut self.agents[a];
        if !matches!(agent.presence, Presence::WrapUp { .. }) {
            return;
        }
        agent.presence = Presence::Ready;
        agent.idle_since = now;
        let agent = agent.id.clone();
        self.emit(EventKind::WrapUpEnded { agent });
        self.refresh_agent(a, now);
    }
}
