//! What a REGISTER says, taken out of an rsip request: the address of record, the
//! Call-ID/CSeq that order it, the contacts with their requested expiry, and the
//! Authorization header values. Errors here become 400 Bad Request.

use rsip::prelude::*;

use crate::sip::{headers, uri};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: the client asks for its current bindings.
    Query,
    /// `Contact: *`: remove every binding (only with Expires: 0).
    All,
    /// Contact URIs with their `expires` parameter, if any.
    List(Vec<(String, Option<u32>)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    pub request_uri: rsip::Uri,
    /// The user part of the To URI: the address of record.
    pub user: String,
    pub call_id: String,
    pub cseq: u32,
    pub contacts: Contacts,
    /// The Expires header.
    pub expires: Option<u32>,
    pub authorizations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("not a REGISTER")]
    NotRegister,
    #[error("missing or malformed {0}")]
    Header(&'static str),
    #[error("Contact: * needs Expires: 0 and no other contact")]
    BadWildcard,
}

impl RegisterRequest {
    pub fn from_sip(request: &rsip::Request) -> Result<RegisterRequest, RequestError> {
        if request.method != rsip::Method::Register {
            return Err(RequestError::NotRegister);
        }
        let bad = RequestError::Header;
        // Our own URI reader: rsip's typed To loses the user of a bare addr-spec
        // (`To: sip:j.user@example.com`, RFC 4475 3.1.1.8).
        let to = headers::to(&request.headers).ok_or(bad("To"))?;
        let user = uri::SipUri::parse(headers::addr_uri(to))
            .and_then(|u| u.user)
            .filter(|u| !u.is_empty())
            .ok_or(bad("To user"))?;
        let call_id = request
            .call_id_header()
            .map_err(|_| bad("Call-ID"))?
            .value()
            .trim()
            .to_owned();
        let cseq = request
            .cseq_header()
            .ok()
            .and_then(|h| h.typed().ok())
            .ok_or(bad("CSeq"))?
            .seq;
        let mut expires = None;
        let mut contact_values = Vec::new();
        let mut authorizations = Vec::new();
        for header in request.headers.iter() {
            match header {
                rsip::Header::Expires(e) => {
                    expires = Some(e.value().trim().parse().map_err(|_| bad("Expires"))?);
                }
                rsip::Header::Contact(c) => contact_values.extend(
                    headers::split_outside(c.value(), ',')
                        .into_iter()
                        .filter(|v| !v.trim().is_empty()),
                ),
                rsip::Header::Authorization(a) => authorizations.push(a.value().to_owned()),
                _ => {}
            }
        }
        let contacts = if contact_values.is_empty() {
            Contacts::Query
        } else if contact_values.iter().any(|c| c.trim() == "*") {
            if contact_values.len() != 1 || expires != Some(0) {
                return Err(RequestError::BadWildcard);
            }
            Contacts::All
        } else {
            Contacts::List(
                contact_values
                    .iter()
                    .map(|c| contact(c))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok(RegisterRequest {
            request_uri: request.uri.clone(),
            user,
            call_id,
            cseq,
            contacts,
            expires,
            authorizations,
        })
    }
}

/// One contact: its URI and `expires` parameter. Parsed with the SIP layer's own
/// helpers rather than rsip's typed Contact, which refuses RFC 5626's quoted
/// `+sip.instance="<urn:uuid:...>"` that phones such as Linphone send.
fn contact(text: &str) -> Result<(String, Option<u32>), RequestError> {
    // Headers in the contact URI (`?Route=...`, RFC 4475 3.3.14) are not ours to act on
    // when we call the phone: its address is what is kept.
    let address = headers::addr_uri(text)
        .split('?')
        .next()
        .unwrap_or_default();
    let uri = uri::to_rsip(address).ok_or(RequestError::Header("Contact"))?;
    let expires = headers::param(text, "expires")
        .map(str::parse)
        .transpose()
        .map_err(|_| RequestError::Header("Contact expires"))?;
    Ok((uri.to_string(), expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegisterRequest, RequestError> {
        let request =
            rsip::Request::try_from(text.replace('\n', "\r\n").as_bytes()).expect("valid SIP");
        RegisterRequest::from_sip(&request)
    }

    const HEAD: &str = "REGISTER sip:127.0.0.1:5060 SIP/2.0\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\n\
        From: <sip:1001@127.0.0.1>;tag=a\n\
        To: <sip:1001@127.0.0.1>\n\
        Call-ID: reg-1\n\
        CSeq: 7 REGISTER\n";

    #[test]
    fn contacts_with_their_expiry() {
        let r = parse(&format!(
            "{HEAD}Contact: \"Desk, left\" <sip:1001@127.0.0.1:5070;transport=udp>;expires=60, \
             <sip:1001@10.0.0.2>, sip:1001@10.0.0.3;expires=30, \
             <sip:1001@127.0.0.1:5071;transport=udp>;+sip.instance=\"<urn:uuid:5140768f>\"\n\
             Expires: 300\nContent-Length: 0\n\n"
        ))
        .expect("parses");
        assert_eq!(r.user, "1001");
        assert_eq!((r.call_id.as_str(), r.cseq), ("reg-1", 7));
        assert_eq!(r.expires, Some(300));
        assert_eq!(
            r.contacts,
            Contacts::List(vec![
                ("sip:1001@127.0.0.1:5070;transport=UDP".into(), Some(60)),
                ("sip:1001@10.0.0.2".into(), None),
                ("sip:1001@10.0.0.3".into(), Some(30)),
                ("sip:1001@127.0.0.1:5071;transport=UDP".into(), None),
            ])
        );
    }

    #[test]
    fn query_wildcard_and_errors() {
        let q = parse(&format!("{HEAD}Content-Length: 0\n\n")).expect("parses");
        assert_eq!(q.contacts, Contacts::Query);
        let all = parse(&format!(
            "{HEAD}Contact: *\nExpires: 0\nContent-Length: 0\n\n"
        ));
        assert_eq!(all.map(|r| r.contacts), Ok(Contacts::All));
        let bad = parse(&format!("{HEAD}Contact: *\nContent-Length: 0\n\n"));
        assert_eq!(bad, Err(RequestError::BadWildcard));
        let bad = parse(&format!("{HEAD}Expires: soon\nContent-Length: 0\n\n"));
        assert_eq!(bad, Err(RequestError::Header("Expires")));
    }
}
