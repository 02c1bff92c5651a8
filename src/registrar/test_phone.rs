//! A test phone for REGISTER flows: it builds its requests as SIP text and computes its
//! digest answers on its own (the digest functions are checked against the RFC vectors in
//! `digest`). Shared by the registrar's tests and the endpoint core's.

use md5::{Digest as _, Md5};
use rsip::prelude::*;
use sha2::Sha256;

/// The Request-URI of the phone's REGISTERs.
pub(crate) const URI: &str = "sip:127.0.0.1:5060";

/// A phone registering one user from one address.
pub(crate) struct Phone {
    /// Where its requests come from.
    pub(crate) source: std::net::IpAddr,
    pub(crate) user: &'static str,
    password: &'static str,
    call_id: String,
    pub(crate) cseq: u32,
    pub(crate) nc: u32,
}

impl Phone {
    pub(crate) fn new(user: &'static str, password: &'static str) -> Phone {
        Phone {
            source: std::net::Ipv4Addr::LOCALHOST.into(),
            user,
            password,
            call_id: format!("reg-{user}"),
            cseq: 0,
            nc: 0,
        }
    }

    /// The same phone sending from another address.
    pub(crate) fn from(mut self, source: &str) -> Phone {
        self.source = source.parse().expect("an address");
        self
    }

    /// A REGISTER for the phone's own address with `headers` (Contact, Expires...).
    pub(crate) fn request(&mut self, headers: &str, authorization: Option<&str>) -> rsip::Request {
        self.cseq += 1;
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let text = format!(
            "REGISTER {URI} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{}\r\n\
             From: <sip:{user}@127.0.0.1>;tag=f1\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n\
             {headers}{auth}Content-Length: 0\r\n\r\n",
            self.cseq,
            self.call_id,
            self.cseq,
            user = self.user,
        );
        rsip::Request::try_from(text.as_bytes()).expect("valid SIP")
    }

    /// The Authorization value answering `nonce` with the next nonce count.
    pub(crate) fn answer(&mut self, nonce: &str, algorithm: &str, username: &str) -> String {
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let h = |s: String| match algorithm {
            "MD5" => hex::encode(Md5::digest(s.as_bytes())),
            _ => hex::encode(Sha256::digest(s.as_bytes())),
        };
        let ha1 = h(format!("{username}:hotline:{}", self.password));
        let ha2 = h(format!("REGISTER:{URI}"));
        let response = h(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
        format!(
            "Digest username=\"{username}\", realm=\"hotline\", nonce=\"{nonce}\", \
             uri=\"{URI}\", response=\"{response}\", algorithm={algorithm}, qop=auth, \
             nc={nc}, cnonce=\"c0ffee\""
        )
    }
}

/// The nonce of the challenge for `algorithm` among a 401's headers, and whether it says
/// stale.
pub(crate) fn challenge_in<'a>(
    headers: impl IntoIterator<Item = &'a rsip::Header>,
    algorithm: &str,
) -> (String, bool) {
    headers
        .into_iter()
        .find_map(|h| match h {
            rsip::Header::WwwAuthenticate(w)
                if w.value().contains(&format!("algorithm={algorithm},")) =>
            {
                let v = w.value();
                let start = v.find("nonce=\"")? + 7;
                let end = start + v[start..].find('"')?;
                Some((v[start..end].to_owned(), v.ends_with("stale=true")))
            }
            _ => None,
        })
        .expect("a challenge for the algorithm")
}
