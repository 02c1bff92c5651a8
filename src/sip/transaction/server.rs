//! Server transactions: the INVITE state machine (RFC 3261 17.2.1 with RFC 6026's
//! Accepted state, plus the UAS core's 2xx retransmission) and the non-INVITE one (17.2.2).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::{Method, Request, Response, SipMessage};

use super::{Out, Peer, ServerTxId, TxError, TxEvent, key};
use crate::sip::{build, headers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Non-INVITE before any response.
    Trying,
    /// INVITE before its final response; non-INVITE after a provisional one.
    Proceeding,
    /// A non-2xx final was sent (INVITE: waiting for the ACK).
    Completed,
    /// INVITE: the ACK for the non-2xx arrived; absorbing its retransmissions.
    Confirmed,
    /// INVITE: a 2xx was sent; resending it until the dialog's ACK, absorbing INVITE copies.
    Accepted,
    Terminated,
}

pub(super) struct ServerTx {
    pub(super) key: String,
    /// Set for an INVITE once a 2xx is sent: matches the dialog's ACK.
    pub(super) ack_key: Option<String>,
    invite: bool,
    /// OPTIONS, and a REGISTER without credentials (its answer is a challenge): asking
    /// again gets an answer as good, so the transaction ends with its answer rather than
    /// living 32 s to absorb copies (an OPTIONS or REGISTER flood held memory for that
    /// long); a copy is simply answered again. A REGISTER with credentials keeps its
    /// transaction, so a copy gets the same answer and does not count as a replay.
    ends_with_answer: bool,
    call_id: String,
    state: State,
    peer: Peer,
    last_response: Option<Bytes>,
    /// Retransmission timer (G, or the 2xx schedule) and its current interval.
    resend_at: Option<Instant>,
    interval: Duration,
    /// When the current state ends (H, I, J, L).
    end_at: Option<Instant>,
    /// The 2xx was acknowledged.
    acked: bool,
    /// What an ACK of this INVITE carries (Call-ID, CSeq number, From tag), whether it
    /// acknowledges a non-2xx (17.1.1.3) or the 2xx.
    invite_identity: Option<String>,
}

impl ServerTx {
    pub(super) fn new(out: &mut Out, key: String, peer: Peer, req: &Request) -> ServerTx {
        let invite = req.method == Method::Invite;
        let mut tx = ServerTx {
            key,
            ack_key: None,
            invite,
            ends_with_answer: req.method == Method::Options
                || (req.method == Method::Register
                    && !req
                        .headers
                        .iter()
                        .any(|h| matches!(h, rsip::Header::Authorization(_)))),
            call_id: headers::call_id(&req.headers)
                .unwrap_or_default()
                .to_owned(),
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            peer,
            last_response: None,
            resend_at: None,
            interval: out.timers.t1,
            end_at: None,
            acked: false,
            invite_identity: if invite { key::ack_key(req) } else { None },
        };
        if invite {
            // 17.2.1: answer at once so the client stops retransmitting; the TU's
            // 180/200 follow.
            let trying = build::encode(&SipMessage::Response(build::response(req, 100, None)));
            out.send(peer, &trying);
            tx.last_response = Some(trying);
        }
        tx
    }

    pub(super) fn is_proceeding(&self) -> bool {
        self.invite && self.state == State::Proceeding
    }

    pub(super) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub(super) fn respond(&mut self, out: &mut Out, response: Response) -> Result<(), TxError> {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(TxError::AlreadyFinal);
        }
        let code = response.status_code.code();
        let bytes = build::encode(&SipMessage::Response(response));
        out.send(self.peer, &bytes);
        self.last_response = Some(bytes);
        let reliable = self.peer.transport.is_reliable();
        let t = out.timers;
        match (self.invite, code) {
            (_, 100..=199) => self.state = State::Proceeding,
            (true, 200..=299) => {
                self.state = State::Accepted;
                self.ack_key = self.invite_identity.clone();
                // The 2xx travels end to end, possibly over UDP beyond a TCP hop, so it
                // is resent whatever our transport (13.3.1.4).
                self.interval = t.t1;
                self.resend_at = Some(out.now + t.t1);
                self.end_at = Some(out.now + 64 * t.t1);
            }
            (true, _) => {
                self.state = State::Completed;
                self.interval = t.t1;
                self.resend_at = (!reliable).then(|| out.now + t.t1);
                self.end_at = Some(out.now + 64 * t.t1);
            }
            (false, _) => {
                self.state = State::Completed;
                let absorb = !reliable && !self.ends_with_answer;
                self.end_at = Some(out.now + if absorb { 64 * t.t1 } else { Duration::ZERO });
            }
        }
        self.schedule(out);
        if self.end_at.is_some_and(|at| at <= out.now) {
            self.state = State::Terminated;
        }
        Ok(())
    }

    /// Whether `ack`, which carries this INVITE's branch, acknowledges it: its Call-ID,
    /// CSeq number and From tag must be the INVITE's too. Matching the branch alone let an
    /// ACK of another call stop this call's 2xx and its ACK timer, leaving the call up for
    /// ever.
    pub(super) fn owns_ack(&self, ack: &Request) -> bool {
        self.invite && self.invite_identity.is_some() && key::ack_key(ack) == self.invite_identity
    }

    /// A copy of the request (or the ACK of a non-2xx) arrived. Returns true when it is an
    /// ACK the dialog must see.
    pub(super) fn on_retransmission(&mut self, out: &mut Out, is_ack: bool) -> bool {
        match (self.state, is_ack) {
            (State::Completed, true) if self.invite => {
                self.state = State::Confirmed;
                self.resend_at = None;
                let wait = if self.peer.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    out.timers.t4
                };
                self.end_at = Some(out.now + wait);
                self.schedule(out);
                false
            }
            (State::Accepted, true) => {
                self.on_dialog_ack();
                true
            }
            (_, true) => {
                out.counts.retransmissions_absorbed += 1;
                false
            }
            (State::Proceeding | State::Completed | State::Accepted, false) => {
                if let Some(bytes) = self.last_response.clone() {
                    out.resend(self.peer, &bytes);
                } else {
                    out.counts.retransmissions_absorbed += 1;
                }
                false
            }
            (State::Trying | State::Confirmed | State::Terminated, false) => {
                out.counts.retransmissions_absorbed += 1;
                false
            }
        }
    }

    /// The dialog's ACK for our 2xx arrived: stop resending it. The transaction stays until
    /// Timer L to absorb late INVITE copies.
    pub(super) fn on_dialog_ack(&mut self) {
        self.acked = true;
        self.resend_at = None;
    }

    pub(super) fn on_timer(&mut self, out: &mut Out, id: ServerTxId) {
        let now = out.now;
        if self.end_at.is_some_and(|at| at <= now) {
            if self.state == State::Accepted && !self.acked {
                out.events.push_back(TxEvent::AckTimeout {
                    tx: id,
                    call_id: std::mem::take(&mut self.call_id),
                });
            }
            self.state = State::Terminated;
            return;
        }
        if self.resend_at.is_some_and(|at| at <= now)
            && let Some(bytes) = self.last_response.clone()
        {
            out.resend(self.peer, &bytes);
            self.interval = (self.interval * 2).min(out.timers.t2);
            self.resend_at = Some(now + self.interval);
            self.schedule(out);
        }
    }

    fn schedule(&self, out: &mut Out) {
        for at in [self.resend_at, self.end_at].into_iter().flatten() {
            out.wake_at(at);
        }
    }
}
