//! The call variables a flow can test (`switch`, `branch`) and passes on to queues and
//! transfers. Owned by the interpreter of one call; plain data here.

use std::borrow::Cow;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub caller: String,
    pub called: String,
    pub trunk: Option<String>,
    /// The caller asked to withhold their identity (`privacy` is then `id`).
    pub withheld: bool,
    pub original_called: Option<String>,
    pub redirect_reason: Option<String>,
    /// The language later prompts and recognizers use (`cmn`, `yue`, ...).
    pub language: String,
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    pub transcript: Option<String>,
    /// The last keys entered at a `menu` or `ask`.
    pub digits: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Caller,
    Called,
    Trunk,
    Privacy,
    OriginalCalled,
    RedirectReason,
    Language,
    Intent,
    Confidence,
    Transcript,
    Digits,
}

impl Var {
    pub const ALL: [Var; 11] = [
        Var::Caller,
        Var::Called,
        Var::Trunk,
        Var::Privacy,
        Var::OriginalCalled,
        Var::RedirectReason,
        Var::Language,
        Var::Intent,
        Var::Confidence,
        Var::Transcript,
        Var::Digits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Var::Caller => "caller",
            Var::Called => "called",
            Var::Trunk => "trunk",
            Var::Privacy => "privacy",
            Var::OriginalCalled => "original_called",
            Var::RedirectReason => "redirect_reason",
            Var::Language => "language",
            Var::Intent => "intent",
            Var::Confidence => "confidence",
            Var::Transcript => "transcript",
            Var::Digits => "digits",
        }
    }

    pub fn parse(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl Vars {
    /// The variable as text; unset ones are empty.
    pub fn text(&self, var: Var) -> Cow<'_, str> {
        fn opt(o: &Option<String>) -> Cow<'_, str> {
            Cow::Borrowed(o.as_deref().unwrap_or(""))
        }
        match var {
            Var::Caller => Cow::Borrowed(&self.caller),
            Var::Called => Cow::Borrowed(&self.called),
            Var::Trunk => opt(&self.trunk),
            Var::Privacy => Cow::Borrowed(if self.withheld { "id" } else { "none" }),
            Var::OriginalCalled => opt(&self.original_called),
            Var::RedirectReason => opt(&self.redirect_reason),
            Var::Language => Cow::Borrowed(&self.language),
            Var::Intent => opt(&self.intent),
            Var::Confidence => self
                .confidence
                .map_or(Cow::Borrowed(""), |c| Cow::Owned(c.to_string())),
            Var::Transcript => opt(&self.transcript),
            Var::Digits => opt(&self.digits),
        }
    }
}
