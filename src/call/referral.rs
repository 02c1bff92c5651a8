//! A REFER we take (RFC 3515), on either side of a call: what its Refer-To asks for (a
//! blind transfer to a SIP URI; an attended one, with Replaces, is not taken), the answer
//! that refuses it, and the NOTIFYs (`message/sipfrag`) that report how the transfer goes
//! on the referrer's dialog. It owns no state: the legs keep whether a subscription is
//! active; it must not send anything.

use std::net::SocketAddr;

use rsip::{Header, Method, Request, Response};

use super::incoming::warning;
use crate::sip::dialog::Dialog;
use crate::sip::transaction::Peer;
use crate::sip::uri::{host_port, to_rsip};
use crate::sip::{build, headers};

/// The SIP URI a REFER asks us to call, or the status (and why) that refuses it.
pub(super) fn target(request: &Request) -> Result<String, (u16, &'static str)> {
    let target =
        headers::other_value(&request.headers, "Refer-To").map(|v| headers::addr_uri(v).to_owned());
    match target {
        Some(t) if t.to_ascii_lowercase().contains("replaces") => {
            Err((501, "attended transfer (Replaces) is not supported"))
        }
        Some(t) if to_rsip(&t).is_some() => Ok(t),
        _ => Err((400, "Refer-To is missing or not a SIP URI")),
    }
}

/// The answer that turns `request` down with `code`, saying why in a Warning when there is
/// something to say.
pub(super) fn refusal(request: &Request, code: u16, why: &str) -> Response {
    let mut r = build::response(request, code, None);
    if !why.is_empty() {
        r.headers.push(warning(code, why));
    }
    r
}

/// The 202 that takes a REFER on `dialog` (its Contact: the subscription's other end).
pub(super) fn accepted(request: &Request, dialog: &Dialog) -> Response {
    let mut ok = build::response(request, 202, None);
    ok.headers
        .push(Header::Contact(dialog.local_contact.clone().into()));
    ok
}

/// The NOTIFY on `dialog` that tells the referrer the transfer reached `code` (RFC 3515
/// 2.4.4), and where it goes; a final status ends the subscription.
pub(super) fn notify(dialog: &mut Dialog, local: SocketAddr, code: u16) -> (Request, Peer) {
    let mut n = dialog.request(Method::Notify, &host_port(local));
    let h = &mut n.headers;
    h.push(Header::Contact(dialog.local_contact.clone().into()));
    h.push(Header::Event("refer".into()));
    h.push(Header::Other(
        "Subscription-State".into(),
        if code >= 200 {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        }
        .into(),
    ));
    h.push(Header::ContentType("message/sipfrag;version=2.0".into()));
    n.body = format!("SIP/2.0 {code} {}\r\n", build::reason_phrase(code)).into_bytes();
    (n, dialog.next_hop())
}
