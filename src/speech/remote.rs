//! Recognition on an external server speaking vosk-server's WebSocket protocol (for a
//! language with no local model here, such as Cantonese). One connection per utterance:
//! a text message `{"config": {"sample_rate": 8000, "words": 1}}`, then binary chunks of
//! 16-bit little-endian PCM, each answered by `{"partial": ..}` or by a closed segment
//! `{"result": [words], "text": ..}`, and finally the text `{"eof" : 1}`, answered by the
//! final result. Endpointing stays on our side (`utterance`), as for local models.
//! Owns the session tasks and the session count; no audio decoding here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::session::{Frame, Lease, SessionContext, SpeechEvent, Unavailable};
use super::utterance::{Step, Utterance, Word};

/// Exactly what vosk-server compares the end-of-stream message with.
pub const EOF_MESSAGE: &str = r#"{"eof" : 1}"#;
/// What the client announces before the audio.
pub const CONFIG_MESSAGE: &str = r#"{"config": {"sample_rate": 8000, "words": 1}}"#;
/// Audio per binary message: 100 ms (vosk-server's own clients send 200 ms).
const CHUNK_BYTES: usize = 1600;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const FINAL_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct RemoteBackend {
    url: String,
    max_sessions: usize,
    active: Arc<AtomicUsize>,
}

impl RemoteBackend {
    pub fn new(url: String, max_sessions: usize) -> RemoteBackend {
        RemoteBackend {
            url,
            max_sessions,
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a session task on the current tokio runtime, or refuses at once when
    /// `max_sessions` are running.
    pub fn open(
        &self,
        ctx: SessionContext,
        backlog: usize,
    ) -> Result<(mpsc::Sender<Frame>, Arc<Lease>), Unavailable> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("a remote recogniser must be used from inside the tokio runtime");
            return Err(Unavailable::NoRecognizer);
        };
        let max = self.max_sessions;
        if self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Unavailable::Busy);
        }
        let active = self.active.clone();
        let gauge = ctx.metrics.active.clone();
        gauge.inc();
        let lease = Lease::new(move || {
            active.fetch_sub(1, Ordering::AcqRel);
            gauge.dec();
        });
        let (tx, frames) = mpsc::channel(backlog);
        runtime.spawn(session(self.url.clone(), ctx, lease.clone(), frames));
        Ok((tx, lease))
    }
}

async fn session(
    url: String,
    ctx: SessionContext,
    lease: Arc<Lease>,
    mut frames: mpsc::Receiver<Frame>,
) {
    if let Err(reason) = drive(&url, &ctx, &lease, &mut frames).await {
        tracing::warn!(%url, %reason, "remote recognition failed");
        ctx.end(&lease, SpeechEvent::Failed { reason });
    }
    lease.release();
}

enum Input {
    Frame(Option<Frame>),
    Reply(Result<Reply, String>),
}

async fn drive(
    url: &str,
    ctx: &SessionContext,
    lease: &Lease,
    frames: &mut mpsc::Receiver<Frame>,
) -> Result<(), String> {
    let mut utterance = Utterance::new(ctx.language, ctx.endpointing.clone());
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            conn = Some(Conn::open(url, utterance.stats.audio).await?);
        }
        let Some(c) = conn.as_mut() else { continue };
        let input = tokio::select! {
            frame = frames.recv() => Input::Frame(frame),
            reply = c.next_reply() => Input::Reply(reply),
        };
        let frame = match input {
            Input::Reply(reply) => {
                c.outstanding = c.outstanding.saturating_sub(1);
                c.apply(reply?, &mut utterance, ctx);
                continue;
            }
            Input::Frame(None) => {
                c.close().await;
                return Ok(());
            }
            Input::Frame(Some(frame)) => frame,
        };
        if lease.is_released() {
            c.close().await;
            return Ok(());
        }
        // vosk-server is configured for 8 kHz: the narrowband side goes.
        let step = utterance.on_audio(frame.narrow());
        c.queue(frame.narrow()).await?;
        match step {
            Step::Continue => {}
            Step::Emit(event) => ctx.emit(event),
            Step::End(event) => {
                ctx.end(lease, event);
                c.close().await;
                return Ok(());
            }
            Step::Finalize {
                at,
                speech_end,
                reason,
            } => {
                let started = Instant::now();
                let last = tokio::time::timeout(FINAL_TIMEOUT, c.finish(&mut utterance, ctx))
                    .await
                    .map_err(|_| "no final result from the server in time".to_owned())??;
                // The server closes after the final result; listening on (after noise)
                // opens a new connection.
                conn = None;
                if let Some(mut r) =
                    utterance.finish(last, (at, speech_end, reason), &ctx.classifier)
                {
                    r.stats.finalize = started.elapsed();
                    ctx.end(lease, SpeechEvent::Final(Box::new(r)));
                    return Ok(());
                }
            }
        }
    }
}

