//! Reads the steps of a dialplan: one key names what the step does (`play`, `menu`, ...)
//! and holds its main argument; the other keys are that kind's options and the steps to go
//! to per outcome. Defaults for every option live here and in `waiting` (the steps that
//! wait for the caller).

use std::collections::BTreeMap;
use std::time::Duration;

use super::condition::{Condition, Var};
use super::hours::Schedule;
use super::model::{
    Branch, Case, Hangup, Hours, Play, Pos, PromptRef, QueueStep, Step, StepKind, Switch, Target,
    Transfer, TransferMethod, TransferTo,
};
use super::parse::resolve;
use super::yaml::{Fields, Kind, Node, Reader};

mod waiting;

pub const KINDS: [&str; 11] = [
    "play",
    "menu",
    "ask",
    "choose_language",
    "queue",
    "hours",
    "transfer",
    "hangup",
    "goto",
    "switch",
    "branch",
];

const DTMF_KEYS: &str = "0123456789*#ABCD";

pub struct StepParser<'a, 'f> {
    r: &'a mut Reader<'f>,
    names: &'a [String],
    languages: &'a [String],
    schedules: &'a BTreeMap<String, Schedule>,
}

impl<'a, 'f> StepParser<'a, 'f> {
    pub fn new(
        r: &'a mut Reader<'f>,
        names: &'a [String],
        languages: &'a [String],
        schedules: &'a BTreeMap<String, Schedule>,
    ) -> Self {
        StepParser {
            r,
            names,
            languages,
            schedules,
        }
    }

    /// A step reference; unknown names are reported and left unresolved.
    pub fn target(&mut self, node: &Node) -> Target {
        match self.r.text(node, "a step name") {
            Some(name) => resolve(self.r, self.names, &name, node.pos),
            None => Target {
                step: Target::UNRESOLVED,
                at: node.pos,
            },
        }
    }

    /// Always a step, so that indexes stay aligned with the names; a step that cannot be read
    /// becomes an unresolved `goto`, which only a plan that failed to load contains.
    pub fn step(&mut self, name: &str, at: Pos, body: &Node) -> Step {
        let broken = StepKind::Goto(Target {
            step: Target::UNRESOLVED,
            at,
        });
        let kind = self.kind(name, at, body).unwrap_or(broken);
        Step {
            name: name.to_owned(),
            at,
            kind,
        }
    }

