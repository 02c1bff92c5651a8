//! The caller's leg of a call: answering the INVITE (SDP offer/answer, 180, 200, the ACK),
//! keeping the dialog (re-INVITE for hold and resume, OPTIONS and INFO inside it, BYE either
//! way) and its media. The flow above it only sees `LegEvent`s and asks for prompts and a
//! hang-up; SIP details stay here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsip::{Header, Method, Request, Response};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::endpoint::{CallEvent, EndpointHandle, IncomingCall};
use crate::events::HungUpBy;
use crate::media::clip::Clip;
use crate::media::g711::Law;
use crate::media::sdp::{Direction, LocalMedia, Negotiated, Reach, RemoteMedia, SdpError};
use crate::media::session::{PlayId, SessionEvent};
use crate::media::worker::{Media, MediaLeg};
use crate::sip::dialog::Dialog;
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::uri::SipUri;
use crate::sip::{build, headers};

/// RFC 4733 payload type we offer when the peer made no offer.
const DTMF_PT: u8 = 101;
/// How long we wait for the answer to our BYE.
const BYE_WAIT: Duration = Duration::from_secs(32);

/// What happened on the caller's leg, for the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
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

/// The caller's leg after a successful answer.
pub struct InboundLeg {
    pub call_id: String,
    /// The caller's number (user part of From) and the number called (Request-URI user).
    pub caller: String,
    pub called: String,
    /// The named trunk the call came in on.
    pub trunk: Option<String>,
    endpoint: EndpointHandle,
    events: mpsc::UnboundedReceiver<CallEvent>,
    dialog: Dialog,
    media: MediaLeg,
    laws: Vec<Law>,
    local: SocketAddr,
    /// Where the call's audio may go.
    reach: Reach,
    sdp_version: u64,
    session_id: u64,
    dtmf_pt: Option<u8>,
    /// Waiting for the ACK of our 200 (and, for a late offer, its SDP).
    awaiting_ack: bool,
    /// Offer/answer is done and RTP flows (false until the ACK of a late offer).
    media_started: bool,
    ended: bool,
}

/// The call never got connected: it was refused with the right status, cancelled, or
/// hung up or abandoned before its ACK. Nothing is left to clean up.
#[derive(Debug)]
pub struct NotConnected;

