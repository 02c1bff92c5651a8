//! Placing a far leg, sans IO: the places it may go, in order, and which failures move on
//! to the next. A `transfer: trunk` with `trunks: [pbx1, pbx2]` tries each named trunk's
//! `uri` in turn. One that OPTIONS probes find down is skipped (the edge refuses to dial
//! it) and tried last, only if every other failed: probes can be wrong about a carrier
//! that ignores OPTIONS. One that cannot take the call hands it to the next: 408, 500, 502,
//! 503, 504, no answer at all (not even 100 Trying) within `[trunks] no_answer_ms`, or a
//! target that cannot be reached. A busy or refusing destination (other 4xx, 5xx, 6xx) is
//! an answer, not a broken trunk: the caller hears it. Once the far end rings or answers,
//! the leg is placed and there is no going back. The call core owns one `Placing` per far
//! leg being placed; this file knows nothing of legs or media.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::flow::{DialContext, DialTarget, Far};
use crate::sip::Transport;
use crate::sip::uri::SipUri;

/// A named trunk calls can be sent through (`[trunks.named.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRoute {
    /// Where it takes calls (`uri`); none: it only sends us calls.
    pub uri: Option<String>,
    /// Its calls must be SRTP (`media_encryption = "sdes"`).
    pub srtp_required: bool,
}

/// The named trunks calls can be sent through, and how long each may take to answer.
#[derive(Debug, Clone, Default)]
pub struct TrunkRoutes {
    /// By name.
    pub routes: BTreeMap<String, TrunkRoute>,
    /// A trunk that answers a transfer's INVITE with nothing for this long is passed over
    /// for the next (`[trunks] no_answer_ms`).
    pub no_answer: Duration,
}

impl TrunkRoutes {
    /// The named trunks whose `uri` is at `host`.
    pub(super) fn at_host<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a TrunkRoute> {
        self.routes.values().filter(move |r| {
            r.uri
                .as_deref()
                .and_then(SipUri::parse)
                .is_some_and(|u| u.host.eq_ignore_ascii_case(host))
        })
    }

    /// `uri` goes to the host of a named trunk whose calls must be SRTP.
    fn requires_srtp_at(&self, uri: &str) -> bool {
        SipUri::parse(uri).is_some_and(|u| self.at_host(u.host).any(|r| r.srtp_required))
    }
}

/// One place to INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The Request-URI.
    pub uri: String,
    /// The named trunk it goes through: skipped while probes find it down.
    pub trunk: Option<String>,
    /// Offer SRTP and take nothing less.
    pub srtp: bool,
    /// Dialled whatever probes say of its trunk: the last resort, every other failed.
    pub forced: bool,
}

/// The places `target` may go, in order. `callers_srtp`: the caller's own leg is SRTP (a
/// transfer back through its trunk must be too).
pub(super) fn attempts(
    target: DialTarget,
    trunks: &TrunkRoutes,
    callers_srtp: bool,
) -> Vec<Attempt> {
    // Elsewhere, a target reached over TLS (`sips:`, `;transport=tls`) gets SRTP: SDES keys
    // travel in the SDP, which only TLS keeps secret (RFC 4568 8.3). So does one at the host
    // of a named trunk whose calls must be encrypted (a REFER's target on it).
    let over_tls = |uri: &str| {
        SipUri::parse(uri).is_some_and(|u| u.explicit_transport() == Some(Transport::Tls))
    };
    match target {
        DialTarget::Uri(uri) => vec![Attempt {
            srtp: over_tls(&uri) || trunks.requires_srtp_at(&uri),
            uri,
            trunk: None,
            forced: false,
        }],
        DialTarget::CallersTrunk(uri) => vec![Attempt {
            uri,
            trunk: None,
            srtp: callers_srtp,
            forced: false,
        }],
        DialTarget::Trunks {
            number,
            trunks: names,
        } => names
            .into_iter()
            .filter_map(|name| {
                let route = trunks.routes.get(&name)?;
                let uri = with_user(route.uri.as_deref()?, &number)?;
                Some(Attempt {
                    srtp: route.srtp_required || over_tls(&uri),
                    uri,
                    trunk: Some(name),
                    forced: false,
                })
            })
            .collect(),
    }
}

