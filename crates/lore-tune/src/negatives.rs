//! Hard negatives: passages a search ranks high for a question that do not answer it. The
//! danger is the false negative — an unlabelled passage that does answer — which teaches the
//! model the opposite of the truth; the filters below drop the likely ones.

use std::collections::HashSet;

use lore_core::{Reranker, Result};

/// A passage a search returned, ranked.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The document it belongs to.
    pub document: String,
    /// Its text.
    pub text: String,
}

/// How negatives are chosen.
#[derive(Clone, Debug)]
pub struct NegativeOptions {
    /// Negatives kept per question.
    pub count: usize,
    /// A candidate whose words overlap the positive's this much (Jaccard) is a copy of it.
    pub max_overlap: f64,
}

impl Default for NegativeOptions {
    fn default() -> Self {
        NegativeOptions { count: 7, max_overlap: 0.8 }
    }
}

/// Picks the hard negatives of `query` from `ranked` (best first): candidates of documents
/// other than the `relevant` ones, that are not near-copies of `positive`, and — when a
/// trained `reranker` is given — that it scores below the positive (one it prefers is more
/// likely an unlabelled answer than a negative).
pub fn hard_negatives(
    query: &str,
    positive: &str,
    relevant: &HashSet<&str>,
    ranked: &[Candidate],
    reranker: Option<&dyn Reranker>,
    options: &NegativeOptions,
) -> Result<Vec<String>> {
    let positive_words = words(positive);
    let mut seen = HashSet::new();
    let candidates: Vec<&Candidate> = ranked
        .iter()
        .filter(|c| !relevant.contains(c.document.as_str()))
        .filter(|c| seen.insert(c.text.as_str()))
        .filter(|c| jaccard(&positive_words, &words(&c.text)) < options.max_overlap)
        .take(options.count * 2)
        .collect();
    let kept: Vec<&Candidate> = match reranker {
        None => candidates,
        Some(reranker) => {
            let mut texts = vec![positive];
            texts.extend(candidates.iter().map(|c| c.text.as_str()));
            let scores = reranker.score(query, &texts)?;
            candidates.into_iter().zip(&scores[1..]).filter(|(_, s)| **s < scores[0]).map(|(c, _)| c).collect()
        }
    };
    Ok(kept.into_iter().take(options.count).map(|c| c.text.clone()).collect())
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 { 1.0 } else { a.intersection(b).count() as f64 / union as f64 }
}
