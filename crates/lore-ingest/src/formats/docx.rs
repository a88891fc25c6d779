//! Word documents: paragraphs whose style is a heading (or the title) open sections, list items
//! become `- ` lines indented by level, tables become Markdown tables; footnotes and endnotes
//! close the document under a "Notes" heading.

use std::collections::HashMap;

use lore_core::Section;

use super::ooxml::{Package, XmlEvent, attribute, local_name, walk};
use super::{Outline, Parsed, markdown_table};

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let mut package = Package::open(bytes, "DOCX")?;
    let document = package.required_part("word/document.xml")?;
    let styles = match package.part("word/styles.xml")? {
        Some(xml) => heading_styles(&xml)?,
        None => HashMap::new(),
    };
    let mut body = Body::new(&styles);
    walk(&document, |event| body.event(event))?;
    let (mut sections, title_paragraph) = body.finish();
    let mut notes = Body::new(&styles);
    for part in ["word/footnotes.xml", "word/endnotes.xml"] {
        if let Some(xml) = package.part(part)? {
            walk(&xml, |event| notes.event(event))?;
        }
    }
    let notes: Vec<String> = notes.finish().0.into_iter().map(|s| s.text).filter(|t| !t.is_empty()).collect();
    if !notes.is_empty() {
        sections.push(Section::new(vec!["Notes".into()], notes.join("\n\n")));
    }
    Ok(Parsed { sections, title: package.title()?.or(title_paragraph), ..Parsed::default() })
}

/// The heading level of each paragraph style that has one: 0 for the title, n for "heading n"
/// or an outline level of n - 1, inherited through `basedOn`. Styles are looked up by name
/// because ids are localised ("berschrift1" in a German Word).
fn heading_styles(xml: &str) -> Result<HashMap<String, usize>, String> {
    struct Style {
        level: Option<usize>,
        based_on: Option<String>,
    }
    let mut styles: HashMap<String, Style> = HashMap::new();
    let mut current: Option<(String, Style)> = None;
    walk(xml, |event| match event {
        XmlEvent::Open(e) => match (local_name(e), current.as_mut()) {
            ("style", _) => current = attribute(e, "styleId").map(|id| (id, Style { level: None, based_on: None })),
            ("name", Some((_, style))) => {
                style.level = style.level.or(attribute(e, "val").and_then(|n| level_from_name(&n)))
            }
            ("outlineLvl", Some((_, style))) => {
                style.level = style.level.or(attribute(e, "val").and_then(|v| outline_level(&v)))
            }
            ("basedOn", Some((_, style))) => style.based_on = attribute(e, "val"),
            _ => {}
        },
        XmlEvent::Close("style") => {
            if let Some((id, style)) = current.take() {
                styles.insert(id, style);
            }
        }
        _ => {}
    })?;
    let level = |id: &str| {
        // Inheritance chains are short; the bound only guards against a cycle.
        let mut id = id;
        for _ in 0..16 {
            let style = styles.get(id)?;
            match (style.level, &style.based_on) {
                (Some(level), _) => return Some(level),
                (None, Some(parent)) => id = parent,
                (None, None) => return None,
            }
        }
        None
    };
    Ok(styles.keys().filter_map(|id| level(id).map(|l| (id.clone(), l))).collect())
}

/// "Title" is level 0, "heading 2" (or the id "Heading2") level 2.
fn level_from_name(name: &str) -> Option<usize> {
    let name = name.to_ascii_lowercase();
    if name == "title" {
        return Some(0);
    }
    name.strip_prefix("heading")?.trim().parse().ok().filter(|l| (1..=9).contains(l))
}

/// Outline levels count from 0; 9 means body text.
fn outline_level(value: &str) -> Option<usize> {
    value.parse::<usize>().ok().filter(|l| *l < 9).map(|l| l + 1)
}

#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline_level: Option<usize>,
    list_level: Option<usize>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: String,
    /// Tables nested in a cell are read as the cell's text.
    depth: usize,
}

