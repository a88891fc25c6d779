//! Retrievers: one way each of finding the chunks for a query.

use crate::{Filter, Hit, Result};

/// What a retriever is given to search: the text, and its embedding when the retriever
/// searches by vector ([`Retriever::needs_vector`]).
#[derive(Clone, Copy, Debug)]
pub struct RetrieverQuery<'a> {
    /// The text searched (a question, a rewrite of it, or a hypothetical answer).
    pub text: &'a str,
    /// The text's embedding, for retrievers that need one.
    pub vector: Option<&'a [f32]>,
}

/// One way of finding chunks for a query: dense (by vector), BM25 (by words), and later a
/// graph or another index. The pipeline runs a set of retrievers and fuses their lists, so a
/// new retriever is a new implementation of this trait, not a change to the pipeline.
pub trait Retriever: Send + Sync {
    /// A short stable name (`dense`, `keyword`), shown in explanations and used in reports.
    fn name(&self) -> &str;

    /// Whether [`Retriever::retrieve`] needs the query's embedding. The pipeline embeds every
    /// query once and hands the vector to each retriever that asks; only these retrievers
    /// search a hypothetical answer (HyDE), which only makes sense in embedding space.
    fn needs_vector(&self) -> bool;

    /// The `k` best chunks for `query` that pass `filter`, best first, with this retriever's
    /// own scores.
    fn retrieve(&self, query: RetrieverQuery<'_>, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>>;
}
