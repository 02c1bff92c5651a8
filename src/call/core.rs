//! The call core: one call, sans IO, from its INVITE to its last BYE. It composes the
//! caller's leg (`caller_leg`: the UAS dialog), the flow (`flow`: the dialplan, the queue,
//! offers and transfers) and the far legs (`far_leg`: the UAC dialogs of an agent's phone or
//! a transfer target), passes each one's news to the others, and tells the call task what to
//! do (`CallAction`): SIP to the endpoint, media operations, recognition, the ACD, events.
//! It owns the call's state; it must not touch a socket, a channel, the media or the
//! clock. The call task (`driver`) does, and passes `now` in.

#![warn(unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Flows;
use super::caller_leg::{Answering, CallerLeg, EndReason, LegEvent, LegOutput, MediaSetup};
use super::far_leg::{DialError, Dialled, FarEvent, FarLeg};
use super::flow::{DialContext, DialTarget, Far, Flow, FlowAction, FlowRules, Outcome, Service};
use super::incoming::Invite;
use super::placing::{self, Attempt, Failure, Placing, TrunkRoutes};
use super::referral::Referral;
use crate::acd::Instruction;
use crate::dialplan::{self, CallInfo, ListenId, Speech};
use crate::endpoint::CallEvent;
use crate::endpoint::core::Command;
use crate::events::EventKind;
use crate::media::clip::Clip;
use crate::media::sdp::Negotiated;
use crate::media::session::{PlayId, SessionEvent};
use crate::sip::headers;
use crate::sip::session_timer::TimerSettings;
use crate::sip::uri::host_port;

/// How long the target of a REFER from the caller's side may ring before the transfer is
/// given up (the caller's side hears 408 in its NOTIFY and keeps the call, if it stayed).
const HEIR_RING: Duration = Duration::from_secs(30);

/// A leg of the call, for media operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegRef {
    /// The caller's leg (the INVITE that made the call).
    Caller,
    /// The agent's or the transfer target's leg.
    Far(Far),
}

/// What to do with a leg's media.
#[derive(Debug, Clone)]
pub enum MediaOp {
    /// Start (or restart, with new parameters) its RTP.
    Start(Negotiated),
    /// Queue a clip; report `SessionEvent::PlayDone(id)` when it has played.
    Play {
        /// Names this playback in its `PlayDone`.
        id: PlayId,
        /// The audio, shared with every other call playing it.
        clip: Arc<Clip>,
    },
    /// Stop what plays.
    Stop,
    /// Bridge to a far leg's media, or take the bridge down.
    Bridge(Option<Far>),
}

/// What the call task must do, in order.
#[derive(Debug)]
pub enum CallAction {
    /// Hand this to the endpoint.
    Sip(Box<Command>),
    /// Do this with that leg's media.
    Media(LegRef, MediaOp),
    /// Find `target` and open media for the far leg `far` beside the caller's, route its
    /// Call-ID to this call, and report with `handle_dialled`.
    Dial {
        /// Which far leg this is.
        far: Far,
        /// A SIP URI.
        target: String,
        /// Offer SRTP (SDES) and take nothing less: a transfer back through a trunk whose
        /// calls are encrypted, or a target reached over TLS.
        srtp: bool,
        /// The named trunk it goes through, refused (`DialError::Down`) while probes find
        /// it down; `None` elsewhere, and for the last resort, dialled whatever they say.
        trunk: Option<String>,
    },
    /// The far leg is over: close its media and stop routing its Call-ID.
    Release(Far),
    /// Ask a service (recognition, the ACD, announcements, the event log).
    Service(Service),
}

/// What the flow starts with once the call is up.
pub struct FlowSetup {
    /// The dialplans and prompt audio in force when the call came in.
    pub flows: Arc<Flows>,
    /// The dialplan that took the call.
    pub plan: Arc<dialplan::Dialplan>,
    /// What the flow may use: an ACD, and how agents' transfers go.
    pub rules: FlowRules,
    /// The named trunks, for transfers through them.
    pub trunks: Arc<TrunkRoutes>,
    /// The wall clock when the call came in (the dialplan's hours are in wall time).
    pub wall: jiff::Timestamp,
}

