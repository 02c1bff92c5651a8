//! Placing a far leg, sans IO: the places it may go, in order, and which failures move on
//! to the next. A `transfer: trunk` with `trunks: [pbx1, pbx2]` tries each named trunk's
//! `uri` in turn; one that OPTIONS probes find down is skipped (the edge refuses to dial
//! it), and one that cannot take the call (408, 5xx but 501, no answer, a name that does
//! not resolve) hands it to the next. A busy or refusing destination (4xx, 6xx) is an
//! answer, not a broken trunk: the caller hears it. Once the far end rings or answers,
//! the leg is placed and there is no going back. The call core owns one `Placing` per far
//! leg being placed; this file knows nothing of legs or media.

use std::collections::{BTreeMap, VecDeque};

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

/// The named trunks, by name.
pub type TrunkRoutes = BTreeMap<String, TrunkRoute>;

/// One place to INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The Request-URI.
    pub uri: String,
    /// The named trunk it goes through: skipped while probes find it down.
    pub trunk: Option<String>,
    /// Offer SRTP and take nothing less.
    pub srtp: bool,
}

/// The places `target` may go, in order. `callers_srtp`: the caller's own leg is SRTP (a
/// transfer back through its trunk must be too).
pub(super) fn attempts(
    target: DialTarget,
    trunks: &TrunkRoutes,
    callers_srtp: bool,
) -> Vec<Attempt> {
    // Elsewhere, a target reached over TLS (`sips:`, `;transport=tls`) gets SRTP: SDES keys
    // travel in the SDP, which only TLS keeps secret (RFC 4568 8.3).
    let over_tls = |uri: &str| {
        SipUri::parse(uri).is_some_and(|u| u.explicit_transport() == Some(Transport::Tls))
    };
    match target {
        DialTarget::Uri(uri) => vec![Attempt {
            srtp: over_tls(&uri),
            uri,
            trunk: None,
        }],
        DialTarget::CallersTrunk(uri) => vec![Attempt {
            uri,
            trunk: None,
            srtp: callers_srtp,
        }],
        DialTarget::Trunks {
            number,
            trunks: names,
        } => names
            .into_iter()
            .filter_map(|name| {
                let route = trunks.get(&name)?;
                let uri = with_user(route.uri.as_deref()?, &number)?;
                Some(Attempt {
                    srtp: route.srtp_required || over_tls(&uri),
                    uri,
                    trunk: Some(name),
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

/// A far leg being placed (see the module doc).
pub(super) struct Placing {
    pub(super) far: Far,
    pub(super) context: DialContext,
    current: Attempt,
    next: VecDeque<Attempt>,
    /// The edge is finding the current attempt's address (a `Dial` awaits `handle_dialled`).
    pub(super) resolving: bool,
}

impl Placing {
    /// Starts with the first of `attempts`; `None` when there is none.
    pub(super) fn new(far: Far, context: DialContext, attempts: Vec<Attempt>) -> Option<Placing> {
        let mut next = VecDeque::from(attempts);
        Some(Placing {
            far,
            context,
            current: next.pop_front()?,
            next,
            resolving: true,
        })
    }

    /// Where the leg goes now.
    pub(super) fn current(&self) -> &Attempt {
        &self.current
    }

    /// The current attempt failed with `code` (`None`: it could not even be sent): the
    /// next attempt, when the failure moves on and one is left.
    pub(super) fn fail_over(&mut self, code: Option<u16>) -> Option<&Attempt> {
        if code.is_some_and(|c| !moves_on(c)) {
            return None;
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
        TrunkRoutes::from([
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
        ])
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

    #[test]
    fn a_trunk_that_cannot_take_the_call_hands_it_on_and_a_refusal_does_not() {
        let attempt = |uri: &str| Attempt {
            uri: uri.into(),
            trunk: Some(uri.into()),
            srtp: false,
        };
        let list = vec![attempt("a"), attempt("b"), attempt("c"), attempt("d")];
        let mut p = Placing::new(Far::Transfer, DialContext::for_tests(), list).expect("placing");
        assert_eq!(p.current().uri, "a");
        p.resolving = false;
        assert_eq!(p.fail_over(Some(503)).map(|a| a.uri.as_str()), Some("b"));
        assert!(p.resolving, "the next one is looked up");
        assert_eq!(
            p.fail_over(None).map(|a| a.uri.as_str()),
            Some("c"),
            "not even sent"
        );
        assert_eq!(
            p.fail_over(Some(486)).map(|a| a.uri.as_str()),
            None,
            "busy is an answer"
        );
        assert_eq!(p.fail_over(Some(501)), None);
        assert_eq!(p.fail_over(Some(408)).map(|a| a.uri.as_str()), Some("d"));
        assert_eq!(p.fail_over(Some(500)), None, "none left");
        assert!(Placing::new(Far::Offer, DialContext::for_tests(), Vec::new()).is_none());
    }
}
