//! PDFs with a text layer: one section per page (`page` metadata, from 1), with words split by a
//! hyphen at a line end joined again and the header and footer lines that repeat on most pages
//! removed. A PDF without a text layer is read by OCR when `pdftoppm` and `tesseract` are
//! installed, and refused otherwise.

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;

use lopdf::{Document, Object};
use lore_core::Section;
use pdf_extract::PlainTextOutput;

use super::Parsed;

/// Headers and footers are looked for among this many lines at the top and bottom of a page.
const MARGIN_LINES: usize = 3;

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let document = Document::load_mem(bytes).map_err(|e| load_error(bytes, &e))?;
    // lopdf decrypts files that open with the empty password as it loads them; what is still
    // encrypted needs a password.
    if document.is_encrypted() {
        return Err("encrypted PDF: it needs a password to open; remove the password (e.g. `qpdf --decrypt \
                    --password=… in.pdf out.pdf`) and ingest the copy"
            .into());
    }
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err("damaged PDF: it has no pages".into());
    }
    let mut texts = Vec::with_capacity(pages.len());
    let mut unreadable = Vec::new();
    for &number in pages.keys() {
        // pdf-extract panics on some malformed pages; one bad page must not cost the others.
        let mut text = String::new();
        let extracted = panic::catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::output_doc_page(&document, &mut PlainTextOutput::new(&mut text), number)
        }));
        match extracted {
            Ok(Ok(())) => texts.push((number, text)),
            _ => unreadable.push(number),
        }
    }
    if texts.is_empty() {
        return Err(format!("damaged PDF: the text of none of its {} pages could be read", pages.len()));
    }
    if texts.iter().all(|(_, text)| text.trim().is_empty()) {
        texts = ocr(bytes)?;
    }
    let mut parsed =
        Parsed { sections: page_sections(texts, &mut unreadable), title: title(&document), ..Parsed::default() };
    parsed.metadata.insert("pages".into(), pages.len().into());
    if !unreadable.is_empty() {
        // Reported rather than silently lost: scanned pages in a text PDF, or damaged ones.
        parsed.metadata.insert("pages_without_text".into(), unreadable.into());
    }
    Ok(parsed)
}

fn load_error(bytes: &[u8], e: &lopdf::Error) -> String {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        format!("truncated PDF (no end-of-file marker; copy or download it again): {e}")
    } else {
        format!("damaged PDF: {e}")
    }
}

/// The cleaned text of each page; pages left empty are added to `without_text`.
fn page_sections(texts: Vec<(u32, String)>, without_text: &mut Vec<u32>) -> Vec<Section> {
    let mut pages: Vec<(u32, Vec<String>)> = texts
        .into_iter()
        .map(|(number, text)| (number, text.lines().map(|l| l.trim_end().to_string()).collect()))
        .collect();
    remove_repeated_margins(&mut pages);
    let mut sections = Vec::with_capacity(pages.len());
    for (number, lines) in pages {
        let text = join_hyphenated(&lines);
        if text.trim().is_empty() {
            without_text.push(number);
            continue;
        }
        let mut section = Section::new(Vec::new(), text.trim());
        section.metadata.insert("page".into(), number.into());
        sections.push(section);
    }
    without_text.sort_unstable();
    sections
}

/// Lines among the first and last few of a page that recur on more than half of the pages
/// (digits ignored, so "Page 3 of 9" matches "Page 4 of 9") are running headers and footers.
fn remove_repeated_margins(pages: &mut [(u32, Vec<String>)]) {
    if pages.len() < 3 {
        return;
    }
    let key = |line: &str| line.trim().chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect::<String>();
    let margins = |lines: &[String]| -> Vec<usize> {
        let filled: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].trim().is_empty()).collect();
        let top = filled.iter().take(MARGIN_LINES);
        let bottom = filled.iter().rev().take(MARGIN_LINES);
        let mut indices: Vec<usize> = top.chain(bottom).copied().collect();
        indices.sort_unstable();
        indices.dedup();
        indices
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, lines) in pages.iter() {
        let keys: HashSet<String> = margins(lines).into_iter().map(|i| key(&lines[i])).collect();
        for k in keys {
            *counts.entry(k).or_default() += 1;
        }
    }
    let repeated: HashSet<String> = counts.into_iter().filter(|(_, n)| n * 2 > pages.len()).map(|(k, _)| k).collect();
    if repeated.is_empty() {
        return;
    }
    for (_, lines) in pages.iter_mut() {
        let drop: HashSet<usize> = margins(lines).into_iter().filter(|&i| repeated.contains(&key(&lines[i]))).collect();
        let mut index = 0;
        lines.retain(|_| {
            index += 1;
            !drop.contains(&(index - 1))
        });
    }
}

