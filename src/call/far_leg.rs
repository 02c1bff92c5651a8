//! A far leg of a call (the B2BUA's UAC side: an agent's phone or a transfer target), sans
//! IO: the INVITE with the call's context in headers, CANCEL while it rings, the ACK of every
//! 2xx and the dialog once it answers, its session timer (RFC 4028 as UAC: asked for in the
//! INVITE, 422 answered, refreshed by UPDATE or re-INVITE when we refresh, BYE when the far
//! end stops refreshing), BYE either way, and what its media does. It owns the leg's dialog
//! and state; it must not touch the media, the endpoint or the clock.

#![warn(unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request};
use tracing::{debug, info};

use super::caller_leg::{DTMF_PT, EndReason, LegOutput, MediaSetup, note_redirect};
use super::flow::DialContext;
use super::referral::{self, Referral};
use super::sent_sdp::SentSdp;
use super::session_refresh::{RefreshAnswer, SessionRefresh};
use crate::endpoint::CallEvent;
use crate::endpoint::core::Command;
use crate::media::codec::Codec;
use crate::media::sdp::{Direction, Encryption, LocalMedia, RemoteMedia, SdpError};
use crate::media::srtp::Suite;
use crate::media::worker::MediaError;
use crate::sip::dialog::Dialog;
use crate::sip::digest::ClientCredentials;
use crate::sip::session_timer::{Due, TimerSettings};
use crate::sip::transaction::Peer;
use crate::sip::uri::host_port;
use crate::sip::uri::{percent_encode, to_rsip};
use crate::sip::{build, headers};

/// What happened on a far leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FarEvent {
    /// The phone rings (180/183).
    Ringing,
    /// It answered; media flows.
    Answered,
    /// It refused or could not be reached: the final status (408 when it never answered).
    Failed(u16),
    /// It hung up after answering.
    HungUp,
    /// It died after answering: its RTP stopped, or it stopped refreshing the session.
    Lost(EndReason),
    /// The phone (or the PBX it is on) asks for the caller to be transferred to this SIP
    /// URI (a blind transfer by REFER, RFC 3515, or an attended one replacing a dialog
    /// there); it hears how that goes through `notify_referral`.
    Referred(Referral),
}

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("target {0:?} is not a SIP URI")]
    BadTarget(String),
    #[error("cannot resolve target {0:?}")]
    Unresolvable(String),
    #[error("trunk {0:?} does not answer OPTIONS probes")]
    Down(String),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// What the edge found for a far leg before it is dialled: where the target is, our
/// address as it reaches us, and the media opened for it.
#[derive(Debug, Clone)]
pub struct Dialled {
    pub call_id: String,
    pub peer: Peer,
    pub local: SocketAddr,
    pub media: MediaSetup,
    /// The credentials of the trunk at `peer`, if it challenges what we send it.
    pub credentials: Option<ClientCredentials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Ringing,
    Answered,
    Ended,
}

pub(super) struct FarLeg {
    pub call_id: String,
    invite: Request,
    peer: Peer,
    local: SocketAddr,
    media: MediaSetup,
    dialog: Option<Dialog>,
    state: State,
    credentials: Option<ClientCredentials>,
    /// Our last answer to a challenge: the request that carried it, its nonce and how
    /// often that nonce was used. That very request challenged again (not stale) means
    /// our credentials were refused.
    answered: Option<Answered>,
    /// The phone's REFER subscription is active (the REFER's CSeq): our NOTIFYs report the
    /// transfer.
    referral: Option<u32>,
    /// An agent's phone, which may transfer its caller by REFER; a transfer target's
    /// REFER would have nothing to act on.
    takes_refer: bool,
    /// The session timer the far end's 2xx agreed to, and our refreshes.
    session: SessionRefresh,
    /// The INVITE got some answer (even 100 Trying): the far end is there.
    heard: bool,
    /// It rang (1xx beyond 100) or answered (2xx): the leg reached its destination.
    reached: bool,
    /// The SDP we last sent (our offer, or our answer to the far end's re-offer).
    sent: SentSdp,
    out: VecDeque<LegOutput<FarEvent>>,
}

