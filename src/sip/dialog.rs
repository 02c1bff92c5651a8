//! Dialogs (RFC 3261 12): the state two user agents share after an INVITE is answered:
//! Call-ID, tags, CSeq numbers on both sides, route set and remote target. A dialog builds
//! the requests we send inside it (BYE, re-INVITE, ACK for a 2xx) and checks the ones we
//! receive. The call task owns its dialog; nothing here does I/O.

use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

use super::transaction::Peer;
use super::uri::SipUri;
use super::{build, headers};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("the request or response lacks {0}")]
    Missing(&'static str),
    #[error("the remote target {0:?} is not a SIP URI we can reach")]
    BadTarget(String),
    /// RFC 3261 12.2.2: a request with a CSeq lower than one already seen is answered 500.
    #[error("CSeq {got} is not above the last one seen ({last})")]
    OutOfOrder { got: u32, last: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From/To header value (with our tag) for requests we send.
    local_party: String,
    /// Their From/To header value (with their tag).
    remote_party: String,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    route_set: Vec<String>,
    remote_target: String,
    /// Where the dialog-creating message came from: the fallback next hop, and the TCP
    /// connection in-dialog requests reuse.
    peer: Peer,
    /// Our Contact, as `<sip:...>`.
    pub local_contact: String,
    /// The peer asked for `rport` and its request came from another address than its Via
    /// says (RFC 3581): it is behind a NAT, and requests in the dialog go back where it
    /// sent from, not to a Contact that names its private address.
    behind_nat: bool,
}

impl Dialog {
    /// The dialog a UAS creates by answering `invite` with `local_tag` (RFC 3261 12.1.1).
    pub fn uas(
        invite: &Request,
        local_tag: &str,
        peer: Peer,
        local_contact: String,
    ) -> Result<Dialog, DialogError> {
        let h = &invite.headers;
        let (seq, _) = headers::cseq(h).ok_or(DialogError::Missing("CSeq"))?;
        let to = headers::to(h).ok_or(DialogError::Missing("To"))?;
        Ok(Dialog {
            call_id: headers::call_id(h)
                .ok_or(DialogError::Missing("Call-ID"))?
                .to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: headers::from_tag(h).unwrap_or_default().to_owned(),
            local_party: match headers::param(to, "tag") {
                Some(_) => to.to_owned(),
                None => format!("{to};tag={local_tag}"),
            },
            remote_party: headers::from(h)
                .ok_or(DialogError::Missing("From"))?
                .to_owned(),
            local_cseq: 0,
            remote_cseq: Some(seq),
            route_set: headers::all_values(h, headers::pick_record_route)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            // An RFC 2543 caller sends no Contact (RFC 4475 3.4.1): requests in the dialog
            // go to its From address, as RFC 2543 had it.
            remote_target: match headers::contact(h) {
                Some(_) => remote_target(h)?,
                None => checked_target(headers::addr_uri(
                    headers::from(h).ok_or(DialogError::Missing("From"))?,
                ))?,
            },
            peer,
            local_contact,
            behind_nat: behind_nat(h),
        })
    }

    /// The dialog a UAC creates from its INVITE and the 2xx that answered it (12.1.2):
    /// the route set is the reversed Record-Route of the response.
    pub fn uac(
        invite: &Request,
        ok: &Response,
        peer: Peer,
        local_contact: String,
    ) -> Result<Dialog, DialogError> {
        let (seq, _) = headers::cseq(&invite.headers).ok_or(DialogError::Missing("CSeq"))?;
        let mut route_set: Vec<String> =
            headers::all_values(&ok.headers, headers::pick_record_route)
                .into_iter()
                .map(str::to_owned)
                .collect();
        route_set.reverse();
        Ok(Dialog {
            call_id: headers::call_id(&invite.headers)
                .ok_or(DialogError::Missing("Call-ID"))?
                .to_owned(),
            local_tag: headers::from_tag(&invite.headers)
                .ok_or(DialogError::Missing("From tag"))?
                .to_owned(),
            remote_tag: headers::to_tag(&ok.headers).unwrap_or_default().to_owned(),
            local_party: headers::from(&invite.headers)
                .ok_or(DialogError::Missing("From"))?
                .to_owned(),
            remote_party: headers::to(&ok.headers)
                .ok_or(DialogError::Missing("To"))?
                .to_owned(),
            local_cseq: seq,
            remote_cseq: None,
            route_set,
            remote_target: remote_target(&ok.headers)?,
            peer,
            local_contact,
            behind_nat: false,
        })
    }

    /// Checks and records the CSeq of a request received inside the dialog.
    pub fn accept_remote_cseq(&mut self, req: &Request) -> Result<(), DialogError> {
        let (seq, _) = headers::cseq(&req.headers).ok_or(DialogError::Missing("CSeq"))?;
        match self.remote_cseq {
            // ACK and CANCEL reuse the CSeq number of what they answer.
            Some(last)
                if seq < last
                    || (seq == last && !matches!(req.method, Method::Ack | Method::Cancel)) =>
            {
                Err(DialogError::OutOfOrder { got: seq, last })
            }
            _ => {
                self.remote_cseq = Some(seq);
                Ok(())
            }
        }
    }

    /// Updates the remote target from a target-refresh request (re-INVITE, 12.2.2).
    pub fn refresh_target(&mut self, req: &Request) {
        if let Ok(target) = remote_target(&req.headers) {
            self.remote_target = target;
        }
    }

    /// A new request inside the dialog (BYE, re-INVITE, INFO...), with the next CSeq and a
    /// fresh branch. `sent_by` is our address as written in Via.
    pub fn request(&mut self, method: Method, sent_by: &str) -> Request {
        self.local_cseq += 1;
        self.build(method, self.local_cseq, sent_by, &build::new_branch())
    }

    /// The ACK for a 2xx to our INVITE with CSeq `seq` (13.2.2.4): a new transaction of its own.
    pub fn ack(&self, seq: u32, sent_by: &str) -> Request {
        self.build(Method::Ack, seq, sent_by, &build::new_branch())
    }

    fn build(&self, method: Method, seq: u32, sent_by: &str, branch: &str) -> Request {
        // Loose routing (;lr): the target stays in the Request-URI and the routes go in
        // Route headers; a strict router takes the Request-URI slot (12.2.1.1).
        let strict = self.route_set.first().is_some_and(|r| !r.contains(";lr"));
        let (uri, routes): (&str, Vec<String>) = if strict {
            let mut routes: Vec<String> = self.route_set[1..].to_vec();
            routes.push(format!("<{}>", self.remote_target));
            (headers::addr_uri(&self.route_set[0]), routes)
        } else {
            (&self.remote_target, self.route_set.clone())
        };
        let mut h = Headers::default();
        h.push(build::via(self.next_hop().transport, sent_by, branch));
        h.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for r in routes {
            h.push(Header::Route(r.into()));
        }
        h.push(Header::From(self.local_party.clone().into()));
        h.push(Header::To(self.remote_party.clone().into()));
        h.push(Header::CallId(self.call_id.clone().into()));
        h.push(Header::CSeq(format!("{seq} {method}").into()));
        if method == Method::Invite {
            h.push(Header::Contact(self.local_contact.clone().into()));
        }
        Request {
            method,
            // remote_target() checked the URI when it was stored.
            uri: super::uri::to_rsip(uri).unwrap_or_default(),
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        }
    }

    /// Where requests inside the dialog go: the first route or the remote target when it
    /// names an address, by the transport that URI names (a proxy that relayed the INVITE
    /// by TLS may leave the dialog to a phone on UDP), else the dialog's own (a phone
    /// reached by TCP whose Contact says nothing more); the peer the dialog came from
    /// otherwise. Over a connection the peer opened, that connection is reused.
    pub fn next_hop(&self) -> Peer {
        let hop = self
            .route_set
            .first()
            .map_or(self.remote_target.as_str(), |r| headers::addr_uri(r));
        let target = SipUri::parse(hop).and_then(|u| {
            let ip: IpAddr = u.host.parse().ok()?;
            let transport = u.explicit_transport().unwrap_or(self.peer.transport);
            let port = u.port.unwrap_or(transport.default_port());
            Some((SocketAddr::new(ip, port), transport))
        });
        match target {
            Some((addr, transport)) if self.peer.conn.is_none() && !self.behind_nat => Peer {
                transport,
                addr,
                conn: None,
            },
            _ => self.peer,
        }
    }

    /// Whether `req` (received) belongs to this dialog: same Call-ID and tags.
    pub fn matches(&self, req: &Request) -> bool {
        headers::call_id(&req.headers) == Some(self.call_id.as_str())
            && headers::to_tag(&req.headers) == Some(self.local_tag.as_str())
            && headers::from_tag(&req.headers).unwrap_or_default() == self.remote_tag
    }
}

/// Whether the top Via (stamped by `headers::stamp_received`) shows a request that asked
/// for `rport` and came from another address or port than its sent-by.
fn behind_nat(h: &Headers) -> bool {
    let Some(via) = headers::first_via(h) else {
        return false;
    };
    let Some(rport) = headers::param(via, "rport").and_then(|p| p.parse::<u16>().ok()) else {
        return false;
    };
    let sent_by = headers::split_outside(via, ';')[0]
        .trim()
        .split_once(' ')
        .map_or("", |(_, by)| by.trim());
    let received = headers::param(via, "received").unwrap_or_default();
    received != headers::host_of(sent_by) || Some(rport) != headers::port_of(sent_by).or(Some(5060))
}

fn remote_target(h: &Headers) -> Result<String, DialogError> {
    let contact = headers::contact(h).ok_or(DialogError::Missing("Contact"))?;
    checked_target(headers::addr_uri(contact))
}

/// A URI requests can be sent to.
fn checked_target(uri: &str) -> Result<String, DialogError> {
    if SipUri::parse(uri).is_none() || super::uri::to_rsip(uri).is_none() {
        return Err(DialogError::BadTarget(uri.to_owned()));
    }
    Ok(uri.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;
    use crate::sip::parse::parse;
    use rsip::SipMessage;

    fn req(text: &str) -> Request {
        match parse(text.replace('\n', "\r\n").as_bytes(), Transport::Udp) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("must parse: {other:?}"),
        }
    }

    fn invite() -> Request {
        req("INVITE sip:12345@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK1
Record-Route: <sip:10.0.0.2;lr>, <sip:10.0.0.3;lr>
From: \"Caller\" <sip:13800000000@10.0.0.9>;tag=abc
To: <sip:12345@127.0.0.1>
Call-ID: dlg-1
CSeq: 7 INVITE
Contact: <sip:13800000000@10.0.0.9:5070>
Content-Length: 0

")
    }

    fn peer() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "10.0.0.9:5070".parse().expect("addr"),
            conn: None,
        }
    }

    #[test]
    fn a_caller_behind_a_nat_gets_requests_where_it_sent_from() {
        let text = "INVITE sip:12345@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;rport
From: <sip:13800000000@192.168.1.20>;tag=abc
To: <sip:12345@127.0.0.1>
Call-ID: dlg-nat
CSeq: 1 INVITE
Contact: <sip:13800000000@192.168.1.20:5060>
Content-Length: 0

";
        let public: Peer = Peer::udp("203.0.113.7:40001");
        let mut nat = req(text);
        headers::stamp_received(&mut nat.headers, public.addr);
        let d = Dialog::uas(&nat, "t", public, "<sip:hotline@127.0.0.1>".into()).expect("dialog");
        assert_eq!(d.next_hop(), public, "not the private Contact");
        // The same INVITE from the address its Via names goes to its Contact as usual.
        let mut direct = req(text);
        let private = Peer::udp("192.168.1.20:5060");
        headers::stamp_received(&mut direct.headers, private.addr);
        let d =
            Dialog::uas(&direct, "t", private, "<sip:hotline@127.0.0.1>".into()).expect("dialog");
        assert_eq!(d.next_hop(), private);
        // No rport asked for: the Contact, as RFC 3261 has it.
        let mut plain = req(&text.replace(";rport", ""));
        headers::stamp_received(&mut plain.headers, public.addr);
        let d = Dialog::uas(&plain, "t", public, "<sip:hotline@127.0.0.1>".into()).expect("dialog");
        assert_eq!(d.next_hop(), private);
    }

    #[test]
    fn uas_dialog_builds_a_bye_with_the_route_set_and_swapped_parties() {
        let mut d = Dialog::uas(
            &invite(),
            "xyz",
            peer(),
            "<sip:hotline@127.0.0.1:5060>".into(),
        )
        .expect("dialog");
        let bye = d.request(Method::Bye, "127.0.0.1:5060");
        let text = build::encode(&SipMessage::Request(bye)).to_vec();
        let text = String::from_utf8(text).expect("utf8");
        assert!(
            text.starts_with("BYE sip:13800000000@10.0.0.9:5070 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:10.0.0.2;lr>\r\nRoute: <sip:10.0.0.3;lr>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("From: <sip:12345@127.0.0.1>;tag=xyz\r\n"),
            "{text}"
        );
        assert!(
            text.contains("To: \"Caller\" <sip:13800000000@10.0.0.9>;tag=abc\r\n"),
            "{text}"
        );
        assert!(text.contains("CSeq: 1 BYE\r\n"), "{text}");
        assert_eq!(
            d.next_hop().addr,
            "10.0.0.2:5060"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
        );
        let second = d.request(Method::Bye, "127.0.0.1:5060");
        assert_eq!(headers::cseq(&second.headers), Some((2, Method::Bye)));
    }

    #[test]
    fn an_rfc_2543_invite_without_contact_is_reached_at_its_from_address() {
        let old = req("INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Length: 0

");
        let mut d = Dialog::uas(&old, "xyz", peer(), String::new()).expect("dialog");
        let bye = d.request(rsip::Method::Bye, "127.0.0.1:5060");
        assert_eq!(
            bye.uri.to_string(),
            "sip:+13035551111@ift.client.example.net;user=phone"
        );
    }

    #[test]
    fn out_of_order_cseq_is_refused_and_acks_reuse_the_number() {
        let mut d = Dialog::uas(&invite(), "xyz", peer(), String::new()).expect("dialog");
        let with = |method: &str, seq: u32| {
            req(&format!(
                "{method} sip:hotline@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK{seq}{method}
From: <sip:13800000000@10.0.0.9>;tag=abc
To: <sip:12345@127.0.0.1>;tag=xyz
Call-ID: dlg-1
CSeq: {seq} {method}
Content-Length: 0

"
            ))
        };
        assert!(d.matches(&with("BYE", 8)));
        assert_eq!(d.accept_remote_cseq(&with("ACK", 7)), Ok(()));
        assert_eq!(d.accept_remote_cseq(&with("INVITE", 9)), Ok(()));
        assert_eq!(
            d.accept_remote_cseq(&with("BYE", 8)),
            Err(DialogError::OutOfOrder { got: 8, last: 9 })
        );
        assert_eq!(
            d.accept_remote_cseq(&with("BYE", 9)),
            Err(DialogError::OutOfOrder { got: 9, last: 9 })
        );
        assert_eq!(d.accept_remote_cseq(&with("BYE", 10)), Ok(()));
    }

    #[test]
    fn uac_dialog_reverses_the_record_route_and_acks_with_the_invite_cseq() {
        let invite = req("INVITE sip:agent@127.0.0.1:5080 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK9
From: <sip:hotline@127.0.0.1>;tag=ours
To: <sip:agent@127.0.0.1>
Call-ID: leg-b
CSeq: 1 INVITE
Contact: <sip:hotline@127.0.0.1:5060>
Content-Length: 0

");
        let mut ok = build::response(&invite, 200, Some("theirs"));
        ok.headers.push(Header::RecordRoute(
            "<sip:10.0.0.2;lr>, <sip:10.0.0.3;lr>".into(),
        ));
        ok.headers
            .push(Header::Contact("<sip:agent@127.0.0.1:5080>".into()));
        let d = Dialog::uac(&invite, &ok, peer(), "<sip:hotline@127.0.0.1:5060>".into())
            .expect("dialog");
        let ack = d.ack(1, "127.0.0.1:5060");
        let text =
            String::from_utf8(build::encode(&SipMessage::Request(ack)).to_vec()).expect("utf8");
        assert!(
            text.contains("Route: <sip:10.0.0.3;lr>\r\nRoute: <sip:10.0.0.2;lr>\r\n"),
            "{text}"
        );
        assert!(text.contains("CSeq: 1 ACK\r\n"), "{text}");
        assert!(
            text.contains("To: <sip:agent@127.0.0.1>;tag=theirs\r\n"),
            "{text}"
        );
        assert!(
            text.starts_with("ACK sip:agent@127.0.0.1:5080 SIP/2.0"),
            "{text}"
        );
    }

    #[test]
    fn requests_in_the_dialog_take_the_transport_of_the_uri_they_go_to() {
        let invite = req("INVITE sip:999@127.0.0.1:5061;transport=tls SIP/2.0
Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKout
From: <sip:12345@127.0.0.1>;tag=ours
To: <sip:999@127.0.0.1>
Call-ID: tls-leg
CSeq: 1 INVITE
Max-Forwards: 70
Contact: <sip:hotline@127.0.0.1:5061;transport=tls>
Content-Length: 0

");
        let proxy = Peer {
            transport: Transport::Tls,
            addr: "127.0.0.1:5061".parse().expect("addr"),
            conn: None,
        };
        // A proxy relayed our INVITE by TLS and stays out of the dialog; the desk is on UDP.
        let mut ok = build::response(&invite, 200, Some("desk"));
        ok.headers.push(Header::Contact(
            "<sip:desk@127.0.0.1:5090;transport=UDP>".into(),
        ));
        let d = Dialog::uac(&invite, &ok, proxy, String::new()).expect("dialog");
        assert_eq!(
            d.next_hop(),
            Peer {
                transport: Transport::Udp,
                addr: "127.0.0.1:5090".parse().expect("addr"),
                conn: None,
            }
        );
        let ack = build::encode(&SipMessage::Request(d.ack(1, "127.0.0.1:5060")));
        let text = String::from_utf8(ack.to_vec()).expect("utf8");
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;"), "{text}");
        // A desk whose Contact names no transport is reached as the INVITE was.
        let mut ok = build::response(&invite, 200, Some("desk"));
        ok.headers
            .push(Header::Contact("<sip:desk@127.0.0.1>".into()));
        let d = Dialog::uac(&invite, &ok, proxy, String::new()).expect("dialog");
        assert_eq!(
            d.next_hop(),
            Peer {
                transport: Transport::Tls,
                addr: "127.0.0.1:5061".parse().expect("addr"),
                conn: None,
            }
        );
        // A desk that says TLS (or sips:) keeps it.
        let mut ok = build::response(&invite, 200, Some("desk"));
        ok.headers
            .push(Header::Contact("<sips:desk@127.0.0.1:5091>".into()));
        let d = Dialog::uac(&invite, &ok, proxy, String::new()).expect("dialog");
        assert_eq!(d.next_hop().transport, Transport::Tls);
        assert_eq!(d.next_hop().addr.port(), 5091);
    }
}
