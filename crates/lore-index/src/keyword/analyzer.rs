//! The analyzers that cut text into BM25 terms, for documents and queries alike.

use std::fs::File;
use std::io::BufReader;
use std::sync::{Arc, LazyLock};

use jieba_rs::Jieba;
use lore_core::{Analyzer, Error, KeywordSettings, Result, is_cjk};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer, Token, TokenStream,
    Tokenizer,
};

/// Lucene's English stop words (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`). A short list: BM25's
/// idf already discounts frequent words, so only the emptiest are worth dropping.
pub const ENGLISH_STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// Longer terms are dropped: they are base64, hashes or URLs, never useful as words.
const LONGEST_TERM_BYTES: usize = 40;

/// jieba with its built-in dictionary, loaded (about 0.1 s) the first time CJK text is seen.
static DEFAULT_JIEBA: LazyLock<Arc<Jieba>> = LazyLock::new(|| Arc::new(Jieba::new()));

/// The tantivy analyzer for `settings`; reads the user dictionary, if any.
pub(crate) fn text_analyzer(settings: &KeywordSettings) -> Result<TextAnalyzer> {
    let segmenter = || -> Result<Segmenter> {
        let Some(path) = &settings.user_dictionary else {
            return Ok(Segmenter { jieba: None });
        };
        let unreadable = |e: &dyn std::fmt::Display| {
            Error::InvalidInput(format!(
                "jieba user dictionary {}: {e}: give a readable file of `word [frequency [tag]]` lines",
                path.display()
            ))
        };
        let file = File::open(path).map_err(|e| unreadable(&e))?;
        let mut jieba = Jieba::new();
        jieba.load_dict(&mut BufReader::new(file)).map_err(|e| unreadable(&e))?;
        Ok(Segmenter { jieba: Some(Arc::new(jieba)) })
    };
    let long = RemoveLongFilter::limit(LONGEST_TERM_BYTES);
    let stop_words = || StopWordFilter::remove(ENGLISH_STOP_WORDS.map(String::from));
    Ok(match settings.analyzer {
        Analyzer::English => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(long)
            .filter(LowerCaser)
            .filter(stop_words())
            .filter(Stemmer::new(Language::English))
            .build(),
        Analyzer::Chinese => {
            TextAnalyzer::builder(ChineseTokenizer(segmenter()?)).filter(long).filter(LowerCaser).build()
        }
        // English stemming leaves CJK words alone: Snowball's suffixes are Latin letters.
        Analyzer::Mixed => TextAnalyzer::builder(MixedTokenizer(segmenter()?))
            .filter(long)
            .filter(LowerCaser)
            .filter(stop_words())
            .filter(Stemmer::new(Language::English))
            .build(),
    })
}

/// The terms of `text`, in order, with repeats.
pub(crate) fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    analyzer.token_stream(text).process(&mut |token| terms.push(token.text.clone()));
    terms
}

/// jieba word segmentation, with the built-in dictionary or a user's.
#[derive(Clone)]
struct Segmenter {
    jieba: Option<Arc<Jieba>>,
}

impl Segmenter {
    /// Appends the words of `text` (starting at byte `offset` of the whole text) to `tokens`.
    /// Search mode: `上下文` also yields `上下` and `下文`, so a query written with either finds it.
    fn words(&self, text: &str, offset: usize, tokens: &mut Vec<Token>) {
        let jieba = self.jieba.as_ref().unwrap_or(&*DEFAULT_JIEBA);
        for word in jieba.cut_for_search(text, true) {
            // jieba returns spaces and punctuation as words of their own.
            if word.word.chars().any(char::is_alphanumeric) {
                push(tokens, word.word, offset + word.byte_start);
            }
        }
    }
}

/// Maximal runs of letters and digits, like tantivy's `SimpleTokenizer`.
fn alphanumeric_words(text: &str, offset: usize, tokens: &mut Vec<Token>) {
    let mut word_start = None;
    for (at, c) in text.char_indices() {
        match (c.is_alphanumeric(), word_start) {
            (true, None) => word_start = Some(at),
            (false, Some(start)) => {
                push(tokens, &text[start..at], offset + start);
                word_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = word_start {
        push(tokens, &text[start..], offset + start);
    }
}

fn push(tokens: &mut Vec<Token>, word: &str, start: usize) {
    tokens.push(Token {
        offset_from: start,
        offset_to: start + word.len(),
        position: tokens.len(),
        text: word.to_string(),
        position_length: 1,
    });
}

/// The whole text through jieba: it keeps Latin words and numbers whole too.
#[derive(Clone)]
struct ChineseTokenizer(Segmenter);

impl Tokenizer for ChineseTokenizer {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let mut tokens = Vec::new();
        self.0.words(text, 0, &mut tokens);
        Tokens::new(tokens)
    }
}

/// Runs of CJK ideographs through jieba, everything else as alphanumeric words.
#[derive(Clone)]
struct MixedTokenizer(Segmenter);

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let mut tokens = Vec::new();
        let mut run_start = 0;
        let mut run_is_cjk = false;
        for (at, c) in text.char_indices() {
            let cjk = is_cjk(c);
            if cjk != run_is_cjk {
                self.run(&text[run_start..at], run_start, run_is_cjk, &mut tokens);
                run_start = at;
                run_is_cjk = cjk;
            }
        }
        self.run(&text[run_start..], run_start, run_is_cjk, &mut tokens);
        Tokens::new(tokens)
    }
}

impl MixedTokenizer {
    fn run(&self, run: &str, offset: usize, cjk: bool, tokens: &mut Vec<Token>) {
        if cjk {
            self.0.words(run, offset, tokens);
        } else {
            alphanumeric_words(run, offset, tokens);
        }
    }
}

/// A token stream over tokens computed up front (jieba segments a whole run at once).
struct Tokens {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokens {
    fn new(tokens: Vec<Token>) -> Tokens {
        Tokens { tokens, next: 0 }
    }
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// Texts as BM25 sees them, for a store that keeps its own postings (PostgreSQL): the same
/// analyzer as the embedded keyword index, so that both rank alike.
pub struct TermAnalyzer(TextAnalyzer);

impl TermAnalyzer {
    /// The analyzer of a collection's keyword settings (reads its user dictionary, if any).
    pub fn new(settings: &KeywordSettings) -> Result<TermAnalyzer> {
        Ok(TermAnalyzer(text_analyzer(settings)?))
    }

    /// The terms of `text`, in order, with repeats.
    pub fn terms(&mut self, text: &str) -> Vec<String> {
        terms(&mut self.0, text)
    }
}

/// The length BM25 counts for a text of `terms` terms: the embedded index keeps lengths in one
/// byte (exact up to 40, then within about 10 %), and a store that must rank alike uses the same.
pub fn bm25_length(terms: usize) -> u32 {
    use tantivy::fieldnorm::FieldNormReader;
    FieldNormReader::id_to_fieldnorm(FieldNormReader::fieldnorm_to_id(u32::try_from(terms).unwrap_or(u32::MAX)))
}
