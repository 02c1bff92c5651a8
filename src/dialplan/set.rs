//! The loaded dialplans of the engine: read from the dialplan folder, checked alone and
//! against each other, then shared read-only (`Arc`) by the calls that use them. A reload
//! builds a new set; calls in progress keep the plan they started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::hours::Calendar;
use super::model::{Called, Dialplan, Pos, Route};
use super::parse::parse;
use super::validate::{ValidationContext, diagnostic, validate};
use crate::diag::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no dialplan (*.yaml) in {0}")]
    Empty(PathBuf),
    #[error("{} error(s) in the dialplans", .0.len())]
    Invalid(Vec<Diagnostic>),
}

#[derive(Debug, Clone)]
pub struct DialplanSet {
    plans: Vec<Arc<Dialplan>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Io {
        path: path.to_owned(),
        source,
    }
}

fn is_dialplan(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

impl DialplanSet {
    /// Reads every dialplan in `paths`: files, or folders whose `*.yaml` files are read.
    pub fn load(
        paths: &[PathBuf],
        calendar: &Calendar,
        ctx: &ValidationContext,
    ) -> Result<DialplanSet, LoadError> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(io(path))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_dialplan(p))
                    .collect();
                if found.is_empty() {
                    return Err(LoadError::Empty(path.clone()));
                }
                found.sort();
                files.extend(found);
            } else {
                files.push(path.clone());
            }
        }
        let mut sources = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(io(&file))?;
            sources.push((file, text));
        }
        Self::from_sources(&sources, calendar, ctx).map_err(LoadError::Invalid)
    }

    /// Parses and checks dialplan texts; every problem in all of them, or the set.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        calendar: &Calendar,
        ctx: &ValidationContext,
    ) -> Result<DialplanSet, Vec<Diagnostic>> {
        let mut diagnostics = Vec::new();
        let mut plans = Vec::new();
        for (file, text) in sources {
            let (plan, problems) = parse(file, text, calendar.clone());
            diagnostics.extend(problems);
            if let Some(plan) = plan {
                diagnostics.extend(validate(&plan, ctx));
                plans.push(plan);
            }
        }
        diagnostics.extend(across(&plans));
        if diagnostics.is_empty() {
            Ok(DialplanSet {
                plans: plans.into_iter().map(Arc::new).collect(),
            })
        } else {
            diagnostics.sort();
            diagnostics.dedup();
            Err(diagnostics)
        }
    }

    pub fn plans(&self) -> &[Arc<Dialplan>] {
        &self.plans
    }

    /// The plan for a call to `called` (the Request-URI or To user) arriving on `trunk`:
    /// the most specific matching route wins (exact number over prefix, longer prefix over
    /// shorter, a route naming the trunk over one that does not); else the default plan.
    pub fn select(&self, called: &str, trunk: Option<&str>) -> Option<&Arc<Dialplan>> {
        self.plans
            .iter()
            .flat_map(|p| p.routes.iter().map(move |r| (p, r)))
            .filter_map(|(p, r)| specificity(r, called, trunk).map(|s| (s, p)))
            // The first of equally specific routes wins (files in name order).
            .reduce(|best, next| if next.0 > best.0 { next } else { best })
            .map(|(_, p)| p)
            .or_else(|| self.plans.iter().find(|p| p.default.is_some()))
    }
}

fn specificity(route: &Route, called: &str, trunk: Option<&str>) -> Option<(u8, usize, bool)> {
    let called_rank = match &route.called {
        None => (0, 0),
        Some(Called::Exact(n)) if n == called => (2, n.len()),
        Some(Called::Prefix(p)) if called.starts_with(p.as_str()) => (1, p.len()),
        Some(_) => return None,
    };
    match &route.trunk {
        Some(t) if Some(t.as_str()) != trunk => None,
        t => Some((called_rank.0, called_rank.1, t.is_some())),
    }
}

