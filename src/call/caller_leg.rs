//! The caller's leg (the B2BUA's UAS side), sans IO: it answers the INVITE (180, the 200
//! with our SDP after the ringing time, waiting for the ACK), keeps the dialog (re-INVITE
//! for hold and resume, OPTIONS and INFO inside it, BYE either way) and decides what the
//! media does. It owns the dialog and the offer/answer state; it must not touch the media,
//! the endpoint or the clock: it says what to send (`LegOutput`) and is given `now`.

#![warn(unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Header, Method, Request, Response};
use tracing::{debug, info, warn};

use super::incoming::{Invite, Refusal, host_port};
use crate::endpoint::CallEvent;
use crate::endpoint::core::Command;
use crate::events::HungUpBy;
use crate::media::g711::Law;
use crate::media::sdp::{Direction, LocalMedia, Negotiated, Reach, RemoteMedia};
use crate::media::session::PlayId;
use crate::sip::dialog::Dialog;
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::{build, headers};

/// RFC 4733 payload type we offer when the peer made no offer.
pub(super) const DTMF_PT: u8 = 101;
/// How long we wait for the answer to our BYE (64 x T1: its transaction's own limit).
const BYE_WAIT: Duration = Duration::from_secs(32);

/// What happened on the caller's leg, for the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegEvent {
    /// The ACK confirmed our 200: the call is up.
    Up,
    Dtmf(char),
    PlayDone(PlayId),
    /// The call is over: the caller hung up, or the media or the ACK timed out.
    Ended(EndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    MediaTimeout,
    NoAck,
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
    /// 200 sent; waiting for its ACK (RFC 3261 15: no BYE and no flow before it).
    Answered,
    Up,
    /// Our BYE is out; its answer is awaited until `until`.
    Leaving {
        until: Instant,
    },
    Ended,
}

/// The SDP we describe our side with.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// Our RTP port.
    pub port: u16,
    /// The codecs we offer or accept, best first.
    pub laws: Vec<Law>,
    /// Where the call's audio may go.
    pub reach: Reach,
    /// The SDP origin's session id (random per call).
    pub session_id: u64,
}

pub(super) struct CallerLeg {
    dialog: Dialog,
    invite: Request,
    invite_tx: ServerTxId,
    offer: Option<RemoteMedia>,
    local: SocketAddr,
    media: MediaSetup,
    sdp_version: u64,
    dtmf_pt: Option<u8>,
    /// Offer/answer is done and RTP flows (false until the ACK of a late offer).
    media_started: bool,
    /// The direction our answer to the INVITE's offer states.
    answer_direction: Direction,
    state: State,
    out: VecDeque<LegOutput<LegEvent>>,
}

/// Negotiates the caller's offer with what we have: the media to start at once, or the 488
/// that refuses it. `None` for a late offer.
pub(super) fn negotiate(
    invite: &Invite,
    laws: &[Law],
    reach: &Reach,
) -> Result<Option<Negotiated>, Refusal> {
    invite
        .offer
        .as_ref()
        .map(|r| r.negotiate(laws, reach))
        .transpose()
        .map_err(|e| Refusal {
            code: 488,
            warning: Some(e.to_string()),
        })
}

impl CallerLeg {
    /// Takes the call: 180 now, the 200 after `ring`. `negotiated` is what `negotiate`
    /// made of the offer.
    pub(super) fn answer(
        now: Instant,
        invite: Invite,
        negotiated: Option<Negotiated>,
        mut media: MediaSetup,
        ring: Duration,
    ) -> CallerLeg {
        let dtmf_pt = match &invite.offer {
            Some(r) => r.dtmf_pt,
            None => Some(DTMF_PT),
        };
        if let Some(n) = negotiated {
            media.laws = vec![n.law];
        }
        let mut leg = CallerLeg {
            dialog: invite.dialog,
            invite: invite.request,
            invite_tx: invite.tx,
            offer: invite.offer,
            local: invite.local,
            media,
            sdp_version: 1,
            dtmf_pt,
            media_started: negotiated.is_some(),
            answer_direction: negotiated.map_or(Direction::SendRecv, |n| n.direction),
            state: State::Ringing {
                answer_at: now + ring,
            },
            out: VecDeque::new(),
        };
        if let Some(n) = negotiated {
            note_redirect(&n);
            leg.out.push_back(LegOutput::StartMedia(n));
        }
        leg.respond_invite(180, None);
        leg.handle_timeout(now);
        leg
    }

