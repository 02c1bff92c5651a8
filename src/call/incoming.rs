//! A new call's INVITE, read once at the edge into what the call works on: who calls (and
//! whom they first called), the number called, the trunk it came in on, the SDP offer, the
//! extensions the caller's side supports (100rel, session timers) and the dialog an answer
//! creates. Nothing after this digs in the INVITE's headers again. Pure: no I/O.

#![warn(unreachable_pub, missing_docs)]

use std::net::SocketAddr;

use rsip::{Header, Request, Response};

use super::identity::{self, Identity};
use crate::media::sdp::{RemoteMedia, SdpError};
use crate::sip::dialog::Dialog;
use crate::sip::session_timer::{self, Agreement, Ask, TimerSettings};
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::uri::{SipUri, host_port};
use crate::sip::{build, headers};

/// A new call as the call core sees it.
#[derive(Debug, Clone)]
pub struct Invite {
    pub call_id: String,
    /// Who calls (the asserted number before the From user) and whom they first called.
    pub identity: Identity,
    /// The number dialled: the user part of the Request-URI, else of To.
    pub called: String,
    /// The named trunk the call came in on.
    pub trunk: Option<String>,
    /// The caller's SDP offer; `None` for a late offer (ours goes in the 200, theirs
    /// answers it in the ACK).
    pub offer: Option<RemoteMedia>,
    /// The dialog our answer creates, with our tag.
    pub dialog: Dialog,
    /// What the caller's side says of reliable provisional responses (RFC 3262).
    pub hundred_rel: HundredRel,
    /// The session timer our answer agrees to (RFC 4028), if any.
    pub session: Option<Agreement>,
    /// The INVITE's server transaction and the request its responses are built from.
    pub tx: ServerTxId,
    pub request: Request,
    /// Where it came from, and our address as that peer reaches us.
    pub peer: Peer,
    pub local: SocketAddr,
}

/// Whether the caller's side takes reliable provisional responses (RFC 3262).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HundredRel {
    /// It does not know them.
    No,
    /// `Supported: 100rel`: we may send them.
    Supported,
    /// `Require: 100rel`: every provisional but 100 must be.
    Required,
}

/// Why an INVITE cannot become a call: the status to answer it with, what to tell the
/// peer in a Warning, and any header the status needs (Min-SE with a 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub warning: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(code: u16) -> Refusal {
        Refusal {
            code,
            warning: None,
            headers: Vec::new(),
        }
    }

    /// `code`, with a Warning saying why.
    pub fn because(code: u16, why: String) -> Refusal {
        Refusal {
            warning: Some(why),
            ..Refusal::new(code)
        }
    }

    /// The final response refusing `invite`.
    pub fn response(&self, invite: &Request) -> Response {
        let mut r = build::response(invite, self.code, Some(&build::new_tag()));
        if let Some(w) = &self.warning {
            r.headers.push(warning(self.code, w));
        }
        for (name, value) in &self.headers {
            r.headers.push(Header::Other((*name).into(), value.clone()));
        }
        r
    }
}

/// A Warning for a refusal (RFC 3261 20.43): 305 "incompatible media format" for an
/// offer we cannot take, 399 otherwise.
pub(super) fn warning(code: u16, text: &str) -> Header {
    let warn_code = if code == 488 { 305 } else { 399 };
    let text = text.replace(['"', '\r', '\n'], "'");
    Header::Warning(format!("{warn_code} hotline \"{text}\"").into())
}

impl Invite {
    /// Reads `request` (received in `tx` from `peer`, reaching us at `local`); our answer
    /// will carry `local_tag` and agree to a session timer as `timers` says. An unusable
    /// offer or dialog is refused (400, 488), a session interval below our Min-SE too (422),
    /// and the request given back to answer it.
    pub fn read(
        request: Request,
        tx: ServerTxId,
        peer: Peer,
        local: SocketAddr,
        trunk: Option<String>,
        local_tag: &str,
        timers: &TimerSettings,
    ) -> Result<Invite, Box<(Refusal, Request)>> {
        let refusal = Refusal::because;
        let session = match session_timer::answer(&Ask::read(&request.headers), timers, None) {
            Ok(s) => s,
            Err(min_se) => {
                let mut r =
                    Refusal::because(422, format!("the session interval is below {min_se} s"));
                r.headers.push(("Min-SE", min_se.to_string()));
                return Err(Box::new((r, request)));
            }
        };
        let hundred_rel = if headers::lists_tag(&request.headers, headers::pick_require, "100rel") {
            HundredRel::Required
        } else if headers::lists_tag(&request.headers, headers::pick_supported, "100rel") {
            HundredRel::Supported
        } else {
            HundredRel::No
        };
        let offer = match request.body.is_empty() {
            true => None,
            false => match RemoteMedia::parse(&request.body) {
                Ok(r) => Some(r),
                Err(e @ SdpError::Malformed(_)) => {
                    return Err(Box::new((refusal(400, e.to_string()), request)));
                }
                Err(e) => return Err(Box::new((refusal(488, e.to_string()), request))),
            },
        };
        let contact = format!(
            "<sip:hotline@{}{}>",
            host_port(local),
            peer.transport.uri_param()
        );
        let dialog = match Dialog::uas(&request, local_tag, peer, contact) {
            Ok(d) => d,
            Err(e) => return Err(Box::new((refusal(400, e.to_string()), request))),
        };
        Ok(Invite {
            call_id: dialog.call_id.clone(),
            identity: identity::read(&request.headers),
            called: called_number(&request),
            trunk,
            offer,
            dialog,
            hundred_rel,
            session,
            tx,
            request,
            peer,
            local,
        })
    }
}

fn uri_user(uri: &str) -> Option<String> {
    SipUri::parse(uri)
        .and_then(|u| u.user)
        .filter(|u| !u.is_empty())
}

/// The number dialled: the user part of the Request-URI, else of the To URI.
fn called_number(invite: &Request) -> String {
    uri_user(&invite.uri.to_string())
        .or_else(|| {
            uri_user(headers::addr_uri(
                headers::to(&invite.headers).unwrap_or_default(),
            ))
        })
        .unwrap_or_default()
}
