//! Cutting a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3). Owns
//! only the bytes received and not yet framed; knows nothing of sockets. Linear in the
//! bytes received however they are cut: the search for the end of a header block resumes
//! where the last one stopped, and once the header block is read only the body's length
//! is awaited (a message trickled a byte at a time used to be searched from its start
//! after every byte).

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
    /// How much of `buf` has been searched for the end of the header block.
    searched: usize,
    /// The size of the message at the front once its header block is read.
    expected: Option<usize>,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether bytes of a message not yet complete are held (line ends alone, such as a
    /// single-CRLF keep-alive, are not a message).
    pub fn is_mid_message(&self) -> bool {
        self.buf.iter().any(|&b| b != b'\r' && b != b'\n')
    }

    /// The next frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if let Some(total) = self.expected {
            if self.buf.len() < total {
                return None;
            }
            self.expected = None;
            return Some(Frame::Message(self.buf.split_to(total).freeze()));
        }
        if self.searched == 0 {
            return self.start_of_message();
        }
        self.header_block()
    }

    /// Between messages: a ping, or line ends before the next message.
    fn start_of_message(&mut self) -> Option<Frame> {
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
        self.header_block()
    }

    /// Looks for the end of the header block in what was not searched yet (less the three
    /// bytes that may begin it), then for the whole message.
    fn header_block(&mut self) -> Option<Frame> {
        let from = self.searched.saturating_sub(3);
        let Some(found) = find(&self.buf[from..], b"\r\n\r\n") else {
            self.searched = self.buf.len();
            return (self.buf.len() > MAX_MESSAGE).then(|| self.broken());
        };
        let head_end = from + found;
        self.searched = 0;
        let Some(length) = content_length(&self.buf[..head_end]) else {
            return Some(self.broken());
        };
        let total = head_end + 4 + length;
        if total > MAX_MESSAGE {
            return Some(self.broken());
        }
        if self.buf.len() < total {
            self.expected = Some(total);
            return None;
        }
        Some(Frame::Message(self.buf.split_to(total).freeze()))
    }

    fn broken(&mut self) -> Frame {
        self.searched = 0;
        self.expected = None;
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
    fn a_stream_trickled_a_byte_at_a_time_is_searched_once() {
        // Large messages (a 40 KB body), one byte per read: every byte is looked at a
        // bounded number of times, so the framer's buffer scans stay linear.
        let body = vec![b'x'; 40_000];
        let mut msg = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        msg.extend_from_slice(&vec![b'y'; 20_000]);
        msg.extend_from_slice(b"\r\n\r\n");
        let head = msg.len();
        msg.extend_from_slice(&body);
        let stream = [msg.clone(), msg.clone()].concat();
        let mut f = StreamFramer::new();
        let mut frames = 0;
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(frame) = f.next_frame() {
                assert_eq!(frame, Frame::Message(Bytes::from(msg.clone())));
                frames += 1;
            }
            // Nothing is searched twice: within a header block, everything that arrived is
            // marked searched; after it, only the length is awaited.
            let at = f.buf.len();
            if at > 0 && at < head {
                assert_eq!(f.searched, at, "header block, {at} bytes in");
            } else if at > head {
                assert_eq!(f.expected, Some(msg.len()), "body, {at} bytes in");
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn only_unfinished_message_bytes_count_as_mid_message() {
        let mut f = StreamFramer::new();
        assert!(!f.is_mid_message());
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), None);
        assert!(!f.is_mid_message(), "a lone CRLF keep-alive is no message");
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame(), None);
        assert!(f.is_mid_message());
        f.push(&MSG[10..]);
        assert!(matches!(f.next_frame(), Some(Frame::Message(_))));
        assert!(!f.is_mid_message());
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