impl InboundLeg {
    /// Answers `call`: 180, then after `ring` the 200 with our SDP. Rejects it (and returns
    /// `Err`) when the offer is unusable, no RTP port is free, or the caller cancels.
    pub async fn answer(
        media: &Media,
        mut call: IncomingCall,
        ring: Duration,
    ) -> Result<InboundLeg, NotConnected> {
        let invite = &call.invite;
        let call_id = headers::call_id(&invite.headers)
            .unwrap_or_default()
            .to_owned();
        let reject = |code: u16, warning: Option<String>| {
            reject_invite(&call, code, warning);
            NotConnected
        };
        let reach = media.reach(call.local.ip(), call.peer.addr.ip());
        let remote = match invite.body.is_empty() {
            true => None,
            false => match RemoteMedia::parse(&invite.body) {
                Ok(r) => Some(r),
                Err(e @ SdpError::Malformed(_)) => return Err(reject(400, Some(e.to_string()))),
                Err(e) => return Err(reject(488, Some(e.to_string()))),
            },
        };
        let negotiated = match &remote {
            Some(r) => match r.negotiate(media.laws(), &reach) {
                Ok(n) => Some(n),
                Err(e) => return Err(reject(488, Some(e.to_string()))),
            },
            None => None,
        };
        let local_tag = build::new_tag();
        let contact = format!(
            "<sip:hotline@{}{}>",
            host_port(call.local),
            if call.peer.transport.is_reliable() {
                ";transport=tcp"
            } else {
                ""
            }
        );
        let dialog = match Dialog::uas(invite, &local_tag, call.peer, contact) {
            Ok(d) => d,
            Err(e) => return Err(reject(400, Some(e.to_string()))),
        };
        let mut leg_media = match media.open(call.local.ip(), call.peer.addr.ip(), &call_id) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "no media for the call");
                return Err(reject(503, Some(e.to_string())));
            }
        };
        if let Some(n) = negotiated {
            note_redirect(&n);
            leg_media.start(n);
        }
        let uri_user = |u: &str| {
            crate::sip::uri::SipUri::parse(u)
                .and_then(|u| u.user)
                .unwrap_or_default()
        };
        let mut leg = InboundLeg {
            caller: uri_user(headers::addr_uri(
                headers::from(&invite.headers).unwrap_or_default(),
            )),
            called: called_number(invite),
            trunk: call.trunk.clone(),
            call_id,
            endpoint: call.endpoint.clone(),
            events: std::mem::replace(&mut call.events, mpsc::unbounded_channel().1),
            dialog,
            laws: negotiated.map_or_else(|| media.laws().to_vec(), |n| vec![n.law]),
            dtmf_pt: match &remote {
                Some(r) => r.dtmf_pt,
                None => Some(DTMF_PT),
            },
            media: leg_media,
            local: call.local,
            reach,
            sdp_version: 1,
            session_id: rand::random::<u32>() as u64,
            awaiting_ack: true,
            media_started: negotiated.is_some(),
            ended: false,
        };
        leg.send_response(call.tx, invite, 180, None);
        if !ring.is_zero()
            && let Err(code) = leg.ring(ring).await
        {
            leg.send_response(call.tx, invite, code, None);
            leg.endpoint.unroute(leg.call_id.clone());
            return Err(NotConnected);
        }
        let sdp = leg.local_sdp(
            remote.as_ref(),
            negotiated.map_or(Direction::SendRecv, |n| n.direction),
        );
        leg.send_response(call.tx, invite, 200, Some(sdp));
        info!(caller = %leg.caller, called = %leg.called, "answered");
        // RFC 3261 15: no BYE (and no flow) before the ACK confirms the dialog.
        while leg.awaiting_ack {
            let Some(ev) = leg.events.recv().await else {
                return Err(NotConnected);
            };
            if let Some(LegEvent::Ended(reason)) = leg.on_sip(ev) {
                info!(?reason, "ended before the ACK");
                return Err(NotConnected);
            }
        }
        Ok(leg)
    }

    /// Waits out the ringing time; `Err` with the status to end the INVITE with when the
    /// caller cancels (487) or the engine stops (503) meanwhile.
    async fn ring(&mut self, ring: Duration) -> Result<(), u16> {
        let until = tokio::time::Instant::now() + ring;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                ev = self.events.recv() => match ev {
                    None | Some(CallEvent::Cancelled { .. }) => return Err(487),
                    Some(CallEvent::Shutdown) => return Err(503),
                    Some(other) => debug!(event = ?other, "while ringing: ignored"),
                },
            }
        }
    }

    fn local_sdp(&self, remote: Option<&RemoteMedia>, direction: Direction) -> String {
        LocalMedia {
            ip: self.local.ip(),
            port: self.media.port,
            session_id: self.session_id,
            version: self.sdp_version,
            laws: &self.laws,
            dtmf_pt: self.dtmf_pt,
            direction,
        }
        .to_sdp(remote)
    }

    fn send_response(&self, tx: ServerTxId, req: &Request, code: u16, sdp: Option<String>) {
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
        self.endpoint.respond(tx, r);
    }

    /// Queues a clip; `LegEvent::PlayDone(id)` follows when it has played.
    pub fn play(&self, id: PlayId, clip: Arc<Clip>) {
        self.media.play(id, clip);
    }

    /// Stops what plays (barge-in).
    pub fn stop(&self) {
        self.media.stop();
    }

    pub fn media(&self) -> &MediaLeg {
        &self.media
    }

    /// The next thing the flow must know about. Dialog housekeeping (re-INVITE, OPTIONS,
    /// INFO, stray responses) is done here without bothering the flow.
    pub async fn next_event(&mut self) -> LegEvent {
        if self.ended {
            return LegEvent::Ended(EndReason::Shutdown);
        }
        loop {
            tokio::select! {
                ev = self.events.recv() => {
                    let Some(ev) = ev else { return self.end(EndReason::Shutdown) };
                    if let Some(out) = self.on_sip(ev) {
                        return out;
                    }
                }
                ev = self.media.events.recv() => match ev {
                    Some(SessionEvent::Dtmf(key)) => {
                        info!(%key, "DTMF");
                        return LegEvent::Dtmf(key);
                    }
                    Some(SessionEvent::PlayDone(id)) => return LegEvent::PlayDone(id),
                    Some(SessionEvent::Timeout) => {
                        info!("media timeout: the caller's RTP stopped");
                        self.bye().await;
                        return self.end(EndReason::MediaTimeout);
                    }
                    None => return self.end(EndReason::Shutdown),
                },
            }
        }
    }

    fn end(&mut self, reason: EndReason) -> LegEvent {
        self.ended = true;
        LegEvent::Ended(reason)
    }

    fn on_sip(&mut self, ev: CallEvent) -> Option<LegEvent> {
        match ev {
            CallEvent::Cancelled { .. } => None, // Already answered: a late CANCEL changes nothing.
            CallEvent::Ack { request } => {
                if self.awaiting_ack {
                    self.awaiting_ack = false;
                    if !self.media_started {
                        self.start_from_answer(&request.body);
                    }
                }
                None
            }
            CallEvent::Shutdown => {
                info!("the engine is stopping: hanging up");
                self.send_bye();
                Some(self.end(EndReason::Shutdown))
            }
            CallEvent::AckTimeout => {
                warn!("no ACK for our 200: ending the call");
                // The caller never confirmed; a BYE tells it (and any proxy) we are done.
                self.send_bye();
                Some(self.end(EndReason::NoAck))
            }
            CallEvent::Request { tx, request, .. } => self.in_dialog(tx, request),
            CallEvent::Response { .. } | CallEvent::Timeout { .. } => None,
        }
    }

    /// A late offer: our 200 carried the offer, the caller's ACK the answer.
    fn start_from_answer(&mut self, body: &[u8]) {
        match RemoteMedia::parse(body)
            .and_then(|r| r.negotiate(&self.laws, &self.reach).map(|n| (r, n)))
        {
            Ok((remote, n)) => {
                note_redirect(&n);
                self.laws = vec![n.law];
                self.dtmf_pt = remote.dtmf_pt;
                self.media_started = true;
                self.media.start(Negotiated {
                    direction: Direction::SendRecv,
                    ..n
                });
            }
            Err(e) => warn!(error = %e, "the ACK carried no usable SDP answer"),
        }
    }

    fn in_dialog(&mut self, tx: ServerTxId, req: Request) -> Option<LegEvent> {
        if !self.dialog.matches(&req) {
            self.send_response(tx, &req, 481, None);
            return None;
        }
        if let Err(e) = self.dialog.accept_remote_cseq(&req) {
            debug!(error = %e, "out-of-order request");
            self.send_response(tx, &req, 500, None);
            return None;
        }
        match req.method {
            Method::Bye => {
                self.send_response(tx, &req, 200, None);
                info!("caller hung up");
                Some(self.end(EndReason::CallerHungUp))
            }
            Method::Invite => {
                self.reinvite(tx, &req);
                None
            }
            Method::Info => {
                self.send_response(tx, &req, 200, None);
                sip_info_key(&req).map(LegEvent::Dtmf)
            }
            Method::Options => {
                self.send_response(tx, &req, 200, None);
                None
            }
            _ => {
                self.send_response(tx, &req, 405, None);
                None
            }
        }
    }

    /// A re-INVITE: hold, resume or a moved peer (RFC 3264 8). Answers with the same codec.
    fn reinvite(&mut self, tx: ServerTxId, req: &Request) {
        self.dialog.refresh_target(req);
        self.sdp_version += 1;
        if req.body.is_empty() {
            let sdp = self.local_sdp(None, Direction::SendRecv);
            self.awaiting_ack = true;
            return self.send_response(tx, req, 200, Some(sdp));
        }
        let negotiated = RemoteMedia::parse(&req.body)
            .and_then(|r| r.negotiate(&self.laws, &self.reach).map(|n| (r, n)));
        match negotiated {
            Ok((remote, n)) => {
                info!(hold = remote.is_hold(), "re-INVITE");
                note_redirect(&n);
                self.media_started = true;
                self.media.start(n);
                let sdp = self.local_sdp(Some(&remote), n.direction);
                self.send_response(tx, req, 200, Some(sdp));
            }
            Err(e) => {
                debug!(error = %e, "re-INVITE offer refused");
                self.send_response(tx, req, 488, None);
            }
        }
    }

    fn send_bye(&mut self) {
        let bye = self.dialog.request(Method::Bye, &host_port(self.local));
        self.endpoint.send(self.dialog.next_hop(), bye);
    }

    /// Hangs up: sends BYE and waits (bounded) for its answer.
    pub async fn bye(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.send_bye();
        let deadline = tokio::time::Instant::now() + BYE_WAIT;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                ev = self.events.recv() => match ev {
                    None => return,
                    Some(CallEvent::Response { response }) if is_bye(&response) && response.status_code.code() >= 200 => return,
                    Some(CallEvent::Timeout { method: Method::Bye, .. }) => return,
                    Some(CallEvent::Request { tx, request, .. }) => {
                        // Both sides hung up at once: answer theirs too.
                        let code = if request.method == Method::Bye { 200 } else { 481 };
                        self.send_response(tx, &request, code, None);
                        if request.method == Method::Bye {
                            return;
                        }
                    }
                    Some(_) => {}
                },
            }
        }
    }

    pub fn peer(&self) -> Peer {
        self.dialog.next_hop()
    }
}

