//! Building and encoding messages: responses that echo a request as RFC 3261 8.2.6 says,
//! the answers to requests rejected before parsing finished, and fresh tags, branches and
//! Call-IDs. Encoding writes the body as bytes (rsip's `Display` would re-decode it).

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Request, Response, SipMessage, StatusCode};

use super::parse::Reject;

/// RFC 3261 magic cookie that marks branches unique per transaction.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{:016x}", rand::random::<u64>())
}

/// Our Via for a request leaving over `transport` from `sent_by` (`host:port`): its
/// `branch`, and rport asked for so an answer finds us behind a NAT (RFC 3581).
pub fn via(transport: super::Transport, sent_by: &str, branch: &str) -> Header {
    Header::Via(
        format!(
            "SIP/2.0/{} {sent_by};branch={branch};rport",
            transport.as_str()
        )
        .into(),
    )
}

pub fn new_tag() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

pub fn new_call_id() -> String {
    format!("{:032x}@hotline", rand::random::<u128>())
}

/// The wire form of a message, with a Content-Length that matches its body.
pub fn encode(msg: &SipMessage) -> Bytes {
    let (start, headers, body) = match msg {
        SipMessage::Request(r) => (
            format!("{} {} {}", r.method, r.uri, r.version),
            &r.headers,
            &r.body,
        ),
        SipMessage::Response(r) => (
            // rsip writes some reasons without their spaces ("ServiceUnavailable").
            format!(
                "{} {} {}",
                r.version,
                r.status_code.code(),
                reason_phrase(r.status_code.code())
            ),
            &r.headers,
            &r.body,
        ),
    };
    let mut text = String::with_capacity(start.len() + 512);
    text.push_str(&start);
    text.push_str("\r\n");
    for h in headers.iter() {
        if matches!(h, Header::ContentLength(_)) {
            continue;
        }
        let _ = write!(text, "{h}\r\n");
    }
    let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = BytesMut::with_capacity(text.len() + body.len());
    out.put_slice(text.as_bytes());
    out.put_slice(body);
    out.freeze()
}

/// The reason phrase RFC 3261 (section 21) and its extensions give a status code; the
/// class's name for codes without one.
pub fn reason_phrase(code: u16) -> &'static str {
    let exact = match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    };
    match (exact, code / 100) {
        ("", 1) => "Session Progress",
        ("", 2) => "OK",
        ("", 3) => "Redirection",
        ("", 4) => "Client Error",
        ("", 5) => "Server Error",
        ("", _) => "Global Failure",
        (exact, _) => exact,
    }
}

/// A response to `req` echoing Via, From, To, Call-ID and CSeq. `to_tag` is added to To
/// when the request's To has no tag yet (every response but 100 needs one, 8.2.6.2).
pub fn response(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::default();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::To(to) => headers.push(Header::To(with_tag(to.value(), to_tag).into())),
            _ => {}
        }
    }
    Response {
        status_code: StatusCode::from(code),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

fn with_tag(to: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) if super::headers::param(to, "tag").is_none() => format!("{to};tag={tag}"),
        _ => to.to_owned(),
    }
}

/// The wire form of the answer to a request `parse` rejected, from its raw headers.
/// `ALLOW` is advertised with a 501.
pub fn reject(reject: &Reject, server: &str) -> Bytes {
    let mut text = format!("SIP/2.0 {} {}\r\n", reject.status, reject.reason);
    for via in &reject.echo.via {
        let _ = write!(text, "Via: {via}\r\n");
    }
    let fields = [
        ("From", &reject.echo.from),
        ("To", &reject.echo.to),
        ("Call-ID", &reject.echo.call_id),
        ("CSeq", &reject.echo.cseq),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            let v = if name == "To" {
                with_tag(v, Some(&new_tag()))
            } else {
                v.clone()
            };
            let _ = write!(text, "{name}: {v}\r\n");
        }
    }
    if reject.status == 501 {
        let _ = write!(text, "Allow: {}\r\n", super::ALLOW);
    }
    let warning = reject.detail.replace(['"', '\r', '\n'], "'");
    let _ = write!(
        text,
        "Warning: 399 hotline \"{}\"\r\nServer: {server}\r\nContent-Length: 0\r\n\r\n",
        &warning[..warning.floor_char_boundary(200)]
    );
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;
    use crate::sip::parse::{ParseError, parse};

    const INVITE: &[u8] = b"INVITE sip:12345@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
From: <sip:caller@127.0.0.1>;tag=a\r\nTo: <sip:12345@127.0.0.1>\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5061>\r\n\
Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0";

    #[test]
    fn responses_echo_the_request_and_add_a_to_tag() {
        let Ok(SipMessage::Request(req)) = parse(INVITE, Transport::Udp) else {
            panic!("test INVITE must parse");
        };
        let resp = response(&req, 180, Some("xyz"));
        let wire = encode(&SipMessage::Response(resp));
        let text = std::str::from_utf8(&wire).expect("ascii");
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n"));
        assert!(
            text.contains("To: <sip:12345@127.0.0.1>;tag=xyz\r\n"),
            "{text}"
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
        // What we send parses back.
        assert!(parse(&wire, Transport::Udp).is_ok());
    }

    #[test]
    fn status_lines_carry_the_rfc_reason_phrases() {
        let Ok(SipMessage::Request(req)) = parse(INVITE, Transport::Udp) else {
            panic!("test INVITE must parse");
        };
        for (code, line) in [
            (503, "SIP/2.0 503 Service Unavailable\r\n"),
            (487, "SIP/2.0 487 Request Terminated\r\n"),
            (481, "SIP/2.0 481 Call/Transaction Does Not Exist\r\n"),
            (599, "SIP/2.0 599 Server Error\r\n"),
        ] {
            let wire = encode(&SipMessage::Response(response(&req, code, Some("t"))));
            let text = std::str::from_utf8(&wire).expect("ascii");
            assert!(text.starts_with(line), "{text}");
        }
    }

    #[test]
    fn rejects_are_answerable_responses() {
        let broken = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nCSeq: 1 INVITE\r\n\r\n";
        let Err(ParseError::Reject(r)) = parse(broken, Transport::Udp) else {
            panic!("a request without From must be rejected");
        };
        let wire = reject(&r, "hotline");
        let text = std::str::from_utf8(&wire).expect("ascii");
        assert!(
            text.starts_with("SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\n")
        );
        assert!(text.contains("CSeq: 1 INVITE\r\n"));
        assert!(
            text.contains("Warning: 399 hotline \"missing From\""),
            "{text}"
        );
    }
}
