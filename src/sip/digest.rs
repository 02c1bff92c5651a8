//! HTTP digest authentication as SIP uses it (RFC 7616, RFC 2617, RFC 3261 §22.4), both
//! ways: for the registrar, the challenge header value, the Authorization header's
//! parameters and the expected response (nonces and replay state live in
//! `registrar::nonce`); for requests we send to a trunk that challenges them, the
//! challenge read and the Authorization that answers it. Pure functions.
//!
//! rsip's typed Authorization is not used: it reads `nc` as a decimal `u8` (nc is eight
//! hex digits and grows past 255) and does not know the `SHA-256` algorithm name.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use serde::Deserialize;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Algorithm {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA-256")]
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(name: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Lower-case hex of the hash of `parts` joined with `:`.
    fn hash(self, parts: &[&str]) -> String {
        let joined = parts.join(":");
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(joined.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(joined.as_bytes())),
        }
    }
}

/// The parameters of a `Digest` Authorization header this registrar can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: String,
    /// As sent (eight hex digits): the response is computed over the text.
    pub nc_text: String,
    pub nc: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest authorization")]
    NotDigest,
    #[error("malformed authorization parameters")]
    Syntax,
    #[error("authorization without {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm {0}")]
    Algorithm(String),
    #[error("qop must be auth, not {0}")]
    Qop(String),
    #[error("nc is not eight hex digits")]
    Nc,
}

/// Parses the value of an Authorization header (`Digest username="...", ...`).
/// A missing `algorithm` means MD5 (RFC 7616 §3.4); `qop=auth` with `nc` and `cnonce` is
/// required, since only `qop="auth"` is ever offered.
pub fn parse_authorization(value: &str) -> Result<Credentials, DigestError> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace).unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    let params = auth_params(rest)?;
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or(DigestError::Missing(name))
    };
    let algorithm = match get("algorithm") {
        Ok(name) => Algorithm::parse(&name).ok_or(DigestError::Algorithm(name))?,
        Err(_) => Algorithm::Md5,
    };
    let qop = get("qop")?;
    if !qop.eq_ignore_ascii_case("auth") {
        return Err(DigestError::Qop(qop));
    }
    let nc_text = get("nc")?;
    if nc_text.len() != 8 {
        return Err(DigestError::Nc);
    }
    let nc = u32::from_str_radix(&nc_text, 16).map_err(|_| DigestError::Nc)?;
    Ok(Credentials {
        username: get("username")?,
        realm: get("realm")?,
        nonce: get("nonce")?,
        uri: get("uri")?,
        response: get("response")?,
        algorithm,
        cnonce: get("cnonce")?,
        nc_text,
        nc,
    })
}

/// `name=token` or `name="quoted \"string\""`, separated by commas.
fn auth_params(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(DigestError::Syntax);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.push(chars.next().ok_or(DigestError::Syntax)?),
                    Some(c) => value.push(c),
                    None => return Err(DigestError::Syntax),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value));
    }
}

/// The response a client knowing `password` sends for `qop=auth` (RFC 7616 §3.4.1).
pub fn expected_response(c: &Credentials, method: &str, password: &str) -> String {
    let qop = Some((c.nc_text.as_str(), c.cnonce.as_str()));
    let user = (c.username.as_str(), c.realm.as_str(), password);
    response(c.algorithm, user, (method, &c.uri), &c.nonce, qop)
}

/// The digest response (RFC 7616 3.4.1): with `qop=auth` (`nc` text and cnonce), or
/// without qop as RFC 2069 servers still challenge.
fn response(
    a: Algorithm,
    (username, realm, password): (&str, &str, &str),
    (method, uri): (&str, &str),
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = a.hash(&[username, realm, password]);
    let ha2 = a.hash(&[method, uri]);
    match qop {
        Some((nc, cnonce)) => a.hash(&[&ha1, nonce, nc, cnonce, "auth", &ha2]),
        None => a.hash(&[&ha1, nonce, &ha2]),
    }
}

/// A WWW-Authenticate or Proxy-Authenticate challenge, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    /// The server offers `qop=auth` (else the RFC 2069 form is answered).
    pub qop_auth: bool,
    pub opaque: Option<String>,
    /// The nonce was stale, not the password wrong: answering again is worth it.
    pub stale: bool,
}

