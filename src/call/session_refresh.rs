//! One leg's session timer and its refreshes (RFC 4028), sans IO, for either side of the
//! B2BUA: the agreement in force, the timer that runs from the 2xx, our refresh in flight
//! (UPDATE when the peer takes it, else re-INVITE; RFC 3311), what its answer means (a 2xx
//! restarts the timer, 422 asks again with the peer's Min-SE, 405 or 501 to an UPDATE asks
//! again by re-INVITE, 408 and 481 end the session, anything else is tried again soon
//! until the session interval has passed unrefreshed), and the headers of our answers to
//! the peer's refreshes. It owns no dialog and sends nothing: the leg builds the request in its
//! dialog from what this says, and is told what came back.

#![warn(unreachable_pub, missing_docs)]

use std::time::{Duration, Instant};

use rsip::{Header, Method, Request, Response};
use tracing::{debug, info};

use crate::sip::dialog::Dialog;
use crate::sip::headers;
use crate::sip::session_timer::{self, Agreement, Ask, Due, FLOOR_S, SessionTimer, TimerSettings};

/// How soon a refused session refresh is tried again (RFC 3261 14.1 asks 0 to 2 s after
/// a 491 from the side that does not own the Call-ID).
const REFRESH_RETRY: Duration = Duration::from_secs(2);
/// The longest session interval a 422 may raise ours to (a day): a peer cannot walk us up
/// one second at a time forever.
const MAX_INTERVAL: u32 = 86_400;

/// Our session refresh in flight: its CSeq, method (UPDATE or INVITE) and what it asked.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u32,
    method: Method,
    asked: Agreement,
}

/// What the answer to our refresh asks of the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefreshAnswer {
    /// Nothing: refreshed, or to be tried again by the timer.
    Settled,
    /// Send the refresh again now (a 422 raised the interval).
    Again,
    /// The dialog is gone (408, 481, or no answer at all): hang up.
    Gone,
    /// The peer challenged it (401/407): send it again with credentials, if the leg has
    /// them; otherwise the timer tries again soon, as after a passing refusal.
    Challenged,
}

/// One leg's session timer and refreshes (see the module doc).
#[derive(Debug, Clone)]
pub(super) struct SessionRefresh {
    settings: TimerSettings,
    agreed: Option<Agreement>,
    timer: Option<SessionTimer>,
    in_flight: Option<InFlight>,
    /// The peer takes UPDATE (its Allow): we refresh with it, without an offer.
    peer_allows_update: bool,
    /// The largest Min-SE a 422 asked of us: our later requests carry it (RFC 4028 7.4).
    peer_min_se: u32,
    /// When the session was last set up or refreshed: refused refreshes are retried only
    /// until a whole interval has passed since.
    refreshed_at: Option<Instant>,
    /// The leg's Allow list, for the re-INVITEs it refreshes with.
    allow: &'static str,
}

impl SessionRefresh {
    /// `agreed` is the interval settled before the session starts (the INVITE's, as the
    /// UAS answers it), if any.
    pub(super) fn new(
        settings: TimerSettings,
        agreed: Option<Agreement>,
        peer_allows_update: bool,
        allow: &'static str,
    ) -> SessionRefresh {
        SessionRefresh {
            allow,
            settings,
            agreed,
            timer: None,
            in_flight: None,
            peer_allows_update,
            peer_min_se: 0,
            refreshed_at: None,
        }
    }

    /// The headers our own session-creating INVITE carries (`Supported: timer` goes with
    /// every request): the interval we ask for, refreshed by us. Nothing when we ask for
    /// no timer.
    pub(super) fn invite_headers(&self) -> Vec<Header> {
        if self.settings.expires == 0 {
            return Vec::new();
        }
        self.request_headers(&self.invite_ask())
    }

    /// What our INVITE asks for: our interval (at least every Min-SE we know), refreshed
    /// by us.
    fn invite_ask(&self) -> Agreement {
        Agreement {
            interval: self.settings.expires.max(self.min_se()),
            we_refresh: true,
            peer_supports: true,
        }
    }

    /// A 422 to our INVITE: the interval to ask for instead, when it is one we could keep
    /// (RFC 4028 7.4); the next INVITE carries it through `invite_headers`.
    pub(super) fn raise_for_invite(&mut self, response: &Response) -> bool {
        let wanted = Ask::read(&response.headers).min_se.unwrap_or(0);
        if wanted <= self.invite_ask().interval || wanted > MAX_INTERVAL {
            return false;
        }
        self.peer_min_se = wanted;
        self.settings.expires = wanted;
        true
    }

    /// The 2xx to our INVITE: the session timer it states, running from now (RFC 4028 7.2:
    /// none when it states none). Its Allow says whether we may refresh by UPDATE.
    pub(super) fn start_from_answer(&mut self, now: Instant, ok: &Response) {
        self.peer_allows_update = headers::lists_tag(&ok.headers, headers::pick_allow, "UPDATE");
        let ask = Ask::read(&ok.headers);
        self.agreed = ask
            .expires
            .is_some()
            .then(|| session_timer::adopt(&ask, &self.invite_ask()));
        self.start(now);
    }

    /// The session starts (our 2xx went, or the peer's came): the timer runs from `now`.
    pub(super) fn start(&mut self, now: Instant) {
        self.timer = self.agreed.map(|a| SessionTimer::new(now, a));
        self.refreshed_at = Some(now);
        if let Some(a) = &self.agreed {
            debug!(
                interval = a.interval,
                we_refresh = a.we_refresh,
                "session timer"
            );
        }
    }

