//! The call's flow, sans IO: one call's decisions once it is up. It runs the dialplan
//! interpreter and turns what happens on the call's legs, in its queue, in recognition and
//! on its timers into `FlowAction`s: audio on the caller's leg, listening, queueing,
//! dialling an agent or a transfer target, bridging, reports to the ACD, events and the
//! hang-up. It owns what the call is doing (what plays, its place in a queue, the offer, the
//! transfer, the outcome); the SIP of each leg is the legs' (`caller_leg`, `far_leg`). It
//! must not touch a socket, a channel, the media or the clock: it is given `now`.

#![warn(unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Flows;
use super::announce;
use super::caller_leg::{EndReason, LegEvent};
use super::far_leg::FarEvent;
use super::referral::Referral;
use crate::acd::{EnqueueRequest, Instruction, OfferId, OfferOutcome, Target};
use crate::dialplan::{
    self, Action, CallInfo, Enqueue, Input, Interpreter, ListenId, ListenRequest, Speech,
    TransferMethod, TransferTo,
};
use crate::events::{EventKind, HungUpBy};
use crate::media::clip::Clip;
use crate::media::session::PlayId as MediaPlayId;
use crate::sip::AgentRefer;

/// The far legs a call may have besides the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Far {
    /// The agent phone the ACD offered the call to.
    Offer,
    /// The target of a dialplan `transfer` step.
    Transfer,
    /// The target the caller's side moves the call to by REFER: once it answers, it takes
    /// the caller's place. The core keeps it to itself; the flow never hears of it.
    Heir,
}

/// How a call ended, for the log and the `CallFinished` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A `hangup` step's outcome, as the dialplan names it.
    Dialplan(String),
    /// The caller's leg ended before an agent had the call.
    Ended(EndReason),
    /// The caller's leg ended while an agent had the call.
    EndedAfterAgent(EndReason),
    AgentHungUp,
    /// The agent's leg died: its RTP stopped, or its session timer ran out.
    AgentLost(EndReason),
    /// Handed to a transfer target, which answered.
    Transferred,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Dialplan(s) => f.write_str(s),
            Outcome::Ended(r) => f.write_str(r.as_str()),
            Outcome::EndedAfterAgent(r) => write!(f, "{}_after_agent", r.as_str()),
            Outcome::AgentHungUp => f.write_str("agent_hung_up"),
            Outcome::AgentLost(r) => write!(f, "agent_{}", r.as_str()),
            Outcome::Transferred => f.write_str("transferred"),
        }
    }
}

/// How long the target of a transfer an agent asked for may ring.
const AGENT_TRANSFER_RING: Duration = Duration::from_secs(30);

/// What the call tells the ACD about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdReport {
    OfferOutcome(OfferId, OfferOutcome),
    /// A connected call ended.
    CallEnded(HungUpBy),
    /// The call left its queue before an agent had it.
    CallerGone(HungUpBy),
}

/// What a call's flow may use, from the config.
#[derive(Debug, Clone, Copy)]
pub struct FlowRules {
    /// An ACD is configured: queue steps hand the call to it.
    pub has_acd: bool,
    /// How an agent's REFER is carried out (`[sip] agent_refer`).
    pub agent_refer: AgentRefer,
}

/// Who is calling and why, for the far leg's INVITE (the agent's screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DialContext {
    /// A REFER asked for this call (an agent's phone, or the caller's side): the trunks'
    /// credentials are not offered to it.
    pub referred: bool,
    /// An attended transfer: the dialog at the target our call replaces (RFC 3891).
    pub replaces: Option<String>,
    pub caller: String,
    /// The caller asked to withhold their identity.
    pub withheld: bool,
    pub original_called: Option<String>,
    pub redirect_reason: Option<String>,
    /// None for a transfer, which is not from a queue.
    pub queue: Option<String>,
    pub intent: Option<String>,
    pub language: String,
    pub transcript: Option<String>,
}

