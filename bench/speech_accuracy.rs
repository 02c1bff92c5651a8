//! Speech accuracy, latency and memory benchmark (issue 4), run by bench/speech_accuracy.sh.
//!
//! Every clip of ../shared/speech/dev/manifest.tsv goes through the path a call takes:
//! `SpeechService::listen`, 8 kHz audio in 20 ms frames, the configured endpointing, the
//! shipped 12345 grammar. Printed: intent accuracy, character error rate, real-time
//! factor per stream, fed at 8 kHz and upsampled to 16 kHz; decision latency after the
//! endpoint at real-time pace; the Cantonese text lines through the classifier; language
//! detection; memory per loaded model and per active recogniser.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::metrics::Registry;
use hotline::speech::{
    Classifier, Language, ListenOptions, Pace, SpeechConfig, SpeechService, TextTools, devset,
    read_wav, run_clip,
};

fn main() {
    let dev = devset::dev_dir().unwrap_or_else(|e| fail(&e.to_string()));
    let clips = devset::clips(&dev).unwrap_or_else(|e| fail(&e.to_string()));
    let lines = devset::cantonese_lines(&dev).unwrap_or_else(|e| fail(&e.to_string()));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "speech benchmark: {} Mandarin clips, {} Cantonese lines, {cores} cores, load average {}",
        clips.len(),
        lines.len(),
        load_average()
    );

    memory(&clips);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));

    println!(
        "\n== Mandarin clips, fed as fast as the recognisers take them, {cores} streams at a time"
    );
    let at_8k = runtime.block_on(run_set(&clips, 8000, cores, Pace::Fast));
    let at_16k = runtime.block_on(run_set(&clips, 16000, cores, Pace::Fast));
    at_8k.print("fed at 8 kHz (as received)");
    at_16k.print("upsampled to 16 kHz here");

    println!(
        "\n== Mandarin clips at real-time pace (one frame every 20 ms), {cores} calls at a time, 8 kHz"
    );
    let paced = runtime.block_on(run_set(&clips, 8000, cores, Pace::RealTime));
    paced.print("real time");
    let mut latency: Vec<Duration> = paced.latency.clone();
    println!(
        "  decision latency after the endpoint frame: p50 {:.1?}, p95 {:.1?}, max {:.1?} (aim: p95 < 300 ms)",
        percentile(&mut latency, 0.5),
        percentile(&mut latency, 0.95),
        latency.last().copied().unwrap_or_default()
    );

    cantonese_text(&lines, &clips);
    runtime.block_on(language_by_confidence(&clips, &lines));
}

