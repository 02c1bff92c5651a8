//! SRTP (RFC 3711) for one direction of one audio stream, sans-IO: the AES-CM-128 suites
//! with HMAC-SHA1 tags of 80 or 32 bits that SDES (RFC 4568) negotiates, the session keys
//! derived from the master key and salt (key derivation rate 0), the rollover counter and
//! the receiver's replay window. A media session holds one for what it sends and one for
//! what it receives; SRTCP is not handled (the engine sends no RTCP, and drops what
//! arrives). Owns no socket and no clock.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use hmac::Mac;
use sha1::Sha1;

type HmacSha1 = hmac::Hmac<Sha1>;

use super::rtp::payload_offset;

/// Master key and master salt, as one SDES `inline:` value carries them.
pub const MASTER_LEN: usize = 30;
const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;
/// The longest tag a suite appends.
pub const MAX_TAG: usize = 10;
/// Replay window (RFC 3711 3.3.2 asks for at least 64).
const WINDOW: u64 = 64;

/// The crypto suites we take, by their SDES names (RFC 4568 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("not an SRTP packet")]
    NotRtp,
    #[error("authentication failed")]
    Auth,
    #[error("replayed or too old")]
    Replay,
    #[error("no room for the tag")]
    NoRoom,
}

/// One direction's SRTP state.
pub struct SrtpStream {
    suite: Suite,
    cipher: Aes128,
    salt: [u8; SALT_LEN],
    /// HMAC-SHA1 keyed with the session's authentication key, cloned per packet.
    auth: HmacSha1,
    window: Window,
}

/// Where one source's packets stand: RFC 3711 keeps this per SSRC, and a peer may change
/// SSRC under the same key (an SBC re-anchoring media, music on hold from a PBX).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    ssrc: Option<u32>,
    /// Rollover counter and highest sequence number seen (sent or authenticated).
    roc: u32,
    last_seq: Option<u16>,
    /// Received: the highest index authenticated and a bitmap of the 64 below it.
    highest: u64,
    seen: u64,
}

impl SrtpStream {
    /// A stream keyed by `master` (key then salt).
    pub fn new(suite: Suite, master: &[u8; MASTER_LEN]) -> SrtpStream {
        let (key, salt) = master.split_at(KEY_LEN);
        let prf = Aes128::new(GenericArray::from_slice(key));
        let mut session_key = [0u8; KEY_LEN];
        let mut auth_key = [0u8; 20];
        let mut session_salt = [0u8; SALT_LEN];
        derive(&prf, salt, 0x00, &mut session_key);
        derive(&prf, salt, 0x01, &mut auth_key);
        derive(&prf, salt, 0x02, &mut session_salt);
        SrtpStream {
            suite,
            cipher: Aes128::new(GenericArray::from_slice(&session_key)),
            salt: session_salt,
            auth: <HmacSha1 as hmac::KeyInit>::new_from_slice(&auth_key)
                .expect("HMAC takes a key of any length"),
            window: Window::default(),
        }
    }

    /// Encrypts the RTP packet in `buf[..len]` in place and appends its tag: the SRTP
    /// packet's length. `buf` must hold `len + MAX_TAG` bytes.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let start = payload_offset(&buf[..len]).map_err(|_| SrtpError::NotRtp)?;
        let n = self.suite.tag_len();
        if buf.len() < len + n {
            return Err(SrtpError::NoRoom);
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let w = &mut self.window;
        // A sequence number far below the last one sent wrapped around.
        if let Some(last) = w.last_seq
            && seq < last
            && last - seq > 0x8000
        {
            w.roc = w.roc.wrapping_add(1);
        }
        w.last_seq = Some(seq);
        let roc = w.roc;
        let index = (u64::from(roc) << 16) | u64::from(seq);
        self.apply_keystream(ssrc(buf), index, &mut buf[start..len]);
        let tag = self.tag(&buf[..len], roc);
        buf[len..len + n].copy_from_slice(&tag[..n]);
        Ok(len + n)
    }

