//! Whole calls without sockets, in virtual time: a trunk and an agent's phone, each a real
//! endpoint core (transactions, retransmissions, timers) playing the peer, talk SIP to the
//! hotline's endpoint core, which drives the call core. Media, the ACD and recognition are
//! the harness's: what the call asks of them is recorded, what they say is fed by hand.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsip::{Header, Method, Request, Response, SipMessage};

use super::*;
use crate::acd::{OfferId, OfferOutcome, Target};
use crate::call::caller_leg;
use crate::call::far_leg::DialError;
use crate::call::far_leg::cancel_for;
use crate::call::flow::AcdReport;
use crate::call::placing::{TrunkRoute, TrunkRoutes};
use crate::call::test_plan;
use crate::endpoint::core::{Core as Endpoint, Dest, Event};
use crate::events::HungUpBy;
use crate::media::codec::Codec;
use crate::media::sdp::{Direction, Encryption, Reach, Security};
use crate::sip::dialog::Dialog;
use crate::sip::digest::{self, Algorithm, ClientCredentials};
use crate::sip::transaction::Peer;
use crate::sip::uri::SipUri;
use crate::sip::{Transport, build};
use crate::time::virtual_time::{Timed, advance};

const HOTLINE: &str = "10.0.0.100:5060";
const TRUNK: &str = "10.0.0.1:5060";
const AGENT: &str = "10.0.0.9:5062";
/// An address that takes what is sent to it and answers nothing.
const BLACK_HOLE: &str = "10.0.0.77:5060";
const CALL_ID: &str = "call-1@10.0.0.1";

/// Greets, then queues for `labor`.
const QUEUE: &str = "  next:\n    queue: labor\n    prompt: wait\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn sdp(host: &str, port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn parse_request(text: &str) -> Request {
    match crate::sip::parse::parse(text.as_bytes(), Transport::Udp) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

/// A peer: an endpoint core at an address, and what it told its calls.
struct Side {
    addr: SocketAddr,
    core: Endpoint,
    inbox: VecDeque<Event>,
}

impl Side {
    fn new(at: &str) -> Side {
        Side {
            addr: addr(at),
            core: Endpoint::for_tests(10, None),
            inbox: VecDeque::new(),
        }
    }

    /// The responses that arrived, in order.
    fn responses(&mut self) -> Vec<Response> {
        let mut out = Vec::new();
        self.inbox.retain(|e| match e {
            Event::Call {
                event: CallEvent::Response { response },
                ..
            } => {
                out.push(response.clone());
                false
            }
            _ => true,
        });
        out
    }

    /// The requests that arrived inside calls (BYE, CANCEL...), with their transactions.
    fn requests(&mut self) -> Vec<(crate::sip::transaction::ServerTxId, Request)> {
        let mut out = Vec::new();
        self.inbox.retain(|e| match e {
            Event::Call {
                event: CallEvent::Request { tx, request, .. },
                ..
            } => {
                out.push((*tx, request.clone()));
                false
            }
            _ => true,
        });
        out
    }
}

fn codes(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status_code.code()).collect()
}

/// The hotline (endpoint core and call core), a trunk and an agent's phone on one wire.
struct Net {
    now: Instant,
    hotline: Endpoint,
    trunk: Side,
    agent: Side,
    steps: &'static str,
    /// More options for the plan's greeting step (`test_plan::flows_greeting`).
    greeting: &'static str,
    answering: Answering,
    /// What the far legs answer challenges with.
    credentials: Option<ClientCredentials>,
    /// The caller leg's SRTP policy and key.
    security: Security,
    call: Option<CallCore>,
    /// The far legs' Call-IDs, as the driver routes them.
    far_ids: HashMap<Far, String>,
    /// Everything the call asked of the harness but SIP, in order.
    did: Vec<CallAction>,
    /// How the call ended (`not_connected` if it never got up), once it has.
    ended: Option<String>,
    /// The named trunks calls may be sent through.
    trunks: TrunkRoutes,
    /// The named trunks OPTIONS probes find down: the edge refuses to dial them.
    down: Vec<String>,
    /// How an agent's REFER is carried out.
    agent_refer: crate::sip::AgentRefer,
    /// The first line of each message sent to `BLACK_HOLE`.
    swallowed: Vec<String>,
}

impl Timed for Net {
    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.hotline.poll_timeout(),
            self.trunk.core.poll_timeout(),
            self.agent.core.poll_timeout(),
            self.call.as_ref().and_then(CallCore::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.hotline.handle_timeout(now);
        self.trunk.core.handle_timeout(now);
        self.agent.core.handle_timeout(now);
        if let Some(c) = self.call.as_mut() {
            c.handle_timeout(now);
        }
        self.progress();
    }
}

impl Net {
    fn new(steps: &'static str, ring: Duration) -> Net {
        Net {
            now: Instant::now(),
            hotline: Endpoint::for_tests(10, None),
            trunk: Side::new(TRUNK),
            agent: Side::new(AGENT),
            steps,
            greeting: "",
            answering: Answering {
                ring,
                ..crate::sip::SipConfig::default().answering()
            },
            credentials: None,
            security: Security::new(Encryption::Optional),
            call: None,
            far_ids: HashMap::new(),
            did: Vec::new(),
            ended: None,
            trunks: TrunkRoutes::default(),
            down: Vec::new(),
            agent_refer: crate::sip::AgentRefer::Bridge,
            swallowed: Vec::new(),
        }
    }

    fn wait(&mut self, d: Duration) {
        let until = self.now + d;
        self.now = advance(self, until, |_, _| {});
    }

    fn call(&mut self) -> &mut CallCore {
        self.call.as_mut().expect("a call in progress")
    }

