//! What the UAS does with a request that is not part of a call yet (RFC 3261 8.2): refuse
//! it (403, 405, 415, 420, 481...), answer OPTIONS, hand REGISTER to the registrar, or start
//! a call. A pure function of the request and two facts the edge knows.

use rsip::{Method, Request};

use super::{ALLOW, SUPPORTED, headers, is_supported};

/// What the edge should do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer now with this status and extra headers.
    Respond(u16, Vec<(&'static str, String)>),
    /// An INVITE that starts a call.
    NewCall,
    /// For the call that owns this Call-ID.
    Dialog,
    /// For the registrar.
    Register,
}

/// The facts about a request the edge knows and the request itself does not say.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The source is in the trunk allow-list.
    pub trusted_source: bool,
    /// A call owns the request's Call-ID.
    pub known_dialog: bool,
    /// A registrar is configured (agents are defined).
    pub registrar: bool,
    /// The engine is stopping: it takes no new call and tells OPTIONS probes so.
    pub draining: bool,
}

pub fn screen(req: &Request, ctx: Context) -> Decision {
    if ctx.known_dialog && req.method != Method::Register {
        return Decision::Dialog;
    }
    let allow = || vec![("Allow", ALLOW.to_owned())];
    if req.method == Method::Register {
        // Without agents nobody may register: every user is unknown (RFC 3261 10.3).
        return if ctx.registrar {
            Decision::Register
        } else {
            Decision::Respond(403, Vec::new())
        };
    }
    if !ctx.trusted_source {
        return Decision::Respond(403, Vec::new());
    }
    // A proxy probing with OPTIONS (or offering a call) learns to use another engine.
    let new = headers::to_tag(&req.headers).is_none();
    if ctx.draining && new && matches!(req.method, Method::Invite | Method::Options) {
        return Decision::Respond(503, Vec::new());
    }
    let unsupported: Vec<&str> = headers::all_values(&req.headers, headers::pick_require)
        .into_iter()
        .filter(|tag| !is_supported(tag))
        .collect();
    if !unsupported.is_empty() && req.method != Method::Cancel {
        return Decision::Respond(420, vec![("Unsupported", unsupported.join(", "))]);
    }
    let in_dialog = headers::to_tag(&req.headers).is_some();
    match req.method {
        Method::Options => Decision::Respond(
            200,
            vec![
                ("Allow", ALLOW.to_owned()),
                ("Supported", SUPPORTED.to_owned()),
                ("Accept", "application/sdp".into()),
                ("Accept-Language", "zh, yue, en".into()),
            ],
        ),
        Method::Invite if in_dialog => Decision::Respond(481, Vec::new()),
        Method::Invite => {
            let content_type = headers::content_type(&req.headers).map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
            if !req.body.is_empty() && content_type.as_deref() != Some("application/sdp") {
                return Decision::Respond(415, vec![("Accept", "application/sdp".into())]);
            }
            let accept = headers::all_values(&req.headers, headers::pick_accept);
            let acceptable = accept.is_empty()
                || accept.iter().any(|a| {
                    let media = a
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase();
                    matches!(media.as_str(), "application/sdp" | "application/*" | "*/*")
                });
            if !acceptable {
                return Decision::Respond(406, vec![("Accept", "application/sdp".into())]);
            }
            Decision::NewCall
        }
        Method::Bye | Method::Info | Method::Update | Method::PRack | Method::Ack => {
            Decision::Respond(481, Vec::new())
        }
        _ => Decision::Respond(405, allow()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;
    use crate::sip::parse::parse;
    use rsip::SipMessage;

    fn req(method: &str, extra: &str, body: &str) -> Request {
        let text = format!(
            "{method} sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: p1\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse(text.as_bytes(), Transport::Udp) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("must parse: {other:?}"),
        }
    }

    const CTX: Context = Context {
        trusted_source: true,
        known_dialog: false,
        registrar: false,
        draining: false,
    };

    fn status(d: Decision) -> u16 {
        match d {
            Decision::Respond(code, _) => code,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn invites_start_calls_unless_something_is_wrong() {
        assert_eq!(
            screen(
                &req("INVITE", "Content-Type: application/sdp\r\n", "v=0"),
                CTX
            ),
            Decision::NewCall
        );
        assert_eq!(
            screen(&req("INVITE", "", ""), CTX),
            Decision::NewCall,
            "a late offer is fine"
        );
        assert_eq!(
            status(screen(
                &req("INVITE", "Content-Type: application/unknownformat\r\n", "x"),
                CTX
            )),
            415
        );
        assert_eq!(
            status(screen(
                &req("INVITE", "Accept: text/nobodyknowsthis\r\n", ""),
                CTX
            )),
            406
        );
        assert_eq!(
            status(screen(
                &req("INVITE", "Require: nothingSupportedHere\r\n", ""),
                CTX
            )),
            420
        );
        let untrusted = Context {
            trusted_source: false,
            ..CTX
        };
        assert_eq!(status(screen(&req("INVITE", "", ""), untrusted)), 403);
    }

    #[test]
    fn other_methods_get_the_rfc_answers() {
        match screen(&req("OPTIONS", "", ""), CTX) {
            Decision::Respond(200, h) => {
                assert!(h.iter().any(|(k, v)| *k == "Allow" && v.contains("INVITE")))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(status(screen(&req("MESSAGE", "", ""), CTX)), 405);
        assert_eq!(status(screen(&req("BYE", "", ""), CTX)), 481);
        assert_eq!(status(screen(&req("REGISTER", "", ""), CTX)), 403);
        assert_eq!(
            screen(
                &req("REGISTER", "", ""),
                Context {
                    registrar: true,
                    ..CTX
                }
            ),
            Decision::Register
        );
        assert_eq!(
            screen(
                &req("BYE", "", ""),
                Context {
                    known_dialog: true,
                    ..CTX
                }
            ),
            Decision::Dialog
        );
    }

    #[test]
    fn a_draining_engine_refuses_new_calls_and_probes_but_serves_its_calls() {
        let draining = Context {
            draining: true,
            ..CTX
        };
        assert_eq!(status(screen(&req("INVITE", "", ""), draining)), 503);
        assert_eq!(status(screen(&req("OPTIONS", "", ""), draining)), 503);
        assert_eq!(
            screen(
                &req("BYE", "", ""),
                Context {
                    known_dialog: true,
                    ..draining
                }
            ),
            Decision::Dialog
        );
        let untrusted = Context {
            trusted_source: false,
            ..draining
        };
        assert_eq!(status(screen(&req("INVITE", "", ""), untrusted)), 403);
    }
}
