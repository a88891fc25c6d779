mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lopdf::dictionary;
use lore_core::{Document, Error, ErrorKind, Section};
use lore_ingest::{ParseLimits, discover, parse, parse_bytes, parse_with_limits};
use serde_json::json;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn section<'a>(doc: &'a Document, heading_path: &[&str]) -> &'a Section {
    doc.sections
        .iter()
        .find(|s| s.heading_path == heading_path)
        .unwrap_or_else(|| panic!("no section under {heading_path:?} in {:#?}", doc.sections))
}

/// The reason of a parse error, checked to name the file.
fn reason(result: lore_core::Result<Document>, path: &str) -> String {
    match result {
        Err(Error::Parse { path: p, reason }) => {
            assert_eq!(p, path);
            reason
        }
        other => panic!("expected a parse error for {path}, got {other:?}"),
    }
}

#[test]
fn docx_headings_lists_tables_and_footnotes() {
    let doc = parse_bytes("handbook.docx", &common::docx()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("The Lore Handbook"));
    assert_eq!(doc.metadata["format"], "docx");
    assert_eq!(doc.metadata["language"], "en");
    assert_eq!(section(&doc, &["Lore Handbook"]).text, "Lore answers questions from your documents.");
    assert_eq!(
        section(&doc, &["Lore Handbook", "Installation", "Linux"]).text,
        "- Download the release\n  - Check the checksum\n\n| Setting | Default |\n| --- | --- |\n| threads | 4 |"
    );
    assert_eq!(section(&doc, &["Lore Handbook", "Usage"]).text, "Ask a question & get an answer.");
    assert_eq!(section(&doc, &["Notes"]).text, "Answers cite their sources.");
}

