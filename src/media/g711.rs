//! G.711 µ-law (PCMU) and A-law (PCMA) to and from 16-bit linear PCM. Decoding is a
//! table built at compile time; encoding is a few bit operations per sample.

/// The two G.711 laws, with their static RTP payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Ulaw => ULAW_TABLE[byte as usize],
            Law::Alaw => ALAW_TABLE[byte as usize],
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    /// Decodes `bytes` into `out` (cleared first), reusing its allocation.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        out.extend(bytes.iter().map(|&b| self.decode(b)));
    }

    pub fn encode_all(self, samples: &[i16]) -> Vec<u8> {
        samples.iter().map(|&s| self.encode(s)).collect()
    }
}

const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0f) as i32;
    let mut magnitude = (mantissa << 4) + 8;
    if exponent != 0 {
        magnitude = (magnitude + 0x100) << (exponent - 1);
    }
    // In A-law a set sign bit means a positive sample.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(false);
static ALAW_TABLE: [i16; 256] = table(true);

fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let pcm = sample as i32;
    let (sign, magnitude) = if pcm < 0 {
        (0x80, (-pcm).min(CLIP))
    } else {
        (0, pcm.min(CLIP))
    };
    let biased = magnitude + BIAS;
    // The segment is the position of the highest bit above the 7 low ones.
    let exponent = 7 - ((biased >> 7) as u8).leading_zeros() as i32;
    let mantissa = (biased >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

fn alaw_encode(sample: i16) -> u8 {
    let pcm = sample as i32;
    let (sign, magnitude) = if pcm >= 0 { (0x80, pcm) } else { (0, -pcm - 1) };
    let (exponent, mantissa) = if magnitude < 256 {
        (0, (magnitude >> 4) & 0x0f)
    } else {
        let exponent = 8 - ((magnitude >> 8) as u8).leading_zeros() as i32;
        (exponent, (magnitude >> (exponent + 3)) & 0x0f)
    };
    ((sign | (exponent << 4) | mantissa) as u8) ^ 0x55
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(Law::Ulaw.encode(0), 0xff);
        assert_eq!(Law::Ulaw.decode(0xff), 0);
        assert_eq!(Law::Ulaw.decode(0x80), 32124);
        assert_eq!(Law::Ulaw.decode(0x00), -32124);
        assert_eq!(Law::Alaw.encode(0), 0xd5);
        assert_eq!(Law::Alaw.decode(0xd5), 8);
        assert_eq!(Law::Alaw.decode(0xaa), 32256);
        assert_eq!(Law::Alaw.decode(0x2a), -32256);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for law in [Law::Ulaw, Law::Alaw] {
            for b in 0..=255u8 {
                let back = law.encode(law.decode(b));
                // µ-law has two zeros (0x7f and 0xff); both decode to 0, which encodes to 0xff.
                let expected = if law == Law::Ulaw && b == 0x7f {
                    0xff
                } else {
                    b
                };
                assert_eq!(back, expected, "{law:?} code {b:#04x}");
            }
        }
    }

    #[test]
    fn encoding_error_stays_within_the_segment_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let back = law.decode(law.encode(s)) as i32;
                let err = (back - s as i32).abs();
                // Quantisation steps grow to 1024 in the top segment (and µ-law clips at
                // 32635, so the extremes lose a little more).
                assert!(err <= 1024 + 150, "{law:?} {s} -> {back}");
                if (s as i32).abs() < 64 {
                    assert!(err <= 8, "{law:?} small sample {s} -> {back}");
                }
            }
        }
    }
}
