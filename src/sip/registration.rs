//! Outbound registration of one trunk (RFC 3261 10), sans IO: the REGISTERs that keep our
//! Contact bound at a carrier's or PBX's registrar, answering its digest challenges (401
//! and 407, MD5 or SHA-256, with or without qop), raising the interval on 423, registering
//! again before the binding expires, and backing off after a failure. It owns the
//! registration's Call-ID, CSeq and state; it sends nothing and reads no clock: the
//! endpoint core gives it `now` and the answers to its REGISTERs, and sends what it asks.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

use super::digest::{self, Answer, Challenge};
use super::{Transport, build, headers};
use crate::secret::Secret;

/// The first wait after a failure; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What one trunk registers, resolved from `[trunks.named.NAME.register]`.
#[derive(Debug, Clone)]
pub struct RegisterSettings {
    /// The trunk's name, for logs and state.
    pub trunk: String,
    /// The REGISTER's Request-URI (`sip:registrar[:port]`).
    pub registrar: String,
    /// The address of record, in From and To (`sip:user@domain`).
    pub aor: String,
    /// Our Contact URI, which the trunk's calls will be sent to.
    pub contact: String,
    /// Digest user name and password.
    pub auth_user: String,
    pub password: Secret,
    /// Answer challenges of this realm only; empty: any.
    pub realm: String,
    /// The binding's lifetime we ask for, in seconds.
    pub expires: u32,
    pub transport: Transport,
    /// Our address as written in Via (`host:port`).
    pub sent_by: String,
}

/// Where a registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// A REGISTER is out and no binding is known yet.
    Registering,
    /// Bound until `until` (the registrar's expiry).
    Registered {
        /// When the binding lapses unless renewed.
        until: Instant,
    },
    /// The last attempt failed (`why`); the next goes at `retry_at`.
    Failed {
        /// What went wrong: the registrar's status, or no answer.
        why: String,
        /// When it is tried again.
        retry_at: Instant,
    },
    /// Unregistered on purpose (the engine is stopping).
    Stopped,
}

/// One trunk's registration (see the module doc).
pub struct Registration {
    settings: RegisterSettings,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The CSeq of the REGISTER awaiting its answer.
    in_flight: Option<u32>,
    /// The challenge we answer (and whether a proxy made it), with how often its nonce
    /// was used; the nonce we last answered, to tell wrong credentials from a new nonce.
    challenge: Option<(Challenge, bool, u32)>,
    answered_nonce: Option<String>,
    expires: u32,
    state: RegState,
    next_at: Option<Instant>,
    backoff: Duration,
    failures: u64,
    out: VecDeque<Request>,
}

impl Registration {
    /// A registration that sends its first REGISTER at `now`.
    pub fn new(settings: RegisterSettings, now: Instant) -> Registration {
        let expires = settings.expires;
        Registration {
            call_id: build::new_call_id(),
            from_tag: build::new_tag(),
            cseq: 0,
            in_flight: None,
            challenge: None,
            answered_nonce: None,
            expires,
            state: RegState::Registering,
            next_at: Some(now),
            backoff: FIRST_BACKOFF,
            failures: 0,
            out: VecDeque::new(),
            settings,
        }
    }

