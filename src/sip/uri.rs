//! Reading the parts of SIP URIs we act on: the user (a called number), host, port and the
//! `transport` parameter of a target. rsip's URI type is too strict for user parts RFC 3261
//! allows (see `parse::escape_userinfo`), so this reads the text itself. Pure functions.

use std::net::{IpAddr, SocketAddr};

use super::Transport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub scheme: &'a str,
    /// Percent-decoded.
    pub user: Option<String>,
    /// Without IPv6 brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    /// `;name[=value]` parameters after the host.
    pub params: &'a str,
}

/// `host:port` with IPv6 brackets, as Via, Contact and URIs write an address.
pub fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

impl<'a> SipUri<'a> {
    /// Reads `sip:`/`sips:` URIs (also inside `<...>`); `None` for anything else.
    pub fn parse(text: &'a str) -> Option<SipUri<'a>> {
        let text = text.trim().trim_start_matches('<').trim_end_matches('>');
        let (scheme, rest) = text.split_once(':')?;
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        let rest = rest.split('?').next().unwrap_or_default();
        let (user, hostpart) = match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or_default();
                (Some(percent_decode(user)), host)
            }
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (host, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p.parse().ok()?)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(SipUri {
            scheme,
            user,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// The transport a request to this URI should use (RFC 3263 without DNS): TLS for a
    /// `sips:` URI, else the `transport` parameter, else UDP.
    pub fn transport(&self) -> Transport {
        self.explicit_transport().unwrap_or(Transport::Udp)
    }

    /// The transport the URI names: TLS for `sips:`, else its `transport` parameter.
    pub fn explicit_transport(&self) -> Option<Transport> {
        if self.scheme.eq_ignore_ascii_case("sips") {
            return Some(Transport::Tls);
        }
        self.param("transport").and_then(Transport::from_name)
    }

    /// The port, or the default of the URI's transport.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.transport().default_port())
    }

    /// The socket address, when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port_or_default()))
    }
}

/// rsip's URI parser stops a user part at `.` or `;` (both legal there, RFC 3261 25.1), so
/// those characters are percent-encoded before rsip sees the URI; `SipUri` decodes them.
pub fn escape_userinfo(uri: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return uri.into();
    };
    let Some((user, host)) = rest.rsplit_once('@') else {
        return uri.into();
    };
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-_!~*'()&=+$,%:".contains(&b);
    if user.bytes().all(keep) {
        return uri.into();
    }
    let mut out = format!("{scheme}:");
    push_escaped(&mut out, user, keep);
    out.push('@');
    out.push_str(host);
    out.into()
}

/// The rsip form of a URI we send (a Request-URI), with its user part made readable to rsip.
pub fn to_rsip(uri: &str) -> Option<rsip::Uri> {
    rsip::Uri::try_from(escape_userinfo(uri).as_ref()).ok()
}

/// RFC 3986 percent-encoding of everything but unreserved characters, so that UTF-8 text
/// (a Mandarin transcript) travels in a header.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    push_escaped(&mut out, text, |b| {
        b.is_ascii_alphanumeric() || b"-._~".contains(&b)
    });
    out
}

/// Appends `text` to `out`, every byte `keep` refuses written as `%XX`.
fn push_escaped(out: &mut String, text: &str, keep: impl Fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
}

/// Decodes `%XX` escapes; invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_are_percent_encoded_and_come_back() {
        let t = "我想查一下社保 (急)";
        let e = percent_encode(t);
        assert!(e.is_ascii() && !e.contains(' '), "{e}");
        assert_eq!(percent_decode(&e), t);
    }

    #[test]
    fn reads_user_host_port_and_params() {
        let u = SipUri::parse("<sip:12345@10.0.0.1:5080;transport=tcp;lr>").expect("valid");
        assert_eq!(u.user.as_deref(), Some("12345"));
        assert_eq!(u.host, "10.0.0.1");
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.transport(), Transport::Tcp);
        assert_eq!(
            u.socket_addr(),
            Some("10.0.0.1:5080".parse().expect("addr"))
        );
    }

    #[test]
    fn user_parts_rfc_3261_allows_are_kept_and_decoded() {
        let u = SipUri::parse("sip:user%3Bpar=u%2540example.net@example.com").expect("valid");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        let u = SipUri::parse("sips:j.user:secret@[::1]:5061").expect("valid");
        assert_eq!(u.user.as_deref(), Some("j.user"));
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Transport::Tls, "sips: means TLS");
    }

    #[test]
    fn tls_uris_default_to_port_5061() {
        let u = SipUri::parse("sip:10.0.0.1;transport=TLS").expect("valid");
        assert_eq!(u.transport(), Transport::Tls);
        assert_eq!(
            u.socket_addr(),
            Some("10.0.0.1:5061".parse().expect("addr"))
        );
        let u = SipUri::parse("sips:carrier.example.com").expect("valid");
        assert_eq!(u.port_or_default(), 5061);
        let u = SipUri::parse("sip:carrier.example.com;transport=tcp").expect("valid");
        assert_eq!(u.port_or_default(), 5060);
    }

    #[test]
    fn other_schemes_and_broken_hosts_are_refused() {
        assert_eq!(SipUri::parse("tel:+861012345"), None);
        assert_eq!(SipUri::parse("sip:user@"), None);
        assert_eq!(SipUri::parse("sip:host:notaport"), None);
        assert_eq!(SipUri::parse("%%%"), None);
    }
}
