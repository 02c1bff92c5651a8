//! Checks on a parsed dialplan that need the whole plan or knowledge from outside it:
//! prompts and their languages, reachability, loops the caller cannot leave, and the queues,
//! intents and trunks the rest of the engine knows. That knowledge comes in as plain data
//! (`ValidationContext`), so this file reads no config and no grammar.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::model::{Dialplan, Pos, PromptRef, StepKind, Target, Transfer, TransferTo};
use super::suggest::closest;
use super::vars::Var;
use crate::diag::Diagnostic;

/// What the rest of the engine knows. `None`: not known, so not checked.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// The ACD's queues.
    pub queues: Option<BTreeMap<String, QueueInfo>>,
    /// The intents the grammars can recognise.
    pub intents: Option<BTreeSet<String>>,
    /// The grammar sets (folders under `grammars/`) an `ask` step may name.
    pub grammars: Option<BTreeSet<String>>,
    /// The configured trunks.
    pub trunks: Option<BTreeMap<String, TrunkInfo>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrunkInfo {
    /// It has a `uri`: calls can be sent through it.
    pub uri: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueInfo {
    /// Agents configured to take calls from the queue.
    pub agents: usize,
}

struct Check<'a> {
    plan: &'a Dialplan,
    ctx: &'a ValidationContext,
    out: Vec<Diagnostic>,
}

pub fn validate(plan: &Dialplan, ctx: &ValidationContext) -> Vec<Diagnostic> {
    let mut check = Check {
        plan,
        ctx,
        out: Vec::new(),
    };
    check.prompt_languages();
    check.prompt_refs();
    check.outside_names();
    check.reachability();
    check.loops_without_input();
    check.out
}

fn with_hint<'a>(message: String, name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match closest(name, known) {
        Some(close) => format!("{message} (did you mean `{close}`?)"),
        None => message,
    }
}

