//! The Asterisk-compatible queue_log: `epoch|callid|queue|agent|EVENT|data1|data2|...`, with
//! the data fields app_queue writes for each event, so call-centre reporting tools that read
//! Asterisk's file read ours. `lines` is pure (it looks up what an event does not carry,
//! such as the original position, in the fold, before the fold applies the event);
//! `QueueLogFile` only appends text.
//!
//! Mapping: EnterQueue -> ENTERQUEUE(url|callerid|position); Connected ->
//! CONNECT(holdtime|bridged uniqueid|ringtime); CallEnded -> COMPLETECALLER or COMPLETEAGENT
//! (holdtime|calltime|origposition), engine-ended calls count as COMPLETEAGENT; Abandoned ->
//! ABANDON(position|origposition|waittime); ExitWithTimeout and Overflowed ->
//! EXITWITHTIMEOUT(position|origposition|waittime); ExitEmpty -> EXITEMPTY(position|
//! origposition|waittime); JoinRefused -> JOINEMPTY(1|1|0); RingNoAnswer -> RINGNOANSWER(ringtime
//! in ms); login/logout -> ADDMEMBER/REMOVEMEMBER and pause/resume -> PAUSE(reason)/UNPAUSE
//! once per queue the agent serves; EngineStarted -> QUEUESTART. Times are whole seconds
//! except RINGNOANSWER's, as in Asterisk. Events Asterisk has no line for are not written.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::events::{Event, EventKind, HungUpBy};

use super::fold::Fold;

