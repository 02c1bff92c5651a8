//! The vosk-server WebSocket client against a scripted Cantonese test server speaking the
//! same protocol (tests/speech_support/vosk_ws_server.rs): real sockets on 127.0.0.1, the
//! listener API a call uses, the shipped grammar for the intent.

use crate::speech_support;

use std::time::Duration;

use hotline::speech::{
    CONFIG_MESSAGE, EOF_MESSAGE, Language, ListenOptions, Pace, SpeechEvent, Unavailable, read_wav,
    run_clip,
};
use speech_support::vosk_ws_server::{self, Script};
use speech_support::{config, dev_dir, start};

fn clip(name: &str) -> Vec<i16> {
    read_wav(&dev_dir().join(name)).expect("dev clip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cantonese_is_recognised_by_the_server_and_classified_here() {
    let server = vosk_ws_server::start(vec![
        Script {
            audio: clip("cmn-dev-003.wav"),
            words: "我嘅 社保卡 唔見咗".into(),
        },
        Script {
            audio: clip("cmn-dev-046.wav"),
            words: "網購 啲 嘢 商家 唔肯 退錢".into(),
        },
    ])
    .await;
    let mut c = config(1);
    c.cantonese.server = Some(server.url.clone());
    let (service, _) = start(&c);
    assert!(service.has_recognizer(Language::Cantonese));

    for (name, transcript, queue) in [
        ("cmn-dev-003.wav", "我嘅社保卡唔見咗", "social_insurance"),
        ("cmn-dev-046.wav", "網購啲嘢商家唔肯退錢", "market_consumer"),
    ] {
        let listener = service
            .listen(Language::Cantonese, ListenOptions::default())
            .expect("a server session is free");
        let run = run_clip(listener, &clip(name), Pace::Fast).await;
        let r = run
            .recognition()
            .unwrap_or_else(|| panic!("{name}: {:?}", run.events));
        assert_eq!(r.language, Language::Cantonese);
        assert_eq!(r.transcript, transcript);
        assert_eq!(
            r.decision.intent.as_ref().map(|s| s.intent.as_str()),
            Some(queue)
        );
        assert_eq!(r.decision.language.language, Language::Cantonese);
        assert!(
            r.words.windows(2).all(|w| w[0].start < w[1].start),
            "{:?}",
            r.words
        );
        assert!((r.confidence - 0.9).abs() < 1e-6);
        let partials = run
            .events
            .iter()
            .filter(|(_, e)| matches!(e, SpeechEvent::Partial { .. }))
            .count();
        assert!(partials >= 2, "{:?}", run.events);
    }

    let log = server.log.lock().expect("log").clone();
    assert_eq!(log.len(), 2);
    for received in &log {
        assert_eq!(received.config.as_deref(), Some(CONFIG_MESSAGE));
        assert_eq!(received.eof.as_deref(), Some(EOF_MESSAGE));
        // 100 ms chunks, the audio up to the endpoint (clip + about 0.7 s of silence).
        assert!(received.chunks >= 25, "{received:?}");
        assert!(received.samples >= 8000 * 3, "{received:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sessions_are_bounded_and_failures_reported() {
    let server = vosk_ws_server::start(Vec::new()).await;
    let mut c = config(1);
    c.cantonese.server = Some(server.url.clone());
    c.cantonese.max_sessions = Some(1);
    let (service, registry) = start(&c);
    let first = service
        .listen(Language::Cantonese, ListenOptions::default())
        .expect("one session is allowed");
    assert_eq!(
        service
            .listen(Language::Cantonese, ListenOptions::default())
            .err(),
        Some(Unavailable::Busy)
    );
    drop(first);
    assert!(
        service
            .listen(Language::Cantonese, ListenOptions::default())
            .is_ok()
    );

    // A server that is not there: the listener says so instead of hanging.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("bound").port()
    };
    let mut c = config(1);
    c.cantonese.server = Some(format!("ws://127.0.0.1:{port}"));
    let (service, _) = start(&c);
    let mut listener = service
        .listen(Language::Cantonese, ListenOptions::default())
        .expect("opening does not wait for the server");
    let _ = listener.push(&[0i16; 160]);
    let event = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("an event");
    assert!(
        matches!(event, Some(SpeechEvent::Failed { .. })),
        "{event:?}"
    );
    let metrics = registry.render();
    assert!(
        metrics.contains("hotline_speech_unavailable_total{lang=\"yue\",reason=\"busy\"} 1"),
        "{metrics}"
    );
}
