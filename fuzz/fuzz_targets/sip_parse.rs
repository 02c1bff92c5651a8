//! Any bytes through the SIP parser as a UDP datagram and as a framed TCP message: a
//! message, a reject with the echo for its answer, or a counted drop; never a panic. A
//! parsed message must encode and parse again.
#![no_main]

use hotline::sip::Transport;
use hotline::sip::build::encode;
use hotline::sip::parse::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Ok(msg) = parse(data, transport) {
            let again = encode(&msg);
            let _ = parse(&again, transport);
        }
    }
});
