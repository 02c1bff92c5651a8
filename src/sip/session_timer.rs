//! Session timers (RFC 4028), sans IO: what a request asks (Session-Expires, Min-SE,
//! `Supported: timer`), the UAS's answer to it (the interval and who refreshes, or 422 when
//! the interval is below our Min-SE), the headers each side writes, and the timer of one
//! dialog: when the refresher must refresh, and when the other side gives up on a session
//! nobody refreshed and hangs up. It owns no dialog and sends nothing: the leg that owns
//! the dialog asks it, and sends what it says.

use std::time::{Duration, Instant};

use rsip::Headers;

use super::headers;

/// RFC 4028 4: no session interval may be below this.
pub const FLOOR_S: u32 = 90;

/// What we ask of sessions (`[sip] session_expires_s`, `min_se_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerSettings {
    /// The interval we ask for when the peer asks for none; 0: we ask for none.
    pub expires: u32,
    /// The smallest interval we accept (at least `FLOOR_S`).
    pub min_se: u32,
}

/// Who refreshes, as a Session-Expires `refresher` parameter names it: the UAC or the
/// UAS of the transaction that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The sender of the request.
    Uac,
    /// The one answering it.
    Uas,
}

/// What a request (or a 2xx) says about session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// Session-Expires, in seconds.
    pub expires: Option<u32>,
    /// Its `refresher` parameter.
    pub refresher: Option<Refresher>,
    /// Min-SE, in seconds.
    pub min_se: Option<u32>,
    /// The sender lists `timer` in Supported (or Require).
    pub supports_timer: bool,
}

impl Ask {
    /// Reads a message's headers.
    pub fn read(h: &Headers) -> Ask {
        let se = headers::other_value(h, "Session-Expires");
        Ask {
            expires: se.and_then(|v| headers::parse_u32(headers::split_outside(v, ';')[0].trim())),
            refresher: se
                .and_then(|v| headers::param(v, "refresher"))
                .and_then(|r| match r.to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => None,
                }),
            min_se: headers::other_value(h, "Min-SE")
                .and_then(|v| headers::parse_u32(headers::split_outside(v, ';')[0].trim())),
            supports_timer: headers::lists_tag(h, headers::pick_supported, "timer")
                || headers::lists_tag(h, headers::pick_require, "timer"),
        }
    }
}

/// A session interval in force: how long, whether we are the refresher, and whether the
/// peer knows session timers (then our answers say `Require: timer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// Seconds.
    pub interval: u32,
    /// We refresh; otherwise the peer does, and we hang up when it does not.
    pub we_refresh: bool,
    /// The peer supports session timers.
    pub peer_supports: bool,
}

/// The UAS's answer to a request that creates or refreshes a session (RFC 4028 9):
/// `Err(min_se)` to refuse it with 422 and that Min-SE, `Ok(None)` for a session without
/// a timer, else the agreement. `current` is the agreement in force, if any: a refresh
/// that names no refresher keeps the current one.
pub fn answer(
    ask: &Ask,
    settings: &TimerSettings,
    current: Option<&Agreement>,
) -> Result<Option<Agreement>, u32> {
    let min_se = settings.min_se.max(FLOOR_S);
    let floor = min_se.max(ask.min_se.unwrap_or(0));
    let interval = match ask.expires {
        // Only a peer that knows timers can act on a 422 (RFC 4028 9); another's interval
        // (a proxy's) is raised to ours.
        Some(se) if se < min_se && ask.supports_timer => return Err(min_se),
        Some(se) if se < min_se => min_se,
        // We may shorten what they ask for, never below their Min-SE (RFC 4028 9).
        Some(se) if settings.expires > 0 => se.min(settings.expires.max(floor)),
        Some(se) => se,
        None => match current {
            Some(c) => c.interval,
            None if settings.expires > 0 => settings.expires.max(floor),
            None => return Ok(None),
        },
    };
    let we_refresh = match ask.refresher {
        Some(r) => r == Refresher::Uas,
        None => match current {
            Some(c) => c.we_refresh,
            // A peer that knows timers refreshes its own session; one that does not
            // cannot, so we do (RFC 4028 9).
            None => !ask.supports_timer,
        },
    };
    Ok(Some(Agreement {
        interval,
        we_refresh: we_refresh || !ask.supports_timer,
        peer_supports: ask.supports_timer,
    }))
}

