//! Any bytes as an SDP offer: parsed or refused, then answered or refused, never a panic;
//! the audio never goes to an address outside the call's reach.
#![no_main]

use std::sync::Arc;

use hotline::media::g711::Law;
use hotline::media::sdp::{Reach, RemoteMedia};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = RemoteMedia::parse(data) else {
        return;
    };
    let reach = Reach {
        local: "127.0.0.1".parse().expect("an address"),
        peer: "10.0.0.1".parse().expect("an address"),
        networks: Arc::from(Vec::new()),
    };
    if let Ok(n) = offer.negotiate(&[Law::Ulaw, Law::Alaw], &reach) {
        let ip = n.remote.ip();
        assert!(ip.is_unspecified() || reach.allows(ip));
    }
});
