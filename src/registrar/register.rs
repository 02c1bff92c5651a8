//! The registrar core, sans-IO: answers each REGISTER (challenge, verify, update bindings)
//! given `now`, and reports when a user's reachable contact changes — on REGISTER and when
//! bindings expire. It never reads a clock or touches a socket; the secret that keys its
//! nonces comes from the edge.
//!
//! Wrong credentials get 403, not another 401: the client has already answered a
//! challenge with them, and most phones answer every 401 by retrying at once, so a 401 for
//! a wrong password turns into a REGISTER loop; 403 is final and the phone stops
//! (RFC 3261 §22.4 leaves the choice to the server). The same 403 answers an unknown
//! user, so the answers do not reveal which user names exist.
//!
//! Guessing is slowed and then stopped by `guard` (per user and per source), a wrong
//! answer spends its nonce, and a stale nonce is challenged again before the password is
//! looked at, so an expired nonce tells nothing about the password either.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rsip::prelude::*;

use super::RegistrarConfig;
use super::bindings::{Bindings, Change};
use super::guard::{Guard, Held, Lockout};
use super::nonce::{NonceState, Nonces};
use super::request::{Contacts, RegisterRequest, RequestError};
use crate::cidr::Cidr;
use crate::diag::InvalidSection;
use crate::secret::Secret;
use crate::sip::digest::{self, Algorithm, Credentials};

/// The answer to send: status and the headers this registrar adds (the transaction layer
/// copies Via, From, To with a tag, Call-ID and CSeq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: rsip::StatusCode,
    pub headers: Vec<rsip::Header>,
    /// Why, for the log line.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Registered {
        user: String,
        /// The digest algorithm the phone answered with.
        algorithm: Algorithm,
    },
    /// No usable credentials yet, or a nonce this registrar did not mint.
    Challenged,
    /// Right credentials on an expired nonce: challenged again with `stale=true`.
    Stale {
        user: String,
    },
    WrongCredentials {
        user: String,
    },
    UnknownUser {
        user: String,
    },
    /// A nonce count already used with this nonce, or a nonce a wrong answer spent.
    Replay {
        user: String,
    },
    /// Refused without checking: the user or the source answered wrong too often.
    Held {
        user: String,
        by: Held,
    },
    /// The source is outside `[registrar] allow`.
    SourceNotAllowed,
    IntervalTooBrief {
        user: String,
    },
    OutOfOrder {
        user: String,
    },
    BadRequest(String),
    NotRegister,
}

/// Counts of each kind of answer since start, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthCounters {
    pub challenges: u64,
    pub registered: u64,
    pub stale: u64,
    pub wrong_credentials: u64,
    pub unknown_users: u64,
    pub replays: u64,
    pub bad_requests: u64,
    pub held: u64,
    pub not_allowed: u64,
}

/// Where a user's phone is reached now (`None`: it is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingChange {
    pub user: String,
    pub contact: Option<String>,
}

pub struct Registrar {
    realm: String,
    algorithms: Vec<Algorithm>,
    min_expires: u32,
    max_expires: u32,
    default_expires: u32,
    users: HashMap<String, Secret>,
    nonces: Nonces,
    bindings: Bindings,
    /// The contact last reported per user.
    reported: HashMap<String, String>,
    changes: VecDeque<BindingChange>,
    counters: AuthCounters,
    guard: Guard,
    allow: Vec<Cidr>,
}

