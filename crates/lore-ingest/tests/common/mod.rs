//! Test documents, written by the tests themselves: minimal but well-formed files of each format
//! with known content in known places.

#![allow(dead_code)] // Each test crate uses its own subset.

use std::io::{Cursor, Write};

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use zip::write::SimpleFileOptions;

pub const PAGE_3_SENTENCE: &str = "The secret ingredient is cardamom.";
pub const PDF_HEADER: &str = "ACME Quarterly Report";

pub fn zip(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in parts {
        writer.start_file(*name, SimpleFileOptions::default()).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

fn core_properties(title: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>"#
    )
}

fn paragraph(style: Option<&str>, text: &str) -> String {
    let style = style.map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#)).unwrap_or_default();
    format!(r#"<w:p>{style}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

fn list_item(level: usize, text: &str) -> String {
    format!(
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
    )
}

fn cell(text: &str) -> String {
    format!("<w:tc>{}</w:tc>", paragraph(None, text))
}

/// A Word document: a title, a heading whose style id is localised ("berschrift1", named
/// "heading 1" in styles.xml), a heading style known only by its id, a two-level list, a
/// table, an escaped ampersand split across runs, a tab-stop definition that is no text, and a
/// footnote.
pub fn docx() -> Vec<u8> {
    let body = [
        paragraph(Some("Title"), "Lore Handbook"),
        paragraph(None, "Lore answers questions from your documents."),
        paragraph(Some("berschrift1"), "Installation"),
        paragraph(Some("Heading2"), "Linux"),
        list_item(0, "Download the release"),
        list_item(1, "Check the checksum"),
        format!(
            "<w:tbl><w:tr>{}{}</w:tr><w:tr>{}{}</w:tr></w:tbl>",
            cell("Setting"),
            cell("Default"),
            cell("threads"),
            cell("4")
        ),
        paragraph(Some("Heading1"), "Usage"),
        r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t xml:space="preserve">Ask a question &amp; get </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>an answer.</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r></w:p>"#.to_string(),
    ]
    .concat();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W}><w:body>{body}</w:body></w:document>"#
    );
    let styles = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles {W}><w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style><w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style></w:styles>"#
    );
    let footnotes = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:footnotes {W}><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r><w:t>Answers cite their sources.</w:t></w:r></w:p></w:footnote></w:footnotes>"#
    );
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("word/document.xml", &document),
        ("word/styles.xml", &styles),
        ("word/footnotes.xml", &footnotes),
        ("docProps/core.xml", &core_properties("The Lore Handbook")),
    ])
}

/// Escapes text for XML content.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const CONTENT_TYPES: &str =
    r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

/// A Word document of any length: a title, then per section a Heading 1 and its paragraphs.
pub fn docx_with(title: &str, sections: &[(String, Vec<String>)]) -> Vec<u8> {
    let mut body = paragraph(Some("Title"), &xml_escape(title));
    for (heading, paragraphs) in sections {
        body.push_str(&paragraph(Some("Heading1"), &xml_escape(heading)));
        for text in paragraphs {
            body.push_str(&paragraph(None, &xml_escape(text)));
        }
    }
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W}><w:body>{body}</w:body></w:document>"#
    );
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("word/document.xml", &document),
        ("docProps/core.xml", &core_properties(&xml_escape(title))),
    ])
}

const P: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;

fn shape(placeholder: &str, paragraphs: &[&str]) -> String {
    let paragraphs: String = paragraphs.iter().map(|p| format!("<a:p><a:r><a:t>{p}</a:t></a:r></a:p>")).collect();
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="Shape"/><p:cNvSpPr/><p:nvPr>{placeholder}</p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/>{paragraphs}</p:txBody></p:sp>"#
    )
}

fn slide(shapes: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:sld {P}><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>"#
    )
}

