//! docs/config.md against the code: every key the config takes is documented with the
//! default the code uses, and every documented key is one the config takes. A default
//! changed on one side only, or a key added without its line, fails here.

use std::collections::BTreeMap;
use std::path::Path;

use hotline::config::Config;

/// Section (as the page heads it) -> key -> default column.
type Table = BTreeMap<String, BTreeMap<String, String>>;

fn documented() -> Table {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md"))
            .expect("docs/config.md");
    let mut table = Table::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = Some(heading.trim().to_owned());
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `key` | unit | default | what |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let section = section
            .clone()
            .unwrap_or_else(|| panic!("a row before any section: {line}"));
        let key = cells[1].trim_matches('`').to_owned();
        let default = cells[3]
            .trim_matches('`')
            .replace("VERSION", env!("CARGO_PKG_VERSION"));
        let previous = table
            .entry(section.clone())
            .or_default()
            .insert(key.clone(), default);
        assert!(previous.is_none(), "[{section}] {key} is documented twice");
    }
    table
}

/// Every value under `value` by the section it is written in (`[a]` holding a table `b`
/// writes it in `[a.b]`); an empty table is a value (`skills = {}`).
fn flatten(section: &str, value: &toml::Value, out: &mut Table) {
    let toml::Value::Table(t) = value else { return };
    out.entry(section.to_owned()).or_default();
    for (key, v) in t {
        match v {
            toml::Value::Table(inner) if !inner.is_empty() => {
                let name = section.trim_end_matches(']');
                let closing = &section[name.len()..];
                flatten(&format!("{name}.{key}{closing}"), v, out);
            }
            _ => {
                out.entry(section.to_owned())
                    .or_default()
                    .insert(key.clone(), v.to_string());
            }
        }
    }
}

fn defaults<T: serde::Serialize>(section: &str, value: &T, out: &mut Table) {
    flatten(
        section,
        &toml::Value::try_from(value).expect("a config serialises"),
        out,
    );
}

/// What the code says: `Config::default()` and the defaults of each repeated table.
fn code() -> Table {
    let mut out = Table::new();
    let whole = toml::Value::try_from(Config::default()).expect("the config serialises");
    let toml::Value::Table(sections) = whole else {
        panic!("not a table")
    };
    for (name, value) in &sections {
        flatten(&format!("[{name}]"), value, &mut out);
    }
    defaults(
        "[trunks.named.NAME]",
        &hotline::endpoint::NamedTrunk::default(),
        &mut out,
    );
    defaults(
        "[trunks.named.NAME.register]",
        &hotline::endpoint::RegisterConfig::default(),
        &mut out,
    );
    defaults(
        "[[acd.queues]]",
        &hotline::acd::QueueConfig::default(),
        &mut out,
    );
    defaults(
        "[[acd.agents]]",
        &hotline::acd::AgentConfig::default(),
        &mut out,
    );
    defaults(
        "[stats.queue.NAME]",
        &hotline::stats::QueueStatsConfig::default(),
        &mut out,
    );
    out
}

#[test]
fn the_reference_lists_every_key_with_the_codes_default() {
    let documented = documented();
    let code = code();
    let mut wrong = Vec::new();
    for (section, keys) in &code {
        for (key, value) in keys {
            // Lists of tables, maps of named tables and empty tables have sections of their own.
            let path = section.trim_matches(['[', ']']);
            let own_section = [
                format!("[[{path}.{key}]]"),
                format!("[{path}.{key}.NAME]"),
                format!("[{path}.{key}]"),
            ];
            if own_section.iter().any(|s| documented.contains_key(s)) {
                continue;
            }
            match documented.get(section).and_then(|k| k.get(key)) {
                None => wrong.push(format!("{section} {key} = {value}: not documented")),
                Some(d) if d == value => {}
                // A repeated table's name and id have no default.
                Some(d) if d == "*required*" && value == "\"\"" => {}
                Some(d) => wrong.push(format!(
                    "{section} {key}: documented {d}, the code has {value}"
                )),
            }
        }
    }
    for (section, keys) in &documented {
        for (key, default) in keys {
            let in_code = code.get(section).is_some_and(|k| k.contains_key(key));
            match default.as_str() {
                "none" | "*required*" if !accepted(section, key) => wrong.push(format!(
                    "{section} {key}: documented, but the config does not take it"
                )),
                "none" | "*required*" => {}
                _ if !in_code => wrong.push(format!(
                    "{section} {key} = {default}: documented, but not in the code"
                )),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/config.md and the code disagree:\n{}",
        wrong.join("\n")
    );
}

/// The config takes `key` in `section` (a key without a default, so not in `code()`):
/// setting it may fail on its value, but not as an unknown field.
fn accepted(section: &str, key: &str) -> bool {
    let header = section.replace("NAME", "x");
    let mut text = format!("{header}\n");
    if header == "[[acd.queues]]" && key != "name" {
        text.push_str("name = \"q\"\n");
    }
    text.push_str(&format!("{key} = 1\n"));
    match Config::parse(Path::new("probe.toml"), &text) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown field"),
    }
}

#[test]
fn the_shipped_config_loads_with_its_queue_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // Its queue defaults reach every queue that does not set the key itself.
    let relax: Vec<(&str, Option<u64>)> = config
        .acd
        .queues
        .iter()
        .map(|q| (q.name.as_str(), q.language_relax_s))
        .collect();
    assert!(relax.len() > 2, "{relax:?}");
    for (name, relax) in relax {
        let expected = if name == "general" { 30 } else { 60 };
        assert_eq!(relax, Some(expected), "{name}");
    }
}
