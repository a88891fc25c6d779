//! JSON and JSON Lines. A record (a JSONL line, an element of a top-level array, or the whole
//! value otherwise) becomes one section. Its text is the strings in fields named like prose
//! (text, content, body, title, question, answer) at any depth; a record without such fields
//! gives all its strings as "key: value" lines (keys sorted: serde_json does not keep their
//! order, and keeping it would change every crate's JSON maps). Other scalars become the section's metadata,
//! keyed by their dotted path.

use lore_core::{Metadata, Section};
use serde_json::Value;

use super::Parsed;

/// In the order their text is written (JSON objects are read with their keys sorted).
const TEXT_FIELDS: [&str; 6] = ["title", "question", "answer", "text", "content", "body"];

/// Strings this long are prose whatever their field is called, so they are kept as text.
const PROSE_CHARS: usize = 200;

pub(super) fn parse(text: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(&e, None))?;
    let Value::Array(records) = value else {
        // A single record is the document itself: its fields describe the document.
        let mut section = record_section(&value);
        let title = section.heading_path.first().cloned();
        let metadata = std::mem::take(&mut section.metadata);
        return Ok(Parsed { sections: vec![section], title, metadata });
    };
    Ok(Parsed { sections: numbered_sections(&records), ..Parsed::default() })
}

pub(super) fn parse_lines(text: &str) -> Result<Parsed, String> {
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            records.push(serde_json::from_str(line).map_err(|e| json_error(&e, Some(n + 1)))?);
        }
    }
    Ok(Parsed { sections: numbered_sections(&records), ..Parsed::default() })
}

fn json_error(e: &serde_json::Error, line: Option<usize>) -> String {
    let place = match line {
        Some(line) => format!("line {line}"),
        None => format!("line {}, column {}", e.line(), e.column()),
    };
    if e.is_eof() {
        format!("truncated JSON (it ends in the middle of a value, {place})")
    } else {
        format!("invalid JSON at {place}: {e}")
    }
}

fn numbered_sections(records: &[Value]) -> Vec<Section> {
    let numbered = records.iter().enumerate().map(|(index, record)| {
        let mut section = record_section(record);
        section.metadata.insert("record".into(), (index + 1).into());
        section
    });
    numbered.collect()
}

/// A record's section: its text, its top-level title as heading, its other scalars as metadata.
fn record_section(record: &Value) -> Section {
    let mut fields = Fields::default();
    fields.visit(record, &mut String::new(), None);
    fields.text.sort_by_key(|(rank, _)| *rank);
    let text = match fields.text.is_empty() {
        true => fields.other_strings.join("\n"),
        false => fields.text.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join("\n"),
    };
    let title = record.get("title").and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
    let mut section = Section::new(title.map(|t| vec![t.to_string()]).unwrap_or_default(), text);
    section.metadata = fields.metadata;
    section
}

#[derive(Default)]
struct Fields {
    /// Prose with the rank of its field in `TEXT_FIELDS` (long strings in other fields last).
    text: Vec<(usize, String)>,
    /// "key: value" lines of the strings outside text fields: the text when there is no other.
    other_strings: Vec<String>,
    metadata: Metadata,
}

impl Fields {
    fn visit(&mut self, value: &Value, path: &mut String, field: Option<&str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let length = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    self.visit(value, path, Some(key));
                    path.truncate(length);
                }
            }
            Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) && !is_text_field(field) => {
                let strings: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if strings.iter().any(|s| s.chars().count() >= PROSE_CHARS) {
                    self.text.extend(strings.iter().map(|s| (TEXT_FIELDS.len(), s.to_string())));
                } else if !items.is_empty() {
                    self.other_strings.extend(strings.iter().map(|s| format!("{path}: {s}")));
                    self.metadata.insert(path.clone(), value.clone());
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.visit(item, path, field);
                }
            }
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) if is_text_field(field) || s.chars().count() >= PROSE_CHARS => {
                self.text.push((text_rank(field), s.clone()))
            }
            Value::String(s) => {
                self.other_strings.push(if path.is_empty() { s.clone() } else { format!("{path}: {s}") });
                self.metadata.insert(path.clone(), value.clone());
            }
            Value::Null => {}
            Value::Bool(_) | Value::Number(_) => {
                self.metadata.insert(if path.is_empty() { "value".into() } else { path.clone() }, value.clone());
            }
        }
    }
}

fn text_rank(field: Option<&str>) -> usize {
    field.and_then(|f| TEXT_FIELDS.iter().position(|t| f.eq_ignore_ascii_case(t))).unwrap_or(TEXT_FIELDS.len())
}

fn is_text_field(field: Option<&str>) -> bool {
    text_rank(field) < TEXT_FIELDS.len()
}
