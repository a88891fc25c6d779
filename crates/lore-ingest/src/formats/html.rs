//! Web pages: the main content (`<main>`, else `<article>`, else `<body>`) without navigation,
//! page chrome, scripts and styles; headings build the heading path, lists become `- ` lines,
//! tables Markdown tables, `<pre>` keeps its lines.

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node};

use super::{Outline, Parsed, markdown_table};

/// Elements whose content is never the page's text.
const ALWAYS_SKIPPED: [&str; 13] = [
    "head", "script", "style", "noscript", "template", "nav", "aside", "svg", "canvas", "iframe", "object", "select",
    "button",
];

/// Page chrome around the content; inside `<main>` or `<article>` these belong to the content
/// (an article's header holds its title).
const CHROME: [&str; 2] = ["header", "footer"];

const BLOCKS: [&str; 24] = [
    "p",
    "div",
    "section",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "hr",
    "br",
    "caption",
    "main",
    "article",
    "header",
    "footer",
    "form",
    "fieldset",
];

pub(super) fn parse(text: &str) -> Parsed {
    let document = Html::parse_document(text);
    let root = document.root_element();
    let find = |wanted: &dyn Fn(ElementRef<'_>) -> bool| root.descendent_elements().find(|e| wanted(*e));
    let main = find(&|e| e.value().name() == "main" || e.value().attr("role") == Some("main"))
        .or_else(|| find(&|e| e.value().name() == "article"));
    let skip_chrome = main.is_none();
    let content = main.or_else(|| find(&|e| e.value().name() == "body")).unwrap_or(root);

    let mut writer = Writer::default();
    let mut skipping = 0usize;
    for edge in content.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) => {
                    let name = e.name();
                    let hidden = e.attr("hidden").is_some() || e.attr("aria-hidden") == Some("true");
                    if skipping > 0 || hidden || ALWAYS_SKIPPED.contains(&name) || skip_chrome && CHROME.contains(&name)
                    {
                        skipping += 1;
                    } else {
                        writer.open(name);
                    }
                }
                Node::Text(text) if skipping == 0 => writer.text(text),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    if skipping > 0 {
                        skipping -= 1;
                    } else {
                        writer.close(e.name());
                    }
                }
            }
        }
    }
    let first_heading = writer.first_h1.take();
    let title = find(&|e| e.value().name() == "title")
        .map(|e| collapse(&e.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    Parsed { sections: writer.finish(), title: title.or(first_heading), ..Parsed::default() }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: Option<String>,
    /// Tables nested in a cell are read as the cell's text.
    depth: usize,
}

#[derive(Default)]
struct Writer {
    outline: Outline,
    /// Inline text not yet written, whitespace collapsed.
    inline: String,
    space_pending: bool,
    heading: Option<usize>,
    first_h1: Option<String>,
    pre: usize,
    lists: usize,
    /// The next block opens a list item.
    bullet_pending: bool,
    table: Option<Table>,
}

impl Writer {
    fn open(&mut self, name: &str) {
        if let Some(level) = heading_level(name) {
            self.flush();
            self.heading = Some(level);
            return;
        }
        match name {
            "pre" => {
                self.flush();
                self.pre += 1;
            }
            "table" => {
                self.flush();
                self.table.get_or_insert_with(Table::default).depth += 1;
            }
            "tr" | "td" | "th" if self.table.as_ref().is_some_and(|t| t.depth > 1) => self.separate(),
            "td" | "th" => {
                self.flush();
                if let Some(table) = self.table.as_mut() {
                    table.cell = Some(String::new());
                }
            }
            "ul" | "ol" => {
                self.flush();
                self.lists += 1;
            }
            "li" => {
                self.flush();
                self.bullet_pending = true;
            }
            "br" if self.pre > 0 => self.inline.push('\n'),
            name if BLOCKS.contains(&name) => self.flush(),
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        if let Some(level) = heading_level(name) {
            let heading = collapse(&std::mem::take(&mut self.inline));
            self.space_pending = false;
            self.heading = None;
            if !heading.is_empty() {
                if level == 1 && self.first_h1.is_none() {
                    self.first_h1 = Some(heading.clone());
                }
                self.outline.heading(level, heading);
            }
            return;
        }
        match name {
            "pre" => {
                self.pre = self.pre.saturating_sub(1);
                if self.pre == 0 {
                    let block = std::mem::take(&mut self.inline);
                    self.write(block.trim_matches('\n').trim_end());
                }
            }
            "table" => {
                self.flush();
                if let Some(table) = self.table.as_mut() {
                    table.depth -= 1;
                    if table.depth == 0 {
                        let rows = std::mem::take(&mut table.rows);
                        self.table = None;
                        self.outline.block(&markdown_table(&rows));
                    }
                }
            }
            "tr" | "td" | "th" if self.table.as_ref().is_some_and(|t| t.depth > 1) => self.separate(),
            "td" | "th" => {
                self.flush();
                if let Some(table) = self.table.as_mut()
                    && let Some(cell) = table.cell.take()
                {
                    table.row.push(cell);
                }
            }
            "tr" => {
                self.flush();
                if let Some(table) = self.table.as_mut() {
                    let row = std::mem::take(&mut table.row);
                    if !row.is_empty() {
                        table.rows.push(row);
                    }
                }
            }
            "ul" | "ol" => {
                self.flush();
                self.lists = self.lists.saturating_sub(1);
            }
            "li" => {
                self.flush();
                self.bullet_pending = false;
            }
            name if BLOCKS.contains(&name) => self.flush(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            self.inline.push_str(text);
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() {
                self.space_pending = true;
            } else {
                if self.space_pending && !self.inline.is_empty() {
                    self.inline.push(' ');
                }
                self.space_pending = false;
                self.inline.push(c);
            }
        }
    }

    /// Inside a nested table, cells and rows are only separated.
    fn separate(&mut self) {
        self.space_pending = true;
    }

    /// Writes the pending inline text as a block (or into the heading or table cell it is in).
    fn flush(&mut self) {
        self.space_pending = false;
        if self.heading.is_some() || self.pre > 0 {
            return;
        }
        let text = std::mem::take(&mut self.inline);
        self.write(&text);
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(cell) = self.table.as_mut().and_then(|t| t.cell.as_mut()) {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(text);
        } else if self.lists > 0 || self.bullet_pending {
            let indent = "  ".repeat(self.lists.saturating_sub(1).min(8));
            let marker = if std::mem::take(&mut self.bullet_pending) { "- " } else { "  " };
            self.outline.line(&format!("{indent}{marker}{text}"));
        } else {
            self.outline.block(text);
        }
    }

    fn finish(mut self) -> Vec<lore_core::Section> {
        self.flush();
        self.outline.finish()
    }
}
