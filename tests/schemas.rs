//! The JSON Schemas editors load for dialplans and grammars (`schemas/`) accept every
//! shipped file and reject what the engine rejects for the same reason: a key that does not
//! exist, a step of the old format, a grammar that still names a queue.

use std::path::{Path, PathBuf};

use boon::{Compiler, SchemaIndex, Schemas};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compile(name: &str) -> (Schemas, SchemaIndex) {
    let path = root().join("schemas").join(name);
    let text = std::fs::read_to_string(&path).expect("the schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    let url = format!("file://{}", path.display());
    compiler
        .add_resource(&url, schema)
        .expect("the schema is added");
    let index = compiler
        .compile(&url, &mut schemas)
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
    (schemas, index)
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}"))
}

/// The schema's verdict on `text`: `Err` with its message when it rejects it.
fn check(schema: &(Schemas, SchemaIndex), text: &str) -> Result<(), String> {
    schema
        .0
        .validate(&yaml(text), schema.1)
        .map_err(|e| format!("{e:#}"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_dialplan_schema_takes_every_shipped_dialplan_and_rejects_wrong_keys() {
    let schema = compile("dialplan.schema.json");
    let files = yaml_files(&root().join("dialplans"));
    assert!(!files.is_empty());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        if let Err(e) = check(&schema, &text) {
            panic!("{}: {e}", file.display());
        }
    }
    let shipped = std::fs::read_to_string(root().join("dialplans/12345.yaml")).expect("shipped");
    for (wrong, why) in [
        ("choose_language: welcome", "language: welcome"),
        ("language_keys:", "keys:"),
        ("timeout: 4s", "timeout: 4 seconds"),
        (
            "    tries: 2\n    default_language",
            "    tries: 2\n    retries: 2\n    default_language",
        ),
        ("queue: \"{intent}\"", "queue: [general]"),
    ] {
        assert!(shipped.contains(wrong), "{wrong}");
        let broken = shipped.replacen(wrong, why, 1);
        assert!(
            check(&schema, &broken).is_err(),
            "the schema took `{why}` for `{wrong}`"
        );
    }
}

#[test]
fn the_grammar_schema_takes_every_shipped_file_and_rejects_a_queue() {
    let schema = compile("grammar.schema.json");
    let files = yaml_files(&root().join("grammars/12345"));
    assert!(files.len() > 2);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        if let Err(e) = check(&schema, &text) {
            panic!("{}: {e}", file.display());
        }
    }
    let labor = std::fs::read_to_string(root().join("grammars/12345/labor.yaml")).expect("labor");
    assert!(check(&schema, &format!("{labor}\nqueue: labor\n")).is_err());
    assert!(check(&schema, &labor.replacen("keywords:", "keywrods:", 1)).is_err());
    assert!(
        check(
            &schema,
            &labor.replacen("intent: labor", "intent: Labor", 1)
        )
        .is_err()
    );
}