    /// Checks and decrypts the SRTP packet in `buf` in place: the RTP packet's length. A
    /// forged, corrupted or replayed packet changes nothing.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let n = self.suite.tag_len();
        let len = buf.len().checked_sub(n).ok_or(SrtpError::NotRtp)?;
        let start = payload_offset(&buf[..len]).map_err(|_| SrtpError::NotRtp)?;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let source = ssrc(buf);
        // A new source starts a count of its own, kept only once a packet authenticates.
        let mut w = match self.window.ssrc {
            Some(s) if s == source => self.window,
            _ => Window {
                ssrc: Some(source),
                ..Window::default()
            },
        };
        let roc = w.estimate_roc(seq);
        let index = (u64::from(roc) << 16) | u64::from(seq);
        if w.replayed(index) {
            return Err(SrtpError::Replay);
        }
        let tag = self.tag(&buf[..len], roc);
        // Compared in constant time: a forger must not learn how much of a tag was right.
        let diff = tag[..n]
            .iter()
            .zip(&buf[len..])
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(SrtpError::Auth);
        }
        w.accept(index, roc, seq);
        self.window = w;
        self.apply_keystream(source, index, &mut buf[start..len]);
        Ok(len)
    }

    /// XORs `data` with the AES-CM keystream of packet `index` of `ssrc` (RFC 3711 4.1.1).
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        keystream_xor(&self.cipher, iv, data);
    }

    /// HMAC-SHA1 over the packet and the rollover counter (RFC 3711 4.2).
    fn tag(&self, packet: &[u8], roc: u32) -> [u8; 20] {
        let mut mac = self.auth.clone();
        mac.update(packet);
        mac.update(&roc.to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl Window {
    /// RFC 3711 3.3.1: the rollover counter the sender most likely used for `seq`.
    fn estimate_roc(&self, seq: u16) -> u32 {
        let Some(last) = self.last_seq else {
            return self.roc;
        };
        if last < 0x8000 {
            if seq > last && seq - last > 0x8000 {
                return self.roc.wrapping_sub(1);
            }
        } else if last - 0x8000 > seq {
            return self.roc.wrapping_add(1);
        }
        self.roc
    }

    fn replayed(&self, index: u64) -> bool {
        if self.last_seq.is_none() || index > self.highest {
            return false;
        }
        let behind = self.highest - index;
        behind >= WINDOW || self.seen & (1 << behind) != 0
    }

    /// Records an authenticated packet: the window, and the rollover counter when it led.
    fn accept(&mut self, index: u64, roc: u32, seq: u16) {
        if self.last_seq.is_none() || index > self.highest {
            let ahead = index - self.highest.min(index);
            self.seen = if self.last_seq.is_none() || ahead >= WINDOW {
                1
            } else {
                (self.seen << ahead) | 1
            };
            self.highest = index;
            self.roc = roc;
            self.last_seq = Some(seq);
        } else {
            self.seen |= 1 << (self.highest - index);
        }
    }
}

fn ssrc(packet: &[u8]) -> u32 {
    u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]])
}

/// The session key of `label` (RFC 3711 4.3.1 with a key derivation rate of 0): the
/// AES-CM keystream of the master key from the master salt with the label at octet 7.
fn derive(prf: &Aes128, master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    keystream_xor(prf, iv, out);
}