/// One call, from its INVITE to its last BYE (see the module doc).
pub struct CallCore {
    info: CallInfo,
    caller: CallerLeg,
    /// Until the call is up.
    setup: Option<FlowSetup>,
    started: Instant,
    flow: Option<Flow>,
    offer: Option<FarLeg>,
    transfer: Option<FarLeg>,
    /// The target a REFER from the caller's side moves the call to (`Far::Heir`): placed
    /// on the caller's media, it takes the caller's place once it answers.
    heir: Option<FarLeg>,
    /// When the heir being placed is given up if it has not answered.
    heir_ring_until: Option<Instant>,
    /// The caller's side left while its heir was being placed (transferors hang up as
    /// soon as they handed the call on): the call ends so only if the heir never answers.
    caller_left: Option<EndReason>,
    /// The caller's RTP stopped while its heir was being placed: if the heir fails, the
    /// call is over.
    caller_media_lost: bool,
    /// Far legs being placed: where each goes now and next, until it rings or answers.
    placing: Vec<Placing>,
    /// The named trunks, for transfers through them.
    trunks: Arc<TrunkRoutes>,
    /// The session timers our far legs ask for (`[sip]`, as for the caller's leg).
    timers: TimerSettings,
    /// The flow's actions that need the caller connected, waiting for our 200's ACK (a
    /// flow that began with early media), in order.
    held: VecDeque<FlowAction>,
    now: Instant,
    actions: VecDeque<CallAction>,
}

impl CallCore {
    /// Answers `invite` (as `answering` says) with our media `media`; the flow `setup` starts
    /// when the ACK confirms the answer, or at once when its dialplan plays early media
    /// (the caller is then answered when the flow first needs it).
    pub fn new(
        now: Instant,
        invite: Invite,
        negotiated: Option<Negotiated>,
        media: MediaSetup,
        answering: Answering,
        setup: FlowSetup,
    ) -> CallCore {
        let info = CallInfo {
            call_id: invite.call_id.clone(),
            caller: invite.identity.caller.clone(),
            called: invite.called.clone(),
            trunk: invite.trunk.clone(),
            withheld: invite.identity.withheld,
            original_called: invite.identity.original_called.clone(),
            redirect_reason: invite.identity.redirect_reason.clone(),
        };
        let early = setup.plan.has_early_media();
        let timers = answering.timers;
        let trunks = setup.trunks.clone();
        let mut core = CallCore {
            info,
            caller: CallerLeg::answer(
                now,
                invite,
                negotiated,
                media,
                answering,
                early,
                trunks.clone(),
            ),
            setup: Some(setup),
            started: now,
            flow: None,
            offer: None,
            transfer: None,
            heir: None,
            heir_ring_until: None,
            caller_left: None,
            caller_media_lost: false,
            placing: Vec::new(),
            trunks,
            timers,
            held: VecDeque::new(),
            now,
            actions: VecDeque::new(),
        };
        info!(caller = %core.info.caller, called = %core.info.called,
            withheld = core.info.withheld, original_called = ?core.info.original_called, "ringing");
        if early {
            core.start_flow();
        }
        core.pump();
        core
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let flow = self.flow.as_ref().and_then(Flow::poll_timeout);
        let far = [&self.offer, &self.transfer, &self.heir]
            .into_iter()
            .filter_map(|l| l.as_ref().and_then(FarLeg::poll_timeout));
        let placing = self.placing.iter().filter_map(|p| p.answer_by);
        self.caller
            .poll_timeout()
            .into_iter()
            .chain(flow)
            .chain(far)
            .chain(placing)
            .chain(self.heir_ring_until)
            .min()
    }