fn fail(message: &str) -> ! {
    eprintln!("speech benchmark: {message}");
    std::process::exit(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Resident memory of this process, in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn model_dir() -> PathBuf {
    match SpeechConfig::default().backend(Language::Mandarin) {
        Ok(hotline::speech::Backend::Vosk { model, .. }) => model,
        _ => fail("no Mandarin model configured"),
    }
}

/// Memory of the dictionaries, of one loaded model, and of recognisers that are
/// mid-utterance (their decoding-graph caches warmed by a clip each).
fn memory(clips: &[devset::Clip]) {
    println!("\n== Memory (resident set)");
    let base = rss_mb();
    let started = Instant::now();
    let tools = TextTools::load().unwrap_or_else(|e| fail(&e.to_string()));
    let grammar = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars/12345");
    let classifier = Classifier::load(&grammar, tools)
        .unwrap_or_else(|_| fail("the shipped grammar does not load"));
    println!(
        "  OpenCC + jieba dictionaries + grammar: {:.1} MB, loaded in {:.0?} (once per process)",
        rss_mb() - base,
        started.elapsed()
    );
    drop(classifier);
    vosk::set_log_level(vosk::LogLevel::Warn);
    let before = rss_mb();
    let started = Instant::now();
    let model = vosk::Model::new(model_dir().to_string_lossy())
        .unwrap_or_else(|| fail("Vosk cannot load the model"));
    let model_mb = rss_mb() - before;
    println!(
        "  one loaded model (vosk-model-small-cn-0.22): {model_mb:.1} MB, loaded in {:.0?}",
        started.elapsed()
    );
    const N: usize = 4;
    let before = rss_mb();
    let started = Instant::now();
    let mut recognizers: Vec<vosk::Recognizer> = (0..N)
        .filter_map(|_| vosk::Recognizer::new(&model, 8000.0))
        .collect();
    let created = started.elapsed() / N as u32;
    let fresh_mb = (rss_mb() - before) / N as f64;
    let mut cold = Duration::ZERO;
    for (r, clip) in recognizers.iter_mut().zip(clips) {
        let samples = read_wav(&clip.file).unwrap_or_default();
        let t = Instant::now();
        for frame in samples.chunks(160) {
            let _ = r.accept_waveform(frame);
        }
        cold += t.elapsed();
    }
    let active_mb = (rss_mb() - before) / N as f64;
    // The same recognisers on the next clips: their graph caches are warm now.
    let mut warm = Duration::ZERO;
    for (r, clip) in recognizers.iter_mut().zip(&clips[N..]) {
        let _ = r.final_result();
        let samples = read_wav(&clip.file).unwrap_or_default();
        let t = Instant::now();
        for frame in samples.chunks(160) {
            let _ = r.accept_waveform(frame);
        }
        warm += t.elapsed();
    }
    println!(
        "  per recogniser: {fresh_mb:.1} MB when created ({created:.0?} to create), {active_mb:.1} MB when active mid-utterance (mean of {N})"
    );
    println!(
        "  decoding a first clip on a fresh recogniser took {:.1}x as long as on a warm one: recognisers are kept warm across calls",
        cold.as_secs_f64() / warm.as_secs_f64().max(1e-9)
    );
}

#[derive(Default)]
struct SetResult {
    clips: usize,
    hits: usize,
    ref_chars: usize,
    edits: usize,
    rtf: Vec<f64>,
    finalize: Vec<Duration>,
    latency: Vec<Duration>,
    misses: Vec<String>,
    wall: Duration,
    audio: Duration,
}

impl SetResult {
    fn print(&self, name: &str) {
        let mut rtf = self.rtf.clone();
        rtf.sort_by(f64::total_cmp);
        let mut finalize = self.finalize.clone();
        println!(
            "  {name}: intent accuracy {}/{} = {:.1}%, CER {:.1}% ({} edits / {} chars), real-time factor per stream mean {:.3} p95 {:.3}, final decode + classify p50 {:.1?} p95 {:.1?}; {:.1?} of audio in {:.1?}",
            self.hits,
            self.clips,
            100.0 * self.hits as f64 / self.clips.max(1) as f64,
            100.0 * self.edits as f64 / self.ref_chars.max(1) as f64,
            self.edits,
            self.ref_chars,
            rtf.iter().sum::<f64>() / rtf.len().max(1) as f64,
            rtf.get(((rtf.len() as f64 * 0.95) as usize).min(rtf.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default(),
            percentile(&mut finalize, 0.5),
            percentile(&mut finalize, 0.95),
            self.audio,
            self.wall,
        );
        for m in &self.misses {
            println!("    miss: {m}");
        }
    }
}

async fn run_set(clips: &[devset::Clip], rate: u32, streams: usize, pace: Pace) -> SetResult {
    let config = SpeechConfig {
        decoders: streams,
        max_load: 1.0,
        warm_recognizers: streams,
        vosk_sample_rate: rate,
        ..SpeechConfig::default()
    };
    let registry = Registry::new();
    let service = SpeechService::start(&config, &registry).unwrap_or_else(|e| fail(&e.to_string()));
    let started = Instant::now();
    let mut result = SetResult::default();
    for batch in clips.chunks(streams) {
        let tasks: Vec<_> = batch
            .iter()
            .cloned()
            .map(|clip| tokio::spawn(one_clip(service.clone(), clip, pace)))
            .collect();
        for task in tasks {
            let Ok((clip, run)) = task.await else {
                fail("a clip task panicked")
            };
            result.clips += 1;
            let Some(r) = run.recognition() else {
                result
                    .misses
                    .push(format!("{}: no final result", clip.file.display()));
                continue;
            };
            let queue = r.decision.intent.as_ref().map_or("", |s| s.intent.as_str());
            if queue == clip.queue {
                result.hits += 1;
            } else {
                result.misses.push(format!(
                    "{} said {} heard {} -> `{queue}`, want `{}`",
                    name(&clip.file),
                    clip.text,
                    r.transcript,
                    clip.queue
                ));
            }
            let reference: Vec<char> = clip.text.chars().filter(|c| c.is_alphanumeric()).collect();
            let heard: Vec<char> = r
                .transcript
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect();
            result.ref_chars += reference.len();
            result.edits += edit_distance(&reference, &heard);
            result.rtf.push(r.stats.real_time_factor());
            result.finalize.push(r.stats.finalize);
            result.audio += r.stats.audio;
            result.latency.extend(run.decision_latency);
        }
    }
    result.wall = started.elapsed();
    result
}

async fn one_clip(
    service: Arc<SpeechService>,
    clip: devset::Clip,
    pace: Pace,
) -> (devset::Clip, hotline::speech::ClipRun) {
    let samples = read_wav(&clip.file).unwrap_or_else(|e| fail(&e.to_string()));
    let listener = service
        .listen(Language::Mandarin, ListenOptions::default())
        .unwrap_or_else(|e| fail(&format!("listen: {e}")));
    let run = run_clip(listener, &samples, pace).await;
    (clip, run)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    if values.is_empty() {
        return Duration::ZERO;
    }
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The Cantonese lines (text only: no Cantonese recogniser exists here) through the
/// classifier, and text-based language detection on both sets.
fn cantonese_text(lines: &[devset::TextLine], clips: &[devset::Clip]) {
    println!("\n== Cantonese text lines through the classifier");
    let tools = TextTools::load().unwrap_or_else(|e| fail(&e.to_string()));
    let grammar = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars/12345");
    let classifier = Classifier::load(&grammar, tools)
        .unwrap_or_else(|_| fail("the shipped grammar does not load"));
    let mut hits = 0;
    let mut times = Vec::new();
    let mut detected = 0;
    for line in lines {
        let started = Instant::now();
        let d = classifier.classify(&line.text);
        times.push(started.elapsed());
        if d.intent.as_ref().map(|s| s.intent.as_str()) == Some(line.queue.as_str()) {
            hits += 1;
        } else {
            println!(
                "    miss: {} -> {:?}, want {}",
                line.text,
                d.intent.map(|s| s.intent),
                line.queue
            );
        }
        if d.language.language == Language::Cantonese {
            detected += 1;
        }
    }
    println!(
        "  intent accuracy {hits}/{} = {:.1}%; classification p50 {:.2?} p95 {:.2?}",
        lines.len(),
        100.0 * hits as f64 / lines.len().max(1) as f64,
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.95)
    );
    let mandarin_flagged = clips
        .iter()
        .filter(|c| classifier.classify(&c.text).language.language == Language::Cantonese)
        .count();
    println!(
        "  language by Cantonese-only words: {detected}/{} Cantonese lines detected, {mandarin_flagged}/{} Mandarin sentences wrongly flagged",
        lines.len(),
        clips.len()
    );
}

/// Whether the Mandarin recogniser's confidence tells Cantonese speech from Mandarin:
/// espeak-ng speaks the Cantonese lines (voice yue) and the Mandarin sentences (voice
/// cmn, as a control for synthetic robotic speech) into the Mandarin model.
async fn language_by_confidence(clips: &[devset::Clip], lines: &[devset::TextLine]) {
    println!("\n== Language by the Mandarin model's confidence (espeak-ng voices)");
    let dir = std::env::temp_dir().join(format!("hotline-bench-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err()
        || Command::new("espeak-ng").arg("--version").output().is_err()
    {
        println!("  skipped: espeak-ng is not installed");
        return;
    }
    let config = SpeechConfig {
        decoders: 1,
        max_load: 1.0,
        warm_recognizers: 1,
        ..SpeechConfig::default()
    };
    let registry = Registry::new();
    let service = SpeechService::start(&config, &registry).unwrap_or_else(|e| fail(&e.to_string()));
    let report = |name: &str, confidences: Vec<f32>, matched: usize, n: usize| {
        let mean = confidences.iter().sum::<f32>() / confidences.len().max(1) as f32;
        let low = confidences.iter().filter(|c| **c < 0.6).count();
        println!(
            "  {name}: mean word confidence {mean:.2}, {low}/{n} utterances below 0.6, {matched}/{n} still got an intent"
        );
    };
    let score = |samples: Vec<i16>| {
        let service = service.clone();
        async move {
            let listener = service
                .listen(Language::Mandarin, ListenOptions::default())
                .ok()?;
            let run = run_clip(listener, &samples, Pace::Fast).await;
            run.recognition()
                .map(|r| (r.confidence, r.decision.intent.is_some()))
        }
    };
    let mut real = (Vec::new(), 0);
    for clip in clips {
        if let Some((c, m)) = score(read_wav(&clip.file).unwrap_or_default()).await {
            real.0.push(c);
            real.1 += usize::from(m);
        }
    }
    report(
        "Mandarin dev clips (neural TTS)",
        real.0,
        real.1,
        clips.len(),
    );
    for (voice, texts) in [
        (
            "cmn",
            clips.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        ),
        ("yue", lines.iter().map(|l| l.text.as_str()).collect()),
    ] {
        let mut confidences = Vec::new();
        let mut matched = 0;
        for (i, text) in texts.iter().enumerate() {
            let raw = dir.join(format!("{voice}-{i}.wav"));
            let wav = dir.join(format!("{voice}-{i}-8k.wav"));
            let ok = Command::new("espeak-ng")
                .args(["-v", voice, "-w"])
                .arg(&raw)
                .arg(text)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new("sox")
                    .arg(&raw)
                    .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
                    .arg(&wav)
                    .status()
                    .is_ok_and(|s| s.success());
            if !ok {
                continue;
            }
            if let Some((c, m)) = score(read_wav(&wav).unwrap_or_default()).await {
                confidences.push(c);
                matched += usize::from(m);
            }
        }
        let name = if voice == "cmn" {
            "espeak-ng Mandarin (control)"
        } else {
            "espeak-ng Cantonese"
        };
        report(name, confidences, matched, texts.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
