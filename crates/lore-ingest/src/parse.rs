use std::fs;
use std::path::Path;

use lore_core::{Document, Error, Result, Section};

/// The formats Lore reads, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

impl Format {
    /// The format of `path` by its extension, if Lore reads it.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }
}

/// Reads and parses one file. The document's `source` is the path as given.
pub fn parse(path: &Path) -> Result<Document> {
    let source = path.display().to_string();
    let fail = |reason: String| Error::Parse { path: source.clone(), reason };
    let format = Format::of(path).ok_or_else(|| fail("unsupported format (Lore reads .txt and .md)".into()))?;
    let bytes = fs::read(path).map_err(|e| fail(e.to_string()))?;
    let text = decode(&bytes).map_err(fail)?;
    let mut doc = parse_text(&source, &text, format);
    if let Ok(modified) = fs::metadata(path).and_then(|m| m.modified()) {
        if let Ok(age) = modified.duration_since(std::time::UNIX_EPOCH) {
            doc.metadata.insert("modified_unix".into(), age.as_secs().into());
        }
    }
    Ok(doc)
}

fn decode(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err("binary content (NUL bytes), not text".into());
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()))
}

/// Parses text already in memory. Markdown is split into sections by its ATX headings
/// (`#` … `######`, outside code fences), each carrying its heading path.
pub fn parse_text(source: &str, text: &str, format: Format) -> Document {
    let text = text.replace("\r\n", "\n");
    let (sections, title) = match format {
        Format::Text => (vec![Section::new(Vec::new(), text.trim())], None),
        Format::Markdown => markdown_sections(&text),
    };
    let sections: Vec<Section> = sections.into_iter().filter(|s| !s.text.trim().is_empty()).collect();
    let mut doc = Document::new(source, sections);
    doc.title = title.or_else(|| Path::new(source).file_stem().map(|s| s.to_string_lossy().into_owned()));
    doc.metadata.insert("source".into(), source.into());
    doc
}

fn markdown_sections(text: &str) -> (Vec<Section>, Option<String>) {
    let mut sections = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut title = None;
    let mut in_fence = false;
    let heading_path = |path: &[(usize, String)]| path.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        let heading = (!in_fence).then(|| atx_heading(line)).flatten();
        match heading {
            Some((level, heading)) => {
                sections.push(Section::new(heading_path(&path), body.trim()));
                body.clear();
                path.retain(|(l, _)| *l < level);
                if level == 1 && title.is_none() {
                    title = Some(heading.clone());
                }
                path.push((level, heading));
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    sections.push(Section::new(heading_path(&path), body.trim()));
    (sections, title)
}

fn atx_heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let heading = rest.trim().trim_end_matches('#').trim();
    Some((level, heading.to_string()))
}