/// The queue_log lines for one event. Call it before `fold.apply(event)`.
pub fn lines(ev: &Event, fold: &Fold) -> Vec<String> {
    let epoch = ev.at.div_euclid(1000);
    let line = |call: &str, queue: &str, agent: &str, event: &str, data: &[String]| {
        let mut l = format!(
            "{epoch}|{}|{}|{}|{event}",
            clean(call),
            clean(queue),
            clean(agent)
        );
        for d in data {
            l.push('|');
            l.push_str(&clean(d));
        }
        l
    };
    let secs = |ms: u64| (ms / 1000).to_string();
    let orig = |call_id: &str| {
        fold.call(call_id)
            .map_or(0, |c| c.orig_position)
            .to_string()
    };
    let per_queue = |agent: &str, queues: &[String], event: &str, data: &[String]| {
        queues
            .iter()
            .map(|q| line("NONE", q, agent, event, data))
            .collect()
    };
    match &ev.kind {
        EventKind::EnterQueue {
            call_id,
            queue,
            position,
            ..
        } => vec![line(
            call_id,
            queue,
            "NONE",
            "ENTERQUEUE",
            &[
                String::new(),
                fold.caller(call_id).unwrap_or("").to_owned(),
                position.to_string(),
            ],
        )],
        EventKind::RingNoAnswer {
            call_id,
            queue,
            agent,
            ring_ms,
        } => vec![line(
            call_id,
            queue,
            agent,
            "RINGNOANSWER",
            &[ring_ms.to_string()],
        )],
        EventKind::Connected {
            call_id,
            queue,
            agent,
            wait_ms,
            ring_ms,
        } => vec![line(
            call_id,
            queue,
            agent,
            "CONNECT",
            &[secs(*wait_ms), String::new(), secs(*ring_ms)],
        )],
        EventKind::CallEnded {
            call_id,
            queue,
            agent,
            talk_ms,
            hung_up_by,
        } => {
            let event = match hung_up_by {
                HungUpBy::Caller => "COMPLETECALLER",
                HungUpBy::Agent | HungUpBy::System => "COMPLETEAGENT",
            };
            let hold = fold.call(call_id).map_or(0, |c| c.wait_ms);
            vec![line(
                call_id,
                queue,
                agent,
                event,
                &[secs(hold), secs(*talk_ms), orig(call_id)],
            )]
        }
        EventKind::Abandoned {
            call_id,
            queue,
            position,
            wait_ms,
        } => vec![line(
            call_id,
            queue,
            "NONE",
            "ABANDON",
            &[position.to_string(), orig(call_id), secs(*wait_ms)],
        )],
        EventKind::ExitWithTimeout {
            call_id,
            queue,
            position,
            wait_ms,
        }
        | EventKind::ExitEmpty {
            call_id,
            queue,
            position,
            wait_ms,
        }
        | EventKind::Overflowed {
            call_id,
            queue,
            position,
            wait_ms,
            ..
        } => {
            let name = if matches!(ev.kind, EventKind::ExitEmpty { .. }) {
                "EXITEMPTY"
            } else {
                "EXITWITHTIMEOUT"
            };
            vec![line(
                call_id,
                queue,
                "NONE",
                name,
                &[position.to_string(), orig(call_id), secs(*wait_ms)],
            )]
        }
        EventKind::AgentLogin { agent, queues } => {
            let queues = if queues.is_empty() {
                fold.agent_queues(agent)
            } else {
                queues.clone()
            };
            per_queue(agent, &queues, "ADDMEMBER", &[String::new()])
        }
        EventKind::AgentLogout { agent, .. } => per_queue(
            agent,
            &fold.agent_queues(agent),
            "REMOVEMEMBER",
            &[String::new()],
        ),
        EventKind::AgentPause { agent, reason } => per_queue(
            agent,
            &fold.agent_queues(agent),
            "PAUSE",
            std::slice::from_ref(reason),
        ),
        EventKind::AgentResume { agent } => per_queue(
            agent,
            &fold.agent_queues(agent),
            "UNPAUSE",
            &[String::new()],
        ),
        // The caller would have been first, and waited nothing.
        EventKind::JoinRefused { call_id, queue } => vec![line(
            call_id,
            queue,
            "NONE",
            "JOINEMPTY",
            &["1".into(), "1".into(), "0".into()],
        )],
        EventKind::EngineStarted {} => {
            vec![line("NONE", "NONE", "NONE", "QUEUESTART", &[String::new()])]
        }
        EventKind::CallOffered { .. }
        | EventKind::IntentRecognised { .. }
        | EventKind::DtmfFallback { .. }
        | EventKind::AgentOffered { .. }
        | EventKind::CallFinished { .. }
        | EventKind::WrapUpStarted { .. }
        | EventKind::WrapUpEnded { .. }
        | EventKind::PeerUp { .. }
        | EventKind::PeerDown { .. }
        | EventKind::CallReferred { .. }
        | EventKind::EngineStopped {} => Vec::new(),
    }
}

/// A field must not break the line format.
fn clean(s: &str) -> String {
    s.replace(['|', '\n', '\r'], "_")
}

/// Appends lines to the queue_log file, reopening it for each batch so that a log rotation
/// by renaming the file is picked up.
#[derive(Debug, Clone)]
pub struct QueueLogFile {
    path: PathBuf,
}

impl QueueLogFile {
    pub fn new(path: &Path) -> QueueLogFile {
        QueueLogFile {
            path: path.to_owned(),
        }
    }

    pub fn append(&self, lines: &[String]) -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::config::FoldSettings;

    fn ev(at: i64, kind: EventKind) -> Event {
        Event { at, kind }
    }

