//! Office Open XML packages (DOCX, PPTX): a zip archive of XML parts linked by relationships.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;
use zip::result::ZipError;

/// A part inflating to more than this is a zip bomb, not a document.
const MAX_PART_BYTES: u64 = 512 << 20;

/// OLE2 compound files: legacy binary Office files, and password-protected OOXML ones.
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

pub(super) struct Package<'b> {
    archive: ZipArchive<Cursor<&'b [u8]>>,
    kind: &'static str,
}

/// A link from one part to another.
pub(super) struct Relationship {
    pub id: String,
    /// The last segment of the relationship type URI, e.g. `slide` or `notesSlide`.
    pub kind: String,
    /// The target part's name inside the archive.
    pub target: String,
}

impl<'b> Package<'b> {
    /// Opens `bytes` as a package; `kind` ("DOCX", "PPTX") names it in errors.
    pub fn open(bytes: &'b [u8], kind: &'static str) -> Result<Self, String> {
        if bytes.starts_with(OLE_MAGIC) {
            return Err(format!(
                "not a {kind}: this is an OLE container, i.e. a password-protected (encrypted) Office file or a legacy \
                 binary one (.doc/.ppt); remove the password or save it as {kind}"
            ));
        }
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            if bytes.starts_with(b"PK") {
                format!("truncated or damaged {kind} (the zip archive cannot be read: {e})")
            } else {
                format!("not a {kind} (not a zip archive)")
            }
        })?;
        Ok(Package { archive, kind })
    }

    /// The text of a part, or `None` when the archive has no such part.
    pub fn part(&mut self, name: &str) -> Result<Option<String>, String> {
        let kind = self.kind;
        let entry = match self.archive.by_name(name) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(ZipError::UnsupportedArchive(_) | ZipError::InvalidPassword) => {
                return Err(format!("encrypted {kind}: remove the password and ingest the copy"));
            }
            Err(e) => return Err(format!("truncated or damaged {kind} ({name}: {e})")),
        };
        let mut bytes = Vec::new();
        entry
            .take(MAX_PART_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("truncated or damaged {kind} ({name} cannot be inflated: {e})"))?;
        if bytes.len() as u64 > MAX_PART_BYTES {
            return Err(format!(
                "{name} inflates to more than {} MiB: a zip bomb, not a document",
                MAX_PART_BYTES >> 20
            ));
        }
        String::from_utf8(bytes).map(Some).map_err(|_| format!("damaged {kind}: {name} is not UTF-8 XML"))
    }

    /// The text of a part the format cannot do without.
    pub fn required_part(&mut self, name: &str) -> Result<String, String> {
        let kind = self.kind;
        self.part(name)?.ok_or_else(|| format!("not a {kind}: the archive has no {name}"))
    }

    /// The title set in the document's properties, if any.
    pub fn title(&mut self) -> Result<Option<String>, String> {
        let Some(core) = self.part("docProps/core.xml")? else { return Ok(None) };
        let mut title = String::new();
        let mut in_title = false;
        walk(&core, |event| match event {
            XmlEvent::Open(e) => in_title = local_name(e) == "title",
            XmlEvent::Close(_) => in_title = false,
            XmlEvent::Text(text) if in_title => title.push_str(text),
            XmlEvent::Text(_) => {}
        })?;
        Ok(Some(title.trim().to_string()).filter(|t| !t.is_empty()))
    }

    /// The relationships of `part`, in the order the package lists them.
    pub fn relationships(&mut self, part: &str) -> Result<Vec<Relationship>, String> {
        let (folder, file) = part.rsplit_once('/').unwrap_or(("", part));
        let rels_name =
            if folder.is_empty() { format!("_rels/{file}.rels") } else { format!("{folder}/_rels/{file}.rels") };
        let Some(rels) = self.part(&rels_name)? else { return Ok(Vec::new()) };
        let mut relationships = Vec::new();
        walk(&rels, |event| {
            let XmlEvent::Open(e) = event else { return };
            if local_name(e) != "Relationship" || attribute(e, "TargetMode").as_deref() == Some("External") {
                return;
            }
            if let (Some(id), Some(kind), Some(target)) =
                (attribute(e, "Id"), attribute(e, "Type"), attribute(e, "Target"))
            {
                let kind = kind.rsplit('/').next().unwrap_or_default().to_string();
                relationships.push(Relationship { id, kind, target: resolve(folder, &target) });
            }
        })?;
        Ok(relationships)
    }
}

/// The part name a relationship target names, relative to the folder of its source part.
fn resolve(folder: &str, target: &str) -> String {
    let mut segments: Vec<&str> = match target.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => folder.split('/').filter(|s| !s.is_empty()).collect(),
    };
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    segments.join("/")
}

/// What `walk` reports: elements opening (empty ones open and close at once), closing by local
/// name, and text with entities resolved.
pub(super) enum XmlEvent<'e> {
    Open(&'e BytesStart<'e>),
    Close(&'e str),
    Text(&'e str),
}

/// Streams `xml` to `on_event`. Markup-compatibility fallbacks (`mc:Fallback`) are skipped: they
/// repeat their `mc:Choice` for older readers, and reading both would duplicate text.
pub(super) fn walk(xml: &str, mut on_event: impl FnMut(XmlEvent<'_>)) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let mut skipping = 0usize;
    loop {
        let event =
            reader.read_event().map_err(|e| format!("damaged XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) if skipping > 0 || local_name(&e) == "Fallback" => skipping += 1,
            Event::End(_) if skipping > 0 => skipping -= 1,
            _ if skipping > 0 => {}
            Event::Start(e) => on_event(XmlEvent::Open(&e)),
            Event::Empty(e) => {
                on_event(XmlEvent::Open(&e));
                on_event(XmlEvent::Close(local_name(&e)));
            }
            Event::End(e) => on_event(XmlEvent::Close(e.local_name().into_inner())),
            Event::Text(e) => on_event(XmlEvent::Text(&e.xml10_content())),
            Event::CData(e) => on_event(XmlEvent::Text(&e.xml10_content())),
            Event::GeneralRef(e) => {
                let resolved = match e.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => resolve_predefined_entity(&e).map(str::to_string),
                };
                if let Some(text) = resolved {
                    on_event(XmlEvent::Text(&text));
                }
            }
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// An element's name without its namespace prefix.
pub(super) fn local_name<'e>(e: &'e BytesStart<'_>) -> &'e str {
    let name = e.name().into_inner();
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// The value of the attribute whose name without prefix is `local`.
pub(super) fn attribute(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.local_name().into_inner() == local).map(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| a.value.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relationship_targets_resolve_against_their_source_folder() {
        assert_eq!(resolve("ppt/slides", "../notesSlides/notesSlide1.xml"), "ppt/notesSlides/notesSlide1.xml");
        assert_eq!(resolve("ppt", "slides/slide2.xml"), "ppt/slides/slide2.xml");
        assert_eq!(resolve("word", "/word/styles.xml"), "word/styles.xml");
    }
}
