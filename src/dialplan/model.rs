//! The typed form of one dialplan file, as `parse` builds it and the interpreter walks it.
//! Immutable once loaded and shared between calls (`Arc<Dialplan>`). Every name an operator
//! wrote keeps its position so that validation can point at it. No parsing or I/O here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::condition::{Condition, Var};
use super::hours::{Calendar, Schedule};

/// 1-based line and column (in characters) in the dialplan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// Index into `Dialplan::steps`.
pub type StepId = usize;

/// A reference to a step. In a plan that failed to load an unknown name is `UNRESOLVED`;
/// a loaded plan has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub step: StepId,
    pub at: Pos,
}

impl Target {
    pub const UNRESOLVED: StepId = usize::MAX;
}

/// One entry of a table that maps a value (keys entered, an intent, a variable's value) to
/// the step it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub value: String,
    pub at: Pos,
    pub target: Target,
}

/// A prompt named by a step. The name may contain `{intent}`, replaced by the call's intent
/// when played (one prompt per intent, e.g. `intent_{intent}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    pub id: String,
    pub at: Pos,
}

impl PromptRef {
    pub const INTENT_PLACEHOLDER: &'static str = "{intent}";
    /// The second likeliest intent, in a `confirm.choice` prompt.
    pub const RUNNER_UP_PLACEHOLDER: &'static str = "{runner_up}";
}

impl QueueStep {
    /// The queue a call with `intent` joins; `None` when the name needs an intent and the
    /// call has none.
    pub fn queue_for(&self, intent: Option<&str>) -> Option<String> {
        match self.queue.split_once(PromptRef::INTENT_PLACEHOLDER) {
            None => Some(self.queue.clone()),
            Some((before, after)) => intent.map(|i| format!("{before}{i}{after}")),
        }
    }
}

/// Where a prompt's audio comes from in one language: the recorded file wins over the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptSource {
    pub text: Option<String>,
    /// Resolved against the dialplan file's folder.
    pub file: Option<PathBuf>,
    pub at: Pos,
}

#[derive(Debug, Clone)]
pub struct PromptDef {
    pub at: Pos,
    /// Language code -> source.
    pub languages: BTreeMap<String, PromptSource>,
}

/// How the called number must look for a route to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Called {
    Exact(String),
    /// Written with a trailing `*`.
    Prefix(String),
}

/// One `match:` entry: calls to `called` (if given) arriving on `trunk` (if given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub called: Option<Called>,
    pub trunk: Option<String>,
    pub at: Pos,
}

#[derive(Debug, Clone)]
pub struct Dialplan {
    /// The file name without extension; prompt audio is keyed by it.
    pub name: String,
    pub file: PathBuf,
    /// Declared languages; the first one is the call's language until a `choose_language` step.
    pub languages: Vec<String>,
    pub routes: Vec<Route>,
    /// Takes the calls no route of any dialplan matches.
    pub default: Option<Pos>,
    pub prompts: BTreeMap<String, PromptDef>,
    pub schedules: BTreeMap<String, Schedule>,
    pub steps: Vec<Step>,
    pub start: StepId,
    pub calendar: Calendar,
}

impl Dialplan {
    pub fn step_named(&self, name: &str) -> Option<StepId> {
        self.steps.iter().position(|s| s.name == name)
    }

    pub fn default_language(&self) -> &str {
        self.languages.first().map_or("", String::as_str)
    }

    /// A play step is early media: this dialplan's calls run from the INVITE, and are
    /// answered only when a step needs the caller.
    pub fn has_early_media(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(&s.kind, StepKind::Play(p) if p.early))
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub at: Pos,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Play(Play),
    Menu(Menu),
    Ask(Ask),
    Language(LanguageChoice),
    Queue(QueueStep),
    Hours(Hours),
    Transfer(Transfer),
    Hangup(Hangup),
    Goto(Target),
    Switch(Switch),
    Branch(Branch),
}

