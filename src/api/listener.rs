//! The API's TCP listener, with limits so that no client (or flood of them) can take the
//! API, the dashboard or /metrics away: at most `max_connections` open and
//! `max_per_source` from one address (a connection beyond them is closed at accept), and a
//! connection that moves no byte either way for `idle` is closed (a client that sends half
//! a request, or stops reading, cannot hold one). The live streams write a keep-alive at
//! least twice per `idle`, so they are never idle. Owns the counts of open connections.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::metrics::Counter;

/// Open connections, in total and per source address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub idle: Duration,
}

/// Whether one more connection from `ip` fits; if so it is counted.
fn admit(counts: &mut Counts, limits: &Limits, ip: IpAddr) -> bool {
    let held = counts.per_source.get(&ip).copied().unwrap_or(0);
    if counts.total >= limits.max_connections || held >= limits.max_per_source {
        return false;
    }
    counts.total += 1;
    *counts.per_source.entry(ip).or_default() += 1;
    true
}

fn release(counts: &mut Counts, ip: IpAddr) {
    counts.total = counts.total.saturating_sub(1);
    if let Some(held) = counts.per_source.get_mut(&ip) {
        *held -= 1;
        if *held == 0 {
            counts.per_source.remove(&ip);
        }
    }
}

pub(super) struct LimitedListener {
    inner: TcpListener,
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
    refused: Arc<Counter>,
}

impl LimitedListener {
    pub(super) fn new(inner: TcpListener, limits: Limits, refused: Arc<Counter>) -> Self {
        LimitedListener {
            inner,
            limits,
            counts: Arc::default(),
            refused,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors for a moment: keep accepting.
                    debug!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let admitted = match self.counts.lock() {
                Ok(mut counts) => admit(&mut counts, &self.limits, addr.ip()),
                Err(_) => false,
            };
            if !admitted {
                self.refused.inc();
                continue;
            }
            let idle = self.limits.idle;
            let stream = LimitedStream {
                stream,
                idle,
                deadline: Box::pin(tokio::time::sleep(idle)),
                slot: Slot {
                    counts: self.counts.clone(),
                    ip: addr.ip(),
                },
            };
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection's place in the counts, given back when the connection closes.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock() {
            release(&mut counts, self.ip);
        }
    }
}

/// An accepted connection that fails with `TimedOut` once it has moved no byte for `idle`.
pub(super) struct LimitedStream {
    stream: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    slot: Slot,
}

impl LimitedStream {
    /// Progress either way: the idle time starts again.
    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// What a pending operation becomes: still pending, or the idle error.
    fn idle_check<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                debug!(source = %self.slot.ip, "closing an idle API connection");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle API connection",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.idle_check(cx),
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.idle_check(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_source_and_in_total_and_given_back() {
        let limits = Limits {
            max_connections: 3,
            max_per_source: 2,
            idle: Duration::from_secs(60),
        };
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let mut counts = Counts::default();
        assert!(admit(&mut counts, &limits, a));
        assert!(admit(&mut counts, &limits, a));
        assert!(!admit(&mut counts, &limits, a), "a's share is full");
        assert!(admit(&mut counts, &limits, b));
        assert!(!admit(&mut counts, &limits, b), "the total is full");
        release(&mut counts, a);
        assert!(admit(&mut counts, &limits, b));
        release(&mut counts, a);
        release(&mut counts, b);
        release(&mut counts, b);
        assert_eq!((counts.total, counts.per_source.len()), (0, 0));
    }
}
