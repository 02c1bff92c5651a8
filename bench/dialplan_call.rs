//! What the dialplan interpreter costs per call, on the shipped 12345 flow: a caller who
//! says what they need (language key, speech with barge-in, queue with its prompt) and
//! one who falls back to the key menu. The baseline in the same run is a call that only
//! starts (greeting prompt and language listen), so the ratio shows what a full walk adds.
//! Run: `cargo bench --bench dialplan_call`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hotline::dialplan::{
    Action, CallInfo, Dialplan, DialplanConfig, DialplanSet, Input, Interpreter, Speech,
    SpeechResult, Unavailable, ValidationContext,
};

fn hotline() -> Arc<Dialplan> {
    let set = DialplanSet::load(
        &[PathBuf::from("dialplans")],
        &DialplanConfig::default().calendar(),
        &ValidationContext::default(),
    )
    .expect("the shipped dialplans load");
    Arc::clone(set.select("12345", None).expect("the 12345 flow"))
}

/// Plays the call task: answers every action the way the media and speech edges would.
struct Edge {
    playing: Option<hotline::dialplan::PlayId>,
    listening: Option<hotline::dialplan::ListenId>,
    queued: Option<String>,
}

impl Edge {
    fn drain(&mut self, i: &mut Interpreter) {
        while let Some(a) = i.poll_action() {
            match a {
                Action::Play { id, .. } => self.playing = Some(id),
                Action::Listen { id, .. } => self.listening = Some(id),
                Action::Enqueue(e) => self.queued = Some(e.queue),
                other => {
                    black_box(other);
                }
            }
        }
    }
}

fn start(plan: &Arc<Dialplan>, now: Instant) -> (Interpreter, Edge) {
    let call = CallInfo {
        call_id: "bench".into(),
        caller: "13800001111".into(),
        called: "12345".into(),
        trunk: Some("pbx".into()),
        ..CallInfo::default()
    };
    let mut i = Interpreter::start(Arc::clone(plan), call, now, jiff::Timestamp::UNIX_EPOCH);
    let mut e = Edge {
        playing: None,
        listening: None,
        queued: None,
    };
    e.drain(&mut i);
    (i, e)
}

fn speech_call(plan: &Arc<Dialplan>, now: Instant) -> Option<String> {
    let (mut i, mut e) = start(plan, now);
    i.handle(now, Input::Digit('1'));
    e.drain(&mut i);
    let listen = e.listening.expect("ask listens");
    i.handle(now, Input::Speech(listen, Speech::Partial("我想".into())));
    i.handle(
        now,
        Input::Speech(
            listen,
            Speech::Final(SpeechResult {
                alternatives: Vec::new(),
                transcript: "我想查一下社保".into(),
                intent: Some("social_insurance".into()),
                confidence: 0.93,
                language: None,
            }),
        ),
    );
    e.drain(&mut i);
    e.queued
}

fn menu_call(plan: &Arc<Dialplan>, now: Instant) -> Option<String> {
    let (mut i, mut e) = start(plan, now);
    i.handle(now, Input::Digit('2'));
    e.drain(&mut i);
    let listen = e.listening.expect("ask listens");
    i.handle(
        now,
        Input::Speech(listen, Speech::Unavailable(Unavailable::NoRecognizer)),
    );
    e.drain(&mut i);
    i.handle(now, Input::PromptDone(e.playing.expect("menu")));
    let later = now + Duration::from_secs(2);
    i.handle_timeout(later);
    i.handle(later, Input::Digit('6'));
    e.drain(&mut i);
    e.queued
}

fn bench(c: &mut Criterion) {
    let plan = hotline();
    let now = Instant::now();
    assert_eq!(speech_call(&plan, now).as_deref(), Some("social_insurance"));
    assert_eq!(menu_call(&plan, now).as_deref(), Some("labor"));
    let mut g = c.benchmark_group("dialplan_call");
    g.bench_function("start only (baseline)", |b| {
        b.iter(|| black_box(start(&plan, now).1.playing))
    });
    g.bench_function("speech to queue", |b| {
        b.iter(|| black_box(speech_call(&plan, now)))
    });
    g.bench_function("cantonese key menu to queue", |b| {
        b.iter(|| black_box(menu_call(&plan, now)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