    fn kind(&mut self, name: &str, at: Pos, body: &Node) -> Option<StepKind> {
        let Kind::Map(entries) = &body.kind else {
            self.r.error(
                body.pos,
                format!(
                    "step `{name}` must be a mapping with one of {}",
                    KINDS.join(", ")
                ),
            );
            return None;
        };
        let kinds: Vec<(&str, Pos)> = entries
            .iter()
            .filter_map(|(k, _)| match &k.kind {
                Kind::Scalar(s) => KINDS
                    .iter()
                    .find(|kind| *kind == s)
                    .map(|kind| (*kind, k.pos)),
                _ => None,
            })
            .collect();
        let old_language = entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar(s) if s == "language"));
        let kind = match kinds.as_slice() {
            [] if old_language.is_some() => {
                let (k, v) = old_language?;
                // The format before `choose_language`: say exactly what to write instead.
                let prompt = match &v.kind {
                    Kind::Scalar(p) => p.clone(),
                    _ => "PROMPT".into(),
                };
                self.r.error(
                    k.pos,
                    format!(
                        "`language: {prompt}` is now `choose_language: {prompt}` (the value is \
                         the prompt); in it, `keys` (key -> language) is `language_keys` and \
                         `default` is `default_language`"
                    ),
                );
                return None;
            }
            [] => {
                self.r.error(
                    at,
                    format!(
                        "step `{name}` does nothing: give it one of {}",
                        KINDS.join(", ")
                    ),
                );
                return None;
            }
            [(kind, _)] => *kind,
            [(first, _), (second, pos), ..] => {
                self.r.error(
                    *pos,
                    format!(
                        "step `{name}` has both `{first}` and `{second}`; a step does one thing"
                    ),
                );
                return None;
            }
        };
        let mut f = self.r.fields(body, &format!("`{kind}` step `{name}`"))?;
        let main = f.take(kind)?;
        let parsed = match kind {
            "play" => self.play(&mut f, at, main),
            "menu" => self.menu(&mut f, at, main),
            "ask" => self.ask(&mut f, at, main),
            "choose_language" => self.language(&mut f, at, main),
            "queue" => self.queue(&mut f, main),
            "hours" => self.hours(&mut f, at, main),
            "transfer" => self.transfer(&mut f, at, main),
            "hangup" => self.hangup(main),
            "goto" => Some(StepKind::Goto(self.target(main))),
            "switch" => self.switch(&mut f, at, main),
            _ => self.branch(&mut f, at, main),
        };
        f.finish(self.r);
        parsed
    }

    fn required(&mut self, f: &mut Fields, at: Pos, key: &'static str) -> Target {
        match f.require(self.r, at, key) {
            Some(node) => self.target(node),
            None => Target {
                step: Target::UNRESOLVED,
                at,
            },
        }
    }

    fn optional(&mut self, f: &mut Fields, key: &'static str) -> Option<Target> {
        f.take(key).map(|n| self.target(n))
    }

    fn prompts(&mut self, node: &Node) -> Vec<PromptRef> {
        self.r
            .texts(node, "a prompt name")
            .into_iter()
            .map(|(id, at)| PromptRef { id, at })
            .collect()
    }

    /// The prompt a step exists to play: at least one.
    fn main_prompts(&mut self, node: &Node) -> Vec<PromptRef> {
        let prompts = self.prompts(node);
        if prompts.is_empty() && matches!(node.kind, Kind::Seq(_)) {
            self.r.error(node.pos, "name at least one prompt");
        }
        prompts
    }

    fn duration(&mut self, f: &mut Fields, key: &'static str, default: Duration) -> Duration {
        f.take(key)
            .and_then(|n| self.r.duration(n, &format!("`{key}`")))
            .unwrap_or(default)
    }

    fn tries(&mut self, f: &mut Fields, default: u32) -> u32 {
        match f.take("tries") {
            Some(n) => match self.r.uint(n, "`tries`") {
                Some(0) => {
                    self.r.error(n.pos, "`tries` must be at least 1");
                    default
                }
                Some(t) => t,
                None => default,
            },
            None => default,
        }
    }

    fn play(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        Some(StepKind::Play(Play {
            prompts: self.main_prompts(main),
            all_languages: f
                .take("all_languages")
                .and_then(|n| self.r.boolean(n, "`all_languages`"))
                .unwrap_or(false),
            early: f
                .take("early")
                .and_then(|n| self.r.boolean(n, "`early`"))
                .unwrap_or(false),
            next: self.required(f, at, "next"),
        }))
    }

    fn queue(&mut self, f: &mut Fields, main: &Node) -> Option<StepKind> {
        let queue = self.r.text(main, "a queue name");
        let intent_node = f.take("intent");
        let intent = intent_node.and_then(|n| self.r.text(n, "`intent`"));
        let priority = f
            .take("priority")
            .and_then(|n| self.r.int(n, "`priority`"))
            .unwrap_or(0);
        let overflow = self.optional(f, "overflow");
        let prompt = f
            .take("prompt")
            .map(|n| self.prompts(n))
            .unwrap_or_default();
        Some(StepKind::Queue(QueueStep {
            queue: queue?,
            queue_at: main.pos,
            intent,
            intent_at: intent_node.map_or(main.pos, |n| n.pos),
            priority,
            overflow,
            prompt,
        }))
    }

    fn hours(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let schedule = self.r.text(main, "a schedule name");
        if let Some(name) = &schedule
            && !self.schedules.contains_key(name)
        {
            let mut message = format!("unknown schedule `{name}`");
            if let Some(close) =
                super::suggest::closest(name, self.schedules.keys().map(String::as_str))
            {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            self.r.error(main.pos, message);
        }
        let open = self.required(f, at, "open");
        let closed = self.required(f, at, "closed");
        Some(StepKind::Hours(Hours {
            schedule: schedule?,
            schedule_at: main.pos,
            open,
            closed,
        }))
    }

    fn transfer(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let to = self.r.text(main, "a transfer destination");
        let number = f.take("number");
        let trunks = f.take("trunks");
        let failed = self.optional(f, "failed");
        let ring_timeout = self.duration(f, "ring_timeout", Duration::from_secs(30));
        let method = match f.take("method") {
            None => Some(TransferMethod::Bridge),
            Some(m) => match self.r.text(m, "a transfer method")?.as_str() {
                "bridge" => Some(TransferMethod::Bridge),
                "refer" => Some(TransferMethod::Refer),
                other => {
                    self.r.error(
                        m.pos,
                        format!(
                            "`method: {other}`: write `bridge` (the engine calls the target and stays in the call) or `refer` (the trunk takes the call to the target)"
                        ),
                    );
                    None
                }
            },
        };
        let trunks_at = trunks.map_or(at, |n| n.pos);
        let trunks = match trunks {
            None => Vec::new(),
            Some(n) => self.trunk_list(n)?,
        };
        if !trunks.is_empty() && to.as_deref() != Some("trunk") {
            self.r
                .error(trunks_at, "`trunks` goes with `transfer: trunk` only");
            return None;
        }
        if !trunks.is_empty() && method == Some(TransferMethod::Refer) {
            self.r.error(
                trunks_at,
                "`trunks` goes with `method: bridge`: a REFER hands the call back to the trunk it came in on",
            );
            return None;
        }
        let to = match (to?.as_str(), number) {
            ("trunk", Some(n)) => TransferTo::Trunk {
                number: self.r.text(n, "`number`")?,
                trunks,
            },
            ("trunk", None) => {
                self.r.error(
                    at,
                    "`transfer: trunk` needs the `number` to dial on the trunk",
                );
                return None;
            }
            (uri, None) if uri.starts_with("sip:") || uri.starts_with("sips:") => {
                TransferTo::Uri(uri.to_owned())
            }
            (_, Some(n)) => {
                self.r
                    .error(n.pos, "`number` goes with `transfer: trunk` only");
                return None;
            }
            (other, None) => {
                self.r.error(
                    main.pos,
                    format!("`{other}` is neither a SIP URI (sip:...) nor `trunk`"),
                );
                return None;
            }
        };
        Some(StepKind::Transfer(Transfer {
            to,
            method: method?,
            failed,
            ring_timeout,
        }))
    }

    fn hangup(&mut self, main: &Node) -> Option<StepKind> {
        let outcome = match main.kind {
            Kind::Null => "hangup".to_owned(),
            _ => self.r.text(main, "a hangup outcome")?,
        };
        Some(StepKind::Hangup(Hangup { outcome }))
    }

    fn switch(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let var = self.r.text(main, "a variable").and_then(|name| {
            let var = Var::parse(&name);
            if var.is_none() {
                self.r.error(
                    main.pos,
                    format!(
                        "unknown variable `{name}` (known: {})",
                        Var::ALL.map(Var::name).join(", ")
                    ),
                );
            }
            var
        });
        let mut cases = Vec::new();
        if let Some(node) = f.require(self.r, at, "cases") {
            for (k, v) in self.r.map(node, "`cases`").unwrap_or_default() {
                let target = self.target(v);
                cases.extend(self.r.text(k, "a case").map(|value| Case {
                    value,
                    at: k.pos,
                    target,
                }));
            }
        }
        let default = self.required(f, at, "default");
        Some(StepKind::Switch(Switch {
            var: var?,
            cases,
            default,
        }))
    }

    /// `trunks: [pbx1, pbx2]`: named trunks in the order they are tried.
    fn trunk_list(&mut self, node: &Node) -> Option<Vec<(String, Pos)>> {
        let Kind::Seq(items) = &node.kind else {
            self.r.error(
                node.pos,
                "`trunks` must be a list of named trunks, tried in order: `trunks: [pbx1, pbx2]`",
            );
            return None;
        };
        if items.is_empty() {
            self.r.error(
                node.pos,
                "`trunks` is empty: name at least one trunk, or leave it out to go back through the caller's trunk",
            );
            return None;
        }
        items
            .iter()
            .map(|n| Some((self.r.text(n, "a trunk's name")?, n.pos)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    fn branch(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let items: &[Node] = match &main.kind {
            Kind::Seq(items) => items,
            _ => {
                self.r.error(
                    main.pos,
                    "`branch` must be a list of `if:` / `goto:` entries",
                );
                &[]
            }
        };
        let mut cases = Vec::new();
        for item in items {
            let Some(mut g) = self.r.fields(item, "a `branch` entry") else {
                continue;
            };
            let condition = g.require(self.r, item.pos, "if");
            let goto = g.require(self.r, item.pos, "goto").map(|n| self.target(n));
            g.finish(self.r);
            let condition = condition.and_then(|n| self.condition(n));
            cases.extend(condition.zip(goto));
        }
        let otherwise = self.required(f, at, "else");
        Some(StepKind::Branch(Branch { cases, otherwise }))
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let text = self.r.text(node, "a condition")?;
        Condition::parse(&text)
            .map_err(|e| {
                // Points inside the condition when it is written plain on one line.
                let pos = Pos {
                    line: node.pos.line,
                    column: node.pos.column
                        + u32::from(node.quoted)
                        + u32::try_from(e.offset).unwrap_or(0),
                };
                self.r.error(pos, e.message)
            })
            .ok()
    }
}