    #[test]
    fn a_call_from_entry_to_completion_as_asterisk_writes_it() {
        let mut fold = Fold::new(FoldSettings::utc());
        let t0 = 1_700_000_000_000;
        let events = [
            ev(
                t0,
                EventKind::AgentLogin {
                    agent: "a1".into(),
                    queues: vec!["tax".into(), "water".into()],
                },
            ),
            ev(
                t0 + 100,
                EventKind::CallOffered {
                    call_id: "c1".into(),
                    caller: "13800138000".into(),
                    called: "12345".into(),
                },
            ),
            ev(
                t0 + 1000,
                EventKind::EnterQueue {
                    call_id: "c1".into(),
                    queue: "tax".into(),
                    position: 3,
                    language: "cmn".into(),
                    intent: None,
                    priority: 0,
                },
            ),
            ev(
                t0 + 5000,
                EventKind::RingNoAnswer {
                    call_id: "c1".into(),
                    queue: "tax".into(),
                    agent: "a2".into(),
                    ring_ms: 3500,
                },
            ),
            ev(
                t0 + 13_000,
                EventKind::Connected {
                    call_id: "c1".into(),
                    queue: "tax".into(),
                    agent: "a1".into(),
                    wait_ms: 12_000,
                    ring_ms: 2900,
                },
            ),
            ev(
                t0 + 73_500,
                EventKind::CallEnded {
                    call_id: "c1".into(),
                    queue: "tax".into(),
                    agent: "a1".into(),
                    talk_ms: 60_500,
                    hung_up_by: HungUpBy::Caller,
                },
            ),
            ev(
                t0 + 80_000,
                EventKind::AgentPause {
                    agent: "a1".into(),
                    reason: "lunch|break".into(),
                },
            ),
            ev(t0 + 90_000, EventKind::EngineStarted {}),
        ];
        let mut out = Vec::new();
        for e in &events {
            out.extend(lines(e, &fold));
            fold.apply(e);
        }
        let s = t0 / 1000;
        assert_eq!(
            out,
            [
                format!("{s}|NONE|tax|a1|ADDMEMBER|"),
                format!("{s}|NONE|water|a1|ADDMEMBER|"),
                format!("{}|c1|tax|NONE|ENTERQUEUE||13800138000|3", s + 1),
                format!("{}|c1|tax|a2|RINGNOANSWER|3500", s + 5),
                format!("{}|c1|tax|a1|CONNECT|12||2", s + 13),
                format!("{}|c1|tax|a1|COMPLETECALLER|12|60|3", s + 73),
                format!("{}|NONE|tax|a1|PAUSE|lunch_break", s + 80),
                format!("{}|NONE|water|a1|PAUSE|lunch_break", s + 80),
                format!("{}|NONE|NONE|NONE|QUEUESTART|", s + 90),
            ]
        );
    }

    #[test]
    fn abandon_and_overflow_carry_positions_and_wait() {
        let mut fold = Fold::new(FoldSettings::utc());
        let t0 = 1_700_000_000_000;
        let enter = ev(
            t0,
            EventKind::EnterQueue {
                call_id: "c".into(),
                queue: "q".into(),
                position: 4,
                language: "yue".into(),
                intent: None,
                priority: 0,
            },
        );
        fold.apply(&enter);
        let ab = ev(
            t0 + 30_000,
            EventKind::Abandoned {
                call_id: "c".into(),
                queue: "q".into(),
                position: 2,
                wait_ms: 30_000,
            },
        );
        assert_eq!(
            lines(&ab, &fold),
            [format!("{}|c|q|NONE|ABANDON|2|4|30", t0 / 1000 + 30)]
        );
        let of = ev(
            t0 + 45_000,
            EventKind::Overflowed {
                call_id: "c".into(),
                queue: "q".into(),
                target: "other".into(),
                wait_ms: 45_000,
                position: 1,
            },
        );
        assert_eq!(
            lines(&of, &fold),
            [format!(
                "{}|c|q|NONE|EXITWITHTIMEOUT|1|4|45",
                t0 / 1000 + 45
            )]
        );
        let refused = ev(
            t0 + 50_000,
            EventKind::JoinRefused {
                call_id: "c".into(),
                queue: "other".into(),
            },
        );
        assert_eq!(
            lines(&refused, &fold),
            [format!("{}|c|other|NONE|JOINEMPTY|1|1|0", t0 / 1000 + 50)]
        );
    }
}