/// Joins "infor-" at a line end with "mation" on the next line.
fn join_hyphenated(lines: &[String]) -> String {
    let mut text = String::new();
    let mut joining = false;
    for (i, line) in lines.iter().enumerate() {
        let line = if joining { line.trim_start() } else { line.as_str() };
        let next_starts_lowercase =
            lines.get(i + 1).and_then(|n| n.trim_start().chars().next()).is_some_and(char::is_lowercase);
        let before_hyphen = line.strip_suffix('-').and_then(|l| l.chars().last());
        joining = next_starts_lowercase && before_hyphen.is_some_and(char::is_alphabetic);
        if joining {
            text.push_str(&line[..line.len() - 1]);
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The document information dictionary's title.
fn title(document: &Document) -> Option<String> {
    let info = match document.trailer.get(b"Info").ok()? {
        Object::Reference(id) => document.get_dictionary(*id).ok()?,
        Object::Dictionary(info) => info,
        _ => return None,
    };
    let title = lopdf::decode_text_string(info.get(b"Title").ok()?).ok()?;
    Some(title.trim().to_string()).filter(|t| !t.is_empty())
}

/// Renders the pages with `pdftoppm` and reads them with `tesseract`.
fn ocr(bytes: &[u8]) -> Result<Vec<(u32, String)>, String> {
    if !(on_path("pdftoppm") && on_path("tesseract")) {
        return Err(
            "needs OCR (no text layer): install `tesseract` and `pdftoppm` (poppler-utils) to read scanned PDFs".into(),
        );
    }
    let failed =
        |what: &str, e: &dyn std::fmt::Display| format!("needs OCR (no text layer), and OCR failed: {what}: {e}");
    let folder = tempfile::tempdir().map_err(|e| failed("temporary folder", &e))?;
    let input = folder.path().join("input.pdf");
    std::fs::write(&input, bytes).map_err(|e| failed("temporary file", &e))?;
    run(Command::new("pdftoppm").args(["-r", "300", "-gray", "-png"]).arg(&input).arg(folder.path().join("page")))
        .map_err(|e| failed("pdftoppm", &e))?;
    let mut images: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(folder.path())
        .map_err(|e| failed("temporary folder", &e))?
        .flatten()
        .filter_map(|entry| {
            // pdftoppm names pages page-1.png, or page-01.png … when there are more.
            let name = entry.file_name().to_string_lossy().into_owned();
            let number = name.strip_prefix("page-")?.strip_suffix(".png")?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    images.sort();
    let mut pages = Vec::with_capacity(images.len());
    for (number, image) in images {
        let text = run(Command::new("tesseract").arg(&image).arg("stdout")).map_err(|e| failed("tesseract", &e))?;
        pages.push((number, text));
    }
    Ok(pages)
}

fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn hyphens_at_line_ends_join_words_but_not_dashes_or_names() {
        let text = join_hyphenated(&lines("the infor-\nmation is well-\nKnown -\nhere"));
        assert_eq!(text, "the information is well-\nKnown -\nhere\n");
    }

    #[test]
    fn running_headers_and_page_numbers_are_removed() {
        // Body lines differ from page to page by a word, not by a number.
        let body = |colour: &str| {
            ["Rivers carry", "Glaciers carve", "Wind shapes", "Waves erode"].map(|l| format!("{l} {colour} stone."))
        };
        let colours = ["red", "green", "blue", "grey"];
        let mut pages: Vec<(u32, Vec<String>)> = (1..=4)
            .map(|n| {
                let mut page = vec!["ACME Report 2025".to_string()];
                page.extend(body(colours[n as usize - 1]));
                page.push(format!("Page {n} of 4"));
                (n, page)
            })
            .collect();
        remove_repeated_margins(&mut pages);
        assert_eq!(pages[2].1, body("blue"));
    }
}
