//! TCP connections for SIP: accepting them, reading framed messages into the endpoint
//! loop, writing what it sends back. One reader and one writer task per connection; the
//! loop owns the write halves and the core owns the table of connections and their names.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

use super::core::ConnEnd;
use super::event_loop::Input;
use crate::sip::framing::{Frame, StreamFramer};

/// Connections waiting to be accepted (the kernel caps it at `net.core.somaxconn`). The
/// standard 128 drops SYNs in a burst (a thousand phones re-registering after a network
/// blip), and each dropped SYN costs its client a second or more.
const ACCEPT_BACKLOG: u32 = 4096;

/// The SIP TCP listener on `addr`, with room for bursts of connects.
pub(super) async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "names no address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Hands every accepted connection to the endpoint loop, which names it and starts it.
pub(super) async fn accept_loop(listener: TcpListener, input: mpsc::UnboundedSender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                if input.send(Input::Accepted { stream, addr }).is_err() {
                    return;
                }
            }
            Err(e) => {
                // Running out of descriptors is transient: keep accepting.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The loop's hold on a connection: where to queue what it sends, and its reader (which
/// for a connection we open is also the connect), aborted to close it.
pub(super) struct ConnHandle {
    pub(super) writes: mpsc::UnboundedSender<Bytes>,
    reader: AbortHandle,
    /// The writer; for a connection we open it starts once connected (see `connect`).
    writer: Arc<OnceLock<AbortHandle>>,
}

/// How long a closed connection's writer may take to write what was queued before it (the
/// answer to a broken frame): a peer that stops reading cannot keep the socket.
const WRITE_GRACE: Duration = Duration::from_secs(5);

impl Drop for ConnHandle {
    /// Dropping the handle closes the connection: the reader stops at once, the writer
    /// when its queue is written or at the latest after `WRITE_GRACE`.
    fn drop(&mut self) {
        self.reader.abort();
        let writer = self.writer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(WRITE_GRACE).await;
            if let Some(w) = writer.get() {
                w.abort();
            }
        });
    }
}

/// Opens connection `conn` to `addr` for a message we send first. What is sent before the
/// connect completes waits in the queue; a failed connect is reported as
/// `ConnEnd::ConnectFailed`.
pub(super) fn connect(
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
    first: Bytes,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(first);
    let writes = tx.clone();
    let writer_handle: Arc<OnceLock<AbortHandle>> = Arc::default();
    let set_writer = writer_handle.clone();
    let task = tokio::spawn(async move {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.into_split();
                let _ = set_writer.set(tokio::spawn(write(writer, rx)).abort_handle());
                read(reader, addr, conn, input, writes).await;
            }
            Err(e) => {
                debug!(%addr, error = %e, "TCP connect failed");
                let _ = input.send(Input::ConnClosed {
                    conn,
                    end: ConnEnd::ConnectFailed,
                });
            }
        }
    });
    ConnHandle {
        writes: tx,
        reader: task.abort_handle(),
        writer: writer_handle,
    }
}

/// Starts the tasks of an accepted connection.
pub(super) fn spawn(
    stream: TcpStream,
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let (reader, writer) = stream.into_split();
    let writer = tokio::spawn(write(writer, rx)).abort_handle();
    let task = tokio::spawn(read(reader, addr, conn, input, tx.clone()));
    ConnHandle {
        writes: tx,
        reader: task.abort_handle(),
        writer: Arc::new(OnceLock::from(writer)),
    }
}

async fn write(mut writer: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = rx.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            break;
        }
    }
}

/// Frames what arrives and hands each message to the loop; answers keep-alive pings. A
/// read that completes no message (a ping, or part of one) is reported too, so the core
/// can tell a quiet connection from one that drips a message.
async fn read(
    mut reader: OwnedReadHalf,
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
    writes: mpsc::UnboundedSender<Bytes>,
) {
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        let mut framed = false;
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Message(bytes) => {
                    framed = true;
                    let _ = input.send(Input::Frame { conn, addr, bytes });
                }
                Frame::Ping => {
                    let _ = writes.send(Bytes::from_static(b"\r\n"));
                }
                Frame::Broken(bytes) => {
                    let _ = input.send(Input::Frame { conn, addr, bytes });
                    break 'read;
                }
            }
        }
        let mid_message = framer.is_mid_message();
        if mid_message || !framed {
            let _ = input.send(Input::Read { conn, mid_message });
        }
    }
    let _ = input.send(Input::ConnClosed {
        conn,
        end: ConnEnd::Closed,
    });
}
