//! The agent's leg of a call (the B2BUA's UAC side): INVITE to the agent's phone with the
//! call's context in headers, CANCEL while it rings, the ACK and dialog once it answers,
//! BYE either way, and its media opened beside the caller's so the two can be bridged.

use std::net::SocketAddr;

use rsip::{Header, Headers, Method, Request};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::endpoint::{CallEvent, EndpointHandle};
use crate::media::g711::Law;
use crate::media::sdp::{Direction, LocalMedia, Reach, RemoteMedia};
use crate::media::session::SessionEvent;
use crate::media::worker::{Media, MediaError, MediaLeg};
use crate::sip::dialog::Dialog;
use crate::sip::transaction::Peer;
use crate::sip::uri::{SipUri, to_rsip};
use crate::sip::{Transport, build, headers};

use super::core::{DialContext, FarEvent};
use super::inbound::host_port;

const DTMF_PT: u8 = 101;

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("agent target {0:?} is not a SIP URI")]
    BadTarget(String),
    #[error("cannot resolve agent target {0:?}")]
    Unresolvable(String),
    #[error(transparent)]
    Media(#[from] MediaError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Ringing,
    Answered,
    Ended,
}

pub struct AgentLeg {
    pub call_id: String,
    invite: Request,
    peer: Peer,
    local: SocketAddr,
    /// Where the leg's audio may go.
    reach: Reach,
    endpoint: EndpointHandle,
    events: mpsc::UnboundedReceiver<CallEvent>,
    media: MediaLeg,
    dialog: Option<Dialog>,
    state: State,
    cancelled: bool,
}

