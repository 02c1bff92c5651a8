//! A REFER we take (RFC 3515), on either side of a call: what its Refer-To asks for (a
//! SIP URI to call, and for an attended transfer the dialog the call replaces there, RFC
//! 3891, which goes in our INVITE's Replaces header), the answer that refuses it, and the
//! NOTIFYs (`message/sipfrag`) that report how the transfer goes on the referrer's
//! dialog. It owns no state: the legs keep whether a subscription is active; it must not
//! send anything.

use std::net::SocketAddr;

use rsip::{Header, Method, Request, Response};

use super::incoming::warning;
use crate::sip::dialog::Dialog;
use crate::sip::transaction::Peer;
use crate::sip::uri::{host_port, percent_decode, percent_encode, to_rsip};
use crate::sip::{build, headers};

/// What a REFER asks us to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Referral {
    /// The SIP URI to call, without the Refer-To's header part.
    pub uri: String,
    /// An attended transfer: the dialog at `uri` our call replaces (the value of the
    /// Replaces header the Refer-To carried, unescaped).
    pub replaces: Option<String>,
    /// The referrer wants NOTIFYs of how the transfer goes: it did not ask for none with
    /// `Refer-Sub: false` (RFC 4488), which we honour.
    pub subscribe: bool,
    /// The REFER's CSeq, which names its subscription in our NOTIFYs (RFC 3515 2.4.6).
    pub id: u32,
}

impl Referral {
    /// As a Refer-To of ours writes it: the URI, with the Replaces header for the target
    /// (escaped, RFC 3261 19.1.1) of an attended transfer.
    pub(super) fn refer_to(&self) -> String {
        match &self.replaces {
            Some(r) => format!("{}?Replaces={}", self.uri, percent_encode(r)),
            None => self.uri.clone(),
        }
    }
}

/// What a REFER asks us to call, or the status (and why) that refuses it. Of the headers a
/// Refer-To may carry for our INVITE (RFC 3261 19.1.1), only Replaces is acted on; of the
/// methods it may name, only INVITE.
pub(super) fn target(request: &Request) -> Result<Referral, (u16, &'static str)> {
    let unusable = (400, "Refer-To is missing or not a SIP URI");
    let refer_to = headers::other_value(&request.headers, "Refer-To").ok_or(unusable)?;
    let (uri, embedded) = headers::addr_uri(refer_to)
        .split_once('?')
        .unwrap_or((headers::addr_uri(refer_to), ""));
    let uri = without_method(uri)?;
    to_rsip(&uri).ok_or(unusable)?;
    let replaces = embedded
        .split('&')
        .filter_map(|h| h.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("replaces"))
        .map(|(_, value)| percent_decode(value.trim()));
    if replaces.as_deref().is_some_and(|r| !names_a_dialog(r)) {
        return Err((
            400,
            "the Refer-To's Replaces names no dialog (call-id;to-tag=...;from-tag=...)",
        ));
    }
    let subscribe = !headers::other_value(&request.headers, "Refer-Sub")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    Ok(Referral {
        uri,
        replaces,
        subscribe,
        id: headers::cseq(&request.headers).map_or(0, |(n, _)| n),
    })
}

/// `uri` without its `method` parameter, which a Request-URI must not carry (RFC 3261
/// 19.1.1); a method other than INVITE is not ours to send.
fn without_method(uri: &str) -> Result<String, (u16, &'static str)> {
    let mut kept = Vec::new();
    for (n, part) in uri.split(';').enumerate() {
        match part.split_once('=') {
            Some((name, value)) if n > 0 && name.trim().eq_ignore_ascii_case("method") => {
                if !value.trim().eq_ignore_ascii_case("INVITE") {
                    return Err((501, "the Refer-To asks for a method other than INVITE"));
                }
            }
            _ => kept.push(part),
        }
    }
    Ok(kept.join(";"))
}

/// Whether `r` is a Replaces value (RFC 3891: a Call-ID, then `;` parameters with to-tag
/// and from-tag among them) that goes in our INVITE as it is: printable ASCII without
/// spaces, so nothing a REFER says can add a line (a header) to the INVITE.
fn names_a_dialog(r: &str) -> bool {
    let printable = r.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    let mut parts = r.split(';');
    let call_id = parts.next().unwrap_or_default();
    let names: Vec<String> = parts
        .map(|p| p.split('=').next().unwrap_or_default().to_ascii_lowercase())
        .collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    printable && !call_id.is_empty() && has("to-tag") && has("from-tag")
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

/// The 202 that takes `referral`'s REFER on `dialog` (its Contact: the subscription's
/// other end), saying so when it creates no subscription (RFC 4488 4).
pub(super) fn accepted(request: &Request, referral: &Referral, dialog: &Dialog) -> Response {
    let mut ok = build::response(request, 202, None);
    ok.headers
        .push(Header::Contact(dialog.local_contact.clone().into()));
    if !referral.subscribe {
        ok.headers
            .push(Header::Other("Refer-Sub".into(), "false".into()));
    }
    ok
}

/// The NOTIFY on `dialog` that tells the referrer the transfer of the REFER `id` (its
/// CSeq) reached `code` (RFC 3515 2.4.4, the `id` as 2.4.6 asks once a dialog has seen more
/// than one REFER), and where it goes; a final status ends the subscription.
pub(super) fn notify(
    dialog: &mut Dialog,
    local: SocketAddr,
    id: u32,
    code: u16,
) -> (Request, Peer) {
    let mut n = dialog.request(Method::Notify, &host_port(local));
    let h = &mut n.headers;
    h.push(Header::Contact(dialog.local_contact.clone().into()));
    h.push(Header::Event(format!("refer;id={id}").into()));
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
