//! The router's deadlines in one min-heap. Entries are never removed when plans change:
//! each names the record and the deadline it was set for, and the router drops those whose
//! record no longer holds that deadline (see `Router::timer_live`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::state::{AgentIdx, CallerIdx};
use crate::acd::messages::OfferId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    Ring(OfferId),
    WrapUp(AgentIdx),
    /// Caller timers carry the caller's `seq`, which changes when the slot is reused or
    /// the caller moves to another queue.
    MaxWait(CallerIdx, u64),
    Announce(CallerIdx, u64),
    Relax(CallerIdx, u64),
    Retry(CallerIdx, u64),
}

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    pub fn peek(&self) -> Option<(Instant, Timer)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    pub fn pop(&mut self) -> Option<(Instant, Timer)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// The earliest entry due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.peek() {
            Some((at, _)) if at <= now => self.pop(),
            _ => None,
        }
    }
}
