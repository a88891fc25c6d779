//! Merging the ranked lists of several retrievers (and of several phrasings of a question) into one.

use std::collections::HashMap;

use lore_core::{Fusion, Hit};

/// One retriever's hits for one query, best first, and how much its vote counts.
#[derive(Clone, Copy, Debug)]
pub struct WeightedList<'a> {
    /// The retriever's hits, best first.
    pub hits: &'a [Hit],
    /// How much this list counts in the fusion (1.0 for an equal vote).
    pub weight: f32,
}

/// The union of the lists' hits ordered by their fused score (which becomes `Hit::score`),
/// best first, equal scores by ascending chunk id.
///
/// - `Rrf`: a hit scores the sum over the lists holding it of `weight / (rrf_k + rank)`, ranks
///   from 1. Only ranks count, so lists with scores of any scale (cosine, BM25) mix safely.
/// - `MinMax`: each list's scores are scaled to 0..1 (all 1 when they are equal), and a hit
///   scores the weighted sum over the lists.
/// - `ZScore`: each list's scores are standardised (mean 0, standard deviation 1; all 0 when
///   they are equal), and a hit scores the weighted sum.
///
/// In the two score fusions a hit missing from a list gets that list's lowest normalised score:
/// it ranked below everything the list returned, so the list's minimum is the most it could
/// have had (0 for min-max). A lone list keeps its order under every method.
pub fn fuse(lists: &[WeightedList], fusion: Fusion, rrf_k: f32) -> Vec<Hit> {
    let mut fused: HashMap<i64, (Hit, f32)> = HashMap::new();
    let mut missing_floor = 0.0;
    for list in lists {
        let normalised = normalise(list.hits, fusion, rrf_k);
        let floor = match fusion {
            Fusion::Rrf => 0.0,
            _ => normalised.iter().copied().fold(f32::INFINITY, f32::min),
        };
        let floor = if floor.is_finite() { floor } else { 0.0 };
        // Hits seen in earlier lists but not in this one get this list's floor; hits first seen
        // here get the floors of the earlier lists they were missing from.
        let mut present = std::collections::HashSet::with_capacity(list.hits.len());
        for (hit, score) in list.hits.iter().zip(normalised) {
            if !present.insert(hit.chunk_id) {
                continue;
            }
            fused.entry(hit.chunk_id).or_insert_with(|| (Hit { score: 0.0, ..hit.clone() }, missing_floor)).1 +=
                list.weight * score;
        }
        for (id, (_, total)) in fused.iter_mut() {
            if !present.contains(id) {
                *total += list.weight * floor;
            }
        }
        missing_floor += list.weight * floor;
    }
    let mut hits: Vec<Hit> = fused.into_values().map(|(hit, score)| Hit { score, ..hit }).collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk_id.cmp(&b.chunk_id)));
    hits
}

/// Each hit's contribution before weighting, in list order.
fn normalise(hits: &[Hit], fusion: Fusion, rrf_k: f32) -> Vec<f32> {
    let scores = hits.iter().map(|h| h.score);
    match fusion {
        Fusion::Rrf => (1..=hits.len()).map(|rank| 1.0 / (rrf_k + rank as f32)).collect(),
        Fusion::MinMax => {
            let (min, max) =
                scores.clone().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s)));
            let range = max - min;
            scores.map(|s| if range > 0.0 { (s - min) / range } else { 1.0 }).collect()
        }
        Fusion::ZScore => {
            let n = hits.len().max(1) as f32;
            let mean = scores.clone().sum::<f32>() / n;
            let deviation = (scores.clone().map(|s| (s - mean).powi(2)).sum::<f32>() / n).sqrt();
            scores.map(|s| if deviation > 0.0 { (s - mean) / deviation } else { 0.0 }).collect()
        }
    }
}