struct Body<'s> {
    styles: &'s HashMap<String, usize>,
    outline: Outline,
    title: Option<String>,
    /// Open paragraphs: a text box puts paragraphs inside a paragraph.
    paragraphs: Vec<Paragraph>,
    table: Option<Table>,
    runs: usize,
    in_text: bool,
}

impl<'s> Body<'s> {
    fn new(styles: &'s HashMap<String, usize>) -> Self {
        Body {
            styles,
            outline: Outline::default(),
            title: None,
            paragraphs: Vec::new(),
            table: None,
            runs: 0,
            in_text: false,
        }
    }

    fn event(&mut self, event: XmlEvent<'_>) {
        match event {
            XmlEvent::Open(e) => self.open(local_name(e), |name| attribute(e, name)),
            XmlEvent::Close(name) => self.close(name),
            XmlEvent::Text(text) if self.in_text => self.push_text(text),
            XmlEvent::Text(_) => {}
        }
    }

    fn open(&mut self, name: &str, attribute: impl Fn(&str) -> Option<String>) {
        let paragraph = self.paragraphs.last_mut();
        match (name, paragraph) {
            ("p", _) => self.paragraphs.push(Paragraph::default()),
            ("pStyle", Some(p)) => p.style = attribute("val"),
            ("outlineLvl", Some(p)) => p.outline_level = attribute("val").and_then(|v| outline_level(&v)),
            ("numPr", Some(p)) => p.list_level = Some(0),
            ("ilvl", Some(p)) => p.list_level = attribute("val").and_then(|v| v.parse().ok()).or(Some(0)),
            // Numbering id 0 switches off a list inherited from the style.
            ("numId", Some(p)) if attribute("val").as_deref() == Some("0") => p.list_level = None,
            ("r", _) => self.runs += 1,
            ("t", _) => self.in_text = true,
            ("tab", _) if self.runs > 0 => self.push_text("\t"),
            ("br" | "cr", _) if self.runs > 0 => self.push_text("\n"),
            ("tbl", _) => self.table.get_or_insert_with(Table::default).depth += 1,
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    self.end_paragraph(paragraph);
                }
            }
            "r" => self.runs = self.runs.saturating_sub(1),
            "t" => self.in_text = false,
            "tc" => {
                if let Some(table) = self.table.as_mut().filter(|t| t.depth == 1) {
                    let cell = std::mem::take(&mut table.cell);
                    table.row.push(cell.trim().to_string());
                }
            }
            "tr" => {
                if let Some(table) = self.table.as_mut().filter(|t| t.depth == 1) {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            "tbl" => {
                if let Some(table) = self.table.as_mut() {
                    table.depth -= 1;
                    if table.depth == 0 {
                        let rows = std::mem::take(&mut table.rows);
                        self.table = None;
                        self.outline.block(&markdown_table(&rows));
                    }
                }
            }
            _ => {}
        }
    }

    fn push_text(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn end_paragraph(&mut self, paragraph: Paragraph) {
        let text = paragraph.text.trim();
        if let Some(table) = self.table.as_mut() {
            if !text.is_empty() {
                if !table.cell.is_empty() {
                    table.cell.push(' ');
                }
                table.cell.push_str(text);
            }
            return;
        }
        if text.is_empty() {
            return;
        }
        let style_level =
            paragraph.style.as_deref().and_then(|s| self.styles.get(s).copied().or_else(|| level_from_name(s)));
        match (style_level.or(paragraph.outline_level), paragraph.list_level) {
            (Some(level), _) => {
                let heading = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if level == 0 && self.title.is_none() {
                    self.title = Some(heading.clone());
                }
                self.outline.heading(level, heading);
            }
            (None, Some(level)) => self.outline.line(&format!("{}- {text}", "  ".repeat(level.min(8)))),
            (None, None) => self.outline.block(text),
        }
    }

    fn finish(self) -> (Vec<Section>, Option<String>) {
        (self.outline.finish(), self.title)
    }
}
