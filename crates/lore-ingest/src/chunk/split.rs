use std::ops::Range;

use lore_core::{Embedder, Error, Result, SizeUnit};

use super::measure::Measure;
use super::tables::Tables;

/// Boundaries to cut text at, from the coarsest to the finest.
#[derive(Clone, Copy)]
enum Level {
    Paragraph,
    Line,
    Sentence,
    Clause,
    Word,
    Char,
}

impl Level {
    fn finer(self) -> Option<Level> {
        match self {
            Level::Paragraph => Some(Level::Line),
            Level::Line => Some(Level::Sentence),
            Level::Sentence => Some(Level::Clause),
            Level::Clause => Some(Level::Word),
            Level::Word => Some(Level::Char),
            Level::Char => None,
        }
    }

    /// Byte offsets in `text` where a piece ends, in order.
    fn cuts(self, text: &str) -> Vec<usize> {
        let mut cuts = Vec::new();
        for (i, c) in text.char_indices() {
            let after = i + c.len_utf8();
            let rest = &text[after..];
            let cut = match self {
                Level::Paragraph => {
                    (c == '\n' && rest.trim_start_matches([' ', '\t', '\r']).starts_with('\n')).then_some(after)
                }
                Level::Line => (c == '\n').then_some(after),
                Level::Sentence if matches!(c, '。' | '！' | '？' | '；' | '.' | '!' | '?') => {
                    // Closing quotes and brackets belong to the sentence they end; the ASCII
                    // marks end one only before a space ("3.5", "e.g.").
                    let closed = rest.trim_start_matches(CLOSERS);
                    (!c.is_ascii() || closed.starts_with(char::is_whitespace)).then(|| text.len() - closed.len())
                }
                Level::Sentence => None,
                Level::Clause => {
                    (c == '，' || (matches!(c, ',' | ';') && rest.starts_with(char::is_whitespace))).then_some(after)
                }
                Level::Word => c.is_whitespace().then_some(after),
                Level::Char => Some(after),
            };
            cuts.extend(cut);
        }
        cuts
    }
}

const CLOSERS: [char; 12] = ['"', '\'', ')', ']', '”', '’', '」', '』', '）', '》', '】', '〉'];

/// Cuts a document's text into pieces and merges pieces into chunks, measuring sizes with one
/// [`Measure`] and keeping table rows whole.
pub(super) struct Splitter<'a> {
    pub(super) text: &'a str,
    pub(super) measure: Measure<'a>,
    pub(super) tables: &'a Tables,
}

impl<'a> Splitter<'a> {
    /// A splitter of `text` measuring in `unit`; tokens are the embedder's.
    pub(super) fn new(
        text: &'a str,
        tables: &'a Tables,
        unit: SizeUnit,
        embedder: Option<&'a dyn Embedder>,
    ) -> Result<Self> {
        let measure = match unit {
            SizeUnit::Chars => Measure::chars(text),
            SizeUnit::Tokens => {
                let tokenizer = embedder.and_then(|e| e.tokenizer()).ok_or_else(|| {
                    Error::InvalidInput(
                        "unit = \"tokens\" needs the embedder's tokenizer, which a remote embedder does not have; use unit = \"chars\"".into(),
                    )
                })?;
                Measure::tokens(text, tokenizer)?
            }
        };
        Ok(Splitter { text, measure, tables })
    }

    /// Chunks of `range` of at most `limit` units, except where one unsplittable piece (a table
    /// row, or a character) is larger; see `ChunkConfig::Recursive`.
    pub(super) fn recursive(&self, range: Range<usize>, limit: usize, overlap: usize) -> Vec<Range<usize>> {
        let mut chunks = Vec::new();
        self.split(range, Level::Paragraph, limit, overlap, &mut chunks);
        chunks
    }

    /// Cuts `range` at `level`; pieces that fit (or cannot be cut) are merged with their fitting
    /// neighbours, the others are cut at the next finer level. Merging stops at a piece that had
    /// to be cut, so a chunk never joins the end of one paragraph to part of another.
    fn split(&self, range: Range<usize>, level: Level, limit: usize, overlap: usize, chunks: &mut Vec<Range<usize>>) {
        let mut fitting = Vec::new();
        for piece in self.cut(range, level) {
            match level.finer() {
                // A table row too long to fit comes back whole from every finer level.
                Some(finer) if self.measure.of(piece.clone()) > limit => {
                    chunks.extend(self.merge(&fitting, limit, overlap));
                    fitting.clear();
                    self.split(piece, finer, limit, overlap, chunks);
                }
                _ => fitting.push(piece),
            }
        }
        chunks.extend(self.merge(&fitting, limit, overlap));
    }

    /// The pieces of `range` between the cuts of `level`, trimmed, empty ones left out, rows whole.
    fn cut(&self, range: Range<usize>, level: Level) -> Vec<Range<usize>> {
        let base = range.start;
        let mut ends = level.cuts(&self.text[range.clone()]);
        ends.push(range.end - base);
        let mut start = base;
        let pieces = ends.into_iter().filter_map(|end| {
            let piece = trim(self.text, start..base + end);
            start = base + end;
            piece
        });
        self.tables.join_units(pieces)
    }

    /// Greedily packs consecutive `pieces` into chunks of at most `limit` units, a repeated
    /// table header included. Each chunk after the first starts with as many of the last pieces
    /// of the one before as measure at most `overlap` and leave room for one new piece.
    pub(super) fn merge(&self, pieces: &[Range<usize>], limit: usize, overlap: usize) -> Vec<Range<usize>> {
        let fits = |range: Range<usize>| self.measure.of(range.clone()) <= self.budget(range.start, limit);
        let mut chunks = Vec::new();
        let mut first = 0;
        while first < pieces.len() {
            let start = pieces[first].start;
            let mut last = first;
            while last + 1 < pieces.len() && fits(start..pieces[last + 1].end) {
                last += 1;
            }
            chunks.push(start..pieces[last].end);
            if last + 1 == pieces.len() {
                break;
            }
            let mut next = last + 1;
            while next - 1 > first
                && self.measure.of(pieces[next - 1].start..pieces[last].end) <= overlap
                && fits(pieces[next - 1].start..pieces[last + 1].end)
            {
                next -= 1;
            }
            first = next;
        }
        chunks
    }

    /// What is left of `limit` for a chunk starting at `start` once the table header it repeats
    /// (if any) is counted.
    fn budget(&self, start: usize, limit: usize) -> usize {
        let header = self.tables.header_before(start).map_or(0, |header| self.measure.of(header));
        limit.saturating_sub(header)
    }

    /// The sentences of `range`: cut at paragraph breaks and sentence ends, with each table
    /// row on its own.
    pub(super) fn sentences(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let mut sentences = Vec::new();
        for paragraph in self.cut(range, Level::Paragraph) {
            let lines = if self.tables.touch(&paragraph) { self.cut(paragraph, Level::Line) } else { vec![paragraph] };
            for line in lines {
                sentences.extend(self.cut(line, Level::Sentence));
            }
        }
        sentences
    }

    /// The text of `range`, after the header of the table it starts in, if any.
    pub(super) fn render(&self, range: Range<usize>) -> String {
        self.tables.with_header(self.text, range.start, &self.text[range])
    }
}

/// `range` without the whitespace at either end, or `None` when nothing else is left.
fn trim(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let piece = &text[range.clone()];
    let start = range.start + (piece.len() - piece.trim_start().len());
    let end = range.start + piece.trim_end().len();
    (start < end).then_some(start..end)
}