    /// Moves every message and action until nothing moves.
    fn progress(&mut self) {
        loop {
            let mut moved = false;
            let actions: Vec<CallAction> = match self.call.as_mut() {
                Some(c) => std::iter::from_fn(|| c.poll_action()).collect(),
                None => Vec::new(),
            };
            for a in actions {
                moved = true;
                self.act(a);
            }
            if self.call.as_ref().is_some_and(CallCore::is_done)
                && let Some(call) = self.call.take()
            {
                moved = true;
                self.hotline.handle_command(
                    self.now,
                    Command::Unroute {
                        call_id: call.call_id().to_owned(),
                    },
                );
                self.ended = Some(
                    call.outcome()
                        .map_or_else(|| "not_connected".into(), ToString::to_string),
                );
            }
            while let Some(t) = self.hotline.poll_transmit() {
                moved = true;
                let Dest::Udp(to) = t.dest else {
                    panic!("UDP only here")
                };
                let side = if to == self.trunk.addr {
                    &mut self.trunk
                } else if to == self.agent.addr {
                    &mut self.agent
                } else if to == addr(BLACK_HOLE) {
                    let text = String::from_utf8_lossy(&t.bytes);
                    self.swallowed
                        .push(text.lines().next().unwrap_or_default().to_owned());
                    continue;
                } else {
                    panic!("sent to a stranger: {to}")
                };
                side.core
                    .handle_datagram(self.now, Peer::udp(HOTLINE), &t.bytes);
            }
            for side in [&mut self.trunk, &mut self.agent] {
                while let Some(t) = side.core.poll_transmit() {
                    moved = true;
                    assert!(matches!(t.dest, Dest::Udp(a) if a == addr(HOTLINE)));
                    let from = Peer {
                        transport: Transport::Udp,
                        addr: side.addr,
                        conn: None,
                    };
                    self.hotline.handle_datagram(self.now, from, &t.bytes);
                }
                while let Some(ev) = side.core.poll_event() {
                    moved = true;
                    side.inbox.push_back(ev);
                }
            }
            while let Some(ev) = self.hotline.poll_event() {
                moved = true;
                match ev {
                    Event::NewCall(new) => self.start_call(new),
                    Event::Call { call_id, event } => match self.call.as_mut() {
                        Some(c) => c.handle_sip(self.now, event),
                        None => self.hotline.handle_undelivered(self.now, &call_id, event),
                    },
                    _ => {}
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// What the engine's edge does with a new INVITE (`call::run`), minus the sockets.
    fn start_call(&mut self, new: crate::endpoint::core::NewCall) {
        assert!(self.call.is_none(), "one call at a time here");
        let read = crate::call::incoming::Invite::read(
            new.invite,
            new.tx,
            new.peer,
            addr(HOTLINE),
            new.trunk,
            "hotline-tag",
            &self.answering.timers,
        );
        let invite = match read {
            Ok(invite) => invite,
            Err(refused) => {
                let (refusal, request) = *refused;
                let response = refusal.response(&request);
                let call_id = CALL_ID.to_owned();
                self.hotline.handle_command(
                    self.now,
                    Command::Respond {
                        tx: new.tx,
                        response,
                    },
                );
                self.hotline
                    .handle_command(self.now, Command::Unroute { call_id });
                self.ended = Some("refused".into());
                return;
            }
        };
        let reach = reach(TRUNK);
        let negotiated =
            caller_leg::negotiate(&invite, &[Codec::PCMU, Codec::PCMA], &reach, &self.security)
                .expect("an offer");
        let (flows, plan) = test_plan::flows_greeting(self.greeting, self.steps);
        self.call = Some(CallCore::new(
            self.now,
            invite,
            negotiated,
            MediaSetup {
                port: 40000,
                codecs: vec![Codec::PCMU, Codec::PCMA],
                reach,
                security: self.security,
                session_id: 7,
            },
            self.answering,
            FlowSetup {
                flows,
                plan,
                rules: FlowRules {
                    has_acd: true,
                    agent_refer: self.agent_refer,
                },
                trunks: Arc::new(self.trunks.clone()),
                wall: test_plan::tuesday_10am(),
            },
        ));
    }

    /// What the driver does with an action, minus the I/O.
    fn act(&mut self, action: CallAction) {
        match action {
            CallAction::Sip(c) => self.hotline.handle_command(self.now, *c),
            CallAction::Dial {
                far,
                trunk: Some(ref t),
                ..
            } if self.down.contains(t) => {
                let down = Err(DialError::Down(t.clone()));
                self.did.push(action);
                let now = self.now;
                self.call().handle_dialled(now, far, down);
            }
            CallAction::Dial {
                far,
                ref target,
                srtp,
                ..
            } => {
                let at = SipUri::parse(target)
                    .and_then(|u| u.socket_addr())
                    .expect("a target with an address");
                // A new Call-ID for every leg dialled, as the driver makes.
                let dialled = self
                    .did
                    .iter()
                    .filter(|a| matches!(a, CallAction::Dial { .. }));
                let call_id = format!("far-{}@hotline", dialled.count() + 1);
                self.far_ids.insert(far, call_id.clone());
                self.hotline.handle_command(
                    self.now,
                    Command::Route {
                        call_id: call_id.clone(),
                    },
                );
                let dialled = Dialled {
                    call_id,
                    peer: Peer {
                        transport: Transport::Udp,
                        addr: at,
                        conn: None,
                    },
                    local: addr(HOTLINE),
                    media: MediaSetup {
                        // The heir speaks on the caller's media, as the driver gives it.
                        port: if far == Far::Heir { 40000 } else { 40002 },
                        codecs: vec![Codec::PCMU, Codec::PCMA],
                        reach: reach(AGENT),
                        session_id: 9,
                        security: Security::new(if srtp {
                            Encryption::Required
                        } else {
                            Encryption::Optional
                        }),
                    },
                    credentials: self.credentials.clone(),
                };
                self.did.push(action);
                let now = self.now;
                self.call().handle_dialled(now, far, Ok(dialled));
            }
            CallAction::Release(far) => {
                if let Some(call_id) = self.far_ids.remove(&far) {
                    self.hotline
                        .handle_command(self.now, Command::Unroute { call_id });
                }
                self.did.push(action);
            }
            other => self.did.push(other),
        }
    }

    /// Sends a request from a side, in a client transaction whose answers come back to it.
    fn send(&mut self, from: Who, request: Request) {
        let call_id = headers::call_id(&request.headers)
            .expect("a Call-ID")
            .to_owned();
        let now = self.now;
        let side = self.side(from);
        side.core.handle_command(now, Command::Route { call_id });
        side.core.handle_command(
            now,
            Command::Send {
                peer: Peer::udp(HOTLINE),
                request,
            },
        );
        self.progress();
    }

    fn respond(&mut self, from: Who, tx: crate::sip::transaction::ServerTxId, r: Response) {
        let now = self.now;
        self.side(from)
            .core
            .handle_command(now, Command::Respond { tx, response: r });
        self.progress();
    }

    fn side(&mut self, who: Who) -> &mut Side {
        match who {
            Who::Trunk => &mut self.trunk,
            Who::Agent => &mut self.agent,
        }
    }

    /// The trunk calls 12345, with an SDP offer or (late offer) without.
    fn trunk_invite(&mut self, offer: Option<String>) -> Request {
        self.trunk_invite_with(offer, "")
    }

    /// `trunk_invite` with more header lines (each ending in CRLF).
    fn trunk_invite_with(&mut self, offer: Option<String>, extra: &str) -> Request {
        let body = offer.unwrap_or_default();
        let mut text = format!(
            "INVITE sip:12345@{HOTLINE} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-t1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:13800001111@10.0.0.1>;tag=trunk-tag\r\n\
             To: <sip:12345@{HOTLINE}>\r\nCall-ID: {CALL_ID}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:13800001111@{TRUNK}>\r\n{extra}"
        );
        if !body.is_empty() {
            text.push_str("Content-Type: application/sdp\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let invite = parse_request(&text);
        self.send(Who::Trunk, invite.clone());
        invite
    }

    /// The trunk's ACK for the 2xx `ok`, with `body` (the answer to a late offer); the
    /// trunk's side of the dialog.
    fn trunk_ack(&mut self, invite: &Request, ok: &Response, body: &str) -> Dialog {
        let dialog = trunk_dialog(invite, ok);
        let mut ack = dialog.ack(1, TRUNK);
        if !body.is_empty() {
            ack.headers
                .push(Header::ContentType("application/sdp".into()));
            ack.body = body.as_bytes().to_vec();
        }
        let now = self.now;
        self.trunk.core.handle_command(
            now,
            Command::SendStateless {
                peer: Peer::udp(HOTLINE),
                request: ack,
            },
        );
        self.progress();
        dialog
    }

    /// Rings 2 s, answers, and the trunk ACKs: the call is up.
    fn up(steps: &'static str) -> (Net, Dialog) {
        Net::new(steps, Duration::from_secs(2)).answered()
    }

    /// The trunk calls with an offer; the call rings, is answered and ACKed.
    fn answered(self) -> (Net, Dialog) {
        let mut net = self;
        let invite = net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
        net.wait(Duration::from_secs(2));
        let ok = net
            .trunk
            .responses()
            .into_iter()
            .find(|r| r.status_code.code() == 200)
            .expect("a 200");
        let dialog = net.trunk_ack(&invite, &ok, "");
        (net, dialog)
    }

    /// Plays out the greeting (media id 1).
    fn greeting_done(&mut self) {
        let now = self.now;
        self.call()
            .handle_media(now, LegRef::Caller, SessionEvent::PlayDone(1));
        self.progress();
    }

    /// The ACD offers the call to agent 1001 of queue `labor` at `target`.
    fn offer(&mut self, id: u64, target: Target) {
        self.instruction(Instruction::Offer {
            offer: OfferId(id),
            queue: "labor".into(),
            agent: "1001".into(),
            target,
        });
    }

    fn instruction(&mut self, i: Instruction) {
        let now = self.now;
        self.call().handle_instruction(now, Some(i));
        self.progress();
    }

    fn events(&self) -> Vec<&EventKind> {
        self.did
            .iter()
            .filter_map(|a| match a {
                CallAction::Service(Service::Event(e)) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn acd(&self) -> Vec<&AcdReport> {
        self.did
            .iter()
            .filter_map(|a| match a {
                CallAction::Service(Service::Acd(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn media_starts(&self, leg: LegRef) -> Vec<Negotiated> {
        self.did
            .iter()
            .filter_map(|a| match a {
                CallAction::Media(l, MediaOp::Start(n)) if *l == leg => Some(*n),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Trunk,
    Agent,
}

fn reach(peer: &str) -> Reach {
    Reach {
        local: addr(HOTLINE).ip(),
        peer: addr(peer).ip(),
        networks: Arc::from(Vec::new()),
    }
}

fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The agent's phone answers the INVITE it got: 180, then 200 with its SDP.
fn agent_answers(net: &mut Net) -> (Request, Dialog) {
    agent_answers_with(net, &[])
}

/// `agent_answers`, with more header lines (name, value) in the 200.
fn agent_answers_with(net: &mut Net, extra: &[(&str, &str)]) -> (Request, Dialog) {
    let Some(Event::NewCall(new)) = net.agent.inbox.pop_front() else {
        panic!("the agent's phone got no INVITE");
    };
    let invite = new.invite;
    let mut ringing = build::response(&invite, 180, Some("agent-tag"));
    ringing
        .headers
        .push(Header::Contact(format!("<sip:1001@{AGENT}>").into()));
    net.respond(Who::Agent, new.tx, ringing);
    let mut ok = build::response(&invite, 200, Some("agent-tag"));
    ok.headers
        .push(Header::Contact(format!("<sip:1001@{AGENT}>").into()));
    ok.headers
        .push(Header::ContentType("application/sdp".into()));
    ok.body = sdp("10.0.0.9", 32000, "sendrecv").into_bytes();
    for (name, value) in extra {
        ok.headers
            .push(Header::Other((*name).into(), (*value).into()));
    }
    net.respond(Who::Agent, new.tx, ok);
    let dialog = Dialog::uas(
        &invite,
        "agent-tag",
        Peer::udp(HOTLINE),
        format!("<sip:1001@{AGENT}>"),
    )
    .expect("the agent's dialog");
    (invite, dialog)
}

/// The ACD offers the call to agent 1001's phone, which answers and is connected; what it
/// heard so far is cleared. The agent's side of the dialog.
fn agent_connected(net: &mut Net) -> Dialog {
    net.offer(1, Target::Registered(format!("sip:1001@{AGENT}")));
    let (_, agent) = agent_answers(net);
    net.instruction(Instruction::Connected {
        offer: OfferId(1),
        agent: "1001".into(),
    });
    net.agent.inbox.clear();
    agent
}

#[test]
fn a_trunk_call_is_answered_queued_offered_bridged_and_ended_by_the_agent() {
    let mut net = Net::new(QUEUE, Duration::from_secs(2));
    let invite = net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    assert_eq!(codes(&net.trunk.responses()), [100, 180], "ringing first");
    net.wait(Duration::from_millis(1999));
    assert!(net.trunk.responses().is_empty(), "rings its full time");
    net.wait(Duration::from_millis(1));
    let ok = net.trunk.responses().pop().expect("the answer");
    assert_eq!(ok.status_code.code(), 200);
    let answer = body(&ok);
    assert!(answer.contains("m=audio 40000 RTP/AVP 0 101"), "{answer}");
    assert!(answer.contains("c=IN IP4 10.0.0.100"), "{answer}");
    // The offer was good: media started at once, towards the trunk's port.
    let starts = net.media_starts(LegRef::Caller);
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].remote, addr("10.0.0.1:30000"));
    assert!(net.events().is_empty(), "not offered before the ACK");

    let trunk_dialog = net.trunk_ack(&invite, &ok, "");
    assert!(matches!(
        net.events().as_slice(),
        [EventKind::CallOffered { caller, called, .. }] if caller == "13800001111" && called == "12345"
    ));
    net.greeting_done();
    let Some(CallAction::Service(Service::Enqueue(request))) = net
        .did
        .iter()
        .find(|a| matches!(a, CallAction::Service(Service::Enqueue(_))))
    else {
        panic!("not queued: {:?}", net.did);
    };
    assert_eq!(request.queue, "labor");

    net.offer(1, Target::Registered(format!("sip:1001@{AGENT}")));
    let (agent_invite, agent_dialog) = agent_answers(&mut net);
    let queue_header = agent_invite.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name == "X-Hotline-Queue" => Some(value.clone()),
        _ => None,
    });
    assert_eq!(queue_header.as_deref(), Some("labor"));
    assert!(
        net.agent.inbox.iter().any(|e| matches!(
            e,
            Event::Call {
                event: CallEvent::Ack { .. },
                ..
            }
        )),
        "the hotline ACKs the agent's 200"
    );
    assert_eq!(
        net.acd(),
        [&AcdReport::OfferOutcome(OfferId(1), OfferOutcome::Answered)]
    );
    assert_eq!(
        net.media_starts(LegRef::Far(Far::Offer))[0].remote,
        addr("10.0.0.9:32000")
    );
    net.instruction(Instruction::Connected {
        offer: OfferId(1),
        agent: "1001".into(),
    });
    assert!(
        net.did.iter().any(|a| matches!(
            a,
            CallAction::Media(LegRef::Caller, MediaOp::Bridge(Some(Far::Offer)))
        )),
        "bridged"
    );

    // The agent hangs up: the hotline answers it and sends BYE to the trunk.
    let mut agent_dialog = agent_dialog;
    net.send(Who::Agent, agent_dialog.request(Method::Bye, AGENT));
    assert_eq!(codes_of(&mut net.agent), [200]);
    let byes = net.trunk.requests();
    let [(tx, bye)] = byes.as_slice() else {
        panic!("one BYE to the trunk: {byes:?}");
    };
    assert_eq!(bye.method, Method::Bye);
    assert!(trunk_dialog.matches(bye), "in the trunk's dialog: {bye}");
    assert!(net.ended.is_none(), "the BYE's answer is awaited");
    net.respond(Who::Trunk, *tx, build::response(bye, 200, None));
    assert_eq!(net.ended.as_deref(), Some("agent_hung_up"));
    assert_eq!(net.acd()[1..], [&AcdReport::CallEnded(HungUpBy::Agent)]);
    assert!(
        net.did
            .iter()
            .any(|a| matches!(a, CallAction::Release(Far::Offer)))
    );

    // Nothing routes the call any more: a stray BYE gets 481 from the endpoint.
    net.send(Who::Agent, agent_dialog.request(Method::Bye, AGENT));
    assert_eq!(codes(&net.agent.responses()), [481]);
}

#[test]
fn a_cancel_while_ringing_ends_the_invite_with_487_and_nothing_is_offered() {
    let mut net = Net::new(QUEUE, Duration::from_secs(5));
    let invite = net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    net.wait(Duration::from_secs(1));
    let now = net.now;
    net.trunk.core.handle_command(
        now,
        Command::Send {
            peer: Peer::udp(HOTLINE),
            request: cancel_for(&invite),
        },
    );
    net.progress();
    let responses = net.trunk.responses();
    let to = |m: Method| -> Vec<u16> {
        responses
            .iter()
            .filter(|r| headers::cseq(&r.headers).is_some_and(|(_, method)| method == m))
            .map(|r| r.status_code.code())
            .collect()
    };
    assert_eq!(to(Method::Invite), [100, 180, 487]);
    assert_eq!(to(Method::Cancel), [200]);
    assert_eq!(net.ended.as_deref(), Some("not_connected"));
    assert!(net.events().is_empty());
    assert!(
        net.did
            .iter()
            .all(|a| !matches!(a, CallAction::Service(Service::Event(_))))
    );
    net.wait(Duration::from_secs(10));
    assert!(
        codes_of(&mut net.trunk).is_empty(),
        "the call never answers after the CANCEL"
    );
}

fn codes_of(side: &mut Side) -> Vec<u16> {
    codes(&side.responses())
}

#[test]
fn a_200_never_acknowledged_is_retransmitted_then_ended_with_a_bye() {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    net.wait(Duration::from_secs(40));
    let oks = codes_of(&mut net.trunk)
        .into_iter()
        .filter(|c| *c == 200)
        .count();
    assert!(oks >= 5, "the 200 goes again until the ACK timeout: {oks}");
    let byes = net.trunk.requests();
    assert!(
        byes.iter().any(|(_, r)| r.method == Method::Bye),
        "{byes:?}"
    );
    assert_eq!(net.ended.as_deref(), Some("not_connected"));
    assert!(net.events().is_empty(), "never offered: it never got up");
}

#[test]
fn a_late_offer_is_answered_in_the_ack() {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    let invite = net.trunk_invite(None);
    let ok = net.trunk.responses().pop().expect("the 200");
    assert!(body(&ok).contains("m=audio 40000"), "our offer in the 200");
    assert!(net.media_starts(LegRef::Caller).is_empty());
    net.trunk_ack(&invite, &ok, &sdp("10.0.0.1", 30500, "sendrecv"));
    let starts = net.media_starts(LegRef::Caller);
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].remote, addr("10.0.0.1:30500"));
    assert_eq!(net.events().len(), 1, "offered once up");
}

#[test]
fn an_srtp_call_stays_srtp_and_our_own_offers_carry_our_key() {
    use base64::Engine as _;
    let b64 = |key: &[u8]| base64::engine::general_purpose::STANDARD.encode(key);
    let mut net = Net::new(QUEUE, Duration::ZERO);
    let offer = sdp("10.0.0.1", 30000, "sendrecv").replace("RTP/AVP", "RTP/SAVP")
        + &format!(
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            b64(&[5; 30])
        );
    let invite = net.trunk_invite(Some(offer));
    let ok = net.trunk.responses().pop().expect("the 200");
    let answer = body(&ok);
    let ours = format!(
        "AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        b64(&net.security.master)
    );
    assert!(answer.contains("m=audio 40000 RTP/SAVP"), "{answer}");
    assert!(answer.contains(&format!("a=crypto:7 {ours}")), "{answer}");
    let mut dialog = net.trunk_ack(&invite, &ok, "");
    let starts = net.media_starts(LegRef::Caller);
    assert_eq!(
        starts[0].srtp.map(|k| (k.ours, k.theirs)),
        Some((net.security.master, [5; 30]))
    );
    // An offerless re-INVITE gets our offer: SRTP again, with the same key.
    net.send(Who::Trunk, dialog.request(Method::Invite, TRUNK));
    let ok = net.trunk.responses().pop().expect("an offer");
    assert_eq!(ok.status_code.code(), 200);
    let offer = body(&ok);
    assert!(offer.contains("RTP/SAVP"), "{offer}");
    assert!(offer.contains(&format!("a=crypto:1 {ours}")), "{offer}");
    // A plain offer now would turn the encryption off: refused.
    let mut plain = dialog.request(Method::Invite, TRUNK);
    plain
        .headers
        .push(Header::ContentType("application/sdp".into()));
    plain.body = sdp("10.0.0.1", 30000, "sendrecv").into_bytes();
    net.send(Who::Trunk, plain);
    let refused = net.trunk.responses().pop().expect("an answer");
    assert_eq!(refused.status_code.code(), 488);
    assert_eq!(net.media_starts(LegRef::Caller).len(), 1);
}

/// `who` holds the call by re-INVITE (sendonly, from its media address) on `dialog`: the
/// answer (200, recvonly)'s SDP.
fn holds(net: &mut Net, who: Who, dialog: &mut Dialog) -> String {
    let (at, media, port) = match who {
        Who::Trunk => (TRUNK, "10.0.0.1", 30000),
        Who::Agent => (AGENT, "10.0.0.9", 32000),
    };
    let mut hold = dialog.request(Method::Invite, at);
    hold.headers
        .push(Header::ContentType("application/sdp".into()));
    hold.body = sdp(media, port, "sendonly").into_bytes();
    net.send(who, hold);
    let ok = net.side(who).responses().pop().expect("an answer");
    assert_eq!(ok.status_code.code(), 200);
    let answer = body(&ok);
    assert!(answer.contains("a=recvonly"), "{answer}");
    answer
}

#[test]
fn hold_by_re_invite_is_answered_recvonly_with_the_next_sdp_version() {
    let (mut net, mut dialog) = Net::up(QUEUE);
    let answer = holds(&mut net, Who::Trunk, &mut dialog);
    assert!(answer.contains("o=hotline 7 2 IN IP4"), "{answer}");
    assert_eq!(net.media_starts(LegRef::Caller).len(), 2);
    // An INFO key reaches the flow as a key.
    let mut info = dialog.request(Method::Info, TRUNK);
    info.headers
        .push(Header::ContentType("application/dtmf-relay".into()));
    info.body = b"Signal=5\r\nDuration=160\r\n".to_vec();
    net.send(Who::Trunk, info);
    assert_eq!(codes_of(&mut net.trunk), [200]);
    net.greeting_done();
    assert_eq!(net.call().keys(), "5");
}

#[test]
fn an_agent_who_holds_and_resumes_is_answered_so_and_its_media_follows() {
    let (mut net, _trunk) = Net::up(QUEUE);
    net.greeting_done();
    let mut agent = agent_connected(&mut net);
    let directions = |net: &Net| -> Vec<Direction> {
        net.media_starts(LegRef::Far(Far::Offer))
            .iter()
            .map(|n| n.direction)
            .collect()
    };
    // Hold: the phone stops sending, and our side stops expecting its RTP.
    let answer = holds(&mut net, Who::Agent, &mut agent);
    assert!(
        answer.contains("o=hotline 9 2 IN IP4"),
        "the session changed: {answer}"
    );
    assert_eq!(directions(&net).last(), Some(&Direction::RecvOnly));
    // Resume without an offer: ours offers both ways again, at the next version.
    net.send(Who::Agent, agent.request(Method::Invite, AGENT));
    let ok = net.agent.responses().pop().expect("an answer");
    let offer = body(&ok);
    assert!(
        offer.contains("a=sendrecv") && offer.contains("o=hotline 9 3 IN IP4"),
        "{offer}"
    );
    assert!(net.ended.is_none());
}

#[test]
fn when_the_callers_media_stops_the_call_ends_with_a_bye_even_unanswered() {
    let (mut net, _dialog) = Net::up(QUEUE);
    let now = net.now;
    net.call()
        .handle_media(now, LegRef::Caller, SessionEvent::Timeout);
    net.progress();
    let byes = net.trunk.requests();
    assert_eq!(byes.len(), 1);
    assert!(net.ended.is_none());
    // The trunk never answers the BYE: the call is over when its transaction gives up.
    net.wait(Duration::from_secs(33));
    assert_eq!(net.ended.as_deref(), Some("media_timeout"));
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "media_timeout"
    )));
}

#[test]
fn a_caller_who_hangs_up_while_the_agent_rings_cancels_the_agents_invite() {
    let (mut net, mut dialog) = Net::up(QUEUE);
    net.greeting_done();
    net.offer(3, Target::Registered(format!("sip:1001@{AGENT}")));
    let Some(Event::NewCall(new)) = net.agent.inbox.pop_front() else {
        panic!("the agent's phone got no INVITE");
    };
    net.respond(
        Who::Agent,
        new.tx,
        build::response(&new.invite, 180, Some("agent-tag")),
    );
    net.send(Who::Trunk, dialog.request(Method::Bye, TRUNK));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    assert!(
        net.agent.inbox.iter().any(|e| matches!(
            e,
            Event::Call {
                event: CallEvent::Cancelled { .. },
                ..
            }
        )),
        "{:?}",
        net.agent.inbox
    );
    assert_eq!(net.acd(), [&AcdReport::CallerGone(HungUpBy::Caller)]);
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
}

/// The value of a header, by name (typed or not).
fn header(r: &Response, name: &str) -> Option<String> {
    r.headers.iter().find_map(|h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A reliable provisional response's RSeq (RFC 3262: it says `Require: 100rel`).
fn reliable_rseq(r: &Response) -> u32 {
    assert_eq!(header(r, "Require").as_deref(), Some("100rel"), "{r}");
    header(r, "RSeq")
        .and_then(|v| v.parse().ok())
        .expect("an RSeq")
}

/// The trunk's side of the dialog (early or confirmed) our response `r` made.
fn trunk_dialog(invite: &Request, r: &Response) -> Dialog {
    Dialog::uac(
        invite,
        r,
        Peer::udp(HOTLINE),
        format!("<sip:13800001111@{TRUNK}>"),
    )
    .expect("a dialog from our response")
}

/// The trunk's PRACK for the reliable provisional response `rseq` to its INVITE.
fn prack(dialog: &mut Dialog, rseq: u32) -> Request {
    let mut p = dialog.request(Method::PRack, TRUNK);
    p.headers
        .push(Header::Other("RAck".into(), format!("{rseq} 1 INVITE")));
    p
}

#[test]
fn a_caller_requiring_100rel_gets_a_reliable_180_resent_until_its_prack() {
    let mut net = Net::new(QUEUE, Duration::from_secs(5));
    let invite = net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Require: 100rel\r\nSupported: 100rel, timer\r\n",
    );
    let first = net.trunk.responses();
    assert_eq!(codes(&first), [100, 180]);
    let ringing = &first[1];
    let rseq = reliable_rseq(ringing);
    // Resent at T1, then 2 x T1, with the same RSeq, until the PRACK.
    net.wait(Duration::from_millis(500));
    let again = net.trunk.responses();
    assert_eq!(codes(&again), [180]);
    assert_eq!(header(&again[0], "RSeq"), Some(rseq.to_string()));
    net.wait(Duration::from_millis(999));
    assert!(net.trunk.responses().is_empty(), "the next goes at 1.5 s");
    net.wait(Duration::from_millis(1));
    assert_eq!(codes_of(&mut net.trunk), [180]);

    let mut early = trunk_dialog(&invite, ringing);
    net.send(Who::Trunk, prack(&mut early, rseq + 1));
    assert_eq!(
        codes_of(&mut net.trunk),
        [481],
        "a PRACK for no 180 of ours"
    );
    net.send(Who::Trunk, prack(&mut early, rseq));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    net.wait(Duration::from_millis(3499));
    assert!(
        net.trunk.responses().is_empty(),
        "acknowledged: not resent, and the ringing time is not over"
    );
    net.wait(Duration::from_millis(1));
    let ok = net.trunk.responses().pop().expect("the 200");
    assert_eq!(ok.status_code.code(), 200);
    assert!(headers::lists_tag(
        &ok.headers,
        headers::pick_supported,
        "100rel"
    ));
    assert!(headers::lists_tag(
        &ok.headers,
        headers::pick_supported,
        "timer"
    ));
    assert!(
        header(&ok, "Allow").is_some_and(|a| a.contains("PRACK") && a.contains("UPDATE")),
        "{ok}"
    );
}

/// A plan whose greeting is early media.
fn early(steps: &'static str) -> Net {
    let mut net = Net::new(steps, Duration::from_secs(2));
    net.greeting = "    early: true\n";
    net
}

/// The SDP's origin line.
fn origin(r: &Response) -> String {
    body(r)
        .lines()
        .find(|l| l.starts_with("o="))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_early_announcement_is_heard_in_183_and_the_call_refused_with_480_never_answered() {
    let mut net = early("  next:\n    hangup: closed\n");
    net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [100, 183], "no 180, no ringing time");
    assert!(body(&r[1]).contains("m=audio 40000 RTP/AVP 0"), "{}", r[1]);
    assert_eq!(header(&r[1], "RSeq"), None, "the caller knows no 100rel");
    assert!(
        net.did.iter().any(|a| matches!(
            a,
            CallAction::Media(LegRef::Caller, MediaOp::Play { id: 1, .. })
        )),
        "the greeting plays at once: {:?}",
        net.did
    );
    assert!(
        net.events()
            .iter()
            .any(|e| matches!(e, EventKind::CallOffered { .. })),
        "the call counts from its INVITE"
    );
    net.wait(Duration::from_secs(10));
    assert!(net.trunk.responses().is_empty(), "no answer while it plays");
    net.greeting_done();
    assert_eq!(codes_of(&mut net.trunk), [480]);
    assert!(net.trunk.requests().is_empty(), "no BYE: never answered");
    assert_eq!(net.ended.as_deref(), Some("closed"));
}

#[test]
fn after_early_media_a_step_that_needs_the_caller_answers_once_the_183_is_pracked() {
    let mut net = early(QUEUE);
    let invite = net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Supported: 100rel\r\n",
    );
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [100, 183]);
    let progress = &r[1];
    // Reliable: the 183 carries our answer.
    let rseq = reliable_rseq(progress);
    net.greeting_done();
    assert!(
        net.trunk.responses().is_empty(),
        "RFC 3262 3: no 200 before the PRACK of the 183 with SDP"
    );
    assert!(
        !net.did
            .iter()
            .any(|a| matches!(a, CallAction::Service(Service::Enqueue(_)))),
        "the queue waits for the caller to be connected"
    );
    net.wait(Duration::from_millis(500));
    assert_eq!(codes_of(&mut net.trunk), [183], "resent until its PRACK");

    let mut dialog = trunk_dialog(&invite, progress);
    net.send(Who::Trunk, prack(&mut dialog, rseq));
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [200, 200], "the PRACK's, then the INVITE's");
    let ok = r
        .iter()
        .find(|r| headers::cseq(&r.headers).is_some_and(|(_, m)| m == Method::Invite))
        .expect("the INVITE's 200");
    assert_eq!(
        origin(ok),
        origin(progress),
        "the same answer, the same version"
    );
    net.trunk_ack(&invite, ok, "");
    assert!(
        net.did
            .iter()
            .any(|a| matches!(a, CallAction::Service(Service::Enqueue(_)))),
        "connected: the flow goes on"
    );
    assert_eq!(net.ended, None);
}

#[test]
fn early_media_for_a_late_offer_rings_answers_with_our_offer_and_plays_once_up() {
    let mut net = early("  next:\n    hangup: closed\n");
    let invite = net.trunk_invite(None);
    assert_eq!(
        codes_of(&mut net.trunk),
        [100, 180],
        "no answer to give in a 183: the call rings as any other"
    );
    let plays = |net: &Net| {
        net.did
            .iter()
            .filter(|a| matches!(a, CallAction::Media(LegRef::Caller, MediaOp::Play { .. })))
            .count()
    };
    net.wait(Duration::from_secs(2));
    let ok = net
        .trunk
        .responses()
        .pop()
        .expect("the 200 after the ringing time");
    assert_eq!(ok.status_code.code(), 200);
    assert!(body(&ok).contains("m=audio 40000"), "our offer");
    assert_eq!(plays(&net), 0, "no media before the answer's ACK");
    net.trunk_ack(&invite, &ok, &sdp("10.0.0.1", 30000, "sendrecv"));
    assert_eq!(plays(&net), 1, "up: the greeting plays");
    net.greeting_done();
    let reqs = net.trunk.requests();
    assert!(
        matches!(reqs.as_slice(), [(_, bye)] if bye.method == Method::Bye),
        "answered: BYE {reqs:?}"
    );
}

#[test]
fn a_caller_who_cancels_during_early_media_counts_as_hung_up_and_is_never_queued() {
    let mut net = early(QUEUE);
    let invite = net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Supported: 100rel\r\n",
    );
    assert_eq!(codes_of(&mut net.trunk), [100, 183]);
    // The queue step waits for the answer, which waits for the 183's PRACK.
    net.greeting_done();
    let cancel = cancel_for(&invite);
    net.send(Who::Trunk, cancel);
    assert_eq!(codes_of(&mut net.trunk), [200, 487]);
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
    assert!(
        !net.did
            .iter()
            .any(|a| matches!(a, CallAction::Service(Service::Enqueue(_)))),
        "never connected, never queued: {:?}",
        net.did
    );
}

#[test]
fn a_caller_that_only_supports_100rel_gets_a_plain_180() {
    let mut net = Net::new(QUEUE, Duration::from_secs(2));
    net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Supported: 100rel\r\n",
    );
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [100, 180]);
    assert_eq!(header(&r[1], "RSeq"), None);
    net.wait(Duration::from_secs(1));
    assert!(net.trunk.responses().is_empty(), "nothing resent");
}

#[test]
fn a_session_interval_below_min_se_is_refused_with_422() {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Supported: timer\r\nSession-Expires: 60\r\n",
    );
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [100, 422]);
    assert_eq!(header(&r[1], "Min-SE").as_deref(), Some("90"));
    assert_eq!(net.ended.as_deref(), Some("refused"));
}

/// The trunk asks for a 90 s session it refreshes itself.
fn trunk_refreshed_call() -> (Net, Dialog) {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    let invite = net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\nMin-SE: 90\r\n",
    );
    let ok = net.trunk.responses().pop().expect("the 200");
    assert_eq!(ok.status_code.code(), 200);
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&ok, "Require").as_deref(), Some("timer"));
    let dialog = net.trunk_ack(&invite, &ok, "");
    (net, dialog)
}

