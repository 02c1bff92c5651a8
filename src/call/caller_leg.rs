//! The caller's leg (the B2BUA's UAS side), sans IO: it answers the INVITE (180, sent
//! reliably and resent until its PRACK when the caller requires 100rel, RFC 3262; the 200
//! with our SDP after the ringing time, waiting for the ACK; or, when the dialplan plays
//! early media, 183 with our SDP, reliable when the caller supports 100rel, the 200 only
//! when the flow needs the caller, and 480 if it hangs up first), keeps the dialog (re-INVITE
//! and UPDATE for hold, resume and session refreshes, RFC 3311; OPTIONS and INFO inside
//! it; BYE either way), keeps its session timer (RFC 4028: refreshing by UPDATE or
//! re-INVITE when we are the refresher, BYE when the caller's side misses its refresh)
//! and decides what the media does. It owns the dialog, the offer/answer state and the
//! session timer; it must not touch the media, the endpoint or the clock: it says what to
//! send (`LegOutput`) and is given `now`.

#![warn(unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};
use tracing::{debug, info, warn};

use super::incoming::{HundredRel, Invite, Refusal, warning};
use super::placing::TrunkRoutes;
use super::sent_sdp::SentSdp;
use super::session_refresh::{RefreshAnswer, SessionRefresh};
use crate::endpoint::CallEvent;
use crate::endpoint::core::Command;
use crate::events::HungUpBy;
use crate::media::codec::Codec;
use crate::media::sdp::{
    Direction, Encryption, LocalMedia, Negotiated, Reach, RemoteMedia, Security,
};
use crate::media::session::PlayId;
use crate::media::srtp::Suite;
use crate::sip::dialog::Dialog;
use crate::sip::session_timer::{Due, TimerSettings};
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::uri::host_port;
use crate::sip::{build, headers};

/// RFC 4733 payload type we offer when the peer made no offer.
pub(super) const DTMF_PT: u8 = 101;
/// How long we wait for the answer to our BYE (64 x T1: its transaction's own limit).
const BYE_WAIT: Duration = Duration::from_secs(32);

/// What happened on the caller's leg, for the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LegEvent {
    /// The ACK confirmed our 200: the call is up.
    Up,
    Dtmf(char),
    PlayDone(PlayId),
    /// The trunk's outcome of our REFER: it connected the caller elsewhere, or the status
    /// that failed it (RFC 3515: the REFER's own, or the NOTIFY's sipfrag).
    Referred(Result<(), u16>),
    /// The trunk's call for our REFER rings (its NOTIFY's 180 or 183).
    ReferRinging(u16),
    /// The caller's side asks for the call to be moved to this SIP URI (a transfer by
    /// REFER, blind or attended): the call places it, and reports with `notify_transfer`.
    Transfer(super::referral::Referral),
    /// The call is over: the caller hung up, or the media or the ACK timed out.
    Ended(EndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    MediaTimeout,
    NoAck,
    /// The session timer ran out: the caller's side stopped refreshing, or our refresh
    /// found the dialog gone (RFC 4028 10).
    SessionExpired,
    /// The endpoint is shutting down.
    Shutdown,
}

impl EndReason {
    /// As outcomes name it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::NoAck => "no_ack",
            EndReason::SessionExpired => "session_expired",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// Who ended the call, for the figures: only a hang-up is the caller's.
    pub fn hung_up_by(self) -> HungUpBy {
        match self {
            EndReason::CallerHungUp => HungUpBy::Caller,
            _ => HungUpBy::System,
        }
    }
}

/// What a leg core asks of its driver, in order. `E` is the leg's event type.
#[derive(Debug)]
pub(super) enum LegOutput<E> {
    /// Hand this to the endpoint.
    Sip(Box<Command>),
    /// Start (or restart, with new parameters) the leg's RTP.
    StartMedia(Negotiated),
    Event(E),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// 180 sent; the 200 goes at `answer_at`.
    Ringing {
        answer_at: Instant,
    },
    /// The flow runs before the answer (its dialplan has early media): nothing sent yet,
    /// or the 183 with our SDP. The 200 goes when the flow asks (`answer_now`), after the
    /// 183's PRACK if it was reliable (`answer_asked` waits for it).
    Early {
        answer_asked: bool,
    },
    /// 200 sent; waiting for its ACK (RFC 3261 15: no BYE and no flow before it).
    Answered,
    Up,
    /// Our BYE is out; its answer is awaited until `until`.
    Leaving {
        until: Instant,
    },
    Ended,
}

/// How the caller's leg answers, from `[sip]`.
#[derive(Debug, Clone, Copy)]
pub struct Answering {
    /// How long the caller hears ringing before the 200.
    pub ring: Duration,
    /// RFC 3261 T1: the first interval of a reliable provisional response's resending.
    pub t1: Duration,
    /// The session timers we ask for and accept.
    pub timers: TimerSettings,
    /// A REFER from the caller's side is taken (`[sip] accept_refer`): the call moves to
    /// its target, who takes the caller's place.
    pub takes_refer: bool,
}