/// A reply of vosk-server: a partial guess, or a closed segment with its words.
#[derive(Debug, Deserialize)]
struct Reply {
    partial: Option<String>,
    text: Option<String>,
    #[serde(default)]
    result: Vec<ReplyWord>,
}

#[derive(Debug, Deserialize)]
struct ReplyWord {
    word: String,
    start: f32,
    end: f32,
    #[serde(default = "full_confidence")]
    conf: f32,
}

fn full_confidence() -> f32 {
    1.0
}

fn seconds(s: f32) -> Duration {
    Duration::try_from_secs_f32(s).unwrap_or_default()
}

/// One WebSocket connection to the server.
struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    chunk: Vec<u8>,
    /// Chunks sent and not answered yet.
    outstanding: usize,
    /// Audio time at which this connection started (the server counts from zero).
    offset: Duration,
}

impl Conn {
    async fn open(url: &str, offset: Duration) -> Result<Conn, String> {
        let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect_async(url))
            .await
            .map_err(|_| format!("connecting to {url} timed out"))?
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        ws.send(Message::text(CONFIG_MESSAGE))
            .await
            .map_err(|e| format!("sending the config: {e}"))?;
        Ok(Conn {
            ws,
            chunk: Vec::with_capacity(CHUNK_BYTES),
            outstanding: 0,
            offset,
        })
    }

    async fn queue(&mut self, frame: &[i16]) -> Result<(), String> {
        for s in frame {
            self.chunk.extend_from_slice(&s.to_le_bytes());
        }
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), String> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
        self.ws
            .send(Message::binary(chunk))
            .await
            .map_err(|e| format!("sending audio: {e}"))?;
        self.outstanding += 1;
        Ok(())
    }

    async fn next_reply(&mut self) -> Result<Reply, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|e| format!("unreadable reply from the server: {e}"));
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err("the server closed the connection".into());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("reading from the server: {e}")),
            }
        }
    }

    fn words(&self, reply: &Reply) -> Vec<Word> {
        if reply.result.is_empty() {
            // A server configured without word timing still sends the text.
            return reply
                .text
                .iter()
                .flat_map(|t| t.split_whitespace())
                .map(|w| Word {
                    text: w.to_owned(),
                    start: self.offset,
                    end: self.offset,
                    confidence: 1.0,
                })
                .collect();
        }
        reply
            .result
            .iter()
            .map(|w| Word {
                text: w.word.clone(),
                start: self.offset + seconds(w.start),
                end: self.offset + seconds(w.end),
                confidence: w.conf,
            })
            .collect()
    }

    /// A reply to an audio chunk: a partial to pass on, or a segment to keep.
    fn apply(&self, reply: Reply, utterance: &mut Utterance, ctx: &SessionContext) {
        if let Some(partial) = &reply.partial {
            if let Some(event) = utterance.on_partial(partial) {
                ctx.emit(event);
            }
        } else {
            utterance.on_segment(self.words(&reply));
        }
    }

    /// Sends the rest of the audio and end-of-stream; returns the final words after
    /// applying the replies still owed for earlier chunks.
    async fn finish(
        &mut self,
        utterance: &mut Utterance,
        ctx: &SessionContext,
    ) -> Result<Vec<Word>, String> {
        self.flush().await?;
        self.ws
            .send(Message::text(EOF_MESSAGE))
            .await
            .map_err(|e| format!("sending end of stream: {e}"))?;
        loop {
            let reply = self.next_reply().await?;
            if self.outstanding == 0 {
                return Ok(self.words(&reply));
            }
            self.outstanding -= 1;
            self.apply(reply, utterance, ctx);
        }
    }

    async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}