#[test]
fn a_trunk_that_refreshes_by_update_keeps_the_call_and_one_that_stops_is_hung_up() {
    let (mut net, mut dialog) = trunk_refreshed_call();
    net.wait(Duration::from_secs(45));
    let mut update = dialog.request(Method::Update, TRUNK);
    update.headers.push(Header::Other(
        "Session-Expires".into(),
        "90;refresher=uac".into(),
    ));
    update.headers.push(Header::Supported("timer".into()));
    net.send(Who::Trunk, update);
    let r = net.trunk.responses();
    assert_eq!(codes(&r), [200], "UPDATE is a method we take");
    assert_eq!(
        header(&r[0], "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert!(r[0].body.is_empty(), "no offer, no answer");
    // 90 s less a third after the refresh, and no further refresh: BYE.
    net.wait(Duration::from_secs(59));
    assert!(net.trunk.requests().is_empty(), "{:?}", net.ended);
    net.wait(Duration::from_secs(1));
    let byes = net.trunk.requests();
    let [(tx, bye)] = byes.as_slice() else {
        panic!("one BYE: {byes:?}");
    };
    assert_eq!(bye.method, Method::Bye);
    net.respond(Who::Trunk, *tx, build::response(bye, 200, None));
    assert_eq!(net.ended.as_deref(), Some("session_expired"));
}

#[test]
fn a_refresh_by_re_invite_with_the_same_offer_keeps_the_sdp_version() {
    let (mut net, mut dialog) = trunk_refreshed_call();
    let mut first_version = None;
    for _ in 0..2 {
        net.wait(Duration::from_secs(40));
        let mut refresh = dialog.request(Method::Invite, TRUNK);
        refresh.headers.push(Header::Other(
            "Session-Expires".into(),
            "90;refresher=uac".into(),
        ));
        refresh
            .headers
            .push(Header::ContentType("application/sdp".into()));
        refresh.body = sdp("10.0.0.1", 30000, "sendrecv").into_bytes();
        net.send(Who::Trunk, refresh);
        let ok = net.trunk.responses().pop().expect("an answer");
        assert_eq!(ok.status_code.code(), 200);
        let answer = body(&ok);
        let origin = answer
            .lines()
            .find(|l| l.starts_with("o="))
            .expect("an origin")
            .to_owned();
        assert_eq!(*first_version.get_or_insert(origin.clone()), origin);
    }
    assert!(
        first_version.is_some_and(|o| o.starts_with("o=hotline 7 1 ")),
        "the session never changed"
    );
    assert!(net.ended.is_none(), "refreshed in time");
}

/// A trunk that knows no session timers (and whether it takes UPDATE).
fn we_refresh(allow_update: bool) -> (Net, Dialog) {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    net.answering.timers.expires = 120;
    let allow = if allow_update {
        "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n"
    } else {
        "Allow: INVITE, ACK, BYE, CANCEL\r\n"
    };
    let invite = net.trunk_invite_with(Some(sdp("10.0.0.1", 30000, "sendrecv")), allow);
    let ok = net.trunk.responses().pop().expect("the 200");
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("120;refresher=uas"),
        "we refresh"
    );
    assert_eq!(header(&ok, "Require"), None, "the trunk knows no timers");
    let dialog = net.trunk_ack(&invite, &ok, "");
    (net, dialog)
}

#[test]
fn the_engine_refreshes_by_update_when_the_trunk_takes_it() {
    let (mut net, _dialog) = we_refresh(true);
    net.wait(Duration::from_secs(59));
    assert!(net.trunk.requests().is_empty());
    net.wait(Duration::from_secs(1));
    let reqs = net.trunk.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("one refresh: {reqs:?}");
    };
    assert_eq!(update.method, Method::Update);
    assert!(update.body.is_empty());
    let se = headers::other_value(&update.headers, "Session-Expires");
    assert_eq!(se, Some("120;refresher=uac"));
    net.respond(Who::Trunk, *tx, build::response(update, 200, None));
    // Answered: the next refresh is another half interval on.
    net.wait(Duration::from_secs(59));
    assert!(net.trunk.requests().is_empty());
    net.wait(Duration::from_secs(1));
    let reqs = net.trunk.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("a second refresh: {reqs:?}");
    };
    // The trunk lost the dialog: the engine hangs up (RFC 4028 10).
    net.respond(Who::Trunk, *tx, build::response(update, 481, None));
    let byes = net.trunk.requests();
    assert!(
        matches!(byes.as_slice(), [(_, bye)] if bye.method == Method::Bye),
        "{byes:?}"
    );
    net.wait(Duration::from_secs(40));
    assert_eq!(net.ended.as_deref(), Some("session_expired"));
}