impl DialContext {
    /// The context the call's variables give, for `queue` (none for a transfer).
    #[cfg(test)]
    pub(super) fn for_tests() -> DialContext {
        DialContext::of(&dialplan::Vars::default(), None)
    }

    /// For the target a REFER from the caller's side moves the call to: the hotline calls
    /// it, as the number called, and offers it none of the trunks' credentials.
    pub(super) fn referral(info: &CallInfo, replaces: Option<String>) -> DialContext {
        DialContext {
            referred: true,
            replaces,
            caller: info.called.clone(),
            withheld: false,
            original_called: None,
            redirect_reason: None,
            queue: None,
            intent: None,
            language: String::new(),
            transcript: None,
        }
    }

    fn of(vars: &dialplan::Vars, queue: Option<String>) -> DialContext {
        DialContext {
            referred: false,
            replaces: None,
            caller: vars.caller.clone(),
            withheld: vars.withheld,
            original_called: vars.original_called.clone(),
            redirect_reason: vars.redirect_reason.clone(),
            queue,
            intent: vars.intent.clone(),
            language: vars.language.clone(),
            transcript: vars.transcript.clone(),
        }
    }
}

/// What the flow asks of the call's services: recognition, the ACD, announcement
/// rendering and the event log. The call core passes these on as they are.
#[derive(Debug, Clone)]
pub enum Service {
    /// Start recognising the caller; report with `handle_speech` (unavailable at once if no
    /// recognizer can be had).
    Listen {
        /// Names this recognition in its results.
        id: ListenId,
        /// The language, phrases and limits the dialplan step asks for.
        request: ListenRequest,
    },
    /// Drop that recognition (the step is over).
    StopListening(ListenId),
    /// Hand the call to the ACD; its instructions go to `handle_instruction`.
    Enqueue(EnqueueRequest),
    /// Tell the ACD.
    Acd(AcdReport),
    /// Render the queue announcement; report with `handle_announcement`.
    Announce {
        /// The caller's language.
        language: String,
        /// 1: next in line.
        position: u32,
        /// The estimated wait, when one can be made.
        wait: Option<Duration>,
    },
    /// Record in the event log.
    Event(EventKind),
}

/// Where a far leg goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DialTarget {
    /// A SIP URI: an agent, `transfer: sip:...`, an agent's REFER target.
    Uri(String),
    /// Back through the trunk the call came in on, at this URI (`transfer: trunk`): the
    /// leg is encrypted as the caller's is.
    CallersTrunk(String),
    /// `number` through these named trunks, in order (`transfer: trunk` with `trunks`).
    Trunks { number: String, trunks: Vec<String> },
}

/// What the call must do, in order.
#[derive(Debug, Clone)]

pub(super) enum FlowAction {
    /// Queue a clip on the caller's leg; report `LegEvent::PlayDone(id)` when it has played.
    /// `early`: as early media if the call is not answered yet (otherwise it is answered
    /// first).
    Play {
        id: MediaPlayId,
        clip: Arc<Clip>,
        early: bool,
    },
    /// Stop what plays to the caller (barge-in, an agent took the call).
    StopAudio,
    /// INVITE `target` as the far leg `far`, replacing any leg there; its events go to
    /// `handle_far`, a failure to place it to `handle_dial_failed`.
    Dial {
        far: Far,
        target: DialTarget,
        context: DialContext,
    },
    /// Drop a far leg: CANCEL while it rings, BYE once answered, nothing once over.
    DropFar(Far),
    /// Bridge the caller's media to a far leg, or take the bridge down.
    Bridge(Option<Far>),
    /// BYE to the caller.
    HangUpCaller,
    /// Ask the caller's trunk to take the call to this SIP URI (REFER); the outcome comes
    /// back as `LegEvent::Referred`.
    ReferCaller(String),
    /// Tell the agent's phone, which asked for a transfer by REFER, how it goes (a
    /// status: 180, 200, or the failure).
    NotifyReferrer(u16),
    /// The REFER to the caller's trunk is given up: later NOTIFYs change nothing.
    ForgetRefer,
    /// Ask a service.
    Service(Service),
}

