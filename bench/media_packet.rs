//! Media benchmark: the work per RTP packet of a call leg, and the allocations it makes.
//!
//! - `media/leg_tick`: 1,000 legs each take one 20 ms tick: a received packet is parsed,
//!   put through the jitter buffer, taken out and decoded from G.711, and the next 20 ms
//!   of a shared prompt is written into an RTP packet to send (the sans-IO part of what a
//!   media worker does per leg per tick; the sockets are the worker's).
//! - `media/leg_tick_srtp`: the same with SRTP (AES_CM_128_HMAC_SHA1_80) both ways: each
//!   received packet is authenticated and decrypted, each sent one encrypted and tagged.
//!   The timing also holds the peer's encryption of the packet the leg receives (the
//!   peer's work, not the engine's): it overstates the leg's cost by one `protect`.
//! - `media/leg_tick_g722`: `leg_tick` on G.722 legs: each received payload is decoded to
//!   16 kHz and filtered down to 8 kHz, and each sent one is the prompt's 8 kHz audio
//!   upsampled and encoded (G.711 copies the prompt's encoding made once).
//! - `media/udp_baseline`: one 172-byte packet sent and received on loopback, the two
//!   system calls a leg's tick costs the worker anyway, measured in the same run so the
//!   figure is a ratio rather than a time on a shared machine.
//! - Allocations: a counting global allocator counts the allocations made over 500 ticks
//!   of 1,000 legs once they are under way (the goal, DESIGN.md: none per packet).
//!
//! Run: `cargo bench --bench media_packet`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use hotline::media::clip::Clip;
use hotline::media::codec::{Codec, FRAME_SAMPLES};
use hotline::media::rtp::Sender;
use hotline::media::sdp::{Direction, Negotiated, SrtpKeys};
use hotline::media::session::{MAX_PACKET, MediaSession};
use hotline::media::srtp::{SrtpStream, Suite};

/// Counts allocation calls (not bytes): a steady call should make none.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the system allocator handles the move.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const LEGS: usize = 1000;
/// An SRTP leg's keys (the peer's stream uses `theirs`).
const KEYS: SrtpKeys = SrtpKeys {
    suite: Suite::AesCm128HmacSha1_80,
    ours: [1; 30],
    theirs: [2; 30],
};
const TICK: Duration = Duration::from_millis(20);

/// One leg and the peer that sends it audio (encrypted, for an SRTP leg).
struct Leg {
    session: MediaSession,
    peer: Sender,
    peer_srtp: Option<SrtpStream>,
    from: SocketAddr,
}

struct Media {
    legs: Vec<Leg>,
    now: Instant,
    incoming: Vec<u8>,
    outgoing: [u8; MAX_PACKET],
    pcm: Vec<i16>,
    wide: Vec<i16>,
    codec: Codec,
    sent: usize,
}

impl Media {
    fn new(codec: Codec, srtp: bool) -> Media {
        let now = Instant::now();
        // A 60 s prompt (a 440 Hz tone), shared by every leg as the engine shares prompts.
        let pcm: Vec<i16> = (0..60 * 8000)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect();
        let clip = Clip::from_pcm(pcm.into());
        let legs = (0..LEGS)
            .map(|i| {
                let from: SocketAddr = format!("127.0.0.1:{}", 20_000 + 2 * i).parse().unwrap();
                let neg = Negotiated {
                    codec,
                    dtmf_pt: Some(101),
                    remote: from,
                    redirected_from: None,
                    direction: Direction::SendRecv,
                    srtp: srtp.then_some(KEYS),
                };
                let (timeout, jitter) = (Duration::from_secs(30), Duration::from_millis(60));
                let mut session = MediaSession::new(now, neg, from.ip(), timeout, jitter);
                session.play(1, clip.clone());
                Leg {
                    session,
                    peer: Sender::new(i as u32, 0, 0),
                    peer_srtp: srtp.then(|| SrtpStream::new(KEYS.suite, &KEYS.theirs)),
                    from,
                }
            })
            .collect();
        Media {
            legs,
            now,
            incoming: vec![0; MAX_PACKET],
            outgoing: [0; MAX_PACKET],
            pcm: Vec::with_capacity(FRAME_SAMPLES),
            wide: Vec::with_capacity(2 * FRAME_SAMPLES),
            codec,
            sent: 0,
        }
    }

    /// One 20 ms tick of every leg.
    fn tick(&mut self) {
        self.now += TICK;
        let payload = [0x55u8; FRAME_SAMPLES];
        for leg in &mut self.legs {
            let mut n = leg.peer.write(
                self.codec.payload_type(),
                &payload,
                FRAME_SAMPLES as u32,
                &mut self.incoming,
            );
            if let Some(srtp) = &mut leg.peer_srtp {
                n = srtp.protect(&mut self.incoming, n).expect("protected");
            }
            leg.session
                .on_datagram(self.now, leg.from, &self.incoming[..n]);
            while let Some(frame) = leg.session.poll_frame(self.now) {
                leg.session
                    .decode(frame.payload(), &mut self.pcm, &mut self.wide);
                black_box(&self.pcm);
            }
            if let Some((n, to)) = leg.session.tick(self.now, &mut self.outgoing) {
                self.sent += n;
                black_box((&self.outgoing[..n], to));
            }
            while let Some(ev) = leg.session.poll_event() {
                black_box(ev);
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut media = Media::new(Codec::PCMU, false);
    // Under way: the jitter buffers have filled and every queue has its capacity.
    for _ in 0..50 {
        media.tick();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let ticks = 500;
    for _ in 0..ticks {
        media.tick();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let packets = ticks * LEGS * 2;
    println!(
        "media/allocations: {allocations} in {ticks} ticks of {LEGS} legs \
         ({packets} packets in and out): {:.4} per packet",
        allocations as f64 / packets as f64
    );

    let mut group = c.benchmark_group("media");
    let mut per_leg = |name: &str, media: &mut Media| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    media.tick();
                }
                // Per leg: one packet received and one sent.
                start.elapsed() / LEGS as u32
            })
        });
    };
    per_leg("leg_tick", &mut media);
    for (name, codec, srtp) in [
        ("leg_tick_srtp", Codec::PCMU, true),
        ("leg_tick_g722", Codec::G722, false),
    ] {
        let mut other = Media::new(codec, srtp);
        for _ in 0..50 {
            other.tick();
        }
        per_leg(name, &mut other);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = sink.local_addr().expect("addr");
    let packet = [0u8; MAX_PACKET];
    let mut received = [0u8; 2048];
    group.bench_function("udp_baseline", |b| {
        b.iter(|| {
            socket.send_to(black_box(&packet), to).expect("send");
            black_box(sink.recv(&mut received).expect("receive"));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