#[test]
fn the_engine_refreshes_by_re_invite_offering_the_same_sdp_and_acks_the_answer() {
    let (mut net, _dialog) = we_refresh(false);
    net.wait(Duration::from_secs(60));
    let reqs = net.trunk.requests();
    let [(tx, reinvite)] = reqs.as_slice() else {
        panic!("one refresh: {reqs:?}");
    };
    assert_eq!(reinvite.method, Method::Invite);
    let offer = String::from_utf8_lossy(&reinvite.body).into_owned();
    assert!(
        offer.contains("o=hotline 7 1 "),
        "unchanged session: {offer}"
    );
    let mut ok = build::response(reinvite, 200, Some("trunk-tag"));
    ok.headers
        .push(Header::Contact(format!("<sip:13800001111@{TRUNK}>").into()));
    ok.headers
        .push(Header::ContentType("application/sdp".into()));
    ok.body = sdp("10.0.0.1", 30000, "sendrecv").into_bytes();
    net.respond(Who::Trunk, *tx, ok);
    assert!(
        net.trunk.inbox.iter().any(|e| matches!(
            e,
            Event::Call {
                event: CallEvent::Ack { .. },
                ..
            }
        )),
        "the 200 to our re-INVITE is ACKed: {:?}",
        net.trunk.inbox
    );
    assert!(net.ended.is_none());
}

#[test]
fn a_withheld_caller_is_offered_by_the_asserted_number_and_agents_are_told() {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    let invite = net.trunk_invite_with(
        Some(sdp("10.0.0.1", 30000, "sendrecv")),
        "P-Asserted-Identity: <sip:+8613900002222@10.0.0.1>\r\nPrivacy: id\r\n\
         Diversion: <sip:01088888888@10.0.0.1>;reason=user-busy\r\n",
    );
    let ok = net.trunk.responses().pop().expect("the 200");
    net.trunk_ack(&invite, &ok, "");
    assert!(matches!(
        net.events().as_slice(),
        [EventKind::CallOffered { caller, .. }] if caller == "+8613900002222"
    ));
    net.greeting_done();
    net.offer(1, Target::Registered(format!("sip:1001@{AGENT}")));
    let Some(Event::NewCall(new)) = net.agent.inbox.pop_front() else {
        panic!("the agent's phone got no INVITE");
    };
    let h = &new.invite.headers;
    assert!(
        headers::from(h).is_some_and(|f| f.contains("<sip:anonymous@anonymous.invalid>")),
        "withheld in From: {h:?}"
    );
    assert_eq!(
        headers::other_value(h, "P-Asserted-Identity"),
        Some("<sip:+8613900002222@10.0.0.100:5060>")
    );
    assert_eq!(headers::other_value(h, "Privacy"), Some("id"));
    assert_eq!(headers::other_value(h, "X-Hotline-Privacy"), Some("id"));
    assert_eq!(
        headers::other_value(h, "X-Hotline-Original-Called"),
        Some("01088888888")
    );
    assert_eq!(
        headers::other_value(h, "X-Hotline-Redirect-Reason"),
        Some("user-busy")
    );
}

