//! One call's life after the answer: the dialplan interpreter is fed with what happens on
//! the caller's leg (keys, ends of prompts, hang-up), its timers, speech, and the ACD's
//! instructions; its actions become prompts, listening, queueing, agent legs, bridging and
//! the hang-up. The task owns the interpreter, both legs and the queue channel; nothing else
//! touches them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::agent::{AgentEvent, AgentLeg, CallContextHeaders};
use super::inbound::{EndReason, InboundLeg, LegEvent};
use super::{CallContext, Flows, announce, speech::Listening};
use crate::acd::{EnqueueRequest, Instruction, OfferId, OfferOutcome, Target};
use crate::dialplan::{self, Action, CallInfo, Enqueue, Input, Interpreter, TransferTo};
use crate::events::{EventKind, HungUpBy};
use crate::media::clip::Clip;
use crate::media::session::PlayId as MediaPlayId;
use crate::time::sleep_until;

/// A call handed to a queue.
struct Queued {
    enqueue: Enqueue,
    instructions: mpsc::UnboundedReceiver<Instruction>,
    /// Bridged to the agent of the current offer.
    connected: bool,
    /// What plays to the waiting caller (the queue step's prompt, an announcement or the
    /// comfort audio).
    playing: Option<MediaPlayId>,
    /// The queue step's prompt is playing: an announcement waits for its end.
    entering: bool,
    /// An announcement that came while the queue step's prompt played.
    deferred: Option<Arc<Clip>>,
}

/// A transfer in progress: the far leg, bridged once it answers.
struct Transfer {
    leg: AgentLeg,
    /// Until the far end answers: when it has rung too long.
    ring_until: Option<Instant>,
}

impl Transfer {
    fn connected(&self) -> bool {
        self.ring_until.is_none()
    }
}

/// An announcement's queue position and its audio (none when it could not be rendered).
type Rendered = (u32, Option<Arc<Clip>>);
type Rendering = tokio::task::JoinHandle<Rendered>;

pub(super) struct Call {
    ctx: Arc<CallContext>,
    flows: Arc<Flows>,
    leg: InboundLeg,
    interp: Interpreter,
    /// The interpreter's playback: its id and the media id of its last clip.
    playing: Option<(dialplan::PlayId, MediaPlayId)>,
    listening: Option<Listening>,
    queued: Option<Queued>,
    /// The agent phone the ACD offered the call to.
    offer: Option<(OfferId, AgentLeg)>,
    transfer: Option<Transfer>,
    /// An announcement being rendered (its position and the clip): the call goes on
    /// meanwhile, so an offer is never held up by text-to-speech.
    announcing: Option<Rendering>,
    keys: String,
    outcome: Option<String>,
}

impl Call {
    pub(super) fn new(
        ctx: Arc<CallContext>,
        flows: Arc<Flows>,
        plan: Arc<dialplan::Dialplan>,
        leg: InboundLeg,
    ) -> Call {
        let info = CallInfo {
            call_id: leg.call_id.clone(),
            caller: leg.caller.clone(),
            called: leg.called.clone(),
            trunk: leg.trunk.clone(),
        };
        let interp = Interpreter::start(plan, info, Instant::now(), jiff::Timestamp::now());
        Call {
            ctx,
            flows,
            leg,
            interp,
            playing: None,
            listening: None,
            queued: None,
            offer: None,
            transfer: None,
            announcing: None,
            keys: String::new(),
            outcome: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            self.act().await;
            if self.outcome.is_some() {
                break;
            }
            let timeout = self.interp.next_timeout();
            tokio::select! {
                ev = self.leg.next_event() => self.on_leg(ev).await,
                _ = sleep_until(timeout) => self.interp.handle_timeout(Instant::now()),
                ev = next_speech(&mut self.listening) => {
                    if let Some((id, speech)) = ev {
                        self.interp.handle(Instant::now(), Input::Speech(id, speech));
                    }
                }
                instruction = next_instruction(&mut self.queued) => self.on_instruction(instruction).await,
                ev = next_agent_event(&mut self.offer) => self.on_agent(ev).await,
                ev = next_transfer_event(&mut self.transfer) => self.on_transfer(ev).await,
                done = next_announcement(&mut self.announcing) => {
                    self.announcing = None;
                    if let Ok((position, clip)) = done {
                        self.play_announcement(position, clip);
                    }
                }
            }
        }
        info!(keys = %self.keys, outcome = %self.outcome.as_deref().unwrap_or_default(), "call ended");
    }

