//! SIP connections, over TCP or TLS over TCP: accepting them, reading framed messages into
//! the endpoint loop, writing what it sends back. One reader and one writer task per
//! connection; the loop owns the write halves and the core owns the table of connections
//! and their names. TLS settings come from `tls`; this only runs the handshakes.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tracing::{debug, warn};

use super::core::ConnEnd;
use super::event_loop::Input;
use crate::sip::Transport;
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

/// Hands every connection accepted on the `transport` (TCP or TLS) listener to the endpoint
/// loop, which names it and starts it.
pub(super) async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    input: mpsc::UnboundedSender<Input>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let accepted = Input::Accepted {
                    stream,
                    addr,
                    transport,
                };
                if input.send(accepted).is_err() {
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
    /// The writer; it starts once connected and, for TLS, once the handshake is done.
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

/// How long a connection we open may take to connect and finish its TLS handshake.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens connection `conn` to `addr` for a message we send first, inside TLS when `tls`
/// names the connector and the name the server's certificate must carry. What is sent
/// before the connect completes waits in the queue; a failed connect or handshake is
/// reported as `ConnEnd::ConnectFailed`.
pub(super) fn connect(
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
    first: Bytes,
    tls: Option<(TlsConnector, ServerName<'static>)>,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(first);
    let link = Link::new(addr, conn, tls.is_some(), input, tx.clone());
    let writer = link.writer.clone();
    let task = tokio::spawn(async move {
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let Some((connector, name)) = tls else {
                return Ok(Stream::Plain(stream));
            };
            match connector.connect(name.clone(), stream).await {
                Ok(s) => Ok(Stream::Tls(Box::new(TlsStream::from(s)))),
                Err(e) => {
                    // An operator's problem (the server's certificate, or [sip] tls_ca),
                    // which the transaction's failure alone would not explain.
                    warn!(%addr, server_name = ?name, error = %e, "TLS handshake failed");
                    Err(e)
                }
            }
        })
        .await;
        match opened {
            Ok(Ok(stream)) => link.run(stream, rx).await,
            Ok(Err(e)) => {
                debug!(%addr, error = %e, "connect failed");
                link.closed(ConnEnd::ConnectFailed);
            }
            Err(_) => {
                debug!(%addr, "connect timed out");
                link.closed(ConnEnd::ConnectFailed);
            }
        }
    });
    ConnHandle {
        writes: tx,
        reader: task.abort_handle(),
        writer,
    }
}

/// Starts the tasks of an accepted connection; with `tls`, after the handshake (which the
/// core's deadline for a first message bounds: it closes a connection that stalls).
pub(super) fn spawn(
    stream: TcpStream,
    addr: SocketAddr,
    conn: u64,
    input: mpsc::UnboundedSender<Input>,
    tls: Option<TlsAcceptor>,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let link = Link::new(addr, conn, tls.is_some(), input, tx.clone());
    let writer = link.writer.clone();
    let task = tokio::spawn(async move {
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(s) => Stream::Tls(Box::new(TlsStream::from(s))),
                Err(e) => {
                    debug!(%addr, error = %e, "TLS handshake failed");
                    return link.closed(ConnEnd::Closed);
                }
            },
        };
        link.run(stream, rx).await;
    });
    ConnHandle {
        writes: tx,
        reader: task.abort_handle(),
        writer,
    }
}

/// A connection's stream once open: the plain socket, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What a connection's tasks share: its name and peer, where its frames go, and the writer
/// task's handle for the loop's `ConnHandle`.
struct Link {
    addr: SocketAddr,
    conn: u64,
    transport: Transport,
    input: mpsc::UnboundedSender<Input>,
    writes: mpsc::UnboundedSender<Bytes>,
    writer: Arc<OnceLock<AbortHandle>>,
}

impl Link {
    fn new(
        addr: SocketAddr,
        conn: u64,
        tls: bool,
        input: mpsc::UnboundedSender<Input>,
        writes: mpsc::UnboundedSender<Bytes>,
    ) -> Link {
        Link {
            addr,
            conn,
            transport: if tls { Transport::Tls } else { Transport::Tcp },
            input,
            writes,
            writer: Arc::default(),
        }
    }

    /// Writes the queue and reads until the connection ends.
    async fn run(self, stream: Stream, rx: mpsc::UnboundedReceiver<Bytes>) {
        match stream {
            // The socket's own halves need no lock between the reader and the writer.
            Stream::Plain(s) => {
                let (reader, writer) = s.into_split();
                self.read_while_writing(reader, writer, rx).await;
            }
            Stream::Tls(s) => {
                let (reader, writer) = tokio::io::split(*s);
                self.read_while_writing(reader, writer, rx).await;
            }
        }
    }

    async fn read_while_writing<R, W>(
        self,
        reader: R,
        writer: W,
        rx: mpsc::UnboundedReceiver<Bytes>,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let _ = self
            .writer
            .set(tokio::spawn(write(writer, rx)).abort_handle());
        self.read(reader).await;
    }

    fn closed(&self, end: ConnEnd) {
        let _ = self.input.send(Input::ConnClosed {
            conn: self.conn,
            end,
        });
    }

    /// Frames what arrives and hands each message to the loop; answers keep-alive pings.
    /// A read that completes no message (a ping, or part of one) is reported too, so the
    /// core can tell a quiet connection from one that drips a message.
    async fn read(self, mut reader: impl AsyncRead + Unpin) {
        let (conn, addr, transport) = (self.conn, self.addr, self.transport);
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
                let message = |bytes| Input::Frame {
                    conn,
                    addr,
                    transport,
                    bytes,
                };
                match frame {
                    Frame::Message(bytes) => {
                        framed = true;
                        let _ = self.input.send(message(bytes));
                    }
                    Frame::Ping => {
                        let _ = self.writes.send(Bytes::from_static(b"\r\n"));
                    }
                    Frame::Broken(bytes) => {
                        let _ = self.input.send(message(bytes));
                        break 'read;
                    }
                }
            }
            let mid_message = framer.is_mid_message();
            if mid_message || !framed {
                let _ = self.input.send(Input::Read { conn, mid_message });
            }
        }
        self.closed(ConnEnd::Closed);
    }
}

async fn write(mut writer: impl AsyncWrite + Unpin, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = rx.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            break;
        }
        // TLS keeps records back until flushed (a plain socket's flush does nothing); once
        // the queue is empty, what was written must leave.
        if rx.is_empty() && writer.flush().await.is_err() {
            break;
        }
    }
}