    pub(super) fn poll_output(&mut self) -> Option<LegOutput<LegEvent>> {
        self.out.pop_front()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Ringing { answer_at } => Some(answer_at),
            State::Leaving { until } => Some(until),
            _ => None,
        }
    }

    /// Nothing more will happen on this leg.
    pub(super) fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Where requests in the dialog go: the trunk that sent the call.
    pub(super) fn peer(&self) -> Peer {
        self.dialog.next_hop()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Ringing { answer_at } if answer_at <= now => {
                let sdp = self.local_sdp(self.offer.as_ref(), self.answer_direction);
                self.respond_invite(200, Some(sdp));
                self.state = State::Answered;
                info!("answered");
            }
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

    /// Hangs up: BYE, its answer awaited (bounded) before the leg is over.
    pub(super) fn hang_up(&mut self, now: Instant) {
        if matches!(self.state, State::Up | State::Answered) {
            self.send_bye();
            self.state = State::Leaving {
                until: now + BYE_WAIT,
            };
        }
    }

    pub(super) fn handle_sip(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Cancelled { .. } => {
                if matches!(self.state, State::Ringing { .. }) {
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
                    if !self.media_started {
                        self.start_from_answer(&request.body);
                    }
                    self.event(LegEvent::Up);
                }
            }
            CallEvent::Shutdown => match self.state {
                State::Ringing { .. } => {
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
            CallEvent::Request { tx, request, .. } => self.in_dialog(tx, request),
            CallEvent::Response { response } => {
                if matches!(self.state, State::Leaving { .. })
                    && is_bye(&response)
                    && response.status_code.code() >= 200
                {
                    self.state = State::Ended;
                }
            }
            CallEvent::Timeout { method, .. } => {
                if method == Method::Bye && matches!(self.state, State::Leaving { .. }) {
                    self.state = State::Ended;
                }
            }
        }
    }

    fn event(&mut self, ev: LegEvent) {
        self.out.push_back(LegOutput::Event(ev));
    }

    fn end(&mut self, reason: EndReason) {
        self.state = State::Ended;
        self.event(LegEvent::Ended(reason));
    }

    fn local_sdp(&self, remote: Option<&RemoteMedia>, direction: Direction) -> String {
        LocalMedia {
            ip: self.local.ip(),
            port: self.media.port,
            session_id: self.media.session_id,
            version: self.sdp_version,
            laws: &self.media.laws,
            dtmf_pt: self.dtmf_pt,
            direction,
        }
        .to_sdp(remote)
    }

    fn respond_invite(&mut self, code: u16, sdp: Option<String>) {
        let response = self.response(&self.invite, code, sdp);
        self.send_response(self.invite_tx, response);
    }

    fn respond(&mut self, tx: ServerTxId, req: &Request, code: u16, sdp: Option<String>) {
        let response = self.response(req, code, sdp);
        self.send_response(tx, response);
    }

    fn response(&self, req: &Request, code: u16, sdp: Option<String>) -> Response {
        let mut r: Response = build::response(req, code, Some(&self.dialog.local_tag));
        if (180..300).contains(&code) && req.method == Method::Invite {
            r.headers
                .push(Header::Contact(self.dialog.local_contact.clone().into()));
            r.headers.push(Header::Allow(crate::sip::ALLOW.into()));
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

    /// A late offer: our 200 carried the offer, the caller's ACK the answer.
    fn start_from_answer(&mut self, body: &[u8]) {
        match RemoteMedia::parse(body).and_then(|r| {
            r.negotiate(&self.media.laws, &self.media.reach)
                .map(|n| (r, n))
        }) {
            Ok((remote, n)) => {
                note_redirect(&n);
                self.media.laws = vec![n.law];
                self.dtmf_pt = remote.dtmf_pt;
                self.media_started = true;
                self.out.push_back(LegOutput::StartMedia(Negotiated {
                    direction: Direction::SendRecv,
                    ..n
                }));
            }
            Err(e) => warn!(error = %e, "the ACK carried no usable SDP answer"),
        }
    }

    fn in_dialog(&mut self, tx: ServerTxId, req: Request) {
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
        let ringing = matches!(self.state, State::Ringing { .. });
        match req.method {
            Method::Bye => {
                self.respond(tx, &req, 200, None);
                if ringing {
                    // RFC 3261 15.1.2: a BYE in the early dialog ends the INVITE too.
                    self.respond_invite(487, None);
                }
                info!("caller hung up");
                self.end(EndReason::CallerHungUp);
            }
            // RFC 3261 14.2: a second INVITE while the first is unanswered.
            Method::Invite if ringing => self.respond(tx, &req, 500, None),
            Method::Invite => self.reinvite(tx, &req),
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

    /// A re-INVITE: hold, resume or a moved peer (RFC 3264 8). Answers with the same codec.
    fn reinvite(&mut self, tx: ServerTxId, req: &Request) {
        self.dialog.refresh_target(req);
        self.sdp_version += 1;
        if req.body.is_empty() {
            let sdp = self.local_sdp(None, Direction::SendRecv);
            return self.respond(tx, req, 200, Some(sdp));
        }
        let negotiated = RemoteMedia::parse(&req.body).and_then(|r| {
            r.negotiate(&self.media.laws, &self.media.reach)
                .map(|n| (r, n))
        });
        match negotiated {
            Ok((remote, n)) => {
                info!(hold = remote.is_hold(), "re-INVITE");
                note_redirect(&n);
                self.media_started = true;
                self.out.push_back(LegOutput::StartMedia(n));
                let sdp = self.local_sdp(Some(&remote), n.direction);
                self.respond(tx, req, 200, Some(sdp));
            }
            Err(e) => {
                debug!(error = %e, "re-INVITE offer refused");
                self.respond(tx, req, 488, None);
            }
        }
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