impl FlowAction {
    /// The caller must be connected first: it hears, is heard, is queued or is
    /// transferred. An early prompt, stopping, hanging up and the event log do not.
    pub(super) fn needs_answer(&self) -> bool {
        !matches!(
            self,
            FlowAction::Play { early: true, .. }
                | FlowAction::StopAudio
                | FlowAction::HangUpCaller
                | FlowAction::ForgetRefer
                | FlowAction::NotifyReferrer(_)
                | FlowAction::DropFar(_)
                | FlowAction::Service(Service::Event(_) | Service::StopListening(_))
        )
    }
}

/// The call's place in a queue.
struct Queued {
    enqueue: Enqueue,
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

/// A transfer in progress.
struct Transfer {
    /// Until the far end answers: when it has rung too long.
    ring_until: Option<Instant>,
    kind: TransferKind,
}

/// Who asked for a transfer, and how it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferKind {
    /// The dialplan: the engine calls the target and bridges it.
    Bridge,
    /// The dialplan: the trunk takes the call by our REFER.
    Refer,
    /// The agent's phone, by REFER: the engine calls the target and bridges it.
    Agent,
    /// The agent's phone, by REFER passed on to the trunk (`agent_refer = "refer"`): the
    /// trunk takes the call by our REFER.
    AgentRefer,
}

impl Transfer {
    /// The target answered and the caller talks to it. A transfer passed on to the trunk
    /// never is: the flow is over once the trunk connected it.
    fn connected(&self) -> bool {
        self.ring_until.is_none() && self.kind != TransferKind::AgentRefer
    }
}

/// One call after the answer.
pub(super) struct Flow {
    flows: Arc<Flows>,
    interp: Interpreter,
    info: CallInfo,
    /// Where the call came from as a URI writes it after the `@` (`host:port`, and the
    /// transport parameter of a TCP or TLS connection), for transfers to a number through
    /// that trunk.
    trunk_address: String,
    rules: FlowRules,
    now: Instant,
    next_play: MediaPlayId,
    /// The interpreter's playback: its id and the media id of its last clip.
    playing: Option<(dialplan::PlayId, MediaPlayId)>,
    queued: Option<Queued>,
    offer: Option<OfferId>,
    transfer: Option<Transfer>,
    keys: String,
    outcome: Option<Outcome>,
    actions: VecDeque<FlowAction>,
}

impl Flow {
    /// Starts the dialplan `plan` (from `flows`) for a call that is answered, or about to be
    /// (a dialplan with early media runs from the INVITE).
    pub(super) fn new(
        now: Instant,
        wall: jiff::Timestamp,
        flows: Arc<Flows>,
        plan: Arc<dialplan::Dialplan>,
        info: CallInfo,
        trunk_address: String,
        rules: FlowRules,
    ) -> Flow {
        let mut core = Flow {
            interp: Interpreter::start(plan, info.clone(), now, wall),
            flows,
            info,
            trunk_address,
            rules,
            now,
            next_play: 0,
            playing: None,
            queued: None,
            offer: None,
            transfer: None,
            keys: String::new(),
            outcome: None,
            actions: VecDeque::new(),
        };
        core.pump();
        core
    }

