use std::any::Any;
use std::fs::{self, File};
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use lore_core::{Document, Error, Language, Result, Section, detect_language};

use crate::formats::{self, Parsed};

/// The formats Lore reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain text: UTF-8, UTF-16 with a byte-order mark, or GB18030/GBK.
    Text,
    /// Markdown, split into sections by its ATX headings.
    Markdown,
    /// HTML: the page's main content by its headings, lists and tables, without navigation
    /// and scripts.
    Html,
    /// PDF with a text layer.
    Pdf,
    /// Word documents (DOCX, DOCM), with their headings, lists, tables and footnotes.
    Docx,
    /// PowerPoint decks (PPTX, PPTM): one section per slide, with its speaker notes.
    Pptx,
    /// XLSX, XLSM, XLSB, XLS and ODS workbooks.
    Spreadsheet,
    /// Comma-, semicolon-, tab- or bar-separated values with a header row.
    Csv,
    /// A JSON document: each element of a top-level array (else the whole value) is a section.
    Json,
    /// One JSON record per line.
    Jsonl,
}

impl Format {
    /// The format of `path` by its extension, if Lore reads it.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" | "xhtml" => Some(Format::Html),
            "pdf" => Some(Format::Pdf),
            "docx" | "docm" => Some(Format::Docx),
            "pptx" | "pptm" => Some(Format::Pptx),
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Some(Format::Spreadsheet),
            "csv" | "tsv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// The name stored as the document's `format` metadata.
    fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Pptx => "pptx",
            Format::Spreadsheet => "spreadsheet",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
        }
    }
}

const SUPPORTED: &str = ".txt, .md, .html, .pdf, .docx, .pptx, .xlsx/.xls/.ods, .csv/.tsv, .json, .jsonl";

/// What `parse_with_limits` refuses to spend on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Larger files are refused before they are read.
    pub max_bytes: u64,
    /// A parser still running after this long is abandoned and the file reported as an error.
    /// Rust cannot stop a thread, so the abandoned parser keeps its CPU and memory until it
    /// returns on its own; only isolating parsers in a child process would reclaim them, at the
    /// cost of a process start per file. Parsers here are linear in their input, so a timeout
    /// means a pathological file, not a lost machine.
    pub timeout: Duration,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_bytes: 200_000_000, timeout: Duration::from_secs(60) }
    }
}

/// Deeply nested input (HTML, PDF objects) makes parsers recurse deeply; a stack overflow would
/// abort the process, so parsing threads get more room than the 2 MiB default (address space
/// only: untouched stack pages cost no memory).
const PARSER_STACK_BYTES: usize = 64 << 20;

/// Reads and parses one file with the default [`ParseLimits`]. The document's `source` is the
/// path as given.
pub fn parse(path: &Path) -> Result<Document> {
    parse_with_limits(path, &ParseLimits::default())
}

/// Reads and parses one file, refusing it when it is larger than `limits.max_bytes` and
/// abandoning it when parsing takes longer than `limits.timeout`.
///
/// A file that does not exist is [`Error::NotFound`], one the operating system will not read
/// (permissions) [`Error::Io`]; one that is read but cannot be used (a folder, too large, empty,
/// damaged, in a format Lore does not read) is [`Error::Parse`], whose `reason` says why.
pub fn parse_with_limits(path: &Path, limits: &ParseLimits) -> Result<Document> {
    let source = path.display().to_string();
    let fail = |reason: String| Error::Parse { path: source.clone(), reason };
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(fail("is a folder, not a file; ingest walks folders itself".into()));
    }
    if !meta.is_file() {
        return Err(fail("not a regular file (a device, socket or pipe)".into()));
    }
    let too_large = |size: u64| {
        fail(format!(
            "too large: {} MB, over the {} MB limit (ParseLimits::max_bytes); split the file or raise the limit",
            size / 1_000_000,
            limits.max_bytes / 1_000_000
        ))
    };
    if meta.len() > limits.max_bytes {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may have grown since `metadata`: never read past the limit.
    File::open(path)
        .and_then(|file| file.take(limits.max_bytes.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    let mut doc = parse_in_thread(&source, bytes, limits.timeout)?;
    if let Some(age) = meta.modified().ok().and_then(|m| m.duration_since(UNIX_EPOCH).ok()) {
        doc.metadata.insert("modified_unix".into(), age.as_secs().into());
    }
    Ok(doc)
}

/// Parses bytes received rather than read from a file (an upload), named `name_hint` as in
/// [`parse_bytes`], under `limits` as [`parse_with_limits`] applies them to a file.
pub fn parse_bytes_with_limits(name_hint: &str, bytes: Vec<u8>, limits: &ParseLimits) -> Result<Document> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(Error::Parse {
            path: name_hint.to_string(),
            reason: format!("too large: over the {} MB limit", limits.max_bytes / 1_000_000),
        });
    }
    parse_in_thread(name_hint, bytes, limits.timeout)
}

