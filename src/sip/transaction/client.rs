//! Client transactions: the INVITE state machine (RFC 3261 17.1.1 with RFC 6026's
//! Accepted state) including the ACK of a non-2xx final, and the non-INVITE one (17.1.2).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, SipMessage};

use super::{ClientTxId, Out, Peer, TxEvent};
use crate::sip::build;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent, nothing heard (Timers A, B).
    Calling,
    /// Non-INVITE sent, nothing heard (Timers E, F).
    Trying,
    Proceeding,
    /// Final non-2xx received (INVITE: ACK sent; Timer D) or any final (non-INVITE; K).
    Completed,
    /// INVITE got a 2xx: further 2xx go to the TU until Timer M.
    Accepted,
    Terminated,
}

pub(super) struct ClientTx {
    pub(super) key: String,
    invite: bool,
    state: State,
    peer: Peer,
    request: Request,
    bytes: Bytes,
    ack: Option<Bytes>,
    resend_at: Option<Instant>,
    interval: Duration,
    /// Timer B or F while waiting; D, K or M after.
    end_at: Option<Instant>,
}

impl ClientTx {
    pub(super) fn new(out: &mut Out, key: String, peer: Peer, request: Request) -> ClientTx {
        let invite = request.method == Method::Invite;
        let bytes = build::encode(&SipMessage::Request(request.clone()));
        out.send(peer, &bytes);
        let t = out.timers;
        let tx = ClientTx {
            key,
            invite,
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            peer,
            request,
            bytes,
            ack: None,
            resend_at: (!peer.transport.is_reliable()).then(|| out.now + t.t1),
            interval: t.t1,
            end_at: Some(out.now + 64 * t.t1),
        };
        tx.schedule(out);
        tx
    }

    pub(super) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether this transaction's request went to `addr` over TCP and nothing answered it
    /// yet: a failed connect there means the request was never delivered.
    pub(super) fn awaits_connect_to(&self, addr: std::net::SocketAddr) -> bool {
        self.peer.transport.is_reliable()
            && self.peer.addr == addr
            && matches!(self.state, State::Calling | State::Trying)
    }

    /// Ends the transaction for a transport failure (RFC 3261 17.1.4): the TU hears a
    /// timeout at once instead of after Timer B or F.
    pub(super) fn fail(&mut self, out: &mut Out, id: ClientTxId) {
        out.events.push_back(TxEvent::Timeout { tx: id });
        self.state = State::Terminated;
    }

    pub(super) fn on_response(&mut self, out: &mut Out, id: ClientTxId, resp: Response) {
        let code = resp.status_code.code();
        let reliable = self.peer.transport.is_reliable();
        let t = out.timers;
        let pass_up = match (self.state, code) {
            (State::Calling | State::Trying | State::Proceeding, 100..=199) => {
                if self.invite {
                    // Timer B stops once the INVITE is proceeding (17.1.1.2).
                    self.resend_at = None;
                    self.end_at = None;
                } else if self.resend_at.is_some() {
                    self.resend_at = Some(out.now + t.t2);
                    self.interval = t.t2;
                }
                self.state = State::Proceeding;
                true
            }
            (State::Calling | State::Proceeding, 200..=299) if self.invite => {
                self.state = State::Accepted;
                self.resend_at = None;
                self.end_at = Some(out.now + 64 * t.t1);
                true
            }
            (State::Accepted, 200..=299) => true,
            (State::Calling | State::Proceeding, _) if self.invite => {
                let ack = build::encode(&SipMessage::Request(self.ack_for(&resp)));
                out.send(self.peer, &ack);
                self.ack = Some(ack);
                self.state = State::Completed;
                self.resend_at = None;
                self.end_at = Some(
                    out.now
                        + if reliable {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(32)
                        },
                );
                true
            }
            (State::Trying | State::Proceeding, _) => {
                self.state = State::Completed;
                self.resend_at = None;
                self.end_at = Some(out.now + if reliable { Duration::ZERO } else { t.t4 });
                true
            }
            (State::Completed, 300..) if self.invite => {
                if let Some(ack) = self.ack.clone() {
                    out.resend(self.peer, &ack);
                }
                false
            }
            _ => {
                out.counts.retransmissions_absorbed += 1;
                false
            }
        };
        if pass_up {
            out.events.push_back(TxEvent::Response {
                tx: id,
                response: resp,
            });
        }
        if self.end_at.is_some_and(|at| at <= out.now) {
            self.state = State::Terminated;
        }
        self.schedule(out);
    }

    pub(super) fn on_timer(&mut self, out: &mut Out, id: ClientTxId) {
        let now = out.now;
        if self.end_at.is_some_and(|at| at <= now) {
            if matches!(
                self.state,
                State::Calling | State::Trying | State::Proceeding
            ) {
                out.events.push_back(TxEvent::Timeout { tx: id });
            }
            self.state = State::Terminated;
            return;
        }
        if self.resend_at.is_some_and(|at| at <= now) {
            out.resend(self.peer, &self.bytes.clone());
            self.interval = match self.state {
                // Timer A doubles without bound; E doubles up to T2 and stays at T2 once
                // a provisional response arrived.
                State::Calling => self.interval * 2,
                State::Proceeding => out.timers.t2,
                _ => (self.interval * 2).min(out.timers.t2),
            };
            self.resend_at = Some(now + self.interval);
            self.schedule(out);
        }
    }

    /// The ACK of a non-2xx final (17.1.1.3): same Request-URI, top Via, From, Call-ID and
    /// CSeq number as the INVITE, the response's To (with its tag), and the INVITE's Routes.
    fn ack_for(&self, resp: &Response) -> Request {
        let mut headers = Headers::default();
        let mut via_done = false;
        for h in self.request.headers.iter() {
            match h {
                Header::Via(_) if !via_done => {
                    headers.push(h.clone());
                    via_done = true;
                }
                Header::From(_) | Header::CallId(_) | Header::Route(_) | Header::MaxForwards(_) => {
                    headers.push(h.clone())
                }
                Header::CSeq(c) => {
                    let seq = c.value().split_whitespace().next().unwrap_or("1");
                    headers.push(Header::CSeq(format!("{seq} ACK").into()));
                }
                _ => {}
            }
        }
        if let Some(to) = resp.headers.iter().find(|h| matches!(h, Header::To(_))) {
            headers.push(to.clone());
        }
        Request {
            method: Method::Ack,
            uri: self.request.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    fn schedule(&self, out: &mut Out) {
        for at in [self.resend_at, self.end_at].into_iter().flatten() {
            out.wake_at(at);
        }
    }
}