    /// The trunk this registers.
    pub fn trunk(&self) -> &str {
        &self.settings.trunk
    }

    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// Attempts that failed since the start.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The next REGISTER to send (to the registrar, in a client transaction).
    pub fn poll_request(&mut self) -> Option<Request> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_at.is_some_and(|at| at <= now) && self.in_flight.is_none() {
            self.next_at = None;
            self.send(self.expires);
        }
    }

    /// Unregisters (Expires: 0) and stops: the engine is going away.
    pub fn stop(&mut self) {
        if matches!(self.state, RegState::Registered { .. }) {
            // Its challenge, if it gets one, is answered afresh.
            self.challenge = None;
            self.answered_nonce = None;
            self.send(0);
        }
        self.state = RegState::Stopped;
        self.next_at = None;
    }

    /// The answer to one of our REGISTERs.
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        let Some((seq, Method::Register)) = headers::cseq(&response.headers) else {
            return;
        };
        let code = response.status_code.code();
        if self.in_flight != Some(seq) || code < 200 {
            return;
        }
        self.in_flight = None;
        if self.state == RegState::Stopped {
            // The unregistration may be challenged too (a nonce gone stale): answer once.
            if matches!(code, 401 | 407)
                && self.answered_nonce.is_none()
                && let Some((challenge, proxy)) = digest::challenge_of(response)
            {
                self.challenge = Some((challenge, proxy, 0));
                self.send(0);
            }
            return;
        }
        match code {
            200..=299 => {
                let granted = granted_expires(&response.headers, &self.settings.contact)
                    .unwrap_or(self.expires);
                self.backoff = FIRST_BACKOFF;
                self.state = RegState::Registered {
                    until: now + secs(granted),
                };
                // Renew with a margin: half the time for short bindings, a minute
                // before expiry for long ones.
                let renew = granted.saturating_sub(60).max(granted / 2).max(1);
                self.next_at = Some(now + secs(renew));
                tracing::info!(trunk = %self.settings.trunk, expires = granted, "registered");
            }
            401 | 407 => self.challenged(now, response, code == 407),
            423 => match min_expires(&response.headers) {
                Some(min) if min > self.expires => {
                    self.expires = min;
                    self.send(min);
                }
                _ => self.fail(now, "423 without a usable Min-Expires".into()),
            },
            _ => self.fail(now, format!("{code} from the registrar")),
        }
    }

    /// Our REGISTER got no answer in time.
    pub fn handle_no_answer(&mut self, now: Instant, seq: u32) {
        if self.in_flight == Some(seq) {
            self.in_flight = None;
            if self.state != RegState::Stopped {
                self.fail(now, "no answer from the registrar".into());
            }
        }
    }

    fn challenged(&mut self, now: Instant, response: &Response, proxy: bool) {
        let Some((challenge, _)) = digest::challenge_of(response) else {
            return self.fail(now, format!("{} without a usable challenge", status(proxy)));
        };
        let realm = &self.settings.realm;
        if !realm.is_empty() && *realm != challenge.realm {
            return self.fail(
                now,
                format!("challenged for realm {:?}, not {realm:?}", challenge.realm),
            );
        }
        // The same nonce again, not stale: the registrar refused our answer.
        if !challenge.stale && self.answered_nonce.as_deref() == Some(challenge.nonce.as_str()) {
            return self.fail(now, format!("{}: credentials refused", status(proxy)));
        }
        self.challenge = Some((challenge, proxy, 0));
        self.send(self.expires);
    }

    fn fail(&mut self, now: Instant, why: String) {
        self.failures += 1;
        tracing::warn!(trunk = %self.settings.trunk, %why, retry_in_s = self.backoff.as_secs(), "registration failed");
        let retry_at = now + self.backoff;
        self.state = RegState::Failed { why, retry_at };
        self.next_at = Some(retry_at);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        // A new attempt starts without the old nonce.
        self.challenge = None;
        self.answered_nonce = None;
    }

    fn send(&mut self, expires: u32) {
        self.cseq += 1;
        let s = &self.settings;
        let mut h = Headers::default();
        h.push(build::via(s.transport, &s.sent_by, &build::new_branch()));
        h.push(Header::MaxForwards("70".into()));
        h.push(Header::From(
            format!("<{}>;tag={}", s.aor, self.from_tag).into(),
        ));
        h.push(Header::To(format!("<{}>", s.aor).into()));
        h.push(Header::CallId(self.call_id.clone().into()));
        h.push(Header::CSeq(format!("{} REGISTER", self.cseq).into()));
        h.push(Header::Contact(format!("<{}>", s.contact).into()));
        h.push(Header::Expires(expires.to_string().into()));
        h.push(Header::Allow(super::ALLOW.into()));
        if let Some((challenge, proxy, uses)) = self.challenge.as_mut() {
            *uses += 1;
            let value = digest::authorization(
                challenge,
                &Answer {
                    username: &s.auth_user,
                    password: s.password.expose(),
                    method: "REGISTER",
                    uri: &s.registrar,
                    cnonce: &format!("{:016x}", rand::random::<u64>()),
                    nc: *uses,
                },
            );
            self.answered_nonce = Some(challenge.nonce.clone());
            h.push(digest::answer_header(value, *proxy));
        }
        let Some(uri) = super::uri::to_rsip(&s.registrar) else {
            return self.state = RegState::Stopped;
        };
        self.in_flight = Some(self.cseq);
        self.out.push_back(Request {
            method: Method::Register,
            uri,
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        });
    }
}