impl FarLeg {
    /// INVITEs `target` with the call's `context`, asking for the session timer `timers`
    /// says; `takes_refer` for an agent's phone.
    pub(super) fn dial(
        dialled: Dialled,
        target: &str,
        context: &DialContext,
        timers: TimerSettings,
        takes_refer: bool,
    ) -> Result<FarLeg, DialError> {
        let allow = crate::sip::allow_header(takes_refer);
        let Dialled {
            call_id,
            peer,
            local,
            media,
            credentials,
        } = dialled;
        let request_uri = to_rsip(target).ok_or_else(|| DialError::BadTarget(target.to_owned()))?;
        let mut sent = SentSdp::new();
        let sdp = sent.next(|version| {
            local_media(local, &media, &media.codecs, Some(DTMF_PT), version).to_sdp(None)
        });
        let transport = peer.transport.uri_param();
        let caller = context.caller.replace(['"', '\\', '<', '>'], "");
        let mut h = Headers::default();
        h.push(build::via(
            peer.transport,
            &host_port(local),
            &build::new_branch(),
        ));
        h.push(Header::MaxForwards("70".into()));
        // A caller who withheld their number is anonymous in From (RFC 3323), which phones
        // show and PBXs pass on; the number goes in P-Asserted-Identity, inside the trust
        // domain, and in X-Hotline-Caller for the agent's desktop.
        let from = if context.withheld {
            format!(
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={}",
                build::new_tag()
            )
        } else {
            format!(
                "\"{caller}\" <sip:{}@{}>;tag={}",
                user_part(&caller),
                host_port(local),
                build::new_tag()
            )
        };
        h.push(Header::From(from.into()));
        h.push(Header::To(format!("<{target}>").into()));
        // An attended transfer: the target's phone swaps its consultation call for ours.
        if let Some(r) = &context.replaces {
            h.push(Header::Other("Replaces".into(), r.clone()));
        }
        h.push(Header::CallId(call_id.clone().into()));
        h.push(Header::CSeq("1 INVITE".into()));
        h.push(Header::Contact(
            format!("<sip:hotline@{}{transport}>", host_port(local)).into(),
        ));
        h.push(Header::Allow(allow.into()));
        // Not 100rel: we do not PRACK a far end's provisional responses.
        h.push(Header::Supported("timer".into()));
        let session = SessionRefresh::new(timers, None, false, allow);
        h.extend(session.invite_headers());
        // The caller as the trunk asserted it (RFC 3325), with the privacy they asked for:
        // the agent's PBX is inside the hotline's trust domain.
        h.push(Header::Other(
            "P-Asserted-Identity".into(),
            format!("<sip:{}@{}>", user_part(&caller), host_port(local)),
        ));
        let mut extra = vec![("X-Hotline-Caller", percent_encode(&context.caller))];
        if !context.language.is_empty() {
            extra.push(("X-Hotline-Language", percent_encode(&context.language)));
        }
        if context.withheld {
            extra.push(("Privacy", "id".into()));
            extra.push(("X-Hotline-Privacy", "id".into()));
        }
        if let Some(n) = &context.original_called {
            extra.push(("X-Hotline-Original-Called", percent_encode(n)));
        }
        if let Some(r) = &context.redirect_reason {
            extra.push(("X-Hotline-Redirect-Reason", percent_encode(r)));
        }
        if let Some(q) = &context.queue {
            extra.push(("X-Hotline-Queue", percent_encode(q)));
        }
        if let Some(i) = &context.intent {
            extra.push(("X-Hotline-Intent", percent_encode(i)));
        }
        if let Some(t) = context.transcript.as_deref().filter(|t| !t.is_empty()) {
            extra.push(("X-Hotline-Transcript", percent_encode(t)));
        }
        for (name, value) in extra {
            h.push(Header::Other(name.into(), value));
        }
        h.push(Header::ContentType("application/sdp".into()));
        let invite = Request {
            method: Method::Invite,
            uri: request_uri,
            version: rsip::Version::V2,
            headers: h,
            body: sdp.into_bytes(),
        };
        info!(far_call = %call_id, %target, "calling");
        let mut leg = FarLeg {
            call_id,
            invite: invite.clone(),
            peer,
            local,
            media,
            dialog: None,
            state: State::Calling,
            credentials,
            answered: None,
            referral: None,
            takes_refer,
            session,
            heard: false,
            reached: false,
            sent,
            out: VecDeque::new(),
        };
        leg.out.push_back(LegOutput::Sip(Box::new(Command::Send {
            peer,
            request: invite,
        })));
        Ok(leg)
    }