    /// Carries out every action the interpreter has queued.
    async fn act(&mut self) {
        while let Some(action) = self.interp.poll_action() {
            match action {
                Action::Play { id, prompts, .. } => self.play(id, &prompts),
                Action::StopPlayback(id) => {
                    if self.playing.is_some_and(|(p, _)| p == id) {
                        self.leg.stop();
                        self.playing = None;
                    }
                }
                Action::Listen { id, request } => {
                    match self.ctx.speech.listen(self.leg.media(), id, &request) {
                        Ok(listening) => self.listening = Some(listening),
                        Err(why) => self.interp.handle(
                            Instant::now(),
                            Input::Speech(id, dialplan::Speech::Unavailable(why)),
                        ),
                    }
                }
                Action::StopListening(id) => {
                    if self.listening.as_ref().is_some_and(|l| l.id == id) {
                        self.listening = None;
                    }
                }
                Action::Enqueue(e) => self.enqueue(e),
                Action::Transfer {
                    to,
                    vars,
                    ring_timeout,
                } => self.start_transfer(to, &vars, ring_timeout).await,
                Action::Hangup { outcome } => {
                    self.leg.bye().await;
                    self.finish(outcome);
                }
                Action::Event(kind) => self.ctx.events.emit(kind),
            }
        }
    }

    /// Queues the prompts' audio on the caller's leg; the media id of the last one played.
    fn play_clips(&mut self, prompts: &[dialplan::PromptToPlay]) -> Option<MediaPlayId> {
        let plan = self.interp.plan().name.clone();
        let mut last = None;
        for p in prompts {
            match self.flows.prompts.get(&plan, &p.prompt, &p.language) {
                Some(clip) => last = Some(self.leg.play(clip.clone())),
                None => warn!(prompt = %p.prompt, language = %p.language, "no audio for a prompt"),
            }
        }
        last
    }

    fn play(&mut self, id: dialplan::PlayId, prompts: &[dialplan::PromptToPlay]) {
        let names: Vec<&str> = prompts.iter().map(|p| p.prompt.as_str()).collect();
        info!(step = %self.interp.step_name(), prompts = %names.join(","), "playing");
        match self.play_clips(prompts) {
            Some(media_id) => self.playing = Some((id, media_id)),
            None => self.interp.handle(Instant::now(), Input::PromptDone(id)),
        }
    }

    async fn on_leg(&mut self, ev: LegEvent) {
        let now = Instant::now();
        match ev {
            LegEvent::Dtmf(key) => {
                self.keys.push(key);
                self.interp.handle(now, Input::Digit(key));
            }
            LegEvent::PlayDone(media_id) => {
                if let Some((id, last)) = self.playing
                    && last == media_id
                {
                    self.playing = None;
                    self.interp.handle(now, Input::PromptDone(id));
                }
                if let Some(q) = self.queued.as_mut()
                    && q.playing == Some(media_id)
                {
                    q.playing = None;
                    q.entering = false;
                    if !q.connected {
                        let next = q.deferred.take().unwrap_or_else(announce::comfort);
                        q.playing = Some(self.leg.play(next));
                    }
                }
            }
            LegEvent::Ended(reason) => self.caller_gone(reason),
        }
    }

    /// The caller's leg is over: tell the ACD and the other leg, and finish.
    fn caller_gone(&mut self, reason: EndReason) {
        let (outcome, by) = match reason {
            EndReason::CallerHungUp => ("caller_hung_up", HungUpBy::Caller),
            EndReason::MediaTimeout => ("media_timeout", HungUpBy::System),
            EndReason::NoAck => ("no_ack", HungUpBy::System),
            EndReason::Shutdown => ("shutdown", HungUpBy::System),
        };
        // Dropping the agent or transfer leg sends its CANCEL or BYE.
        self.offer = None;
        let transferred = self.transfer.take().is_some_and(|t| t.connected());
        if let (Some(q), Some(acd)) = (self.queued.take(), self.ctx.acd.as_ref()) {
            if q.connected {
                acd.call_ended(&self.leg.call_id, by);
                self.outcome = Some(format!("{outcome}_after_agent"));
                return;
            }
            acd.caller_gone(&self.leg.call_id, by);
        }
        if transferred {
            self.outcome = Some("transferred".into());
            return;
        }
        self.finish(outcome.to_owned());
    }

    /// Ends the call outside a connected agent call: logged as `CallFinished`.
    fn finish(&mut self, outcome: String) {
        self.ctx.events.emit(EventKind::CallFinished {
            call_id: self.leg.call_id.clone(),
            outcome: outcome.clone(),
        });
        self.outcome = Some(outcome);
    }