/// `request` carries a right answer to the PBX's challenge for `method`, with
/// `pbx_credentials`: in Proxy-Authorization after a 407 (`proxy`), else Authorization.
fn assert_answers_pbx(request: &Request, method: &str, proxy: bool) {
    let answer = request
        .headers
        .iter()
        .find_map(|h| match h {
            Header::Authorization(v) if !proxy => Some(v.to_string()),
            Header::ProxyAuthorization(v) if proxy => Some(v.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no credentials in {request}"));
    let value = answer
        .split_once(':')
        .map_or(answer.as_str(), |(_, v)| v.trim());
    let c = digest::parse_authorization(value).expect("it reads");
    assert_eq!(c.username, "hotline");
    assert_eq!(
        c.response,
        digest::expected_response(&c, method, "pbx-secret")
    );
}

/// What the PBX's challenges are answered with, password `pbx-secret`.
fn pbx_credentials() -> ClientCredentials {
    ClientCredentials {
        username: "hotline".into(),
        password: crate::secret::Secret::new("pbx-secret"),
        realm: String::new(),
    }
}

#[test]
fn a_pbx_that_challenges_the_agents_invite_gets_it_again_with_our_credentials() {
    let (mut net, _dialog) = Net::up(QUEUE);
    net.credentials = Some(pbx_credentials());
    net.greeting_done();
    net.offer(1, Target::Trunk(format!("sip:1001@{AGENT}")));
    let Some(Event::NewCall(first)) = net.agent.inbox.pop_front() else {
        panic!("the PBX got no INVITE");
    };
    let mut challenge = build::response(&first.invite, 407, Some("pbx-tag"));
    challenge.headers.push(Header::ProxyAuthenticate(
        digest::challenge("asterisk", "n1", Algorithm::Md5, false).into(),
    ));
    net.respond(Who::Agent, first.tx, challenge);
    // The transaction ACKed the 407; the INVITE comes again, answered (the PBX's side
    // routes its Call-ID already, so it arrives as the call's request).
    let second = net.agent.requests();
    let [(_, second)] = second.as_slice() else {
        panic!("one more INVITE: {second:?}");
    };
    assert_eq!(second.method, Method::Invite);
    let h = &second.headers;
    assert_eq!(headers::cseq(h).map(|c| c.0), Some(2));
    assert_eq!(headers::call_id(h), headers::call_id(&first.invite.headers));
    assert_answers_pbx(second, "INVITE", true);
    assert!(
        net.acd().is_empty(),
        "the offer is still ringing, not failed"
    );
}

/// Greets, then transfers the caller back through the trunk the call came in on.
const THROUGH_TRUNK: &str = "  next:\n    transfer: trunk\n    number: \"01012345678\"\n    \
                             failed: failed\n  failed:\n    hangup: transfer_failed\n";

#[test]
fn a_transfer_back_through_the_trunk_of_an_srtp_call_offers_srtp() {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 30]);
    let srtp_offer = sdp("10.0.0.1", 30000, "sendrecv").replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n");
    for (offer, encrypted) in [
        (srtp_offer, true),
        (sdp("10.0.0.1", 30000, "sendrecv"), false),
    ] {
        let mut net = Net::new(THROUGH_TRUNK, Duration::ZERO);
        let invite = net.trunk_invite(Some(offer));
        let ok = net.trunk.responses().pop().expect("the 200");
        net.trunk_ack(&invite, &ok, "");
        net.greeting_done();
        let Some(Event::NewCall(new)) = net
            .trunk
            .inbox
            .iter()
            .position(|e| matches!(e, Event::NewCall(_)))
            .and_then(|i| net.trunk.inbox.remove(i))
        else {
            panic!("no INVITE reached the trunk");
        };
        let offer = String::from_utf8_lossy(&new.invite.body).into_owned();
        assert_eq!(
            offer.contains("m=audio 40002 RTP/SAVP"),
            encrypted,
            "{offer}"
        );
        assert_eq!(
            offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            encrypted,
            "{offer}"
        );
    }
}

/// Greets, then hands the call back to the trunk by REFER.
const REFER: &str = "  next:\n    transfer: sip:01012345678@10.0.0.1\n    method: refer\n    \
                     failed: refer_failed\n  refer_failed:\n    hangup: refer_failed\n";

/// The hotline's REFER to the trunk, after the greeting.
fn referred() -> (Net, Dialog, crate::sip::transaction::ServerTxId, Request) {
    let (mut net, dialog) = Net::up(REFER);
    net.greeting_done();
    let reqs = net.trunk.requests();
    let [(tx, refer)] = reqs.as_slice() else {
        panic!("one REFER: {reqs:?}");
    };
    assert_eq!(refer.method, Method::Refer);
    assert!(dialog.matches(refer), "in the call's dialog");
    assert_eq!(
        headers::other_value(&refer.headers, "Refer-To"),
        Some("<sip:01012345678@10.0.0.1>")
    );
    assert!(headers::other_value(&refer.headers, "Referred-By").is_some());
    (net, dialog, *tx, refer.clone())
}

fn notify(dialog: &mut Dialog, frag: &str) -> Request {
    let mut n = dialog.request(Method::Notify, TRUNK);
    n.headers.push(Header::Event("refer".into()));
    n.headers.push(Header::Other(
        "Subscription-State".into(),
        "active;expires=60".into(),
    ));
    n.headers
        .push(Header::ContentType("message/sipfrag;version=2.0".into()));
    n.body = frag.as_bytes().to_vec();
    n
}

#[test]
fn a_transfer_by_refer_leaves_the_call_once_the_trunk_connected_it() {
    let (mut net, mut dialog, tx, refer) = referred();
    net.respond(Who::Trunk, tx, build::response(&refer, 202, None));
    net.send(Who::Trunk, notify(&mut dialog, "SIP/2.0 100 Trying\r\n"));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    assert!(net.trunk.requests().is_empty(), "still in the call");
    net.send(Who::Trunk, notify(&mut dialog, "SIP/2.0 200 OK\r\n"));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    let byes = net.trunk.requests();
    let [(tx, bye)] = byes.as_slice() else {
        panic!("our BYE: {byes:?}");
    };
    assert_eq!(bye.method, Method::Bye);
    net.respond(Who::Trunk, *tx, build::response(bye, 200, None));
    assert_eq!(net.ended.as_deref(), Some("transferred"));
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "transferred"
    )));
}

#[test]
fn a_trunk_that_accepted_our_refer_and_hangs_up_before_its_final_notify_took_the_call() {
    let (mut net, mut dialog, tx, refer) = referred();
    net.respond(Who::Trunk, tx, build::response(&refer, 202, None));
    net.send(Who::Trunk, notify(&mut dialog, "SIP/2.0 100 Trying\r\n"));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    net.send(Who::Trunk, dialog.request(Method::Bye, TRUNK));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    assert!(net.trunk.requests().is_empty(), "no BYE of ours");
    assert_eq!(net.ended.as_deref(), Some("transferred"));
    let finished: Vec<_> = net
        .events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::CallFinished { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["transferred"]);

    // Before the trunk accepted the REFER, its BYE is the caller hanging up.
    let (mut net, mut dialog, _tx, _refer) = referred();
    net.send(Who::Trunk, dialog.request(Method::Bye, TRUNK));
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
}

#[test]
fn a_refused_refer_or_a_failed_notify_takes_the_failed_step() {
    let (mut net, _dialog, tx, refer) = referred();
    net.respond(Who::Trunk, tx, build::response(&refer, 403, None));
    let byes = net.trunk.requests();
    assert!(
        matches!(byes.as_slice(), [(_, bye)] if bye.method == Method::Bye),
        "hung up by the failed step: {byes:?}"
    );
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "refer_failed"
    )));

    let (mut net, mut dialog, tx, refer) = referred();
    net.respond(Who::Trunk, tx, build::response(&refer, 202, None));
    net.send(Who::Trunk, notify(&mut dialog, "SIP/2.0 486 Busy Here\r\n"));
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "refer_failed"
    )));
}

/// `who` transfers the call on `dialog` to `user` at AGENT, attended (after consulting it
/// in the dialog `abc@pbx` there): the REFER is taken, and the INVITE the target gets, to
/// the URI without its header part, replaces that dialog (RFC 3891). The INVITE, unanswered.
fn attended_refer(
    net: &mut Net,
    who: Who,
    dialog: &mut Dialog,
    user: &str,
) -> crate::endpoint::core::NewCall {
    let replaces = "abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2";
    send_refer(
        net,
        who,
        dialog,
        &format!("<sip:{user}@{AGENT}?Replaces={replaces}>"),
    );
    assert_eq!(codes_of(net.side(who)), [202]);
    let new = target_invite(net);
    assert_eq!(new.invite.uri.to_string(), format!("sip:{user}@{AGENT}"));
    assert_eq!(
        request_header(&new.invite, "Replaces"),
        Some("abc@pbx;to-tag=1;from-tag=2")
    );
    new
}

/// `who` sends a REFER on `dialog` (its side of it) with `refer_to` as the Refer-To.
fn send_refer(net: &mut Net, who: Who, dialog: &mut Dialog, refer_to: &str) {
    let at = match who {
        Who::Trunk => TRUNK,
        Who::Agent => AGENT,
    };
    let mut refer = dialog.request(Method::Refer, at);
    refer
        .headers
        .push(Header::Other("Refer-To".into(), refer_to.into()));
    net.send(who, refer);
}

/// The body of a NOTIFY's sipfrag: its status code.
fn sipfrag(request: &Request) -> Option<u16> {
    std::str::from_utf8(&request.body)
        .ok()?
        .strip_prefix("SIP/2.0 ")?
        .get(..3)?
        .parse()
        .ok()
}