    /// Where the leg was sent (its INVITE's Request-URI).
    pub(super) fn target(&self) -> String {
        self.invite.uri.to_string()
    }

    /// The INVITE got some answer, even 100 Trying.
    pub(super) fn heard(&self) -> bool {
        self.heard
    }

    /// It rang or answered: whatever happens next, the destination took the call.
    pub(super) fn reached(&self) -> bool {
        self.reached
    }

    pub(super) fn poll_output(&mut self) -> Option<LegOutput<FarEvent>> {
        self.out.pop_front()
    }

    /// The leg's RTP stopped: once answered, that ends it.
    pub(super) fn handle_media_timeout(&mut self) {
        self.lose(EndReason::MediaTimeout);
    }

    /// When `handle_timeout` must be called next: the session timer, once answered.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        (self.state == State::Answered)
            .then(|| self.session.poll_timeout())
            .flatten()
    }

    /// Time has come to `now`: our session refresh, or the end of a session the far end
    /// stopped refreshing.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Answered {
            return;
        }
        match self.session.handle_timeout(now) {
            Some(Due::Refresh) => self.send_refresh(None),
            Some(Due::Expired) => self.lose(EndReason::SessionExpired),
            None => {}
        }
    }

    /// The answered leg died: BYE, and the flow hears why.
    fn lose(&mut self, reason: EndReason) {
        if self.state == State::Answered {
            debug!(far_call = %self.call_id, reason = reason.as_str(), "hanging up");
            self.hang_up();
            self.out.push_back(LegOutput::Event(FarEvent::Lost(reason)));
        }
    }

    /// Our refresh, in the dialog: UPDATE when the far end allows it, else a re-INVITE
    /// with our unchanged SDP; with our answer to `challenge` (the response that made it,
    /// and the use of its nonce) when a trunk challenged the last one.
    fn send_refresh(&mut self, challenge: Option<(&rsip::Response, u32)>) {
        let local = host_port(self.local);
        let Some(d) = self.dialog.as_mut() else {
            return;
        };
        let Some(request) = self.session.request(d, &local, self.sent.last()) else {
            return;
        };
        let peer = d.next_hop();
        match challenge {
            Some((response, nc)) => {
                self.send_answered(response, request, peer, nc);
            }
            None => self
                .out
                .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request }))),
        }
    }

    pub(super) fn handle_sip(&mut self, now: Instant, ev: CallEvent) {
        let event = match ev {
            CallEvent::Response { response } => {
                let method = headers::cseq(&response.headers).map(|(_, m)| m);
                if method == Some(Method::Invite) && self.dialog.is_none() {
                    let code = response.status_code.code();
                    self.heard = true;
                    self.reached |= (101..300).contains(&code);
                }
                if self.answer_challenge(&response, method) {
                    return;
                }
                if self.state == State::Answered
                    && let Some(answer) = self.session.handle_response(now, &response)
                {
                    // The answer to our refresh, never the INVITE's: a 2xx to a re-INVITE
                    // is ACKed, and nothing else about the leg changes.
                    if method == Some(Method::Invite) && response.status_code.code() < 300 {
                        self.answered(now, &response);
                    }
                    match answer {
                        RefreshAnswer::Again => self.send_refresh(None),
                        RefreshAnswer::Gone => self.lose(EndReason::SessionExpired),
                        RefreshAnswer::Challenged => self.refresh_answered(&response),
                        RefreshAnswer::Settled => {}
                    }
                    return;
                }
                if method != Some(Method::Invite) {
                    return;
                }
                let code = response.status_code.code();
                match code {
                    101..=199 if self.state == State::Calling => {
                        self.state = State::Ringing;
                        Some(FarEvent::Ringing)
                    }
                    100..=199 => None,
                    200..=299 => self.answered(now, &response),
                    422 if self.state != State::Ended
                        && self.dialog.is_none()
                        && self.session.raise_for_invite(&response) =>
                    {
                        self.invite_again();
                        None
                    }
                    _ if self.state == State::Ended => None,
                    _ => {
                        self.state = State::Ended;
                        Some(FarEvent::Failed(code))
                    }
                }
            }
            CallEvent::Timeout { method, cseq, .. } => {
                if self.state == State::Answered && self.session.handle_request_timeout(cseq) {
                    self.lose(EndReason::SessionExpired);
                    None
                } else if method == Method::Invite && self.state != State::Ended {
                    self.state = State::Ended;
                    Some(FarEvent::Failed(408))
                } else {
                    None
                }
            }
            CallEvent::Request { tx, request, .. } => self.in_dialog(now, tx, request),
            _ => None,
        };
        if let Some(e) = event {
            self.out.push_back(LegOutput::Event(e));
        }
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        tx: crate::sip::transaction::ServerTxId,
        request: Request,
    ) -> Option<FarEvent> {
        if request.method == Method::Refer && self.takes_refer {
            return self.referred(tx, &request);
        }
        // Every request of the dialog moves its remote CSeq on, whatever the answer.
        if let Some(d) = self.dialog.as_mut().filter(|d| d.matches(&request)) {
            let _ = d.accept_remote_cseq(&request);
        }
        let mut timer = Vec::new();
        let mut answer = None;
        let code = match (&request.method, &self.dialog) {
            // Key presses from the agent's phone are not the caller's to hear.
            (Method::Bye | Method::Options | Method::Info, Some(d)) if d.matches(&request) => 200,
            (Method::Invite | Method::Update, Some(d))
                if d.matches(&request)
                    && self.session.invite_in_flight()
                    && (request.method == Method::Invite || !request.body.is_empty()) =>
            {
                // Our re-INVITE refresh is out: offers crossed (RFC 3261 14.2, RFC 3311 5.2).
                491
            }
            (Method::Invite | Method::Update, Some(d)) if d.matches(&request) => {
                // A re-INVITE or UPDATE: the phone holds, resumes, moves or refreshes its
                // session timer.
                match (self.session.answer(&request), self.reoffered(&request)) {
                    (Err(min_se), _) => {
                        timer.push(Header::Other("Min-SE".into(), min_se.to_string()));
                        422
                    }
                    (Ok(_), Err(e)) => {
                        timer.push(super::incoming::warning(488, &e.to_string()));
                        488
                    }
                    (Ok(agreed), Ok(sdp)) => {
                        self.session.accept(now, agreed, true);
                        timer = self.session.response_headers();
                        answer = sdp;
                        200
                    }
                }
            }
            // A NOTIFY of no subscription of ours, a PRACK of nothing we sent reliably:
            // 481 ends only that usage (RFC 5057, RFC 6665 4.1.3, RFC 3262).
            (Method::Notify | Method::PRack, _) => 481,
            // Anything else in the dialog: not a method we take here. A 481 would tell the
            // phone its dialog is gone (RFC 5057), and it would hang up.
            (_, Some(d)) if d.matches(&request) => {
                timer.push(Header::Allow(
                    crate::sip::allow_header(self.takes_refer).into(),
                ));
                405
            }
            _ => 481,
        };
        let mut r = build::response(&request, code, None);
        r.headers.extend(timer);
        if let Some(sdp) = answer {
            r.headers
                .push(Header::ContentType("application/sdp".into()));
            r.body = sdp.into_bytes();
        }
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Respond {
                tx,
                response: r,
            })));
        if request.method == Method::Bye && code == 200 {
            let was_answered = self.state == State::Answered;
            self.state = State::Ended;
            return Some(if was_answered {
                FarEvent::HungUp
            } else {
                FarEvent::Failed(487)
            });
        }
        None
    }

    /// What a re-INVITE or UPDATE does to the media: an offer (hold, resume, a moved
    /// phone) restarts it as agreed and is answered, at an SDP version that moves only if
    /// our side changed; a re-INVITE without one gets a full offer of ours; an UPDATE
    /// without one only refreshes. The SDP to answer with, or why the offer is refused.
    fn reoffered(&mut self, request: &Request) -> Result<Option<String>, SdpError> {
        let (local, media) = (self.local, &self.media);
        if request.body.is_empty() {
            // Offerless re-INVITEs are how some phones resume: a full offer, both ways.
            let offer = (request.method == Method::Invite).then(|| {
                self.sent.next(|version| {
                    local_media(local, media, &media.codecs, Some(DTMF_PT), version).to_sdp(None)
                })
            });
            return Ok(offer);
        }
        let remote = RemoteMedia::parse(&request.body)?;
        let n = remote.negotiate(&self.media.codecs, &self.media.reach, &self.media.security)?;
        note_redirect(&n);
        self.out.push_back(LegOutput::StartMedia(n));
        Ok(Some(self.sent.next(|version| {
            LocalMedia {
                direction: n.direction,
                ..local_media(local, media, &[n.codec], remote.dtmf_pt, version)
            }
            .to_sdp(Some(&remote))
        })))
    }

    /// A REFER from the answered phone: 202 and a first NOTIFY (100) for a transfer to a
    /// SIP URI, blind or attended (Replaces); a REFER without a usable Refer-To is 400,
    /// one while the last one's transfer is reported on 491.
    fn referred(
        &mut self,
        tx: crate::sip::transaction::ServerTxId,
        request: &Request,
    ) -> Option<FarEvent> {
        let answered = self.state == State::Answered;
        let taken = match self.dialog.as_mut().filter(|d| d.matches(request)) {
            Some(d) if answered => {
                let _ = d.accept_remote_cseq(request);
                match self.referral {
                    Some(_) => Err((491, "a transfer of this call is under way")),
                    None => {
                        referral::target(request).map(|t| (referral::accepted(request, &t, d), t))
                    }
                }
            }
            _ => Err((481, "")),
        };
        let (response, event) = match taken {
            Ok((ok, target)) => (ok, Some(FarEvent::Referred(target))),
            Err((code, why)) => (referral::refusal(request, code, why), None),
        };
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Respond { tx, response })));
        if let Some(FarEvent::Referred(target)) = &event {
            info!(far_call = %self.call_id, target = %target.uri,
                attended = target.replaces.is_some(), "the phone transfers the caller");
            self.referral = target.subscribe.then_some(target.id);
            self.notify_referral(100);
        }
        event
    }

    /// Tells the phone that REFERred how its transfer goes (RFC 3515 2.4.4: a NOTIFY with
    /// the status as `message/sipfrag`); a final status ends its subscription.
    pub(super) fn notify_referral(&mut self, code: u16) {
        let (Some(id), Some(d)) = (self.referral, self.dialog.as_mut()) else {
            return;
        };
        if self.state != State::Answered {
            return;
        }
        let (request, peer) = referral::notify(d, self.local, id, code);
        if code >= 200 {
            self.referral = None;
        }
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request })));
    }

    /// A trunk challenged our INVITE or BYE (401/407): send it again with our answer, once
    /// per nonce (the same nonce again means the credentials were refused, and the
    /// response stands). `true` if it went again.
    fn answer_challenge(&mut self, response: &rsip::Response, method: Option<Method>) -> bool {
        let invite = matches!(
            (method, self.state),
            (Some(Method::Invite), State::Calling | State::Ringing)
        );
        let bye = method == Some(Method::Bye) && self.dialog.is_some();
        let Some(nc) = (invite || bye)
            .then(|| self.challenge_use(response))
            .flatten()
        else {
            return false;
        };
        let (request, peer) = match self.dialog.as_mut() {
            Some(d) if bye => (d.request(Method::Bye, &host_port(self.local)), d.next_hop()),
            _ => (next_attempt(&self.invite), self.peer),
        };
        self.send_answered(response, request, peer, nc)
    }

    /// The trunk challenged our session refresh: send it again (a new CSeq, the same
    /// session) with our answer. Without credentials for it, the session timer tries again
    /// soon.
    fn refresh_answered(&mut self, response: &rsip::Response) {
        if let Some(nc) = self.challenge_use(response) {
            self.send_refresh(Some((response, nc)));
        }
    }

    /// The use of its nonce our answer to the challenge in `response` would be; `None`
    /// without credentials for it, or when it challenges the very request that carried
    /// our last answer (not stale): the credentials were refused, and the answer stands.
    fn challenge_use(&self, response: &rsip::Response) -> Option<u32> {
        let credentials = self.credentials.as_ref()?;
        let (challenge, _) = crate::sip::digest::challenge_of(response)?;
        if !credentials.takes(&challenge) {
            return None;
        }
        let challenged = headers::cseq(&response.headers)?;
        match &self.answered {
            Some(a) if (a.seq, &a.method) == (challenged.0, &challenged.1) && !challenge.stale => {
                debug!(far_call = %self.call_id, "the trunk refused our credentials");
                None
            }
            Some(a) if a.nonce == challenge.nonce => Some(a.uses + 1),
            _ => Some(1),
        }
    }

    /// Sends `request` to `peer` with our answer to the challenge in `response`, as the
    /// `nc`th use of its nonce.
    fn send_answered(
        &mut self,
        response: &rsip::Response,
        mut request: Request,
        peer: Peer,
        nc: u32,
    ) -> bool {
        let Some((header, nonce)) = self
            .credentials
            .as_ref()
            .and_then(|c| c.answer(response, &request, nc))
        else {
            return false;
        };
        self.answered = Some(Answered {
            seq: headers::cseq(&request.headers).map_or(0, |c| c.0),
            method: request.method,
            nonce,
            uses: nc,
        });
        request.headers.push(header);
        if request.method == Method::Invite && self.dialog.is_none() {
            // The INVITE that creates the dialog: its ACK and CANCEL go as it went.
            self.invite = request.clone();
        }
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request })));
        true
    }

    /// A 2xx: ACK it (every copy), and on the first start media, the dialog and the
    /// session timer it states.
    fn answered(&mut self, now: Instant, response: &rsip::Response) -> Option<FarEvent> {
        if self.dialog.is_none() {
            let contact = format!("<sip:hotline@{}>", host_port(self.local));
            match Dialog::uac(&self.invite, response, self.peer, contact) {
                Ok(d) => self.dialog = Some(d),
                Err(e) => {
                    debug!(error = %e, "unusable 2xx from the far end");
                    self.state = State::Ended;
                    return Some(FarEvent::Failed(502));
                }
            }
        }
        let dialog = self.dialog.as_ref()?;
        let seq = headers::cseq(&response.headers).map_or(1, |(n, _)| n);
        let mut ack = dialog.ack(seq, &host_port(self.local));
        // RFC 3261 13.2.2.4: the ACK carries the credentials the INVITE did.
        for h in self.invite.headers.iter() {
            if matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)) {
                ack.headers.push(h.clone());
            }
        }
        self.out
            .push_back(LegOutput::Sip(Box::new(Command::SendStateless {
                peer: dialog.next_hop(),
                request: ack,
            })));
        if matches!(self.state, State::Answered | State::Ended) {
            return None;
        }
        // An SRTP answer to our RTP offer would key a stream with a key we never sent; an
        // RTP answer to our SRTP offer is refused by the policy.
        let answer = RemoteMedia::parse(&response.body).and_then(|r| {
            if r.crypto.is_some() && !offers_srtp(&self.media) {
                return Err(SdpError::Profile("RTP/SAVP".into()));
            }
            r.accept_answer(&self.media.codecs, &self.media.reach, &self.media.security)
        });
        match answer {
            Ok(n) => {
                note_redirect(&n);
                self.out.push_back(LegOutput::StartMedia(n));
                self.state = State::Answered;
                self.session.start_from_answer(now, response);
                Some(FarEvent::Answered)
            }
            Err(e) => {
                debug!(error = %e, "the far end's answer has no usable SDP");
                self.state = State::Answered;
                self.hang_up();
                Some(FarEvent::Failed(488))
            }
        }
    }

    /// A 422 to our INVITE: the INVITE again as a new transaction, asking for the
    /// interval the far end wants (RFC 4028 7.4).
    fn invite_again(&mut self) {
        let mut next = next_attempt(&self.invite);
        next.headers.retain(|h| {
            !matches!(h, Header::Other(name, _)
                if name.eq_ignore_ascii_case("Session-Expires") || name.eq_ignore_ascii_case("Min-SE"))
        });
        next.headers.extend(self.session.invite_headers());
        debug!(far_call = %self.call_id, "422: asking for a longer session interval");
        self.invite = next.clone();
        self.out.push_back(LegOutput::Sip(Box::new(Command::Send {
            peer: self.peer,
            request: next,
        })));
    }

    /// Ends the leg: CANCEL while it rings, BYE once answered. Responses are not waited
    /// for; the transactions finish them.
    pub(super) fn hang_up(&mut self) {
        let request = match self.state {
            State::Calling | State::Ringing => Some((self.peer, cancel_for(&self.invite))),
            State::Answered => self
                .dialog
                .as_mut()
                .map(|d| (d.next_hop(), d.request(Method::Bye, &host_port(self.local)))),
            State::Ended => None,
        };
        self.state = State::Ended;
        if let Some((peer, request)) = request {
            self.out
                .push_back(LegOutput::Sip(Box::new(Command::Send { peer, request })));
        }
    }
}

