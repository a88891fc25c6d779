//! A hierarchical navigable small world graph (Malkov & Yashunin 2016) over the rows of a
//! [`Vectors`] table: nodes are row numbers, so the vectors are stored once, for the exact
//! scan and the graph alike.
//!
//! Written here rather than taken from a crate because the graph must share the rows (no second
//! copy of 1.5 GB at a million vectors), search under an arbitrary row filter, survive deletes
//! (deleted rows stay as waypoints until the graph is rebuilt), and load from a damaged file
//! with an error instead of a crash.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::vectors::{Code, Target, Vectors, prefetch};

/// A batch is at most this share of the graph already built ...
const BATCH_DIVISOR: usize = 32;
/// ... and at most this many rows: enough to keep the cores busy.
const MAX_BATCH: usize = 256;

/// A node and its similarity to the vector being searched for, ordered by similarity.
#[derive(Clone, Copy, PartialEq)]
struct Scored {
    similarity: f32,
    node: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.similarity.total_cmp(&other.similarity).then(other.node.cmp(&self.node))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Marks of the nodes seen by one search, cleared in O(1) by moving to the next epoch.
#[derive(Default)]
struct Visited {
    epoch_of: Vec<u32>,
    epoch: u32,
    /// The neighbours of the node being expanded that this search had not seen.
    fresh: Vec<u32>,
}

impl Visited {
    fn start(&mut self, nodes: usize) {
        self.epoch_of.resize(nodes, 0);
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.epoch_of.fill(0);
            self.epoch = 1;
        }
    }

    /// True the first time `node` is seen in this search.
    fn first_visit(&mut self, node: u32) -> bool {
        let seen = &mut self.epoch_of[node as usize];
        let first = *seen != self.epoch;
        *seen = self.epoch;
        first
    }
}

/// How many neighbours ahead of the one being scored rows are requested from memory.
const PREFETCH_AHEAD: usize = 3;

pub(crate) struct Hnsw {
    /// Links per node on the upper layers; `2 * m` on the bottom one.
    pub m: usize,
    pub ef_construction: usize,
    /// The top layer of each node.
    pub levels: Vec<u8>,
    /// Bottom-layer links: `2 * m` slots per node, the first `bottom_len[node]` in use.
    pub bottom: Vec<u32>,
    pub bottom_len: Vec<u8>,
    /// Links on layers 1..=level of the nodes that have any: `upper[node][layer - 1]`.
    pub upper: Vec<Vec<Vec<u32>>>,
    pub entry: Option<u32>,
    /// Marks for searches, one per search running at the same time, kept for the next ones.
    visited: Mutex<Vec<Visited>>,
}

impl Hnsw {
    pub fn new(m: usize, ef_construction: usize) -> Hnsw {
        Hnsw {
            m,
            ef_construction,
            levels: Vec::new(),
            bottom: Vec::new(),
            bottom_len: Vec::new(),
            upper: Vec::new(),
            entry: None,
            visited: Mutex::default(),
        }
    }

    /// A graph read back from its parts (see `dense::load`); `None` if they do not fit together.
    pub fn from_parts(
        m: usize,
        ef_construction: usize,
        levels: Vec<u8>,
        bottom: Vec<u32>,
        bottom_len: Vec<u8>,
        upper: Vec<Vec<Vec<u32>>>,
        entry: Option<u32>,
    ) -> Option<Hnsw> {
        let nodes = levels.len();
        let fits = bottom.len() == nodes * 2 * m
            && bottom_len.len() == nodes
            && upper.len() == nodes
            && entry.is_none_or(|e| (e as usize) < nodes)
            && (entry.is_some() || nodes == 0)
            && bottom_len.iter().enumerate().all(|(node, &len)| {
                usize::from(len) <= 2 * m
                    && bottom[node * 2 * m..][..usize::from(len)].iter().all(|&n| (n as usize) < nodes)
            })
            && upper.iter().zip(&levels).all(|(layers, &level)| {
                layers.len() == usize::from(level)
                    && layers.iter().enumerate().all(|(below, links)| {
                        links.iter().all(|&n| (n as usize) < nodes && usize::from(levels[n as usize]) > below)
                    })
            });
        fits.then(|| Hnsw { m, ef_construction, levels, bottom, bottom_len, upper, entry, visited: Mutex::default() })
    }