fn parse_in_thread(source: &str, bytes: Vec<u8>, timeout: Duration) -> Result<Document> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let source = source.to_string();
    let name = source.clone();
    thread::Builder::new()
        .name("lore-parse".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || {
            // After a timeout nobody listens any more; the result is dropped with the thread.
            let _ = sender.send(parse_bytes(&name, &bytes));
        })
        .map_err(Error::io(&source))?;
    receiver.recv_timeout(timeout).unwrap_or_else(|e| {
        let reason = match e {
            RecvTimeoutError::Timeout => format!(
                "parsing took longer than {} s and was abandoned (ParseLimits::timeout); the file is probably malformed or pathological",
                timeout.as_secs_f64()
            ),
            RecvTimeoutError::Disconnected => "the parser crashed; the file is probably malformed".into(),
        };
        Err(Error::Parse { path: source, reason })
    })
}

/// A file that cannot be read: [`Error::NotFound`] when it does not exist, else [`Error::Io`],
/// naming the file and, where the operating system's words are cryptic, saying what to do.
pub(crate) fn io_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound(format!("{}: no such file", path.display())),
        io::ErrorKind::PermissionDenied => Error::Io {
            path: path.to_path_buf(),
            source: io::Error::new(e.kind(), "permission denied: Lore may not read this file (check its permissions)"),
        },
        _ => Error::io(path)(e),
    }
}

/// Parses a file's bytes. `name_hint` (a path or a file name) is the document's `source` and
/// picks the format by its extension, unless the bytes say otherwise (a PDF or an Office file
/// under another name is read as what it is). Never panics: a parser that crashes on a
/// malformed file is reported as an error.
pub fn parse_bytes(name_hint: &str, bytes: &[u8]) -> Result<Document> {
    let fail = |reason: String| Error::Parse { path: name_hint.to_string(), reason };
    if bytes.is_empty() {
        return Err(fail("empty file".into()));
    }
    let by_name = Format::of(Path::new(name_hint));
    let format = formats::sniff(bytes)
        .or(by_name)
        .ok_or_else(|| fail(format!("unsupported format (Lore reads {SUPPORTED})")))?;
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| formats::parse(format, bytes)))
        .unwrap_or_else(|panic| {
            Err(format!(
                "the {} parser crashed ({}); the file is probably malformed",
                format.name(),
                panic_message(&*panic)
            ))
        })
        .map_err(fail)?;
    Ok(finish(name_hint, format, parsed))
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Parses text already in memory. Markdown is split into sections by its ATX headings
/// (`#` … `######`, outside code fences), each carrying its heading path; every other format
/// is taken as plain text (structured formats go through [`parse_bytes`]).
pub fn parse_text(source: &str, text: &str, format: Format) -> Document {
    let parsed = match format {
        Format::Markdown => formats::markdown(text),
        _ => formats::plain(text),
    };
    finish(source, format, parsed)
}

fn finish(source: &str, format: Format, parsed: Parsed) -> Document {
    let sections: Vec<Section> = parsed.sections.into_iter().filter(|s| !s.text.trim().is_empty()).collect();
    let mut doc = Document::new(source, sections);
    doc.title = parsed
        .title
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| Path::new(source).file_stem().map(|s| s.to_string_lossy().into_owned()));
    doc.metadata = parsed.metadata;
    doc.metadata.insert("source".into(), source.into());
    doc.metadata.insert("format".into(), format.name().into());
    if !doc.sections.is_empty() {
        let language = match detect_language(&doc.text()) {
            Language::Chinese => "zh",
            Language::English => "en",
        };
        doc.metadata.insert("language".into(), language.into());
    }
    doc
}
