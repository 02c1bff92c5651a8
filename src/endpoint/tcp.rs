//! TCP connections for SIP: accepting them, reading framed messages into the endpoint
//! loop, writing what it sends back. One reader and one writer task per connection; the
//! loop owns the table of connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

use super::event_loop::Input;
use crate::sip::framing::{Frame, StreamFramer};

pub(super) async fn accept_loop(
    listener: TcpListener,
    input: mpsc::UnboundedSender<Input>,
    ids: Arc<AtomicU64>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                spawn(
                    stream,
                    addr,
                    ids.fetch_add(1, Ordering::Relaxed),
                    input.clone(),
                    None,
                );
            }
            Err(e) => {
                // Running out of descriptors is transient: keep accepting.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Opens a connection to `addr` for a message we send first.
pub(super) fn connect(
    addr: SocketAddr,
    id: u64,
    input: mpsc::UnboundedSender<Input>,
    first: Bytes,
) {
    tokio::spawn(async move {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                spawn(stream, addr, id, input, Some(first));
            }
            Err(e) => {
                debug!(%addr, error = %e, "TCP connect failed");
                let _ = input.send(Input::ConnClosed { conn: id });
            }
        }
    });
}

fn spawn(
    stream: TcpStream,
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
    first: Option<Bytes>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if let Some(first) = first {
        let _ = tx.send(first);
    }
    let _ = input.send(Input::ConnOpened {
        conn,
        addr,
        tx: tx.clone(),
    });
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        'read: loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            while let Some(frame) = framer.next_frame() {
                match frame {
                    Frame::Message(bytes) => {
                        let _ = input.send(Input::Frame { conn, addr, bytes });
                    }
                    Frame::Ping => {
                        let _ = tx.send(Bytes::from_static(b"\r\n"));
                    }
                    Frame::Broken(bytes) => {
                        let _ = input.send(Input::Frame { conn, addr, bytes });
                        break 'read;
                    }
                }
            }
        }
        let _ = input.send(Input::ConnClosed { conn });
    });
}
