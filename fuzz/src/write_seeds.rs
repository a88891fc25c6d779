//! Writes the test documents into `corpus/<target>/`, the fuzzers' starting points:
//! `cargo run --features seeds --bin write-seeds` from this folder.

#[path = "../../crates/lore-ingest/tests/common/mod.rs"]
mod common;

use std::fs;
use std::io::{Cursor, Read};
use std::path::Path;

fn main() -> std::io::Result<()> {
    let seeds: [(&str, &str, Vec<u8>); 9] = [
        ("pdf", "report.pdf", common::pdf()),
        ("docx", "handbook.docx", common::docx()),
        ("pptx", "deck.pptx", common::pptx()),
        ("spreadsheet", "prices.xlsx", common::xlsx()),
        ("html", "docs.html", common::HTML.as_bytes().to_vec()),
        ("csv", "team.csv", common::CSV.as_bytes().to_vec()),
        ("json", "faq.jsonl", common::JSONL.as_bytes().to_vec()),
        ("json", "object.json", br#"{"title": "T", "body": "B", "n": [1, 2], "nested": {"text": "x"}}"#.to_vec()),
        ("text", "notes.md", "# Title\n\n## Part\n\n千问 text\n```\n# not a heading\n```\n".as_bytes().to_vec()),
    ];
    for (target, name, bytes) in seeds {
        write(target, name, &bytes)?;
    }
    // The package targets also take a bare XML part (see `parse_package`).
    for (target, archive, parts) in [
        ("docx", common::docx(), &["word/document.xml", "word/styles.xml"][..]),
        ("pptx", common::pptx(), &["ppt/slides/slide1.xml", "ppt/slides/slide2.xml", "ppt/notesSlides/notesSlide1.xml"][..]),
    ] {
        let mut archive = zip::ZipArchive::new(Cursor::new(archive))?;
        for part in parts {
            let mut xml = Vec::new();
            archive.by_name(part)?.read_to_end(&mut xml)?;
            write(target, &part.replace('/', "_"), &xml)?;
        }
    }
    Ok(())
}

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let folder = Path::new("corpus").join(target);
    fs::create_dir_all(&folder)?;
    fs::write(folder.join(name), bytes)
}