/// A request of ours that carried our answer to a challenge.
#[derive(Debug)]
struct Answered {
    /// Its CSeq.
    seq: u32,
    method: Method,
    nonce: String,
    /// The nonce's uses so far (the `nc` of our last answer).
    uses: u32,
}

/// We offer SRTP on a leg that must be encrypted.
fn offers_srtp(media: &MediaSetup) -> bool {
    media.security.encryption == Encryption::Required
}

/// Our side of the leg's media as SDP describes it (sending and receiving), with
/// `codecs` and telephone-events as `dtmf_pt`, at SDP `version`.
fn local_media<'a>(
    local: SocketAddr,
    media: &'a MediaSetup,
    codecs: &'a [Codec],
    dtmf_pt: Option<u8>,
    version: u64,
) -> LocalMedia<'a> {
    LocalMedia {
        ip: local.ip(),
        port: media.port,
        session_id: media.session_id,
        version,
        codecs,
        dtmf_pt,
        direction: Direction::SendRecv,
        master: &media.security.master,
        offer_srtp: offers_srtp(media).then_some(Suite::AesCm128HmacSha1_80),
    }
}

/// The INVITE again as a new transaction (RFC 3261 22.2): the next CSeq, a fresh branch.
fn next_attempt(invite: &Request) -> Request {
    let mut next = invite.clone();
    let seq = headers::cseq(&invite.headers).map_or(1, |(n, _)| n) + 1;
    let mut via_done = false;
    for h in next.headers.iter_mut() {
        match h {
            Header::CSeq(_) => *h = Header::CSeq(format!("{seq} INVITE").into()),
            Header::Via(v) if !via_done => {
                via_done = true;
                let value = v.value().to_owned();
                let fresh = match value.split_once(";branch=") {
                    Some((head, rest)) => {
                        let tail = rest.find(';').map_or("", |i| &rest[i..]);
                        format!("{head};branch={}{tail}", build::new_branch())
                    }
                    None => value,
                };
                *h = Header::Via(fresh.into());
            }
            _ => {}
        }
    }
    next
}