    fn enqueue(&mut self, e: Enqueue) {
        let Some(acd) = self.ctx.acd.as_ref() else {
            warn!(queue = %e.queue, "no ACD configured: the queue gives the call back");
            return self
                .interp
                .handle(Instant::now(), Input::QueueLeft { step: None });
        };
        info!(queue = %e.queue, language = %e.language, intent = ?e.intent, "queued");
        let instructions = acd.enqueue(EnqueueRequest {
            call_id: self.leg.call_id.clone(),
            queue: e.queue.clone(),
            language: e.language.clone(),
            intent: e.intent.clone(),
            priority: e.priority,
            caller: self.leg.caller.clone(),
        });
        let playing = self.play_clips(&e.prompts);
        self.queued = Some(Queued {
            enqueue: e,
            instructions,
            connected: false,
            entering: playing.is_some(),
            playing,
            deferred: None,
        });
    }

    async fn on_instruction(&mut self, instruction: Option<Instruction>) {
        let Some(instruction) = instruction else {
            // The ACD forgot the call without a Leave (it stopped): continue the flow.
            return self.left_queue(None);
        };
        debug!(?instruction, "ACD");
        match instruction {
            Instruction::Queued {
                position,
                estimated_wait,
                ..
            }
            | Instruction::Announce {
                position,
                estimated_wait,
            } => self.announce(position, estimated_wait),
            Instruction::Offer { offer, target, .. } => self.offer(offer, target).await,
            Instruction::CancelOffer { offer } => {
                if self.offer.as_ref().is_some_and(|(o, _)| *o == offer) {
                    // Dropping the leg sends its CANCEL (ringing) or BYE (answered).
                    self.offer = None;
                    if let Some(q) = self.queued.as_mut() {
                        q.connected = false;
                    }
                }
            }
            Instruction::Connected { offer, agent } => {
                let Some(q) = self.queued.as_mut() else {
                    return;
                };
                if let Some((o, agent_leg)) = self.offer.as_ref()
                    && *o == offer
                {
                    self.leg.stop();
                    q.playing = None;
                    q.connected = true;
                    self.leg.media().bridge(Some(agent_leg.media()));
                    info!(%agent, "connected to an agent");
                }
            }
            Instruction::Leave { reason, next_step } => {
                info!(?reason, ?next_step, "left the queue");
                self.left_queue(next_step);
            }
        }
    }

    fn left_queue(&mut self, step: Option<String>) {
        self.offer = None;
        if let Some(q) = self.queued.take()
            && q.playing.is_some()
        {
            self.leg.stop();
        }
        self.interp
            .handle(Instant::now(), Input::QueueLeft { step });
    }

    fn announce(&mut self, position: u32, wait: Option<Duration>) {
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        let announcer = self.ctx.announcer.clone();
        let language = q.enqueue.language.clone();
        self.announcing = Some(tokio::spawn(async move {
            (position, announcer.clip(&language, position, wait).await)
        }));
    }

    fn play_announcement(&mut self, position: u32, clip: Option<Arc<Clip>>) {
        let Some(q) = self.queued.as_mut().filter(|q| !q.connected) else {
            return;
        };
        if let Some(clip) = clip {
            info!(position, language = %q.enqueue.language, secs = clip.duration().as_secs_f32(), "announcing the queue position");
            if q.entering {
                // After the queue step's prompt, not over it.
                q.deferred = Some(clip);
                return;
            }
            self.leg.stop();
            q.playing = Some(self.leg.play(clip));
        } else if q.playing.is_none() {
            q.playing = Some(self.leg.play(announce::comfort()));
        }
    }

    async fn offer(&mut self, offer: OfferId, target: Target) {
        let Some(acd) = self.ctx.acd.clone() else {
            return;
        };
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        let uri = match &target {
            Target::Registered(u) | Target::Trunk(u) => u.clone(),
        };
        let transcript = q.enqueue.vars.transcript.clone();
        let headers = CallContextHeaders {
            caller: &self.leg.caller,
            queue: Some(&q.enqueue.queue),
            intent: q.enqueue.intent.as_deref(),
            language: &q.enqueue.language,
            transcript: transcript.as_deref(),
        };
        match AgentLeg::dial(
            &self.ctx.media,
            &self.ctx.endpoint,
            self.leg.media(),
            &uri,
            headers,
        )
        .await
        {
            Ok(agent) => self.offer = Some((offer, agent)),
            Err(e) => {
                warn!(error = %e, %uri, "cannot offer the call");
                acd.offer_outcome(&self.leg.call_id, offer, OfferOutcome::Failed);
            }
        }
    }

