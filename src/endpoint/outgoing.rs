//! What every request the engine sends gets on its way out, sans-IO: our User-Agent, and,
//! for a request that travels by TLS, the name the server's certificate must prove (RFC
//! 5922 7.2: the host of the URI the request was sent to, which the resolved address alone
//! no longer says). Owned by the endpoint core; knows nothing of connections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use crate::sip::Transport;
use crate::sip::transaction::Peer;
use crate::sip::uri::SipUri;

pub(super) struct Outgoing {
    /// Our User-Agent (and Server) value.
    pub(super) server: String,
    /// The host name each TLS server was last sent a request as, by its address.
    tls_names: HashMap<SocketAddr, String>,
}

impl Outgoing {
    pub(super) fn new(server: String) -> Outgoing {
        Outgoing {
            server,
            tls_names: HashMap::new(),
        }
    }

    /// Readies `request` for `peer`: adds our User-Agent unless it has one, and notes the
    /// name a TLS connection to the peer must verify.
    pub(super) fn prepare(&mut self, peer: Peer, request: &mut Request) {
        if !request
            .headers
            .iter()
            .any(|h| matches!(h, Header::UserAgent(_)))
        {
            request
                .headers
                .push(Header::UserAgent(self.server.clone().into()));
        }
        if peer.transport == Transport::Tls {
            match next_hop_host(request) {
                Some(host) => self.tls_names.insert(peer.addr, host),
                None => self.tls_names.remove(&peer.addr),
            };
        }
    }

    /// The name to verify when connecting by TLS to `addr`: the host name it was sent to,
    /// none for an address written as such (its IP address is checked instead).
    pub(super) fn tls_name(&self, addr: SocketAddr) -> Option<String> {
        self.tls_names.get(&addr).cloned()
    }
}

/// The host name of the URI a request goes to first: its top Route (a loose-routing proxy),
/// else its Request-URI; none when that host is an IP address.
fn next_hop_host(request: &Request) -> Option<String> {
    let route = request.headers.iter().find_map(|h| match h {
        Header::Route(r) => Some(r.value().to_owned()),
        _ => None,
    });
    let target = route.unwrap_or_else(|| request.uri.to_string());
    let first = target.split(',').next()?;
    let host = SipUri::parse(first)?.host;
    host.parse::<IpAddr>().is_err().then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, extra: &str) -> Request {
        let text = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKx\r\n{extra}\
             From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match crate::sip::parse::parse(text.as_bytes(), Transport::Udp) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn peer(transport: Transport) -> Peer {
        Peer {
            transport,
            addr: "192.0.2.7:5061".parse().expect("addr"),
            conn: None,
        }
    }

    #[test]
    fn a_tls_request_names_its_uri_host_or_its_first_route() {
        let mut out = Outgoing::new("hotline/test".into());
        let mut r = request("sip:12345@sbc.carrier.example;transport=tls", "");
        out.prepare(peer(Transport::Tls), &mut r);
        assert_eq!(
            out.tls_name(peer(Transport::Tls).addr).as_deref(),
            Some("sbc.carrier.example")
        );
        assert!(
            r.headers
                .iter()
                .any(|h| matches!(h, Header::UserAgent(u) if u.value() == "hotline/test"))
        );
        let mut r = request(
            "sip:12345@192.0.2.99",
            "Route: <sip:edge.carrier.example;transport=tls;lr>, <sip:core.example;lr>\r\n",
        );
        out.prepare(peer(Transport::Tls), &mut r);
        assert_eq!(
            out.tls_name(peer(Transport::Tls).addr).as_deref(),
            Some("edge.carrier.example")
        );
    }

    #[test]
    fn addresses_and_plain_transports_name_nothing() {
        let mut out = Outgoing::new("hotline/test".into());
        let mut r = request("sip:12345@pbx.example", "");
        out.prepare(peer(Transport::Tcp), &mut r);
        assert_eq!(out.tls_name(peer(Transport::Tls).addr), None);
        let mut r = request("sip:12345@pbx.example;transport=tls", "");
        out.prepare(peer(Transport::Tls), &mut r);
        let mut r = request("sip:12345@192.0.2.7:5061;transport=tls", "");
        out.prepare(peer(Transport::Tls), &mut r);
        assert_eq!(
            out.tls_name(peer(Transport::Tls).addr),
            None,
            "sent by its address now: the address is checked"
        );
    }
}
