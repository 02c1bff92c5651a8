//! Reloading the dialplans (SIGHUP or the admin API): a broken dialplan is refused with its
//! `file:line:column` problems and the running one stays; a good one is swapped in for new
//! calls while a call in progress finishes on the one it started with.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{ADMIN_TOKEN, Engine, Sipp, http, out_dir, tone};

/// A dialplan that plays a prompt of `secs` then hangs up with `outcome`.
fn write_plan(dir: &Path, outcome: &str, secs: f32) {
    tone(&dir.join(format!("{outcome}.wav")), secs, 300, false);
    let plan = format!(
        "languages: [cmn]\ndefault: true\nprompts:\n  hello:\n    cmn: {{file: {outcome}.wav}}\n\
steps:\n  start:\n    play: hello\n    next: done\n  done:\n    hangup: {outcome}\n"
    );
    std::fs::write(dir.join("plan.yaml"), plan).expect("write the dialplan");
}

fn caller(engine: &Engine) -> Sipp {
    let wav = engine.dir.join("caller.wav");
    if !wav.exists() {
        tone(&wav, 1.0, 440, true);
    }
    Sipp::start(
        &engine.dir,
        engine.addr(),
        "caller_prompt.xml",
        &[("WAV", &wav.display().to_string())],
        &["-m", "1"],
    )
}

#[test]
fn reloads_swap_in_valid_dialplans_only_and_calls_keep_theirs() {
    let dir = out_dir("reload");
    let plans = dir.join("plans");
    std::fs::create_dir_all(&plans).expect("plans folder");
    write_plan(&plans, "first", 3.0);
    let directory = format!("directory = \"{}\"\n", plans.display());
    let engine = Engine::start_with(&dir, &[("dialplan", &directory)]);

    // A call starts on the first dialplan; the second is swapped in while it plays.
    let long_call = caller(&engine);
    assert!(engine.wait_log("prompts=hello", Duration::from_secs(10)));
    write_plan(&plans, "second", 0.5);
    engine.signal("HUP");
    assert!(
        engine.wait_log("reloaded on SIGHUP", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    assert!(long_call.finish(Duration::from_secs(30)).success);
    assert!(engine.wait_log("outcome=first", Duration::from_secs(20)));
    assert_eq!(
        engine.count_log("outcome=first"),
        1,
        "the call in progress kept its dialplan"
    );
    assert!(caller(&engine).finish(Duration::from_secs(30)).success);
    assert!(engine.wait_log("outcome=second", Duration::from_secs(5)));

    // A broken dialplan is refused, with its position, and the second one stays.
    std::fs::write(
        plans.join("plan.yaml"),
        "languages: [cmn]\ndefault: true\nsteps:\n  start:\n    goto: nowhere\n",
    )
    .expect("write the broken dialplan");
    let (status, body) = http(engine.api, "POST", "/api/v1/reload", Some(ADMIN_TOKEN));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("plan.yaml:5:11"), "{body}");
    let (status, _) = http(engine.api, "POST", "/api/v1/reload", None);
    assert_eq!(status, 401, "reloading needs the admin token");
    assert!(caller(&engine).finish(Duration::from_secs(30)).success);
    assert!(
        engine.wait_log_count("outcome=second", 2, Duration::from_secs(5)),
        "{}",
        engine.log()
    );
}