/// A reliable provisional response (RFC 3262) and its resending until its PRACK.
#[derive(Debug, Clone)]
struct Reliable {
    rseq: u32,
    response: Response,
    /// `None` once a final response went: the PRACK is still answered, nothing is resent.
    resend_at: Option<Instant>,
    interval: Duration,
    give_up_at: Instant,
}

/// The SDP we describe our side with.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// Our RTP port.
    pub port: u16,
    /// The codecs we offer or accept, best first.
    pub codecs: Vec<Codec>,
    /// Where the call's audio may go.
    pub reach: Reach,
    /// The SDP origin's session id (random per call).
    pub session_id: u64,
    /// Whether the media may or must be SRTP, and our master key for it.
    pub security: Security,
}

pub(super) struct CallerLeg {
    dialog: Dialog,
    invite: Request,
    invite_tx: ServerTxId,
    /// Where the INVITE came from.
    source: Peer,
    offer: Option<RemoteMedia>,
    local: SocketAddr,
    media: MediaSetup,
    answering: Answering,
    hundred_rel: HundredRel,
    /// The reliable provisional awaiting its PRACK.
    reliable: Option<Reliable>,
    /// The session timer agreed (it runs from our 200) and our refreshes; the caller's
    /// side takes UPDATE (its INVITE's Allow) or not.
    session: SessionRefresh,
    /// The CSeq of our REFER while its outcome is awaited.
    refer: Option<u32>,
    /// The trunk accepted our REFER (2xx): it is carrying the transfer out.
    refer_accepted: bool,
    /// The caller's side REFERred the call elsewhere and we took it: the transfer is under
    /// way until its final status (`notify_transfer`).
    transferring: bool,
    /// The named trunks: besides the host the call came from, where a REFER from the
    /// caller's side may send the call.
    trunks: Arc<TrunkRoutes>,
    /// The REFER whose transfer the caller's side wants to hear of (NOTIFYs naming its
    /// CSeq); `None` when it said `Refer-Sub: false` (RFC 4488).
    refer_sub: Option<u32>,
    /// The CSeq of the NOTIFY with the transfer's final status, until it is answered.
    final_notify: Option<u32>,
    /// The call moved to the REFER's target: this leg leaves (BYE) once its final NOTIFY
    /// is answered, and tells the flow nothing more.
    handed_over: bool,
    /// The SDP we last sent: an answer that describes the same session keeps its version
    /// (RFC 3264 8).
    sent: SentSdp,
    dtmf_pt: Option<u8>,
    /// The suite the media is encrypted with, once it is SRTP.
    srtp: Option<Suite>,
    /// The media as last started: offer/answer is done and RTP flows (`None` until the
    /// ACK of a late offer).
    started: Option<Negotiated>,
    /// The flow began before the answer (early media): the media timeout, which may have
    /// run out while the caller sent nothing, is re-armed when the call is up.
    began_early: bool,
    /// The direction our answer to the INVITE's offer states.
    answer_direction: Direction,
    state: State,
    out: VecDeque<LegOutput<LegEvent>>,
}

/// Negotiates the caller's offer with what we have: the media to start at once, or the 488
/// that refuses it. `None` for a late offer.
pub(super) fn negotiate(
    invite: &Invite,
    codecs: &[Codec],
    reach: &Reach,
    security: &Security,
) -> Result<Option<Negotiated>, Refusal> {
    invite
        .offer
        .as_ref()
        .map(|r| r.negotiate(codecs, reach, security))
        .transpose()
        .map_err(|e| Refusal::because(488, e.to_string()))
}

impl CallerLeg {
    /// Takes the call: 180 now, the 200 after the ringing time; or, `early`, neither until
    /// the flow asks (`progress`, `answer_now`). `negotiated` is what `negotiate` made of
    /// the offer.
    pub(super) fn answer(
        now: Instant,
        invite: Invite,
        negotiated: Option<Negotiated>,
        mut media: MediaSetup,
        answering: Answering,
        early: bool,
        trunks: Arc<TrunkRoutes>,
    ) -> CallerLeg {
        let dtmf_pt = match &invite.offer {
            Some(r) => r.dtmf_pt,
            None => Some(DTMF_PT),
        };
        if let Some(n) = negotiated {
            media.codecs = vec![n.codec];
        }
        let peer_allows_update =
            headers::lists_tag(&invite.request.headers, headers::pick_allow, "UPDATE");
        let mut leg = CallerLeg {
            dialog: invite.dialog,
            invite: invite.request,
            invite_tx: invite.tx,
            source: invite.peer,
            offer: invite.offer,
            local: invite.local,
            media,
            answering,
            hundred_rel: invite.hundred_rel,
            reliable: None,
            session: SessionRefresh::new(
                answering.timers,
                invite.session,
                peer_allows_update,
                crate::sip::allow_header(answering.takes_refer),
            ),
            refer: None,
            refer_accepted: false,
            transferring: false,
            refer_sub: None,
            trunks,
            final_notify: None,
            handed_over: false,
            sent: SentSdp::new(),
            dtmf_pt,
            srtp: None,
            started: None,
            began_early: early,
            answer_direction: negotiated.map_or(Direction::SendRecv, |n| n.direction),
            state: if early {
                State::Early {
                    answer_asked: false,
                }
            } else {
                State::Ringing {
                    answer_at: now + answering.ring,
                }
            },
            out: VecDeque::new(),
        };
        if let Some(n) = negotiated {
            note_redirect(&n);
            leg.note_srtp(&n);
            leg.start_media(n);
        }
        if !early {
            leg.ring(now);
            leg.handle_timeout(now);
        }
        leg
    }

