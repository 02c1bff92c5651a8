//! Header-level helpers: header names (compact forms), LWS normalisation so rsip can read
//! what RFC 3261 allows, the syntax checks RFC 4475 expects a UAS to make, and small
//! readers (tags, branch, CSeq) over rsip's untyped headers. Pure functions over strings.

use std::fmt::Write as _;

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method};

/// RFC 3261 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The canonical spelling of a header name we look at (compact forms expanded, RFC 3261
/// 7.3.3 and the registry), or `None` for any other header, which keeps its own name.
pub fn known_name(raw: &str) -> Option<&'static str> {
    const COMPACT: [(&str, &str); 15] = [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("x", "Session-Expires"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
    ];
    const KNOWN: [&str; 20] = [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Max-Forwards",
        "Expires",
        "Require",
        "Proxy-Require",
        "Supported",
        "Accept",
        "Route",
        "Record-Route",
        "Authorization",
        "Subject",
        "Event",
    ];
    if raw.len() == 1 {
        return COMPACT
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(raw))
            .map(|(_, long)| *long);
    }
    KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(raw))
}

/// The value with the optional whitespace RFC 3261 allows around separators removed
/// (outside quoted strings and `<...>`), which is the form rsip's typed parsers accept.
pub fn canonical_value(name: &str, value: &str) -> String {
    let slash = name == "Via";
    let separators: &[char] = if slash {
        &[';', '=', ',', '/']
    } else {
        &[';', '=', ',']
    };
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    let (mut quoted, mut angle, mut pending_space) = (false, false, false);
    while let Some(c) = chars.next() {
        if quoted {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if angle {
            out.push(c);
            angle = c != '>';
            continue;
        }
        if c == ' ' || c == '\t' {
            pending_space = true;
            continue;
        }
        if pending_space
            && !separators.contains(&c)
            && !out.ends_with(separators)
            && !out.is_empty()
        {
            out.push(' ');
        }
        pending_space = false;
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Strict unsigned decimal (no sign, no spaces), capped at 2^32 - 1.
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A CSeq value: sequence number and method name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeqValue<'a> {
    pub seq: u32,
    pub method: &'a str,
}

impl<'a> CSeqValue<'a> {
    /// RFC 3261: the number is below 2^31, then LWS, then the method token.
    pub fn parse(value: &'a str) -> Option<CSeqValue<'a>> {
        let (num, method) = value.trim().split_once([' ', '\t'])?;
        let seq = parse_u32(num).filter(|&n| n < 1 << 31)?;
        let method = method.trim();
        (!method.is_empty() && method.bytes().all(is_token_byte))
            .then_some(CSeqValue { seq, method })
    }
}

/// Splits on `sep` outside quoted strings and `<...>`.
pub fn split_outside(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            c if c == sep && !angle => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// `;name[=value]` parameters: every name a non-empty token.
fn check_params(params: &[&str], what: &str) -> Result<(), String> {
    for p in params {
        let name = p.split('=').next().unwrap_or_default().trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("empty or malformed parameter in {what}"));
        }
    }
    Ok(())
}

/// RFC 3261 Via syntax: `SIP/2.0/transport sent-by *(;param)`, comma-separated.
pub fn check_via(value: &str) -> Result<(), String> {
    for via in split_outside(&canonical_value("Via", value), ',') {
        let mut parts = split_outside(via, ';');
        let head = parts.remove(0);
        let (protocol, sent_by) = head.trim().split_once(' ').ok_or("Via lacks a sent-by")?;
        let mut proto = protocol.split('/');
        let ok = proto.next().is_some_and(|p| p.eq_ignore_ascii_case("SIP"))
            && proto.next().is_some()
            && proto.next().is_some_and(|t| !t.is_empty())
            && proto.next().is_none();
        if !ok || sent_by.trim().is_empty() || sent_by.trim().contains(' ') {
            return Err("malformed Via".into());
        }
        check_params(&parts, "Via")?;
    }
    Ok(())
}

/// RFC 3261 name-addr / addr-spec with parameters (From, To, Contact). `list` allows
/// several comma-separated values (Contact).
pub fn check_name_addr(value: &str, list: bool) -> Result<(), String> {
    let values = if list {
        split_outside(value, ',')
    } else {
        vec![value]
    };
    for v in values {
        check_one_name_addr(v.trim())?;
    }
    Ok(())
}

fn check_one_name_addr(v: &str) -> Result<(), String> {
    let quotes_balanced = {
        let (mut quoted, mut escaped) = (false, false);
        for c in v.chars() {
            match (quoted, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (_, false, '"') => quoted = !quoted,
                _ => {}
            }
        }
        !quoted
    };
    if !quotes_balanced {
        return Err("unterminated quoted string".into());
    }
    let mut parts = split_outside(v, ';');
    let addr = parts.remove(0).trim();
    if let Some(open) = find_outside_quotes(addr, '<') {
        let display = addr[..open].trim();
        let rest = &addr[open + 1..];
        let close = rest.find('>').ok_or("unterminated <")?;
        let uri = &rest[..close];
        if !rest[close + 1..].trim().is_empty() {
            return Err("text after >".into());
        }
        if uri.is_empty() || uri.contains([' ', '\t']) {
            return Err("whitespace inside <addr-spec>".into());
        }
        let display_ok = display.is_empty()
            || (display.starts_with('"') && display.ends_with('"') && display.len() >= 2)
            || display
                .split([' ', '\t'])
                .all(|w| w.is_empty() || w.bytes().all(is_token_byte));
        if !display_ok {
            return Err("display name must be a quoted string or tokens".into());
        }
    } else if addr.is_empty() || addr.contains(['?', ' ', '\t', '"', '>']) || !addr.contains(':') {
        return Err("malformed addr-spec (use <...> for URIs with headers)".into());
    }
    check_params(&parts, "a name-addr")
}

fn find_outside_quotes(s: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, c) if c == target => return Some(i),
            _ => {}
        }
    }
    None
}