/// RFC 3261 9.1: same Request-URI, top Via, From, To, Call-ID and CSeq number as the INVITE.
pub(super) fn cancel_for(invite: &Request) -> Request {
    let mut h = Headers::default();
    let mut via_done = false;
    for header in invite.headers.iter() {
        match header {
            Header::Via(_) if !via_done => {
                h.push(header.clone());
                via_done = true;
            }
            Header::From(_)
            | Header::To(_)
            | Header::CallId(_)
            | Header::MaxForwards(_)
            | Header::Route(_) => h.push(header.clone()),
            _ => {}
        }
    }
    let seq = headers::cseq(&invite.headers).map_or(1, |(s, _)| s);
    h.push(Header::CSeq(format!("{seq} CANCEL").into()));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers: h,
        body: Vec::new(),
    }
}

/// A SIP user part made of the caller's number (digits and `+`), or `anonymous`.
fn user_part(caller: &str) -> String {
    let user: String = caller
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .collect();
    if user.is_empty() {
        "anonymous".into()
    } else {
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_copies_the_invite_identity() {
        let text = "INVITE sip:1001@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n\
From: <sip:138@127.0.0.1>;tag=f\r\nTo: <sip:1001@127.0.0.1:5080>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:hotline@127.0.0.1>\r\nContent-Length: 0\r\n\r\n";
        let Ok(rsip::SipMessage::Request(invite)) =
            crate::sip::parse::parse(text.as_bytes(), crate::sip::Transport::Udp)
        else {
            panic!("test INVITE parses");
        };
        let cancel = cancel_for(&invite);
        let wire = String::from_utf8(build::encode(&rsip::SipMessage::Request(cancel)).to_vec())
            .expect("utf8");
        assert!(
            wire.starts_with("CANCEL sip:1001@127.0.0.1:5080 SIP/2.0\r\n"),
            "{wire}"
        );
        assert!(wire.contains("branch=z9hG4bKabc"), "{wire}");
        assert!(wire.contains("CSeq: 1 CANCEL"), "{wire}");
        assert!(wire.contains("To: <sip:1001@127.0.0.1:5080>\r\n"), "{wire}");
    }
}