#[derive(Debug, Clone)]
pub struct Play {
    pub prompts: Vec<PromptRef>,
    /// Play them in every declared language, in order (before the caller has chosen one).
    pub all_languages: bool,
    /// Play them as early media (183 Session Progress) while the call is not answered yet.
    pub early: bool,
    pub next: Target,
}

/// The prompts and patience shared by the steps that wait for the caller.
#[derive(Debug, Clone)]
pub struct Prompting {
    pub prompt: Vec<PromptRef>,
    pub no_input_prompt: Vec<PromptRef>,
    pub no_match_prompt: Vec<PromptRef>,
    /// Silence after the prompt before it counts as no input.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub tries: u32,
}

#[derive(Debug, Clone)]
pub struct Menu {
    pub prompting: Prompting,
    pub max_digits: u32,
    pub terminator: Option<char>,
    pub inter_digit_timeout: Duration,
    /// Digits entered -> step.
    pub choices: Vec<Case>,
    /// Any other digits (kept in `digits`), instead of a no-match.
    pub any: Option<Target>,
    pub no_input: Target,
    pub no_match: Target,
}

#[derive(Debug, Clone)]
pub struct Confirm {
    /// Intents recognised with less confidence than this are confirmed first.
    pub below: f32,
    pub prompt: Vec<PromptRef>,
    pub yes_key: char,
    pub no_key: char,
    pub yes_words: Vec<String>,
    pub no_words: Vec<String>,
    pub timeout: Duration,
    /// When two intents are close (or none is clear but two stand out): ask which.
    pub choice: Option<Choice>,
}

/// "请问是社保还是公积金？": one question built from the two likeliest intents, answered
/// with `yes_key` (the first), `no_key` (the second) or by naming one.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Uses `{intent}` (the likeliest) and `{runner_up}` (the second).
    pub prompt: Vec<PromptRef>,
    /// The second intent must have at least this confidence to be offered.
    pub min: f32,
}

#[derive(Debug, Clone)]
pub struct Ask {
    pub prompting: Prompting,
    pub barge_in: bool,
    /// Longest the caller may speak before the step gives up waiting for a result.
    pub max_speech: Duration,
    pub grammar: Option<String>,
    pub grammar_at: Pos,
    /// Results under this confidence count as not understood.
    pub min_confidence: f32,
    pub confirm: Option<Box<Confirm>>,
    pub intents: Vec<Case>,
    /// Any recognised intent without an entry of its own in `intents`.
    pub intent: Option<Target>,
    pub keys: Vec<(char, Target)>,
    pub no_input: Target,
    pub no_match: Target,
    /// Speech cannot be had (no recognizer for the language, or all busy).
    pub unavailable: Target,
    /// Speech is configured but out of capacity right now; `unavailable` when absent. The
    /// place to tell the caller why keys are offered instead.
    pub busy: Option<Target>,
}

#[derive(Debug, Clone)]
pub struct LanguageChoice {
    /// Played once in every declared language, in order.
    pub prompt: Vec<PromptRef>,
    pub keys: Vec<(char, String)>,
    /// Language -> words that choose it when said.
    pub words: Vec<(String, Vec<String>)>,
    pub timeout: Duration,
    pub tries: u32,
    pub default: String,
    pub next: Target,
}

#[derive(Debug, Clone)]
pub struct QueueStep {
    /// The queue's name, or a name with `{intent}` in it, replaced by the call's intent
    /// (`queue: "{intent}"`: one queue per intent).
    pub queue: String,
    pub queue_at: Pos,
    /// Attached when the call has no intent of its own (reached by keys).
    pub intent: Option<String>,
    pub intent_at: Pos,
    pub priority: i32,
    /// Where the call goes when the queue gives it back; hang up when absent.
    pub overflow: Option<Target>,
    /// Played once the call is in the queue ("正在转接"), before the queue's own
    /// announcements: the caller takes their place in line without waiting for it.
    pub prompt: Vec<PromptRef>,
}