#[test]
fn pptx_slides_in_presentation_order_with_titles_tables_and_notes() {
    let doc = parse_bytes("deck.pptx", &common::pptx()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Quarterly results"));
    assert_eq!(doc.sections.len(), 2);
    let first = &doc.sections[0];
    assert_eq!(first.heading_path, ["Quarterly results"]);
    assert_eq!(first.metadata["slide"], 1);
    // The slide number placeholder is not content.
    assert_eq!(first.text, "Revenue grew 12%\nChurn fell\n\nNotes: Mention the new customers.");
    let second = &doc.sections[1];
    assert_eq!(second.heading_path, ["Roadmap"]);
    assert_eq!(second.metadata["slide"], 2);
    assert_eq!(second.text, "| Quarter | Goal |\n| --- | --- |\n| Q3 | Launch |");
}

#[test]
fn xlsx_sheets_render_each_row_with_its_headers() {
    let doc = parse_bytes("prices.xlsx", &common::xlsx()).unwrap();
    let prices = section(&doc, &["Prices"]);
    assert_eq!(prices.metadata["sheet"], "Prices");
    assert_eq!(
        prices.text,
        "Product: Widget; Price: 9.5; Launched: 2024-03-01\nProduct: Gadget; Price: 12; Notes: back-ordered"
    );
    assert_eq!(section(&doc, &["Staff"]).text, "Name: Ada; Role: Engineer");
}

/// The writers behind the benchmark folder (examples/mixed_corpus.rs) make documents that read
/// back with their structure, escaped characters included.
#[test]
fn generated_office_documents_of_any_length_read_back() {
    let sections = [("Methods".to_string(), vec!["Dose < 5 mg & daily.".to_string(), "Blinded.".to_string()])];
    let doc = parse_bytes("study.docx", &common::docx_with("Study", &sections)).unwrap();
    assert_eq!(section(&doc, &["Study", "Methods"]).text, "Dose < 5 mg & daily.\n\nBlinded.");

    let slides: Vec<(String, Vec<String>, String)> =
        (1..=30).map(|i| (format!("Slide {i}"), vec![format!("Point {i}")], format!("Say {i}"))).collect();
    let deck = parse_bytes("deck.pptx", &common::pptx_with(&slides)).unwrap();
    assert_eq!(deck.sections.len(), 30);
    assert_eq!(deck.sections[29].heading_path, ["Slide 30"]);
    assert_eq!(deck.sections[29].text, "Point 30\n\nNotes: Say 30");

    let rows = vec![vec!["7".to_string(), "Tea & <milk>".to_string()]];
    let sheet = parse_bytes("rows.xlsx", &common::xlsx_with("Data", &["id", "title"], &rows)).unwrap();
    assert_eq!(section(&sheet, &["Data"]).text, "id: 7; title: Tea & <milk>");
}

#[test]
fn csv_rows_carry_their_headers_and_the_delimiter_is_sniffed() {
    let doc = parse_bytes("team.csv", common::CSV.as_bytes()).unwrap();
    assert_eq!(doc.text(), "name: Ada; role: engineer; team: core\nname: Grace; team: compilers");
    let semicolons = parse_bytes("team.csv", "name;city\n\"Lovelace, Ada\";London\n".as_bytes()).unwrap();
    assert_eq!(semicolons.text(), "name: Lovelace, Ada; city: London");
}

#[test]
fn pdf_pages_keep_their_number_without_running_headers_and_with_words_rejoined() {
    let doc = parse_bytes("report.pdf", &common::pdf()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Quarterly Report"));
    assert_eq!(doc.metadata["pages"], 3);
    let pages: Vec<&serde_json::Value> = doc.sections.iter().map(|s| &s.metadata["page"]).collect();
    assert_eq!(pages, [&json!(1), &json!(2), &json!(3)]);
    let page_3 = &doc.sections[2];
    assert!(page_3.text.contains(common::PAGE_3_SENTENCE), "{}", page_3.text);
    assert!(doc.sections[1].text.contains("The information below is unaudited."), "{}", doc.sections[1].text);
    for section in &doc.sections {
        assert!(!section.text.contains(common::PDF_HEADER) && !section.text.contains("Page "), "{}", section.text);
    }
}

#[test]
fn html_keeps_the_main_content_under_its_headings() {
    let doc = parse_bytes("docs.html", common::HTML.as_bytes()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Lore | Docs"));
    let text = doc.text();
    for chrome in ["Site banner", "Menu entry", "Related posts", "Copyright", "tracking", "hidden", "color"] {
        assert!(!text.contains(chrome), "{chrome} in {text}");
    }
    assert_eq!(section(&doc, &["Getting started"]).text, "Lore is a retrieval engine.");
    assert_eq!(section(&doc, &["Getting started", "Install"]).text, "- Download it\n- Run lore init\n  - Pick a model");
    assert_eq!(
        section(&doc, &["Getting started", "Install", "Options"]).text,
        "| Flag | Meaning |\n| --- | --- |\n| --json | machine \\| readable output |\n\nline one\n  indented line two"
    );
    assert_eq!(section(&doc, &["Getting started", "Use"]).text, "Ask a question.\n\nGet an answer.");
}

#[test]
fn html_without_main_drops_page_chrome() {
    let html =
        "<html><body><header>Banner</header><h1>Title</h1><p>Body text.</p><footer>Footer</footer></body></html>";
    let doc = parse_bytes("page.htm", html.as_bytes()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Title"));
    assert_eq!(doc.text(), "Body text.");
}

#[test]
fn jsonl_records_become_sections_with_their_scalars_as_metadata() {
    let doc = parse_bytes("faq.jsonl", common::JSONL.as_bytes()).unwrap();
    assert_eq!(doc.sections.len(), 2);
    let first = &doc.sections[0];
    assert_eq!(first.text, "What is Lore?\nA RAG engine.");
    assert_eq!(first.metadata["id"], 7);
    assert_eq!(first.metadata["meta.lang"], "en");
    assert_eq!(first.metadata["meta.score"], 0.9);
    assert_eq!(first.metadata["tags"], json!(["intro"]));
    assert_eq!(first.metadata["record"], 1);
    // Without prose fields, every string is text, labelled (keys in sorted order).
    assert_eq!(doc.sections[1].text, "kind: note\nname: Only labels");
    assert_eq!(doc.sections[1].metadata["record"], 2);
    let err = reason(parse_bytes("bad.jsonl", b"{\"a\": 1}\n{\"b\": "), "bad.jsonl");
    assert!(err.contains("truncated") && err.contains("line 2"), "{err}");
}

#[test]
fn a_json_object_is_one_document_described_by_its_fields() {
    let long = "word ".repeat(60);
    let json =
        json!({"title": "Release notes", "version": "1.2", "body": "Faster ingest.", "summary": long, "draft": false});
    let doc = parse_bytes("notes.json", json.to_string().as_bytes()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Release notes"));
    assert_eq!(doc.metadata["version"], "1.2");
    assert_eq!(doc.metadata["draft"], false);
    assert_eq!(doc.sections[0].heading_path, ["Release notes"]);
    // A long string is prose whatever its field is called.
    assert_eq!(doc.sections[0].text, format!("Release notes\nFaster ingest.\n{long}"));
}

#[test]
fn text_in_gbk_utf16_and_utf8_is_decoded_and_its_language_detected() {
    let chinese = "千问模型的上下文长度是三万二千个词元。";
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(chinese);
    assert!(!unmappable);
    let gbk_doc = parse_bytes("notes.txt", &gbk).unwrap();
    assert_eq!(gbk_doc.text(), chinese);
    assert_eq!(gbk_doc.metadata["language"], "zh");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("Grüße aus Köln".encode_utf16().flat_map(u16::to_le_bytes));
    let utf16_doc = parse_bytes("greeting.txt", &utf16).unwrap();
    assert_eq!(utf16_doc.text(), "Grüße aus Köln");
    assert_eq!(utf16_doc.metadata["language"], "en");
    let err = reason(parse_bytes("odd.txt", &utf16[..utf16.len() - 1]), "odd.txt");
    assert!(err.contains("UTF-16LE") && err.contains("truncated"), "{err}");
}

#[test]
fn the_bytes_decide_when_the_extension_lies() {
    let pdf_as_text = parse_bytes("report.txt", &common::pdf()).unwrap();
    assert_eq!(pdf_as_text.metadata["format"], "pdf");
    assert_eq!(pdf_as_text.sections[2].metadata["page"], 3);
    let sheet_as_docx = parse_bytes("prices.docx", &common::xlsx()).unwrap();
    assert_eq!(sheet_as_docx.metadata["format"], "spreadsheet");
    let deck_as_xlsx = parse_bytes("deck.xlsx", &common::pptx()).unwrap();
    assert_eq!(deck_as_xlsx.sections[0].heading_path, ["Quarterly results"]);
}

#[test]
fn damaged_files_are_reported_with_reasons_a_user_understands() {
    let pdf = common::pdf();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut.pdf", pdf[..pdf.len() / 2].to_vec(), "truncated PDF"),
        ("garbage.pdf", b"%PDF-1.7\nnot really a pdf at all\n%%EOF\n".to_vec(), "damaged PDF"),
        ("fake.docx", b"\x00\x01binary junk, not an archive".to_vec(), "not a DOCX (not a zip archive)"),
        ("fake.pptx", b"MZ\x90\x00".to_vec(), "not a PPTX (not a zip archive)"),
        ("legacy.docx", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest of an OLE file".to_vec(), "password-protected"),
        ("cut.docx", common::docx()[..300].to_vec(), "truncated or damaged DOCX"),
        ("cut.xlsx", common::xlsx()[..300].to_vec(), "truncated or damaged spreadsheet"),
        ("other.docx", common::zip(&[("hello.txt", "hi")]), "not a DOCX: the archive has no word/document.xml"),
        ("broken.docx", common::zip(&[("word/document.xml", "<w:document><w:body></w:document>")]), "damaged XML"),
        ("empty.md", Vec::new(), "empty file"),
        ("image.png", b"\x89PNG\r\n\x1a\n".to_vec(), "unsupported format"),
    ];
    for (name, bytes, expected) in cases {
        let err = reason(parse_bytes(name, &bytes), name);
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn parser_panics_are_contained() {
    // pdf-extract panics on a page without a MediaBox; the page is reported, not the process.
    let mut doc = common::pdf_document(&[vec!["Only page.".to_string()]], "No media box");
    let pages_id = doc.catalog().unwrap().get(b"Pages").unwrap().as_reference().unwrap();
    doc.get_dictionary_mut(pages_id).unwrap().remove(b"MediaBox");
    let err = reason(parse_bytes("nobox.pdf", &common::save(doc)), "nobox.pdf");
    assert!(err.contains("none of its 1 pages"), "{err}");
}

#[test]
fn encrypted_pdfs_ask_for_the_password_to_be_removed() {
    let mut doc = common::pdf_document(&[vec!["Top secret.".to_string()]], "Secret");
    let state = lopdf::EncryptionState::try_from(lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "user",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    })
    .unwrap();
    doc.encrypt(&state).unwrap();
    let err = reason(parse_bytes("secret.pdf", &common::save(doc)), "secret.pdf");
    assert!(err.contains("encrypted PDF"), "{err}");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Page 3 of the test PDF as a scan: rendered to a grey image by `pdftoppm`, the image the
/// only content of a one-page PDF.
fn scanned_page_3(dir: &Path) -> Vec<u8> {
    let text_pdf = write(dir, "text.pdf", &common::pdf());
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-gray", "-r", "150", "-f", "3", "-l", "3", "-singlefile"])
        .arg(&text_pdf)
        .arg(dir.join("scan"))
        .status()
        .unwrap();
    assert!(rendered.success());
    let pgm = fs::read(dir.join("scan.pgm")).unwrap();
    // A binary PGM: "P5", width, height, maximum value, one whitespace byte, then the pixels.
    let mut fields = Vec::new();
    let mut start = 0;
    while fields.len() < 4 {
        let end = start + pgm[start..].iter().position(u8::is_ascii_whitespace).unwrap();
        if end > start {
            fields.push(String::from_utf8(pgm[start..end].to_vec()).unwrap());
        }
        start = end + 1;
    }
    let (width, height): (i64, i64) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let mut doc = lopdf::Document::with_version("1.5");
    let image = doc.add_object(lopdf::Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => width, "Height" => height,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        pgm[start..].to_vec(),
    ));
    let contents = doc.add_object(lopdf::Stream::new(dictionary! {}, b"q 595 0 0 842 0 0 cm /Scan Do Q".to_vec()));
    let pages_id = doc.new_object_id();
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => contents,
        "Resources" => dictionary! { "XObject" => dictionary! { "Scan" => image } },
    });
    doc.objects.insert(
        pages_id,
        lopdf::Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    common::save(doc)
}

#[test]
fn a_pdf_without_a_text_layer_is_read_by_ocr_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    if on_path("tesseract") && on_path("pdftoppm") {
        let doc = parse_bytes("scan.pdf", &scanned_page_3(dir.path())).unwrap();
        assert_eq!(doc.sections[0].metadata["page"], 1);
        assert!(doc.sections[0].text.contains(common::PAGE_3_SENTENCE), "{}", doc.sections[0].text);
    } else {
        let mut doc = common::pdf_document(&[Vec::new()], "Scan");
        // A drawing and no text at all.
        let page = *doc.get_pages().get(&1).unwrap();
        let contents = doc.add_object(lopdf::Stream::new(dictionary! {}, b"0 0 m 100 100 l S".to_vec()));
        doc.get_dictionary_mut(page).unwrap().set("Contents", contents);
        let err = reason(parse_bytes("scan.pdf", &common::save(doc)), "scan.pdf");
        assert!(err.contains("needs OCR (no text layer)") && err.contains("install `tesseract`"), "{err}");
    }
}

#[test]
fn files_over_the_size_limit_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "big.csv", common::CSV.as_bytes());
    let tiny = ParseLimits { max_bytes: 10, ..ParseLimits::default() };
    let err = reason(parse_with_limits(&path, &tiny), &path.display().to_string());
    assert!(err.contains("too large") && err.contains("ParseLimits::max_bytes"), "{err}");
}

#[test]
fn parsing_longer_than_the_timeout_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..200_000).map(|i| format!("row {i},value {i},more {i}\n")).collect();
    let path = write(dir.path(), "long.csv", format!("a,b,c\n{rows}").as_bytes());
    let hasty = ParseLimits { timeout: Duration::from_millis(1), ..ParseLimits::default() };
    let err = reason(parse_with_limits(&path, &hasty), &path.display().to_string());
    assert!(err.contains("abandoned"), "{err}");
    assert!(parse(&path).is_ok());
}