/// `uri` with `user` as its user part (a trunk's address and the number to dial on it).
fn with_user(uri: &str, user: &str) -> Option<String> {
    let u = SipUri::parse(uri)?;
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.to_owned()
    };
    let port = u.port.map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}:{user}@{host}{port}{}", u.scheme, u.params))
}

/// Whether a final status means the trunk could not take the call, so the next may.
pub(super) fn moves_on(code: u16) -> bool {
    matches!(code, 408 | 500 | 502 | 503 | 504)
}

/// Why an attempt did not place the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Its trunk is down (probes): kept for the last resort.
    Down,
    /// It could not be dialled (no address, no media).
    Unplaced,
    /// The far end's final status (408 when it answered nothing).
    Status(u16),
}

/// A far leg being placed (see the module doc).
pub(super) struct Placing {
    pub(super) far: Far,
    pub(super) context: DialContext,
    current: Attempt,
    next: VecDeque<Attempt>,
    /// Attempts skipped because their trunk was down, for the last resort.
    skipped: Vec<Attempt>,
    /// The edge is finding the current attempt's address (a `Dial` awaits `handle_dialled`).
    pub(super) resolving: bool,
    /// Until when the current attempt may answer nothing before the next is tried; none
    /// when it is the last, or has answered something.
    pub(super) answer_by: Option<Instant>,
    no_answer: Duration,
}

impl Placing {
    /// Starts with the first of `attempts`; `None` when there is none. An attempt that
    /// answers nothing for `no_answer` is passed over when another is left.
    pub(super) fn new(
        far: Far,
        context: DialContext,
        attempts: Vec<Attempt>,
        no_answer: Duration,
    ) -> Option<Placing> {
        let mut next = VecDeque::from(attempts);
        Some(Placing {
            far,
            context,
            current: next.pop_front()?,
            next,
            skipped: Vec::new(),
            resolving: true,
            answer_by: None,
            no_answer,
        })
    }

    /// Where the leg goes now.
    pub(super) fn current(&self) -> &Attempt {
        &self.current
    }

    /// The current attempt is being dialled at `now`: its deadline to answer anything,
    /// when there is somewhere else to go.
    pub(super) fn dialling(&mut self, now: Instant) {
        let more = !self.next.is_empty() || !self.skipped.is_empty();
        self.answer_by = (more && !self.no_answer.is_zero()).then(|| now + self.no_answer);
    }

