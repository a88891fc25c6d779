use std::ops::Range;

use crate::Result;

/// What a text is to the embedder: models such as E5 embed queries and passages differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbedKind {
    /// A search query.
    Query,
    /// A text to be found: a chunk of a document.
    Passage,
}

/// Splits text into a model's tokens, so chunk sizes can be measured the way the model sees text.
pub trait Tokenize: Send + Sync {
    /// Byte ranges of `text` covered by each token, in order, special tokens excluded.
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>>;
}

/// Turns texts into unit-length vectors whose dot product measures relatedness.
pub trait Embedder: Send + Sync {
    /// A stable name of the model; collections remember it and refuse another.
    fn id(&self) -> &str;
    /// The length of every vector it returns.
    fn dimension(&self) -> usize;
    /// The longest input in tokens; longer texts are truncated.
    fn max_tokens(&self) -> usize;
    /// The model's tokenizer, where it is known locally (a remote embedder has none).
    fn tokenizer(&self) -> Option<&dyn Tokenize>;
    /// One L2-normalised vector per text, in order.
    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>>;
}
