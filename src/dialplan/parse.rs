//! Reads one dialplan file into a `Dialplan`: the top level (languages, routes, prompts,
//! schedules) here, the steps in `parse_step`. Reports every problem it can see in one pass;
//! checks that need the whole plan or outside knowledge are `validate`'s.

use std::collections::BTreeMap;
use std::path::Path;

use super::hours::{Calendar, Opening, Schedule, parse_days, parse_times};
use super::model::{Called, Dialplan, Pos, PromptDef, PromptSource, Route, Target};
use super::parse_step::StepParser;
use super::yaml::{self, Kind, Node, Reader};
use crate::diag::Diagnostic;

/// The plan as far as it could be read (absent only when the YAML itself is broken), and
/// every problem found on the way.
pub fn parse(file: &Path, src: &str, calendar: Calendar) -> (Option<Dialplan>, Vec<Diagnostic>) {
    let mut r = Reader::new(file);
    let root = match yaml::parse(src) {
        Ok(root) => root,
        Err((pos, message)) => {
            r.error(pos, message);
            return (None, r.diagnostics);
        }
    };
    let top_pos = Pos { line: 1, column: 1 };
    let Some(mut top) = r.fields(&root, "the dialplan") else {
        return (None, r.diagnostics);
    };

    let languages = top
        .require(&mut r, top_pos, "languages")
        .map(|n| r.texts(n, "`languages`"))
        .unwrap_or_default();
    let routes = top
        .take("match")
        .map(|n| parse_routes(&mut r, n))
        .unwrap_or_default();
    let default = top
        .take("default")
        .and_then(|n| r.boolean(n, "`default`").filter(|d| *d).map(|_| n.pos));
    let start = top.take("start");
    let prompts = top
        .take("prompts")
        .map(|n| parse_prompts(&mut r, n, file))
        .unwrap_or_default();
    let schedules = top
        .take("schedules")
        .map(|n| parse_schedules(&mut r, n))
        .unwrap_or_default();
    let steps_node = top.require(&mut r, top_pos, "steps");
    top.finish(&mut r);

    let mut seen = BTreeMap::new();
    for (code, pos) in &languages {
        if seen.insert(code.clone(), *pos).is_some() {
            r.error(*pos, format!("language `{code}` is declared twice"));
        }
    }
    if languages.is_empty() && r.diagnostics.is_empty() {
        r.error(top_pos, "`languages` must name at least one language");
    }
    let languages: Vec<String> = languages.into_iter().map(|(code, _)| code).collect();

    let steps_entries = steps_node
        .and_then(|n| r.map(n, "`steps`"))
        .unwrap_or_default();
    // One name per entry, even a broken one, so that step indexes match `names`.
    let names: Vec<String> = steps_entries
        .iter()
        .map(|(k, _)| r.text(k, "a step name").unwrap_or_default())
        .collect();
    let mut parser = StepParser::new(&mut r, &names, &languages, &schedules);
    let steps: Vec<_> = steps_entries
        .iter()
        .zip(&names)
        .map(|((key, body), name)| parser.step(name, key.pos, body))
        .collect();
    let start = match start {
        Some(node) => parser.target(node).step,
        None => 0,
    };
    if steps.is_empty() && steps_node.is_some() {
        r.error(
            steps_node.map_or(top_pos, |n| n.pos),
            "`steps` must hold at least one step",
        );
    }

    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plan = Dialplan {
        name,
        file: file.to_owned(),
        languages,
        routes,
        default,
        prompts,
        schedules,
        steps,
        start,
        calendar,
    };
    (Some(plan), r.diagnostics)
}

fn parse_routes(r: &mut Reader, node: &Node) -> Vec<Route> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut routes = Vec::new();
    for item in items {
        let Some(mut f) = r.fields(item, "a `match` entry") else {
            continue;
        };
        let called = f
            .take("called")
            .and_then(|n| r.text(n, "`called`"))
            .map(|c| match c.strip_suffix('*') {
                Some(prefix) => Called::Prefix(prefix.to_owned()),
                None => Called::Exact(c),
            });
        let trunk = f.take("trunk").and_then(|n| r.text(n, "`trunk`"));
        f.finish(r);
        if called.is_none() && trunk.is_none() {
            r.error(
                item.pos,
                "a `match` entry needs `called`, `trunk` or both (use `default: true` for the rest)",
            );
            continue;
        }
        routes.push(Route {
            called,
            trunk,
            at: item.pos,
        });
    }
    routes
}

