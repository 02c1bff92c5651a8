//! A TCP byte stream cut anywhere: the framer yields messages, pings or a broken stream,
//! never panics, and never holds more than it was given.
#![no_main]

use hotline::sip::framing::{Frame, StreamFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let mut framer = StreamFramer::new();
    let mut framed = 0;
    for chunk in stream.chunks(step) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Message(bytes) | Frame::Broken(bytes) => framed += bytes.len(),
                Frame::Ping => framed += 4,
            }
        }
    }
    assert!(framed <= stream.len());
});
