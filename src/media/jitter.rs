//! A small reorder buffer for received audio: packets go in as they arrive and come out in
//! sequence order, either as soon as the next one is there or once they have waited the
//! buffer's delay (a missing packet is then given up as lost). Frames are stored inline,
//! so a steady stream allocates nothing. Sans-IO: arrival times are passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The largest payload kept: 60 ms of G.711.
pub const MAX_PAYLOAD: usize = 480;

#[derive(Clone)]
pub struct Frame {
    pub timestamp: u32,
    len: usize,
    data: [u8; MAX_PAYLOAD],
}

impl Frame {
    pub fn payload(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("timestamp", &self.timestamp)
            .field("len", &self.len)
            .finish()
    }
}

/// What the buffer counted, for loss metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub lost: u64,
    pub late: u64,
}

pub struct JitterBuffer {
    delay: Duration,
    /// (extended sequence number, arrival, frame), sorted by sequence.
    queue: VecDeque<(i64, Instant, Frame)>,
    /// The extended sequence number expected next out.
    next: Option<i64>,
    highest: i64,
    pub stats: Stats,
}

/// A jump this large is a new stream (a restarted sender), not loss.
const RESET_GAP: i64 = 3000;

impl JitterBuffer {
    pub fn new(delay: Duration) -> JitterBuffer {
        JitterBuffer {
            delay,
            queue: VecDeque::with_capacity(8),
            next: None,
            highest: 0,
            stats: Stats::default(),
        }
    }

    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8]) {
        if payload.len() > MAX_PAYLOAD {
            self.stats.late += 1;
            return;
        }
        let ext = match self.next {
            None => seq as i64,
            Some(_) => self.highest + (seq.wrapping_sub(self.highest as u16) as i16) as i64,
        };
        if self.next.is_some_and(|n| (ext - n).abs() > RESET_GAP) {
            self.queue.clear();
            self.next = None;
            return self.push(now, seq, timestamp, payload);
        }
        let next = *self.next.get_or_insert(ext);
        if ext < next || self.queue.iter().any(|(s, _, _)| *s == ext) {
            self.stats.late += 1;
            return;
        }
        self.stats.received += 1;
        self.highest = self.highest.max(ext);
        let mut frame = Frame {
            timestamp,
            len: payload.len(),
            data: [0; MAX_PAYLOAD],
        };
        frame.data[..payload.len()].copy_from_slice(payload);
        let at = self
            .queue
            .iter()
            .position(|(s, _, _)| *s > ext)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, (ext, now, frame));
    }

    /// The next frame in order, if it is there or the wait for a missing one is over.
    pub fn pop(&mut self, now: Instant) -> Option<Frame> {
        let (seq, arrived, _) = self.queue.front()?;
        let next = self.next?;
        if *seq != next && *arrived + self.delay > now {
            return None;
        }
        self.stats.lost += (*seq - next) as u64;
        let (seq, _, frame) = self.queue.pop_front()?;
        self.next = Some(seq + 1);
        Some(frame)
    }

    /// Everything still held, in order (at the end of a call).
    pub fn drain(&mut self) -> impl Iterator<Item = Frame> + '_ {
        self.queue.drain(..).map(|(_, _, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn out(b: &mut JitterBuffer, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| b.pop(now))
            .map(|f| f.timestamp)
            .collect()
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let t = Instant::now();
        let mut b = JitterBuffer::new(60 * MS);
        b.push(t, 10, 1600, &[1; 160]);
        assert_eq!(out(&mut b, t), [1600]);
        b.push(t + 20 * MS, 12, 1920, &[3; 160]);
        assert_eq!(
            out(&mut b, t + 20 * MS),
            Vec::<u32>::new(),
            "11 may still come"
        );
        b.push(t + 25 * MS, 11, 1760, &[2; 160]);
        assert_eq!(out(&mut b, t + 25 * MS), [1760, 1920]);
        assert_eq!(
            b.stats,
            Stats {
                received: 3,
                lost: 0,
                late: 0
            }
        );
    }

    #[test]
    fn a_missing_packet_is_given_up_after_the_delay_and_late_copies_dropped() {
        let t = Instant::now();
        let mut b = JitterBuffer::new(60 * MS);
        b.push(t, 1, 0, &[0; 160]);
        out(&mut b, t);
        b.push(t + 40 * MS, 3, 320, &[0; 160]);
        assert!(out(&mut b, t + 99 * MS).is_empty());
        assert_eq!(out(&mut b, t + 100 * MS), [320]);
        assert_eq!(b.stats.lost, 1);
        b.push(t + 120 * MS, 2, 160, &[0; 160]);
        b.push(t + 120 * MS, 3, 320, &[0; 160]);
        assert_eq!(b.stats.late, 2);
        assert!(out(&mut b, t + 200 * MS).is_empty());
    }

    #[test]
    fn sequence_numbers_wrap_and_restarts_reset() {
        let t = Instant::now();
        let mut b = JitterBuffer::new(60 * MS);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            b.push(t, seq, i as u32 * 160, &[0; 160]);
        }
        assert_eq!(out(&mut b, t), [0, 160, 320, 480]);
        b.push(t, 30000, 9999, &[0; 160]);
        assert_eq!(out(&mut b, t), [9999], "a new stream starts over");
        assert_eq!(b.stats.lost, 0);
    }
}
