//! A hierarchical navigable small world graph (Malkov & Yashunin 2016) over the rows of a
//! [`Vectors`] table: nodes are row numbers, so the vectors are stored once, for the exact
//! scan and the graph alike.
//!
//! Written here rather than taken from a crate because the graph must share the rows (no second
//! copy of 1.5 GB at a million vectors), search under an arbitrary row filter, survive deletes
//! (deleted rows stay as waypoints until the graph is rebuilt), and load from a damaged file
//! with an error instead of a crash.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};

use crate::vectors::{Vectors, dot};

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

    pub fn reserve(&mut self, nodes: usize) {
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

    /// Links row `node` (the next row of `vectors`, whose chunk id is `id`) into the graph.
    pub fn insert(&mut self, vectors: &Vectors, node: u32, id: i64) {
        debug_assert_eq!(node as usize, self.len());
        let level = self.level_for(id);
        self.levels.push(level);
        self.bottom.extend(std::iter::repeat_n(u32::MAX, 2 * self.m));
        self.bottom_len.push(0);
        self.upper.push(vec![Vec::new(); usize::from(level)]);
        let Some(mut entry) = self.entry else {
            self.entry = Some(node);
            return;
        };
        let query = vectors.row(node as usize);
        let top = self.top_level();
        for layer in (usize::from(level) + 1..=top).rev() {
            entry = self.greedy(vectors, query, entry, layer);
        }
        for layer in (0..=usize::from(level).min(top)).rev() {
            let found = self.search_layer(vectors, query, entry, self.ef_construction, layer, |_| true);
            entry = found[0].node;
            let capacity = if layer == 0 { 2 * self.m } else { self.m };
            let chosen = self.diverse(vectors, &found, self.m);
            let links: Vec<u32> = chosen.iter().map(|s| s.node).collect();
            self.set_links(node, layer, &links);
            for &neighbour in &links {
                let mut theirs: Vec<u32> = self.links(neighbour, layer).to_vec();
                if theirs.len() < capacity {
                    theirs.push(node);
                } else {
                    let around = vectors.row(neighbour as usize);
                    let mut candidates: Vec<Scored> = theirs
                        .iter()
                        .chain([&node])
                        .map(|&n| Scored { similarity: dot(around, vectors.row(n as usize)), node: n })
                        .collect();
                    candidates.sort_unstable_by(|a, b| b.cmp(a));
                    theirs = self.diverse(vectors, &candidates, capacity).iter().map(|s| s.node).collect();
                }
                self.set_links(neighbour, layer, &theirs);
            }
        }
        if usize::from(level) > top {
            self.entry = Some(node);
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
            let row = vectors.row(candidate.node as usize);
            if kept.iter().all(|k| dot(row, vectors.row(k.node as usize)) < candidate.similarity) {
                kept.push(candidate);
            }
        }
        kept
    }

    fn greedy(&self, vectors: &Vectors, query: &[f32], mut node: u32, layer: usize) -> u32 {
        let mut best = dot(query, vectors.row(node as usize));
        loop {
            let mut moved = false;
            for &next in self.links(node, layer) {
                let similarity = dot(query, vectors.row(next as usize));
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
        vectors: &Vectors,
        query: &[f32],
        entry: u32,
        ef: usize,
        layer: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        let mut visited = self.visited.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        visited.start(self.len());
        visited.first_visit(entry);
        let start = Scored { similarity: dot(query, vectors.row(entry as usize)), node: entry };
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
            for &next in self.links(current.node, layer) {
                if !visited.first_visit(next) {
                    continue;
                }
                let similarity = dot(query, vectors.row(next as usize));
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
        }
        self.visited.lock().unwrap_or_else(PoisonError::into_inner).push(visited);
        let mut found: Vec<Scored> = found.into_iter().map(|r| r.0).collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found
    }

    /// The up to `ef` accepted nodes nearest to `query`, best first.
    pub fn search(&self, vectors: &Vectors, query: &[f32], ef: usize, accept: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let Some(mut entry) = self.entry else {
            return Vec::new();
        };
        for layer in (1..=self.top_level()).rev() {
            entry = self.greedy(vectors, query, entry, layer);
        }
        self.search_layer(vectors, query, entry, ef, 0, accept).into_iter().map(|s| (s.node, s.similarity)).collect()
    }
}
