//! The YAML layer of dialplan files: serde-saphyr turns the text into a tree of nodes, each
//! with its `line:column`, and `Reader` decodes that tree while collecting every problem as
//! a `Diagnostic` instead of stopping at the first. Knows nothing about steps or prompts.

use std::path::Path;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::model::Pos;
use crate::diag::Diagnostic;

/// One YAML node. Scalars keep their source text, so that `0123` or `+8612345` stay what the
/// operator wrote instead of the number YAML would make of them.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// Written in quotes: its text starts one column after `pos`.
    pub quoted: bool,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// What the serde visitor sees; scalars that YAML typed (numbers, booleans) are re-read from
/// the source afterwards, by byte range.
enum Raw {
    Null,
    Text(String),
    Typed,
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Raw, E> {
        Ok(Raw::Typed)
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Raw::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn pos_of(loc: &serde_saphyr::Location) -> Pos {
    Pos {
        line: u32::try_from(loc.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(loc.column()).unwrap_or(u32::MAX).max(1),
    }
}

fn source_text<'s>(src: &'s str, loc: &serde_saphyr::Location) -> Option<&'s str> {
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    src.get(start..start.checked_add(len)?)
}

fn convert(src: &str, raw: Spanned<Raw>) -> Node {
    let pos = pos_of(&raw.referenced);
    let source = source_text(src, &raw.referenced).unwrap_or_default();
    let quoted = source.starts_with(['"', '\'']);
    let kind = match raw.value {
        Raw::Null => Kind::Null,
        Raw::Text(t) => Kind::Scalar(t),
        Raw::Typed => Kind::Scalar(source.trim().to_owned()),
        Raw::Seq(items) => Kind::Seq(items.into_iter().map(|i| convert(src, i)).collect()),
        Raw::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(src, k), convert(src, v)))
                .collect(),
        ),
    };
    Node { kind, pos, quoted }
}

/// Parses a whole file into a node tree, or the one syntax error YAML allows us to see.
pub fn parse(src: &str) -> Result<Node, (Pos, String)> {
    match serde_saphyr::from_str::<Spanned<Raw>>(src) {
        Ok(raw) => Ok(convert(src, raw)),
        Err(e) => {
            let pos = e
                .location()
                .map_or(Pos { line: 1, column: 1 }, |l| pos_of(&l));
            Err((pos, clean_message(&e.without_snippet().to_string())))
        }
    }
}

/// serde-saphyr ends its messages with the position (which we print in front) and sometimes
/// with advice about its own API, which means nothing to an operator.
fn clean_message(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let message = match message.find(", set DuplicateKeyPolicy") {
        Some(i) => &message[..i],
        None => message,
    };
    message.to_owned()
}

impl Node {
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing",
            Kind::Scalar(_) => "a single value",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Decodes nodes into typed values, recording every problem with its position.
pub struct Reader<'f> {
    file: &'f Path,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'f> Reader<'f> {
    pub fn new(file: &'f Path) -> Reader<'f> {
        Reader {
            file,
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::at(
            self.file,
            pos.line as usize,
            pos.column as usize,
            message,
        ));
    }

    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s) => Some(s.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a single value, not {}", node.describe()),
                );
                None
            }
        }
    }

    /// A single value or a list of them.
    pub fn texts(&mut self, node: &Node, what: &str) -> Vec<(String, Pos)> {
        match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| self.text(i, what).map(|t| (t, i.pos)))
                .collect(),
            _ => self
                .text(node, what)
                .map(|t| vec![(t, node.pos)])
                .unwrap_or_default(),
        }
    }

    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            Kind::Map(entries) => Some(entries),
            Kind::Null => Some(&[]),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, not {}", node.describe()),
                );
                None
            }
        }
    }

    pub fn uint(&mut self, node: &Node, what: &str) -> Option<u32> {
        let text = self.text(node, what)?;
        match text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    node.pos,
                    format!("{what} must be a whole number, not `{text}`"),
                );
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, what: &str) -> Option<i32> {
        let text = self.text(node, what)?;
        match text.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(node.pos, format!("{what} must be a number, not `{text}`"));
                None
            }
        }
    }

    /// A number between 0 and 1.
    pub fn fraction(&mut self, node: &Node, what: &str) -> Option<f32> {
        let text = self.text(node, what)?;
        match text.parse::<f32>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Some(f),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a number from 0 to 1, not `{text}`"),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        let text = self.text(node, what)?;
        match text.as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be true or false, not `{text}`"),
                );
                None
            }
        }
    }

    /// `500ms`, `5s`, `2m`, or a bare number of seconds.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.text(node, what)?;
        let parsed = crate::duration::parse(&text).filter(|d| !d.is_zero());
        if parsed.is_none() {
            self.error(
                node.pos,
                format!("{what} must be a duration such as `500ms`, `5s` or `2m`, not `{text}`"),
            );
        }
        parsed
    }

    /// Starts reading a mapping whose keys are fixed names; `finish` reports the rest.
    pub fn fields<'n>(&mut self, node: &'n Node, what: &str) -> Option<Fields<'n>> {
        let entries = self.map(node, what)?;
        Some(Fields {
            entries,
            used: vec![false; entries.len()],
            known: Vec::new(),
            what: what.to_owned(),
        })
    }
}

/// The keys of one mapping, consumed by name; whatever is left over is an unknown key.
pub struct Fields<'n> {
    entries: &'n [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
    what: String,
}

impl<'n> Fields<'n> {
    pub fn take(&mut self, key: &'static str) -> Option<&'n Node> {
        self.known.push(key);
        let i = self
            .entries
            .iter()
            .position(|(k, _)| matches!(&k.kind, Kind::Scalar(s) if s == key))?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// Like `take`, reporting its absence.
    pub fn require(&mut self, r: &mut Reader, at: Pos, key: &'static str) -> Option<&'n Node> {
        let node = self.take(key);
        if node.is_none() {
            r.error(at, format!("{} needs `{key}`", self.what));
        }
        node
    }

    pub fn finish(self, r: &mut Reader) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let name = match &key.kind {
                Kind::Scalar(s) => s.as_str(),
                _ => "?",
            };
            let mut message = format!("unknown key `{name}` in {}", self.what);
            if let Some(close) = super::suggest::closest(name, self.known.iter().copied()) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            r.error(key.pos, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_source_text() {
        let node = parse("a: 0123\nb: +8612345\nc: 5s\n").expect("valid YAML");
        let Kind::Map(entries) = node.kind else {
            panic!("a mapping")
        };
        let values: Vec<_> = entries
            .iter()
            .map(|(_, v)| match &v.kind {
                Kind::Scalar(s) => s.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(values, ["0123", "+8612345", "5s"]);
        assert_eq!(entries[1].1.pos, Pos { line: 2, column: 4 });
    }

    #[test]
    fn syntax_errors_have_a_position_and_a_clean_message() {
        let (pos, message) = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(pos, Pos { line: 2, column: 1 });
        assert_eq!(message, "duplicate mapping key: a");
    }
}
