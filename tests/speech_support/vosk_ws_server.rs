//! A stand-in for a Cantonese vosk-server, which cannot run here (no Cantonese Vosk model
//! exists). It speaks vosk-server's WebSocket protocol as asr_server.py does: a text
//! config message (no reply), binary 16-bit PCM chunks (one reply each, a partial), and
//! the exact text `{"eof" : 1}` (the final result, then close). It "recognises" by
//! finding which scripted recording the received audio starts with, and answers that
//! recording's scripted transcript with word timings spread over its speech.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::accept_async;
use tokio_tungstenite::tungstenite::Message;

/// What one connection sent.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub config: Option<String>,
    pub chunks: usize,
    pub samples: usize,
    pub eof: Option<String>,
}

pub struct ScriptedServer {
    pub url: String,
    pub log: Arc<Mutex<Vec<Received>>>,
}

/// One recording the server knows, and the words it "hears" in it (space-separated).
#[derive(Clone)]
pub struct Script {
    pub audio: Vec<i16>,
    pub words: String,
}

pub async fn start(script: Vec<Script>) -> ScriptedServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("ws://{}", listener.local_addr().expect("bound"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            let log = server_log.clone();
            tokio::spawn(async move { serve(stream, &script, &log).await });
        }
    });
    ScriptedServer { url, log }
}

/// Logs what the connection sent as soon as its input is complete, before the final
/// reply: a client that has its result may look at the log at once.
async fn serve(stream: tokio::net::TcpStream, script: &[Script], log: &Mutex<Vec<Received>>) {
    let mut received = Received::default();
    let Ok(mut ws) = accept_async(stream).await else {
        log.lock().expect("log").push(received);
        return;
    };
    let mut audio: Vec<i16> = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Text(text) if text.as_str() == r#"{"eof" : 1}"# => {
                received.eof = Some(text.to_string());
                log.lock().expect("log").push(std::mem::take(&mut received));
                let reply = final_result(script, &audio);
                let _ = ws.send(Message::text(reply)).await;
                let _ = ws.close(None).await;
                return;
            }
            Message::Text(text) if text.as_str().contains("config") => {
                let config: serde_json::Value =
                    serde_json::from_str(text.as_str()).expect("config is JSON");
                assert_eq!(config["config"]["sample_rate"], 8000, "{text}");
                received.config = Some(text.to_string());
            }
            Message::Binary(bytes) => {
                assert_eq!(bytes.len() % 2, 0, "16-bit samples");
                audio.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                received.chunks += 1;
                received.samples = audio.len();
                let reply = serde_json::json!({ "partial": partial(script, &audio) });
                if ws.send(Message::text(reply.to_string())).await.is_err() {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    log.lock().expect("log").push(received);
    let _ = ws.close(None).await;
}

/// The scripted recording the received audio is the beginning of.
fn find<'a>(script: &'a [Script], audio: &[i16]) -> Option<&'a Script> {
    script.iter().find(|s| {
        let n = audio.len().min(s.audio.len());
        n > 0 && s.audio[..n] == audio[..n]
    })
}

/// The first words, in proportion to how much of the recording has arrived.
fn partial(script: &[Script], audio: &[i16]) -> String {
    let Some(s) = find(script, audio) else {
        return String::new();
    };
    let words: Vec<&str> = s.words.split_whitespace().collect();
    let heard = words.len() * audio.len().min(s.audio.len()) / s.audio.len();
    words[..heard].join(" ")
}

fn final_result(script: &[Script], audio: &[i16]) -> String {
    let Some(s) = find(script, audio) else {
        return serde_json::json!({ "result": [], "text": "" }).to_string();
    };
    // Word timings spread over the loud part of the recording.
    let loud = |x: &i16| x.unsigned_abs() > 1000;
    let first = s.audio.iter().position(loud).unwrap_or(0) as f64 / 8000.0;
    let last = s.audio.iter().rposition(loud).unwrap_or(0) as f64 / 8000.0;
    let words: Vec<&str> = s.words.split_whitespace().collect();
    let step = (last - first) / words.len().max(1) as f64;
    let result: Vec<serde_json::Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            serde_json::json!({
                "conf": 0.9,
                "start": first + step * i as f64,
                "end": first + step * (i + 1) as f64,
                "word": w,
            })
        })
        .collect();
    serde_json::json!({ "result": result, "text": s.words }).to_string()
}
