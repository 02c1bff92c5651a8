//! One call leg's media, sans-IO: what it sends each 20 ms tick (prompt audio, audio
//! relayed from a bridged leg, or silence between them: the stream never stops while the
//! leg sends, as SBCs and NAT pinholes expect), encoded in the leg's codec and encrypted
//! when the leg is SRTP (`srtp`), what it received (authenticated and decrypted first; in
//! order, through the jitter buffer; decoded with the leg's own decoder state), the DTMF
//! keys pressed, and whether the peer's RTP stopped. The media worker owns the socket and
//! the clock; this only sees datagrams, `now` and commands.
//!
//! RTP is taken from the negotiated peer only (the RTP-bleed class of attacks: anyone
//! who guesses the port could otherwise hear the prompts, press keys and speak to the
//! recogniser). The leg latches once to the first source whose address is the SDP's or
//! the signalling's (any port: NAT rewrites ports, and symmetric RTP answers where the
//! packets really come from); after that, packets from any other source are counted and
//! dropped. It re-latches on a new offer/answer, or when the latched source has been
//! silent for `RELATCH_AFTER` and another allowed source sends (a phone that changed
//! ports).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clip::Clip;
use super::codec::{Audio, Decoder, Encoder, FRAME_SAMPLES};
use super::dtmf::DtmfReceiver;
use super::jitter::{Frame, JitterBuffer};
use super::rtp::{HEADER_LEN, Packet, Sender};
use super::sdp::Negotiated;
use super::srtp::{MASTER_LEN, MAX_TAG, SrtpStream, Suite};

/// How long the latched source must be silent before another allowed source may take
/// its place.
const RELATCH_AFTER: Duration = Duration::from_secs(1);

/// A buffer that holds any packet we send, with an SRTP tag.
pub const MAX_PACKET: usize = HEADER_LEN + FRAME_SAMPLES + MAX_TAG;
/// The largest SRTP datagram we decrypt (it is copied first: the worker's buffer is shared).
const MAX_SRTP_IN: usize = 1500;

pub type PlayId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A key press (RFC 4733), reported once.
    Dtmf(char),
    /// The clip queued with this id has been sent to its end.
    PlayDone(PlayId),
    /// The peer's RTP stopped for longer than the media timeout.
    Timeout,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    /// Datagrams that were not RTP, or RTP of a payload type we did not agree to.
    pub rx_ignored: u64,
    /// Datagrams from a source other than the negotiated peer (dropped unread).
    pub rx_foreign: u64,
    pub tx_packets: u64,
}

pub struct MediaSession {
    neg: Negotiated,
    /// Where we send: the SDP address until the peer's RTP shows its real source.
    remote: SocketAddr,
    latched: bool,
    /// Where the leg's signalling comes from: RTP from this address is the peer's too.
    signalling: IpAddr,
    /// The last packet from the latched source.
    latched_rx: Instant,
    sender: Sender,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    playlist: VecDeque<(PlayId, Arc<Clip>)>,
    pos: usize,
    /// Audio relayed from a bridged leg, sent one frame per tick.
    relay: VecDeque<Audio>,
    /// The codec's state for what we send and what we receive (G.722 adapts to its own
    /// stream, so each direction keeps one for the life of the codec).
    encoder: Encoder,
    decoder: Decoder,
    last_rx: Instant,
    timeout: Duration,
    timed_out: bool,
    events: VecDeque<SessionEvent>,
    pub counters: Counters,
    /// SRTP: the stream we send and the one we receive.
    srtp_tx: Option<SrtpStream>,
    srtp_rx: Option<SrtpStream>,
}

/// The suite and key of what we send, and of what we receive.
type StreamKey = Option<(Suite, [u8; MASTER_LEN])>;

fn tx_key(neg: &Negotiated) -> StreamKey {
    neg.srtp.map(|k| (k.suite, k.ours))
}

