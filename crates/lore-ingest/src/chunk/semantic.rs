use std::ops::Range;

use lore_core::{EmbedKind, Embedder, Error, Result};

use super::split::Splitter;

/// How the semantic chunker decides where a topic changes.
pub(super) struct Breakpoints {
    percentile: f32,
    buffer: usize,
    min_chunk_size: usize,
    max_chunk_size: usize,
}

impl Breakpoints {
    pub(super) fn new(percentile: f32, buffer: usize, min_chunk_size: usize, max_chunk_size: usize) -> Result<Self> {
        if !(0.0..=100.0).contains(&percentile) {
            return Err(Error::InvalidInput(format!("breakpoint_percentile ({percentile}) must be between 0 and 100")));
        }
        if max_chunk_size == 0 || min_chunk_size > max_chunk_size {
            return Err(Error::InvalidInput(format!(
                "max_chunk_size ({max_chunk_size}) must be at least 1 and at least min_chunk_size ({min_chunk_size})"
            )));
        }
        Ok(Breakpoints { percentile, buffer, min_chunk_size, max_chunk_size })
    }
}

/// Chunks of `range` that end where the meaning of neighbouring sentences drifts most; see
/// `ChunkConfig::Semantic`.
pub(super) fn semantic_chunks(
    splitter: &Splitter,
    range: Range<usize>,
    embedder: &dyn Embedder,
    breakpoints: &Breakpoints,
) -> Result<Vec<Range<usize>>> {
    let sentences = splitter.sentences(range);
    let Some(end) = sentences.last().map(|s| s.end) else { return Ok(Vec::new()) };
    let distances = if sentences.len() > 1 {
        window_distances(splitter.text, &sentences, embedder, breakpoints.buffer)?
    } else {
        Vec::new()
    };
    let threshold = percentile(&distances, breakpoints.percentile);
    let mut groups = Vec::new();
    let mut first = 0;
    for (i, distance) in distances.iter().enumerate() {
        let group = sentences[first].start..sentences[i].end;
        if *distance > threshold && splitter.measure.of(group.clone()) >= breakpoints.min_chunk_size {
            groups.push(group);
            first = i + 1;
        }
    }
    groups.push(sentences[first].start..end);
    Ok(groups
        .into_iter()
        .flat_map(|group| {
            if splitter.measure.of(group.clone()) > breakpoints.max_chunk_size {
                splitter.recursive(group, breakpoints.max_chunk_size, 0)
            } else {
                vec![group]
            }
        })
        .collect())
}

/// The cosine distance between each sentence's window (the sentence with `buffer` sentences on
/// either side) and the next sentence's.
fn window_distances(
    text: &str,
    sentences: &[Range<usize>],
    embedder: &dyn Embedder,
    buffer: usize,
) -> Result<Vec<f32>> {
    let last = sentences.len() - 1;
    let windows: Vec<&str> = (0..sentences.len())
        .map(|i| &text[sentences[i.saturating_sub(buffer)].start..sentences[(i + buffer).min(last)].end])
        .collect();
    let vectors = embedder.embed(&windows, EmbedKind::Passage)?;
    if vectors.len() != windows.len() {
        return Err(Error::Model(format!(
            "embedder '{}' returned {} vectors for {} texts",
            embedder.id(),
            vectors.len(),
            windows.len()
        )));
    }
    Ok(vectors.windows(2).map(|pair| 1.0 - cosine(&pair[0], &pair[1])).collect())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    // A zero vector (a window of nothing the model knows) is unrelated to anything.
    if norms > 0.0 { dot / norms } else { 0.0 }
}

/// The `p`-th percentile of `values`, interpolating linearly between ranks (as NumPy does);
/// infinity for no values, so that nothing is above it.
fn percentile(values: &[f32], p: f32) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let Some(top) = sorted.len().checked_sub(1) else { return f32::INFINITY };
    let rank = p / 100.0 * top as f32;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (rank - below as f32)
}
