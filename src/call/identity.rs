//! Who is calling and whom they first called, as a trunk tells it: P-Asserted-Identity
//! (RFC 3325), Remote-Party-ID (the draft many PBXs still send), Privacy (RFC 3323), the
//! From header, Diversion (RFC 5806) and History-Info (RFC 7044, with RFC 4458 causes).
//! The hotline's trunks are its trust domain: a withheld caller is still known by the
//! number the trunk asserts (for callbacks and the caller's history), and the privacy they
//! asked for travels with it. Pure: headers in, `Identity` out.

#![warn(unreachable_pub, missing_docs)]

use rsip::Headers;

use crate::sip::headers;
use crate::sip::uri::SipUri;

/// The caller's identity and the call's redirection, read from an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The caller's number: asserted (PAI, then RPID) before the From user;
    /// `anonymous` when nobody says it.
    pub caller: String,
    /// The caller asked that their identity be withheld (Privacy `id`/`user`/`header`, an
    /// RPID `privacy`, or an anonymous From).
    pub withheld: bool,
    /// The number first called, when the call was redirected to the hotline.
    pub original_called: Option<String>,
    /// Why it was redirected (`unconditional`, `user-busy`, `no-answer`, ...).
    pub redirect_reason: Option<String>,
}

/// Reads the identity headers of an INVITE.
pub(super) fn read(h: &Headers) -> Identity {
    let from = headers::from(h).unwrap_or_default();
    let from_user = number(headers::addr_uri(from));
    let anonymous_from = from_user
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case("anonymous"))
        || SipUri::parse(headers::addr_uri(from))
            .is_some_and(|u| u.host.eq_ignore_ascii_case("anonymous.invalid"));
    let asserted = headers::other_values(h, "P-Asserted-Identity")
        .into_iter()
        .find_map(|v| known(number(headers::addr_uri(v))));
    let rpid = headers::other_values(h, "Remote-Party-ID")
        .into_iter()
        .find(|v| headers::param(v, "party").is_none_or(|p| p.eq_ignore_ascii_case("calling")));
    let rpid_number = rpid.and_then(|v| known(number(headers::addr_uri(v))));
    let rpid_private = rpid
        .and_then(|v| headers::param(v, "privacy"))
        .is_some_and(|p| !p.eq_ignore_ascii_case("off") && !p.eq_ignore_ascii_case("no"));
    let privacy = headers::other_values(h, "Privacy").into_iter().any(|v| {
        v.split(';')
            .any(|t| ["id", "user", "header"].contains(&t.trim().to_ascii_lowercase().as_str()))
    });
    let caller = asserted
        .or(rpid_number)
        .or_else(|| known(from_user))
        .unwrap_or_else(|| "anonymous".to_owned());
    let (original_called, redirect_reason) = diversion(h).unwrap_or_else(|| history(h));
    Identity {
        caller,
        withheld: privacy || rpid_private || anonymous_from,
        original_called,
        redirect_reason,
    }
}

/// Diversion: the bottom value is the first redirection (the number first called), the
/// top one the latest (its reason is why the call is here).
fn diversion(h: &Headers) -> Option<(Option<String>, Option<String>)> {
    let values = headers::other_values(h, "Diversion");
    let latest = values.first()?;
    let first = values.last()?;
    Some((
        number(headers::addr_uri(first)),
        headers::param(latest, "reason").map(|r| r.trim_matches('"').to_ascii_lowercase()),
    ))
}

/// History-Info: the first entry is the target first called; a later entry's `cause`
/// (RFC 4458) or an entry's embedded Reason says why it was retargeted.
fn history(h: &Headers) -> (Option<String>, Option<String>) {
    let values = headers::other_values(h, "History-Info");
    if values.len() < 2 {
        return (None, None);
    }
    let original = number(headers::addr_uri(values[0]));
    let cause = values[1..].iter().rev().find_map(|v| {
        let uri = headers::addr_uri(v);
        SipUri::parse(uri)
            .and_then(|u| u.param("cause"))
            .and_then(|c| c.parse::<u16>().ok())
    });
    let embedded = || {
        values.iter().rev().find_map(|v| {
            let lower = headers::addr_uri(v).to_ascii_lowercase();
            let at = lower.find("cause%3d")? + "cause%3d".len();
            let digits: String = lower[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u16>().ok()
        })
    };
    let reason = cause.or_else(embedded).map(|c| {
        match c {
            302 => "unconditional",
            486 => "user-busy",
            408 => "no-answer",
            480 | 487 => "deflection",
            503 => "unavailable",
            _ => "unknown",
        }
        .to_owned()
    });
    (original, reason)
}

/// The number (user part) a `sip:`, `sips:` or `tel:` URI names, without user
/// parameters or visual separators.
fn number(uri: &str) -> Option<String> {
    let uri = uri.trim();
    let raw = match uri.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => {
            uri[4..].split([';', '?']).next().map(str::to_owned)
        }
        _ => SipUri::parse(uri).and_then(|u| u.user),
    }?;
    let user = raw.split(';').next().unwrap_or_default();
    let n: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    (!n.is_empty()).then_some(n)
}

