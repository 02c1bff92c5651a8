//! Sequences of messages and time through the RFC 3261 transaction layer: the input is cut
//! at NUL bytes into datagrams, each followed by a jump of time taken from its first byte.
//! Whatever the peer sends, the layer never panics and its timers stay in the future.
#![no_main]

use std::time::{Duration, Instant};

use hotline::sip::parse::parse;
use hotline::sip::transaction::{Peer, Transactions};
use hotline::sip::{Timers, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut tx = Transactions::new(Timers::default());
    let peer = Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().expect("an address"),
        conn: None,
    };
    for datagram in data.split(|&b| b == 0) {
        let jump = datagram.first().copied().unwrap_or(0);
        if let Ok(msg) = parse(datagram, Transport::Udp) {
            tx.handle_message(now, peer, msg);
        }
        now += Duration::from_millis(u64::from(jump) * 100);
        while let Some(at) = tx.poll_timeout().filter(|at| *at <= now) {
            tx.handle_timeout(at);
        }
        while tx.poll_transmit().is_some() {}
        while tx.poll_event().is_some() {}
        assert!(tx.poll_timeout().is_none_or(|at| at > now));
    }
});