/// The value of a `;name=value` parameter after the address part of a header value.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let mut parts = split_outside(value, ';').into_iter();
    parts.next();
    parts.find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI of a name-addr or addr-spec (without `<>` and header parameters).
pub fn addr_uri(value: &str) -> &str {
    let addr = split_outside(value, ';')[0].trim();
    match (find_outside_quotes(addr, '<'), addr.rfind('>')) {
        (Some(open), Some(close)) if close > open => &addr[open + 1..close],
        _ => addr,
    }
}

macro_rules! first_value {
    ($($fn_name:ident => $variant:ident),* $(,)?) => {
        $(
            /// The value of the first header of this kind.
            pub fn $fn_name(headers: &Headers) -> Option<&str> {
                headers.iter().find_map(|h| match h {
                    Header::$variant(v) => Some(v.value()),
                    _ => None,
                })
            }
        )*
    };
}

first_value! {
    call_id => CallId,
    from => From,
    to => To,
    cseq_value => CSeq,
    top_via => Via,
    contact => Contact,
    content_type => ContentType,
    expires => Expires,
}

/// Values of every header of one kind, each comma-separated value apart, in order.
pub fn all_values(headers: &Headers, pick: fn(&Header) -> Option<&str>) -> Vec<&str> {
    headers
        .iter()
        .filter_map(pick)
        .flat_map(|v| split_outside(v, ','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

pub fn pick_via(h: &Header) -> Option<&str> {
    match h {
        Header::Via(v) => Some(v.value()),
        _ => None,
    }
}

pub fn pick_record_route(h: &Header) -> Option<&str> {
    match h {
        Header::RecordRoute(v) => Some(v.value()),
        _ => None,
    }
}

pub fn pick_require(h: &Header) -> Option<&str> {
    match h {
        Header::Require(v) => Some(v.value()),
        _ => None,
    }
}

pub fn pick_accept(h: &Header) -> Option<&str> {
    match h {
        Header::Accept(v) => Some(v.value()),
        _ => None,
    }
}

pub fn pick_allow(h: &Header) -> Option<&str> {
    match h {
        Header::Allow(v) => Some(v.value()),
        _ => None,
    }
}

pub fn pick_supported(h: &Header) -> Option<&str> {
    match h {
        Header::Supported(v) => Some(v.value()),
        _ => None,
    }
}

/// Whether the option `tag` (or method) is listed in the headers `pick` selects (Require,
/// Supported, Allow).
pub fn lists_tag(headers: &Headers, pick: fn(&Header) -> Option<&str>, tag: &str) -> bool {
    all_values(headers, pick)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tag))
}

/// Values of every header named `name` that rsip has no type for (P-Asserted-Identity,
/// Session-Expires, RSeq...), each comma-separated value apart, in order. Names compare
/// without case.
pub fn other_values<'a>(headers: &'a Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
            _ => None,
        })
        .flat_map(|v| split_outside(v, ','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The first value of the header named `name` that rsip has no type for.
pub fn other_value<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    other_values(headers, name).into_iter().next()
}

/// Records on the top Via where a request came from (RFC 3261 18.2.1, RFC 3581 4):
/// `received` when the sent-by host is not the source address or the client asked for
/// `rport`, and the source port in an empty `rport`. Responses then carry both back.
pub fn stamp_received(headers: &mut Headers, source: std::net::SocketAddr) {
    let Some(slot) = headers.iter_mut().find(|h| matches!(h, Header::Via(_))) else {
        return;
    };
    let Header::Via(via) = slot else {
        return;
    };
    if let Some(stamped) = received_via(via.value(), source) {
        *slot = Header::Via(stamped.into());
    }
}

/// The Via value with `received` (and `rport`) filled in, or `None` when it needs
/// nothing: the common case (a trunk that sends from its sent-by and asks no rport) costs
/// no allocation, as this runs for every request.
fn received_via(whole: &str, source: std::net::SocketAddr) -> Option<String> {
    let top_end = whole.find(',').unwrap_or(whole.len());
    let quick_head = whole[..top_end].split(';').next().unwrap_or_default();
    let quick_host = quick_head
        .trim()
        .split_once(' ')
        .map(|(_, by)| host_of(by.trim()))
        .unwrap_or_default();
    let asks_rport = whole.as_bytes()[..top_end]
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"rport"));
    if !asks_rport && quick_host.parse::<std::net::IpAddr>() == Ok(source.ip()) {
        return None;
    }
    let values = split_outside(whole, ',');
    let top = values[0].trim();
    let mut parts = split_outside(top, ';').into_iter();
    let head = parts.next().unwrap_or_default().trim();
    let params: Vec<(&str, Option<&str>)> = parts
        .map(|p| {
            let (k, v) = p.split_once('=').map_or((p, None), |(k, v)| (k, Some(v)));
            (k.trim(), v.map(str::trim))
        })
        .collect();
    let wants_rport = params
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("rport") && v.is_none_or(str::is_empty));
    if !wants_rport && quick_host.parse::<std::net::IpAddr>() == Ok(source.ip()) {
        return None;
    }
    let mut out = head.to_owned();
    for (k, v) in &params {
        if k.eq_ignore_ascii_case("received") || k.eq_ignore_ascii_case("rport") {
            continue;
        }
        out.push(';');
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    let _ = write!(out, ";received={}", source.ip());
    if wants_rport {
        let _ = write!(out, ";rport={}", source.port());
    }
    for rest in &values[1..] {
        out.push_str(", ");
        out.push_str(rest.trim());
    }
    Some(out)
}