    fn reserve(&mut self, nodes: usize) {
        self.levels.reserve(nodes);
        self.bottom.reserve(nodes * 2 * self.m);
        self.bottom_len.reserve(nodes);
        self.upper.reserve(nodes);
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    fn top_level(&self) -> usize {
        self.entry.map_or(0, |e| usize::from(self.levels[e as usize]))
    }

    fn links(&self, node: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            let start = node as usize * 2 * self.m;
            &self.bottom[start..start + usize::from(self.bottom_len[node as usize])]
        } else {
            &self.upper[node as usize][layer - 1]
        }
    }

    fn set_links(&mut self, node: u32, layer: usize, links: &[u32]) {
        if layer == 0 {
            let start = node as usize * 2 * self.m;
            self.bottom[start..start + links.len()].copy_from_slice(links);
            self.bottom_len[node as usize] = links.len() as u8;
        } else {
            let list = &mut self.upper[node as usize][layer - 1];
            list.clear();
            list.extend_from_slice(links);
        }
    }

    /// The layer a new node reaches: geometric with ratio 1/m, from a hash of its chunk id
    /// so that a rebuild makes the same graph.
    fn level_for(&self, id: i64) -> u8 {
        let mut h = id as u64 ^ 0x9E37_79B9_7F4A_7C15;
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        let uniform = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let level = -uniform.ln() / (self.m as f64).ln();
        level.min(16.0) as u8
    }

    /// Links the rows of `vectors` that are not in the graph yet, in batches whose searches run
    /// in parallel (see [`Hnsw::link_batch`]). Batch sizes depend on the graph's size alone, so
    /// the graph does not depend on the number of cores.
    pub fn extend(&mut self, vectors: &Vectors) {
        let end = vectors.rows();
        self.reserve(end - self.len());
        while self.len() < end {
            let batch = (self.len() / BATCH_DIVISOR).clamp(1, MAX_BATCH).min(end - self.len());
            self.link_batch(vectors, self.len()..self.len() + batch);
        }
    }

