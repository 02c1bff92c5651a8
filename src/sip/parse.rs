//! From bytes to a checked `rsip::SipMessage`, or to the answer a bad message deserves.
//!
//! rsip only parses canonical text (`Name: value`, single spaces, no folding, long header
//! names), so this file first splits the message itself: unfolds continuation lines, expands
//! compact header names, frames the body by Content-Length, and checks what RFC 3261 and
//! RFC 4475 say a UAS must reject. What survives is re-joined canonically and handed to rsip.
//! A rejected request keeps the raw headers needed to answer it (`Reject`); anything that
//! cannot be answered is a counted `Drop`. It never panics, whatever the bytes.

use rsip::SipMessage;

use super::Transport;
use super::headers::{self, CSeqValue};

/// The largest message we accept, in bytes (a UDP datagram's practical limit).
pub const MAX_MESSAGE: usize = 65_535;

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Only CRLFs: a keep-alive, not an error.
    KeepAlive,
    NotText,
    NoStartLine,
    /// A response we cannot accept (bad status code); responses are never answered.
    BadResponse,
    /// A request too broken to form a response to (no Via, or an ACK).
    Unanswerable,
    TooLarge,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::KeepAlive => "keepalive",
            DropReason::NotText => "not_text",
            DropReason::NoStartLine => "no_start_line",
            DropReason::BadResponse => "bad_response",
            DropReason::Unanswerable => "unanswerable",
            DropReason::TooLarge => "too_large",
        }
    }
}

/// The header values a response echoes (RFC 3261 8.2.6.2), taken raw from a request that
/// could not be parsed fully.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub via: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub call_id: Option<String>,
    pub cseq: Option<String>,
}

/// A request answered at once, without reaching a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
    /// What was wrong, for the log and a Warning header.
    pub detail: String,
    pub echo: Echo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Drop(DropReason),
    Reject(Box<Reject>),
}

/// Methods we can represent (rsip's set); any other method is answered 501 here.
const KNOWN_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Parses one message. `Transport::Udp` means `bytes` is a whole datagram (a body shorter
/// than Content-Length is an error, trailing octets are ignored); `Transport::Tcp` means the
/// framer already cut the message at Content-Length.
pub fn parse(bytes: &[u8], transport: Transport) -> Result<SipMessage, ParseError> {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Drop(DropReason::KeepAlive))?;
    let bytes = &bytes[start..];
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::Drop(DropReason::TooLarge));
    }
    let (head, body) = split_head(bytes);
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Drop(DropReason::NotText))?;
    let mut lines = unfold(head);
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(ParseError::Drop(DropReason::NoStartLine));
    }
    let start_line = lines.remove(0);
    let fields = split_fields(&lines);
    if start_line.starts_with("SIP/") {
        return parse_response(&start_line, fields, body, transport);
    }
    parse_request(&start_line, fields, body, transport)
}

/// Splits at the blank line; a message without one is all head (some senders omit it
/// when there is no body).
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    if let Some(i) = find(bytes, b"\r\n\r\n") {
        return (&bytes[..i], &bytes[i + 4..]);
    }
    if let Some(i) = find(bytes, b"\n\n") {
        return (&bytes[..i], &bytes[i + 2..]);
    }
    (bytes, &[])
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Lines with continuation lines (starting with SP or HTAB) joined to the one before.
fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Only header lines fold; the start line (index 0) never continues.
        let folds = line.starts_with([' ', '\t']) && out.len() > 1;
        match out.last_mut() {
            Some(last) if folds => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => out.push(line.to_owned()),
        }
    }
    out
}

/// A header as received: its canonical name when it is one we check (compact forms
/// expanded), its own name otherwise, and the trimmed value. A line without a colon or
/// with a bad name is kept as invalid so the request can be rejected.
struct Field {
    known: Option<&'static str>,
    raw_name: String,
    valid: bool,
    value: String,
}

impl Field {
    fn name(&self) -> &str {
        self.known.unwrap_or(&self.raw_name)
    }
}