/// The host of a `host[:port]` sent-by or hostport, without IPv6 brackets.
pub fn host_of(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    hostport.split(':').next().unwrap_or_default()
}

/// The port of a `host[:port]` sent-by, if written.
pub fn port_of(hostport: &str) -> Option<u16> {
    let port = match hostport.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.1.strip_prefix(':')?,
        None => hostport.split_once(':')?.1,
    };
    port.parse().ok()
}

/// The first Via value of a possibly comma-joined Via header.
pub fn first_via(headers: &Headers) -> Option<&str> {
    all_values(headers, pick_via).into_iter().next()
}

pub fn from_tag(headers: &Headers) -> Option<&str> {
    from(headers).and_then(|v| param(v, "tag"))
}

pub fn to_tag(headers: &Headers) -> Option<&str> {
    to(headers).and_then(|v| param(v, "tag"))
}

pub fn cseq(headers: &Headers) -> Option<(u32, Method)> {
    let c = CSeqValue::parse(cseq_value(headers)?)?;
    Some((c.seq, c.method.parse().ok()?))
}

/// The top Via's branch and sent-by (host[:port]), the server transaction's identity.
pub fn via_branch_sent_by(headers: &Headers) -> Option<(&str, &str)> {
    let via = first_via(headers)?;
    let head = split_outside(via, ';')[0];
    let sent_by = head.trim().split_once(' ')?.1.trim();
    Some((param(via, "branch").unwrap_or_default(), sent_by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_mixed_case_names_become_canonical() {
        assert_eq!(known_name("v"), Some("Via"));
        assert_eq!(known_name("MaX-fOrWaRdS"), Some("Max-Forwards"));
        assert_eq!(known_name("i"), Some("Call-ID"));
        assert_eq!(known_name("NewFangledHeader"), None);
    }

    #[test]
    fn separators_lose_their_optional_whitespace() {
        assert_eq!(
            canonical_value("Via", "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"
        );
        assert_eq!(
            canonical_value(
                "To",
                "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
            ),
            "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
        );
        assert_eq!(
            canonical_value(
                "From",
                r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#
            ),
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
        );
    }

    #[test]
    fn cseq_needs_a_small_number_and_a_method() {
        assert_eq!(
            CSeqValue::parse("0009 INVITE"),
            Some(CSeqValue {
                seq: 9,
                method: "INVITE"
            })
        );
        assert_eq!(CSeqValue::parse("36893488147419103232 REGISTER"), None);
        assert_eq!(CSeqValue::parse("2147483648 INVITE"), None);
        assert_eq!(CSeqValue::parse("12"), None);
    }

    #[test]
    fn name_addr_checks_follow_rfc_4475() {
        assert!(check_name_addr(r#""Mr. J. User <sip:j.user@example.com>"#, false).is_err());
        assert!(
            check_name_addr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43", true).is_err()
        );
        assert!(
            check_name_addr(r#""Watson, Thomas" < sip:t.watson@example.org >"#, false).is_err()
        );
        assert!(
            check_name_addr("sip:user@example.com?Route=%3Csip:sip.example.com%3E", true).is_err()
        );
        assert!(check_name_addr(r#""Joe" <sip:joe@example.org>;;;;"#, true).is_err());
        assert!(check_name_addr(r#""caller"<sip:caller@example.com>;tag=323"#, false).is_ok());
        assert!(check_name_addr("sip:caller@example.net;tag=34525", false).is_ok());
        assert!(check_name_addr("Joe Caller <sip:joe@example.org>", false).is_ok());
    }

    #[test]
    fn via_checks_reject_empty_parameters() {
        assert!(check_via("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(
            check_via("SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1, SIP/2.0/TCP a.example.com").is_ok()
        );
        assert!(check_via("SIP/2.0/UNKNOWN x.example.com;branch=z9hG4bK1").is_ok());
    }

    fn via_headers(via: &str) -> Headers {
        let mut h = Headers::default();
        h.push(Header::Via(via.into()));
        h
    }

    #[test]
    fn the_top_via_learns_where_the_request_came_from() {
        let nat: std::net::SocketAddr = "203.0.113.7:40001".parse().expect("addr");
        // RFC 3581 4: rport asked for, so received and rport are filled in.
        let mut h = via_headers("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport");
        stamp_received(&mut h, nat);
        assert_eq!(
            first_via(&h),
            Some("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.7;rport=40001")
        );
        // Only the top value of a joined header changes.
        let mut h = via_headers(
            "SIP/2.0/UDP 10.0.0.5;rport;branch=z9hG4bK2, SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK0",
        );
        stamp_received(&mut h, nat);
        assert_eq!(
            all_values(&h, pick_via),
            vec![
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK2;received=203.0.113.7;rport=40001",
                "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK0"
            ]
        );
        // RFC 3261 18.2.1: no rport, but another host: received only.
        let mut h = via_headers("SIP/2.0/UDP pbx.example.com;branch=z9hG4bK3");
        stamp_received(&mut h, nat);
        assert_eq!(
            first_via(&h),
            Some("SIP/2.0/UDP pbx.example.com;branch=z9hG4bK3;received=203.0.113.7")
        );
        // The source is the sent-by and no rport: untouched.
        let mut h = via_headers("SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK4");
        stamp_received(&mut h, nat);
        assert_eq!(
            first_via(&h),
            Some("SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK4")
        );
    }

    #[test]
    fn hosts_and_ports_are_read_from_sent_by() {
        assert_eq!(host_of("[2001:db8::1]:5070"), "2001:db8::1");
        assert_eq!(port_of("[2001:db8::1]:5070"), Some(5070));
        assert_eq!(host_of("10.0.0.1:5060"), "10.0.0.1");
        assert_eq!(port_of("10.0.0.1:5060"), Some(5060));
        assert_eq!(port_of("pbx.example.com"), None);
        assert_eq!(port_of("[2001:db8::1]"), None);
    }

    #[test]
    fn params_and_uris_are_read_outside_quotes_and_brackets() {
        let v = r#""a;tag=x" <sip:u@h;tag=y>;tag=z"#;
        assert_eq!(param(v, "tag"), Some("z"));
        assert_eq!(addr_uri(v), "sip:u@h;tag=y");
        assert_eq!(addr_uri("sip:u@h;tag=1"), "sip:u@h");
    }
}
