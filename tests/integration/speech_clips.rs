//! Real telephone clips of ../shared/speech/dev through the real Vosk model, the same
//! endpointing a call uses and the shipped 12345 grammar: the caller's queue must come
//! out. Also the pool's refusal when busy, no input, and the event sequence of a call.

use crate::speech_support;

use std::sync::Arc;
use std::time::Duration;

use hotline::speech::{
    EndReason, Language, ListenOptions, Pace, PushError, SpeechEvent, SpeechService, Unavailable,
    devset, read_wav, run_clip,
};
use speech_support::{config, dev_dir, start};

/// Runs every `step`-th clip, `parallel` at a time; returns (clip, queue, transcript).
async fn run_all(
    service: &Arc<SpeechService>,
    parallel: usize,
    step: usize,
) -> Vec<(devset::Clip, String, String)> {
    let clips = devset::clips(&dev_dir()).expect("manifest.tsv parses");
    assert_eq!(clips.len(), 54);
    let clips: Vec<devset::Clip> = clips.into_iter().step_by(step).collect();
    let mut out = Vec::new();
    for batch in clips.chunks(parallel) {
        let tasks: Vec<_> = batch
            .iter()
            .cloned()
            .map(|clip| {
                let service = service.clone();
                tokio::spawn(async move {
                    let samples = read_wav(&clip.file).expect("dev clips are 8 kHz PCM");
                    let listener = service
                        .listen(Language::Mandarin, ListenOptions::default())
                        .expect("a recogniser is free");
                    let run = run_clip(listener, &samples, Pace::Fast).await;
                    let r = run.recognition().cloned().unwrap_or_else(|| {
                        panic!("{}: no final result: {:?}", clip.file.display(), run.events)
                    });
                    let queue = r.decision.intent.map(|s| s.intent).unwrap_or_default();
                    (clip, queue, r.transcript)
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.expect("clip task"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dev_clip_lands_in_its_queue() {
    let (service, registry) = start(&config(2));
    let results = run_all(&service, 2, 1).await;
    let misses: Vec<String> = results
        .iter()
        .filter(|(clip, queue, _)| *queue != clip.queue)
        .map(|(clip, queue, transcript)| {
            format!(
                "{}: said {}, heard {transcript}, got `{queue}`, want `{}`",
                clip.file.display(),
                clip.text,
                clip.queue
            )
        })
        .collect();
    // The aim is 95%: at most 2 of the 54 may miss.
    assert!(
        misses.len() <= 2,
        "{} of 54 missed:\n{}",
        misses.len(),
        misses.join("\n")
    );
    for m in &misses {
        eprintln!("missed: {m}");
    }
    let metrics = registry.render();
    assert!(
        metrics.contains("hotline_speech_recognitions_total{lang=\"cmn\",outcome=\"final\"} 54"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_speech_sessions_active{lang=\"cmn\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsampled_to_16k_the_clips_still_land() {
    let mut c = config(2);
    c.vosk_sample_rate = 16000;
    let (service, _) = start(&c);
    // Every fifth clip: the 16 kHz path works; bench/speech_accuracy.sh compares rates.
    let results = run_all(&service, 2, 5).await;
    assert_eq!(results.len(), 11);
    let hits = results
        .iter()
        .filter(|(clip, queue, _)| *queue == clip.queue)
        .count();
    assert!(hits >= 10, "only {hits} of 11 clips landed at 16 kHz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_refuses_at_once_and_counts_it() {
    let (service, registry) = start(&config(1));
    let first = service
        .listen(Language::Mandarin, ListenOptions::default())
        .expect("the one recogniser is free");
    let second = service.listen(Language::Mandarin, ListenOptions::default());
    assert_eq!(second.err(), Some(Unavailable::Busy));
    assert_eq!(
        service
            .listen(Language::Cantonese, ListenOptions::default())
            .err(),
        Some(Unavailable::NoRecognizer)
    );
    assert!(!service.has_recognizer(Language::Cantonese));
    let metrics = registry.render();
    assert!(
        metrics.contains("hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("hotline_speech_unavailable_total{lang=\"yue\",reason=\"no_recognizer\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_speech_sessions_active{lang=\"cmn\"} 1"),
        "{metrics}"
    );
    // Dropping the listener gives the recogniser back at once.
    drop(first);
    let third = service.listen(Language::Mandarin, ListenOptions::default());
    assert!(third.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sees_the_start_of_speech_then_the_final_result() {
    let (service, _) = start(&config(1));
    let samples = read_wav(&dev_dir().join("cmn-dev-006.wav")).expect("clip");
    let mut runs = Vec::new();
    for _ in 0..2 {
        let listener = service
            .listen(Language::Mandarin, ListenOptions::default())
            .expect("free");
        runs.push(run_clip(listener, &samples, Pace::Fast).await);
    }
    // The same recogniser, the same audio: the same words at the same times. Nothing of
    // the first caller (adaptation, the clock) carries over to the second.
    let (first, run) = (&runs[0], &runs[1]);
    let words = |run: &hotline::speech::ClipRun| {
        run.recognition()
            .map(|r| r.words.clone())
            .unwrap_or_default()
    };
    let (a, b) = (words(first), words(run));
    assert_eq!(a.len(), b.len(), "{a:?} {b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text, y.text);
        assert!(
            x.start.abs_diff(y.start) < Duration::from_millis(1),
            "{x:?} {y:?}"
        );
        assert!(
            x.end.abs_diff(y.end) < Duration::from_millis(1),
            "{x:?} {y:?}"
        );
        assert!((x.confidence - y.confidence).abs() < 0.1, "{x:?} {y:?}");
    }
    let kinds: Vec<&str> = run
        .events
        .iter()
        .map(|(_, e)| match e {
            SpeechEvent::SpeechStarted { .. } => "started",
            SpeechEvent::Partial { .. } => "partial",
            SpeechEvent::Final(_) => "final",
            SpeechEvent::NoInput { .. } => "no_input",
            SpeechEvent::Failed { .. } => "failed",
        })
        .collect();
    // Local decoding decides at the endpoint, in one burst: the start of speech (for
    // barge-in), then the result.
    assert_eq!(kinds, ["started", "final"], "{kinds:?}");
    let r = run.recognition().expect("final");
    assert_eq!(r.transcript, "公积金怎么提取");
    assert_eq!(r.reason, EndReason::Silence);
    assert_eq!(
        r.decision.intent.as_ref().map(|s| s.intent.as_str()),
        Some("housing_fund")
    );
    // The clip has 0.3 s of silence before speech; the endpoint is 700 ms after it.
    assert!(
        r.speech_start >= Duration::from_millis(200)
            && r.speech_start <= Duration::from_millis(400),
        "{:?}",
        r.speech_start
    );
    // 700 ms of silence, give or take the last short frame of the clip.
    let silence = r.endpoint - r.speech_end;
    assert!(
        silence >= Duration::from_millis(700) && silence < Duration::from_millis(720),
        "{silence:?}"
    );
    assert!(
        r.words
            .windows(2)
            .all(|w| w[0].end <= w[1].start + Duration::from_millis(1)),
        "{:?}",
        r.words
    );
    assert!(
        r.words
            .iter()
            .all(|w| w.confidence > 0.0 && w.confidence <= 1.0)
    );
    assert!(
        r.words
            .first()
            .is_some_and(|w| w.start >= r.speech_start - Duration::from_millis(100))
    );
    assert_eq!(r.stats.audio, r.endpoint);
    assert!(r.stats.decode > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_gives_no_input_and_long_speech_is_cut() {
    let (service, _) = start(&config(1));
    let opts = ListenOptions {
        no_input: Some(Duration::from_millis(1500)),
        ..ListenOptions::default()
    };
    let listener = service.listen(Language::Mandarin, opts).expect("free");
    let run = run_clip(listener, &[0i16; 8000], Pace::Fast).await;
    assert_eq!(
        run.end(),
        Some(&SpeechEvent::NoInput {
            at: Duration::from_millis(1500)
        })
    );

    let samples = read_wav(&dev_dir().join("cmn-dev-008.wav")).expect("clip");
    let opts = ListenOptions {
        max_utterance: Some(Duration::from_millis(1200)),
        ..ListenOptions::default()
    };
    let listener = service
        .listen(Language::Mandarin, opts)
        .expect("free again");
    let run = run_clip(listener, &samples, Pace::Fast).await;
    let r = run
        .recognition()
        .expect("a cut utterance still has its words");
    assert_eq!(r.reason, EndReason::MaxLength);
    assert_eq!(r.endpoint - r.speech_start, Duration::from_millis(1200));
    assert!(!r.transcript.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_after_the_end_says_so() {
    let (service, _) = start(&config(1));
    let opts = ListenOptions {
        no_input: Some(Duration::from_millis(200)),
        ..ListenOptions::default()
    };
    let mut listener = service.listen(Language::Mandarin, opts).expect("free");
    for _ in 0..10 {
        let _ = listener.push(&[0i16; 160]);
    }
    let end = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("an event");
    assert!(matches!(end, Some(SpeechEvent::NoInput { .. })), "{end:?}");
    assert_eq!(listener.push(&[0i16; 160]), Err(PushError::Ended));
}