fn split_fields(lines: &[String]) -> Vec<Field> {
    lines
        .iter()
        .map(|line| match line.split_once(':') {
            Some((name, value)) => {
                let raw_name = name.trim().to_owned();
                Field {
                    known: headers::known_name(&raw_name),
                    valid: !raw_name.is_empty() && raw_name.bytes().all(headers::is_token_byte),
                    raw_name,
                    value: value.trim().to_owned(),
                }
            }
            None => Field {
                known: None,
                raw_name: line.clone(),
                valid: false,
                value: String::new(),
            },
        })
        .collect()
}

fn echo_of(fields: &[Field]) -> Echo {
    let mut echo = Echo::default();
    for f in fields {
        let slot = match f.known {
            Some("Via") => {
                echo.via.push(f.value.clone());
                continue;
            }
            Some("From") => &mut echo.from,
            Some("To") => &mut echo.to,
            Some("Call-ID") => &mut echo.call_id,
            Some("CSeq") => &mut echo.cseq,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(f.value.clone());
        }
    }
    echo
}

fn parse_request(
    start_line: &str,
    fields: Vec<Field>,
    body: &[u8],
    transport: Transport,
) -> Result<SipMessage, ParseError> {
    let echo = echo_of(&fields);
    let parts: Vec<&str> = start_line.split(' ').collect();
    let method = parts.first().copied().unwrap_or_default();
    // A response is impossible without a Via to send it along, and ACK is never answered.
    let answerable = !echo.via.is_empty() && !method.eq_ignore_ascii_case("ACK");
    let reject = |status: u16, reason: &'static str, detail: String| {
        if answerable {
            ParseError::Reject(Box::new(Reject {
                status,
                reason,
                detail,
                echo: echo.clone(),
            }))
        } else {
            ParseError::Drop(DropReason::Unanswerable)
        }
    };
    let bad = |detail: String| reject(400, "Bad Request", detail);

    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad(
            "request line must be `METHOD SP Request-URI SP SIP/2.0`".into(),
        ));
    }
    let (uri, version) = (parts[1], parts[2]);
    if method.is_empty() || !method.bytes().all(headers::is_token_byte) {
        return Err(bad(format!("bad method {method:?}")));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(reject(
            505,
            "Version Not Supported",
            format!("version {version}"),
        ));
    }
    check_fields(&fields, Some(method)).map_err(&bad)?;
    let body = frame_body(&fields, body, transport).map_err(&bad)?;
    if !KNOWN_METHODS.contains(&method) {
        return Err(reject(501, "Not Implemented", format!("method {method}")));
    }
    check_request_uri(uri).map_err(&bad)?;
    let scheme = uri.split(':').next().unwrap_or_default();
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err(reject(
            416,
            "Unsupported URI Scheme",
            format!("scheme {scheme:?}"),
        ));
    }
    let line = format!("{method} {} SIP/2.0", super::uri::escape_userinfo(uri));
    let text = canonical(&line, &fields, body);
    SipMessage::try_from(text.as_slice()).map_err(|e| bad(format!("unparsable request: {e}")))
}

fn parse_response(
    start_line: &str,
    fields: Vec<Field>,
    body: &[u8],
    transport: Transport,
) -> Result<SipMessage, ParseError> {
    let drop = |_| ParseError::Drop(DropReason::BadResponse);
    let mut parts = start_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.eq_ignore_ascii_case("SIP/2.0")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
        || !(b'1'..=b'6').contains(&code.as_bytes()[0])
    {
        return Err(ParseError::Drop(DropReason::BadResponse));
    }
    check_fields(&fields, None).map_err(drop)?;
    let body = frame_body(&fields, body, transport).map_err(drop)?;
    // rsip wants a reason phrase; an empty one (allowed by RFC 3261) gets a placeholder,
    // since we never look at reason phrases.
    let reason = parts
        .next()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("-");
    let line = format!("SIP/2.0 {code} {reason}");
    let text = canonical(&line, &fields, body);
    SipMessage::try_from(text.as_slice()).map_err(|_| ParseError::Drop(DropReason::BadResponse))
}