fn status(proxy: bool) -> &'static str {
    if proxy { "407" } else { "401" }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(s.into())
}

/// What the registrar granted our Contact: its `expires` parameter in the 2xx's Contact
/// list (RFC 3261 10.2.4), else the Expires header.
fn granted_expires(h: &Headers, ours: &str) -> Option<u32> {
    let from_contact = headers::all_values(h, |h| match h {
        Header::Contact(c) => Some(c.value()),
        _ => None,
    })
    .into_iter()
    .find(|c| headers::addr_uri(c).eq_ignore_ascii_case(ours))
    .and_then(|c| headers::param(c, "expires"))
    .and_then(headers::parse_u32);
    from_contact.or_else(|| headers::expires(h).and_then(|e| headers::parse_u32(e.trim())))
}

fn min_expires(h: &Headers) -> Option<u32> {
    h.iter().find_map(|h| match h {
        Header::MinExpires(v) => headers::parse_u32(v.value().trim()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::{Algorithm, challenge, expected_response, parse_authorization};
    use rsip::SipMessage;

    fn settings() -> RegisterSettings {
        RegisterSettings {
            trunk: "carrier".into(),
            registrar: "sip:10.0.0.1:5060".into(),
            aor: "sip:12345@carrier.example".into(),
            contact: "sip:12345@10.0.0.100:5060;line=abc".into(),
            auth_user: "12345".into(),
            password: Secret::new("s3cret"),
            realm: String::new(),
            expires: 600,
            transport: Transport::Udp,
            sent_by: "10.0.0.100:5060".into(),
        }
    }

    /// The registrar's answer to `req`: `code` with `extra` header lines.
    fn answer(req: &Request, code: u16, extra: &[Header]) -> Response {
        let mut r = build::response(req, code, Some("reg"));
        for h in extra {
            r.headers.push(h.clone());
        }
        // Through the wire and back, as the endpoint would hand it over.
        match crate::sip::parse::parse(&build::encode(&SipMessage::Response(r)), Transport::Udp) {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("our response must parse: {other:?}"),
        }
    }

    fn auth_of(req: &Request) -> Option<String> {
        req.headers.iter().find_map(|h| match h {
            Header::Authorization(v) => Some(v.value().to_owned()),
            Header::ProxyAuthorization(v) => Some(v.value().to_owned()),
            _ => None,
        })
    }

    #[test]
    fn a_challenge_is_answered_and_the_binding_renewed_before_it_lapses() {
        let t0 = Instant::now();
        let mut reg = Registration::new(settings(), t0);
        reg.handle_timeout(t0);
        let first = reg.poll_request().expect("a REGISTER");
        assert_eq!(first.method, Method::Register);
        assert_eq!(first.uri.to_string(), "sip:10.0.0.1:5060");
        assert_eq!(auth_of(&first), None);
        assert_eq!(headers::expires(&first.headers), Some("600"));
        let www =
            Header::WwwAuthenticate(challenge("carrier", "n1", Algorithm::Sha256, false).into());
        reg.handle_response(t0, &answer(&first, 401, &[www]));
        let second = reg.poll_request().expect("the answered REGISTER");
        assert_eq!(
            headers::call_id(&second.headers),
            headers::call_id(&first.headers)
        );
        assert_eq!(headers::cseq(&second.headers).map(|c| c.0), Some(2));
        let c =
            parse_authorization(&auth_of(&second).expect("an Authorization")).expect("it reads");
        assert_eq!(c.uri, "sip:10.0.0.1:5060");
        assert_eq!(c.response, expected_response(&c, "REGISTER", "s3cret"));
        // Granted 120 s in the Contact: renewed after 60 s (half of a short binding).
        let contact = Header::Contact("<sip:12345@10.0.0.100:5060;line=abc>;expires=120".into());
        reg.handle_response(t0, &answer(&second, 200, &[contact]));
        assert_eq!(
            reg.state(),
            &RegState::Registered {
                until: t0 + secs(120)
            }
        );
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(60)));
        reg.handle_timeout(t0 + secs(60));
        let renewal = reg.poll_request().expect("a renewal");
        // The cached challenge is answered again with the next nonce count.
        let c =
            parse_authorization(&auth_of(&renewal).expect("an Authorization")).expect("it reads");
        assert_eq!(c.nc, 2);
    }

    #[test]
    fn wrong_credentials_fail_and_back_off_doubling() {
        let t0 = Instant::now();
        let mut reg = Registration::new(settings(), t0);
        reg.handle_timeout(t0);
        let proxy_challenge =
            || Header::ProxyAuthenticate(challenge("carrier", "n1", Algorithm::Md5, false).into());
        let first = reg.poll_request().expect("a REGISTER");
        reg.handle_response(t0, &answer(&first, 407, &[proxy_challenge()]));
        let second = reg.poll_request().expect("answered");
        assert!(
            second
                .headers
                .iter()
                .any(|h| matches!(h, Header::ProxyAuthorization(_)))
        );
        // The same nonce again: our answer was refused.
        reg.handle_response(t0, &answer(&second, 407, &[proxy_challenge()]));
        assert!(reg.poll_request().is_none(), "no third try at once");
        assert!(matches!(
            reg.state(),
            RegState::Failed { why, retry_at } if why.contains("credentials refused") && *retry_at == t0 + secs(30)
        ));
        reg.handle_timeout(t0 + secs(30));
        let retry = reg.poll_request().expect("a retry after 30 s");
        assert_eq!(auth_of(&retry), None, "a fresh start");
        reg.handle_no_answer(
            t0 + secs(62),
            headers::cseq(&retry.headers).expect("a CSeq").0,
        );
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(62 + 60)), "doubled");
    }

    #[test]
    fn interval_too_brief_is_raised_to_min_expires() {
        let t0 = Instant::now();
        let mut reg = Registration::new(settings(), t0);
        reg.handle_timeout(t0);
        let first = reg.poll_request().expect("a REGISTER");
        reg.handle_response(
            t0,
            &answer(&first, 423, &[Header::MinExpires("3600".into())]),
        );
        let second = reg.poll_request().expect("asked again");
        assert_eq!(headers::expires(&second.headers), Some("3600"));
        // A 200 without a Contact expires: the Expires header counts.
        reg.handle_response(t0, &answer(&second, 200, &[Header::Expires("3600".into())]));
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(3540)));
        reg.stop();
        let bye = reg.poll_request().expect("an unregistration");
        assert_eq!(headers::expires(&bye.headers), Some("0"));
        assert_eq!(reg.state(), &RegState::Stopped);
        // Challenged: answered once, still unregistering.
        let www = Header::WwwAuthenticate(challenge("carrier", "n9", Algorithm::Md5, true).into());
        reg.handle_response(t0, &answer(&bye, 401, std::slice::from_ref(&www)));
        let again = reg.poll_request().expect("the answered unregistration");
        assert_eq!(headers::expires(&again.headers), Some("0"));
        assert!(auth_of(&again).is_some());
        reg.handle_response(t0, &answer(&again, 401, &[www]));
        assert!(reg.poll_request().is_none(), "not twice");
    }
}