    /// When `handle_timeout` must be called next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timer.as_ref().map(SessionTimer::poll_timeout)
    }

    /// What falls due: a refresh to send (only while none is in flight), or the end of a
    /// session the peer stopped refreshing.
    pub(super) fn handle_timeout(&mut self, now: Instant) -> Option<Due> {
        match self.timer.as_mut().and_then(|t| t.handle_timeout(now)) {
            Some(Due::Refresh) if self.in_flight.is_some() => None,
            Some(Due::Expired) => {
                info!("the peer did not refresh the session: hanging up");
                Some(Due::Expired)
            }
            due => due,
        }
    }

    /// Our refresh, built in `dialog`: an UPDATE without an offer when the peer takes
    /// UPDATE, else a re-INVITE with `sdp`, the session as we last described it. `None`
    /// without a session timer.
    pub(super) fn request(
        &mut self,
        dialog: &mut Dialog,
        local: &str,
        sdp: Option<&str>,
    ) -> Option<Request> {
        let asked = self.agreed?;
        let method = if self.peer_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let mut req = dialog.request(method, local);
        let h = &mut req.headers;
        h.extend(self.request_headers(&asked));
        h.push(Header::Supported(crate::sip::SUPPORTED.into()));
        if method == Method::Invite {
            h.push(Header::Allow(self.allow.into()));
            if let Some(sdp) = sdp {
                h.push(Header::ContentType("application/sdp".into()));
                req.body = sdp.as_bytes().to_vec();
            }
        }
        let seq = headers::cseq(&req.headers).map_or(0, |(n, _)| n);
        debug!(method = %method, "refreshing the session");
        self.in_flight = Some(InFlight { seq, method, asked });
        Some(req)
    }

    /// Our re-INVITE refresh is out: a crossing offer gets 491 (RFC 3261 14.2).
    pub(super) fn invite_in_flight(&self) -> bool {
        self.in_flight.is_some_and(|r| r.method == Method::Invite)
    }

    /// A final answer to a request of ours; `None` if it was not our refresh.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        response: &Response,
    ) -> Option<RefreshAnswer> {
        let (seq, method) = headers::cseq(&response.headers)?;
        let code = response.status_code.code();
        let asked = self
            .in_flight
            .filter(|r| r.seq == seq && r.method == method && code >= 200)?
            .asked;
        self.in_flight = None;
        Some(match code {
            200..=299 => {
                self.agreed = Some(session_timer::adopt(&Ask::read(&response.headers), &asked));
                self.start(now);
                RefreshAnswer::Settled
            }
            422 => {
                let wanted = Ask::read(&response.headers).min_se.unwrap_or(0);
                if wanted > asked.interval && wanted <= MAX_INTERVAL {
                    self.peer_min_se = self.peer_min_se.max(wanted);
                    self.agreed = Some(Agreement {
                        interval: wanted,
                        ..asked
                    });
                    RefreshAnswer::Again
                } else {
                    RefreshAnswer::Settled
                }
            }
            405 | 501 if method == Method::Update => {
                debug!(
                    code,
                    "the peer takes no UPDATE after all: refreshing by re-INVITE"
                );
                self.peer_allows_update = false;
                RefreshAnswer::Again
            }
            408 | 481 => {
                info!(
                    code,
                    "our session refresh found the dialog gone: hanging up"
                );
                RefreshAnswer::Gone
            }
            _ if self
                .refreshed_at
                .is_some_and(|at| now >= at + Duration::from_secs(asked.interval.into())) =>
            {
                info!(code, "no session refresh succeeded for a whole interval");
                RefreshAnswer::Gone
            }
            _ => {
                // Glare (491), a challenge or a passing refusal: try again soon, well
                // before the peer's expiry (it hangs up a third of the interval early).
                debug!(code, "session refresh refused; trying again shortly");
                if let Some(t) = self.timer.as_mut() {
                    t.retry_at(now + REFRESH_RETRY);
                }
                if matches!(code, 401 | 407) {
                    RefreshAnswer::Challenged
                } else {
                    RefreshAnswer::Settled
                }
            }
        })
    }

    /// A request of ours got no answer at all: `true` if it was our refresh (the dialog is
    /// gone).
    pub(super) fn handle_request_timeout(&mut self, cseq: u32) -> bool {
        if self.in_flight.is_some_and(|r| r.seq == cseq) {
            self.in_flight = None;
            info!("our session refresh got no answer: hanging up");
            return true;
        }
        false
    }

    /// The peer's re-INVITE or UPDATE as session timers see it (RFC 4028 9): the
    /// agreement it makes, or `Err(min_se)` for a 422.
    pub(super) fn answer(&self, request: &Request) -> Result<Option<Agreement>, u32> {
        session_timer::answer(
            &Ask::read(&request.headers),
            &self.settings,
            self.agreed.as_ref(),
        )
    }

    /// The peer's refresh was answered with `agreed`: it runs from now once the session
    /// has started (`running`).
    pub(super) fn accept(&mut self, now: Instant, agreed: Option<Agreement>, running: bool) {
        self.agreed = agreed;
        if running {
            self.start(now);
        }
    }

    /// Session-Expires (and `Require: timer`) for our 2xx, when a session timer is agreed.
    pub(super) fn response_headers(&self) -> Vec<Header> {
        self.agreed
            .iter()
            .flat_map(session_timer::response_headers)
            .map(|(name, value)| match name {
                "Require" => Header::Require(value.into()),
                _ => Header::Other(name.into(), value),
            })
            .collect()
    }

    fn min_se(&self) -> u32 {
        self.settings.min_se.max(FLOOR_S).max(self.peer_min_se)
    }

    fn request_headers(&self, asked: &Agreement) -> Vec<Header> {
        vec![
            Header::Other(
                "Session-Expires".into(),
                format!("{};refresher=uac", asked.interval),
            ),
            Header::Other(
                "Min-SE".into(),
                self.min_se().min(asked.interval).to_string(),
            ),
        ]
    }
}