/// The methods of the Allow header among `headers`, if any, written as our lists are.
fn allow_of(headers: &rsip::Headers) -> Option<String> {
    use rsip::headers::UntypedHeader;
    headers.iter().find_map(|h| match h {
        Header::Allow(a) => Some(
            a.value()
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    })
}

#[test]
fn requests_a_dialog_does_not_take_get_405_with_allow_and_the_call_goes_on() {
    let mut net = Net::new(QUEUE, Duration::from_secs(2));
    net.answering.takes_refer = false;
    let (mut net, mut trunk) = net.answered();
    net.greeting_done();
    // The trunk asks us to hand our side of the call on: not taken with `accept_refer`
    // off.
    send_refer(&mut net, Who::Trunk, &mut trunk, "<sip:200@10.0.0.1>");
    let answers = net.trunk.responses();
    assert_eq!(codes(&answers), [405]);
    assert_eq!(
        allow_of(&answers[0].headers).as_deref(),
        Some(crate::sip::ALLOW)
    );

    // An agent's phone is offered REFER (its transfers), and its key presses and messages
    // in the call do not end it.
    net.offer(1, Target::Registered(format!("sip:1001@{AGENT}")));
    let (invite, mut agent) = agent_answers(&mut net);
    assert_eq!(
        allow_of(&invite.headers).as_deref(),
        Some(crate::sip::ALLOW_REFER)
    );
    net.instruction(Instruction::Connected {
        offer: OfferId(1),
        agent: "1001".into(),
    });
    net.agent.inbox.clear();
    net.send(Who::Agent, agent.request(Method::Info, AGENT));
    net.send(Who::Agent, agent.request(Method::Message, AGENT));
    // A NOTIFY of no subscription ends only that subscription (RFC 5057): 481.
    net.send(Who::Agent, agent.request(Method::Notify, AGENT));
    let answers = net.agent.responses();
    assert_eq!(codes(&answers), [200, 405, 481]);
    assert_eq!(
        allow_of(&answers[1].headers).as_deref(),
        Some(crate::sip::ALLOW_REFER)
    );
    assert!(net.agent.requests().is_empty(), "no BYE: the call goes on");
    assert!(net.trunk.requests().is_empty());
}

#[test]
fn an_agent_who_transfers_by_refer_hands_the_caller_to_the_target_and_leaves() {
    let (mut net, _trunk) = Net::up(QUEUE);
    net.greeting_done();
    let mut agent = agent_connected(&mut net);

    send_refer(
        &mut net,
        Who::Agent,
        &mut agent,
        &format!("<sip:1002@{AGENT}>"),
    );
    refer_taken(&mut net, Who::Agent, &agent);

    // The engine calls the target; the caller stays with the agent meanwhile.
    let (target_invite, _) = agent_answers(&mut net);
    assert_eq!(target_invite.uri.to_string(), format!("sip:1002@{AGENT}"));
    assert_eq!(
        allow_of(&target_invite.headers).as_deref(),
        Some(crate::sip::ALLOW),
        "a transfer target is not offered REFER: nothing would act on it"
    );
    let done = net.agent.requests();
    let seen: Vec<(Method, Option<u16>)> =
        done.iter().map(|(_, r)| (r.method, sipfrag(r))).collect();
    assert_eq!(
        seen,
        [
            (Method::Notify, Some(180)),
            (Method::Notify, Some(200)),
            (Method::Bye, None)
        ],
        "ringing, connected, and the agent's leg ends"
    );
    assert!(
        net.did.iter().any(|a| matches!(
            a,
            CallAction::Media(LegRef::Caller, MediaOp::Bridge(Some(Far::Transfer)))
        )),
        "the caller now talks to the target"
    );
    assert_eq!(
        net.acd()[1..],
        [&AcdReport::CallEnded(HungUpBy::Agent)],
        "the agent's part is over"
    );
    assert!(net.ended.is_none(), "the call goes on");
}

#[test]
fn an_attended_transfer_by_refer_calls_the_target_replacing_its_consultation() {
    let (mut net, _trunk) = Net::up(QUEUE);
    net.greeting_done();
    let mut agent = agent_connected(&mut net);
    // A Replaces that names no dialog, or would add a line to our INVITE, is refused.
    for replaces in [
        "abc",
        "abc%3Bto-tag%3D1%3Bfrom-tag%3D2%0D%0ARoute%3A%20%3Csip%3Aevil%3E",
    ] {
        send_refer(
            &mut net,
            Who::Agent,
            &mut agent,
            &format!("<sip:1002@{AGENT}?Replaces={replaces}>"),
        );
        assert_eq!(codes_of(&mut net.agent), [400], "{replaces}");
    }
    assert!(net.agent.requests().is_empty(), "no NOTIFY, no new call");

    // The agent consulted 1002 and hands the caller over: our INVITE replaces their
    // consultation call (RFC 3891), at the URI without its header part.
    attended_refer(&mut net, Who::Agent, &mut agent, "1002");
    assert!(net.ended.is_none());
}

/// With `agent_refer = "refer"`: an agent connected to the caller asks (REFER) for the
/// caller to go to 1002, attended; the agent's phone hears 202 and NOTIFY 100. The trunk's
/// side of the dialog and the agent's, and the REFER the trunk got, with its transaction.
fn agent_refer_passed_on() -> (
    Net,
    Dialog,
    Dialog,
    (crate::sip::transaction::ServerTxId, Request),
) {
    let mut net = Net::new(QUEUE, Duration::from_secs(2));
    net.agent_refer = crate::sip::AgentRefer::Refer;
    let (mut net, trunk) = net.answered();
    net.greeting_done();
    let mut agent = agent_connected(&mut net);
    send_refer(
        &mut net,
        Who::Agent,
        &mut agent,
        &format!("<sip:1002@{AGENT}?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
    );
    refer_taken(&mut net, Who::Agent, &agent);
    let to_trunk = net.trunk.requests();
    let [(tx, refer)] = to_trunk.as_slice() else {
        panic!("our REFER to the trunk: {to_trunk:?}");
    };
    assert_eq!(refer.method, Method::Refer);
    assert!(trunk.matches(refer), "in the caller's dialog");
    assert_eq!(
        request_header(refer, "Refer-To"),
        Some(format!("<sip:1002@{AGENT}?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>").as_str()),
        "the agent's target, with the consultation it replaces"
    );
    assert!(target_invite_absent(&net), "the engine calls nobody itself");
    (net, trunk, agent, (*tx, refer.clone()))
}

fn target_invite_absent(net: &Net) -> bool {
    !net.agent
        .inbox
        .iter()
        .any(|e| matches!(e, Event::NewCall(_)))
}

#[test]
fn an_agents_transfer_passed_on_to_the_trunk_by_refer_leaves_the_call_once_connected() {
    let (mut net, mut trunk, agent, (tx, refer)) = agent_refer_passed_on();
    net.respond(Who::Trunk, tx, build::response(&refer, 202, None));
    net.send(Who::Trunk, notify(&mut trunk, "SIP/2.0 100 Trying\r\n"));
    net.send(Who::Trunk, notify(&mut trunk, "SIP/2.0 180 Ringing\r\n"));
    net.send(Who::Trunk, notify(&mut trunk, "SIP/2.0 200 OK\r\n"));
    let to_agent = net.agent.requests();
    let seen: Vec<(Method, Option<u16>)> = to_agent
        .iter()
        .map(|(_, r)| (r.method, sipfrag(r)))
        .collect();
    assert_eq!(
        seen,
        [
            (Method::Notify, Some(180)),
            (Method::Notify, Some(200)),
            (Method::Bye, None)
        ],
        "the agent hears it ring and connect, and their leg ends"
    );
    assert!(to_agent.iter().all(|(_, r)| agent.matches(r)));
    let byes = net.trunk.requests();
    let [(tx, bye)] = byes.as_slice() else {
        panic!("the engine leaves the caller to the trunk: {byes:?}");
    };
    assert_eq!(bye.method, Method::Bye);
    net.respond(Who::Trunk, *tx, build::response(bye, 200, None));
    assert_eq!(net.ended.as_deref(), Some("transferred"));
    assert!(net.acd().contains(&&AcdReport::CallEnded(HungUpBy::Agent)));
}

#[test]
fn an_agents_transfer_the_trunk_refuses_is_reported_and_the_agent_keeps_the_caller() {
    let (mut net, _trunk, _agent, (tx, refer)) = agent_refer_passed_on();
    net.respond(Who::Trunk, tx, build::response(&refer, 603, None));
    let to_agent = net.agent.requests();
    let seen: Vec<(Method, Option<u16>)> = to_agent
        .iter()
        .map(|(_, r)| (r.method, sipfrag(r)))
        .collect();
    assert_eq!(seen, [(Method::Notify, Some(603))]);
    assert!(net.trunk.requests().is_empty(), "the caller stays");
    assert!(net.ended.is_none());
}

impl Net {
    /// Queued after the greeting, with the desk PBX (the agent's address, where REFERs
    /// send calls) a named trunk.
    fn referring() -> (Net, Dialog) {
        let mut net = Net::new(QUEUE, Duration::from_secs(2));
        net.trunks.routes.insert(
            "desks".into(),
            TrunkRoute {
                uri: Some(format!("sip:{AGENT}")),
                srtp_required: false,
            },
        );
        net.answered()
    }
}

#[test]
fn a_refer_to_a_host_that_is_no_trunk_or_from_elsewhere_is_forbidden() {
    let (mut net, mut trunk) = Net::up(QUEUE);
    net.greeting_done();
    send_refer(
        &mut net,
        Who::Trunk,
        &mut trunk,
        "<sip:+19005550100@10.9.9.9>",
    );
    assert_eq!(
        codes_of(&mut net.trunk),
        [403],
        "not a trunk: no toll fraud"
    );
    // The trunk's own host is one.
    send_refer(
        &mut net,
        Who::Trunk,
        &mut trunk,
        "<sip:200@10.0.0.1;method=INVITE>",
    );
    assert_eq!(codes_of(&mut net.trunk), [202]);
    let dials: Vec<&String> = net
        .did
        .iter()
        .filter_map(|a| match a {
            CallAction::Dial { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    assert_eq!(dials, ["sip:200@10.0.0.1"], "without the method parameter");

    // Someone else who learnt the dialog's tags may not.
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    let mut refer = trunk.request(Method::Refer, TRUNK);
    refer.headers.push(Header::Other(
        "Refer-To".into(),
        format!("<sip:200@{AGENT}>"),
    ));
    net.agent.core.handle_command(
        net.now,
        Command::Route {
            call_id: CALL_ID.into(),
        },
    );
    net.send(Who::Agent, refer);
    assert_eq!(codes_of(&mut net.agent), [403]);
    assert!(target_invite_absent(&net));
}

/// The trunk REFERs the call to the target at AGENT (the harness's second peer): the REFER
/// is taken (202) and its subscription told the transfer is tried (NOTIFY 100, answered).
fn trunk_refers(net: &mut Net, trunk: &mut Dialog) {
    send_refer(net, Who::Trunk, trunk, &format!("<sip:200@{AGENT}>"));
    refer_taken(net, Who::Trunk, trunk);
}

/// `who`'s REFER on `dialog` was taken: 202 with a Contact, then one NOTIFY (100) in the
/// dialog, which `who` answers.
fn refer_taken(net: &mut Net, who: Who, dialog: &Dialog) {
    let side = net.side(who);
    let answers = side.responses();
    assert_eq!(codes(&answers), [202]);
    assert!(
        header(&answers[0], "Contact").is_some(),
        "the subscription's contact"
    );
    let notifies = side.requests();
    let [(tx, trying)] = notifies.as_slice() else {
        panic!("one NOTIFY: {notifies:?}");
    };
    assert!(dialog.matches(trying), "in the referrer's dialog");
    assert_eq!(
        (trying.method, sipfrag(trying)),
        (Method::Notify, Some(100))
    );
    net.respond(who, *tx, build::response(trying, 200, None));
}

/// The INVITE the REFER's target got (at AGENT), unanswered.
fn target_invite(net: &mut Net) -> crate::endpoint::core::NewCall {
    let at = net
        .agent
        .inbox
        .iter()
        .position(|e| matches!(e, Event::NewCall(_)));
    match at.and_then(|i| net.agent.inbox.remove(i)) {
        Some(Event::NewCall(new)) => new,
        _ => panic!("the target got no INVITE"),
    }
}

/// The NOTIFYs (their sipfrag status) and BYEs the trunk got, each answered 200.
fn trunk_hears(net: &mut Net) -> Vec<(Method, Option<u16>)> {
    let mut heard = Vec::new();
    loop {
        let got = net.trunk.requests();
        if got.is_empty() {
            return heard;
        }
        for (tx, r) in got {
            net.respond(Who::Trunk, tx, build::response(&r, 200, None));
            heard.push((r.method, sipfrag(&r)));
        }
    }
}

#[test]
fn a_trunk_that_transfers_by_refer_hands_the_call_to_a_target_who_takes_the_callers_place() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    let ok = net.trunk.responses();
    assert!(
        ok.iter()
            .all(|r| allow_of(&r.headers).as_deref() == Some(crate::sip::ALLOW_REFER)),
        "the caller's dialog says it takes REFER"
    );
    trunk_refers(&mut net, &mut trunk);

    // The hotline calls the target on the caller's own media, as the number called, with
    // none of the trunks' credentials.
    let (invite, target) = agent_answers(&mut net);
    assert_eq!(invite.uri.to_string(), format!("sip:200@{AGENT}"));
    assert!(
        String::from_utf8_lossy(&invite.body).contains("m=audio 40000 "),
        "the caller's RTP port"
    );
    let text = invite.to_string();
    let from = text.lines().find(|l| l.starts_with("From:"));
    assert!(from.is_some_and(|f| f.contains("sip:12345@")), "{from:?}");
    assert_eq!(
        trunk_hears(&mut net),
        [
            (Method::Notify, Some(180)),
            (Method::Notify, Some(200)),
            (Method::Bye, None)
        ],
        "ringing, connected, and the trunk's leg is left once it heard so"
    );
    let target_media = net.media_starts(LegRef::Caller);
    assert_eq!(
        target_media.last().map(|n| n.remote),
        Some(addr("10.0.0.9:32000")),
        "the caller's media now goes to the target"
    );
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallReferred { target, .. } if *target == format!("sip:200@{AGENT}")
    )));
    assert!(net.ended.is_none(), "the call goes on with the target");
    assert!(
        net.acd().is_empty(),
        "still queued: the target waits in the caller's place"
    );

    // The target's media stops: its leg ends the call, as the caller's would.
    let now = net.now;
    net.call()
        .handle_media(now, LegRef::Caller, SessionEvent::Timeout);
    net.progress();
    let byes = net.agent.requests();
    assert!(
        matches!(byes.as_slice(), [(_, bye)] if bye.method == Method::Bye && target.matches(bye)),
        "{byes:?}"
    );
    assert!(net.ended.is_some(), "the call is over");
    assert_eq!(net.acd(), [&AcdReport::CallerGone(HungUpBy::System)]);
}

#[test]
fn an_agent_whose_caller_is_transferred_by_its_pbx_goes_on_with_the_target() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    let agent = agent_connected(&mut net);
    let bridges = |net: &Net| {
        net.did
            .iter()
            .filter(|a| matches!(a, CallAction::Media(_, MediaOp::Bridge(_))))
            .count()
    };
    let bridged = bridges(&net);
    trunk_refers(&mut net, &mut trunk);
    let (_, mut target) = agent_answers(&mut net);
    assert_eq!(
        trunk_hears(&mut net),
        [
            (Method::Notify, Some(180)),
            (Method::Notify, Some(200)),
            (Method::Bye, None)
        ]
    );
    // The agent's bridge is to the caller's media, which now carries the target.
    assert_eq!(bridges(&net), bridged, "the bridge stays as it was");
    let to_agent = net.agent.requests();
    assert!(to_agent.is_empty(), "the agent stays: {to_agent:?}");
    assert!(net.ended.is_none());

    // The target hangs up: the agent's leg ends as if the caller had hung up.
    net.send(Who::Agent, target.request(Method::Bye, AGENT));
    let byes = net.agent.requests();
    assert!(
        byes.iter()
            .any(|(_, r)| r.method == Method::Bye && agent.matches(r)),
        "{byes:?}"
    );
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up_after_agent"));
}

#[test]
fn a_trunk_that_wants_no_notifies_of_its_transfer_hears_none_and_is_left() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    let mut refer = trunk.request(Method::Refer, TRUNK);
    refer.headers.push(Header::Other(
        "Refer-To".into(),
        format!("<sip:200@{AGENT}>"),
    ));
    refer
        .headers
        .push(Header::Other("Refer-Sub".into(), "false".into()));
    net.send(Who::Trunk, refer);
    let answers = net.trunk.responses();
    assert_eq!(codes(&answers), [202]);
    assert_eq!(
        header(&answers[0], "Refer-Sub").as_deref(),
        Some("false"),
        "RFC 4488: the 202 says no subscription was made"
    );
    agent_answers(&mut net);
    assert_eq!(
        trunk_hears(&mut net),
        [(Method::Bye, None)],
        "no NOTIFY: the trunk's leg is left at once"
    );
    assert!(net.ended.is_none(), "the target holds the call");
}

#[test]
fn a_late_re_invite_from_a_trunk_that_handed_its_call_over_does_not_take_the_media_back() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    trunk_refers(&mut net, &mut trunk);
    agent_answers(&mut net);
    let starts = net.media_starts(LegRef::Caller).len();
    // The trunk holds its (old) leg before it heard the final NOTIFY.
    holds(&mut net, Who::Trunk, &mut trunk);
    assert_eq!(
        net.media_starts(LegRef::Caller).len(),
        starts,
        "the caller's media stays with the target"
    );
}