    /// The 180: reliable when the caller requires it (RFC 3262 3). A 180 without SDP needs
    /// no PRACK before the 200, so a caller that only supports 100rel gets a plain one. A
    /// late offer that requires 100rel gets no 180: a reliable one would have to carry our
    /// offer (RFC 3262 5), which goes in the 200 instead.
    fn ring(&mut self, now: Instant) {
        if self.hundred_rel == HundredRel::Required && self.offer.is_none() {
            return;
        }
        let mut ringing = self.response(&self.invite, 180, None);
        if self.hundred_rel == HundredRel::Required {
            self.make_reliable(now, &mut ringing);
        }
        self.send_response(self.invite_tx, ringing);
    }

    /// Early media: 183 with our answer, once, before the flow's first early prompt.
    /// Reliable when the caller supports 100rel (RFC 3262: an answer in a provisional
    /// response should not be lost). A late offer has no answer to give early
    /// (`can_play_early`): its prompts wait for the answer.
    pub(super) fn progress(&mut self, now: Instant) {
        if !matches!(self.state, State::Early { .. }) || self.sent.last().is_some() {
            return;
        }
        let Some(offer) = self.offer.clone() else {
            return;
        };
        let sdp = self.local_sdp(Some(&offer), self.answer_direction);
        let mut progress = self.response(&self.invite, 183, Some(sdp));
        if self.hundred_rel != HundredRel::No {
            self.make_reliable(now, &mut progress);
        }
        self.send_response(self.invite_tx, progress);
        info!("early media");
    }

    /// The flow needs the caller (keys, speech, a queue, a prompt that is not early).
    /// Without early media so far, the call rings (180 and the ringing time, as any call)
    /// and is answered; after a 183 the 200 goes now, or once the reliable 183 is PRACKed
    /// (RFC 3262 3: no 2xx before an answer in a reliable provisional response is
    /// acknowledged).
    pub(super) fn answer_now(&mut self, now: Instant) {
        if !matches!(self.state, State::Early { .. }) {
            return;
        }
        if self.sent.last().is_none() {
            self.state = State::Ringing {
                answer_at: now + self.answering.ring,
            };
            self.ring(now);
            return self.handle_timeout(now);
        }
        if self.reliable.is_some() {
            self.state = State::Early { answer_asked: true };
        } else {
            self.send_answer(now);
        }
    }

    /// Makes `response` reliable (Require: 100rel, RSeq) and resends it until its PRACK.
    fn make_reliable(&mut self, now: Instant, response: &mut Response) {
        // RFC 3262 3: the first RSeq is random, below 2**31 (only one is ever sent).
        let rseq = rand::random::<u32>() >> 2;
        let h = &mut response.headers;
        h.push(Header::Require("100rel".into()));
        h.push(Header::Other("RSeq".into(), rseq.to_string()));
        self.reliable = Some(Reliable {
            rseq,
            response: response.clone(),
            resend_at: Some(now + self.answering.t1),
            interval: self.answering.t1,
            give_up_at: now + 64 * self.answering.t1,
        });
    }

    /// The 200 with our SDP; the session timer runs from it.
    fn send_answer(&mut self, now: Instant) {
        let offer = self.offer.clone();
        let sdp = self.local_sdp(offer.as_ref(), self.answer_direction);
        let mut ok = self.response(&self.invite, 200, Some(sdp));
        ok.headers.extend(self.session.response_headers());
        self.send_response(self.invite_tx, ok);
        // A final response ends the resending of provisional ones (RFC 3262 3).
        if let Some(r) = self.reliable.as_mut() {
            r.resend_at = None;
        }
        self.session.start(now);
        self.state = State::Answered;
        info!("answered");
    }

