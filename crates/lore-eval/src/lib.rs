//! Evaluation of Lore pipelines: datasets, retrieval metrics (as trec_eval computes them), answer
//! metrics, an LLM judge, and RAGAS-style grounding metrics. Models are seen only through
//! `lore-core`'s traits. Definitions: `docs/evaluation.md`.
//!
//! ```
//! use std::collections::HashMap;
//! use lore_eval::{evaluate, Qrels, Run};
//!
//! let qrels: Qrels = HashMap::from([("q1".into(), HashMap::from([("d1".into(), 1)]))]);
//! let run: Run = HashMap::from([("q1".into(), vec![("d2".into(), 0.9), ("d1".into(), 0.5)])]);
//! let report = evaluate(&run, &qrels, &[1, 10]);
//! assert_eq!(report.mean[0].recall, 0.0); // nothing relevant in the top 1
//! assert_eq!(report.mean[1].mrr, 0.5); // the relevant document is second
//! ```

#![warn(missing_docs)]

mod arena;
mod ask;
mod dataset;
mod grounding;
mod judge;
mod parse;
mod qa;
mod retrieval;
mod run;

use serde::Serialize;

pub use arena::{ARENAS, ArenaEntry, Contender, html_report, leaderboard_markdown, load_arena, parse_arena};
pub use ask::Unscored;
pub use dataset::{ArenaDataset, BeirDataset, Dataset, QaItem, Qrels, Query};
pub use grounding::{Grounding, GroundingMetric, GroundingScores, GroundingSummary, ItemScore, PerMetric};
pub use judge::{Judge, JudgeSummary, Judgement, RubricScores};
pub use qa::{QaScores, QaSummary, RefusalCounts, answer_in_context, exact_match, rouge_l, token_f1, tokens};
pub use retrieval::{RetrievalMetrics, RetrievalReport, Run, best_chunk_per_document, evaluate};
pub use run::{
    AnsweredQuestion, CUTOFFS, Half, Passage, QaReport, RETRIEVAL_DEPTH, RankedQuery, answer_question,
    answer_retrieved, as_run, chunk_depth, collection_name, headline_metrics, rank_documents, sample,
};

/// A mean over items, with how many items it covers and how many could not be scored (rather
/// than a NaN or a made-up default).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mean {
    /// `None` when no item was scored.
    pub value: Option<f64>,
    /// How many items were scored and averaged.
    pub scored: usize,
    /// How many items could not be scored and are left out of the mean.
    pub failed: usize,
}

impl Mean {
    /// The mean of the `Some` values; each `None` is an item that failed to score.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Mean {
        let (mut sum, mut scored, mut failed) = (0.0, 0, 0);
        for value in values {
            match value {
                Some(v) => {
                    sum += v;
                    scored += 1;
                }
                None => failed += 1,
            }
        }
        Mean { value: (scored > 0).then(|| sum / scored as f64), scored, failed }
    }
}

/// `0.532 (48 scored, 2 failed)`, or `n/a (0 scored)` when nothing was scored.
impl std::fmt::Display for Mean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = if self.failed > 0 { format!(", {} failed", self.failed) } else { String::new() };
        match self.value {
            Some(v) => write!(f, "{v:.3} ({} scored{failed})", self.scored),
            None => write!(f, "n/a (0 scored{failed})"),
        }
    }
}
