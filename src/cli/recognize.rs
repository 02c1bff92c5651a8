//! `hotline recognize FILE.wav`: one recording through the path a call takes (20 ms frames
//! into a pooled recogniser, the configured endpointing, the intent grammar), printing the
//! events, the words with their timing and the decision.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use hotline::metrics::Registry;
use hotline::speech::{
    Language, ListenOptions, Pace, SpeechEvent, SpeechService, read_wav, run_clip,
};

#[derive(clap::Args)]
pub struct Args {
    /// The recording: WAV, 8000 Hz, mono, 16-bit PCM.
    pub file: PathBuf,
    /// The caller's language: mandarin (cmn) or cantonese (yue).
    #[arg(long, default_value = "mandarin")]
    pub lang: Language,
    /// Feed the audio at real-time pace, as RTP does, to see the decision latency.
    #[arg(long)]
    pub realtime: bool,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let mut config = super::serve::load_config(config_path).context("loading the config")?;
    // One recording needs one decoder and one recogniser, not one per core.
    config.speech.decoders = 1;
    config.speech.warm_recognizers = 1;
    config.speech.max_load = 1.0;
    let samples = read_wav(&args.file)?;
    let registry = Registry::new();
    let service =
        SpeechService::start(&config.speech, &registry).context("starting the speech service")?;
    println!("loaded in {:.0?}", service.load_time());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pace = if args.realtime {
        Pace::RealTime
    } else {
        Pace::Fast
    };
    let run = runtime.block_on(async {
        let listener = service
            .listen(args.lang, ListenOptions::default())
            .map_err(|e| anyhow!("cannot listen in {}: {e}", args.lang))?;
        anyhow::Ok(run_clip(listener, &samples, pace).await)
    })?;
    for (at, event) in &run.events {
        match event {
            SpeechEvent::SpeechStarted { at: audio } => {
                println!("{at:>9.1?}  speech started at {audio:.2?} of audio");
            }
            SpeechEvent::Partial { text } => println!("{at:>9.1?}  partial: {text}"),
            SpeechEvent::NoInput { at: audio } => {
                println!("{at:>9.1?}  no input: nothing said in {audio:.1?}");
            }
            SpeechEvent::Failed { reason } => println!("{at:>9.1?}  failed: {reason}"),
            SpeechEvent::Final(r) => {
                println!(
                    "{at:>9.1?}  final: {} (confidence {:.2})",
                    r.transcript, r.confidence
                );
                for w in &r.words {
                    println!(
                        "             {:>6.2}s-{:>6.2}s  {:.2}  {}",
                        w.start.as_secs_f32(),
                        w.end.as_secs_f32(),
                        w.confidence,
                        w.text
                    );
                }
                println!(
                    "speech {:.2?}-{:.2?}, endpoint at {:.2?} ({:?}); decode {:.0?} for {:.1?} of audio (real-time factor {:.3}), endpoint to decision {:.1?}",
                    r.speech_start,
                    r.speech_end,
                    r.endpoint,
                    r.reason,
                    r.stats.decode,
                    r.stats.audio,
                    r.stats.real_time_factor(),
                    r.stats.finalize
                );
                if let Some(latency) = run.decision_latency {
                    println!("decision {latency:.1?} after the endpoint frame was pushed");
                }
                print!("{}", r.decision);
            }
        }
    }
    // Every run ends with an `intent:` line, as a decision does: silence, noise and a
    // cough route nowhere.
    if !run
        .events
        .iter()
        .any(|(_, e)| matches!(e, SpeechEvent::Final(_)))
    {
        println!("intent:     none (no words recognised)");
    }
    Ok(())
}