fn relationships(links: &[(&str, &str, &str)]) -> String {
    let links: String = links
        .iter()
        .map(|(id, kind, target)| {
            format!(r#"<Relationship Id="{id}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}" Target="{target}"/>"#)
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{links}</Relationships>"#
    )
}

/// A deck of two slides listed in the opposite order of their file names: "Quarterly results"
/// (body, slide number, speaker notes) then "Roadmap" (a table).
pub fn pptx() -> Vec<u8> {
    let presentation = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation {P}><p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/></p:sldIdLst></p:presentation>"#
    );
    let results = slide(
        &[
            shape(r#"<p:ph type="title"/>"#, &["Quarterly results"]),
            shape(r#"<p:ph idx="1"/>"#, &["Revenue grew 12%", "Churn fell"]),
            shape(r#"<p:ph type="sldNum" idx="12"/>"#, &["1"]),
        ]
        .concat(),
    );
    let table = r#"<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>Quarter</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Goal</a:t></a:r></a:p></a:txBody></a:tc></a:tr><a:tr><a:tc><a:txBody><a:p><a:r><a:t>Q3</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Launch</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#;
    let roadmap = slide(&[shape(r#"<p:ph type="title"/>"#, &["Roadmap"]), table.to_string()].concat());
    let notes = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:notes {P}><p:cSld><p:spTree>{}{}</p:spTree></p:cSld></p:notes>"#,
        shape(r#"<p:ph type="body" idx="1"/>"#, &["Mention the new customers."]),
        shape(r#"<p:ph type="sldNum" idx="5"/>"#, &["1"]),
    );
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("ppt/presentation.xml", &presentation),
        (
            "ppt/_rels/presentation.xml.rels",
            &relationships(&[("rId2", "slide", "slides/slide1.xml"), ("rId3", "slide", "slides/slide2.xml")]),
        ),
        ("ppt/slides/slide1.xml", &roadmap),
        ("ppt/slides/slide2.xml", &results),
        (
            "ppt/slides/_rels/slide2.xml.rels",
            &relationships(&[("rId1", "notesSlide", "../notesSlides/notesSlide1.xml")]),
        ),
        ("ppt/notesSlides/notesSlide1.xml", &notes),
    ])
}

/// A deck of any length: per slide a title, body paragraphs and speaker notes.
pub fn pptx_with(slides: &[(String, Vec<String>, String)]) -> Vec<u8> {
    let ids: String =
        (0..slides.len()).map(|i| format!(r#"<p:sldId id="{}" r:id="rId{}"/>"#, 256 + i, i + 1)).collect();
    let presentation = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation {P}><p:sldIdLst>{ids}</p:sldIdLst></p:presentation>"#
    );
    let targets: Vec<(String, String)> =
        (0..slides.len()).map(|i| (format!("rId{}", i + 1), format!("slides/slide{}.xml", i + 1))).collect();
    let links: Vec<(&str, &str, &str)> =
        targets.iter().map(|(id, target)| (id.as_str(), "slide", target.as_str())).collect();
    let mut parts = vec![
        ("[Content_Types].xml".to_string(), CONTENT_TYPES.to_string()),
        ("ppt/presentation.xml".to_string(), presentation),
        ("ppt/_rels/presentation.xml.rels".to_string(), relationships(&links)),
    ];
    for (i, (title, body, notes)) in slides.iter().enumerate() {
        let n = i + 1;
        let body: Vec<String> = body.iter().map(|t| xml_escape(t)).collect();
        let body: Vec<&str> = body.iter().map(String::as_str).collect();
        let shapes = [shape(r#"<p:ph type="title"/>"#, &[&xml_escape(title)]), shape(r#"<p:ph idx="1"/>"#, &body)];
        parts.push((format!("ppt/slides/slide{n}.xml"), slide(&shapes.concat())));
        parts.push((
            format!("ppt/slides/_rels/slide{n}.xml.rels"),
            relationships(&[("rId1", "notesSlide", &format!("../notesSlides/notesSlide{n}.xml"))]),
        ));
        let notes = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:notes {P}><p:cSld><p:spTree>{}</p:spTree></p:cSld></p:notes>"#,
            shape(r#"<p:ph type="body" idx="1"/>"#, &[&xml_escape(notes)])
        );
        parts.push((format!("ppt/notesSlides/notesSlide{n}.xml"), notes));
    }
    let parts: Vec<(&str, &str)> = parts.iter().map(|(name, content)| (name.as_str(), content.as_str())).collect();
    zip(&parts)
}

/// A workbook of one sheet: a header row, then `rows`.
pub fn xlsx_with(sheet: &str, headers: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let worksheet = workbook.add_worksheet();
    worksheet.set_name(sheet).unwrap();
    for (col, header) in headers.iter().enumerate() {
        worksheet.write_string(0, col as u16, *header).unwrap();
    }
    for (row, cells) in rows.iter().enumerate() {
        for (col, cell) in cells.iter().enumerate() {
            worksheet.write_string(row as u32 + 1, col as u16, cell).unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

/// A workbook with a "Prices" sheet (text, numbers, a date, an empty cell) and a "Staff" sheet.
pub fn xlsx() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let prices = workbook.add_worksheet();
    prices.set_name("Prices").unwrap();
    for (col, header) in ["Product", "Price", "Launched", "Notes"].into_iter().enumerate() {
        prices.write_string(0, col as u16, header).unwrap();
    }
    prices.write_string(1, 0, "Widget").unwrap();
    prices.write_number(1, 1, 9.5).unwrap();
    prices
        .write_datetime_with_format(1, 2, rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 3, 1).unwrap(), &date)
        .unwrap();
    prices.write_string(2, 0, "Gadget").unwrap();
    prices.write_number(2, 1, 12.0).unwrap();
    prices.write_string(2, 3, "back-ordered").unwrap();
    let staff = workbook.add_worksheet();
    staff.set_name("Staff").unwrap();
    staff.write_string(0, 0, "Name").unwrap();
    staff.write_string(0, 1, "Role").unwrap();
    staff.write_string(1, 0, "Ada").unwrap();
    staff.write_string(1, 1, "Engineer").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// A PDF in Helvetica with one page per entry of `pages` (lines from the top), under a running
/// header and above a "Page n" footer, with `title` in its information dictionary.
pub fn pdf_document(pages: &[Vec<String>], title: &str) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for (index, lines) in pages.iter().enumerate() {
        let footer = format!("Page {}", index + 1);
        let mut operations = Vec::new();
        let mut show = |x: i64, y: i64, text: &str| {
            operations.extend([
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![x.into(), y.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ]);
        };
        show(72, 800, PDF_HEADER);
        for (i, line) in lines.iter().enumerate() {
            show(72, 740 - 16 * i as i64, line);
        }
        show(280, 40, &footer);
        let content = Content { operations }.encode().unwrap();
        let contents = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::Reference(
            doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => contents }),
        ));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let info = doc.add_object(dictionary! { "Title" => Object::string_literal(title) });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);
    doc.trailer
        .set("ID", vec![Object::string_literal("lore-test-id-0001"), Object::string_literal("lore-test-id-0001")]);
    doc
}

pub fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// Three pages; page 2 splits "information" across a line end, page 3 holds the known sentence.
pub fn pdf() -> Vec<u8> {
    let pages = [
        vec!["Sales rose in every region.", "Costs stayed flat."],
        vec!["The infor-", "mation below is unaudited.", "Margins improved."],
        vec!["Our recipe changed this year.", PAGE_3_SENTENCE],
    ];
    let pages: Vec<Vec<String>> = pages.iter().map(|lines| lines.iter().map(|l| l.to_string()).collect()).collect();
    save(pdf_document(&pages, "Quarterly Report"))
}

pub const HTML: &str = r#"<!DOCTYPE html>
<html lang="en"><head><title>Lore | Docs</title><style>body { color: red }</style><script>var tracking = "beacon";</script></head>
<body>
<header><a href="/">Home</a> Site banner</header>
<nav><ul><li>Menu entry</li></ul></nav>
<main>
  <h1>Getting started</h1>
  <p>Lore is a   retrieval
     engine.</p>
  <h2>Install</h2>
  <ul><li>Download it</li><li>Run <code>lore init</code><ul><li>Pick a model</li></ul></li></ul>
  <h3>Options</h3>
  <table><tr><th>Flag</th><th>Meaning</th></tr><tr><td>--json</td><td>machine | readable output</td></tr></table>
  <pre>line one
  indented line two</pre>
  <aside>Related posts</aside>
  <script>console.log("hidden")</script>
  <h2>Use</h2>
  <p>Ask a <b>question</b>.<br>Get an answer.</p>
</main>
<footer>Copyright footer</footer>
</body></html>"#;

pub const CSV: &str = "name,role,team\nAda,engineer,core\nGrace,,compilers\n";

pub const JSONL: &str = concat!(
    r#"{"id": 7, "question": "What is Lore?", "answer": "A RAG engine.", "tags": ["intro"], "meta": {"lang": "en", "score": 0.9}}"#,
    "\n\n",
    r#"{"id": 8, "name": "Only labels", "kind": "note"}"#,
    "\n"
);
