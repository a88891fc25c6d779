use lore_core::{Chunk, ChunkConfig, Document, Error, Metadata, Result, Tokenize};

/// Cuts `doc` into chunks as `config` says. Token windows need the embedder's tokenizer.
pub fn chunk(doc: &Document, config: &ChunkConfig, tokenizer: Option<&dyn Tokenize>) -> Result<Vec<Chunk>> {
    let text = SectionedText::new(doc);
    let pieces = match *config {
        ChunkConfig::ParagraphMerge { chunk_size, drop_remainder } => {
            if chunk_size == 0 {
                return Err(Error::InvalidInput("chunk_size must be at least 1".into()));
            }
            paragraph_merge(&text.text, chunk_size, drop_remainder)
        }
        ChunkConfig::TokenWindow { size, overlap } => {
            if overlap >= size {
                return Err(Error::InvalidInput(format!("token window overlap ({overlap}) must be smaller than its size ({size})")));
            }
            let tokenizer = tokenizer.ok_or_else(|| {
                Error::InvalidInput("token windows need the embedder's tokenizer, which a remote embedder does not have; use paragraph-merge".into())
            })?;
            token_windows(&text.text, tokenizer, size, overlap)?
        }
        ChunkConfig::Whole => vec![(0, text.text.clone())].into_iter().filter(|(_, t)| !t.trim().is_empty()).collect(),
    };
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(ordinal, (start, chunk_text))| {
            let mut metadata = Metadata::new();
            metadata.insert("source".into(), doc.source.clone().into());
            let heading_path = text.heading_path_at(start);
            if !heading_path.is_empty() {
                metadata.insert("heading_path".into(), heading_path.into());
            }
            Chunk { text: chunk_text, ordinal, metadata }
        })
        .collect())
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

    fn heading_path_at(&self, offset: usize) -> Vec<String> {
        let index = self.starts.partition_point(|s| *s <= offset).saturating_sub(1);
        self.doc.sections.get(index).map(|s| s.heading_path.clone()).unwrap_or_default()
    }
}

/// The tutorial's chunker: non-empty lines are concatenated (joined by newlines) until the
/// chunk reaches `chunk_size` characters. Returns (byte offset of the first line, text).
fn paragraph_merge(text: &str, chunk_size: usize, drop_remainder: bool) -> Vec<(usize, String)> {
    let mut chunks = Vec::new();
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
        if current_chars >= chunk_size {
            chunks.push((start, std::mem::take(&mut current)));
            current_chars = 0;
        }
    }
    if !current.is_empty() && !drop_remainder {
        chunks.push((start, current));
    }
    chunks
}

/// Windows of `size` tokens, each starting `size - overlap` tokens after the previous one; the
/// chunk text is the span of the original text its tokens cover.
fn token_windows(text: &str, tokenizer: &dyn Tokenize, size: usize, overlap: usize) -> Result<Vec<(usize, String)>> {
    let spans = tokenizer.token_spans(text)?;
    let step = size - overlap;
    let mut chunks = Vec::new();
    let mut first = 0;
    while first < spans.len() {
        let last = (first + size).min(spans.len()) - 1;
        // Tokenizers may report offsets inside a multi-byte character; widen to whole characters.
        let start = text.floor_char_boundary(spans[first].start);
        let end = text.ceil_char_boundary(spans[last].end);
        chunks.push((start, text[start..end].to_string()));
        if last + 1 == spans.len() {
            break;
        }
        first += step;
    }
    Ok(chunks)
}