/// Checks between files: distinct names (prompt audio is keyed by them), one default, and
/// no route claimed twice.
fn across(plans: &[Dialplan]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Some(first) = plans[..i].iter().find(|p| p.name == plan.name) {
            out.push(diagnostic(
                &plan.file,
                Pos { line: 1, column: 1 },
                format!(
                    "another dialplan is named `{}` ({}); rename one of the files",
                    plan.name,
                    first.file.display()
                ),
            ));
        }
    }
    let mut default: Option<&Dialplan> = None;
    for plan in plans {
        if let Some(at) = plan.default {
            match default {
                Some(first) => out.push(diagnostic(
                    &plan.file,
                    at,
                    format!(
                        "`default` is already set in {}; only one dialplan takes unmatched calls",
                        first.file.display()
                    ),
                )),
                None => default = Some(plan),
            }
        }
    }
    let routes: Vec<(&Dialplan, &Route)> = plans
        .iter()
        .flat_map(|p| p.routes.iter().map(move |r| (p, r)))
        .collect();
    for (i, (plan, route)) in routes.iter().enumerate() {
        if let Some((first, earlier)) = routes[..i]
            .iter()
            .find(|(_, r)| r.called == route.called && r.trunk == route.trunk)
        {
            out.push(diagnostic(
                &plan.file,
                route.at,
                format!(
                    "the same calls are already matched at {}:{}:{}",
                    first.file.display(),
                    earlier.at.line,
                    earlier.at.column
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::dialplan::test_harness::calendar;

    fn plan(matches: &str, default: bool) -> String {
        format!(
            "languages: [cmn]\ndefault: {default}\nmatch:\n{matches}prompts:\n  p:\n    cmn: 您好\nsteps:\n  s:\n    play: p\n    next: e\n  e:\n    hangup: done\n"
        )
    }

    fn set() -> DialplanSet {
        let sources = [
            ("a.yaml", plan("  - called: \"12345\"\n", true)),
            (
                "b.yaml",
                plan("  - called: \"12345\"\n    trunk: shenzhen\n", false),
            ),
            ("c.yaml", plan("  - called: \"0755*\"\n", false)),
            ("d.yaml", plan("  - called: \"075512*\"\n", false)),
            ("e.yaml", plan("  - trunk: guangzhou\n", false)),
        ]
        .map(|(f, y)| (PathBuf::from(f), y));
        DialplanSet::from_sources(&sources, &calendar(&[]), &ValidationContext::default())
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn selected(called: &str, trunk: Option<&str>) -> String {
        set()
            .select(called, trunk)
            .map_or("none".into(), |p| p.name.clone())
    }

    #[test]
    fn the_most_specific_route_wins_and_the_default_takes_the_rest() {
        assert_eq!(selected("12345", None), "a");
        assert_eq!(selected("12345", Some("shenzhen")), "b");
        assert_eq!(selected("12345", Some("guangzhou")), "a");
        assert_eq!(selected("075599", None), "c");
        assert_eq!(selected("07551234", Some("shenzhen")), "d");
        assert_eq!(selected("110", Some("guangzhou")), "e");
        assert_eq!(selected("110", None), "a");
    }

    #[test]
    fn without_a_default_unmatched_calls_have_no_plan() {
        let sources = [(
            PathBuf::from("only.yaml"),
            plan("  - called: \"12345\"\n", false),
        )];
        let set =
            DialplanSet::from_sources(&sources, &calendar(&[]), &ValidationContext::default())
                .expect("valid");
        assert!(set.select("12345", None).is_some());
        assert!(set.select("110", None).is_none());
    }

    #[test]
    fn a_reload_leaves_calls_on_the_plan_they_started_with() {
        let old = set();
        let in_call = Arc::clone(old.select("12345", None).expect("a"));
        let sources = [(
            PathBuf::from("a.yaml"),
            plan("  - called: \"54321\"\n", true),
        )];
        let new =
            DialplanSet::from_sources(&sources, &calendar(&[]), &ValidationContext::default())
                .expect("valid");
        drop(old);
        assert_eq!(
            in_call.routes[0].called,
            Some(Called::Exact("12345".into()))
        );
        assert_eq!(
            new.select("12345", None).expect("default").routes[0].called,
            Some(Called::Exact("54321".into()))
        );
    }
}
