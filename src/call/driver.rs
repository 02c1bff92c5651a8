//! The call task: the thin driver of one call's core (`core`). It owns the call's I/O, the
//! caller's leg, the far legs (agent offer, transfer), the recognition session, the queue's
//! channel and announcement rendering, feeds what happens on them to the core with `now`,
//! and carries out the core's actions. Every decision is the core's.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::agent::AgentLeg;
use super::core::{AcdReport, CallAction, CallCore, Far, FarEvent};
use super::inbound::InboundLeg;
use super::speech::Listening;
use super::{CallContext, Flows};
use crate::acd::Instruction;
use crate::dialplan::{self, CallInfo};
use crate::media::clip::Clip;
use crate::time::sleep_until;

/// An announcement's queue position and its audio (none when it could not be rendered).
type Rendered = (u32, Option<Arc<Clip>>);
type Rendering = tokio::task::JoinHandle<Rendered>;

pub(super) struct Driver {
    ctx: Arc<CallContext>,
    core: CallCore,
    leg: InboundLeg,
    offer: Option<AgentLeg>,
    transfer: Option<AgentLeg>,
    listening: Option<Listening>,
    instructions: Option<mpsc::UnboundedReceiver<Instruction>>,
    /// An announcement being rendered: the call goes on meanwhile, so an offer is never
    /// held up by text-to-speech.
    announcing: Option<Rendering>,
}

impl Driver {
    pub(super) fn new(
        ctx: Arc<CallContext>,
        flows: Arc<Flows>,
        plan: Arc<dialplan::Dialplan>,
        leg: InboundLeg,
    ) -> Driver {
        let info = CallInfo {
            call_id: leg.call_id.clone(),
            caller: leg.caller.clone(),
            called: leg.called.clone(),
            trunk: leg.trunk.clone(),
        };
        let core = CallCore::new(
            Instant::now(),
            jiff::Timestamp::now(),
            flows,
            plan,
            info,
            super::host_port(leg.peer().addr),
            ctx.acd.is_some(),
        );
        Driver {
            ctx,
            core,
            leg,
            offer: None,
            transfer: None,
            listening: None,
            instructions: None,
            announcing: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            while let Some(action) = self.core.poll_action() {
                self.act(action).await;
            }
            if self.core.outcome().is_some() {
                break;
            }
            let timeout = self.core.poll_timeout();
            let queued = self.core.is_queued();
            tokio::select! {
                ev = self.leg.next_event() => self.core.handle_caller(Instant::now(), ev),
                _ = sleep_until(timeout) => self.core.handle_timeout(Instant::now()),
                ev = next_speech(&mut self.listening) => {
                    if let Some((id, speech)) = ev {
                        self.core.handle_speech(Instant::now(), id, speech);
                    }
                }
                i = next_instruction(&mut self.instructions), if queued => {
                    self.core.handle_instruction(Instant::now(), i);
                }
                ev = next_far(&mut self.offer) => self.core.handle_far(Instant::now(), Far::Offer, ev),
                ev = next_far(&mut self.transfer) => self.core.handle_far(Instant::now(), Far::Transfer, ev),
                done = next_announcement(&mut self.announcing) => {
                    self.announcing = None;
                    if let Ok((position, clip)) = done {
                        self.core.handle_announcement(Instant::now(), position, clip);
                    }
                }
            }
        }
        let outcome = self.core.outcome().map(ToString::to_string);
        info!(keys = %self.core.keys(), outcome = %outcome.unwrap_or_default(), "call ended");
    }

    async fn act(&mut self, action: CallAction) {
        match action {
            CallAction::Play { id, clip } => self.leg.play(id, clip),
            CallAction::StopAudio => self.leg.stop(),
            CallAction::Listen { id, request } => {
                match self.ctx.speech.listen(self.leg.media(), id, &request) {
                    Ok(listening) => self.listening = Some(listening),
                    Err(why) => self.core.handle_speech(
                        Instant::now(),
                        id,
                        dialplan::Speech::Unavailable(why),
                    ),
                }
            }
            CallAction::StopListening(id) => {
                if self.listening.as_ref().is_some_and(|l| l.id == id) {
                    self.listening = None;
                }
            }
            CallAction::Enqueue(request) => {
                if let Some(acd) = &self.ctx.acd {
                    self.instructions = Some(acd.enqueue(request));
                }
            }
            CallAction::Dial {
                far,
                target,
                context,
            } => {
                // Dropping a leg sends its CANCEL or BYE.
                *self.far(far) = None;
                match AgentLeg::dial(
                    &self.ctx.media,
                    &self.ctx.endpoint,
                    self.leg.media(),
                    &target,
                    &context,
                )
                .await
                {
                    Ok(leg) => *self.far(far) = Some(leg),
                    Err(e) => {
                        warn!(error = %e, %target, ?far, "cannot place the call");
                        self.core.handle_dial_failed(Instant::now(), far);
                    }
                }
            }
            CallAction::DropFar(far) => *self.far(far) = None,
            CallAction::Bridge(far) => {
                let other = far.and_then(|f| match f {
                    Far::Offer => self.offer.as_ref(),
                    Far::Transfer => self.transfer.as_ref(),
                });
                self.leg.media().bridge(other.map(AgentLeg::media));
            }
            CallAction::Acd(report) => {
                let Some(acd) = &self.ctx.acd else { return };
                let call_id = &self.leg.call_id;
                match report {
                    AcdReport::OfferOutcome(offer, outcome) => {
                        acd.offer_outcome(call_id, offer, outcome)
                    }
                    AcdReport::CallEnded(by) => acd.call_ended(call_id, by),
                    AcdReport::CallerGone(by) => acd.caller_gone(call_id, by),
                }
            }
            CallAction::Announce {
                language,
                position,
                wait,
            } => {
                let announcer = self.ctx.announcer.clone();
                self.announcing = Some(tokio::spawn(async move {
                    (position, announcer.clip(&language, position, wait).await)
                }));
            }
            CallAction::HangUpCaller => self.leg.bye().await,
            CallAction::Event(kind) => self.ctx.events.emit(kind),
        }
    }

    fn far(&mut self, far: Far) -> &mut Option<AgentLeg> {
        match far {
            Far::Offer => &mut self.offer,
            Far::Transfer => &mut self.transfer,
        }
    }
}

async fn next_speech(
    listening: &mut Option<Listening>,
) -> Option<(dialplan::ListenId, dialplan::Speech)> {
    match listening {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

async fn next_announcement(
    announcing: &mut Option<Rendering>,
) -> Result<Rendered, tokio::task::JoinError> {
    match announcing {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn next_instruction(
    instructions: &mut Option<mpsc::UnboundedReceiver<Instruction>>,
) -> Option<Instruction> {
    match instructions {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_far(leg: &mut Option<AgentLeg>) -> FarEvent {
    match leg {
        Some(leg) => leg.next_event().await,
        None => std::future::pending().await,
    }
}
