mod measure;
mod semantic;
mod split;
mod tables;

use std::ops::Range;

use lore_core::{Chunk, ChunkConfig, Document, Embedder, Error, Result, Section, SizeUnit, Tokenize};

use measure::Measure;
use semantic::{Breakpoints, semantic_chunks};
use split::Splitter;
use tables::Tables;

/// Cuts `doc` into chunks as `config` says. The embedder is needed by the semantic chunker and
/// by sizes measured in tokens (its tokenizer); the others take `None`.
///
/// Each chunk's metadata has `source`, `heading_path` (where the chunk starts under a heading)
/// and, for the chunkers that say so in [`ChunkConfig`], `context` (the text the generator
/// should read instead of `text`) and `parent` (the ordinal of the parent whose text is the
/// `context`).
pub fn chunk(doc: &Document, config: &ChunkConfig, embedder: Option<&dyn Embedder>) -> Result<Vec<Chunk>> {
    let text = SectionedText::new(doc);
    let tables = Tables::new(&text.text);
    let drafts = match *config {
        ChunkConfig::ParagraphMerge { chunk_size, drop_remainder } => {
            at_least_one("chunk_size", chunk_size)?;
            paragraph_merge(&text.text, &tables, chunk_size, drop_remainder)
        }
        ChunkConfig::TokenWindow { size, overlap } => {
            if overlap >= size {
                return Err(Error::InvalidInput(format!(
                    "token window overlap ({overlap}) must be smaller than its size ({size})"
                )));
            }
            let tokenizer = embedder.and_then(|e| e.tokenizer()).ok_or_else(|| {
                Error::InvalidInput("token windows need the embedder's tokenizer, which a remote embedder does not have; use paragraph-merge".into())
            })?;
            token_windows(&text.text, &tables, tokenizer, size, overlap)?
        }
        ChunkConfig::Whole => {
            let whole = text.whole();
            if whole.is_empty() { Vec::new() } else { vec![Draft::new(0, text.text[whole].to_string())] }
        }
        ChunkConfig::Recursive { chunk_size, overlap, unit } => {
            smaller("overlap", overlap, "chunk_size", chunk_size)?;
            let splitter = Splitter::new(&text.text, &tables, unit, embedder)?;
            plain(&splitter, splitter.recursive(text.whole(), chunk_size, overlap))
        }
        ChunkConfig::HeadingAware { chunk_size, overlap, unit, prefix_headings } => {
            smaller("overlap", overlap, "chunk_size", chunk_size)?;
            let splitter = Splitter::new(&text.text, &tables, unit, embedder)?;
            heading_aware(&text, &splitter, chunk_size, overlap, prefix_headings)?
        }
        ChunkConfig::Semantic { breakpoint_percentile, buffer, min_chunk_size, max_chunk_size, unit } => {
            let breakpoints = Breakpoints::new(breakpoint_percentile, buffer, min_chunk_size, max_chunk_size)?;
            let embedder = embedder.ok_or_else(|| {
                Error::InvalidInput(
                    "the semantic chunker needs the embedder to compare sentences; pass it to chunk()".into(),
                )
            })?;
            let splitter = Splitter::new(&text.text, &tables, unit, Some(embedder))?;
            plain(&splitter, semantic_chunks(&splitter, text.whole(), embedder, &breakpoints)?)
        }
        ChunkConfig::SentenceWindow { window } => {
            sentence_windows(&text, &Splitter::new(&text.text, &tables, SizeUnit::Chars, None)?, window)
        }
        ChunkConfig::ParentChild { child_size, parent_size, unit } => {
            at_least_one("child_size", child_size)?;
            smaller("child_size", child_size, "parent_size", parent_size)?;
            parent_child(&text, &Splitter::new(&text.text, &tables, unit, embedder)?, child_size, parent_size)
        }
    };
    Ok(drafts
        .into_iter()
        .enumerate()
        .map(|(ordinal, draft)| {
            // Where the chunk starts: its section's page, slide, sheet or record, and headings.
            let section = text.section_at(draft.start);
            let mut metadata = section.map(|s| s.metadata.clone()).unwrap_or_default();
            metadata.insert("source".into(), doc.source.clone().into());
            if let Some(section) = section.filter(|s| !s.heading_path.is_empty()) {
                metadata.insert("heading_path".into(), section.heading_path.clone().into());
            }
            if let Some(context) = draft.context {
                metadata.insert("context".into(), context.into());
            }
            if let Some(parent) = draft.parent {
                metadata.insert("parent".into(), parent.into());
            }
            Chunk { text: draft.text, ordinal, metadata }
        })
        .collect())
}

/// A chunk before its metadata is written: where it starts in the document's text, what is
/// embedded, and what the generator reads instead when that differs.
struct Draft {
    start: usize,
    text: String,
    context: Option<String>,
    parent: Option<usize>,
}

impl Draft {
    fn new(start: usize, text: String) -> Self {
        Draft { start, text, context: None, parent: None }
    }
}

fn at_least_one(name: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(Error::InvalidInput(format!("{name} must be at least 1")));
    }
    Ok(())
}

fn smaller(small_name: &str, small: usize, large_name: &str, large: usize) -> Result<()> {
    if small >= large {
        return Err(Error::InvalidInput(format!("{small_name} ({small}) must be smaller than {large_name} ({large})")));
    }
    Ok(())
}