    /// The current attempt failed: the next attempt, when the failure moves on and one is
    /// left (the trunks probes found down come last, dialled whatever the probes say).
    pub(super) fn fail_over(&mut self, failure: Failure) -> Option<&Attempt> {
        self.answer_by = None;
        match failure {
            Failure::Status(code) if !moves_on(code) => return None,
            Failure::Down => self.skipped.push(self.current.clone()),
            Failure::Status(_) | Failure::Unplaced => {}
        }
        if self.next.is_empty() {
            self.next = self
                .skipped
                .drain(..)
                .map(|a| Attempt { forced: true, ..a })
                .collect();
        }
        self.current = self.next.pop_front()?;
        self.resolving = true;
        Some(&self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> TrunkRoutes {
        let route = |uri: Option<&str>, srtp_required| TrunkRoute {
            uri: uri.map(str::to_owned),
            srtp_required,
        };
        TrunkRoutes {
            routes: BTreeMap::from([
                (
                    "pbx1".into(),
                    route(Some("sip:10.0.0.1:5070;transport=tcp"), false),
                ),
                ("pbx2".into(), route(Some("sip:[2001:db8::2]"), true)),
                (
                    "carrier".into(),
                    route(Some("sips:sbc.carrier.example"), false),
                ),
                ("inbound".into(), route(None, false)),
            ]),
            no_answer: Duration::from_secs(4),
        }
    }

    #[test]
    fn named_trunks_are_tried_in_the_dialplans_order_with_the_number_on_each() {
        let target = DialTarget::Trunks {
            number: "01012345678".into(),
            trunks: ["pbx2", "inbound", "nowhere", "pbx1", "carrier"]
                .map(String::from)
                .to_vec(),
        };
        let uris: Vec<(String, Option<String>, bool)> = attempts(target, &routes(), false)
            .into_iter()
            .map(|a| (a.uri, a.trunk, a.srtp))
            .collect();
        let t = |s: &str| Some(s.to_owned());
        assert_eq!(
            uris,
            [
                ("sip:01012345678@[2001:db8::2]".into(), t("pbx2"), true),
                (
                    "sip:01012345678@10.0.0.1:5070;transport=tcp".into(),
                    t("pbx1"),
                    false
                ),
                (
                    "sips:01012345678@sbc.carrier.example".into(),
                    t("carrier"),
                    true
                ),
            ],
            "a trunk without uri (or unknown) is no place to send calls; pbx2 requires SRTP, sips: is TLS"
        );
        let tls = attempts(
            DialTarget::Uri("sip:duty@10.0.0.5;transport=tls".into()),
            &routes(),
            false,
        );
        assert!(tls[0].srtp, "a target reached over TLS gets SRTP");
        let back = attempts(
            DialTarget::CallersTrunk("sip:1@10.0.0.9".into()),
            &routes(),
            true,
        );
        assert!(
            back[0].srtp,
            "back through the caller's trunk: as the caller's leg is"
        );
    }

    fn placing(uris: &[&str]) -> Placing {
        let list = uris
            .iter()
            .map(|u| Attempt {
                uri: (*u).into(),
                trunk: Some((*u).into()),
                srtp: false,
                forced: false,
            })
            .collect();
        Placing::new(
            Far::Transfer,
            DialContext::for_tests(),
            list,
            Duration::from_secs(4),
        )
        .expect("placing")
    }

    #[test]
    fn a_uri_on_a_trunk_whose_calls_must_be_encrypted_or_over_tls_gets_srtp() {
        let srtp = |uri: &str| attempts(DialTarget::Uri(uri.into()), &routes(), false)[0].srtp;
        assert!(srtp("sip:200@[2001:db8::2]"), "pbx2's host");
        assert!(srtp("sips:200@10.9.9.9"), "over TLS");
        assert!(!srtp("sip:200@10.0.0.1"), "pbx1 takes RTP");
        assert!(!srtp("sip:200@10.9.9.9"));
    }

    fn next(p: &mut Placing, failure: Failure) -> Option<(String, bool)> {
        p.fail_over(failure).map(|a| (a.uri.clone(), a.forced))
    }

    #[test]
    fn a_trunk_that_cannot_take_the_call_hands_it_on_and_a_refusal_does_not() {
        let mut p = placing(&["a", "b", "c", "d"]);
        assert_eq!(p.current().uri, "a");
        p.resolving = false;
        assert_eq!(
            next(&mut p, Failure::Status(503)),
            Some(("b".into(), false))
        );
        assert!(p.resolving, "the next one is looked up");
        assert_eq!(next(&mut p, Failure::Unplaced), Some(("c".into(), false)));
        assert_eq!(
            next(&mut p, Failure::Status(486)),
            None,
            "busy is an answer"
        );
        assert_eq!(next(&mut p, Failure::Status(501)), None);
        assert_eq!(
            next(&mut p, Failure::Status(408)),
            Some(("d".into(), false))
        );
        assert_eq!(next(&mut p, Failure::Status(500)), None, "none left");
        assert!(
            Placing::new(
                Far::Offer,
                DialContext::for_tests(),
                Vec::new(),
                Duration::ZERO
            )
            .is_none()
        );
    }

    #[test]
    fn trunks_found_down_are_the_last_resort_and_only_the_last_attempt_waits_as_long_as_it_likes() {
        let t0 = Instant::now();
        let mut p = placing(&["a", "b", "c"]);
        p.dialling(t0);
        assert_eq!(p.answer_by, Some(t0 + Duration::from_secs(4)));
        assert_eq!(next(&mut p, Failure::Down), Some(("b".into(), false)));
        assert_eq!(p.answer_by, None);
        assert_eq!(next(&mut p, Failure::Down), Some(("c".into(), false)));
        p.dialling(t0);
        assert!(
            p.answer_by.is_some(),
            "the trunks skipped are still to come"
        );
        // Every trunk that was up failed: those found down are tried after all, in order.
        assert_eq!(next(&mut p, Failure::Status(503)), Some(("a".into(), true)));
        assert_eq!(next(&mut p, Failure::Status(408)), Some(("b".into(), true)));
        p.dialling(t0);
        assert_eq!(p.answer_by, None, "the last may take its time");
        assert_eq!(next(&mut p, Failure::Status(503)), None);
        // A single trunk found down is still tried.
        let mut p = placing(&["a"]);
        assert_eq!(next(&mut p, Failure::Down), Some(("a".into(), true)));
    }
}