impl AgentLeg {
    /// INVITEs `target` (a registered contact or a trunk URI) for the call whose caller's
    /// media is `beside`.
    pub async fn dial(
        media: &Media,
        endpoint: &EndpointHandle,
        beside: &MediaLeg,
        target: &str,
        context: &DialContext,
    ) -> Result<AgentLeg, DialError> {
        let uri = SipUri::parse(target).ok_or_else(|| DialError::BadTarget(target.to_owned()))?;
        let addr = match uri.socket_addr() {
            Some(a) => a,
            None => tokio::net::lookup_host((uri.host, uri.port.unwrap_or(5060)))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| DialError::Unresolvable(target.to_owned()))?,
        };
        let transport = uri.transport();
        let peer = Peer {
            transport,
            addr,
            conn: None,
        };
        let local = endpoint.local_addr(peer);
        let call_id = build::new_call_id();
        let leg_media =
            media.open_beside(beside, local.ip(), addr.ip(), &format!("{call_id}-agent"))?;
        let sdp = LocalMedia {
            ip: local.ip(),
            port: leg_media.port,
            session_id: rand::random::<u32>() as u64,
            version: 1,
            laws: media.laws(),
            dtmf_pt: Some(DTMF_PT),
            direction: Direction::SendRecv,
        }
        .to_sdp(None);
        let request_uri = to_rsip(target).ok_or_else(|| DialError::BadTarget(target.to_owned()))?;
        let tcp = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let caller = context.caller.replace(['"', '\\', '<', '>'], "");
        let mut h = Headers::default();
        h.push(Header::Via(
            format!(
                "SIP/2.0/{} {};branch={};rport",
                transport.as_str(),
                host_port(local),
                build::new_branch()
            )
            .into(),
        ));
        h.push(Header::MaxForwards("70".into()));
        h.push(Header::From(
            format!(
                "\"{caller}\" <sip:{}@{}>;tag={}",
                user_part(&caller),
                host_port(local),
                build::new_tag()
            )
            .into(),
        ));
        h.push(Header::To(format!("<{target}>").into()));
        h.push(Header::CallId(call_id.clone().into()));
        h.push(Header::CSeq("1 INVITE".into()));
        h.push(Header::Contact(
            format!("<sip:hotline@{}{tcp}>", host_port(local)).into(),
        ));
        h.push(Header::Allow(crate::sip::ALLOW.into()));
        let mut extra = vec![
            ("X-Hotline-Caller", percent_encode(&context.caller)),
            ("X-Hotline-Language", percent_encode(&context.language)),
        ];
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
        let (tx, events) = mpsc::unbounded_channel();
        endpoint.route(call_id.clone(), tx);
        endpoint.send(peer, invite.clone());
        info!(agent_call = %call_id, %target, "offering the call to an agent");
        Ok(AgentLeg {
            call_id,
            invite,
            peer,
            local,
            reach: media.reach(local.ip(), peer.addr.ip()),
            endpoint: endpoint.clone(),
            events,
            media: leg_media,
            dialog: None,
            state: State::Calling,
            cancelled: false,
        })
    }

    pub fn media(&self) -> &MediaLeg {
        &self.media
    }

    /// The next thing the call must know about the agent's side.
    pub async fn next_event(&mut self) -> FarEvent {
        loop {
            if self.state == State::Ended {
                return std::future::pending().await;
            }
            tokio::select! {
                ev = self.events.recv() => {
                    let Some(ev) = ev else {
                        self.state = State::Ended;
                        return FarEvent::Failed(503);
                    };
                    if let Some(out) = self.on_sip(ev) {
                        return out;
                    }
                }
                ev = self.media.events.recv() => {
                    if ev == Some(SessionEvent::Timeout) && self.state == State::Answered {
                        info!(agent_call = %self.call_id, "agent media timeout");
                        self.hang_up();
                        return FarEvent::MediaTimeout;
                    }
                }
            }
        }
    }

    fn on_sip(&mut self, ev: CallEvent) -> Option<FarEvent> {
        match ev {
            CallEvent::Response { response } => {
                let is_invite =
                    headers::cseq(&response.headers).is_some_and(|(_, m)| m == Method::Invite);
                if !is_invite {
                    return None;
                }
                let code = response.status_code.code();
                match code {
                    100 => None,
                    101..=199 if self.state == State::Calling => {
                        self.state = State::Ringing;
                        Some(FarEvent::Ringing)
                    }
                    101..=199 => None,
                    200..=299 => self.answered(&response),
                    _ if self.state == State::Ended => None,
                    _ => {
                        self.state = State::Ended;
                        Some(FarEvent::Failed(code))
                    }
                }
            }
            CallEvent::Timeout { method, .. }
                if method == Method::Invite && self.state != State::Ended =>
            {
                self.state = State::Ended;
                Some(FarEvent::Failed(408))
            }
            CallEvent::Request { tx, request, .. } => {
                let code = match (&request.method, &mut self.dialog) {
                    (Method::Bye, Some(d)) if d.matches(&request) => 200,
                    (Method::Options, Some(d)) if d.matches(&request) => 200,
                    (Method::Invite, Some(d)) if d.matches(&request) => {
                        // A re-INVITE (the phone holds or moves): keep media as it is.
                        let _ = d.accept_remote_cseq(&request);
                        200
                    }
                    _ => 481,
                };
                let mut r = build::response(&request, code, None);
                if request.method == Method::Invite && code == 200 {
                    r.headers
                        .push(Header::ContentType("application/sdp".into()));
                    r.body = self.local_sdp().into_bytes();
                }
                self.endpoint.respond(tx, r);
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
            _ => None,
        }
    }

    /// A 2xx: ACK it (every copy), and on the first start media and the dialog.
    fn answered(&mut self, response: &rsip::Response) -> Option<FarEvent> {
        if self.dialog.is_none() {
            let contact = format!("<sip:hotline@{}>", host_port(self.local));
            match Dialog::uac(&self.invite, response, self.peer, contact) {
                Ok(d) => self.dialog = Some(d),
                Err(e) => {
                    debug!(error = %e, "unusable 2xx from the agent");
                    self.state = State::Ended;
                    return Some(FarEvent::Failed(502));
                }
            }
        }
        let dialog = self.dialog.as_ref()?;
        self.endpoint
            .send_stateless(dialog.next_hop(), dialog.ack(1, &host_port(self.local)));
        if self.state == State::Answered || self.state == State::Ended {
            return None;
        }
        if self.cancelled {
            // It answered while our CANCEL was on its way: hang up at once.
            self.hang_up();
            return Some(FarEvent::Failed(487));
        }
        let negotiated = RemoteMedia::parse(&response.body)
            .and_then(|r| r.negotiate(&[Law::Ulaw, Law::Alaw], &self.reach));
        match negotiated {
            Ok(n) => {
                super::inbound::note_redirect(&n);
                self.media.start(n);
                self.state = State::Answered;
                Some(FarEvent::Answered)
            }
            Err(e) => {
                debug!(error = %e, "the agent's answer has no usable SDP");
                self.hang_up();
                Some(FarEvent::Failed(488))
            }
        }
    }

    fn local_sdp(&self) -> String {
        LocalMedia {
            ip: self.local.ip(),
            port: self.media.port,
            session_id: 1,
            version: 2,
            laws: &[Law::Ulaw, Law::Alaw],
            dtmf_pt: Some(DTMF_PT),
            direction: Direction::SendRecv,
        }
        .to_sdp(None)
    }

    /// Ends the agent's leg: CANCEL while it rings, BYE once answered. Responses are not
    /// waited for; the transactions finish them.
    pub fn hang_up(&mut self) {
        match self.state {
            State::Calling | State::Ringing => {
                self.cancelled = true;
                let cancel = cancel_for(&self.invite);
                self.endpoint.send(self.peer, cancel);
            }
            State::Answered => {
                if let Some(d) = self.dialog.as_mut() {
                    let bye = d.request(Method::Bye, &host_port(self.local));
                    self.endpoint.send(d.next_hop(), bye);
                }
                self.state = State::Ended;
            }
            State::Ended => {}
        }
    }
}

impl Drop for AgentLeg {
    fn drop(&mut self) {
        if matches!(
            self.state,
            State::Calling | State::Ringing | State::Answered
        ) {
            self.hang_up();
        }
        self.endpoint.unroute(self.call_id.clone());
    }
}

/// RFC 3261 9.1: same Request-URI, top Via, From, To, Call-ID and CSeq number as the INVITE.
fn cancel_for(invite: &Request) -> Request {
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

/// RFC 3986 percent-encoding of everything but unreserved characters, so that UTF-8 text
/// (a Mandarin transcript) travels in a header.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::uri::percent_decode;

    #[test]
    fn transcripts_are_percent_encoded_and_come_back() {
        let t = "我想查一下社保 (急)";
        let e = percent_encode(t);
        assert!(e.is_ascii() && !e.contains(' '), "{e}");
        assert_eq!(percent_decode(&e), t);
    }

    #[test]
    fn a_cancel_copies_the_invite_identity() {
        let text = "INVITE sip:1001@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n\
From: <sip:138@127.0.0.1>;tag=f\r\nTo: <sip:1001@127.0.0.1:5080>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:hotline@127.0.0.1>\r\nContent-Length: 0\r\n\r\n";
        let Ok(rsip::SipMessage::Request(invite)) =
            crate::sip::parse::parse(text.as_bytes(), Transport::Udp)
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
