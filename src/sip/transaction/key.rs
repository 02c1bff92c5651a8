//! Transaction identities (RFC 3261 17.1.3 and 17.2.3): which transaction a message
//! belongs to, as a string key. Pure functions.

use std::net::SocketAddr;

use rsip::{Method, Request, Response};

use crate::sip::build::MAGIC_COOKIE;
use crate::sip::headers;

/// The server transaction a request from `source` belongs to. ACK maps to its INVITE;
/// CANCEL has its own.
///
/// Beyond RFC 3261's branch and sent-by, the key holds the source address: copies of a
/// request come from where the original did, and a sender that reuses a branch from
/// another socket (RFC 4475's messages all do) starts a transaction of its own.
pub fn server_key(req: &Request, source: SocketAddr) -> Option<String> {
    server_key_as(req, &req.method, source)
}

/// The key of the INVITE transaction a CANCEL targets (same identity, method INVITE).
pub fn invite_key_for_cancel(req: &Request, source: SocketAddr) -> Option<String> {
    server_key_as(req, &Method::Invite, source)
}

fn server_key_as(req: &Request, method: &Method, source: SocketAddr) -> Option<String> {
    let method = if *method == Method::Ack {
        &Method::Invite
    } else {
        method
    };
    let (branch, sent_by) = headers::via_branch_sent_by(&req.headers)?;
    if branch.starts_with(MAGIC_COOKIE) {
        return Some(format!(
            "b|{source}|{branch}|{}|{method}",
            sent_by.to_ascii_lowercase()
        ));
    }
    // RFC 2543 peers: no unique branch, so match on what identified a request then.
    let (seq, _) = headers::cseq(&req.headers)?;
    Some(format!(
        "o|{source}|{}|{}|{seq}|{}|{}|{method}",
        headers::call_id(&req.headers)?,
        headers::from_tag(&req.headers).unwrap_or_default(),
        headers::first_via(&req.headers)?,
        req.uri,
    ))
}

/// What a 2xx's ACK shares with its INVITE: Call-ID, CSeq number and From tag.
pub fn ack_key(req: &Request) -> Option<String> {
    let (seq, _) = headers::cseq(&req.headers)?;
    Some(format!(
        "{}|{seq}|{}",
        headers::call_id(&req.headers)?,
        headers::from_tag(&req.headers).unwrap_or_default()
    ))
}

/// Our client transaction: the branch we put in the top Via and the method.
pub fn client_key_of_request(req: &Request) -> Option<String> {
    let (branch, _) = headers::via_branch_sent_by(&req.headers)?;
    Some(format!("{branch}|{}", req.method))
}

pub fn client_key_of_response(resp: &Response) -> Option<String> {
    let (branch, _) = headers::via_branch_sent_by(&resp.headers)?;
    let (_, method) = headers::cseq(&resp.headers)?;
    Some(format!("{branch}|{method}"))
}