#[test]
fn empty_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.txt", b"");
    assert_eq!(reason(parse(&empty), &empty.display().to_string()), "empty file");
    let missing = dir.path().join("missing.txt");
    let err = parse(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.to_string(), format!("{}: no such file", missing.display()));
}

/// What a caller decides on: a file that is not there, one it may not read, and one that is
/// read but cannot be used are told apart by kind, whatever the message says.
#[test]
fn error_kinds_tell_missing_and_damaged_files_apart() {
    let dir = tempfile::tempdir().unwrap();
    let err = parse(&dir.path().join("gone.pdf")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let pdf = common::pdf();
    for (name, bytes) in [
        ("cut.pdf", pdf[..pdf.len() / 2].to_vec()),
        ("garbage.pdf", b"%PDF-1.7\nnot really a pdf at all\n%%EOF\n".to_vec()),
        ("cut.docx", common::docx()[..300].to_vec()),
        ("fake.docx", b"\x00\x01binary junk, not an archive".to_vec()),
        ("broken.docx", common::zip(&[("word/document.xml", "<w:document><w:body></w:document>")])),
    ] {
        let path = write(dir.path(), name, &bytes);
        let err = parse(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
        assert!(matches!(err, Error::Parse { .. }), "{name}: {err:?}");
    }

    let err = parse(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "a folder: {err}");
}

/// Set in the child process that checks unreadable files as an unprivileged user.
const UNREADABLE_FILE_VAR: &str = "LORE_TEST_UNREADABLE_FILE";

#[test]
fn unreadable_files_report_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    if let Some(path) = std::env::var_os(UNREADABLE_FILE_VAR) {
        assert_permission_denied(&PathBuf::from(path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = write(dir.path(), "secret.txt", b"you may not read this");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_err() {
        assert_permission_denied(&path);
        return;
    }
    // Root reads everything: run this test again in a copy of the test binary as `nobody`.
    let binary = dir.path().join("formats-test");
    fs::copy(std::env::current_exe().unwrap(), &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let output = std::process::Command::new(&binary)
        .args(["unreadable_files_report_permission_denied", "--exact", "--test-threads=1"])
        .env(UNREADABLE_FILE_VAR, &path)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "as nobody: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An unreadable file is an I/O error that names the file and says what is wrong.
fn assert_permission_denied(path: &Path) {
    let err = parse(path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let prefix = format!("{}: permission denied", path.display());
    assert!(err.to_string().starts_with(&prefix), "{err}");
}

#[test]
fn parse_adds_the_file_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "handbook.docx", &common::docx());
    let doc = parse(&path).unwrap();
    assert_eq!(doc.source, path.display().to_string());
    assert_eq!(doc.metadata["source"], path.display().to_string());
    assert!(doc.metadata["modified_unix"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(doc.content_hash, parse_bytes("elsewhere.docx", &common::docx()).unwrap().content_hash);
}

#[test]
fn discover_finds_every_supported_format() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "a.pdf", "b.docx", "c.pptx", "d.xlsx", "e.csv", "f.html", "g.json", "h.jsonl", "i.txt", "j.md", "k.tsv",
        "l.ods",
    ];
    for name in names.iter().chain(&["~$b.docx", "photo.jpg"]) {
        write(dir.path(), name, b"x");
    }
    let found = discover(&[dir.path().to_path_buf()]);
    let found_names: Vec<String> =
        found.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(found_names, names);
    assert_eq!(found.skipped, [dir.path().join("photo.jpg")]);
}

#[test]
fn chunks_carry_the_page_of_the_section_they_start_in() {
    let mut doc = lore_core::Document::new(
        "report.pdf",
        vec![lore_core::Section::new(vec![], "first page text"), lore_core::Section::new(vec![], "third page text")],
    );
    doc.sections[0].metadata.insert("page".into(), 1.into());
    doc.sections[1].metadata.insert("page".into(), 3.into());
    let config = lore_core::ChunkConfig::ParagraphMerge { chunk_size: 5, drop_remainder: false };
    let chunks = lore_ingest::chunk(&doc, &config, None).unwrap();
    let pages: Vec<_> = chunks.iter().map(|c| c.metadata["page"].clone()).collect();
    assert_eq!(pages, [serde_json::json!(1), serde_json::json!(3)]);
}