/// Reads a challenge. Algorithms we cannot compute and qop without `auth` are refused.
pub fn parse_challenge(value: &str) -> Result<Challenge, DigestError> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace).unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    let params = auth_params(rest)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let algorithm = match get("algorithm") {
        Some(name) => Algorithm::parse(&name).ok_or(DigestError::Algorithm(name))?,
        None => Algorithm::Md5,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
        Some(q) => return Err(DigestError::Qop(q)),
    };
    Ok(Challenge {
        realm: get("realm").ok_or(DigestError::Missing("realm"))?,
        nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
        algorithm,
        qop_auth,
        opaque: get("opaque"),
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// The challenge a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) carries, and
/// whether a proxy made it; `None` for other responses or no readable challenge.
pub fn challenge_of(response: &rsip::Response) -> Option<(Challenge, bool)> {
    use rsip::headers::UntypedHeader;
    let proxy = match response.status_code.code() {
        401 => false,
        407 => true,
        _ => return None,
    };
    response.headers.iter().find_map(|h| {
        let value = match (h, proxy) {
            (rsip::Header::WwwAuthenticate(v), false) => v.value(),
            (rsip::Header::ProxyAuthenticate(v), true) => v.value(),
            _ => return None,
        };
        parse_challenge(value).ok().map(|c| (c, proxy))
    })
}

/// The header carrying `value` in answer to a challenge (Proxy-Authorization for a
/// proxy's).
pub fn answer_header(value: String, proxy: bool) -> rsip::Header {
    if proxy {
        rsip::Header::ProxyAuthorization(value.into())
    } else {
        rsip::Header::Authorization(value.into())
    }
}

/// Who we are to a trunk that challenges what we send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub username: String,
    pub password: crate::secret::Secret,
    /// Answer challenges of this realm only; empty: any.
    pub realm: String,
}

impl ClientCredentials {
    /// Whether these credentials answer `challenge` (its realm is theirs).
    pub fn takes(&self, challenge: &Challenge) -> bool {
        self.realm.is_empty() || self.realm == challenge.realm
    }

    /// The header answering the challenge of `response` to `request` (sent as the `nc`th
    /// use of that nonce), if it is one these credentials may answer.
    pub fn answer(
        &self,
        response: &rsip::Response,
        request: &rsip::Request,
        nc: u32,
    ) -> Option<(rsip::Header, String)> {
        let (challenge, proxy) = challenge_of(response)?;
        if !self.takes(&challenge) {
            return None;
        }
        let value = authorization(
            &challenge,
            &Answer {
                username: &self.username,
                password: self.password.expose(),
                method: &request.method.to_string(),
                uri: &request.uri.to_string(),
                cnonce: &format!("{:016x}", rand::random::<u64>()),
                nc,
            },
        );
        Some((answer_header(value, proxy), challenge.nonce))
    }
}

/// What a client answers a challenge with.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    /// The Request-URI, as written in the request.
    pub uri: &'a str,
    /// Our fresh client nonce, and how many times this nonce was used (from 1).
    pub cnonce: &'a str,
    pub nc: u32,
}

/// The Authorization (or Proxy-Authorization) value answering `ch`.
pub fn authorization(ch: &Challenge, a: &Answer) -> String {
    let quoted = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let nc = format!("{:08x}", a.nc);
    let qop = ch.qop_auth.then_some((nc.as_str(), a.cnonce));
    let user = (a.username, ch.realm.as_str(), a.password);
    let digest = response(ch.algorithm, user, (a.method, a.uri), &ch.nonce, qop);
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{digest}\", algorithm={}",
        quoted(a.username),
        quoted(&ch.realm),
        quoted(&ch.nonce),
        quoted(a.uri),
        ch.algorithm.name()
    );
    if ch.qop_auth {
        let _ = write!(
            value,
            ", qop=auth, nc={nc}, cnonce=\"{}\"",
            quoted(a.cnonce)
        );
    }
    if let Some(o) = &ch.opaque {
        let _ = write!(value, ", opaque=\"{}\"", quoted(o));
    }
    value
}