impl Drop for InboundLeg {
    fn drop(&mut self) {
        self.endpoint.unroute(self.call_id.clone());
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

/// Refuses a call before answering it (no dialplan for the number, ...).
pub fn refuse(call: IncomingCall, code: u16) {
    reject_invite(&call, code, None);
}

fn reject_invite(call: &IncomingCall, code: u16, warning: Option<String>) {
    let mut r = build::response(&call.invite, code, Some(&build::new_tag()));
    if let Some(w) = warning {
        r.headers
            .push(Header::Warning(format!("399 hotline \"{w}\"").into()));
    }
    call.endpoint.respond(call.tx, r);
    let call_id = headers::call_id(&call.invite.headers).unwrap_or_default();
    call.endpoint.unroute(call_id.to_owned());
}

/// The number dialled: the user part of the Request-URI, else of the To URI.
pub fn called_number(invite: &Request) -> String {
    let user = |u: &str| {
        SipUri::parse(u)
            .and_then(|u| u.user)
            .filter(|u| !u.is_empty())
    };
    user(&invite.uri.to_string())
        .or_else(|| {
            user(headers::addr_uri(
                headers::to(&invite.headers).unwrap_or_default(),
            ))
        })
        .unwrap_or_default()
}

fn is_bye(r: &Response) -> bool {
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

/// `host:port` with IPv6 brackets.
pub fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