#[test]
fn a_refer_whose_target_fails_is_reported_and_the_caller_keeps_the_call() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    trunk_refers(&mut net, &mut trunk);
    let new = target_invite(&mut net);
    net.respond(
        Who::Agent,
        new.tx,
        build::response(&new.invite, 486, Some("t")),
    );
    assert_eq!(trunk_hears(&mut net), [(Method::Notify, Some(486))]);
    assert!(net.ended.is_none(), "the caller is still in the call");
    assert!(
        net.did
            .iter()
            .any(|a| matches!(a, CallAction::Release(Far::Heir))),
        "the target's route goes"
    );

    // A target that never answers is given up (CANCEL) after its ringing time.
    trunk_refers(&mut net, &mut trunk);
    let new = target_invite(&mut net);
    let mut ringing = build::response(&new.invite, 180, Some("t2"));
    ringing
        .headers
        .push(Header::Contact(format!("<sip:200@{AGENT}>").into()));
    net.respond(Who::Agent, new.tx, ringing);
    assert_eq!(trunk_hears(&mut net), [(Method::Notify, Some(180))]);
    net.wait(HEIR_RING);
    let cancelled = net.agent.inbox.iter().any(|e| {
        matches!(
            e,
            Event::Call {
                event: CallEvent::Cancelled { .. },
                ..
            }
        )
    });
    assert!(
        cancelled,
        "the target's ringing is CANCELled: {:?}",
        net.agent.inbox
    );
    assert_eq!(trunk_hears(&mut net), [(Method::Notify, Some(408))]);

    // The trunk's caller then hangs up as ever.
    net.send(Who::Trunk, trunk.request(Method::Bye, TRUNK));
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
}

#[test]
fn a_transferor_that_hangs_up_at_once_leaves_the_call_to_its_target() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    trunk_refers(&mut net, &mut trunk);
    // The transferor leaves as soon as its REFER is taken: the call waits for the target.
    net.send(Who::Trunk, trunk.request(Method::Bye, TRUNK));
    assert_eq!(codes_of(&mut net.trunk), [200]);
    assert!(net.ended.is_none() && net.acd().is_empty(), "not over yet");
    let (_, mut target) = agent_answers(&mut net);
    assert!(
        net.trunk.requests().is_empty(),
        "nothing more for the trunk"
    );
    assert!(net.ended.is_none(), "the target holds the call");
    // The target hangs up: the call is over, as if the caller had.
    net.send(Who::Agent, target.request(Method::Bye, AGENT));
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
    assert_eq!(net.acd(), [&AcdReport::CallerGone(HungUpBy::Caller)]);

    // A target that cannot be reached after the transferor left ends the call.
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    trunk_refers(&mut net, &mut trunk);
    net.send(Who::Trunk, trunk.request(Method::Bye, TRUNK));
    let new = target_invite(&mut net);
    net.respond(
        Who::Agent,
        new.tx,
        build::response(&new.invite, 404, Some("t")),
    );
    assert_eq!(net.ended.as_deref(), Some("caller_hung_up"));
}

#[test]
fn a_trunks_attended_transfer_replaces_the_targets_dialog_and_a_second_refer_waits() {
    let (mut net, mut trunk) = Net::referring();
    net.greeting_done();
    let new = attended_refer(&mut net, Who::Trunk, &mut trunk, "200");
    net.agent.inbox.push_front(Event::NewCall(new));

    send_refer(
        &mut net,
        Who::Trunk,
        &mut trunk,
        &format!("<sip:201@{AGENT}>"),
    );
    assert_eq!(codes_of(&mut net.trunk), [491]);
    let invites = net
        .agent
        .inbox
        .iter()
        .filter(|e| matches!(e, Event::NewCall(_)))
        .count();
    assert_eq!(invites, 1, "only the first transfer is tried");
}

#[test]
fn a_re_invite_crossing_our_refresh_gets_491_and_ours_is_tried_again_soon() {
    let (mut net, mut dialog) = we_refresh(false);
    net.wait(Duration::from_secs(60));
    let reqs = net.trunk.requests();
    let [(tx, ours)] = reqs.as_slice() else {
        panic!("our refresh: {reqs:?}");
    };
    assert_eq!(ours.method, Method::Invite);
    let mut theirs = dialog.request(Method::Invite, TRUNK);
    theirs
        .headers
        .push(Header::ContentType("application/sdp".into()));
    theirs.body = sdp("10.0.0.1", 30000, "sendonly").into_bytes();
    net.send(Who::Trunk, theirs);
    assert_eq!(codes_of(&mut net.trunk), [100, 491], "offers crossed");
    net.respond(
        Who::Trunk,
        *tx,
        build::response(ours, 491, Some("trunk-tag")),
    );
    net.wait(Duration::from_secs(2));
    let again = net.trunk.requests();
    assert!(
        matches!(again.as_slice(), [(_, r)] if r.method == Method::Invite),
        "tried again 2 s later, not at expiry: {again:?}"
    );
}

/// A call up (its own session timer, 1800 s, refreshed by us from 900 s on: outside these
/// tests), queued, and offered to the agent, whose phone got our INVITE.
fn offered_with_timers() -> Net {
    offered_with_timers_and(None)
}

/// `offered_with_timers`, the far leg answering challenges with `credentials`.
fn offered_with_timers_and(credentials: Option<ClientCredentials>) -> Net {
    let mut net = Net::new(QUEUE, Duration::ZERO);
    net.credentials = credentials;
    let invite = net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    let ok = net.trunk.responses().pop().expect("the 200");
    net.trunk_ack(&invite, &ok, "");
    net.greeting_done();
    net.offer(1, Target::Registered(format!("sip:1001@{AGENT}")));
    net
}

fn request_header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    headers::other_value(&r.headers, name)
}

/// The agent's phone answered with `extra` in its 200, and the ACD connected it.
fn connected_with(net: &mut Net, extra: &[(&str, &str)]) -> Dialog {
    let (invite, dialog) = agent_answers_with(net, extra);
    assert_eq!(
        request_header(&invite, "Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert_eq!(request_header(&invite, "Min-SE"), Some("90"));
    assert!(headers::lists_tag(
        &invite.headers,
        headers::pick_supported,
        "timer"
    ));
    assert!(
        !headers::lists_tag(&invite.headers, headers::pick_supported, "100rel"),
        "we do not PRACK far ends"
    );
    net.instruction(Instruction::Connected {
        offer: OfferId(1),
        agent: "1001".into(),
    });
    dialog
}

/// The agent's phone (allowing `allow`) answered agreeing to a 120 s session we refresh:
/// our first refresh, half-way, and its transaction.
fn our_first_refresh(net: &mut Net, allow: &str) -> (crate::sip::transaction::ServerTxId, Request) {
    connected_with(
        net,
        &[("Session-Expires", "120;refresher=uac"), ("Allow", allow)],
    );
    net.wait(Duration::from_secs(60));
    let mut reqs = net.agent.requests();
    assert_eq!(reqs.len(), 1, "one refresh: {reqs:?}");
    reqs.remove(0)
}

/// The agent's leg was hung up for its session (one BYE to the phone), and so was the
/// caller's: the trunk answers our BYE.
fn agent_leg_expired(net: &mut Net) {
    let byes = net.agent.requests();
    assert!(
        matches!(byes.as_slice(), [(_, bye)] if bye.method == Method::Bye),
        "one BYE to the phone: {byes:?}"
    );
    trunk_answers_bye(net);
    assert_eq!(net.ended.as_deref(), Some("agent_session_expired"));
}

/// The trunk answers our BYE, and the call is over.
fn trunk_answers_bye(net: &mut Net) {
    let byes = net.trunk.requests();
    let [(tx, bye)] = byes.as_slice() else {
        panic!("one BYE to the trunk: {byes:?}");
    };
    assert_eq!(bye.method, Method::Bye);
    net.respond(Who::Trunk, *tx, build::response(bye, 200, None));
}

#[test]
fn the_agents_leg_keeps_the_session_timer_it_agreed_and_we_refresh_it_by_update() {
    let mut net = offered_with_timers();
    connected_with(
        &mut net,
        &[
            ("Session-Expires", "120;refresher=uac"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"),
        ],
    );
    net.wait(Duration::from_secs(59));
    assert!(net.agent.requests().is_empty());
    net.wait(Duration::from_secs(1));
    let reqs = net.agent.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("one refresh: {reqs:?}");
    };
    assert_eq!(update.method, Method::Update);
    assert_eq!(
        request_header(update, "Session-Expires"),
        Some("120;refresher=uac")
    );
    let mut ok = build::response(update, 200, None);
    ok.headers.push(Header::Other(
        "Session-Expires".into(),
        "120;refresher=uac".into(),
    ));
    net.respond(Who::Agent, *tx, ok);
    net.wait(Duration::from_secs(60));
    let reqs = net.agent.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("a second refresh: {reqs:?}");
    };
    // The phone lost the dialog: its leg is over, and so is the call.
    net.respond(Who::Agent, *tx, build::response(update, 481, None));
    agent_leg_expired(&mut net);
}

#[test]
fn an_agent_that_refreshes_keeps_the_call_and_one_that_stops_is_hung_up() {
    let mut net = offered_with_timers();
    let mut dialog = connected_with(&mut net, &[("Session-Expires", "120;refresher=uas")]);
    net.wait(Duration::from_secs(50));
    let mut update = dialog.request(Method::Update, AGENT);
    update.headers.push(Header::Other(
        "Session-Expires".into(),
        "120;refresher=uac".into(),
    ));
    update.headers.push(Header::Supported("timer".into()));
    net.send(Who::Agent, update);
    let r = net.agent.responses();
    assert_eq!(codes(&r), [200]);
    assert_eq!(
        header(&r[0], "Session-Expires").as_deref(),
        Some("120;refresher=uac")
    );
    assert_eq!(header(&r[0], "Require").as_deref(), Some("timer"));
    // The refresh moved the expiry: 120 s less a third (RFC 4028 10), from the refresh.
    net.wait(Duration::from_secs(79));
    assert!(net.agent.requests().is_empty(), "still refreshed");
    assert_eq!(net.ended, None);
    net.wait(Duration::from_secs(10));
    agent_leg_expired(&mut net);
}

#[test]
fn an_agents_422_gets_the_invite_again_with_the_interval_it_asks_for() {
    let mut net = offered_with_timers();
    let Some(Event::NewCall(new)) = net.agent.inbox.pop_front() else {
        panic!("the agent's phone got no INVITE");
    };
    let mut too_small = build::response(&new.invite, 422, Some("agent-tag"));
    too_small
        .headers
        .push(Header::Other("Min-SE".into(), "3600".into()));
    net.respond(Who::Agent, new.tx, too_small);
    let again: Vec<Request> = std::mem::take(&mut net.agent.inbox)
        .into_iter()
        .filter_map(|e| match e {
            Event::NewCall(n) => Some(n.invite),
            Event::Call {
                event: CallEvent::Request { request, .. },
                ..
            } => Some(request),
            _ => None,
        })
        .collect();
    let [invite] = again.as_slice() else {
        panic!("one INVITE again: {again:?}");
    };
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(headers::cseq(&invite.headers).map(|(n, _)| n), Some(2));
    assert_eq!(
        request_header(invite, "Session-Expires"),
        Some("3600;refresher=uac")
    );
    assert_eq!(request_header(invite, "Min-SE"), Some("3600"));
    assert_eq!(net.ended, None, "the offer goes on");
}

#[test]
fn a_422_to_our_refresh_is_answered_with_the_interval_and_min_se_it_asks_for() {
    let (mut net, _dialog) = we_refresh(true);
    net.wait(Duration::from_secs(60));
    let reqs = net.trunk.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("one refresh: {reqs:?}");
    };
    let mut too_small = build::response(update, 422, None);
    too_small
        .headers
        .push(Header::Other("Min-SE".into(), "300".into()));
    net.respond(Who::Trunk, *tx, too_small);
    let reqs = net.trunk.requests();
    let [(_, again)] = reqs.as_slice() else {
        panic!("the refresh again: {reqs:?}");
    };
    assert_eq!(again.method, Method::Update);
    assert_eq!(
        request_header(again, "Session-Expires"),
        Some("300;refresher=uac")
    );
    assert_eq!(
        request_header(again, "Min-SE"),
        Some("300"),
        "RFC 4028 7.4: the Min-SE the 422 asked for"
    );
}

#[test]
fn an_agent_reached_over_tls_is_offered_srtp_and_one_over_udp_rtp() {
    for (target, srtp) in [
        (format!("sip:1001@{AGENT};transport=tls"), true),
        (format!("sip:1001@{AGENT}"), false),
    ] {
        let (mut net, _dialog) = Net::up(QUEUE);
        net.greeting_done();
        net.offer(1, Target::Registered(target.clone()));
        assert!(
            net.did
                .iter()
                .any(|a| matches!(a, CallAction::Dial { srtp: s, .. } if *s == srtp)),
            "{target}: {:?}",
            net.did
        );
        let Some(Event::NewCall(new)) = net.agent.inbox.pop_front() else {
            panic!("the agent's phone got no INVITE");
        };
        let offer = String::from_utf8_lossy(&new.invite.body).into_owned();
        assert_eq!(offer.contains("RTP/SAVP"), srtp, "{target}: {offer}");
        assert_eq!(
            offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
            srtp,
            "{offer}"
        );
    }
}