    /// The next thing to do, in order.
    pub(super) fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let ring = self.transfer.as_ref().and_then(|t| t.ring_until);
        self.interp.poll_timeout().into_iter().chain(ring).min()
    }

    /// How the call ended, once it has: the task stops after the last action.
    pub(super) fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The keys the caller pressed, in order.
    pub(super) fn keys(&self) -> &str {
        &self.keys
    }

    /// The call is in a queue: the ACD's instructions matter.
    pub(super) fn is_queued(&self) -> bool {
        self.queued.is_some()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.interp.handle_timeout(now);
        if self
            .transfer
            .as_ref()
            .and_then(|t| t.ring_until)
            .is_some_and(|t| t <= now)
        {
            info!("the transfer target rang too long");
            self.on_transfer(FarEvent::Failed(408));
        }
        self.pump();
    }

    /// Something happened on the caller's leg.
    pub(super) fn handle_caller(&mut self, now: Instant, ev: LegEvent) {
        self.now = now;
        match ev {
            LegEvent::Dtmf(key) => {
                self.keys.push(key);
                self.interp.handle(now, Input::Digit(key));
            }
            LegEvent::PlayDone(media_id) => self.play_done(media_id),
            LegEvent::Ended(reason) => self.caller_gone(reason),
            LegEvent::Referred(result) => self.referred(result),
            // An agent whose transfer the trunk carries out hears it ring.
            LegEvent::ReferRinging(code) => {
                if self.agent_transferring() {
                    self.actions.push_back(FlowAction::NotifyReferrer(code));
                }
            }
            // The flow starts once the call is up; the core carries out a transfer the
            // caller's side asks for (its target takes the caller's place unseen).
            LegEvent::Up | LegEvent::Transfer(_) => {}
        }
        self.pump();
    }

    /// Recognition news for the interpreter's `Listen`.
    pub(super) fn handle_speech(&mut self, now: Instant, id: ListenId, speech: Speech) {
        self.now = now;
        self.interp.handle(now, Input::Speech(id, speech));
        self.pump();
    }

    /// The ACD's next instruction; `None` when it forgot the call without a `Leave` (it
    /// stopped): the flow goes on.
    pub(super) fn handle_instruction(&mut self, now: Instant, instruction: Option<Instruction>) {
        self.now = now;
        match instruction {
            Some(i) => self.on_instruction(i),
            None if self.queued.is_some() => self.left_queue(None),
            None => {}
        }
        self.pump();
    }

    /// Something happened on a far leg.
    pub(super) fn handle_far(&mut self, now: Instant, far: Far, ev: FarEvent) {
        self.now = now;
        match far {
            Far::Offer => self.on_offer(ev),
            Far::Transfer => self.on_transfer(ev),
            Far::Heir => {}
        }
        self.pump();
    }

    /// A `Dial` could not be placed (bad target, no media port).
    pub(super) fn handle_dial_failed(&mut self, now: Instant, far: Far) {
        self.now = now;
        match far {
            Far::Offer => {
                if let Some(offer) = self.offer.take() {
                    self.report(AcdReport::OfferOutcome(offer, OfferOutcome::Failed));
                }
            }
            Far::Transfer => {
                if self.transfer.take().is_some() {
                    self.interp.handle(now, Input::TransferFailed);
                }
            }
            Far::Heir => {}
        }
        self.pump();
    }

    /// An `Announce` is rendered: its audio, or `None` when it could not be.
    pub(super) fn handle_announcement(
        &mut self,
        now: Instant,
        position: u32,
        clip: Option<Arc<Clip>>,
    ) {
        self.now = now;
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
            self.actions.push_back(FlowAction::StopAudio);
            self.play_to_waiting(clip);
        } else if q.playing.is_none() {
            self.play_to_waiting(announce::comfort());
        }
    }

    /// Turns the interpreter's actions into the call's.
    fn pump(&mut self) {
        while let Some(action) = self.interp.poll_action() {
            match action {
                Action::Play {
                    id, prompts, early, ..
                } => self.play_prompts(id, &prompts, early),
                Action::StopPlayback(id) => {
                    if self.playing.is_some_and(|(p, _)| p == id) {
                        self.actions.push_back(FlowAction::StopAudio);
                        self.playing = None;
                    }
                }
                Action::Listen { id, request } => self
                    .actions
                    .push_back(FlowAction::Service(Service::Listen { id, request })),
                Action::StopListening(id) => self
                    .actions
                    .push_back(FlowAction::Service(Service::StopListening(id))),
                Action::Enqueue(e) => self.enqueue(e),
                Action::Transfer {
                    to,
                    method,
                    vars,
                    ring_timeout,
                } => self.start_transfer(to, method, &vars, ring_timeout),
                Action::Hangup { outcome } => {
                    self.actions.push_back(FlowAction::HangUpCaller);
                    self.finish(Outcome::Dialplan(outcome));
                }
                Action::Event(kind) => self
                    .actions
                    .push_back(FlowAction::Service(Service::Event(kind))),
            }
        }
    }

    fn play(&mut self, clip: Arc<Clip>, early: bool) -> MediaPlayId {
        self.next_play += 1;
        self.actions.push_back(FlowAction::Play {
            id: self.next_play,
            clip,
            early,
        });
        self.next_play
    }

    /// Plays the prompts that have audio; the media id of the last one played.
    fn play_clips(
        &mut self,
        prompts: &[dialplan::PromptToPlay],
        early: bool,
    ) -> Option<MediaPlayId> {
        let flows = self.flows.clone();
        let plan = self.interp.plan().clone();
        let plan = &plan.name;
        let mut last = None;
        for p in prompts {
            match flows.prompts.get(plan, &p.prompt, &p.language) {
                Some(clip) => last = Some(self.play(clip.clone(), early)),
                None => warn!(prompt = %p.prompt, language = %p.language, "no audio for a prompt"),
            }
        }
        last
    }

    fn play_prompts(
        &mut self,
        id: dialplan::PlayId,
        prompts: &[dialplan::PromptToPlay],
        early: bool,
    ) {
        let names: Vec<&str> = prompts.iter().map(|p| p.prompt.as_str()).collect();
        info!(step = %self.interp.step_name(), prompts = %names.join(","), "playing");
        match self.play_clips(prompts, early) {
            Some(media_id) => self.playing = Some((id, media_id)),
            // Nothing to hear: the prompt is over at once, so the flow never stalls.
            None => self.interp.handle(self.now, Input::PromptDone(id)),
        }
    }

    fn play_done(&mut self, media_id: MediaPlayId) {
        if let Some((id, last)) = self.playing
            && last == media_id
        {
            self.playing = None;
            self.interp.handle(self.now, Input::PromptDone(id));
        }
        let Some(q) = self.queued.as_mut() else {
            return;
        };
        if q.playing != Some(media_id) {
            return;
        }
        q.playing = None;
        q.entering = false;
        if q.connected {
            return;
        }
        let next = q.deferred.take().unwrap_or_else(announce::comfort);
        self.play_to_waiting(next);
    }

    /// Plays `clip` to the caller waiting in the queue, as what the queue plays now.
    fn play_to_waiting(&mut self, clip: Arc<Clip>) {
        let id = self.play(clip, false);
        if let Some(q) = self.queued.as_mut() {
            q.playing = Some(id);
        }
    }

    /// The caller's leg is over: tell the ACD and drop the far legs.
    fn caller_gone(&mut self, reason: EndReason) {
        let by = reason.hung_up_by();
        self.drop_offer();
        let transferred = match self.transfer.take() {
            Some(t) => {
                self.actions.push_back(FlowAction::DropFar(Far::Transfer));
                t.connected()
            }
            None => false,
        };
        if let Some(q) = self.queued.take() {
            if q.connected {
                self.report(AcdReport::CallEnded(by));
                self.outcome = Some(Outcome::EndedAfterAgent(reason));
                return;
            }
            self.report(AcdReport::CallerGone(by));
        }
        if transferred {
            // Its `CallFinished` went out when the target answered.
            self.outcome = Some(Outcome::Transferred);
            return;
        }
        self.finish(Outcome::Ended(reason));
    }

    /// Ends the call outside a connected agent call: logged as `CallFinished`.
    fn finish(&mut self, outcome: Outcome) {
        self.actions.push_back(FlowAction::Service(Service::Event(
            EventKind::CallFinished {
                call_id: self.info.call_id.clone(),
                outcome: outcome.to_string(),
            },
        )));
        self.outcome = Some(outcome);
    }

    /// The far side ended a bridged call: BYE to the caller.
    fn hang_up_caller(&mut self, outcome: Outcome) {
        self.actions.push_back(FlowAction::Bridge(None));
        self.actions.push_back(FlowAction::HangUpCaller);
        self.outcome = Some(outcome);
    }

    fn report(&mut self, report: AcdReport) {
        self.actions
            .push_back(FlowAction::Service(Service::Acd(report)));
    }

    fn drop_offer(&mut self) -> Option<OfferId> {
        let offer = self.offer.take()?;
        self.actions.push_back(FlowAction::DropFar(Far::Offer));
        Some(offer)
    }

    fn enqueue(&mut self, e: Enqueue) {
        if !self.rules.has_acd {
            warn!(queue = %e.queue, "no ACD configured: the queue gives the call back");
            return self
                .interp
                .handle(self.now, Input::QueueLeft { step: None });
        }
        info!(queue = %e.queue, language = %e.language, intent = ?e.intent, "queued");
        self.actions
            .push_back(FlowAction::Service(Service::Enqueue(EnqueueRequest {
                call_id: self.info.call_id.clone(),
                queue: e.queue.clone(),
                language: e.language.clone(),
                intent: e.intent.clone(),
                priority: e.priority,
                caller: self.info.caller.clone(),
            })));
        let playing = self.play_clips(&e.prompts, false);
        self.queued = Some(Queued {
            enqueue: e,
            connected: false,
            entering: playing.is_some(),
            playing,
            deferred: None,
        });
    }

    fn on_instruction(&mut self, instruction: Instruction) {
        debug!(?instruction, "ACD");
        let Some(q) = self.queued.as_mut() else {
            return;
        };
        match instruction {
            Instruction::Queued {
                position,
                estimated_wait,
                ..
            }
            | Instruction::Announce {
                position,
                estimated_wait,
            } => {
                let language = q.enqueue.language.clone();
                self.actions
                    .push_back(FlowAction::Service(Service::Announce {
                        language,
                        position,
                        wait: estimated_wait,
                    }));
            }
            Instruction::Offer { offer, target, .. } => {
                let context = DialContext {
                    intent: q.enqueue.intent.clone(),
                    language: q.enqueue.language.clone(),
                    ..DialContext::of(&q.enqueue.vars, Some(q.enqueue.queue.clone()))
                };
                let (Target::Registered(target) | Target::Trunk(target)) = target;
                self.drop_offer();
                self.offer = Some(offer);
                self.actions.push_back(FlowAction::Dial {
                    far: Far::Offer,
                    target: DialTarget::Uri(target),
                    context,
                });
            }
            Instruction::CancelOffer { offer } => {
                if self.offer == Some(offer) {
                    q.connected = false;
                    self.drop_offer();
                }
            }
            Instruction::Connected { offer, agent } => {
                if self.offer == Some(offer) {
                    q.playing = None;
                    q.connected = true;
                    self.actions.push_back(FlowAction::StopAudio);
                    self.actions.push_back(FlowAction::Bridge(Some(Far::Offer)));
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
        self.drop_offer();
        if let Some(q) = self.queued.take()
            && q.playing.is_some()
        {
            self.actions.push_back(FlowAction::StopAudio);
        }
        self.interp.handle(self.now, Input::QueueLeft { step });
    }

    fn on_offer(&mut self, ev: FarEvent) {
        let Some(offer) = self.offer else {
            return;
        };
        let connected = self.queued.as_ref().is_some_and(|q| q.connected);
        match ev {
            FarEvent::Ringing => {}
            FarEvent::Answered => {
                self.report(AcdReport::OfferOutcome(offer, OfferOutcome::Answered))
            }
            FarEvent::Failed(code) => {
                self.drop_offer();
                self.report(AcdReport::OfferOutcome(offer, offer_outcome(code)));
            }
            // One transfer at a time (a phone that wants no NOTIFYs is not told 491).
            FarEvent::Referred(target) if connected && !self.agent_transferring() => {
                self.agent_transfer(target)
            }
            FarEvent::Referred(_) => {}
            FarEvent::HungUp | FarEvent::Lost(_) if connected && self.agent_transferring() => {
                // The agent left after asking for the transfer: the caller waits for it.
                let by = if ev == FarEvent::HungUp {
                    HungUpBy::Agent
                } else {
                    HungUpBy::System
                };
                self.report(AcdReport::CallEnded(by));
                self.queued = None;
                self.drop_offer();
            }
            FarEvent::HungUp | FarEvent::Lost(_) if connected => {
                let (by, outcome) = match ev {
                    FarEvent::Lost(reason) => {
                        if reason == EndReason::MediaTimeout {
                            info!("agent media timeout: the agent's RTP stopped");
                        } else {
                            info!(reason = reason.as_str(), "the agent's leg is gone");
                        }
                        (HungUpBy::System, Outcome::AgentLost(reason))
                    }
                    _ => {
                        info!("the agent hung up");
                        (HungUpBy::Agent, Outcome::AgentHungUp)
                    }
                };
                self.report(AcdReport::CallEnded(by));
                self.queued = None;
                self.drop_offer();
                self.hang_up_caller(outcome);
            }
            FarEvent::HungUp | FarEvent::Lost(_) => {
                self.drop_offer();
                self.report(AcdReport::OfferOutcome(offer, OfferOutcome::Failed));
            }
        }
    }

    /// The agent's phone asked (REFER) for the caller to go to `target`: the engine calls
    /// it; the caller stays with the agent until it answers.
    fn agent_transfer(&mut self, target: Referral) {
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        info!(target = %target.uri, "the agent transfers the caller");
        if self.rules.agent_refer == AgentRefer::Refer {
            // The caller's trunk carries the transfer out; the agent keeps the caller
            // until it reports. No ringing time of ours: a REFER cannot be called back,
            // and the trunk may connect the caller however long it takes.
            self.transfer = Some(Transfer {
                ring_until: None,
                kind: TransferKind::AgentRefer,
            });
            self.actions
                .push_back(FlowAction::ReferCaller(target.refer_to()));
            return;
        }
        // Not with the trunks' credentials: a phone must not place calls through the
        // carrier on the hotline's account.
        let context = DialContext {
            referred: true,
            replaces: target.replaces,
            ..DialContext::of(&q.enqueue.vars, None)
        };
        self.transfer = Some(Transfer {
            ring_until: Some(self.now + AGENT_TRANSFER_RING),
            kind: TransferKind::Agent,
        });
        self.actions.push_back(FlowAction::Dial {
            far: Far::Transfer,
            target: DialTarget::Uri(target.uri),
            context,
        });
    }

    fn agent_transferring(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| matches!(t.kind, TransferKind::Agent | TransferKind::AgentRefer))
    }

    fn start_transfer(
        &mut self,
        to: TransferTo,
        method: TransferMethod,
        vars: &dialplan::Vars,
        ring: Duration,
    ) {
        let target = match to {
            TransferTo::Uri(uri) => DialTarget::Uri(uri),
            TransferTo::Trunk { number, trunks, .. } if trunks.is_empty() => {
                DialTarget::CallersTrunk(format!("sip:{number}@{}", self.trunk_address))
            }
            TransferTo::Trunk { number, trunks } => DialTarget::Trunks {
                number,
                trunks: trunks.into_iter().map(|(name, _)| name).collect(),
            },
        };
        info!(?target, ?method, "transferring");
        self.transfer = Some(Transfer {
            ring_until: Some(self.now + ring),
            kind: match method {
                TransferMethod::Bridge => TransferKind::Bridge,
                TransferMethod::Refer => TransferKind::Refer,
            },
        });
        match method {
            TransferMethod::Bridge => {
                let context = DialContext::of(vars, None);
                self.actions.push_back(FlowAction::Dial {
                    far: Far::Transfer,
                    target,
                    context,
                });
            }
            TransferMethod::Refer => {
                // The dialplan's check keeps `trunks` from `method: refer`: a REFER hands
                // the call to where it came from.
                let (DialTarget::Uri(uri) | DialTarget::CallersTrunk(uri)) = target else {
                    return self.on_transfer(FarEvent::Failed(500));
                };
                self.actions.push_back(FlowAction::StopAudio);
                self.actions.push_back(FlowAction::ReferCaller(uri));
            }
        }
    }

    /// The trunk's report on our REFER: it connected the caller (we leave the call), or
    /// the transfer failed (the dialplan's `failed` step).
    fn referred(&mut self, result: Result<(), u16>) {
        if self.transfer.is_none() {
            return;
        }
        match result {
            Ok(()) => {
                info!("the trunk took the call: leaving it");
                if self.agent_transferring() {
                    self.agent_done();
                }
                self.transfer = None;
                self.actions.push_back(FlowAction::HangUpCaller);
                self.finish(Outcome::Transferred);
            }
            Err(code) => self.on_transfer(FarEvent::Failed(code)),
        }
    }

    /// The agent's transfer connected the caller: the agent hears so, their part of the
    /// call is over, and their leg goes.
    fn agent_done(&mut self) {
        self.actions.push_back(FlowAction::NotifyReferrer(200));
        if self.queued.take().is_some_and(|q| q.connected) {
            self.report(AcdReport::CallEnded(HungUpBy::Agent));
        }
        self.drop_offer();
    }

    fn on_transfer(&mut self, ev: FarEvent) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        match ev {
            FarEvent::Ringing => {
                if t.kind == TransferKind::Agent {
                    self.actions.push_back(FlowAction::NotifyReferrer(180));
                }
            }
            FarEvent::Answered => {
                t.ring_until = None;
                if t.kind == TransferKind::Agent {
                    self.agent_done();
                }
                self.actions.push_back(FlowAction::StopAudio);
                self.actions
                    .push_back(FlowAction::Bridge(Some(Far::Transfer)));
                self.actions.push_back(FlowAction::Service(Service::Event(
                    EventKind::CallFinished {
                        call_id: self.info.call_id.clone(),
                        outcome: Outcome::Transferred.to_string(),
                    },
                )));
            }
            FarEvent::Failed(code) if !t.connected() => {
                info!(code, "transfer failed");
                let kind = t.kind;
                self.transfer = None;
                self.actions.push_back(FlowAction::DropFar(Far::Transfer));
                if matches!(kind, TransferKind::Refer | TransferKind::AgentRefer) {
                    // A NOTIFY that comes after we gave up must not end the call.
                    self.actions.push_back(FlowAction::ForgetRefer);
                }
                if !matches!(kind, TransferKind::Agent | TransferKind::AgentRefer) {
                    return self.interp.handle(self.now, Input::TransferFailed);
                }
                // The agent hears it failed and keeps the caller; if they left, the call ends.
                self.actions.push_back(FlowAction::NotifyReferrer(code));
                if self.offer.is_none() {
                    self.hang_up_caller(Outcome::AgentHungUp);
                }
            }
            FarEvent::Referred(_) => {}
            FarEvent::Failed(_) | FarEvent::HungUp | FarEvent::Lost(_) => {
                self.transfer = None;
                self.actions.push_back(FlowAction::DropFar(Far::Transfer));
                self.hang_up_caller(Outcome::Transferred);
            }
        }
    }
}

/// What an agent phone's final status means for the ACD: a refusal, a phone that was not
/// answered, or one that could not be reached.
pub(super) fn offer_outcome(code: u16) -> OfferOutcome {
    match code {
        486 | 480 | 600 | 603 => OfferOutcome::Rejected,
        408 | 487 => OfferOutcome::NoAnswer,
        _ => OfferOutcome::Failed,
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
