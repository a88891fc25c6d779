use serde::{Deserialize, Serialize};

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
    /// How this model's scores become probabilities of relevance, when it was fitted for that
    /// (a reranker trained by `lore tune reranker` is).
    fn calibration(&self) -> Option<Calibration> {
        None
    }
}

/// A logistic model of relevance over a reranker's score and the candidate's rank in the search
/// that found it, fitted on questions held out from training:
/// `P(relevant) = σ(score_weight · score − rank_weight · ln rank + bias)`.
///
/// The rank term keeps what the first-stage search knew: a reranker trained on little data
/// reorders only where its score outweighs the search's order, and the probability is
/// comparable across queries, so a threshold on it can decide that nothing relevant was found.
///
/// ```
/// use lore_core::Calibration;
/// let calibration = Calibration { score_weight: 1.0, rank_weight: 0.5, bias: 0.0 };
/// assert!(calibration.probability(2.0, 1) > calibration.probability(2.0, 10));
/// assert!((calibration.probability(0.0, 1) - 0.5).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Weight of the reranker's raw score.
    pub score_weight: f32,
    /// Weight of the log of the 1-based first-stage rank (0 when fitted without ranks).
    pub rank_weight: f32,
    /// Intercept.
    pub bias: f32,
}

impl Calibration {
    /// The probability that a candidate with reranker score `score`, found at 1-based `rank`,
    /// is relevant.
    pub fn probability(&self, score: f32, rank: usize) -> f32 {
        let z = self.score_weight * score - self.rank_weight * (rank.max(1) as f32).ln() + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}
