use crate::Result;

/// Scores how well passages answer a query, reading both together (a cross-encoder, a chat
/// model asked for a judgement): slower than comparing embeddings, so it reorders the few best
/// candidates of a cheaper search.
pub trait Reranker: Send + Sync {
    /// A stable name of the model, shown in explanations.
    fn id(&self) -> &str;
    /// One relevance score per passage, in order; higher is more relevant. Scores compare
    /// passages for one query only: their scale is the model's.
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>>;
}