/// Whether the client's response (hex, any case) is the expected one.
pub fn same_response(expected: &str, given: &str) -> bool {
    same_bytes(expected.as_bytes(), given.to_ascii_lowercase().as_bytes())
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of one WWW-Authenticate header.
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut value = format!(
        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        realm.replace('\\', "\\\\").replace('"', "\\\""),
        algorithm.name()
    );
    if stale {
        let _ = write!(value, ", stale=true");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    fn rfc7616(algorithm: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             uri=\"/dir/index.html\", algorithm={algorithm}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
             response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        for (name, response) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = parse_authorization(&rfc7616(name, response)).expect("parses");
            assert_eq!(c.algorithm.name(), name);
            assert_eq!(c.nc, 1);
            let expected = expected_response(&c, "GET", "Circle of Life");
            assert_eq!(expected, response, "{name}");
            assert!(same_response(&expected, &c.response));
            assert!(!same_response(
                &expected_response(&c, "GET", "Circle of life"),
                &c.response
            ));
        }
    }

    #[test]
    fn rfc2617_example_with_md5_as_the_default_algorithm() {
        let c = parse_authorization(
            "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
             qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
             response=\"6629fae49393a05397450978507c4ef1\",\r\n \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("parses");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(
            expected_response(&c, "GET", "Circle Of Life"),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn nc_is_hex_and_quoted_values_unescape() {
        let c = parse_authorization(
            "digest username=\"a\\\"b\", realm=r, nonce=n, uri=\"sip:x\", response=z, \
             qop=\"auth\", nc=000001ff, cnonce=c",
        )
        .expect("parses");
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.nc, 511);
    }

    #[test]
    fn unusable_authorizations_are_refused() {
        let base = "username=u, realm=r, nonce=n, uri=sip:x, response=z, cnonce=c";
        let cases = [
            ("Basic dXNlcjpwdw==".to_owned(), DigestError::NotDigest),
            (
                format!("Digest {base}, nc=00000001"),
                DigestError::Missing("qop"),
            ),
            (
                format!("Digest {base}, qop=auth-int, nc=00000001"),
                DigestError::Qop("auth-int".into()),
            ),
            (format!("Digest {base}, qop=auth, nc=1"), DigestError::Nc),
            (
                format!("Digest {base}, qop=auth, nc=00000001, algorithm=SHA-512-256"),
                DigestError::Algorithm("SHA-512-256".into()),
            ),
            ("Digest username=\"open".to_owned(), DigestError::Syntax),
        ];
        for (text, error) in cases {
            assert_eq!(parse_authorization(&text), Err(error), "{text}");
        }
    }

    #[test]
    fn a_client_answer_is_what_the_server_side_expects() {
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let ch = parse_challenge(&challenge("kamailio", "n0nce", algorithm, false))
                .expect("our own challenge reads");
            assert!(ch.qop_auth && !ch.stale);
            let answer = Answer {
                username: "12345",
                password: "s3cret",
                method: "REGISTER",
                uri: "sip:10.0.0.1",
                cnonce: "c1",
                nc: 1,
            };
            let value = authorization(&ch, &answer);
            let c = parse_authorization(&value).expect("the answer reads");
            assert_eq!(c.username, "12345");
            assert_eq!(c.nc_text, "00000001");
            assert!(same_response(
                &expected_response(&c, "REGISTER", "s3cret"),
                &c.response
            ));
            assert!(!same_response(
                &expected_response(&c, "REGISTER", "wrong"),
                &c.response
            ));
        }
    }

    #[test]
    fn rfc2617_example_answered_by_the_client() {
        let ch = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("reads");
        let value = authorization(
            &ch,
            &Answer {
                username: "Mufasa",
                password: "Circle Of Life",
                method: "GET",
                uri: "/dir/index.html",
                cnonce: "0a4f113b",
                nc: 1,
            },
        );
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        // Without qop (RFC 2069): no nc or cnonce.
        let old = parse_challenge("Digest realm=\"r\", nonce=\"n\"").expect("reads");
        assert!(!old.qop_auth);
        assert!(
            !authorization(
                &old,
                &Answer {
                    username: "u",
                    password: "p",
                    method: "INVITE",
                    uri: "sip:x",
                    cnonce: "c",
                    nc: 1
                }
            )
            .contains("nc=")
        );
        assert_eq!(
            parse_challenge("Digest realm=r, nonce=n, algorithm=SHA-512-256"),
            Err(DigestError::Algorithm("SHA-512-256".into()))
        );
    }

    #[test]
    fn challenge_offers_qop_auth_and_marks_stale() {
        assert_eq!(
            challenge("hotline", "abc", Algorithm::Sha256, true),
            "Digest realm=\"hotline\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
    }
}