    pub(super) fn poll_output(&mut self) -> Option<LegOutput<LegEvent>> {
        self.out.pop_front()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Ringing { answer_at } => Some(answer_at),
            State::Leaving { until } => Some(until),
            _ => None,
        };
        let resend = self.reliable.as_ref().and_then(|r| r.resend_at);
        let session = match self.state {
            State::Answered | State::Up => self.session.poll_timeout(),
            _ => None,
        };
        [state, resend, session].into_iter().flatten().min()
    }

    /// The flow runs before the call is up (early media, ringing, or our 200 awaiting its
    /// ACK): what needs the caller waits.
    pub(super) fn awaits_answer(&self) -> bool {
        matches!(
            self.state,
            State::Early { .. } | State::Ringing { .. } | State::Answered
        )
    }

    /// The ACK confirmed our answer and the call has not ended.
    pub(super) fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Early media can be sent: not answered yet, and the INVITE's offer gives a 183 an
    /// answer to carry.
    pub(super) fn can_play_early(&self) -> bool {
        matches!(self.state, State::Early { .. }) && self.offer.is_some()
    }

    /// Nothing more will happen on this leg.
    pub(super) fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Where the call came from: the trunk (or proxy) that sent the INVITE, which a
    /// transfer back out through the trunk goes to.
    pub(super) fn source(&self) -> Peer {
        self.source
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.resend_reliable(now);
        if matches!(self.state, State::Answered | State::Up) {
            match self.session.handle_timeout(now) {
                Some(Due::Refresh) if self.state == State::Up => {
                    self.send_refresh();
                }
                Some(Due::Expired) => self.expire(now),
                _ => {}
            }
        }
        match self.state {
            State::Ringing { answer_at } if answer_at <= now => self.send_answer(now),
            State::Leaving { until } if until <= now => {
                debug!("no answer to our BYE: the leg is over");
                self.state = State::Ended;
            }
            _ => {}
        }
    }

    /// The caller's RTP stopped: BYE, and the call is over.
    pub(super) fn handle_media_timeout(&mut self, now: Instant) {
        if self.state == State::Up {
            info!("media timeout: the caller's RTP stopped");
            self.hang_up(now);
            self.event(LegEvent::Ended(EndReason::MediaTimeout));
        }
    }

    /// Hangs up: BYE, its answer awaited (bounded) before the leg is over. Before the
    /// answer (early media only) the INVITE is refused with 480 instead: the caller was
    /// never connected.
    pub(super) fn hang_up(&mut self, now: Instant) {
        if let State::Early { .. } = self.state {
            self.respond_invite(480, None);
            self.state = State::Ended;
        } else if matches!(self.state, State::Up | State::Answered) {
            self.send_bye();
            self.state = State::Leaving {
                until: now + BYE_WAIT,
            };
        }
    }

    /// Resends the unacknowledged reliable provisional response (T1 doubling), or gives up
    /// on the call when no PRACK came in 64 x T1 (RFC 3262 3: a 5xx ends the INVITE).
    fn resend_reliable(&mut self, now: Instant) {
        if !matches!(
            self.state,
            State::Ringing { .. } | State::Early { .. } | State::Answered
        ) {
            self.reliable = None;
        }
        let Some(r) = self.reliable.as_mut() else {
            return;
        };
        let Some(at) = r.resend_at.filter(|at| *at <= now) else {
            return;
        };
        if at >= r.give_up_at {
            warn!("no PRACK for our reliable provisional response: refusing the call");
            self.reliable = None;
            self.respond_invite(504, None);
            self.end(EndReason::NoAck);
            return;
        }
        r.interval *= 2;
        r.resend_at = Some((now + r.interval).min(r.give_up_at));
        let response = r.response.clone();
        self.send_response(self.invite_tx, response);
    }

    pub(super) fn handle_sip(&mut self, now: Instant, ev: CallEvent) {
        match ev {
            CallEvent::Cancelled { .. } => {
                if matches!(self.state, State::Ringing { .. } | State::Early { .. }) {
                    // The endpoint answered the CANCEL; the INVITE ends with 487.
                    info!("the caller cancelled");
                    self.respond_invite(487, None);
                    self.end(EndReason::CallerHungUp);
                }
                // Answered already: a late CANCEL changes nothing.
            }
            CallEvent::Ack { request } => {
                if self.state == State::Answered {
                    self.state = State::Up;
                    match self.started {
                        None => self.start_from_answer(&request.body),
                        Some(n) if self.began_early => self.start_media(n),
                        Some(_) => {}
                    }
                    self.event(LegEvent::Up);
                }
            }
            CallEvent::Shutdown => match self.state {
                State::Ringing { .. } | State::Early { .. } => {
                    self.respond_invite(503, None);
                    self.end(EndReason::Shutdown);
                }
                State::Answered | State::Up => {
                    info!("the engine is stopping: hanging up");
                    self.send_bye();
                    self.end(EndReason::Shutdown);
                }
                State::Leaving { .. } | State::Ended => {}
            },
            CallEvent::AckTimeout => {
                if self.state == State::Answered {
                    warn!("no ACK for our 200: ending the call");
                    // The caller never confirmed; a BYE tells it (and any proxy) we are done.
                    self.send_bye();
                    self.end(EndReason::NoAck);
                }
            }
            CallEvent::Request { tx, request, peer } => self.in_dialog(now, tx, request, peer),
            CallEvent::Response { response } => {
                self.ack_reinvite(&response);
                if matches!(self.state, State::Leaving { .. })
                    && is_bye(&response)
                    && response.status_code.code() >= 200
                {
                    self.state = State::Ended;
                } else {
                    self.refer_answered(&response);
                    if response.status_code.code() >= 200 {
                        self.notify_answered(now, headers::cseq(&response.headers));
                    }
                    if matches!(self.state, State::Answered | State::Up) {
                        self.refresh_answered(now, &response);
                    }
                }
            }
            CallEvent::Timeout { method, cseq, .. } => {
                if method == Method::Bye && matches!(self.state, State::Leaving { .. }) {
                    self.state = State::Ended;
                } else if method == Method::Notify {
                    self.notify_answered(now, Some((cseq, method)));
                } else if method == Method::Refer && self.refer == Some(cseq) {
                    self.refer = None;
                    self.event(LegEvent::Referred(Err(408)));
                } else if matches!(self.state, State::Answered | State::Up)
                    && self.session.handle_request_timeout(cseq)
                {
                    self.expire(now);
                }
            }
        }
    }

    /// Asks the caller's trunk to take the call to `target` (REFER, RFC 3515): the outcome
    /// comes as `LegEvent::Referred`, from the REFER's failure or the trunk's NOTIFYs.
    pub(super) fn refer(&mut self, target: &str) {
        if self.state != State::Up {
            return self.event(LegEvent::Referred(Err(481)));
        }
        let mut req = self.dialog.request(Method::Refer, &host_port(self.local));
        let contact = self.dialog.local_contact.clone();
        let h = &mut req.headers;
        h.push(Header::Other("Refer-To".into(), format!("<{target}>")));
        h.push(Header::Other("Referred-By".into(), contact.clone()));
        h.push(Header::Contact(contact.into()));
        self.refer = headers::cseq(&req.headers).map(|(n, _)| n);
        self.refer_accepted = false;
        let peer = self.dialog.next_hop();
        self.out.push_back(LegOutput::Sip(Box::new(Command::Send {
            peer,
            request: req,
        })));
    }

    /// The caller's side asks for the call to be moved to another party (RFC 3515, blind
    /// or attended): 202 and a first NOTIFY (100) when the call is up and no transfer is
    /// under way (491 otherwise), and `LegEvent::Transfer` for the call to place the
    /// target; 400 without a usable Refer-To.
    fn take_refer(&mut self, tx: ServerTxId, req: &Request, from: Peer) {
        let busy = self.transferring || self.refer.is_some() || self.handed_over;
        let taken = match self.state {
            // Whoever learnt the dialog's tags must not make the hotline call out.
            _ if from.addr.ip() != self.source.addr.ip() => {
                Err((403, "a REFER must come from where the call came from"))
            }
            State::Up if busy => Err((491, "a transfer of this call is under way")),
            State::Up => super::referral::target(req).and_then(|t| self.allowed(t)),
            _ => Err((491, "the call is not up yet")),
        };
        match taken {
            Ok(target) => {
                let ok = super::referral::accepted(req, &target, &self.dialog);
                self.send_response(tx, ok);
                info!(target = %target.uri, attended = target.replaces.is_some(),
                    "the caller's side transfers the call");
                self.transferring = true;
                self.refer_sub = target.subscribe.then_some(target.id);
                self.notify_transfer(100);
                self.event(LegEvent::Transfer(target));
            }
            Err((code, why)) => {
                let refused = super::referral::refusal(req, code, why);
                self.send_response(tx, refused);
            }
        }
    }

    /// `referral`, if its target is the host the call came from or a named trunk's (403 if
    /// not). Anywhere else would let a peer have the hotline place calls at its expense
    /// (toll fraud) or into its own network.
    fn allowed(
        &self,
        referral: super::referral::Referral,
    ) -> Result<super::referral::Referral, (u16, &'static str)> {
        let host = crate::sip::uri::SipUri::parse(&referral.uri).map(|u| u.host);
        let ours = self.source.addr.ip().to_string();
        let known = host.is_some_and(|h| {
            h.eq_ignore_ascii_case(&ours) || self.trunks.at_host(h).next().is_some()
        });
        if known {
            Ok(referral)
        } else {
            Err((
                403,
                "the Refer-To must be the caller's trunk or a named trunk",
            ))
        }
    }

    /// Tells the caller's side how the transfer it asked for goes (RFC 3515 2.4.4); a final
    /// status ends its subscription.
    pub(super) fn notify_transfer(&mut self, code: u16) {
        if !self.transferring || self.state != State::Up {
            return;
        }
        self.transferring = code < 200;
        let Some(id) = self.refer_sub else {
            return;
        };
        let (request, peer) = super::referral::notify(&mut self.dialog, self.local, id, code);
        if code >= 200 {
            self.final_notify = headers::cseq(&request.headers).map(|(n, _)| n);
        }
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request })));
    }

    /// The call moved to the target of the REFER this leg took (`hand_over`).
    pub(super) fn is_handed_over(&self) -> bool {
        self.handed_over
    }

    /// The transfer's target answered and takes the caller's place: this leg says nothing
    /// more to the flow and leaves (BYE) once its final NOTIFY is answered, unless the
    /// caller's side hangs up first, as transferors do.
    pub(super) fn hand_over(&mut self, now: Instant) {
        self.handed_over = true;
        if self.final_notify.is_none() {
            self.hang_up(now);
        }
    }

    /// The final answer to (or the timeout of) a request of ours: when it is the final
    /// NOTIFY of a transfer handed over, the leg leaves.
    fn notify_answered(&mut self, now: Instant, cseq: Option<(u32, Method)>) {
        let ours = matches!(cseq, Some((n, Method::Notify)) if self.final_notify == Some(n));
        if ours {
            self.final_notify = None;
            if self.handed_over {
                self.hang_up(now);
            }
        }
    }

    /// The flow gave up on our REFER: its later NOTIFYs are answered and ignored.
    pub(super) fn forget_refer(&mut self) {
        self.refer = None;
    }

    /// A REFER refused outright ends the transfer with its status.
    fn refer_answered(&mut self, response: &Response) {
        let code = response.status_code.code();
        let ours = headers::cseq(&response.headers)
            .is_some_and(|(n, m)| m == Method::Refer && self.refer == Some(n));
        if ours && code >= 300 {
            self.refer = None;
            self.event(LegEvent::Referred(Err(code)));
        }
        self.refer_accepted |= ours && (200..300).contains(&code);
    }

    /// A NOTIFY of our REFER's progress (RFC 3515 2.4.4): its `message/sipfrag` body's
    /// status line says how the trunk's call to the target goes.
    fn refer_progress(&mut self, tx: ServerTxId, req: &Request) {
        let event = req.headers.iter().find_map(|h| match h {
            Header::Event(e) => Some(e.value()),
            _ => None,
        });
        let Some(event) = event.filter(|e| {
            headers::split_outside(e, ';')[0]
                .trim()
                .eq_ignore_ascii_case("refer")
        }) else {
            return self.respond(tx, req, 489, None);
        };
        // RFC 3515 2.4.6: an `id` names the REFER (its CSeq) the NOTIFY reports on.
        let ours = match headers::param(event, "id").map(str::parse::<u32>) {
            Some(Ok(id)) => self.refer == Some(id),
            Some(Err(_)) => false,
            None => true,
        };
        self.respond(tx, req, 200, None);
        if !ours {
            return;
        }
        let code = std::str::from_utf8(&req.body)
            .ok()
            .and_then(|b| b.lines().next())
            .and_then(|l| l.strip_prefix("SIP/2.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code.filter(|_| self.refer.is_some()) else {
            return;
        };
        match code {
            100 => debug!("the trunk tries our transfer"),
            101..=199 => self.event(LegEvent::ReferRinging(code)),
            200..=299 => {
                self.refer = None;
                self.event(LegEvent::Referred(Ok(())));
            }
            _ => {
                self.refer = None;
                self.event(LegEvent::Referred(Err(code)));
            }
        }
    }

    /// Refreshes the session (RFC 4028 7.4): UPDATE without a body when the caller's side
    /// takes UPDATE (no offer/answer to get wrong), else a re-INVITE offering the SDP we
    /// last sent, unchanged and with the same version.
    fn send_refresh(&mut self) {
        let local = host_port(self.local);
        let sdp = self.sent.last();
        if let Some(request) = self.session.request(&mut self.dialog, &local, sdp) {
            let peer = self.dialog.next_hop();
            self.out
                .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request })));
        }
    }

    /// Every 2xx to our re-INVITE is ACKed, copies included (RFC 6026), whatever the leg's
    /// state.
    fn ack_reinvite(&mut self, response: &Response) {
        let Some((seq, Method::Invite)) = headers::cseq(&response.headers) else {
            return;
        };
        if (200..300).contains(&response.status_code.code()) {
            let ack = self.dialog.ack(seq, &host_port(self.local));
            let peer = self.dialog.next_hop();
            self.out
                .push_back(LegOutput::Sip(Box::new(Command::SendStateless {
                    peer,
                    request: ack,
                })));
        }
    }

    /// The answer to our refresh: a 2xx restarts the timer (and a re-INVITE's is ACKed),
    /// 422 asks again with the interval the caller's side wants, 408 or 481 end the call
    /// (RFC 4028 10); any other failure leaves the session as it was until the next try.
    fn refresh_answered(&mut self, now: Instant, response: &Response) {
        match self.session.handle_response(now, response) {
            Some(RefreshAnswer::Again) => self.send_refresh(),
            Some(RefreshAnswer::Gone) => self.expire(now),
            // No credentials on the caller's side: the timer tries again.
            Some(RefreshAnswer::Settled | RefreshAnswer::Challenged) | None => {}
        }
    }

    /// The session timer ended the call (RFC 4028 10): BYE.
    fn expire(&mut self, now: Instant) {
        self.hang_up(now);
        self.event(LegEvent::Ended(EndReason::SessionExpired));
    }

    fn event(&mut self, ev: LegEvent) {
        // Handed over, the call is the target's: what happens here is no news to the flow.
        if !self.handed_over {
            self.out.push_back(LegOutput::Event(ev));
        }
    }

    fn end(&mut self, reason: EndReason) {
        self.state = State::Ended;
        self.event(LegEvent::Ended(reason));
    }

    /// Our SDP for `remote`'s offer (or our offer), remembered as the last sent. Its
    /// version rises only when it describes another session than the last one sent.
    fn local_sdp(&mut self, remote: Option<&RemoteMedia>, direction: Direction) -> String {
        let build = |version| {
            LocalMedia {
                ip: self.local.ip(),
                port: self.media.port,
                session_id: self.media.session_id,
                version,
                codecs: &self.media.codecs,
                dtmf_pt: self.dtmf_pt,
                direction,
                master: &self.media.security.master,
                offer_srtp: self
                    .srtp
                    .or((self.media.security.encryption == Encryption::Required)
                        .then_some(Suite::AesCm128HmacSha1_80)),
            }
            .to_sdp(remote)
        };
        self.sent.next(build)
    }

    /// The caller's media must be SRTP: its trunk requires it, or it already is.
    pub(super) fn requires_srtp(&self) -> bool {
        self.media.security.encryption == Encryption::Required
    }

    /// A call whose media went SRTP stays SRTP: a later plain offer is refused, and our
    /// own offers (a late offer, an offerless re-INVITE) offer SRTP with the same key.
    fn note_srtp(&mut self, n: &Negotiated) {
        if let Some(keys) = n.srtp {
            self.srtp = Some(keys.suite);
            self.media.security.encryption = Encryption::Required;
        }
    }

    fn respond_invite(&mut self, code: u16, sdp: Option<String>) {
        if code >= 300 {
            // A failure ends the INVITE: nothing provisional is resent or PRACKed after it.
            self.reliable = None;
        }
        let response = self.response(&self.invite, code, sdp);
        self.send_response(self.invite_tx, response);
    }

    fn respond(&mut self, tx: ServerTxId, req: &Request, code: u16, sdp: Option<String>) {
        let response = self.response(req, code, sdp);
        self.send_response(tx, response);
    }

    fn response(&self, req: &Request, code: u16, sdp: Option<String>) -> Response {
        let mut r: Response = build::response(req, code, Some(&self.dialog.local_tag));
        let dialog_forming = matches!(req.method, Method::Invite | Method::Update);
        if (180..300).contains(&code) && dialog_forming {
            r.headers
                .push(Header::Contact(self.dialog.local_contact.clone().into()));
            r.headers.push(Header::Allow(
                crate::sip::allow_header(self.answering.takes_refer).into(),
            ));
            r.headers
                .push(Header::Supported(crate::sip::SUPPORTED.into()));
        }
        if code == 405 {
            // RFC 3261 8.2.1: a 405 lists what is allowed (REFER only where it is taken).
            r.headers.push(Header::Allow(
                crate::sip::allow_header(self.answering.takes_refer).into(),
            ));
        }
        if let Some(sdp) = sdp {
            r.headers
                .push(Header::ContentType("application/sdp".into()));
            r.body = sdp.into_bytes();
        }
        r
    }

    fn send_response(&mut self, tx: ServerTxId, response: Response) {
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Respond { tx, response })));
    }

    /// Starts (or restarts) the media with `n`.
    fn start_media(&mut self, n: Negotiated) {
        self.started = Some(n);
        // Handed over, the caller's media is the heir's: a late re-INVITE from the trunk
        // must not take it back.
        if !self.handed_over {
            self.out.push_back(LegOutput::StartMedia(n));
        }
    }

    /// A late offer: our 200 carried the offer, the caller's ACK the answer.
    fn start_from_answer(&mut self, body: &[u8]) {
        match RemoteMedia::parse(body).and_then(|r| {
            r.accept_answer(&self.media.codecs, &self.media.reach, &self.media.security)
                .map(|n| (r, n))
        }) {
            Ok((remote, n)) => {
                note_redirect(&n);
                self.note_srtp(&n);
                self.media.codecs = vec![n.codec];
                self.dtmf_pt = remote.dtmf_pt;
                self.start_media(Negotiated {
                    direction: Direction::SendRecv,
                    ..n
                });
            }
            Err(e) => warn!(error = %e, "the ACK carried no usable SDP answer"),
        }
    }

    fn in_dialog(&mut self, now: Instant, tx: ServerTxId, req: Request, from: Peer) {
        if self.state == State::Ended || !self.dialog.matches(&req) {
            return self.respond(tx, &req, 481, None);
        }
        if let State::Leaving { .. } = self.state {
            // Both sides hung up at once: answer theirs too.
            let code = if req.method == Method::Bye { 200 } else { 481 };
            self.respond(tx, &req, code, None);
            if req.method == Method::Bye {
                self.state = State::Ended;
            }
            return;
        }
        if let Err(e) = self.dialog.accept_remote_cseq(&req) {
            debug!(error = %e, "out-of-order request");
            return self.respond(tx, &req, 500, None);
        }
        let ringing = matches!(self.state, State::Ringing { .. } | State::Early { .. });
        match req.method {
            Method::Bye => {
                self.respond(tx, &req, 200, None);
                if ringing {
                    // RFC 3261 15.1.2: a BYE in the early dialog ends the INVITE too.
                    self.respond_invite(487, None);
                }
                if self.refer.take().is_some() && self.refer_accepted {
                    // A trunk that accepted our REFER and leaves before its final NOTIFY
                    // has taken the call (Asterisk hangs up as soon as it redirects).
                    info!("the trunk took the call and hung up");
                    self.state = State::Ended;
                    return self.event(LegEvent::Referred(Ok(())));
                }
                info!("caller hung up");
                self.end(EndReason::CallerHungUp);
            }
            // RFC 3261 14.2: a second INVITE while the first is unanswered.
            Method::Invite if ringing => self.respond(tx, &req, 500, None),
            Method::Invite | Method::Update => self.offer_answer(now, tx, &req),
            Method::PRack => self.prack(now, tx, &req),
            Method::Refer if self.answering.takes_refer => self.take_refer(tx, &req, from),
            Method::Notify => self.refer_progress(tx, &req),
            Method::Info => {
                self.respond(tx, &req, 200, None);
                if let Some(key) = sip_info_key(&req) {
                    self.event(LegEvent::Dtmf(key));
                }
            }
            Method::Options => self.respond(tx, &req, 200, None),
            _ => self.respond(tx, &req, 405, None),
        }
    }

    /// A PRACK (RFC 3262 3): 200 when its RAck names our reliable provisional response,
    /// 481 otherwise. An answer the flow asked for while it was awaited goes now.
    fn prack(&mut self, now: Instant, tx: ServerTxId, req: &Request) {
        let rack = headers::other_value(&req.headers, "RAck").and_then(|v| {
            let mut parts = v.split_whitespace();
            let rseq = parts.next()?.parse::<u32>().ok()?;
            let cseq = parts.next()?.parse::<u32>().ok()?;
            Some((rseq, cseq, parts.next()?.to_ascii_uppercase()))
        });
        let invite_seq = headers::cseq(&self.invite.headers).map_or(0, |(n, _)| n);
        let matches = rack.is_some_and(|(rseq, cseq, method)| {
            self.reliable.as_ref().is_some_and(|r| r.rseq == rseq)
                && cseq == invite_seq
                && method == "INVITE"
        });
        if matches {
            debug!("PRACK: the reliable provisional response is acknowledged");
            self.reliable = None;
            self.respond(tx, req, 200, None);
            if self.state == (State::Early { answer_asked: true }) {
                self.send_answer(now);
            }
        } else {
            self.respond(tx, req, 481, None);
        }
    }

    /// A re-INVITE or UPDATE: hold, resume, a moved peer (RFC 3264 8) or a session refresh
    /// (RFC 4028). Answers with the same codec, and an SDP version that rises only when
    /// the session changed. A re-INVITE without an offer gets ours; an UPDATE without one
    /// only refreshes.
    fn offer_answer(&mut self, now: Instant, tx: ServerTxId, req: &Request) {
        // Our own re-INVITE is out: offers crossed (RFC 3261 14.2, RFC 3311 5.2).
        let ours_pending = self.session.invite_in_flight();
        if ours_pending && (req.method == Method::Invite || !req.body.is_empty()) {
            return self.respond(tx, req, 491, None);
        }
        let agreed = match self.session.answer(req) {
            Ok(a) => a,
            Err(min_se) => {
                let mut r = self.response(req, 422, None);
                r.headers
                    .push(Header::Other("Min-SE".into(), min_se.to_string()));
                return self.send_response(tx, r);
            }
        };
        let sdp = if req.body.is_empty() {
            (req.method == Method::Invite).then(|| self.local_sdp(None, Direction::SendRecv))
        } else {
            let negotiated = RemoteMedia::parse(&req.body).and_then(|r| {
                r.negotiate(&self.media.codecs, &self.media.reach, &self.media.security)
                    .map(|n| (r, n))
            });
            match negotiated {
                Ok((remote, n)) => {
                    match req.method {
                        Method::Invite => info!(hold = remote.is_hold(), "re-INVITE"),
                        _ => info!(hold = remote.is_hold(), "UPDATE with an offer"),
                    }
                    note_redirect(&n);
                    self.note_srtp(&n);
                    self.start_media(n);
                    Some(self.local_sdp(Some(&remote), n.direction))
                }
                Err(e) => {
                    debug!(error = %e, "offer refused");
                    let mut r = self.response(req, 488, None);
                    r.headers.push(warning(488, &e.to_string()));
                    return self.send_response(tx, r);
                }
            }
        };
        self.dialog.refresh_target(req);
        let running = matches!(self.state, State::Answered | State::Up);
        self.session.accept(now, agreed, running);
        let mut ok = self.response(req, 200, sdp);
        ok.headers.extend(self.session.response_headers());
        self.send_response(tx, ok);
    }

    fn send_bye(&mut self) {
        let bye = self.dialog.request(Method::Bye, &host_port(self.local));
        let peer = self.dialog.next_hop();
        self.out.push_back(LegOutput::Sip(Box::new(Command::Send {
            peer,
            request: bye,
        })));
    }
}

/// Tells the operator when an offer named an address outside the call's reach, so a
/// carrier's media gateway can be added to `[media] remote_networks`.
pub(super) fn note_redirect(n: &Negotiated) {
    if let Some(offered) = n.redirected_from {
        info!(%offered, sending_to = %n.remote,
            "the offer's media address is outside the call's reach: audio goes to the signalling peer (a media gateway belongs in [media] remote_networks)");
    }
}

pub(super) fn is_bye(r: &Response) -> bool {
    headers::cseq(&r.headers).is_some_and(|(_, m)| m == Method::Bye)
}

/// A key sent as SIP INFO (application/dtmf-relay: `Signal=5`), which some trunks use
/// instead of RFC 4733.
fn sip_info_key(req: &Request) -> Option<char> {
    let body = std::str::from_utf8(&req.body).ok()?;
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        let v = v.trim();
        let c = v.chars().next()?;
        (v.len() == 1 && (c.is_ascii_digit() || "*#ABCD".contains(c))).then_some(c)
    })
}
