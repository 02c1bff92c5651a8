//! RTP packets (RFC 3550) through the `rtp` crate's header codec: reading a received
//! packet without allocating, and an outgoing stream's sequence numbers, timestamps and
//! marker bits.

use rtp::header::Header;
use webrtc_util::marshal::Marshal;

/// RTP header size without CSRCs or extensions (what we send).
pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("not an RTP packet (too short, or not version 2)")]
    NotRtp,
    #[error("padding longer than the payload")]
    BadPadding,
}

/// Where a packet's payload starts: after the fixed header, the CSRCs and any header
/// extension, each skipped by its length (SRTP encrypts from there on).
pub fn payload_offset(datagram: &[u8]) -> Result<usize, RtpError> {
    let fixed = datagram.get(..HEADER_LEN).ok_or(RtpError::NotRtp)?;
    if fixed[0] >> 6 != 2 {
        return Err(RtpError::NotRtp);
    }
    let mut start = HEADER_LEN + 4 * usize::from(fixed[0] & 0x0f);
    if fixed[0] & 0x10 != 0 {
        let ext = datagram.get(start..start + 4).ok_or(RtpError::NotRtp)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if start > datagram.len() {
        return Err(RtpError::NotRtp);
    }
    Ok(start)
}

/// A received packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Reads the fixed header, skips CSRCs and any header extension by their lengths, and
    /// strips padding. Read by hand: the `rtp` crate's reader panics on a header extension
    /// whose elements claim more bytes than the datagram holds (found by fuzzing: one such
    /// datagram to an RTP port stopped a media worker and every call on it).
    pub fn parse(datagram: &'a [u8]) -> Result<Packet<'a>, RtpError> {
        let start = payload_offset(datagram)?;
        let fixed = &datagram[..HEADER_LEN];
        let mut end = datagram.len();
        if fixed[0] & 0x20 != 0 {
            let pad = *datagram.last().ok_or(RtpError::BadPadding)? as usize;
            end = end
                .checked_sub(pad)
                .filter(|&e| e >= start)
                .ok_or(RtpError::BadPadding)?;
        }
        let word =
            |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        Ok(Packet {
            payload_type: fixed[1] & 0x7f,
            marker: fixed[1] & 0x80 != 0,
            seq: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: word(4),
            ssrc: word(8),
            payload: &datagram[start..end],
        })
    }
}

/// The state of one outgoing RTP stream.
#[derive(Debug, Clone)]
pub struct Sender {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// The next packet starts a talkspurt (first packet, or after a silence we did not send).
    talkspurt: bool,
}

impl Sender {
    /// RFC 3550 5.1: the SSRC, first sequence number and first timestamp are random.
    pub fn new(ssrc: u32, seq: u16, timestamp: u32) -> Sender {
        Sender {
            ssrc,
            seq,
            timestamp,
            talkspurt: true,
        }
    }

    pub fn random() -> Sender {
        Sender::new(rand::random(), rand::random(), rand::random())
    }

    /// Writes one packet carrying `samples` samples' worth of `payload` into `buf`
    /// (which must hold `HEADER_LEN + payload.len()`), and returns its length.
    pub fn write(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        samples: u32,
        buf: &mut [u8],
    ) -> usize {
        let len = self.write_at(payload_type, self.timestamp, self.talkspurt, payload, buf);
        self.talkspurt = false;
        self.timestamp = self.timestamp.wrapping_add(samples);
        len
    }

    /// Writes a packet with an explicit timestamp and marker (RFC 4733 events keep the
    /// timestamp of the event's start across its packets).
    pub fn write_at(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        buf: &mut [u8],
    ) -> usize {
        let header = Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: self.seq,
            timestamp,
            ssrc: self.ssrc,
            ..Header::default()
        };
        // A fixed 12-byte header always fits the caller's buffer.
        let n = header.marshal_to(buf).unwrap_or(HEADER_LEN);
        buf[n..n + payload.len()].copy_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        n + payload.len()
    }

    /// Time passes without sending (silence, hold): the clock runs on and the next packet
    /// starts a talkspurt with the marker bit.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt = true;
    }

    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_timestamps_and_markers_follow_rfc_3550() {
        let mut s = Sender::new(0x1234_5678, u16::MAX, u32::MAX - 100);
        let mut buf = [0u8; 200];
        let payload = [0xffu8; 160];
        let mut seen = Vec::new();
        for i in 0..4 {
            if i == 2 {
                s.skip(160);
            }
            let n = s.write(0, &payload, 160, &mut buf);
            let p = Packet::parse(&buf[..n]).expect("our packet parses");
            assert_eq!(p.payload, &payload[..]);
            assert_eq!(p.ssrc, 0x1234_5678);
            seen.push((p.seq, p.timestamp, p.marker));
        }
        assert_eq!(
            seen,
            [
                (u16::MAX, u32::MAX - 100, true),
                (0, 59, false),
                (1, 379, true),
                (2, 539, false),
            ]
        );
    }

    #[test]
    fn padding_csrcs_and_garbage() {
        // V=2, P=1, CC=1, PT=8, then CSRC, 3 payload bytes and 2 padding bytes.
        let mut d = vec![0xa1, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
        d.extend_from_slice(&[7, 8, 9, 0, 2]);
        let p = Packet::parse(&d).expect("valid");
        assert_eq!(p.payload, &[7, 8, 9]);
        assert_eq!(p.payload_type, 8);
        d.truncate(12);
        d[0] = 0xa0;
        d.push(200);
        assert_eq!(Packet::parse(&d), Err(RtpError::BadPadding));
        assert_eq!(Packet::parse(&[1, 2, 3]), Err(RtpError::NotRtp));
        assert_eq!(
            Packet::parse(&[0x40; 12]),
            Err(RtpError::NotRtp),
            "version 1"
        );
    }

    /// Found by fuzzing: a one-byte header extension (RFC 8285) whose element claims 16
    /// bytes at the end of the datagram made the `rtp` crate's reader panic.
    #[test]
    fn a_header_extension_that_overruns_the_datagram_is_no_panic() {
        let mut d = vec![0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        d.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x1f, 1, 2, 3]);
        let p = Packet::parse(&d).expect("a header with an extension and no payload");
        assert!(p.payload.is_empty());
        d.extend_from_slice(&[9, 9]);
        assert_eq!(Packet::parse(&d).expect("valid").payload, &[9, 9]);
        d[15] = 200;
        assert_eq!(
            Packet::parse(&d),
            Err(RtpError::NotRtp),
            "an extension past the end"
        );
    }
}