/// The checks RFC 3261 and RFC 4475 call for on the header fields of any message.
/// `method` is the request's method; `None` for a response.
fn check_fields(fields: &[Field], method: Option<&str>) -> Result<(), String> {
    for f in fields {
        if !f.valid {
            return Err(format!("malformed header line {:?}", clip(&f.raw_name)));
        }
    }
    for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let n = fields.iter().filter(|f| f.known == Some(required)).count();
        if n == 0 {
            return Err(format!("missing {required}"));
        }
        if n > 1 && required != "Via" {
            return Err(format!("more than one {required}"));
        }
    }
    for single in ["Max-Forwards", "Content-Length", "Content-Type", "Expires"] {
        if fields.iter().filter(|f| f.known == Some(single)).count() > 1 {
            return Err(format!("more than one {single}"));
        }
    }
    for f in fields {
        let value = f.value.as_str();
        match f.known.unwrap_or_default() {
            "CSeq" => {
                let cseq = CSeqValue::parse(value).ok_or("malformed CSeq")?;
                if let Some(method) = method
                    && cseq.method != method
                {
                    return Err(format!("CSeq method {} differs from {method}", cseq.method));
                }
            }
            "Max-Forwards" => {
                headers::parse_u32(value)
                    .filter(|&n| n <= 255)
                    .ok_or("Max-Forwards must be 0-255")?;
            }
            "Content-Length" => {
                headers::parse_u32(value).ok_or("malformed Content-Length")?;
            }
            "Expires" => {
                headers::parse_u32(value).ok_or("malformed Expires")?;
            }
            // Control characters would reach the log raw (the call's span is keyed by
            // it: terminal escapes), and RFC 3261's callid has no room for them or spaces.
            "Call-ID" if value.chars().any(|c| c.is_control() || c.is_whitespace()) => {
                return Err("malformed Call-ID".into());
            }
            "Via" => headers::check_via(value)?,
            "From" | "To" => headers::check_name_addr(value, false)?,
            "Contact" if value != "*" => headers::check_name_addr(value, true)?,
            _ => {}
        }
    }
    Ok(())
}

fn frame_body<'a>(
    fields: &[Field],
    body: &'a [u8],
    transport: Transport,
) -> Result<&'a [u8], String> {
    let declared = fields
        .iter()
        .find(|f| f.known == Some("Content-Length"))
        .and_then(|f| headers::parse_u32(&f.value));
    match (declared, transport) {
        (Some(n), _) if n as usize > body.len() => Err(format!(
            "Content-Length {n} is larger than the {} body bytes received",
            body.len()
        )),
        (Some(n), _) => Ok(&body[..n as usize]),
        (None, Transport::Udp) => Ok(body),
        (None, Transport::Tcp | Transport::Tls) => Ok(&[]),
    }
}

/// Request-URI checks rsip does not do (RFC 4475 3.1.2.7, 3.1.2.11).
fn check_request_uri(uri: &str) -> Result<(), String> {
    if uri.contains(['<', '>']) {
        return Err("Request-URI must not be enclosed in <>".into());
    }
    if uri_after_userinfo(uri).contains('?') {
        return Err("Request-URI must not carry headers".into());
    }
    if !uri.contains(':') {
        return Err("Request-URI has no scheme".into());
    }
    Ok(())
}

/// The part of a URI after `scheme:user@` (all of it after the scheme when there is no user).
fn uri_after_userinfo(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

/// The message re-joined the way rsip parses: one `Name: value` per line, long names,
/// a Content-Length that matches the body.
fn canonical(start_line: &str, fields: &[Field], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start_line.len() + 64 * fields.len() + body.len() + 32);
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for f in fields {
        let name = f.name();
        if f.known == Some("Content-Length") {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(headers::canonical_value(name, &f.value).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

fn clip(s: &str) -> &str {
    &s[..s.floor_char_boundary(60)]
}