fn parse_prompts(r: &mut Reader, node: &Node, file: &Path) -> BTreeMap<String, PromptDef> {
    let folder = file.parent().unwrap_or(Path::new(""));
    let mut prompts = BTreeMap::new();
    for (key, value) in r.map(node, "`prompts`").unwrap_or_default() {
        let Some(id) = r.text(key, "a prompt name") else {
            continue;
        };
        let mut languages = BTreeMap::new();
        for (lang, source) in r.map(value, "a prompt").unwrap_or_default() {
            let Some(lang) = r.text(lang, "a language") else {
                continue;
            };
            let source = match &source.kind {
                Kind::Scalar(text) => PromptSource {
                    text: Some(text.clone()),
                    file: None,
                    at: source.pos,
                },
                _ => {
                    let Some(mut f) = r.fields(source, "a prompt") else {
                        continue;
                    };
                    let text = f.take("text").and_then(|n| r.text(n, "`text`"));
                    let wav = f.take("file").and_then(|n| r.text(n, "`file`"));
                    f.finish(r);
                    if text.is_none() && wav.is_none() {
                        r.error(source.pos, "a prompt needs `text`, `file` or both");
                    }
                    PromptSource {
                        text,
                        file: wav.map(|w| folder.join(w)),
                        at: source.pos,
                    }
                }
            };
            if source.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                r.error(source.at, format!("prompt `{id}` has an empty text"));
            }
            languages.insert(lang, source);
        }
        prompts.insert(
            id,
            PromptDef {
                at: key.pos,
                languages,
            },
        );
    }
    prompts
}

fn parse_schedules(r: &mut Reader, node: &Node) -> BTreeMap<String, Schedule> {
    let mut schedules = BTreeMap::new();
    for (key, value) in r.map(node, "`schedules`").unwrap_or_default() {
        let Some(name) = r.text(key, "a schedule name") else {
            continue;
        };
        let Some(mut f) = r.fields(value, "a schedule") else {
            continue;
        };
        let mut schedule = Schedule::default();
        if let Some(open) = f.require(r, key.pos, "open") {
            let items: Vec<&Node> = match &open.kind {
                Kind::Seq(items) => items.iter().collect(),
                _ => vec![open],
            };
            for item in items {
                if let Some(opening) = parse_opening(r, item) {
                    schedule.open.push(opening);
                }
            }
        }
        if let Some(holidays) = f.take("holidays") {
            for (text, pos) in r.texts(holidays, "a holiday") {
                match text.parse::<jiff::civil::Date>() {
                    Ok(date) => schedule.holidays.push(date),
                    Err(_) => r.error(pos, format!("`{text}` is not a date such as 2025-10-01")),
                }
            }
        }
        f.finish(r);
        schedules.insert(name, schedule);
    }
    schedules
}

fn parse_opening(r: &mut Reader, node: &Node) -> Option<Opening> {
    let mut f = r.fields(node, "an opening")?;
    let days = f.require(r, node.pos, "days");
    let time = f.require(r, node.pos, "time");
    f.finish(r);
    let days = days.and_then(|n| {
        let text = r.text(n, "`days`")?;
        parse_days(&text).map_err(|e| r.error(n.pos, e)).ok()
    });
    let time = time.and_then(|n| {
        let text = r.text(n, "`time`")?;
        parse_times(&text).map_err(|e| r.error(n.pos, e)).ok()
    });
    let (days, (from, to)) = (days?, time?);
    Some(Opening { days, from, to })
}

/// Resolves a step name against the names the file declares.
pub fn resolve(r: &mut Reader, names: &[String], name: &str, at: Pos) -> Target {
    match names.iter().position(|n| n == name) {
        Some(step) => Target { step, at },
        None => {
            let mut message = format!("unknown step `{name}`");
            if let Some(close) = super::suggest::closest(name, names.iter().map(String::as_str)) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            r.error(at, message);
            Target {
                step: Target::UNRESOLVED,
                at,
            }
        }
    }
}