impl Registrar {
    /// `credentials` are (user, password); `secret` keys the nonces and should be drawn
    /// from a CSPRNG at start.
    pub fn new(
        config: &RegistrarConfig,
        credentials: Vec<(String, Secret)>,
        secret: [u8; 32],
        now: Instant,
    ) -> Result<Registrar, InvalidSection> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(InvalidSection {
                section: "registrar",
                problems,
            });
        }
        Ok(Registrar {
            realm: config.realm.clone(),
            algorithms: config.algorithms.clone(),
            min_expires: config.min_expires_s,
            max_expires: config.max_expires_s,
            default_expires: config
                .default_expires_s
                .clamp(config.min_expires_s, config.max_expires_s),
            users: credentials.into_iter().collect(),
            nonces: Nonces::new(secret, now, Duration::from_secs(config.nonce_lifetime_s)),
            bindings: Bindings::default(),
            reported: HashMap::new(),
            changes: VecDeque::new(),
            counters: AuthCounters::default(),
            guard: Guard::new(config.max_failures, Duration::from_secs(config.lockout_s)),
            // Checked by `problems` above.
            allow: config.allow.iter().filter_map(|c| c.parse().ok()).collect(),
        })
    }

    /// Whether phones may register from `source` (`[registrar] allow`, empty: anywhere).
    pub fn admits(&self, source: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(source))
    }

    /// Answers one request routed to the registrar, received from `source`.
    pub fn handle_request(
        &mut self,
        now: Instant,
        source: IpAddr,
        request: &rsip::Request,
    ) -> Reply {
        match RegisterRequest::from_sip(request) {
            Ok(register) => self.handle_register(now, source, &register),
            Err(RequestError::NotRegister) => Reply {
                status: rsip::StatusCode::MethodNotAllowed,
                headers: vec![rsip::Header::Allow(rsip::headers::Allow::new("REGISTER"))],
                verdict: Verdict::NotRegister,
            },
            Err(e) => self.bad_request(e.to_string()),
        }
    }

    pub fn handle_register(
        &mut self,
        now: Instant,
        source: IpAddr,
        req: &RegisterRequest,
    ) -> Reply {
        if !self.admits(source) {
            self.counters.not_allowed += 1;
            return forbidden(Verdict::SourceNotAllowed);
        }
        let mut creds = None;
        let mut unusable = None;
        for value in &req.authorizations {
            match digest::parse_authorization(value) {
                Ok(c) if c.realm == self.realm => {
                    creds = Some(c);
                    break;
                }
                // Credentials for another realm, or in a scheme we do not speak (RFC 4475
                // 3.3.7), are no answer to our challenge: the phone is challenged.
                Ok(_) | Err(digest::DigestError::NotDigest) => {}
                Err(e) => unusable = Some(e),
            }
        }
        let Some(c) = creds else {
            return match unusable {
                Some(e) => self.bad_request(e.to_string()),
                None => self.challenge(now, Verdict::Challenged),
            };
        };
        if !self.algorithms.contains(&c.algorithm) {
            return self.bad_request(format!("algorithm {} not offered", c.algorithm.name()));
        }
        if rsip::Uri::try_from(c.uri.as_str()).ok().as_ref() != Some(&req.request_uri) {
            return self.bad_request("digest uri differs from the Request-URI".into());
        }
        let state = self.nonces.check(&c.nonce, now);
        if state == NonceState::Unknown {
            return self.challenge(now, Verdict::Challenged);
        }
        let user = c.username.clone();
        // Before the password is looked at: an expired nonce gets a new one whatever the
        // answer, and a spent one tells nothing either.
        if state == NonceState::Stale {
            self.counters.stale += 1;
            return self.challenge(now, Verdict::Stale { user });
        }
        if self.nonces.is_spent(&c.nonce) {
            self.counters.replays += 1;
            return self.challenge(now, Verdict::Replay { user });
        }
        if let Err(by) = self.guard.check(now, &user, source) {
            self.counters.held += 1;
            return forbidden(Verdict::Held { user, by });
        }
        if let Some(verdict) = self.refuse(&c, req) {
            self.guard.failed(now, &user, source);
            self.nonces.spend(&c.nonce, now);
            return forbidden(verdict);
        }
        if !self.nonces.accept_nc(&c.nonce, c.nc, now) {
            self.counters.replays += 1;
            return self.challenge(now, Verdict::Replay { user });
        }
        self.guard.succeeded(&user, source);
        self.update_bindings(now, &user, c.algorithm, req)
    }

    /// The 403 verdict for credentials that do not let this request register, if so.
    fn refuse(&mut self, c: &Credentials, req: &RegisterRequest) -> Option<Verdict> {
        let user = c.username.clone();
        let Some(password) = self.users.get(&c.username) else {
            self.counters.unknown_users += 1;
            return Some(Verdict::UnknownUser { user });
        };
        let expected = digest::expected_response(c, "REGISTER", password.expose());
        // Only the user itself may register its address of record.
        if !digest::same_response(&expected, &c.response) || c.username != req.user {
            self.counters.wrong_credentials += 1;
            return Some(Verdict::WrongCredentials { user });
        }
        None
    }

    fn update_bindings(
        &mut self,
        now: Instant,
        user: &str,
        algorithm: Algorithm,
        req: &RegisterRequest,
    ) -> Reply {
        let changes: Vec<Change> = match &req.contacts {
            Contacts::Query => Vec::new(),
            Contacts::All => self
                .bindings
                .of(user)
                .iter()
                .map(|b| Change::Remove {
                    contact: b.contact.clone(),
                })
                .collect(),
            Contacts::List(list) => {
                let mut changes = Vec::with_capacity(list.len());
                for (contact, param) in list {
                    let contact = contact.clone();
                    let asked = param.or(req.expires).unwrap_or(self.default_expires);
                    if asked == 0 {
                        changes.push(Change::Remove { contact });
                    } else if asked < self.min_expires {
                        let min = rsip::headers::MinExpires::from(self.min_expires);
                        return Reply {
                            status: rsip::StatusCode::IntervalTooBrief,
                            headers: vec![rsip::Header::MinExpires(min)],
                            verdict: Verdict::IntervalTooBrief {
                                user: user.to_owned(),
                            },
                        };
                    } else {
                        let granted = asked.min(self.max_expires);
                        changes.push(Change::Set {
                            contact,
                            expires: Duration::from_secs(u64::from(granted)),
                        });
                    }
                }
                changes
            }
        };
        if self
            .bindings
            .apply(user, &changes, &req.call_id, req.cseq, now)
            .is_err()
        {
            return Reply {
                status: rsip::StatusCode::ServerInternalError,
                headers: Vec::new(),
                verdict: Verdict::OutOfOrder {
                    user: user.to_owned(),
                },
            };
        }
        self.counters.registered += 1;
        self.report(user);
        let headers = self
            .bindings
            .of(user)
            .iter()
            .map(|b| {
                let left = b.expires.saturating_duration_since(now).as_secs();
                let value = format!("<{}>;expires={left}", b.contact);
                rsip::Header::Contact(rsip::headers::Contact::new(value))
            })
            .collect();
        Reply {
            status: rsip::StatusCode::OK,
            headers,
            verdict: Verdict::Registered {
                user: user.to_owned(),
                algorithm,
            },
        }
    }

    fn challenge(&mut self, now: Instant, verdict: Verdict) -> Reply {
        self.counters.challenges += 1;
        let nonce = self.nonces.mint(now);
        let stale = matches!(verdict, Verdict::Stale { .. });
        let headers = self
            .algorithms
            .iter()
            .map(|&a| {
                let value = digest::challenge(&self.realm, &nonce, a, stale);
                rsip::Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(value))
            })
            .collect();
        Reply {
            status: rsip::StatusCode::Unauthorized,
            headers,
            verdict,
        }
    }

    fn bad_request(&mut self, why: String) -> Reply {
        self.counters.bad_requests += 1;
        Reply {
            status: rsip::StatusCode::BadRequest,
            headers: Vec::new(),
            verdict: Verdict::BadRequest(why),
        }
    }

    /// Queues a change when the user's best contact is not the one last reported.
    fn report(&mut self, user: &str) {
        let best = self.bindings.best(user).map(str::to_owned);
        if self.reported.get(user) == best.as_ref() {
            return;
        }
        match &best {
            Some(contact) => self.reported.insert(user.to_owned(), contact.clone()),
            None => self.reported.remove(user),
        };
        self.changes.push_back(BindingChange {
            user: user.to_owned(),
            contact: best,
        });
    }

    /// Drops expired bindings (reporting lost phones), forgotten nonces and failure
    /// counts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for user in self.bindings.expire(now) {
            self.report(&user);
        }
        self.nonces.expire(now);
        self.guard.handle_timeout(now);
    }

    pub fn poll_change(&mut self) -> Option<BindingChange> {
        self.changes.pop_front()
    }

    /// A user or source just locked out, for the log and the metrics.
    pub fn poll_lockout(&mut self) -> Option<Lockout> {
        self.guard.poll_lockout()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.bindings.next_expiry(),
            self.nonces.next_expiry(),
            self.guard.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn counters(&self) -> &AuthCounters {
        &self.counters
    }
}

fn forbidden(verdict: Verdict) -> Reply {
    Reply {
        status: rsip::StatusCode::Forbidden,
        headers: Vec::new(),
        verdict,
    }
}
