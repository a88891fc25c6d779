//! Writes a folder of mixed documents for ingest benchmarks, from the text of the team's BEIR
//! corpora (SciFact, HotpotQA, CMRC 2018): PDF, DOCX, PPTX, XLSX, HTML, Markdown, text, CSV,
//! JSON and JSONL files of varied sizes, each format taking a fixed share of the bytes on disk.
//! Deterministic: the same arguments write the same files.
//!
//! cargo run --release -p lore-ingest --example mixed_corpus -- OUT_DIR [MEGABYTES] [DATASETS_DIR]
//!
//! MEGABYTES defaults to 100; DATASETS_DIR to the team's `shared/datasets`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

/// The formats written and their share of the bytes, in percent.
const SHARES: [(&str, u64); 10] = [
    ("pdf", 25),
    ("docx", 12),
    ("pptx", 8),
    ("xlsx", 10),
    ("html", 12),
    ("md", 10),
    ("txt", 8),
    ("csv", 8),
    ("json", 4),
    ("jsonl", 3),
];

/// Characters of text per file, in turn: real folders mix notes, reports and books.
const FILE_TEXT_SIZES: [usize; 5] = [8_000, 40_000, 150_000, 500_000, 1_200_000];

struct Record {
    id: String,
    title: String,
    text: String,
}

fn read_records(datasets: &Path) -> Vec<Record> {
    let mut records = Vec::new();
    for corpus in ["scifact", "hotpotqa100", "cmrc2018"] {
        let path = datasets.join(corpus).join("corpus.jsonl");
        let content = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for line in content.lines().filter(|l| !l.trim().is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| value[k].as_str().unwrap_or_default().to_string();
            if !field("text").is_empty() {
                records.push(Record { id: field("_id"), title: field("title"), text: field("text") });
            }
        }
    }
    // English and Chinese interleaved, so every file mixes both as real folders may.
    let (mut english, chinese): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| r.text.is_ascii());
    let step = english.len() / chinese.len().max(1) + 1;
    for (i, record) in chinese.into_iter().enumerate() {
        english.insert((i * step).min(english.len()), record);
    }
    english
}

/// Hands out consecutive records, starting over at the end.
struct Records {
    all: Vec<Record>,
    next: usize,
}

impl Records {
    /// Records adding up to about `chars` characters; ASCII ones only when `ascii` (PDF's
    /// standard fonts have no Chinese).
    fn take(&mut self, chars: usize, ascii: bool) -> Vec<&Record> {
        let mut picked = Vec::new();
        let mut total = 0;
        while total < chars {
            let index = self.next % self.all.len();
            self.next += 1;
            if ascii && !self.all[index].text.is_ascii() {
                continue;
            }
            total += self.all[index].title.len() + self.all[index].text.len();
            picked.push(index);
        }
        picked.into_iter().map(|i| &self.all[i]).collect()
    }
}

fn html_escape(text: &str) -> String {
    common::xml_escape(text).replace('"', "&quot;")
}

/// Lines of at most `width` characters, cut at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().unwrap();
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn sentences(text: &str) -> Vec<String> {
    text.split_inclusive(['.', '。']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn write_document(format: &str, number: usize, records: &[&Record]) -> Vec<u8> {
    let title = format!("Collected abstracts {number}");
    match format {
        "pdf" => {
            let lines: Vec<String> = records
                .iter()
                .flat_map(|r| {
                    let mut lines = wrap(&r.title, 90);
                    lines.extend(wrap(&r.text, 90));
                    lines.push(String::new());
                    lines
                })
                .collect();
            let pages: Vec<Vec<String>> = lines.chunks(44).map(<[String]>::to_vec).collect();
            common::save(common::pdf_document(&pages, &title))
        }
        "docx" => {
            let sections: Vec<(String, Vec<String>)> =
                records.iter().map(|r| (r.title.clone(), sentences(&r.text))).collect();
            common::docx_with(&title, &sections)
        }
        "pptx" => {
            let slides: Vec<(String, Vec<String>, String)> = records
                .iter()
                .map(|r| {
                    let mut body = sentences(&r.text);
                    let notes = body.pop().unwrap_or_default();
                    (r.title.clone(), body, notes)
                })
                .collect();
            common::pptx_with(&slides)
        }
        "xlsx" => {
            let rows: Vec<Vec<String>> =
                records.iter().map(|r| vec![r.id.clone(), r.title.clone(), r.text.clone()]).collect();
            common::xlsx_with("Abstracts", &["id", "title", "abstract"], &rows)
        }
        "html" => {
            let body: String = records
                .iter()
                .map(|r| {
                    let paragraphs: String =
                        sentences(&r.text).iter().map(|s| format!("<p>{}</p>\n", html_escape(s))).collect();
                    format!("<section><h2>{}</h2>\n{paragraphs}</section>\n", html_escape(&r.title))
                })
                .collect();
            format!(
                "<!DOCTYPE html><html><head><title>{title}</title><script>var analytics = 1;</script></head><body>\
                 <nav><a href=\"/\">Home</a> <a href=\"/about\">About</a></nav><main><h1>{title}</h1>\n{body}</main>\
                 <footer>Generated for Lore's benchmarks</footer></body></html>"
            )
            .into_bytes()
        }
        "md" => {
            let body: String = records.iter().map(|r| format!("## {}\n\n{}\n\n", r.title, r.text)).collect();
            format!("# {title}\n\n{body}").into_bytes()
        }
        "txt" => records.iter().map(|r| format!("{}\n\n{}\n\n", r.title, r.text)).collect::<String>().into_bytes(),
        "csv" => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(["id", "title", "abstract"]).unwrap();
            for r in records {
                writer.write_record([&r.id, &r.title, &r.text]).unwrap();
            }
            writer.into_inner().unwrap()
        }
        "json" => {
            let values: Vec<serde_json::Value> = records
                .iter()
                .map(|r| serde_json::json!({"id": r.id, "title": r.title, "text": r.text, "collection": title}))
                .collect();
            serde_json::to_vec_pretty(&values).unwrap()
        }
        "jsonl" => records
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "title": r.title, "text": r.text}).to_string() + "\n")
            .collect::<String>()
            .into_bytes(),
        other => unreachable!("no writer for {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: mixed_corpus OUT_DIR [MEGABYTES] [DATASETS_DIR]");
        std::process::exit(2);
    };
    let megabytes: u64 = args.get(1).map_or(100, |m| m.parse().expect("MEGABYTES is a whole number"));
    let datasets = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"));
    let mut records = Records { all: read_records(&datasets), next: 0 };
    let mut number = 0;
    let mut total = 0;
    for (format, share) in SHARES {
        let folder = out.join(format);
        fs::create_dir_all(&folder).unwrap();
        let quota = megabytes * 1_000_000 * share / 100;
        let (mut written, mut files) = (0, 0);
        while written < quota {
            let chars = FILE_TEXT_SIZES[number % FILE_TEXT_SIZES.len()];
            let bytes = write_document(format, number, &records.take(chars, format == "pdf"));
            fs::write(folder.join(format!("doc{number:04}.{format}")), &bytes).unwrap();
            written += bytes.len() as u64;
            files += 1;
            number += 1;
        }
        println!("{format}: {files} files, {:.1} MB", written as f64 / 1e6);
        total += written;
    }
    println!("{number} files, {:.1} MB in {}", total as f64 / 1e6, out.display());
}
