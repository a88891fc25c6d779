//! The graph retriever: from the entities a query names, along the collection's graph, to the
//! chunks about them and about the entities those chunks name.

use std::collections::{HashMap, HashSet};

use lore_core::{Entity, Filter, Hit, LinkQuery, Result, Retriever, RetrieverQuery, Store};

use crate::extract::{key_within, query_keys};

/// The metadata field of a graph hit that says how the graph reached it, e.g.
/// `"kiss and tell" → chunk 812 names "shirley temple" → about it`.
pub const PATH_FIELD: &str = "graph_path";

/// How many of the best chunks reached from the query's entities are followed to the entities
/// they name (the second hop).
const ENTITY_SEEDS: usize = 5;
/// How many of BM25's first hits are followed too: they find the first hop of a question that
/// describes its subject instead of naming it.
const KEYWORD_SEEDS: usize = 3;
/// What a link is worth at the second hop, against the first.
const SECOND_HOP: f32 = 0.5;
/// Entities linked to more chunks than this are not followed: they say little about any one
/// chunk (`United States` in an encyclopedia) and would cost a search of every chunk.
const MAX_ENTITY_CHUNKS: usize = 200;

/// Chunks of documents about the entities a query names, and about the entities that the
/// chunks it finds name: the passage a multi-hop question bridges to (the question names a film,
/// the film's passage names an actress, her own passage holds the answer). Two hops along the
/// collection's entity graph: the entities the query names (the longest names it matches) lead
/// to the chunks of documents about them (titled by them); those chunks and BM25's first hits
/// lead, through the entities they name, to the chunks of documents about those. A path adds
/// `ln(1 + chunks / entity's chunks)` (rare entities count more), halved at the second hop and
/// scaled by how good the chunk it came through was. Each hit's [`PATH_FIELD`] holds its best
/// path.
///
/// Chunks that merely name an entity are walked through but not returned: BM25 finds those
/// already, and returning them too took `hybrid-graph` on SciFact's training questions from
/// nDCG@10 0.725 to 0.681 (`hybrid`: 0.726).
///
/// The collection must keep a graph ([`lore_core::GraphSettings`]). Only chunks passing the
/// filter are returned or followed.
pub struct GraphRetriever<'a> {
    store: &'a dyn Store,
}

impl<'a> GraphRetriever<'a> {
    /// Walks `store`'s entity graph.
    pub fn new(store: &'a dyn Store) -> Self {
        GraphRetriever { store }
    }
}

/// A chunk's score so far and its best path.
#[derive(Default)]
struct Reached {
    score: f32,
    best: f32,
    path: String,
}

impl Reached {
    fn add(&mut self, weight: f32, path: impl FnOnce() -> String) {
        self.score += weight;
        if weight > self.best {
            self.best = weight;
            self.path = path();
        }
    }
}

impl Retriever for GraphRetriever<'_> {
    fn name(&self) -> &str {
        "graph"
    }

    fn needs_vector(&self) -> bool {
        false
    }

    fn retrieve(&self, query: RetrieverQuery<'_>, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let store = self.store;
        store.check_graph()?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let total = store.stats()?.chunks.max(1) as f32;
        let idf = |entity: &Entity| (total / entity.chunks.max(1) as f32).ln_1p();
        let readable = |hit: &Hit| filter.is_none_or(|f| f.matches(&hit.metadata));

        let matched = store.entities(&query_keys(query.text))?;
        let named: Vec<&Entity> = matched
            .iter()
            .filter(|e| e.chunks <= MAX_ENTITY_CHUNKS && !matched.iter().any(|o| key_within(&e.name, &o.name)))
            .collect();
        let named_ids: Vec<i64> = named.iter().map(|e| e.id).collect();

        let mut reached: HashMap<i64, Reached> = HashMap::new();
        for link in store.links(LinkQuery::Entities(&named_ids))?.into_iter().filter(|l| l.about) {
            let path = || format!("\"{}\" → about it", link.entity.name);
            reached.entry(link.chunk_id).or_default().add(idf(&link.entity), path);
        }

        // The second hop starts from the best readable chunks reached, each weighing its score
        // over the best one's, and from BM25's first hits, weighing 1, 1/2, 1/3.
        let mut first: Vec<(i64, f32)> = reached.iter().map(|(&id, r)| (id, r.score)).collect();
        first.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = first.first().map_or(1.0, |f| f.1);
        let mut seeds: Vec<(i64, f32, String)> = Vec::new();
        for (id, score) in first {
            if seeds.len() == ENTITY_SEEDS {
                break;
            }
            if store.chunk(id)?.is_some_and(|hit| readable(&hit)) {
                seeds.push((id, score / top, reached[&id].path.clone()));
            }
        }
        for (rank, hit) in store.search_keyword(query.text, KEYWORD_SEEDS, filter)?.into_iter().enumerate() {
            if !seeds.iter().any(|s| s.0 == hit.chunk_id) {
                seeds.push((hit.chunk_id, 1.0 / (rank + 1) as f32, format!("BM25 #{}", rank + 1)));
            }
        }

        // Each entity the seeds name, once, through the best seed naming it.
        let seed_ids: Vec<i64> = seeds.iter().map(|s| s.0).collect();
        let named_set: HashSet<i64> = named_ids.iter().copied().collect();
        let mut bridges: HashMap<i64, (Entity, usize)> = HashMap::new();
        for link in store.links(LinkQuery::Chunks(&seed_ids))? {
            if named_set.contains(&link.entity.id) || link.entity.chunks > MAX_ENTITY_CHUNKS {
                continue;
            }
            let seed = seed_ids.iter().position(|&id| id == link.chunk_id).expect("a link of a seed");
            let entry = bridges.entry(link.entity.id).or_insert((link.entity.clone(), seed));
            if seeds[seed].1 > seeds[entry.1].1 {
                entry.1 = seed;
            }
        }
        let bridge_ids: Vec<i64> = bridges.keys().copied().collect();
        for link in store.links(LinkQuery::Entities(&bridge_ids))?.into_iter().filter(|l| l.about) {
            let (entity, seed) = &bridges[&link.entity.id];
            let (seed_id, seed_weight, seed_path) = &seeds[*seed];
            if link.chunk_id == *seed_id {
                continue;
            }
            let weight = SECOND_HOP * seed_weight * idf(entity);
            reached
                .entry(link.chunk_id)
                .or_default()
                .add(weight, || format!("{seed_path} → chunk {seed_id} names \"{}\" → about it", entity.name));
        }

        let mut ranked: Vec<(i64, Reached)> = reached.into_iter().collect();
        ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        let mut hits = Vec::with_capacity(k);
        for (chunk_id, found) in ranked {
            if hits.len() == k {
                break;
            }
            let Some(mut hit) = store.chunk(chunk_id)? else { continue };
            if readable(&hit) {
                hit.score = found.score;
                hit.metadata.insert(PATH_FIELD.into(), found.path.into());
                hits.push(hit);
            }
        }
        Ok(hits)
    }
}