    /// Links `rows` at once. Each finds its candidates by searching the graph as it was before
    /// the batch (in parallel: the graph is only read; walked on codes, the candidates then
    /// scored exactly, as a query is), adds the other rows of the batch to them,
    /// and keeps a diverse `m`; then every neighbour that gained links is pruned back to its
    /// capacity, also in parallel. One row per batch is the paper's insertion, which the first
    /// rows of a graph get; a batch is at most a small share of the graph, so a row misses
    /// little by not seeing its batch's rows in the search.
    fn link_batch(&mut self, vectors: &Vectors, rows: Range<usize>) {
        let nodes: Vec<u32> = rows.map(|row| row as u32).collect();
        for &node in &nodes {
            let level = self.level_for(vectors.ids[node as usize]);
            self.levels.push(level);
            self.bottom.extend(std::iter::repeat_n(u32::MAX, 2 * self.m));
            self.bottom_len.push(0);
            self.upper.push(vec![Vec::new(); usize::from(level)]);
        }
        let entry = *self.entry.get_or_insert(nodes[0]);
        let top = self.top_level();
        let graph = &*self;
        // Per node, per layer from the bottom up: the links it keeps.
        let chosen: Vec<Vec<Vec<u32>>> = nodes
            .par_iter()
            .map(|&node| {
                let target = Target::Row(node as usize);
                let coded = Coded { vectors, query: vectors.code(node as usize) };
                let level = usize::from(graph.levels[node as usize]);
                let mut found = vec![Vec::new(); level + 1];
                if node != entry {
                    let mut from = entry;
                    for layer in (level + 1..=top).rev() {
                        from = graph.greedy(&coded, from, layer);
                    }
                    for layer in (0..=level.min(top)).rev() {
                        let mut candidates = graph.search_layer(&coded, from, graph.ef_construction, layer, |_| true);
                        from = candidates[0].node;
                        score_exactly(vectors, target, &mut candidates);
                        found[layer] = candidates;
                    }
                }
                found
                    .into_iter()
                    .enumerate()
                    .map(|(layer, mut candidates)| {
                        candidates.extend(
                            nodes
                                .iter()
                                .filter(|&&peer| peer != node && usize::from(graph.levels[peer as usize]) >= layer)
                                .map(|&peer| Scored {
                                    similarity: vectors.similarity(target, peer as usize),
                                    node: peer,
                                }),
                        );
                        candidates.sort_unstable_by(|a, b| b.cmp(a));
                        graph.diverse(vectors, &candidates, graph.m).iter().map(|s| s.node).collect()
                    })
                    .collect()
            })
            .collect();
        // (neighbour, layer) -> the batch's nodes that link to it, in a fixed order.
        let mut gained: BTreeMap<(u32, usize), Vec<u32>> = BTreeMap::new();
        for (&node, layers) in nodes.iter().zip(&chosen) {
            for (layer, links) in layers.iter().enumerate() {
                self.set_links(node, layer, links);
                for &neighbour in links {
                    gained.entry((neighbour, layer)).or_default().push(node);
                }
            }
        }
        let graph = &*self;
        let pruned: Vec<((u32, usize), Vec<u32>)> = gained
            .into_par_iter()
            .map(|((neighbour, layer), new)| {
                let mut theirs = graph.links(neighbour, layer).to_vec();
                theirs.extend(new.into_iter().filter(|node| !graph.links(neighbour, layer).contains(node)));
                let capacity = if layer == 0 { 2 * graph.m } else { graph.m };
                if theirs.len() > capacity {
                    let around = Target::Row(neighbour as usize);
                    let mut candidates: Vec<Scored> = theirs
                        .iter()
                        .map(|&n| Scored { similarity: vectors.similarity(around, n as usize), node: n })
                        .collect();
                    candidates.sort_unstable_by(|a, b| b.cmp(a));
                    theirs = graph.diverse(vectors, &candidates, capacity).iter().map(|s| s.node).collect();
                }
                ((neighbour, layer), theirs)
            })
            .collect();
        for ((neighbour, layer), links) in pruned {
            self.set_links(neighbour, layer, &links);
        }
        if let Some(&highest) = nodes.iter().max_by_key(|&&node| (self.levels[node as usize], std::cmp::Reverse(node)))
            && usize::from(self.levels[highest as usize]) > top
        {
            self.entry = Some(highest);
        }
    }

    /// The heuristic of the paper's algorithm 4: from `candidates` (best first), keep one only
    /// if it is closer to the target than to every one kept, so links point in many directions.
    fn diverse(&self, vectors: &Vectors, candidates: &[Scored], most: usize) -> Vec<Scored> {
        let mut kept: Vec<Scored> = Vec::with_capacity(most);
        for &candidate in candidates {
            if kept.len() == most {
                break;
            }
            let row = Target::Row(candidate.node as usize);
            if kept.iter().all(|k| vectors.similarity(row, k.node as usize) < candidate.similarity) {
                kept.push(candidate);
            }
        }
        kept
    }

    fn greedy(&self, query: &Coded, mut node: u32, layer: usize) -> u32 {
        let mut best = query.to(node);
        loop {
            let mut moved = false;
            for &next in self.links(node, layer) {
                let similarity = query.to(next);
                if similarity > best {
                    (best, node, moved) = (similarity, next, true);
                }
            }
            if !moved {
                return node;
            }
        }
    }

