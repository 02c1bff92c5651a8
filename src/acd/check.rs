//! Checks of the `[acd]` section that serde cannot do (names that must exist, be unique,
//! agents that can be reached), all reported at once; `crate::diag::diagnostics` places
//! them at `file:line:column`.

use std::collections::HashSet;
use std::path::Path;

use super::config::{AcdConfig, OverflowTarget};
use crate::diag::Diagnostic;
use crate::diag::{PathKey, Problem};

fn at(path: &[PathKey], message: String) -> Problem {
    let mut full = vec![key("acd")];
    full.extend_from_slice(path);
    Problem {
        path: full,
        message,
    }
}

fn key(k: &str) -> PathKey {
    PathKey::Key(k.to_owned())
}

impl AcdConfig {
    /// Every problem of the section, with paths from the file's root; empty when the
    /// router can be built from it.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let defaults = &self.queue_defaults;
        if !defaults.name.is_empty() {
            let p = [key("queue_defaults"), key("name")];
            out.push(at(
                &p,
                "queue defaults have no name: name each queue in its [[acd.queues]] table".into(),
            ));
        }
        if defaults.overflow.is_some() {
            let p = [key("queue_defaults"), key("overflow")];
            out.push(at(&p, "overflow names another queue or a step: set it in each [[acd.queues]] table that needs it".into()));
        }
        let mut queue_names = HashSet::new();
        for (i, q) in self.queues.iter().enumerate() {
            let here = [key("queues"), PathKey::Index(i)];
            let name_path = [key("queues"), PathKey::Index(i), key("name")];
            if q.name.is_empty() {
                out.push(at(&here, "queue without a name".into()));
            } else if !queue_names.insert(q.name.as_str()) {
                out.push(at(
                    &name_path,
                    format!("queue `{}` is defined twice", q.name),
                ));
            }
            if q.ring_timeout_s == 0 {
                let p = [key("queues"), PathKey::Index(i), key("ring_timeout_s")];
                out.push(at(&p, "ring_timeout_s must be at least 1".into()));
            }
        }
        for (i, q) in self.queues.iter().enumerate() {
            if let Some(OverflowTarget::Queue(target)) = &q.overflow {
                let p = [key("queues"), PathKey::Index(i), key("overflow")];
                if !queue_names.contains(target.as_str()) {
                    out.push(at(&p, format!("overflow to unknown queue `{target}`")));
                } else if *target == q.name {
                    out.push(at(&p, format!("queue `{target}` overflows to itself")));
                }
            }
        }
        let mut ids = HashSet::new();
        let mut users = HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let here = [key("agents"), PathKey::Index(i)];
            let field = |f: &str| [key("agents"), PathKey::Index(i), key(f)];
            if a.id.is_empty() {
                out.push(at(&here, "agent without an id".into()));
            } else if !ids.insert(a.id.as_str()) {
                out.push(at(
                    &field("id"),
                    format!("agent `{}` is defined twice", a.id),
                ));
            }
            if a.password.is_some() && !users.insert(a.sip_user()) {
                let p = if a.sip_user.is_some() {
                    field("sip_user")
                } else {
                    field("id")
                };
                out.push(at(
                    &p,
                    format!("SIP user `{}` belongs to two agents", a.sip_user()),
                ));
            }
            if a.password.is_none() && a.uri.is_none() {
                out.push(at(
                    &here,
                    format!(
                        "agent `{}` cannot be reached: set `password` (its phone registers) \
                         or `uri` (reached through the trunk)",
                        a.id
                    ),
                ));
            }
            if let Some(uri) = &a.uri
                && rsip::Uri::try_from(uri.as_str()).is_err()
            {
                out.push(at(&field("uri"), format!("`{uri}` is not a SIP URI")));
            }
            if a.max_offers == 0 {
                out.push(at(
                    &field("max_offers"),
                    "max_offers must be at least 1".into(),
                ));
            }
            for q in a.skills.keys() {
                if !queue_names.contains(q.as_str()) {
                    let p = [
                        key("agents"),
                        PathKey::Index(i),
                        key("skills"),
                        PathKey::Key(q.clone()),
                    ];
                    out.push(at(&p, format!("skill for unknown queue `{q}`")));
                }
            }
        }
        out
    }

    /// The problems as diagnostics against the whole config file's text.
    pub fn diagnostics(&self, file: &Path, text: &str) -> Vec<Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[acd]
[[acd.queues]]
name = "housing"
overflow = { queue = "nowhere" }

[[acd.queues]]
name = "housing"

[[acd.agents]]
id = "1001"
password = "pw"
skills = { housing = 5, tax = 3 }

[[acd.agents]]
id = "1002"
"#;

    fn parse(text: &str) -> AcdConfig {
        crate::config::Config::parse(Path::new("hotline.toml"), text)
            .expect("valid TOML")
            .acd
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let diags = parse(TEXT).diagnostics(Path::new("hotline.toml"), TEXT);
        let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "hotline.toml:8:1: queue `housing` is defined twice",
                "hotline.toml:5:1: overflow to unknown queue `nowhere`",
                "hotline.toml:13:25: skill for unknown queue `tax`",
                "hotline.toml:15:1: agent `1002` cannot be reached: set `password` (its phone \
                 registers) or `uri` (reached through the trunk)",
            ],
        );
    }

    #[test]
    fn a_clean_section_has_no_problems() {
        let text = "[[acd.queues]]\nname = \"a\"\n[[acd.agents]]\nid = \"1\"\n\
                    uri = \"sip:1@pbx.example\"\nskills = { a = 1 }\n";
        assert_eq!(parse(text).problems(), vec![]);
    }

    #[test]
    fn queue_defaults_fill_what_a_queue_leaves_out() {
        let text = "[acd.queue_defaults]\nlanguage_relax_s = 60\nring_timeout_s = 20\n\
                    [[acd.queues]]\nname = \"a\"\n\
                    [[acd.queues]]\nname = \"b\"\nlanguage_relax_s = 30\n";
        let acd = parse(text);
        assert_eq!(acd.problems(), vec![]);
        let [a, b] = acd.queues.as_slice() else {
            panic!("two queues: {:?}", acd.queues);
        };
        assert_eq!((a.language_relax_s, a.ring_timeout_s), (Some(60), 20));
        assert_eq!((b.language_relax_s, b.ring_timeout_s), (Some(30), 20));
        // What neither sets keeps the built-in default.
        assert_eq!((a.wrap_up_s, b.wrap_up_s), (10, 10));
    }

    #[test]
    fn queue_defaults_are_checked_where_they_are_written() {
        let text = "[acd.queue_defaults]\nring_timeut_s = 20\n";
        let err = crate::config::Config::parse(Path::new("hotline.toml"), text)
            .expect_err("a misspelt key");
        assert!(
            err.to_string()
                .starts_with("hotline.toml:2:1: unknown field `ring_timeut_s`"),
            "{err}"
        );
        let text = "[acd.queue_defaults]\nname = \"x\"\noverflow = { queue = \"general\" }\n";
        let lines: Vec<String> = parse(text)
            .diagnostics(Path::new("hotline.toml"), text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("hotline.toml:2:"), "{lines:?}");
        assert!(lines[1].starts_with("hotline.toml:3:"), "{lines:?}");
    }
}