#[test]
fn a_refused_re_invite_refresh_leaves_the_agents_leg_up_and_is_tried_again() {
    let mut net = offered_with_timers();
    let (tx, reinvite) = our_first_refresh(&mut net, "INVITE, ACK, BYE, CANCEL");
    assert_eq!(
        reinvite.method,
        Method::Invite,
        "no UPDATE in the phone's Allow"
    );
    net.respond(Who::Agent, tx, build::response(&reinvite, 491, None));
    assert!(net.agent.requests().is_empty(), "no BYE, no CANCEL");
    assert!(
        !net.acd()
            .iter()
            .any(|r| matches!(r, AcdReport::OfferOutcome(_, OfferOutcome::Failed))),
        "the agent's call goes on: {:?}",
        net.acd()
    );
    net.wait(Duration::from_secs(2));
    let reqs = net.agent.requests();
    let [(tx, again)] = reqs.as_slice() else {
        panic!("the refresh again: {reqs:?}");
    };
    let mut ok = build::response(again, 200, Some("agent-tag"));
    ok.headers
        .push(Header::ContentType("application/sdp".into()));
    ok.body = sdp("10.0.0.9", 32000, "sendrecv").into_bytes();
    net.respond(Who::Agent, *tx, ok);
    assert!(
        net.agent.inbox.iter().any(|e| matches!(
            e,
            Event::Call {
                event: CallEvent::Ack { .. },
                ..
            }
        )),
        "the refresh's 2xx is ACKed"
    );
    assert_eq!(net.ended, None);
}

#[test]
fn a_refresh_by_update_refused_as_unknown_goes_again_by_re_invite() {
    let (mut net, _dialog) = we_refresh(true);
    net.wait(Duration::from_secs(60));
    let reqs = net.trunk.requests();
    let [(tx, update)] = reqs.as_slice() else {
        panic!("one refresh: {reqs:?}");
    };
    assert_eq!(update.method, Method::Update);
    net.respond(Who::Trunk, *tx, build::response(update, 501, None));
    let reqs = net.trunk.requests();
    let [(_, again)] = reqs.as_slice() else {
        panic!("the refresh again: {reqs:?}");
    };
    assert_eq!(again.method, Method::Invite, "by re-INVITE now");
    assert!(
        String::from_utf8_lossy(&again.body).contains("m=audio 40000"),
        "with our SDP"
    );
}

#[test]
fn refreshes_refused_for_a_whole_interval_end_the_call() {
    let (mut net, _dialog) = we_refresh(true);
    net.wait(Duration::from_secs(60));
    let mut refused = 0;
    loop {
        let reqs = net.trunk.requests();
        match reqs.as_slice() {
            [(tx, r)] if r.method == Method::Update => {
                refused += 1;
                net.respond(Who::Trunk, *tx, build::response(r, 500, None));
            }
            [(_, r)] if r.method == Method::Bye => break,
            other => panic!("{other:?}"),
        }
        net.wait(Duration::from_secs(2));
    }
    // Tried every 2 s from 60 s until 120 s had passed since the answer.
    assert!((25..=35).contains(&refused), "{refused} refusals");
    net.wait(Duration::from_secs(40));
    assert_eq!(net.ended.as_deref(), Some("session_expired"));
}

/// Greets, then transfers through three named trunks in order.
const FAILOVER: &str = "  next:\n    transfer: trunk\n    number: \"01012345678\"\n    \
                        trunks: [dead, busy, pbx]\n    failed: sorry\n  sorry:\n    \
                        hangup: transfer_failed\n";

/// A call up on `FAILOVER`: `dead` answers nothing (and probes find it down), `busy` is
/// the agent's side and `pbx` the trunk's. The greeting is over, so the transfer has
/// started.
fn failing_over() -> Net {
    failing_over_with(&["dead"])
}

/// `failing_over`, with the trunks probes find `down`.
fn failing_over_with(down: &[&str]) -> Net {
    let mut net = Net::new(FAILOVER, Duration::from_secs(2));
    let route = |at: &str| TrunkRoute {
        uri: Some(format!("sip:{at}")),
        srtp_required: false,
    };
    net.trunks = TrunkRoutes {
        routes: std::collections::BTreeMap::from([
            ("dead".into(), route(BLACK_HOLE)),
            ("busy".into(), route(AGENT)),
            ("pbx".into(), route(TRUNK)),
        ]),
        no_answer: Duration::from_secs(4),
    };
    net.down = down.iter().map(|d| (*d).to_owned()).collect();
    let invite = net.trunk_invite(Some(sdp("10.0.0.1", 30000, "sendrecv")));
    net.wait(Duration::from_secs(2));
    let ok = net
        .trunk
        .responses()
        .into_iter()
        .find(|r| r.status_code.code() == 200)
        .expect("a 200");
    net.trunk_ack(&invite, &ok, "");
    net.greeting_done();
    net
}

/// The far INVITE that reached `side`, answered with `code`, and its transaction.
fn far_invite_answered(
    net: &mut Net,
    who: Who,
    code: u16,
) -> (crate::sip::transaction::ServerTxId, Request) {
    let did = format!("{:?}", net.did);
    let side = net.side(who);
    let i = side
        .inbox
        .iter()
        .position(|e| matches!(e, Event::NewCall(n) if n.invite.uri.to_string().starts_with("sip:01012345678@")))
        .unwrap_or_else(|| panic!("no transfer INVITE; the call did {did}"));
    let Some(Event::NewCall(new)) = side.inbox.remove(i) else {
        unreachable!()
    };
    net.respond(who, new.tx, build::response(&new.invite, code, Some("far")));
    (new.tx, new.invite)
}

fn dialled_trunks(net: &Net) -> Vec<Option<String>> {
    net.did
        .iter()
        .filter_map(|a| match a {
            CallAction::Dial { trunk, .. } => Some(trunk.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transfer_skips_a_trunk_that_is_down_and_moves_on_when_one_cannot_take_the_call() {
    let mut net = failing_over();
    let (_, busy) = far_invite_answered(&mut net, Who::Agent, 503);
    assert_eq!(busy.uri.to_string(), format!("sip:01012345678@{AGENT}"));
    let (pbx_tx, pbx) = far_invite_answered(&mut net, Who::Trunk, 180);
    assert_eq!(pbx.uri.to_string(), format!("sip:01012345678@{TRUNK}"));
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(
        dialled_trunks(&net),
        [t("dead"), t("busy"), t("pbx")],
        "in the dialplan's order"
    );
    let after_busy = net
        .did
        .iter()
        .skip_while(|a| !matches!(a, CallAction::Dial { trunk: Some(t), .. } if t == "busy"));
    assert!(
        after_busy
            .clone()
            .any(|a| matches!(a, CallAction::Release(Far::Transfer))),
        "the busy trunk's leg, media and route are let go"
    );
    assert_eq!(net.ended, None, "the call goes on, ringing the last trunk");
    // It rang: a failure now is the transfer's, and no trunk is tried again.
    net.respond(Who::Trunk, pbx_tx, build::response(&pbx, 503, Some("far")));
    assert_eq!(dialled_trunks(&net).len(), 3, "{:?}", dialled_trunks(&net));
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "transfer_failed"
    )));
}

#[test]
fn a_trunk_that_answers_nothing_is_passed_over_after_no_answer_and_one_found_down_is_the_last_resort()
 {
    let t = |s: &str| Some(s.to_owned());
    // Nothing found down: `dead` is dialled first, and answers nothing at all.
    let mut net = failing_over_with(&[]);
    assert_eq!(dialled_trunks(&net), [t("dead")]);
    net.wait(Duration::from_secs(3));
    assert_eq!(dialled_trunks(&net), [t("dead")], "not yet");
    net.wait(Duration::from_secs(1));
    assert_eq!(
        dialled_trunks(&net),
        [t("dead"), t("busy")],
        "no_answer passed"
    );
    assert!(
        net.swallowed.iter().any(|l| l.starts_with("CANCEL ")),
        "the silent trunk's INVITE is CANCELled: {:?}",
        net.swallowed
    );
    // `busy` answered 100 Trying (its transaction layer did): it may take its time.
    net.wait(Duration::from_secs(10));
    assert_eq!(dialled_trunks(&net).len(), 2);

    // `dead` found down: skipped, then tried after all once every other trunk failed,
    // dialled whatever the probes say (the edge is not asked to refuse it).
    let mut net = failing_over();
    far_invite_answered(&mut net, Who::Agent, 503);
    far_invite_answered(&mut net, Who::Trunk, 503);
    let dials = dialled_trunks(&net);
    assert_eq!(dials, [t("dead"), t("busy"), t("pbx"), None]);
    assert!(matches!(
        net.did.iter().rev().find(|a| matches!(a, CallAction::Dial { .. })),
        Some(CallAction::Dial { target, .. }) if target == "sip:01012345678@10.0.0.77:5060"
    ));
}

#[test]
fn a_busy_answer_through_a_trunk_is_the_transfers_outcome_not_a_reason_to_try_another() {
    let mut net = failing_over();
    far_invite_answered(&mut net, Who::Agent, 486);
    assert!(
        !net.trunk
            .inbox
            .iter()
            .any(|e| matches!(e, Event::NewCall(_))),
        "the next trunk is not tried"
    );
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(dialled_trunks(&net), [t("dead"), t("busy")]);
    assert!(
        net.events().iter().any(|e| matches!(
            e,
            EventKind::CallFinished { outcome, .. } if outcome == "transfer_failed"
        )),
        "the dialplan's `failed` step"
    );
}

#[test]
fn a_pbx_that_challenges_our_session_refresh_gets_it_again_with_our_credentials() {
    let mut net = offered_with_timers_and(Some(pbx_credentials()));
    let (tx, update) = our_first_refresh(&mut net, "INVITE, ACK, BYE, CANCEL, UPDATE");
    let mut challenge = build::response(&update, 401, None);
    challenge.headers.push(Header::WwwAuthenticate(
        digest::challenge("asterisk", "n7", Algorithm::Md5, false).into(),
    ));
    net.respond(Who::Agent, tx, challenge);
    let reqs = net.agent.requests();
    let [(tx, again)] = reqs.as_slice() else {
        panic!("the refresh again: {reqs:?}");
    };
    assert_eq!(again.method, Method::Update);
    let seq = |r: &Request| headers::cseq(&r.headers).map(|c| c.0);
    assert_eq!(seq(again), seq(&update).map(|n| n + 1));
    assert_answers_pbx(again, "UPDATE", false);
    let mut ok = build::response(again, 200, None);
    ok.headers.push(Header::Other(
        "Session-Expires".into(),
        "120;refresher=uac".into(),
    ));
    net.respond(Who::Agent, *tx, ok);
    // Refreshed: the session lives on, and the next refresh comes an interval later.
    net.wait(Duration::from_secs(59));
    assert!(net.agent.requests().is_empty());
    assert_eq!(net.ended, None);
    net.wait(Duration::from_secs(1));
    let reqs = net.agent.requests();
    let [(tx, next)] = reqs.as_slice() else {
        panic!("the next refresh: {reqs:?}");
    };
    // Challenged with the same nonce: a request sent without credentials is answered, the
    // nonce's second use.
    let challenge = |r: &Request, nonce: &str| {
        let mut c = build::response(r, 401, None);
        c.headers.push(Header::WwwAuthenticate(
            digest::challenge("asterisk", nonce, Algorithm::Md5, false).into(),
        ));
        c
    };
    net.respond(Who::Agent, *tx, challenge(next, "n7"));
    let reqs = net.agent.requests();
    let [(tx, answered)] = reqs.as_slice() else {
        panic!("answered again: {reqs:?}");
    };
    assert_answers_pbx(answered, "UPDATE", false);
    assert!(answered.to_string().contains("nc=00000002"), "{answered}");
    // The answer itself challenged, even with a fresh nonce: our credentials are refused,
    // and nothing goes again at once (the timer tries later).
    net.respond(Who::Agent, *tx, challenge(answered, "n8"));
    assert!(net.agent.requests().is_empty(), "no ping-pong");
}

#[test]
fn a_far_end_that_answered_took_the_call_even_if_its_answer_is_unusable() {
    let mut net = failing_over();
    // `busy` answers 200 without a Contact: no dialog can be made of it (502), but it
    // answered, so no other trunk is tried.
    far_invite_answered(&mut net, Who::Agent, 200);
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(dialled_trunks(&net), [t("dead"), t("busy")]);
    assert!(net.events().iter().any(|e| matches!(
        e,
        EventKind::CallFinished { outcome, .. } if outcome == "transfer_failed"
    )));
}