/// Counter mode: block `j` of the keystream is AES of `iv` plus `j` in its last 16 bits.
fn keystream_xor(cipher: &Aes128, iv: [u8; 16], data: &mut [u8]) {
    let base = u16::from_be_bytes([iv[14], iv[15]]);
    for (j, chunk) in data.chunks_mut(16).enumerate() {
        let mut block = GenericArray::from(iv);
        block[14..].copy_from_slice(&base.wrapping_add(j as u16).to_be_bytes());
        cipher.encrypt_block(&mut block);
        for (d, k) in chunk.iter_mut().zip(block.iter()) {
            *d ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn session_keys_derive_as_rfc_3711_b3_lists_them() {
        let prf = Aes128::new(GenericArray::from_slice(&hex(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
        )));
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        let mut key = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut session_salt = [0u8; 14];
        derive(&prf, &salt, 0, &mut key);
        derive(&prf, &salt, 1, &mut auth);
        derive(&prf, &salt, 2, &mut session_salt);
        assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
        assert_eq!(session_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    #[test]
    fn the_keystream_is_rfc_3711_b2s() {
        let cipher = Aes128::new(GenericArray::from_slice(&hex(
            "2B7E151628AED2A6ABF7158809CF4F3C",
        )));
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        let mut stream = [0u8; 32];
        keystream_xor(&cipher, iv, &mut stream);
        assert_eq!(
            stream[..16].to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4")
        );
        assert_eq!(
            stream[16..].to_vec(),
            hex("D23513162B02D0F72A43A2FE4A5F97AB")
        );
    }

    fn packet(seq: u16, fill: u8) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend([fill; 160]);
        p
    }

    fn protect(tx: &mut SrtpStream, seq: u16) -> Vec<u8> {
        let plain = packet(seq, seq as u8);
        let mut buf = plain.clone();
        buf.resize(plain.len() + MAX_TAG, 0);
        let n = tx.protect(&mut buf, plain.len()).expect("protected");
        buf.truncate(n);
        buf
    }

    #[test]
    fn what_one_side_protects_the_other_reads_and_nothing_else() {
        let master: [u8; MASTER_LEN] = std::array::from_fn(|i| i as u8);
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpStream::new(suite, &master);
            let mut rx = SrtpStream::new(suite, &master);
            let mut sent = protect(&mut tx, 7);
            assert_eq!(sent.len(), 172 + suite.tag_len());
            assert_ne!(
                sent[12..172],
                packet(7, 7)[12..],
                "the payload is encrypted"
            );
            let mut forged = sent.clone();
            forged[40] ^= 1;
            assert_eq!(rx.unprotect(&mut forged), Err(SrtpError::Auth));
            let mut copy = sent.clone();
            assert_eq!(rx.unprotect(&mut sent), Ok(172));
            assert_eq!(sent[..172], packet(7, 7));
            assert_eq!(rx.unprotect(&mut copy), Err(SrtpError::Replay));
            let mut other = SrtpStream::new(suite, &[9; MASTER_LEN]);
            let mut wrong_key = protect(&mut tx, 8);
            assert_eq!(other.unprotect(&mut wrong_key), Err(SrtpError::Auth));
        }
    }

    #[test]
    fn the_rollover_counter_follows_the_sequence_through_wraps_and_reordering() {
        let master = [3u8; MASTER_LEN];
        let suite = Suite::AesCm128HmacSha1_80;
        let mut tx = SrtpStream::new(suite, &master);
        let mut rx = SrtpStream::new(suite, &master);
        let sent: Vec<Vec<u8>> = (65_530..=65_535)
            .chain(0..6)
            .map(|seq| protect(&mut tx, seq))
            .collect();
        // Delivered out of order across the wrap: 65534 after 0 and 1.
        let order = [0, 1, 2, 3, 6, 7, 4, 5, 8, 9, 10, 11];
        for i in order {
            let mut p = sent[i].clone();
            assert_eq!(rx.unprotect(&mut p), Ok(172), "packet {i}");
        }
        assert_eq!(rx.window.roc, 1);
        let mut old = sent[5].clone();
        assert_eq!(rx.unprotect(&mut old), Err(SrtpError::Replay));
    }

    #[test]
    fn a_new_source_under_the_same_key_starts_its_own_count() {
        let master = [4u8; MASTER_LEN];
        let suite = Suite::AesCm128HmacSha1_80;
        let mut tx = SrtpStream::new(suite, &master);
        let mut rx = SrtpStream::new(suite, &master);
        for seq in 40_000..40_010 {
            let mut p = protect(&mut tx, seq);
            assert_eq!(rx.unprotect(&mut p), Ok(172));
        }
        // Music on hold from another source, far behind in sequence: still heard.
        let mut moh = SrtpStream::new(suite, &master);
        let mut p = {
            let plain = packet(100, 1);
            let mut buf = plain.clone();
            buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            buf.resize(plain.len() + MAX_TAG, 0);
            let n = moh.protect(&mut buf, plain.len()).expect("protected");
            buf.truncate(n);
            buf
        };
        assert_eq!(rx.unprotect(&mut p), Ok(172));
        // A forgery from yet another source leaves the count as it was.
        let mut forged = protect(&mut tx, 40_010);
        forged[8] ^= 0xff;
        assert_eq!(rx.unprotect(&mut forged), Err(SrtpError::Auth));
        assert_eq!(rx.window.ssrc, Some(0x1234_5678));
    }
}
