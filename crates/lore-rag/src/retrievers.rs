//! The retrievers over a collection's own indexes: dense (cosine) and keyword (BM25).

use lore_core::{Error, Filter, Hit, Result, Retriever, RetrieverQuery, Store};

/// Chunks by the cosine similarity of their vectors with the query's, those below `min_score`
/// left out.
pub struct DenseRetriever<'a> {
    store: &'a dyn Store,
    min_score: f32,
}

impl<'a> DenseRetriever<'a> {
    /// Searches `store`'s vectors, keeping hits scoring at least `min_score`.
    pub fn new(store: &'a dyn Store, min_score: f32) -> Self {
        DenseRetriever { store, min_score }
    }
}

impl Retriever for DenseRetriever<'_> {
    fn name(&self) -> &str {
        "dense"
    }

    fn needs_vector(&self) -> bool {
        true
    }

    fn retrieve(&self, query: RetrieverQuery<'_>, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let vector = query
            .vector
            .ok_or_else(|| Error::InvalidInput("the dense retriever needs the query's embedding".into()))?;
        let mut hits = self.store.search(vector, k, filter)?;
        hits.retain(|h| h.score >= self.min_score);
        Ok(hits)
    }
}

/// Chunks by BM25 over their words, as the collection's analyzer cuts them.
pub struct KeywordRetriever<'a> {
    store: &'a dyn Store,
}

impl<'a> KeywordRetriever<'a> {
    /// Searches `store`'s keyword index.
    pub fn new(store: &'a dyn Store) -> Self {
        KeywordRetriever { store }
    }
}

impl Retriever for KeywordRetriever<'_> {
    fn name(&self) -> &str {
        "keyword"
    }

    fn needs_vector(&self) -> bool {
        false
    }

    fn retrieve(&self, query: RetrieverQuery<'_>, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.store.search_keyword(query.text, k, filter)
    }
}