impl Check<'_> {
    fn error(&mut self, at: Pos, message: String) {
        self.out.push(diagnostic(&self.plan.file, at, message));
    }

    fn prompt_languages(&mut self) {
        let plan = self.plan;
        for (id, def) in &plan.prompts {
            for lang in &plan.languages {
                if !def.languages.contains_key(lang) {
                    self.error(def.at, format!("prompt `{id}` has no `{lang}` version"));
                }
            }
            for (lang, source) in &def.languages {
                if !plan.languages.contains(lang) {
                    self.error(
                        source.at,
                        format!(
                            "prompt `{id}` has a version in `{lang}`, which is not in `languages` ({})",
                            plan.languages.join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn prompt_refs(&mut self) {
        let plan = self.plan;
        for step in &plan.steps {
            for r in step.kind.prompts() {
                self.prompt_ref(r);
            }
        }
    }

    fn prompt_ref(&mut self, r: &PromptRef) {
        let plan = self.plan;
        let known = || plan.prompts.keys().map(String::as_str);
        // `{runner_up}` names an intent too: the same prompts must exist for it.
        let id = r.id.replace(
            PromptRef::RUNNER_UP_PLACEHOLDER,
            PromptRef::INTENT_PLACEHOLDER,
        );
        let Some((before, after)) = id.split_once(PromptRef::INTENT_PLACEHOLDER) else {
            if r.id.contains('{') {
                self.error(
                    r.at,
                    format!(
                        "`{}`: the only placeholders are `{{intent}}` and `{{runner_up}}`",
                        r.id
                    ),
                );
            } else if !plan.prompts.contains_key(&r.id) {
                let message = format!("unknown prompt `{}`", r.id);
                self.error(r.at, with_hint(message, &r.id, known()));
            }
            return;
        };
        if after.contains('{') {
            self.error(
                r.at,
                format!(
                    "`{}`: one placeholder at most, `{{intent}}` or `{{runner_up}}`",
                    r.id
                ),
            );
            return;
        }
        match &self.ctx.intents {
            Some(intents) => {
                let missing: Vec<&str> = intents
                    .iter()
                    .filter(|i| !plan.prompts.contains_key(&format!("{before}{i}{after}")))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    self.error(
                        r.at,
                        format!(
                            "`{}` needs a prompt per intent; missing: {}",
                            r.id,
                            missing
                                .iter()
                                .map(|i| format!("{before}{i}{after}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            None => {
                if !known().any(|p| p.starts_with(before) && p.ends_with(after)) {
                    self.error(r.at, format!("no prompt matches `{}` for any intent", r.id));
                }
            }
        }
    }

    /// A queue step's `queue`: a configured queue with agents, or with `{intent}` in it,
    /// one for every intent of the grammar.
    fn queue_name(&mut self, name: &str, at: Pos) {
        let placeholder = PromptRef::INTENT_PLACEHOLDER;
        let Some((before, after)) = name.split_once(placeholder) else {
            if name.contains('{') {
                self.error(
                    at,
                    format!("`{name}`: the only placeholder in a queue name is `{placeholder}`"),
                );
            } else if let Some(problem) = self.queue_problem(name) {
                self.error(at, problem);
            }
            return;
        };
        if before.contains('{') || after.contains('{') {
            self.error(
                at,
                format!("`{name}`: one placeholder at most, `{placeholder}`"),
            );
            return;
        }
        let Some(intents) = &self.ctx.intents else {
            return;
        };
        let problems: Vec<String> = intents
            .iter()
            .filter_map(|i| self.queue_problem(&format!("{before}{i}{after}")))
            .collect();
        if !problems.is_empty() {
            let message = format!(
                "`{name}` needs a queue with agents for every intent of the grammar: {}",
                problems.join("; ")
            );
            self.error(at, message);
        }
    }

    /// What is wrong with joining the queue `name`, if anything.
    fn queue_problem(&self, name: &str) -> Option<String> {
        let queues = self.ctx.queues.as_ref()?;
        match queues.get(name) {
            None => Some(with_hint(
                format!("unknown queue `{name}`"),
                name,
                queues.keys().map(String::as_str),
            )),
            Some(info) if info.agents == 0 => {
                Some(format!("queue `{name}` has no agents in the config"))
            }
            Some(_) => None,
        }
    }

    fn check_intent(&mut self, intent: &str, at: Pos) {
        if let Some(intents) = &self.ctx.intents
            && !intents.contains(intent)
        {
            let message = format!("unknown intent `{intent}`");
            let message = with_hint(message, intent, intents.iter().map(String::as_str));
            self.error(at, message);
        }
    }

    fn outside_names(&mut self) {
        let plan = self.plan;
        for step in &plan.steps {
            match &step.kind {
                StepKind::Queue(q) => {
                    self.queue_name(&q.queue, q.queue_at);
                    if let Some(intent) = &q.intent {
                        self.check_intent(intent, q.intent_at);
                    }
                }
                StepKind::Ask(a) => {
                    for case in &a.intents {
                        self.check_intent(&case.value, case.at);
                    }
                    if let (Some(grammar), Some(known)) = (&a.grammar, &self.ctx.grammars)
                        && !known.contains(grammar)
                    {
                        let message = format!("unknown grammar `{grammar}`");
                        let message = with_hint(message, grammar, known.iter().map(String::as_str));
                        self.error(a.grammar_at, message);
                    }
                }
                StepKind::Switch(s) if s.var == Var::Intent => {
                    for case in &s.cases {
                        self.check_intent(&case.value, case.at);
                    }
                }
                _ => {}
            }
        }
        if let Some(trunks) = &self.ctx.trunks {
            let unknown = |trunk: &str| {
                let message = format!("unknown trunk `{trunk}`");
                with_hint(message, trunk, trunks.keys().map(String::as_str))
            };
            for route in &plan.routes {
                if let Some(trunk) = &route.trunk
                    && !trunks.contains_key(trunk)
                {
                    self.error(route.at, unknown(trunk));
                }
            }
            for step in &plan.steps {
                let StepKind::Transfer(Transfer {
                    to: TransferTo::Trunk { trunks: names, .. },
                    ..
                }) = &step.kind
                else {
                    continue;
                };
                for (name, at) in names {
                    match trunks.get(name) {
                        None => self.error(*at, unknown(name)),
                        Some(info) if !info.uri => self.error(
                            *at,
                            format!(
                                "trunk `{name}` has no `uri`: set [trunks.named.{name}] uri = \"sip:host[:port]\" (where the trunk takes calls)"
                            ),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Successors of each step that exist (unknown names were reported when parsing).
    fn edges(&self) -> Vec<Vec<usize>> {
        let n = self.plan.steps.len();
        self.plan
            .steps
            .iter()
            .map(|s| {
                s.kind
                    .targets()
                    .into_iter()
                    .map(|t| t.step)
                    .filter(|&t| t < n)
                    .collect()
            })
            .collect()
    }

    /// Skipped while some reference is unresolved: the step it meant would show up as
    /// unreachable, a second message for one typo.
    fn reachability(&mut self) {
        let plan = self.plan;
        let unresolved = plan.start >= plan.steps.len()
            || plan
                .steps
                .iter()
                .flat_map(|s| s.kind.targets())
                .any(|t: Target| t.step == Target::UNRESOLVED);
        if unresolved {
            return;
        }
        let edges = self.edges();
        let mut seen = vec![false; plan.steps.len()];
        let mut stack = vec![plan.start];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(&edges[i]);
            }
        }
        for (step, seen) in plan.steps.iter().zip(seen) {
            if !seen {
                let start = &plan.steps[plan.start].name;
                self.error(
                    step.at,
                    format!("step `{}` is never reached from `{start}`", step.name),
                );
            }
        }
    }

    /// A cycle through steps none of which waits for the caller would spin (or replay a
    /// prompt) forever: one message per such group of steps (strongly connected component),
    /// naming its shortest cycle. Missing edges can only remove cycles, so this runs on
    /// broken plans too.
    fn loops_without_input(&mut self) {
        let plan = self.plan;
        let n = plan.steps.len();
        let passive: Vec<bool> = plan
            .steps
            .iter()
            .map(|s| !s.kind.waits_for_caller())
            .collect();
        let edges: Vec<Vec<usize>> = self
            .edges()
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let keep = passive[i];
                e.into_iter().filter(|&t| keep && passive[t]).collect()
            })
            .collect();
        let reach: Vec<Vec<bool>> = (0..n).map(|i| reachable(&edges, i)).collect();
        let mut reported = vec![false; n];
        for first in 0..n {
            // `first` is the lowest step of its component when none before it was reported.
            if reported[first] || !reach[first][first] {
                continue;
            }
            for (other, seen) in reported.iter_mut().enumerate() {
                if reach[first][other] && reach[other][first] {
                    *seen = true;
                }
            }
            let cycle = shortest_cycle(&edges, first);
            let names: Vec<String> = cycle
                .iter()
                .chain([&first])
                .map(|&s| format!("`{}`", plan.steps[s].name))
                .collect();
            self.error(
                plan.steps[first].at,
                format!(
                    "loop without input: {} never waits for the caller",
                    names.join(" -> ")
                ),
            );
        }
    }
}

/// Which steps can be reached from `from` in one or more moves.
fn reachable(edges: &[Vec<usize>], from: usize) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut stack: Vec<usize> = edges[from].clone();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend(&edges[i]);
        }
    }
    seen
}

/// The steps of a shortest cycle through `start`, beginning with it.
fn shortest_cycle(edges: &[Vec<usize>], start: usize) -> Vec<usize> {
    let mut came_from = vec![None; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &t in &edges[i] {
            if t == start {
                let mut path = vec![i];
                while let Some(p) = came_from[*path.last().unwrap_or(&start)] {
                    path.push(p);
                }
                // Every step found traces back to `start`.
                path.reverse();
                return path;
            }
            if came_from[t].is_none() && t != start {
                came_from[t] = Some(i);
                queue.push_back(t);
            }
        }
    }
    vec![start]
}

pub fn diagnostic(file: &Path, at: Pos, message: String) -> Diagnostic {
    Diagnostic::at(file, at.line as usize, at.column as usize, message)
}
