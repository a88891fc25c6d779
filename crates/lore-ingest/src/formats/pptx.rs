//! PowerPoint decks: one section per slide in presentation order, under the slide's title, with
//! the text of its shapes and tables and then its speaker notes after "Notes:".

use lore_core::Section;

use super::ooxml::{Package, XmlEvent, attribute, local_name, walk};
use super::{Parsed, markdown_table};

/// Placeholders that repeat on every slide or carry no text of their own.
const BOILERPLATE: [&str; 5] = ["sldNum", "dt", "ftr", "hdr", "sldImg"];

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let mut package = Package::open(bytes, "PPTX")?;
    let presentation = package.required_part("ppt/presentation.xml")?;
    let mut slide_ids = Vec::new();
    walk(&presentation, |event| {
        if let XmlEvent::Open(e) = event
            && local_name(e) == "sldId"
            && let Some(id) = relationship_id(e)
        {
            slide_ids.push(id);
        }
    })?;
    let links = package.relationships("ppt/presentation.xml")?;
    let mut sections = Vec::new();
    let mut first_title = None;
    for (index, id) in slide_ids.iter().enumerate() {
        let Some(part) = links.iter().find(|r| &r.id == id).map(|r| r.target.clone()) else { continue };
        let slide = shapes(&package.required_part(&part)?)?;
        let title = join(slide.iter().filter(|s| is_title(s)), " ");
        let body = join(slide.iter().filter(|s| !is_title(s) && !is_boilerplate(s)), "\n\n");
        let notes_part = package.relationships(&part)?.into_iter().find(|r| r.kind == "notesSlide");
        let notes = match notes_part {
            Some(notes) => match package.part(&notes.target)? {
                Some(xml) => join(shapes(&xml)?.iter().filter(|s| s.placeholder.as_deref() == Some("body")), "\n"),
                None => String::new(),
            },
            None => String::new(),
        };
        let mut text = body;
        if !notes.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str("Notes: ");
            text.push_str(&notes);
        }
        if text.is_empty() {
            // A section-divider slide says something by its title alone.
            text = title.clone();
        }
        if first_title.is_none() && !title.is_empty() {
            first_title = Some(title.clone());
        }
        let heading_path = if title.is_empty() { Vec::new() } else { vec![title] };
        let mut section = Section::new(heading_path, text);
        section.metadata.insert("slide".into(), (index + 1).into());
        sections.push(section);
    }
    Ok(Parsed { sections, title: package.title()?.or(first_title), ..Parsed::default() })
}

/// The `r:id` of a slide list entry (it also has a plain `id`, a number).
fn relationship_id(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.prefix().is_some() && a.key.local_name().into_inner() == "id")
        .map(|a| a.value.into_owned())
}

/// A shape's text, or a table as Markdown.
struct Shape {
    placeholder: Option<String>,
    text: String,
}

fn is_title(shape: &Shape) -> bool {
    matches!(shape.placeholder.as_deref(), Some("title" | "ctrTitle"))
}

fn is_boilerplate(shape: &Shape) -> bool {
    shape.placeholder.as_deref().is_some_and(|p| BOILERPLATE.contains(&p))
}

fn join<'a>(shapes: impl Iterator<Item = &'a Shape>, separator: &str) -> String {
    shapes.map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(separator)
}

/// The shapes of a slide (or notes page) in drawing order.
fn shapes(xml: &str) -> Result<Vec<Shape>, String> {
    let mut shapes = Vec::new();
    let mut shape: Option<Shape> = None;
    let mut table: Option<(Vec<Vec<String>>, Vec<String>, String)> = None;
    let mut paragraph = String::new();
    let mut in_text = false;
    walk(xml, |event| match event {
        XmlEvent::Open(e) => match local_name(e) {
            "sp" => shape = Some(Shape { placeholder: None, text: String::new() }),
            // A placeholder without a type is the body placeholder.
            "ph" => {
                if let Some(shape) = shape.as_mut() {
                    shape.placeholder = Some(attribute(e, "type").unwrap_or_else(|| "body".into()));
                }
            }
            "tbl" => table = Some(Default::default()),
            "p" => paragraph.clear(),
            "t" => in_text = true,
            "br" => paragraph.push('\n'),
            _ => {}
        },
        XmlEvent::Text(text) if in_text => paragraph.push_str(text),
        XmlEvent::Text(_) => {}
        XmlEvent::Close(name) => match name {
            "t" => in_text = false,
            "p" => {
                let line = std::mem::take(&mut paragraph);
                let line = line.trim();
                if let Some((_, _, cell)) = table.as_mut() {
                    if !cell.is_empty() {
                        cell.push(' ');
                    }
                    cell.push_str(line);
                } else if let Some(shape) = shape.as_mut() {
                    shape.text.push_str(line);
                    shape.text.push('\n');
                }
            }
            "tc" => {
                if let Some((_, row, cell)) = table.as_mut() {
                    row.push(std::mem::take(cell));
                }
            }
            "tr" => {
                if let Some((rows, row, _)) = table.as_mut() {
                    rows.push(std::mem::take(row));
                }
            }
            "tbl" => {
                if let Some((rows, _, _)) = table.take() {
                    shapes.push(Shape { placeholder: None, text: markdown_table(&rows) });
                }
            }
            "sp" => shapes.extend(shape.take()),
            _ => {}
        },
    })?;
    Ok(shapes)
}