fn rx_key(neg: &Negotiated) -> StreamKey {
    neg.srtp.map(|k| (k.suite, k.theirs))
}

fn srtp_stream(key: StreamKey) -> Option<SrtpStream> {
    key.map(|(suite, master)| SrtpStream::new(suite, &master))
}

impl MediaSession {
    pub fn new(
        now: Instant,
        neg: Negotiated,
        signalling: IpAddr,
        timeout: Duration,
        jitter: Duration,
    ) -> MediaSession {
        MediaSession {
            remote: neg.remote,
            srtp_tx: srtp_stream(tx_key(&neg)),
            srtp_rx: srtp_stream(rx_key(&neg)),
            encoder: Encoder::new(neg.codec),
            decoder: Decoder::new(neg.codec),
            neg,
            latched: false,
            signalling,
            latched_rx: now,
            sender: Sender::random(),
            jitter: JitterBuffer::new(jitter),
            dtmf: DtmfReceiver::default(),
            playlist: VecDeque::new(),
            pos: 0,
            relay: VecDeque::with_capacity(4),
            last_rx: now,
            timeout,
            timed_out: false,
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// A new offer/answer (re-INVITE: hold, resume, a moved peer).
    pub fn update(&mut self, now: Instant, neg: Negotiated) {
        if neg.remote != self.neg.remote {
            self.remote = neg.remote;
            self.latched = false;
        }
        // A direction whose key changed starts a new stream; one whose key stayed keeps its
        // counters (restarting ours at rollover 0 would reuse keystream already sent).
        if tx_key(&neg) != tx_key(&self.neg) {
            self.srtp_tx = srtp_stream(tx_key(&neg));
        }
        if rx_key(&neg) != rx_key(&self.neg) {
            self.srtp_rx = srtp_stream(rx_key(&neg));
        }
        if neg.codec != self.neg.codec {
            self.encoder = Encoder::new(neg.codec);
            // What the buffer holds is in the old codec: decoding it with the new one
            // would be noise, and would lead a G.722 decoder's fresh predictor astray.
            self.jitter.drain().for_each(drop);
        }
        if neg.codec != self.neg.codec || neg.remote != self.neg.remote {
            // A new stream: a G.722 decoder adapts to one sender's codes.
            self.decoder = Decoder::new(neg.codec);
        }
        self.neg = neg;
        self.last_rx = now;
        self.timed_out = false;
    }

    /// Queues a clip after whatever is playing.
    pub fn play(&mut self, id: PlayId, clip: Arc<Clip>) {
        self.playlist.push_back((id, clip));
    }

    /// Stops playback at once (barge-in), dropping what was queued.
    pub fn stop(&mut self) {
        self.playlist.clear();
        self.pos = 0;
    }

    pub fn is_playing(&self) -> bool {
        !self.playlist.is_empty()
    }

    /// Queues audio from the other leg of a bridge.
    pub fn relay(&mut self, audio: Audio) {
        // More than a few frames queued means the legs' clocks drift apart: drop the
        // oldest rather than let the delay grow.
        if self.relay.len() >= 4 {
            self.relay.pop_front();
        }
        self.relay.push_back(audio);
    }

    pub fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.accepts(now, from) {
            self.counters.rx_foreign += 1;
            return;
        }
        let mut clear;
        let data = match &mut self.srtp_rx {
            None => data,
            // Nothing unauthenticated is heard, latched to, or taken for a key.
            Some(rx) => {
                clear = [0u8; MAX_SRTP_IN];
                let Some(copy) = clear.get_mut(..data.len()) else {
                    self.counters.rx_ignored += 1;
                    return;
                };
                copy.copy_from_slice(data);
                match rx.unprotect(copy) {
                    Ok(n) => &copy[..n],
                    Err(_) => {
                        self.counters.rx_ignored += 1;
                        return;
                    }
                }
            }
        };
        let Ok(p) = Packet::parse(data) else {
            self.counters.rx_ignored += 1;
            return;
        };
        let audio = p.payload_type == self.neg.codec.payload_type();
        let dtmf = Some(p.payload_type) == self.neg.dtmf_pt;
        if !audio && !dtmf {
            self.counters.rx_ignored += 1;
            return;
        }
        self.counters.rx_packets += 1;
        self.last_rx = now;
        self.latched_rx = now;
        if !self.latched || self.remote != from {
            // Symmetric RTP (RFC 4961): answer where the peer really sends from, which
            // differs from its SDP behind NAT.
            self.remote = from;
            self.latched = true;
        }
        if dtmf {
            if let Some(key) = self.dtmf.on_packet(p.timestamp, p.payload) {
                self.events.push_back(SessionEvent::Dtmf(key));
            }
        } else {
            self.jitter.push(now, p.seq, p.timestamp, p.payload);
        }
    }

    /// Whether a datagram from `from` is the peer's: the latched source; before latching
    /// (or once the latched source has gone quiet), any port of the SDP's or the
    /// signalling's address.
    fn accepts(&self, now: Instant, from: SocketAddr) -> bool {
        if self.latched && from == self.remote {
            return true;
        }
        let allowed = from.ip() == self.neg.remote.ip() || from.ip() == self.signalling;
        allowed && (!self.latched || now.duration_since(self.latched_rx) >= RELATCH_AFTER)
    }

    /// The next received audio frame in order, once it is due.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        self.jitter.pop(now)
    }

