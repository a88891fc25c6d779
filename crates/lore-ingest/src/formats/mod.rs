//! One parser per format. Each turns bytes into sections and metadata, or a reason a user can
//! act on; `parse` wraps them with panic isolation and the metadata every document carries.

mod csv;
mod docx;
mod html;
mod json;
mod markdown;
mod ooxml;
mod pdf;
mod pptx;
mod spreadsheet;
mod text;

use std::io::Cursor;

use lore_core::{Metadata, Section};

use crate::Format;

pub(crate) use markdown::markdown;
pub(crate) use text::plain;

/// What a format parser found.
#[derive(Default)]
pub(crate) struct Parsed {
    pub sections: Vec<Section>,
    pub title: Option<String>,
    pub metadata: Metadata,
}

pub(crate) fn parse(format: Format, bytes: &[u8]) -> Result<Parsed, String> {
    match format {
        Format::Text => Ok(plain(&text::decode(bytes)?)),
        Format::Markdown => Ok(markdown(&text::decode(bytes)?)),
        Format::Html => Ok(html::parse(&text::decode(bytes)?)),
        Format::Csv => csv::parse(&text::decode(bytes)?),
        Format::Json => json::parse(&text::decode(bytes)?),
        Format::Jsonl => json::parse_lines(&text::decode(bytes)?),
        Format::Pdf => pdf::parse(bytes),
        Format::Docx => docx::parse(bytes),
        Format::Pptx => pptx::parse(bytes),
        Format::Spreadsheet => spreadsheet::parse(bytes),
    }
}

/// The format the bytes are in, when their first bytes say so whatever the file is called.
pub(crate) fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"%PDF-") {
        return Some(Format::Pdf);
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return None;
    }
    let archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let has = |name: &str| archive.index_for_name(name).is_some();
    if has("word/document.xml") {
        Some(Format::Docx)
    } else if has("ppt/presentation.xml") {
        Some(Format::Pptx)
    } else if has("xl/workbook.xml") || has("xl/workbook.bin") || has("content.xml") && has("mimetype") {
        Some(Format::Spreadsheet)
    } else {
        None
    }
}

/// Renders rows as a Markdown table, the first row as its header. Cells are kept on one line so
/// that the table stays a table.
fn markdown_table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let line = |row: &[String]| {
        let cells = (0..width).map(|i| {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            cell.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
        });
        format!("| {} |", cells.collect::<Vec<_>>().join(" | "))
    };
    let mut table = vec![line(&rows[0]), format!("|{}", " --- |".repeat(width))];
    table.extend(rows[1..].iter().map(|row| line(row)));
    table.join("\n")
}

/// Renders a table row as "Header1: v1; Header2: v2", so that any run of rows cut out of the
/// table still says what each value is. Empty cells are left out.
fn labelled_row(header: &[String], row: &[String]) -> String {
    let pairs = row.iter().enumerate().filter(|(_, value)| !value.trim().is_empty()).map(|(i, value)| {
        let label = header.get(i).map(|h| h.trim()).filter(|h| !h.is_empty());
        let value = value.trim();
        match label {
            Some(label) => format!("{label}: {value}"),
            None => format!("{}: {value}", column_name(i)),
        }
    });
    pairs.collect::<Vec<_>>().join("; ")
}

/// Spreadsheet column letters for an unnamed column: A … Z, AA …
fn column_name(index: usize) -> String {
    let mut name = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        name.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    format!("Column {}", String::from_utf8_lossy(&name))
}

/// Turns a table (first non-empty row as header) into labelled lines.
fn labelled_rows(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut rows = rows.into_iter().filter(|row| row.iter().any(|cell| !cell.trim().is_empty()));
    let Some(header) = rows.next() else { return String::new() };
    let lines: Vec<String> = rows.map(|row| labelled_row(&header, &row)).collect();
    if lines.is_empty() {
        // A table of headers only still says something.
        return header.iter().map(|h| h.trim()).filter(|h| !h.is_empty()).collect::<Vec<_>>().join("; ");
    }
    lines.join("\n")
}

/// Builds sections from headings and body text: a heading closes the section before it and
/// opens one under its path (the headings above it of a lower level, then itself).
#[derive(Default)]
struct Outline {
    sections: Vec<Section>,
    path: Vec<(usize, String)>,
    body: String,
}

impl Outline {
    fn heading(&mut self, level: usize, heading: String) {
        self.close_section();
        self.path.retain(|(l, _)| *l < level);
        self.path.push((level, heading));
    }

    fn close_section(&mut self) {
        let text = std::mem::take(&mut self.body);
        self.sections.push(Section::new(self.path.iter().map(|(_, h)| h.clone()).collect(), text.trim()));
    }

    /// A line that belongs with the lines around it (Markdown source, list items).
    fn line(&mut self, line: &str) {
        self.body.push_str(line);
        self.body.push('\n');
    }

    /// A paragraph or a table: set apart from what precedes it by a blank line.
    fn block(&mut self, block: &str) {
        if !self.body.is_empty() && !self.body.ends_with("\n\n") {
            self.body.push('\n');
        }
        self.line(block);
    }

    fn finish(mut self) -> Vec<Section> {
        self.close_section();
        self.sections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_count_like_spreadsheets() {
        assert_eq!(column_name(0), "Column A");
        assert_eq!(column_name(25), "Column Z");
        assert_eq!(column_name(26), "Column AA");
        assert_eq!(column_name(27 * 26), "Column AAA");
    }

    #[test]
    fn markdown_tables_escape_bars_and_pad_short_rows() {
        let rows = vec![vec!["a".to_string(), "b|c".to_string()], vec!["1".to_string()]];
        assert_eq!(markdown_table(&rows), "| a | b\\|c |\n| --- | --- |\n| 1 |  |");
    }
}
