//! Cutting a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3). Owns
//! only the bytes received and not yet framed; knows nothing of sockets.

use bytes::{Buf, Bytes, BytesMut};

use super::headers;
use super::parse::{MAX_MESSAGE, find};

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message, ready for `parse::parse(.., Transport::Tcp)`.
    Message(Bytes),
    /// A CRLF keep-alive ping (RFC 5626 4.4.1): answer with a single CRLF.
    Ping,
    /// The stream cannot be framed any further (no or bad Content-Length, or too large).
    /// The bytes seen so far are given so a 400 can be attempted; then close the stream.
    Broken(Bytes),
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.advance(4);
            return Some(Frame::Ping);
        }
        let blank = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank > 0 && blank < self.buf.len() {
            self.buf.advance(blank);
        } else if blank == self.buf.len() {
            // Only line ends so far: maybe the start of a ping; wait for more.
            return None;
        }
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            return (self.buf.len() > MAX_MESSAGE).then(|| self.broken());
        };
        let Some(length) = content_length(&self.buf[..head_end]) else {
            return Some(self.broken());
        };
        let total = head_end + 4 + length;
        if total > MAX_MESSAGE {
            return Some(self.broken());
        }
        if self.buf.len() < total {
            return None;
        }
        Some(Frame::Message(self.buf.split_to(total).freeze()))
    }

    fn broken(&mut self) -> Frame {
        Frame::Broken(std::mem::take(&mut self.buf).freeze())
    }
}

/// The Content-Length of a header block: absent means 0; several, or not a number, is
/// unframeable.
fn content_length(head: &[u8]) -> Option<usize> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if headers::known_name(name.trim()) == Some("Content-Length") {
            let n = headers::parse_u32(value.trim())? as usize;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    Some(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nabcd";

    #[test]
    fn frames_messages_split_anywhere_and_back_to_back() {
        let mut stream = MSG.to_vec();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(MSG);
        for cut in 0..stream.len() {
            let mut f = StreamFramer::new();
            let mut frames = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                f.push(part);
                while let Some(frame) = f.next_frame() {
                    frames.push(frame);
                }
            }
            assert_eq!(
                frames,
                vec![
                    Frame::Message(Bytes::from_static(MSG)),
                    Frame::Ping,
                    Frame::Message(Bytes::from_static(MSG)),
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn unframeable_streams_are_reported_broken() {
        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n");
        assert!(matches!(f.next_frame(), Some(Frame::Broken(_))));

        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nX: ");
        f.push(&vec![b'a'; MAX_MESSAGE]);
        assert!(matches!(f.next_frame(), Some(Frame::Broken(_))));
        assert_eq!(f.next_frame(), None);
    }

    #[test]
    fn a_message_waits_for_its_whole_body() {
        let mut f = StreamFramer::new();
        f.push(&MSG[..MSG.len() - 1]);
        assert_eq!(f.next_frame(), None);
        f.push(&MSG[MSG.len() - 1..]);
        assert_eq!(
            f.next_frame(),
            Some(Frame::Message(Bytes::from_static(MSG)))
        );
    }
}
