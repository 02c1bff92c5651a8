//! RFC 4733 telephone-event reception: turns the packets of each key press into one digit.
//! A press is reported on its first packet (so a prompt can stop at once); its later
//! packets, and the three copies of its end packet, are recognised and ignored.

/// One decoded telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    code: u8,
    end: bool,
    duration: u16,
}

impl Event {
    fn parse(payload: &[u8]) -> Option<Event> {
        let [code, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(Event {
            code,
            end: flags & 0x80 != 0,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// The key an event code stands for (RFC 4733 3.2): 0-9, *, #, A-D. Flash and the tones
/// beyond are not keys.
pub fn key_of(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// The event in progress or last seen: its RTP timestamp, code, whether its end was seen
    /// and the longest duration so far.
    current: Option<(u32, u8, bool, u16)>,
}

impl DtmfReceiver {
    /// Feeds one telephone-event packet; returns the key when it starts a new press.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = Event::parse(payload)?;
        let new_press = match self.current {
            None => true,
            Some((ts, code, ended, longest)) => {
                ts != timestamp
                    || code != ev.code
                    // Same timestamp after an end: a sender that reuses it for the next
                    // press, told apart by a packet that is not an end copy.
                    || (ended && !ev.end && ev.duration < longest)
            }
        };
        if new_press {
            self.current = Some((timestamp, ev.code, ev.end, ev.duration));
            return key_of(ev.code);
        }
        if let Some(cur) = self.current.as_mut() {
            cur.2 |= ev.end;
            cur.3 = cur.3.max(ev.duration);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [code, if end { 0x8a } else { 0x0a }, d[0], d[1]]
    }

    /// One press as senders emit it: growing durations, then three copies of the end.
    fn press(r: &mut DtmfReceiver, ts: u32, code: u8) -> Vec<char> {
        let mut keys = Vec::new();
        for d in [0u16, 320, 640, 960] {
            keys.extend(r.on_packet(ts, &ev(code, false, d)));
        }
        for _ in 0..3 {
            keys.extend(r.on_packet(ts, &ev(code, true, 1120)));
        }
        keys
    }

    #[test]
    fn each_press_is_one_key_whatever_the_copies() {
        let mut r = DtmfReceiver::default();
        let mut keys = Vec::new();
        keys.extend(press(&mut r, 1000, 1));
        keys.extend(press(&mut r, 5000, 1));
        keys.extend(press(&mut r, 9000, 11));
        keys.extend(press(&mut r, 13000, 10));
        assert_eq!(keys, ['1', '1', '#', '*']);
    }

    #[test]
    fn a_sender_reusing_the_timestamp_still_gives_every_press() {
        let mut r = DtmfReceiver::default();
        let mut keys = Vec::new();
        for code in [1, 2, 2, 3] {
            keys.extend(press(&mut r, 13280, code));
        }
        assert_eq!(keys, ['1', '2', '2', '3']);
    }

    #[test]
    fn short_payloads_and_non_keys_are_ignored() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(1, &[1, 2]), None);
        assert_eq!(
            r.on_packet(1, &ev(16, false, 0)),
            None,
            "flash is not a key"
        );
        assert_eq!(key_of(15), Some('D'));
    }
}
