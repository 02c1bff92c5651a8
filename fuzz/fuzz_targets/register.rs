//! Any bytes as the Authorization of a REGISTER (and as the whole request): the registrar
//! answers (challenge, refusal, 400) and never panics or registers anyone.
#![no_main]

use std::time::Instant;

use hotline::registrar::{Registrar, RegistrarConfig, Secret, Verdict};
use hotline::sip::Transport;
use hotline::sip::parse::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let users = vec![("1001".to_owned(), Secret::new("right"))];
    let Ok(mut registrar) = Registrar::new(&RegistrarConfig::default(), users, [7; 32], now)
    else {
        return;
    };
    let source = "10.0.0.5".parse().expect("an address");
    let authorization = String::from_utf8_lossy(data).replace(['\r', '\n'], " ");
    let text = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
From: <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: fuzz\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:1001@10.0.0.5>\r\nAuthorization: {authorization}\r\n\
Content-Length: 0\r\n\r\n"
    );
    for bytes in [text.as_bytes(), data] {
        if let Ok(rsip::SipMessage::Request(request)) = parse(bytes, Transport::Udp) {
            let reply = registrar.handle_request(now, source, &request);
            assert!(!matches!(reply.verdict, Verdict::Registered { .. }));
        }
    }
});
