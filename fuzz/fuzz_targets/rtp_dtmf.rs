//! Any datagram on an RTP port: parsed as RTP or refused, its payload fed to the RFC 4733
//! key receiver; never a panic.
#![no_main]

use hotline::media::dtmf::DtmfReceiver;
use hotline::media::rtp::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut keys = DtmfReceiver::default();
    for datagram in data.split(|&b| b == 0xff) {
        if let Ok(packet) = Packet::parse(datagram) {
            let _ = keys.on_packet(packet.timestamp, packet.payload);
        }
    }
});
