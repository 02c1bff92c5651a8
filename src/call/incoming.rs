//! A new call's INVITE, read once at the edge into what the call works on: who calls, the
//! number called, the trunk it came in on, the SDP offer and the dialog an answer creates.
//! Nothing after this digs in the INVITE's headers again. Pure: no I/O.

#![warn(unreachable_pub, missing_docs)]

use std::net::SocketAddr;

use rsip::{Header, Request, Response};

use crate::media::sdp::{RemoteMedia, SdpError};
use crate::sip::dialog::Dialog;
use crate::sip::transaction::{Peer, ServerTxId};
use crate::sip::uri::SipUri;
use crate::sip::{build, headers};

/// A new call as the call core sees it.
#[derive(Debug, Clone)]
pub struct Invite {
    pub call_id: String,
    /// The caller's number: the user part of From (`anonymous` when withheld).
    pub caller: String,
    /// The number dialled: the user part of the Request-URI, else of To.
    pub called: String,
    /// The named trunk the call came in on.
    pub trunk: Option<String>,
    /// The caller's SDP offer; `None` for a late offer (ours goes in the 200, theirs
    /// answers it in the ACK).
    pub offer: Option<RemoteMedia>,
    /// The dialog our answer creates, with our tag.
    pub dialog: Dialog,
    /// The INVITE's server transaction and the request its responses are built from.
    pub tx: ServerTxId,
    pub request: Request,
    /// Where it came from, and our address as that peer reaches us.
    pub peer: Peer,
    pub local: SocketAddr,
}

/// Why an INVITE cannot become a call: the status to answer it with, and what to tell the
/// peer in a Warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub warning: Option<String>,
}

impl Refusal {
    pub fn new(code: u16) -> Refusal {
        Refusal {
            code,
            warning: None,
        }
    }

    /// The final response refusing `invite`.
    pub fn response(&self, invite: &Request) -> Response {
        let mut r = build::response(invite, self.code, Some(&build::new_tag()));
        if let Some(w) = &self.warning {
            r.headers
                .push(Header::Warning(format!("399 hotline \"{w}\"").into()));
        }
        r
    }
}

impl Invite {
    /// Reads `request` (received in `tx` from `peer`, reaching us at `local`); our answer
    /// will carry `local_tag`. An unusable offer or dialog is refused (400, 488), and the
    /// request given back to answer it.
    pub fn read(
        request: Request,
        tx: ServerTxId,
        peer: Peer,
        local: SocketAddr,
        trunk: Option<String>,
        local_tag: &str,
    ) -> Result<Invite, Box<(Refusal, Request)>> {
        let refusal = |code: u16, why: String| Refusal {
            code,
            warning: Some(why),
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
            if peer.transport.is_reliable() {
                ";transport=tcp"
            } else {
                ""
            }
        );
        let dialog = match Dialog::uas(&request, local_tag, peer, contact) {
            Ok(d) => d,
            Err(e) => return Err(Box::new((refusal(400, e.to_string()), request))),
        };
        let caller = uri_user(headers::addr_uri(
            headers::from(&request.headers).unwrap_or_default(),
        ))
        .unwrap_or_default();
        Ok(Invite {
            call_id: dialog.call_id.clone(),
            caller,
            called: called_number(&request),
            trunk,
            offer,
            dialog,
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

/// `host:port` with IPv6 brackets.
pub(super) fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