#[derive(Debug, Clone)]
pub struct Hours {
    pub schedule: String,
    pub schedule_at: Pos,
    pub open: Target,
    pub closed: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTo {
    Uri(String),
    /// Dial `number` out through `trunks` in order (the first that is not down and does
    /// not fail), or back through the trunk the call came in on when there are none.
    Trunk {
        number: String,
        /// Each trunk's name, and where the dialplan names it.
        trunks: Vec<(String, Pos)>,
    },
}

/// How a transfer is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    /// The engine calls the target and bridges it, staying in the media path.
    Bridge,
    /// The engine asks the trunk to take the call to the target (REFER, RFC 3515) and
    /// leaves the call once the trunk says it connected: its media is released.
    Refer,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub to: TransferTo,
    pub method: TransferMethod,
    /// Where the call goes when the transfer fails; hang up when absent.
    pub failed: Option<Target>,
    /// How long the far end may ring (or the trunk take to report the REFER's outcome)
    /// before the transfer counts as failed.
    pub ring_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Hangup {
    /// Recorded as the call's outcome (`CallFinished`).
    pub outcome: String,
}

#[derive(Debug, Clone)]
pub struct Switch {
    pub var: Var,
    pub cases: Vec<Case>,
    pub default: Target,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub cases: Vec<(Condition, Target)>,
    pub otherwise: Target,
}

impl StepKind {
    /// Every step this one can go to next.
    pub fn targets(&self) -> Vec<Target> {
        match self {
            StepKind::Play(p) => vec![p.next],
            StepKind::Menu(m) => m
                .choices
                .iter()
                .map(|c| c.target)
                .chain(m.any)
                .chain([m.no_input, m.no_match])
                .collect(),
            StepKind::Ask(a) => a
                .intents
                .iter()
                .map(|c| c.target)
                .chain(a.intent)
                .chain(a.keys.iter().map(|(_, t)| *t))
                .chain([a.no_input, a.no_match, a.unavailable])
                .chain(a.busy)
                .collect(),
            StepKind::Language(l) => vec![l.next],
            StepKind::Queue(q) => q.overflow.into_iter().collect(),
            StepKind::Hours(h) => vec![h.open, h.closed],
            StepKind::Transfer(t) => t.failed.into_iter().collect(),
            StepKind::Hangup(_) => Vec::new(),
            StepKind::Goto(t) => vec![*t],
            StepKind::Switch(s) => s
                .cases
                .iter()
                .map(|c| c.target)
                .chain([s.default])
                .collect(),
            StepKind::Branch(b) => b
                .cases
                .iter()
                .map(|(_, t)| *t)
                .chain([b.otherwise])
                .collect(),
        }
    }

    /// Whether the step waits for the caller (or for the queue), so that a loop through it
    /// is one the caller can leave.
    pub fn waits_for_caller(&self) -> bool {
        matches!(
            self,
            StepKind::Menu(_) | StepKind::Ask(_) | StepKind::Language(_) | StepKind::Queue(_)
        )
    }

    /// Every prompt the step can play.
    pub fn prompts(&self) -> Vec<&PromptRef> {
        fn prompting(p: &Prompting) -> Vec<&PromptRef> {
            p.prompt
                .iter()
                .chain(&p.no_input_prompt)
                .chain(&p.no_match_prompt)
                .collect()
        }
        match self {
            StepKind::Play(p) => p.prompts.iter().collect(),
            StepKind::Menu(m) => prompting(&m.prompting),
            StepKind::Ask(a) => {
                let mut all = prompting(&a.prompting);
                all.extend(a.confirm.iter().flat_map(|c| &c.prompt));
                all.extend(
                    a.confirm
                        .iter()
                        .flat_map(|c| c.choice.iter().flat_map(|ch| &ch.prompt)),
                );
                all
            }
            StepKind::Language(l) => l.prompt.iter().collect(),
            StepKind::Queue(q) => q.prompt.iter().collect(),
            _ => Vec::new(),
        }
    }
}
