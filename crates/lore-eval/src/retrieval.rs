use std::collections::{BTreeMap, HashMap, HashSet};

use lore_core::Hit;
use serde::Serialize;

use crate::Qrels;

/// Retrieved documents per query id, each with its score (higher is better), in any order.
pub type Run = HashMap<String, Vec<(String, f32)>>;

/// The retrieval metrics of one query, or their mean over queries, at one cutoff `k`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrievalMetrics {
    /// The cutoff: only the top `k` documents count.
    pub k: usize,
    /// nDCG@k with linear gains.
    pub ndcg: f64,
    /// Recall@k: the share of the relevant documents in the top k.
    pub recall: f64,
    /// MRR@k: the reciprocal rank of the first relevant document in the top k (0 if none).
    pub mrr: f64,
    /// MAP@k: average precision at the relevant documents found, over all relevant ones.
    pub map: f64,
    /// P@k: the share of the top k that is relevant.
    pub precision: f64,
}

/// The retrieval metrics of a run, per query and averaged, at each cutoff asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrievalReport {
    /// Per evaluated query, one entry per cutoff in the order asked.
    pub per_query: BTreeMap<String, Vec<RetrievalMetrics>>,
    /// The mean over the evaluated queries, one entry per cutoff (zeros when none was evaluated).
    pub mean: Vec<RetrievalMetrics>,
}

/// Scores `run` against `qrels` at each cutoff in `ks`, as trec_eval (and so pytrec_eval and
/// BEIR) does: documents are ranked by score compared in single precision, ties broken by
/// document id in descending byte order; a document's grade is its gain (linear, negative grades
/// count as 0) and it is relevant when its grade is at least 1. Queries with no relevant document
/// are not evaluated; a judged query missing from the run scores 0. A document listed twice for a
/// query counts once, at its best score.
pub fn evaluate(run: &Run, qrels: &Qrels, ks: &[usize]) -> RetrievalReport {
    let no_hits = Vec::new();
    let per_query: BTreeMap<String, Vec<RetrievalMetrics>> = qrels
        .iter()
        .filter(|(_, judged)| judged.values().any(|&grade| grade > 0))
        .map(|(query, judged)| {
            let ranking = rank(run.get(query).unwrap_or(&no_hits));
            let grades: Vec<i32> = ranking.iter().map(|(doc, _)| judged.get(*doc).copied().unwrap_or(0)).collect();
            (query.clone(), ks.iter().map(|&k| metrics_at(k, &grades, judged)).collect())
        })
        .collect();
    let mean = ks
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let n = per_query.len().max(1) as f64;
            let sum = |metric: fn(&RetrievalMetrics) -> f64| per_query.values().map(|m| metric(&m[i])).sum::<f64>() / n;
            RetrievalMetrics {
                k,
                ndcg: sum(|m| m.ndcg),
                recall: sum(|m| m.recall),
                mrr: sum(|m| m.mrr),
                map: sum(|m| m.map),
                precision: sum(|m| m.precision),
            }
        })
        .collect();
    RetrievalReport { per_query, mean }
}

/// Document-level results from chunk-level hits: each document (`Hit::source`) scores its best
/// chunk's score. Returned in ranking order.
pub fn best_chunk_per_document(hits: &[Hit]) -> Vec<(String, f32)> {
    let mut best: HashMap<&str, f32> = HashMap::new();
    for hit in hits {
        let score = best.entry(hit.source.as_str()).or_insert(hit.score);
        *score = score.max(hit.score);
    }
    rank(&best.into_iter().map(|(doc, score)| (doc.to_string(), score)).collect::<Vec<_>>())
        .into_iter()
        .map(|(doc, score)| (doc.to_string(), score))
        .collect()
}

/// trec_eval's order (`comp_sim_docno` in `form_res_rels.c`): score descending, then document id
/// descending by `strcmp`; duplicates after the first occurrence dropped.
fn rank(results: &[(String, f32)]) -> Vec<(&str, f32)> {
    // Adding 0.0 turns -0.0 into 0.0, which trec_eval's `>` treats as equal but `total_cmp` not.
    let mut ranked: Vec<(&str, f32)> = results.iter().map(|(doc, score)| (doc.as_str(), score + 0.0)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(a.0)));
    let mut seen = HashSet::new();
    ranked.retain(|(doc, _)| seen.insert(*doc));
    ranked
}

/// The metrics at cutoff `k` of a ranking given as the grades of its documents, in rank order.
fn metrics_at(k: usize, grades: &[i32], judged: &HashMap<String, i32>) -> RetrievalMetrics {
    let relevant_total = judged.values().filter(|&&g| g > 0).count() as f64;
    let top = &grades[..k.min(grades.len())];
    let gain = |grade: i32| f64::from(grade.max(0));
    let discount = |rank0: usize| ((rank0 + 2) as f64).log2();

    let dcg: f64 = top.iter().enumerate().map(|(i, &g)| gain(g) / discount(i)).sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, &g)| gain(g) / discount(i)).sum();

    let mut found = 0usize;
    let mut precision_sum = 0.0;
    let mut first_relevant = None;
    for (i, _) in top.iter().enumerate().filter(|(_, g)| **g > 0) {
        found += 1;
        precision_sum += found as f64 / (i + 1) as f64;
        first_relevant.get_or_insert(i + 1);
    }
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    RetrievalMetrics {
        k,
        ndcg: ratio(dcg, idcg),
        recall: ratio(found as f64, relevant_total),
        mrr: first_relevant.map_or(0.0, |rank| 1.0 / rank as f64),
        map: ratio(precision_sum, relevant_total),
        precision: ratio(found as f64, k as f64),
    }
}