/// What the answer to a request carries: Session-Expires with who refreshes (as the UAS
/// of that request names it), and `Require: timer` when the peer knows timers.
pub fn response_headers(a: &Agreement) -> Vec<(&'static str, String)> {
    let refresher = if a.we_refresh { "uas" } else { "uac" };
    let mut out = vec![(
        "Session-Expires",
        format!("{};refresher={refresher}", a.interval),
    )];
    if a.peer_supports {
        out.push(("Require", "timer".into()));
    }
    out
}

/// The agreement after a 2xx to our refresh: the interval and refresher it states (as
/// the UAS of our request names them), else what we asked.
pub fn adopt(ok: &Ask, asked: &Agreement) -> Agreement {
    Agreement {
        interval: ok.expires.unwrap_or(asked.interval),
        we_refresh: ok.refresher.is_none_or(|r| r == Refresher::Uac),
        peer_supports: asked.peer_supports || ok.supports_timer,
    }
}

/// What falls due on a dialog's session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// We are the refresher: send a refresh now (half the interval has passed).
    Refresh,
    /// The peer was to refresh and has not: the session is over (BYE).
    Expired,
}

/// One dialog's session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    agreement: Agreement,
    due: Instant,
}

impl SessionTimer {
    /// The session was set up or refreshed at `now` with `agreement`.
    pub fn new(now: Instant, agreement: Agreement) -> SessionTimer {
        let interval = Duration::from_secs(agreement.interval.into());
        let due = if agreement.we_refresh {
            now + interval / 2
        } else {
            // RFC 4028 10: the other side's refresh may be late by up to a third of the
            // interval, or 32 s, whichever is less.
            now + interval - (interval / 3).min(Duration::from_secs(32))
        };
        SessionTimer { agreement, due }
    }