    async fn on_agent(&mut self, ev: AgentEvent) {
        let Some(acd) = self.ctx.acd.clone() else {
            return;
        };
        let Some(offer) = self.offer.as_ref().map(|(o, _)| *o) else {
            return;
        };
        let connected = self.queued.as_ref().is_some_and(|q| q.connected);
        let call_id = self.leg.call_id.clone();
        match ev {
            AgentEvent::Ringing => {}
            AgentEvent::Answered => acd.offer_outcome(&call_id, offer, OfferOutcome::Answered),
            AgentEvent::Failed(code) => {
                self.offer = None;
                let outcome = match code {
                    486 | 480 | 600 | 603 => OfferOutcome::Rejected,
                    408 | 487 => OfferOutcome::NoAnswer,
                    _ => OfferOutcome::Failed,
                };
                acd.offer_outcome(&call_id, offer, outcome);
            }
            AgentEvent::HungUp | AgentEvent::MediaTimeout if connected => {
                let (by, outcome) = if ev == AgentEvent::HungUp {
                    (HungUpBy::Agent, "agent_hung_up")
                } else {
                    (HungUpBy::System, "agent_media_timeout")
                };
                acd.call_ended(&call_id, by);
                self.queued = None;
                self.offer = None;
                self.hang_up_caller(outcome).await;
            }
            AgentEvent::HungUp | AgentEvent::MediaTimeout => {
                self.offer = None;
                acd.offer_outcome(&call_id, offer, OfferOutcome::Failed);
            }
        }
    }

    /// The far side ended a bridged call: BYE to the caller.
    async fn hang_up_caller(&mut self, outcome: &str) {
        self.leg.media().bridge(None);
        self.leg.bye().await;
        self.outcome = Some(outcome.to_owned());
    }

    async fn start_transfer(&mut self, to: TransferTo, vars: &dialplan::Vars, ring: Duration) {
        let target = match to {
            TransferTo::Uri(uri) => uri,
            TransferTo::Trunk(number) => {
                let peer = self.leg.peer();
                format!("sip:{number}@{}", super::host_port(peer.addr))
            }
        };
        let headers = CallContextHeaders {
            caller: &self.leg.caller,
            queue: None,
            intent: vars.intent.as_deref(),
            language: &vars.language,
            transcript: vars.transcript.as_deref(),
        };
        match AgentLeg::dial(
            &self.ctx.media,
            &self.ctx.endpoint,
            self.leg.media(),
            &target,
            headers,
        )
        .await
        {
            Ok(leg) => {
                info!(%target, "transferring");
                self.transfer = Some(Transfer {
                    leg,
                    ring_until: Some(Instant::now() + ring),
                });
            }
            Err(e) => {
                warn!(error = %e, %target, "transfer failed");
                self.interp.handle(Instant::now(), Input::TransferFailed);
            }
        }
    }

    async fn on_transfer(&mut self, ev: AgentEvent) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        match ev {
            AgentEvent::Ringing => {}
            AgentEvent::Answered => {
                self.leg.stop();
                self.leg.media().bridge(Some(t.leg.media()));
                t.ring_until = None;
                self.ctx.events.emit(EventKind::CallFinished {
                    call_id: self.leg.call_id.clone(),
                    outcome: "transferred".into(),
                });
            }
            AgentEvent::Failed(code) if !t.connected() => {
                info!(code, "transfer failed");
                // Dropping the leg CANCELs it if it still rings.
                self.transfer = None;
                self.interp.handle(Instant::now(), Input::TransferFailed);
            }
            AgentEvent::Failed(_) | AgentEvent::HungUp | AgentEvent::MediaTimeout => {
                self.transfer = None;
                self.hang_up_caller("transferred").await;
            }
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

async fn next_instruction(queued: &mut Option<Queued>) -> Option<Instruction> {
    match queued {
        Some(q) => q.instructions.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_agent_event(offer: &mut Option<(OfferId, AgentLeg)>) -> AgentEvent {
    match offer {
        Some((_, agent)) => agent.next_event().await,
        None => std::future::pending().await,
    }
}

/// The transfer leg's next event; a far end that rings past its time counts as a 408.
async fn next_transfer_event(transfer: &mut Option<Transfer>) -> AgentEvent {
    match transfer {
        Some(t) => tokio::select! {
            ev = t.leg.next_event() => ev,
            _ = sleep_until(t.ring_until) => AgentEvent::Failed(408),
        },
        None => std::future::pending().await,
    }
}
