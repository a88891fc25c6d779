use std::ops::Range;

use lore_core::{Result, Tokenize};

/// Sizes of parts of one document text, in characters or in the embedder's tokens. The text is
/// counted once up front, so the size of any byte range is two binary searches: merging pieces
/// asks for many overlapping ranges.
pub(super) enum Measure<'a> {
    /// The byte offset of every character.
    Chars(Vec<usize>),
    /// The document's tokens; a range's size is the number of tokens it touches, so a range cut
    /// inside a token counts that token on both sides.
    Tokens { spans: Vec<Range<usize>>, tokenizer: &'a dyn Tokenize },
}

impl<'a> Measure<'a> {
    pub(super) fn chars(text: &str) -> Self {
        Measure::Chars(text.char_indices().map(|(i, _)| i).collect())
    }

    pub(super) fn tokens(text: &str, tokenizer: &'a dyn Tokenize) -> Result<Self> {
        Ok(Measure::Tokens { spans: tokenizer.token_spans(text)?, tokenizer })
    }

    /// The size of `range` of the text this measure was made for.
    pub(super) fn of(&self, range: Range<usize>) -> usize {
        match self {
            Measure::Chars(starts) => {
                starts.partition_point(|i| *i < range.end) - starts.partition_point(|i| *i < range.start)
            }
            Measure::Tokens { spans, .. } => {
                let first = spans.partition_point(|s| s.end <= range.start);
                spans.partition_point(|s| s.start < range.end).saturating_sub(first)
            }
        }
    }

    /// The size of a text that is not part of the document, such as a heading prefix.
    pub(super) fn of_str(&self, text: &str) -> Result<usize> {
        match self {
            Measure::Chars(_) => Ok(text.chars().count()),
            Measure::Tokens { tokenizer, .. } => Ok(tokenizer.token_spans(text)?.len()),
        }
    }
}