    /// The call is over and its last message is answered: the task may stop once it has
    /// carried out the remaining actions.
    pub fn is_done(&self) -> bool {
        self.caller.is_ended()
            && self.heir.is_none()
            && self.flow.as_ref().is_none_or(|f| f.outcome().is_some())
    }

    /// How the call ended; `None` if it never got up (refused, cancelled, no ACK).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.flow.as_ref().and_then(Flow::outcome)
    }

    /// The keys the caller pressed, in order.
    pub fn keys(&self) -> &str {
        self.flow.as_ref().map_or("", Flow::keys)
    }

    /// The call waits in a queue: the ACD's instructions matter.
    pub fn is_queued(&self) -> bool {
        self.flow.as_ref().is_some_and(Flow::is_queued)
    }

    /// The caller's Call-ID, which the ACD and the events know the call by.
    pub fn call_id(&self) -> &str {
        &self.info.call_id
    }

    /// Time has come to `now`: the ringing time, the BYE's wait, the flow's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.caller.handle_timeout(now);
        for far in [Far::Offer, Far::Transfer, Far::Heir] {
            if let Some(leg) = self.far(far).as_mut() {
                leg.handle_timeout(now);
            }
            self.answer_deadline(far);
        }
        if self.heir_ring_until.is_some_and(|t| t <= now) {
            info!("the transfer's target did not answer in time");
            self.heir_failed(408);
        }
        if let Some(f) = self.flow.as_mut() {
            f.handle_timeout(now);
        }
        self.pump();
    }

    /// A far leg being placed whose INVITE got no answer at all by its deadline is passed
    /// over for the next place: CANCELled (as a transfer that rings too long is), so a
    /// trunk that wakes up late stops rather than ringing a phone nobody waits for.
    fn answer_deadline(&mut self, far: Far) {
        let now = self.now;
        let heard = match far {
            Far::Offer => self.offer.as_ref(),
            Far::Transfer => self.transfer.as_ref(),
            Far::Heir => self.heir.as_ref(),
        }
        .map(FarLeg::heard);
        let Some(p) = self
            .placing
            .iter_mut()
            .find(|p| p.far == far && p.answer_by.is_some_and(|t| t <= now))
        else {
            return;
        };
        match heard {
            // Still being looked up, or it answered something: it may take its time.
            None | Some(true) => p.answer_by = None,
            Some(false) => {
                if self.fail_over(far, Failure::Status(408))
                    && let Some(mut leg) = self.far(far).take()
                {
                    leg.hang_up();
                    self.drain_leg(&mut leg);
                    self.actions.push_back(CallAction::Release(far));
                    self.dial_current(far);
                }
            }
        }
    }

    /// A message from the endpoint for any leg of the call.
    pub fn handle_sip(&mut self, now: Instant, ev: CallEvent) {
        self.now = now;
        let call_id = match &ev {
            CallEvent::Request { request, .. } => headers::call_id(&request.headers),
            CallEvent::Response { response } => headers::call_id(&response.headers),
            CallEvent::Timeout { call_id, .. } => Some(call_id.as_str()),
            CallEvent::Cancelled { .. }
            | CallEvent::Ack { .. }
            | CallEvent::AckTimeout
            | CallEvent::Shutdown => None,
        };
        if matches!(ev, CallEvent::Shutdown)
            && (self.caller.is_handed_over() || self.heir_pending())
        {
            // The caller's leg, handed over or gone, no longer speaks for the call: the
            // flow hears of the end unless the heir's end told it already.
            let tell =
                (self.caller.is_handed_over() && self.heir.is_some()) || self.caller_left.is_some();
            self.caller_left = None;
            self.drop_heir();
            if tell {
                self.tell_flow(LegEvent::Ended(EndReason::Shutdown));
            }
        }
        let far = call_id.and_then(|id| {
            [Far::Offer, Far::Transfer, Far::Heir]
                .into_iter()
                .find(|f| self.far(*f).as_ref().is_some_and(|l| l.call_id == id))
        });
        let foreign = call_id.is_some_and(|id| id != self.info.call_id);
        match far.and_then(|f| self.far(f).as_mut()) {
            Some(leg) => leg.handle_sip(now, ev),
            // A released far leg's late answer or timeout: its CSeqs mean nothing in the
            // caller's dialog.
            None if foreign
                && matches!(ev, CallEvent::Response { .. } | CallEvent::Timeout { .. }) => {}
            // The caller's leg answers what matches none of the call's dialogs (481).
            None => self.caller.handle_sip(now, ev),
        }
        self.pump();
    }

    /// News from a leg's media.
    pub fn handle_media(&mut self, now: Instant, leg: LegRef, ev: SessionEvent) {
        self.now = now;
        match (leg, ev) {
            (LegRef::Caller, SessionEvent::Dtmf(key)) => {
                info!(%key, "DTMF");
                self.tell_flow(LegEvent::Dtmf(key));
            }
            (LegRef::Caller, SessionEvent::PlayDone(id)) => self.tell_flow(LegEvent::PlayDone(id)),
            // Handed over, the caller's media is the heir's; while the heir is placed, the
            // caller's side may well have stopped sending (a transferor holds, or leaves).
            (LegRef::Caller, SessionEvent::Timeout) if self.caller.is_handed_over() => {
                if let Some(heir) = self.heir.as_mut() {
                    heir.handle_media_timeout();
                }
            }
            (LegRef::Caller, SessionEvent::Timeout) if self.heir_pending() => {
                self.caller_media_lost = true;
            }
            (LegRef::Caller, SessionEvent::Timeout) => self.caller.handle_media_timeout(now),
            (LegRef::Far(f), SessionEvent::Timeout) => {
                if let Some(leg) = self.far(f).as_mut() {
                    leg.handle_media_timeout();
                }
            }
            (LegRef::Far(_), _) => {}
        }
        self.pump();
    }

    /// The edge found (or could not find) what a `Dial` needs.
    pub fn handle_dialled(&mut self, now: Instant, far: Far, dialled: Result<Dialled, DialError>) {
        self.now = now;
        let Some(i) = self
            .placing
            .iter()
            .position(|p| p.far == far && p.resolving)
        else {
            // Dropped meanwhile: what was opened for it goes.
            if dialled.is_ok() {
                self.actions.push_back(CallAction::Release(far));
            }
            return;
        };
        let p = &mut self.placing[i];
        p.resolving = false;
        let (target, context) = (&p.current().uri, &p.context);
        let placed = dialled.and_then(|mut d| {
            if context.referred {
                d.credentials = None;
            }
            FarLeg::dial(d, target, context, self.timers, far == Far::Offer)
        });
        match placed {
            Ok(leg) => {
                // The deadline to answer runs from the INVITE, not from the lookup.
                self.placing[i].dialling(now);
                *self.far(far) = Some(leg);
            }
            Err(e) => {
                warn!(error = %e, %target, ?far, "cannot place the call");
                self.actions.push_back(CallAction::Release(far));
                let failure = match e {
                    DialError::Down(_) => Failure::Down,
                    _ => Failure::Unplaced,
                };
                if self.fail_over(far, failure) {
                    self.dial_current(far);
                } else {
                    self.placing.retain(|p| p.far != far);
                    match (far, self.flow.as_mut()) {
                        (Far::Heir, _) => self.heir_failed(503),
                        (_, Some(f)) => f.handle_dial_failed(now, far),
                        (_, None) => {}
                    }
                }
            }
        }
        self.pump();
    }

    /// News from the recognition `id`.
    pub fn handle_speech(&mut self, now: Instant, id: ListenId, speech: Speech) {
        self.now = now;
        if let Some(f) = self.flow.as_mut() {
            f.handle_speech(now, id, speech);
        }
        self.pump();
    }

    /// The ACD's next instruction; `None` when its channel closed.
    pub fn handle_instruction(&mut self, now: Instant, instruction: Option<Instruction>) {
        self.now = now;
        if let Some(f) = self.flow.as_mut() {
            f.handle_instruction(now, instruction);
        }
        self.pump();
    }

    /// An `Announce` is rendered (`None`: it could not be).
    pub fn handle_announcement(&mut self, now: Instant, position: u32, clip: Option<Arc<Clip>>) {
        self.now = now;
        if let Some(f) = self.flow.as_mut() {
            f.handle_announcement(now, position, clip);
        }
        self.pump();
    }

    fn far(&mut self, far: Far) -> &mut Option<FarLeg> {
        match far {
            Far::Offer => &mut self.offer,
            Far::Transfer => &mut self.transfer,
            Far::Heir => &mut self.heir,
        }
    }

    fn tell_flow(&mut self, ev: LegEvent) {
        if let Some(f) = self.flow.as_mut() {
            f.handle_caller(self.now, ev);
        }
    }

    /// Passes each part's output to the others until none has anything more to say.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            while let Some(out) = self.caller.poll_output() {
                busy = true;
                match out {
                    LegOutput::Sip(c) => self.actions.push_back(CallAction::Sip(c)),
                    LegOutput::StartMedia(n) => self
                        .actions
                        .push_back(CallAction::Media(LegRef::Caller, MediaOp::Start(n))),
                    LegOutput::Event(LegEvent::Up) => self.start_flow(),
                    LegOutput::Event(LegEvent::Transfer(target)) => self.place_heir(target),
                    LegOutput::Event(LegEvent::Ended(reason)) if self.heir_pending() => {
                        info!(
                            reason = reason.as_str(),
                            "the caller's side left the call to its transfer"
                        );
                        self.caller_left = Some(reason);
                    }
                    LegOutput::Event(ev) => self.tell_flow(ev),
                }
                if !self.caller.awaits_answer() {
                    // Up: the flow goes on. Ended first (a CANCEL, no ACK): only what
                    // needs no caller is done (events, letting go of what was asked).
                    let up = self.caller.is_up();
                    while let Some(action) = self.held.pop_front() {
                        if up || !action.needs_answer() {
                            self.flow_action(action);
                        }
                    }
                }
            }
            for far in [Far::Offer, Far::Transfer, Far::Heir] {
                // The heir is heard and spoken to on the caller's media.
                let leg = match far {
                    Far::Heir => LegRef::Caller,
                    _ => LegRef::Far(far),
                };
                while let Some(out) = self.far(far).as_mut().and_then(FarLeg::poll_output) {
                    busy = true;
                    match out {
                        LegOutput::Sip(c) => self.actions.push_back(CallAction::Sip(c)),
                        LegOutput::StartMedia(n) => self
                            .actions
                            .push_back(CallAction::Media(leg, MediaOp::Start(n))),
                        LegOutput::Event(ev) => self.far_event(far, ev),
                    }
                }
            }
            while let Some(action) = self.flow.as_mut().and_then(Flow::poll_action) {
                busy = true;
                self.flow_action(action);
            }
            if !busy {
                return;
            }
        }
    }

    fn far_event(&mut self, far: Far, ev: FarEvent) {
        match ev {
            FarEvent::Failed(code) => {
                // One that rang or answered took the call, whatever failed after.
                let reached = self.far(far).as_ref().is_some_and(FarLeg::reached);
                if !reached && self.fail_over(far, Failure::Status(code)) {
                    if let Some(mut leg) = self.far(far).take() {
                        self.drain_leg(&mut leg);
                    }
                    self.actions.push_back(CallAction::Release(far));
                    return self.dial_current(far);
                }
                self.placing.retain(|p| p.far != far);
            }
            FarEvent::Ringing | FarEvent::Answered => self.placing.retain(|p| p.far != far),
            FarEvent::HungUp | FarEvent::Lost(_) | FarEvent::Referred(_) => {}
        }
        if far == Far::Heir {
            return self.heir_event(ev);
        }
        if let Some(f) = self.flow.as_mut() {
            f.handle_far(self.now, far, ev);
        }
    }

    /// The ACK is in: the call is offered and its dialplan starts.
    fn start_flow(&mut self) {
        let Some(setup) = self.setup.take() else {
            return;
        };
        self.actions.push_back(CallAction::Service(Service::Event(
            EventKind::CallOffered {
                call_id: self.info.call_id.clone(),
                caller: self.info.caller.clone(),
                called: self.info.called.clone(),
            },
        )));
        let elapsed = self.now.saturating_duration_since(self.started);
        let wall = setup.wall.checked_add(elapsed).unwrap_or(setup.wall);
        self.flow = Some(Flow::new(
            self.now,
            wall,
            setup.flows,
            setup.plan,
            self.info.clone(),
            {
                let source = self.caller.source();
                format!("{}{}", host_port(source.addr), source.transport.uri_param())
            },
            setup.rules,
        ));
    }

    fn flow_action(&mut self, action: FlowAction) {
        let early_play = matches!(action, FlowAction::Play { early: true, .. });
        if self.caller.awaits_answer()
            && (action.needs_answer()
                || !self.held.is_empty()
                || (early_play && !self.caller.can_play_early()))
        {
            self.caller.answer_now(self.now);
            self.held.push_back(action);
            return;
        }
        let media = |op| CallAction::Media(LegRef::Caller, op);
        let action = match action {
            FlowAction::Play { id, clip, early } => {
                if early {
                    self.caller.progress(self.now);
                }
                media(MediaOp::Play { id, clip })
            }
            FlowAction::StopAudio => media(MediaOp::Stop),
            FlowAction::Bridge(far) => media(MediaOp::Bridge(far)),
            FlowAction::HangUpCaller => {
                self.drop_heir();
                return self.caller.hang_up(self.now);
            }
            // The caller's trunk is no longer in the call, or is moving it elsewhere itself:
            // not ours to REFER.
            FlowAction::ReferCaller(_) if self.caller.is_handed_over() || self.heir_pending() => {
                return self.tell_flow(LegEvent::Referred(Err(491)));
            }
            FlowAction::ReferCaller(target) => return self.caller.refer(&target),
            FlowAction::ForgetRefer => return self.caller.forget_refer(),
            FlowAction::NotifyReferrer(code) => {
                if let Some(leg) = self.offer.as_mut() {
                    leg.notify_referral(code);
                }
                return;
            }
            FlowAction::Dial {
                far,
                target,
                context,
            } => {
                self.drop_far(far);
                let attempts = placing::attempts(target, &self.trunks, self.caller.requires_srtp());
                match Placing::new(far, context, attempts, self.trunks.no_answer) {
                    Some(p) => {
                        self.placing.push(p);
                        return self.dial_current(far);
                    }
                    None => {
                        warn!(?far, "no trunk to send the call through");
                        if let Some(f) = self.flow.as_mut() {
                            f.handle_dial_failed(self.now, far);
                        }
                        return;
                    }
                }
            }
            FlowAction::DropFar(far) => return self.drop_far(far),
            FlowAction::Service(service) => CallAction::Service(service),
        };
        self.actions.push_back(action);
    }

    /// The caller's side asks for the call to go to `target` (REFER): the heir is placed on
    /// the caller's media, as the number called, through no trunk's credentials.
    fn place_heir(&mut self, target: Referral) {
        let attempts = placing::attempts(DialTarget::Uri(target.uri), &self.trunks, false);
        let context = DialContext::referral(&self.info, target.replaces);
        let Some(p) = Placing::new(Far::Heir, context, attempts, self.trunks.no_answer) else {
            return self.caller.notify_transfer(500);
        };
        self.placing.push(p);
        self.heir_ring_until = Some(self.now + HEIR_RING);
        self.dial_current(Far::Heir);
    }

    /// A transfer asked by the caller's side is under way, not yet answered.
    fn heir_pending(&self) -> bool {
        !self.caller.is_handed_over()
            && (self.heir.is_some() || self.placing.iter().any(|p| p.far == Far::Heir))
    }

    /// News of the heir. Answered: it takes the caller's place (the caller's side hears
    /// 200 and its leg goes). Failed: the caller's side hears why and keeps the call, or,
    /// if it left meanwhile, the call ends as it left. Gone after answering: the call
    /// ends as it would have with the caller hanging up.
    fn heir_event(&mut self, ev: FarEvent) {
        match ev {
            FarEvent::Ringing => self.caller.notify_transfer(180),
            FarEvent::Answered => {
                self.heir_ring_until = None;
                self.caller_left = None;
                self.caller_media_lost = false;
                self.caller.notify_transfer(200);
                self.caller.hand_over(self.now);
                let target = self.heir.as_ref().map(FarLeg::target).unwrap_or_default();
                info!(%target, "the transfer's target answered: the call is theirs");
                self.actions.push_back(CallAction::Service(Service::Event(
                    EventKind::CallReferred {
                        call_id: self.info.call_id.clone(),
                        target,
                    },
                )));
            }
            FarEvent::Failed(code) if !self.caller.is_handed_over() => self.heir_failed(code),
            FarEvent::Failed(_) | FarEvent::HungUp => self.heir_gone(EndReason::CallerHungUp),
            FarEvent::Lost(reason) => self.heir_gone(reason),
            FarEvent::Referred(_) => {}
        }
    }

    /// The heir could not be reached (`code`): it goes, and the caller's side hears so.
    fn heir_failed(&mut self, code: u16) {
        info!(code, "the transfer asked by the caller's side failed");
        self.drop_heir();
        self.caller.notify_transfer(code);
        if let Some(reason) = self.caller_left.take() {
            self.tell_flow(LegEvent::Ended(reason));
        } else if std::mem::take(&mut self.caller_media_lost) {
            self.caller.handle_media_timeout(self.now);
        }
    }

    /// The heir, which held the caller's place, left: the call ends.
    fn heir_gone(&mut self, reason: EndReason) {
        self.drop_heir();
        self.tell_flow(LegEvent::Ended(reason));
    }

    /// Ends the heir, if any (CANCEL or BYE as its state asks), and stops waiting for it.
    fn drop_heir(&mut self) {
        self.heir_ring_until = None;
        self.drop_far(Far::Heir);
    }

    /// Ends a far leg (CANCEL or BYE as its state asks) and releases it.
    fn drop_far(&mut self, far: Far) {
        self.placing.retain(|p| p.far != far);
        if let Some(mut leg) = self.far(far).take() {
            leg.hang_up();
            self.drain_leg(&mut leg);
            self.actions.push_back(CallAction::Release(far));
        }
    }

    /// Sends what a far leg we let go of still has to say.
    fn drain_leg(&mut self, leg: &mut FarLeg) {
        while let Some(out) = leg.poll_output() {
            if let LegOutput::Sip(c) = out {
                self.actions.push_back(CallAction::Sip(c));
            }
        }
    }

    /// Whether the far leg being placed moves on to its next place after this failure.
    fn fail_over(&mut self, far: Far, failure: Failure) -> bool {
        let Some(p) = self.placing.iter_mut().find(|p| p.far == far) else {
            return false;
        };
        let failed = p.current().trunk.clone();
        let Some(next) = p.fail_over(failure) else {
            return false;
        };
        info!(?failed, ?failure, next = ?next.trunk, last_resort = next.forced,
            "the trunk cannot take the call: trying the next");
        true
    }

    /// Asks the edge for the address and media of where the far leg being placed goes now.
    fn dial_current(&mut self, far: Far) {
        let Some(p) = self.placing.iter().find(|p| p.far == far) else {
            return;
        };
        let Attempt {
            uri,
            srtp,
            trunk,
            forced,
        } = p.current().clone();
        self.actions.push_back(CallAction::Dial {
            far,
            target: uri,
            srtp,
            trunk: trunk.filter(|_| !forced),
        });
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