/// A number that names someone (not `anonymous`).
fn known(n: Option<String>) -> Option<String> {
    n.filter(|n| !n.eq_ignore_ascii_case("anonymous"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::Header;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (name, value) in lines {
            h.push(match *name {
                "From" => Header::From((*value).into()),
                _ => Header::Other((*name).into(), (*value).into()),
            });
        }
        h
    }

    #[test]
    fn a_withheld_caller_is_known_by_the_asserted_number() {
        let id = read(&headers(&[
            (
                "From",
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
            ),
            (
                "P-Asserted-Identity",
                "<sip:+8613800138000@pbx.example.com;user=phone>, <tel:+86-138-0013-8000>",
            ),
            ("Privacy", "id;critical"),
        ]));
        assert_eq!(id.caller, "+8613800138000");
        assert!(id.withheld);
        assert_eq!(id.original_called, None);
    }

    #[test]
    fn remote_party_id_and_tel_uris_are_read_when_there_is_no_pai() {
        let id = read(&headers(&[
            ("From", "<sip:anonymous@10.0.0.1>;tag=1"),
            (
                "Remote-Party-ID",
                "\"Zhang\" <tel:010-6552-1234;phone-context=+86>;party=calling;privacy=full;screen=yes",
            ),
        ]));
        assert_eq!(id.caller, "01065521234");
        assert!(id.withheld);
        let plain = read(&headers(&[("From", "<sip:13800138000@10.0.0.1>;tag=1")]));
        assert_eq!(plain.caller, "13800138000");
        assert!(!plain.withheld);
        let nobody = read(&headers(&[("From", "<sip:anonymous@10.0.0.1>;tag=1")]));
        assert_eq!(nobody.caller, "anonymous");
        assert!(nobody.withheld);
    }

    #[test]
    fn diversion_gives_the_first_number_called_and_the_latest_reason() {
        let id = read(&headers(&[
            ("From", "<sip:13800138000@10.0.0.1>;tag=1"),
            (
                "Diversion",
                "<sip:01012345@pbx>;reason=no-answer;counter=1, <sip:01088888@pbx>;reason=unconditional",
            ),
        ]));
        assert_eq!(id.original_called.as_deref(), Some("01088888"));
        assert_eq!(id.redirect_reason.as_deref(), Some("no-answer"));
    }

    #[test]
    fn history_info_gives_the_first_target_and_the_cause() {
        let id = read(&headers(&[
            ("From", "<sip:13800138000@10.0.0.1>;tag=1"),
            (
                "History-Info",
                "<sip:01088888@pbx?Reason=SIP%3Bcause%3D486>;index=1, <sip:12345@hotline;cause=486>;index=1.1",
            ),
        ]));
        assert_eq!(id.original_called.as_deref(), Some("01088888"));
        assert_eq!(id.redirect_reason.as_deref(), Some("user-busy"));
        let embedded = read(&headers(&[
            ("From", "<sip:13800138000@10.0.0.1>;tag=1"),
            (
                "History-Info",
                "<sip:01088888@pbx?Reason=SIP%3Bcause%3D302>;index=1, <sip:12345@hotline>;index=1.1",
            ),
        ]));
        assert_eq!(embedded.redirect_reason.as_deref(), Some("unconditional"));
        // One entry: nothing was retargeted.
        let direct = read(&headers(&[
            ("From", "<sip:13800138000@10.0.0.1>;tag=1"),
            ("History-Info", "<sip:12345@hotline>;index=1"),
        ]));
        assert_eq!(direct.original_called, None);
    }
}