    /// The `ef` nodes most similar to `query` that `accept` takes, best first, found by a
    /// best-first walk of `layer` from `entry` (through any nodes, accepted or not).
    fn search_layer(
        &self,
        query: &Coded,
        entry: u32,
        ef: usize,
        layer: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        let mut visited = self.visited.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        visited.start(self.len());
        visited.first_visit(entry);
        let start = Scored { similarity: query.to(entry), node: entry };
        let mut frontier = BinaryHeap::from([start]);
        // Worst on top: a min-heap through `Reverse`.
        let mut found: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::new();
        if accept(entry) {
            found.push(std::cmp::Reverse(start));
        }
        while let Some(current) = frontier.pop() {
            if found.len() >= ef && found.peek().is_some_and(|worst| current.similarity < worst.0.similarity) {
                break;
            }
            // Rows are scattered in memory: each is requested a few neighbours before it is
            // scored, so that the reads overlap with the arithmetic instead of stalling it.
            // Likely the next node expanded: its links are requested now.
            if let Some(next) = frontier.peek() {
                prefetch(self.links(next.node, layer));
            }
            let mut fresh = std::mem::take(&mut visited.fresh);
            fresh.clear();
            fresh.extend(self.links(current.node, layer).iter().filter(|&&next| visited.first_visit(next)));
            for &next in fresh.iter().take(PREFETCH_AHEAD) {
                query.prefetch(next);
            }
            for (i, &next) in fresh.iter().enumerate() {
                if let Some(&ahead) = fresh.get(i + PREFETCH_AHEAD) {
                    query.prefetch(ahead);
                }
                let similarity = query.to(next);
                if found.len() < ef || found.peek().is_some_and(|worst| similarity > worst.0.similarity) {
                    let scored = Scored { similarity, node: next };
                    frontier.push(scored);
                    if accept(next) {
                        found.push(std::cmp::Reverse(scored));
                        if found.len() > ef {
                            found.pop();
                        }
                    }
                }
            }
            visited.fresh = fresh;
        }
        self.visited.lock().unwrap_or_else(PoisonError::into_inner).push(visited);
        let mut found: Vec<Scored> = found.into_iter().map(|r| r.0).collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found
    }

    /// The up to `ef` accepted nodes nearest to `query`, best first. The walk compares 8-bit
    /// codes (a quarter of the memory reads); the nodes it finds are then ranked by
    /// [`Vectors::similarity`] (exact, unless the table keeps codes only), which is returned.
    pub fn search(&self, vectors: &Vectors, query: &[f32], ef: usize, accept: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let Some(mut entry) = self.entry else {
            return Vec::new();
        };
        let mut buffer = Vec::new();
        let coded = Coded { vectors, query: Code::of(query, &mut buffer) };
        for layer in (1..=self.top_level()).rev() {
            entry = self.greedy(&coded, entry, layer);
        }
        let mut found = self.search_layer(&coded, entry, ef, 0, accept);
        score_exactly(vectors, Target::Query(query), &mut found);
        found.into_iter().map(|s| (s.node, s.similarity)).collect()
    }
}

/// Replaces the code similarities of the nodes a walk found by [`Vectors::similarity`], rows requested
/// a few nodes ahead, and sorts them best first.
fn score_exactly(vectors: &Vectors, target: Target<'_>, found: &mut [Scored]) {
    let nodes: Vec<u32> = found.iter().map(|s| s.node).collect();
    for &node in nodes.iter().take(PREFETCH_AHEAD) {
        vectors.prefetch(node as usize);
    }
    for (i, scored) in found.iter_mut().enumerate() {
        if let Some(&ahead) = nodes.get(i + PREFETCH_AHEAD) {
            vectors.prefetch(ahead as usize);
        }
        scored.similarity = vectors.similarity(target, scored.node as usize);
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
}

/// Approximate, on the 8-bit codes: for walking the graph, to answer a query or to find a new
/// row's candidates.
struct Coded<'a> {
    vectors: &'a Vectors,
    query: Code<'a>,
}

impl Coded<'_> {
    #[inline]
    fn to(&self, node: u32) -> f32 {
        self.query.dot(self.vectors.code(node as usize))
    }

    /// Asks the processor to bring `node`'s code into its cache.
    #[inline]
    fn prefetch(&self, node: u32) {
        prefetch(self.vectors.code(node as usize).values);
    }
}