    /// The agreement in force.
    pub fn agreement(&self) -> &Agreement {
        &self.agreement
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Instant {
        self.due
    }

    /// Our refresh was refused: try again at `at` (earlier than the next half interval).
    pub fn retry_at(&mut self, at: Instant) {
        if self.agreement.we_refresh {
            self.due = self.due.min(at);
        }
    }

    /// What falls due at `now`, if anything. A refresh due is re-armed for the next half
    /// interval, so a refresh that gets no answer is tried again.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Due> {
        if now < self.due {
            return None;
        }
        if self.agreement.we_refresh {
            *self = SessionTimer::new(now, self.agreement);
            Some(Due::Refresh)
        } else {
            self.due = now + Duration::from_secs(u64::from(u32::MAX));
            Some(Due::Expired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::Header;

    const SETTINGS: TimerSettings = TimerSettings {
        expires: 1800,
        min_se: 90,
    };

    fn ask(lines: &[(&str, &str)]) -> Ask {
        let mut h = Headers::default();
        for (name, value) in lines {
            let header = match *name {
                "Supported" => Header::Supported((*value).into()),
                "Require" => Header::Require((*value).into()),
                _ => Header::Other((*name).into(), (*value).into()),
            };
            h.push(header);
        }
        Ask::read(&h)
    }

    #[test]
    fn requests_are_read_with_compact_values_and_parameters() {
        let a = ask(&[
            ("Session-Expires", "600;refresher=UAC"),
            ("min-se", "120"),
            ("Supported", "100rel, timer"),
        ]);
        assert_eq!(
            a,
            Ask {
                expires: Some(600),
                refresher: Some(Refresher::Uac),
                min_se: Some(120),
                supports_timer: true
            }
        );
        assert_eq!(ask(&[]), Ask::default());
    }

    #[test]
    fn an_interval_below_our_min_se_is_refused_with_it() {
        let a = ask(&[("Session-Expires", "60"), ("Supported", "timer")]);
        assert_eq!(answer(&a, &SETTINGS, None), Err(90));
        let strict = TimerSettings {
            min_se: 300,
            ..SETTINGS
        };
        let a = ask(&[("Session-Expires", "200"), ("Supported", "timer")]);
        assert_eq!(answer(&a, &strict, None), Err(300));
        // A Session-Expires a proxy added for a peer without timers: raised, not refused.
        let a = ask(&[("Session-Expires", "60")]);
        assert!(matches!(
            answer(&a, &SETTINGS, None),
            Ok(Some(Agreement {
                interval: 90,
                we_refresh: true,
                ..
            }))
        ));
    }

    #[test]
    fn a_peer_that_knows_timers_refreshes_unless_it_says_otherwise() {
        let a = ask(&[("Session-Expires", "600"), ("Supported", "timer")]);
        let agreed = answer(&a, &SETTINGS, None)
            .expect("accepted")
            .expect("a timer");
        assert_eq!(
            agreed,
            Agreement {
                interval: 600,
                we_refresh: false,
                peer_supports: true
            }
        );
        assert_eq!(
            response_headers(&agreed),
            vec![
                ("Session-Expires", "600;refresher=uac".to_owned()),
                ("Require", "timer".to_owned())
            ]
        );
        let a = ask(&[
            ("Session-Expires", "600;refresher=uas"),
            ("Supported", "timer"),
        ]);
        assert!(
            answer(&a, &SETTINGS, None)
                .expect("accepted")
                .expect("a timer")
                .we_refresh
        );
    }

    #[test]
    fn a_peer_without_timers_gets_one_we_refresh_and_no_require() {
        let a = ask(&[]);
        let agreed = answer(&a, &SETTINGS, None)
            .expect("accepted")
            .expect("a timer");
        assert_eq!(
            agreed,
            Agreement {
                interval: 1800,
                we_refresh: true,
                peer_supports: false
            }
        );
        assert_eq!(
            response_headers(&agreed),
            vec![("Session-Expires", "1800;refresher=uas".to_owned())]
        );
        // Asking for none ourselves: none unless the peer asks.
        let off = TimerSettings {
            expires: 0,
            ..SETTINGS
        };
        assert_eq!(answer(&a, &off, None), Ok(None));
        // We shorten a long interval to ours, but never below the peer's Min-SE.
        let long = ask(&[
            ("Session-Expires", "7200"),
            ("Min-SE", "3600"),
            ("Supported", "timer"),
        ]);
        assert_eq!(
            answer(&long, &SETTINGS, None)
                .expect("accepted")
                .expect("a timer")
                .interval,
            3600
        );
    }

    #[test]
    fn the_refresher_refreshes_at_half_time_and_the_other_hangs_up_before_expiry() {
        let t0 = Instant::now();
        let mut ours = SessionTimer::new(
            t0,
            Agreement {
                interval: 600,
                we_refresh: true,
                peer_supports: true,
            },
        );
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(300));
        assert_eq!(ours.handle_timeout(t0 + Duration::from_secs(299)), None);
        assert_eq!(
            ours.handle_timeout(t0 + Duration::from_secs(300)),
            Some(Due::Refresh)
        );
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(600));
        let mut theirs = SessionTimer::new(
            t0,
            Agreement {
                interval: 90,
                we_refresh: false,
                peer_supports: true,
            },
        );
        // 90 s less a third (30 s, below 32 s).
        assert_eq!(theirs.poll_timeout(), t0 + Duration::from_secs(60));
        assert_eq!(
            theirs.handle_timeout(t0 + Duration::from_secs(60)),
            Some(Due::Expired)
        );
        assert_eq!(theirs.handle_timeout(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_2xx_to_our_refresh_may_change_interval_and_refresher() {
        let asked = Agreement {
            interval: 1800,
            we_refresh: true,
            peer_supports: true,
        };
        let ok = ask(&[("Session-Expires", "900;refresher=uas")]);
        assert_eq!(
            adopt(&ok, &asked),
            Agreement {
                interval: 900,
                we_refresh: false,
                peer_supports: true
            }
        );
        assert_eq!(adopt(&Ask::default(), &asked), asked);
    }
}