    /// What is left in the jitter buffer (at hang-up).
    pub fn drain_frames(&mut self) -> impl Iterator<Item = Frame> + '_ {
        self.jitter.drain()
    }

    /// Decodes a received frame's payload, in order (the decoder keeps state): 8 kHz into
    /// `narrow`, and 16 kHz into `wide` when the codec is wideband (else it is left empty).
    pub fn decode(&mut self, payload: &[u8], narrow: &mut Vec<i16>, wide: &mut Vec<i16>) {
        self.decoder.decode(payload, narrow, wide);
    }

    pub fn jitter_stats(&self) -> super::jitter::Stats {
        self.jitter.stats
    }

    /// One 20 ms tick: writes the packet to send (if any) into `buf` and returns its length
    /// and destination. Also notices a dead peer.
    pub fn tick(
        &mut self,
        now: Instant,
        buf: &mut [u8; MAX_PACKET],
    ) -> Option<(usize, SocketAddr)> {
        if !self.timed_out
            && self.neg.direction.we_receive()
            && now.duration_since(self.last_rx) > self.timeout
        {
            self.timed_out = true;
            self.events.push_back(SessionEvent::Timeout);
        }
        let mut payload = [0u8; FRAME_SAMPLES];
        self.next_payload(&mut payload);
        if !self.neg.direction.we_send() || self.remote.ip().is_unspecified() {
            self.sender.skip(FRAME_SAMPLES as u32);
            return None;
        }
        let mut n = self.sender.write(
            self.neg.codec.payload_type(),
            &payload,
            FRAME_SAMPLES as u32,
            buf,
        );
        if let Some(tx) = &mut self.srtp_tx {
            // Our own packet always has room for its tag and an RTP header.
            n = tx.protect(buf, n).ok()?;
        }
        self.counters.tx_packets += 1;
        Some((n, self.remote))
    }

    /// The next 20 ms to send: relayed audio, else the playlist, else silence (so the
    /// peer's SBC, a NAT's pinhole and its jitter buffer see a steady stream between
    /// prompts). G.711 prompts are copied from the clip's encoding made once; everything
    /// else goes through the leg's encoder.
    fn next_payload(&mut self, payload: &mut [u8; FRAME_SAMPLES]) {
        if let Some(audio) = self.relay.pop_front() {
            return self.encoder.encode(&audio, payload);
        }
        if let Encoder::G711(law) = self.encoder {
            if !self.next_prompt_frame(|c| &c.encoded(law)[..], payload, law.encode(0)) {
                payload.fill(law.encode(0));
            }
            return;
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        self.next_prompt_frame(|c| &c.pcm()[..], &mut pcm, 0);
        let audio = Audio {
            narrow: pcm,
            wide: None,
        };
        self.encoder.encode(&audio, payload);
    }

    /// Fills `out` with the next 20 ms of the playlist as `samples` gives each clip (padded
    /// with `pad` at a clip's end); false when nothing plays.
    fn next_prompt_frame<T: Copy>(
        &mut self,
        samples: impl Fn(&Clip) -> &[T],
        out: &mut [T; FRAME_SAMPLES],
        pad: T,
    ) -> bool {
        let mut filled = 0;
        while filled == 0 {
            let Some((id, clip)) = self.playlist.front() else {
                return false;
            };
            let audio = samples(clip);
            let end = (self.pos + FRAME_SAMPLES).min(audio.len());
            filled = end.saturating_sub(self.pos);
            out[..filled].copy_from_slice(&audio[self.pos.min(end)..end]);
            self.pos = end;
            if self.pos >= audio.len() {
                self.events.push_back(SessionEvent::PlayDone(*id));
                self.playlist.pop_front();
                self.pos = 0;
            }
        }
        out[filled..].fill(pad);
        true
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::Codec;
    use crate::media::g711::Law;
    use crate::media::sdp::Direction;

    const MS: Duration = Duration::from_millis(1);

    fn neg(law: Law) -> Negotiated {
        Negotiated {
            codec: Codec::G711(law),
            dtmf_pt: Some(101),
            remote: "127.0.0.1:6000".parse().expect("addr"),
            redirected_from: None,
            direction: Direction::SendRecv,
            srtp: None,
        }
    }

    /// Where the test legs' signalling comes from.
    const SIP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut s = Sender::new(7, seq, ts);
        let mut buf = vec![0u8; HEADER_LEN + payload.len()];
        let n = s.write(pt, payload, 160, &mut buf);
        buf.truncate(n);
        buf
    }

    fn events(s: &mut MediaSession) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn a_clip_is_sent_in_20ms_packets_then_reported_done() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 30_000 * MS, 60 * MS);
        // 400 samples: two full packets and one padded with silence.
        s.play(1, Clip::from_pcm(vec![1000i16; 400].into()));
        let mut buf = [0u8; MAX_PACKET];
        let mut sent = Vec::new();
        for i in 0..5u32 {
            if let Some((n, to)) = s.tick(t + i * 20 * MS, &mut buf) {
                assert_eq!(to, "127.0.0.1:6000".parse::<SocketAddr>().expect("addr"));
                let p = Packet::parse(&buf[..n]).expect("rtp");
                sent.push((p.seq, p.timestamp, p.marker, p.payload[159]));
            }
        }
        assert_eq!(sent.len(), 5, "the stream goes on once the clip ends");
        let (seq0, ts0, m0, _) = sent[0];
        assert!(m0, "the first packet of a talkspurt has the marker");
        assert_eq!(
            sent[1],
            (
                seq0.wrapping_add(1),
                ts0.wrapping_add(160),
                false,
                Law::Ulaw.encode(1000)
            )
        );
        assert_eq!(
            sent[2].3,
            Law::Ulaw.encode(0),
            "the last packet is padded with silence"
        );
        for (i, (seq, ts, marker, last)) in sent.iter().enumerate().skip(3) {
            assert_eq!(
                (*seq, *ts, *marker, *last),
                (
                    seq0.wrapping_add(i as u16),
                    ts0.wrapping_add(i as u32 * 160),
                    false,
                    Law::Ulaw.encode(0)
                ),
                "silence between prompts, in sequence"
            );
        }
        assert_eq!(events(&mut s), [SessionEvent::PlayDone(1)]);

        s.play(2, Clip::from_pcm(vec![1000i16; 160].into()));
        let (n, _) = s.tick(t + 100 * MS, &mut buf).expect("plays");
        let p = Packet::parse(&buf[..n]).expect("rtp");
        assert!(!p.marker, "no talkspurt begins: the stream never paused");
        assert_eq!(p.seq, seq0.wrapping_add(5));
        assert_eq!(p.timestamp, ts0.wrapping_add(5 * 160));
        assert_eq!(p.payload[0], Law::Ulaw.encode(1000));
    }

    #[test]
    fn received_audio_latches_the_destination_and_dtmf_is_decoded() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Alaw), SIP, 30_000 * MS, 60 * MS);
        let nat: SocketAddr = "127.0.0.1:7777".parse().expect("addr");
        s.on_datagram(t, nat, &rtp(8, 1, 160, &[0xd5; 160]));
        s.on_datagram(t, nat, &rtp(0, 2, 320, &[0xff; 160]));
        s.on_datagram(t, nat, b"not rtp");
        s.on_datagram(t, nat, &rtp(101, 3, 480, &[5, 0x0a, 0, 160]));
        s.on_datagram(t, nat, &rtp(101, 4, 480, &[5, 0x8a, 1, 64]));
        assert_eq!(events(&mut s), [SessionEvent::Dtmf('5')]);
        assert_eq!(s.poll_frame(t).map(|f| f.timestamp), Some(160));
        assert_eq!(
            s.counters,
            Counters {
                rx_packets: 3,
                rx_ignored: 2,
                rx_foreign: 0,
                tx_packets: 0
            }
        );
        s.play(1, Clip::from_pcm(vec![0i16; 160].into()));
        let mut buf = [0u8; MAX_PACKET];
        assert_eq!(s.tick(t, &mut buf).map(|(_, to)| to), Some(nat));
    }

    #[test]
    fn only_the_negotiated_peer_is_heard_and_answered() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 1000 * MS, 60 * MS);
        let sprayer: SocketAddr = "10.9.9.9:6000".parse().expect("addr");
        let peer: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
        let mut buf = [0u8; MAX_PACKET];
        // Before the peer sends: someone else's keys and audio, with the right payload
        // types, do not latch, press keys or fill the buffer.
        s.on_datagram(t, sprayer, &rtp(0, 1, 160, &[0xff; 160]));
        s.on_datagram(t, sprayer, &rtp(101, 2, 320, &[1, 0x8a, 1, 64]));
        s.play(1, Clip::from_pcm(vec![0i16; 320].into()));
        assert_eq!(
            s.tick(t, &mut buf).map(|(_, to)| to),
            Some(neg(Law::Ulaw).remote),
            "prompts go to the SDP address, not to the sprayer"
        );
        // The peer, from another port of its SDP address (NAT), latches.
        s.on_datagram(t, peer, &rtp(0, 10, 1600, &[0xff; 160]));
        assert_eq!(s.tick(t + 20 * MS, &mut buf).map(|(_, to)| to), Some(peer));
        // Another port of the same address while the peer is live: dropped.
        let other_port: SocketAddr = "127.0.0.1:7100".parse().expect("addr");
        for i in 1..=40u32 {
            let at = t + i * 20 * MS;
            s.on_datagram(
                at,
                peer,
                &rtp(0, 10 + i as u16, 1600 + i * 160, &[0xff; 160]),
            );
            s.on_datagram(at, sprayer, &rtp(101, 3, 480, &[9, 0x8a, 1, 64]));
            s.on_datagram(at, other_port, &rtp(0, 3, 480, &[0; 160]));
        }
        assert_eq!(
            events(&mut s),
            [SessionEvent::PlayDone(1)],
            "no key from anyone else"
        );
        assert_eq!((s.counters.rx_packets, s.counters.rx_foreign), (41, 82));
        // The peer hangs up silently; the sprayer goes on: it keeps no dead call alive.
        for i in 41..=120u32 {
            s.on_datagram(t + i * 20 * MS, sprayer, &rtp(0, 3, 480, &[0; 160]));
        }
        s.tick(t + 2400 * MS, &mut buf);
        assert_eq!(events(&mut s), [SessionEvent::Timeout]);

        // The peer's phone moved to a new port (from its signalling address) after its old
        // source fell silent: it takes over.
        let moved: SocketAddr = "127.0.0.2:9000".parse().expect("addr");
        s.on_datagram(t + 2400 * MS, moved, &rtp(0, 60, 16000, &[0xff; 160]));
        s.play(2, Clip::from_pcm(vec![0i16; 160].into()));
        assert_eq!(
            s.tick(t + 2420 * MS, &mut buf).map(|(_, to)| to),
            Some(moved)
        );
        assert_eq!(s.counters.rx_packets, 42);
    }

    #[test]
    fn an_srtp_leg_is_heard_only_through_its_keys() {
        use crate::media::sdp::SrtpKeys;
        use crate::media::srtp::Suite;
        let t = Instant::now();
        let keys = SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            ours: [1; 30],
            theirs: [2; 30],
        };
        let secure = |srtp| Negotiated {
            srtp: Some(srtp),
            ..neg(Law::Ulaw)
        };
        // The peer is a session with the keys the other way round.
        let mut ours = MediaSession::new(t, secure(keys), SIP, 30_000 * MS, 40 * MS);
        let mirrored = SrtpKeys {
            ours: keys.theirs,
            theirs: keys.ours,
            ..keys
        };
        let mut peer = MediaSession::new(t, secure(mirrored), SIP, 30_000 * MS, 40 * MS);
        let peer_addr: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        let mut buf = [0u8; MAX_PACKET];
        peer.play(1, Clip::from_pcm(vec![1000i16; 480].into()));
        for i in 0..3 {
            let (n, _) = peer.tick(t + i * 20 * MS, &mut buf).expect("sent");
            assert_eq!(n, HEADER_LEN + FRAME_SAMPLES + 10, "with its tag");
            assert_ne!(buf[HEADER_LEN..HEADER_LEN + 4], [Law::Ulaw.encode(1000); 4]);
            if i == 1 {
                let mut forged = buf[..n].to_vec();
                forged[20] ^= 0x40;
                ours.on_datagram(t, peer_addr, &forged);
            }
            ours.on_datagram(t + i * 20 * MS, peer_addr, &buf[..n]);
        }
        // A plain RTP packet from the peer's address is not audio on an SRTP leg.
        ours.on_datagram(t, peer_addr, &rtp(0, 9, 1440, &[0xff; 160]));
        assert_eq!(ours.counters.rx_packets, 3);
        assert_eq!(
            ours.counters.rx_ignored, 2,
            "the forged and the plain packet"
        );
        let frame = ours.poll_frame(t + 100 * MS).expect("a frame");
        assert_eq!(
            frame.payload()[..4],
            [Law::Ulaw.encode(1000); 4],
            "decrypted"
        );
    }

    #[test]
    fn silence_from_the_peer_times_out_once_but_not_on_hold() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 1000 * MS, 60 * MS);
        let mut buf = [0u8; MAX_PACKET];
        s.tick(t + 1000 * MS, &mut buf);
        assert!(events(&mut s).is_empty());
        s.tick(t + 1001 * MS, &mut buf);
        s.tick(t + 2000 * MS, &mut buf);
        assert_eq!(events(&mut s), [SessionEvent::Timeout]);

        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 1000 * MS, 60 * MS);
        let mut held = neg(Law::Ulaw);
        held.direction = Direction::Inactive;
        s.update(t, held);
        s.play(1, Clip::from_pcm(vec![0i16; 160].into()));
        assert_eq!(
            s.tick(t + 5000 * MS, &mut buf),
            None,
            "nothing is sent to an inactive stream"
        );
        assert!(events(&mut s).iter().all(|e| *e != SessionEvent::Timeout));
    }

    #[test]
    fn a_g722_leg_sends_its_prompts_in_g722_and_decodes_what_it_receives_in_order() {
        let t = Instant::now();
        let wide = Negotiated {
            codec: Codec::G722,
            ..neg(Law::Ulaw)
        };
        let mut ours = MediaSession::new(t, wide, SIP, 30_000 * MS, 40 * MS);
        let mut peer = MediaSession::new(t, wide, SIP, 30_000 * MS, 40 * MS);
        // A 1 kHz prompt recorded at 8 kHz.
        let tone: Vec<i16> = (0..8000)
            .map(|i| (8000.0 * (std::f64::consts::PI * i as f64 / 4.0).sin()) as i16)
            .collect();
        ours.play(1, Clip::from_pcm(tone.clone().into()));
        let mut buf = [0u8; MAX_PACKET];
        let peer_addr: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        let (mut narrow, mut wideband, mut heard) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..50u32 {
            let (n, _) = ours.tick(t + i * 20 * MS, &mut buf).expect("sent");
            let p = Packet::parse(&buf[..n]).expect("rtp");
            assert_eq!((p.payload_type, p.payload.len()), (9, FRAME_SAMPLES));
            peer.on_datagram(t + i * 20 * MS, peer_addr, &buf[..n]);
            while let Some(f) = peer.poll_frame(t + i * 20 * MS) {
                peer.decode(f.payload(), &mut narrow, &mut wideband);
                assert_eq!((narrow.len(), wideband.len()), (160, 320));
                heard.extend_from_slice(&narrow);
            }
        }
        assert!(heard.len() >= 40 * FRAME_SAMPLES, "{} samples", heard.len());
        // The tone, delayed a little by the resamplers and the QMFs.
        let best = (0..64)
            .map(|lag| {
                let (mut dot, mut a, mut b) = (0f64, 0f64, 0f64);
                for i in 800..4800 {
                    let (x, y) = (tone[i] as f64, heard[i + lag] as f64);
                    dot += x * y;
                    a += x * x;
                    b += y * y;
                }
                dot / (a * b).sqrt()
            })
            .fold(f64::MIN, f64::max);
        assert!(best > 0.95, "correlation {best:.3}");
    }

    #[test]
    fn a_codec_change_drops_what_was_received_in_the_old_codec() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 30_000 * MS, 60 * MS);
        let peer: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        for i in 0..3u16 {
            s.on_datagram(t, peer, &rtp(0, i, 160 * i as u32, &[0x80; 160]));
        }
        s.update(
            t,
            Negotiated {
                codec: Codec::G722,
                ..neg(Law::Ulaw)
            },
        );
        assert!(s.poll_frame(t + 100 * MS).is_none(), "µ-law is not G.722");
        s.on_datagram(t, peer, &rtp(9, 3, 480, &[0x80; 160]));
        s.on_datagram(t, peer, &rtp(0, 4, 640, &[0x80; 160]));
        assert_eq!(s.poll_frame(t + 100 * MS).map(|f| f.timestamp), Some(480));
        assert!(s.poll_frame(t + 100 * MS).is_none());
        assert_eq!(s.counters.rx_ignored, 1, "the old payload type now");
    }

    #[test]
    fn relayed_audio_goes_before_prompts() {
        let t = Instant::now();
        let mut s = MediaSession::new(t, neg(Law::Ulaw), SIP, 30_000 * MS, 60 * MS);
        s.play(1, Clip::from_pcm(vec![0i16; 1600].into()));
        s.relay(Audio::new(&[1000; FRAME_SAMPLES], &[]));
        let mut buf = [0u8; MAX_PACKET];
        let (n, _) = s.tick(t, &mut buf).expect("sends");
        assert_eq!(
            Packet::parse(&buf[..n]).expect("rtp").payload[0],
            Law::Ulaw.encode(1000)
        );
    }
}