/// One chunk per range, as it stands in the text.
fn plain(splitter: &Splitter, ranges: Vec<Range<usize>>) -> Vec<Draft> {
    ranges.into_iter().map(|r| Draft::new(r.start, splitter.render(r))).collect()
}

/// `recursive` within each section; with `prefix_headings` the embedded text starts with the
/// heading path and the plain text is the context.
fn heading_aware(
    text: &SectionedText,
    splitter: &Splitter,
    chunk_size: usize,
    overlap: usize,
    prefix_headings: bool,
) -> Result<Vec<Draft>> {
    let mut drafts = Vec::new();
    for (range, heading_path) in text.sections() {
        let prefix = (prefix_headings && !heading_path.is_empty()).then(|| format!("{}\n", heading_path.join(" > ")));
        // The prefix counts toward the size, but a long heading must not crumble its section.
        let reserved = match &prefix {
            Some(prefix) => splitter.measure.of_str(prefix)?.min(chunk_size / 2),
            None => 0,
        };
        for piece in splitter.recursive(range, chunk_size - reserved, overlap) {
            let body = splitter.render(piece.clone());
            drafts.push(match &prefix {
                Some(prefix) => {
                    Draft { start: piece.start, text: format!("{prefix}{body}"), context: Some(body), parent: None }
                }
                None => Draft::new(piece.start, body),
            });
        }
    }
    Ok(drafts)
}

fn sentence_windows(text: &SectionedText, splitter: &Splitter, window: usize) -> Vec<Draft> {
    let sentences = splitter.sentences(text.whole());
    let last = sentences.len().saturating_sub(1);
    sentences
        .iter()
        .enumerate()
        .map(|(i, sentence)| {
            let around = sentences[i.saturating_sub(window)].start..sentences[(i + window).min(last)].end;
            Draft {
                start: sentence.start,
                text: splitter.render(sentence.clone()),
                context: Some(splitter.render(around)),
                parent: None,
            }
        })
        .collect()
}

fn parent_child(text: &SectionedText, splitter: &Splitter, child_size: usize, parent_size: usize) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for (ordinal, parent) in splitter.recursive(text.whole(), parent_size, 0).into_iter().enumerate() {
        let context = splitter.render(parent.clone());
        for child in splitter.recursive(parent, child_size, 0) {
            drafts.push(Draft {
                start: child.start,
                text: splitter.render(child),
                context: Some(context.clone()),
                parent: Some(ordinal),
            });
        }
    }
    drafts
}

/// The document's text with the byte offset where each section starts.
struct SectionedText<'a> {
    doc: &'a Document,
    text: String,
    starts: Vec<usize>,
}

impl<'a> SectionedText<'a> {
    fn new(doc: &'a Document) -> Self {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(doc.sections.len());
        for section in &doc.sections {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            starts.push(text.len());
            text.push_str(&section.text);
        }
        SectionedText { doc, text, starts }
    }

    /// The whole text without the whitespace around it.
    fn whole(&self) -> Range<usize> {
        let start = self.text.len() - self.text.trim_start().len();
        start..start.max(self.text.trim_end().len())
    }

    /// Each section's range of the text, with its heading path.
    fn sections(&self) -> impl Iterator<Item = (Range<usize>, &[String])> {
        self.doc
            .sections
            .iter()
            .zip(&self.starts)
            .map(|(s, start)| (*start..start + s.text.len(), s.heading_path.as_slice()))
    }

    fn section_at(&self, offset: usize) -> Option<&'a Section> {
        let index = self.starts.partition_point(|s| *s <= offset).saturating_sub(1);
        self.doc.sections.get(index)
    }
}

/// The tutorial's chunker: non-empty lines are concatenated (joined by newlines) until the
/// chunk reaches `chunk_size` characters, and never between a table's header and separator.
fn paragraph_merge(text: &str, tables: &Tables, chunk_size: usize, drop_remainder: bool) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    let mut start = 0;
    let mut offset = 0;
    for line in text.split('\n') {
        let line_offset = offset;
        offset += line.len() + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if current.is_empty() {
            start = line_offset;
        } else {
            current.push('\n');
            current_chars += 1;
        }
        current.push_str(line);
        current_chars += line.chars().count();
        if current_chars >= chunk_size && tables.allows_cut(offset - 1) {
            drafts.push(Draft::new(start, tables.with_header(text, start, &std::mem::take(&mut current))));
            current_chars = 0;
        }
    }
    if !current.is_empty() && !drop_remainder {
        drafts.push(Draft::new(start, tables.with_header(text, start, &current)));
    }
    drafts
}

/// Windows of `size` tokens, each starting `size - overlap` tokens after the previous one (a
/// table row counts as one piece); the chunk text is the span of the original text its tokens
/// cover.
fn token_windows(
    text: &str,
    tables: &Tables,
    tokenizer: &dyn Tokenize,
    size: usize,
    overlap: usize,
) -> Result<Vec<Draft>> {
    let spans = tokenizer.token_spans(text)?;
    let pieces = tables.join_units(spans.iter().cloned());
    let splitter = Splitter { text, measure: Measure::Tokens { spans, tokenizer }, tables };
    Ok(splitter
        .merge(&pieces, size, overlap)
        .into_iter()
        .map(|window| {
            // Tokenizers may report offsets inside a multi-byte character; widen to whole characters.
            let window = text.floor_char_boundary(window.start)..text.ceil_char_boundary(window.end);
            Draft::new(window.start, splitter.render(window))
        })
        .collect())
}
