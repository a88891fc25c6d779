//! How a collection's search indexes are built and queried, kept in its store.

use std::path::PathBuf;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The settings of a collection's keyword (BM25) and dense (HNSW) indexes. In JSON or TOML
/// every field may be left out for its default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// The keyword (BM25) index.
    pub keyword: KeywordSettings,
    /// The dense index's approximate search.
    pub ann: AnnSettings,
    /// The graph of entities named in the chunks, for graph retrieval.
    pub graph: GraphSettings,
}

/// Whether a collection keeps a graph of the entities its chunks name: each entity linked to
/// the chunks that mention it, and to the chunks of documents about it (titled by it). Graph
/// retrieval (`mode = "graph"` or `"hybrid-graph"`) walks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphSettings {
    /// How entities are found in chunks. Turning it on extracts them from every stored chunk;
    /// after that each write updates the graph with the chunks it adds or removes.
    pub extractor: GraphExtractor,
    /// The chat model the `llm` extractor asks (a registry name, a path, an `openai:` spec);
    /// `None` for the default chat model. Kept with the collection so that every ingest reads
    /// entities the same way.
    pub model: Option<String>,
}

/// How a collection finds the entities its chunks name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphExtractor {
    /// No graph is kept.
    #[default]
    Off,
    /// Names found without a model: capitalised phrases in alphabetic scripts, jieba's person,
    /// place, organisation and other proper-noun words in Chinese, and each document's title.
    Names,
    /// As `Names`, and also the entities a chat model (`graph.model`) read when the chunks were
    /// ingested, kept with their relations in each chunk's metadata (`entities`, `relations`).
    Llm,
}

/// How a collection's keyword (BM25) index cuts and weighs terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeywordSettings {
    /// How text is cut into terms. Changing it rebuilds the keyword index.
    pub analyzer: Analyzer,
    /// A jieba user dictionary (one `word [frequency [tag]]` a line) for Chinese text: domain
    /// words it lists are kept whole. Its contents are part of the analyzer.
    pub user_dictionary: Option<PathBuf>,
    /// BM25 term-frequency saturation: how much a term's tenth occurrence adds over its first.
    pub k1: f32,
    /// BM25 length normalisation, from 0 (none) to 1 (full).
    pub b: f32,
}

/// How text is cut into the terms that BM25 counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Analyzer {
    /// Words (runs of letters and digits), lower-cased, Lucene's 33 English stop words
    /// removed, Snowball (Porter 2) stemmed: `running` and `runs` are both `run`.
    English,
    /// jieba word segmentation in search mode (a long word also yields the words inside it),
    /// lower-cased.
    Chinese,
    /// Each run of CJK ideographs is segmented as `chinese`, the rest analysed as `english`,
    /// so `Qwen3 的上下文长度 running` gives `qwen3 的 上下 下文 上下文 长度 run`.
    #[default]
    Mixed,
}

/// When a collection searches an HNSW graph instead of comparing every vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnMode {
    /// Always exact.
    Off,
    /// HNSW from `min_vectors` vectors on, exact below.
    #[default]
    Auto,
    /// Always HNSW.
    On,
}

/// The HNSW graph (Malkov & Yashunin 2016) used for large collections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnSettings {
    /// When the graph is used instead of an exact search.
    pub mode: AnnMode,
    /// In `auto` mode, the number of vectors from which the graph is used.
    pub min_vectors: usize,
    /// Links per node and layer (twice as many on the bottom layer).
    pub m: usize,
    /// Candidates examined when a vector is linked in: build quality against build time.
    pub ef_construction: usize,
    /// Candidates examined per query (at least k): recall against latency. On SciFact's e5-small
    /// vectors recall@10 is 0.971 at 32 and 0.997 at 128; on a million noisy copies of them (a
    /// hard case: clusters of near-equidistant points) 0.84 at 128 and 0.95 at 512.
    pub ef_search: usize,
    /// What the embedded store's dense index keeps in memory.
    pub vectors: VectorMemory,
}

/// What the embedded store's dense index keeps in memory for each vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorMemory {
    /// The vector in 32-bit floats and its 8-bit code: searches score in memory.
    #[default]
    F32,
    /// Only the 8-bit code, a fifth of the memory: searches rank by the codes, then read the
    /// exact vectors of the best candidates from the store to score them.
    Int8,
}

impl Default for KeywordSettings {
    fn default() -> Self {
        KeywordSettings { analyzer: Analyzer::default(), user_dictionary: None, k1: 1.2, b: 0.75 }
    }
}

impl Default for AnnSettings {
    fn default() -> Self {
        AnnSettings {
            mode: AnnMode::Auto,
            min_vectors: 20_000,
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            vectors: VectorMemory::F32,
        }
    }
}

impl SearchSettings {
    /// Error unless every setting is within its range.
    pub fn check(&self) -> Result<()> {
        let KeywordSettings { k1, b, .. } = self.keyword;
        if !(k1.is_finite() && k1 >= 0.0) {
            return Err(Error::InvalidInput(format!("BM25 k1 = {k1}: use a number of at least 0 (1.2 is usual)")));
        }
        if !(0.0..=1.0).contains(&b) {
            return Err(Error::InvalidInput(format!("BM25 b = {b}: use a number from 0 to 1 (0.75 is usual)")));
        }
        let ann = &self.ann;
        if !(2..=128).contains(&ann.m) {
            return Err(Error::InvalidInput(format!("HNSW m = {}: use 2 to 128 (16 is usual)", ann.m)));
        }
        if ann.ef_construction == 0 || ann.ef_search == 0 {
            return Err(Error::InvalidInput("HNSW ef_construction and ef_search must be at least 1".into()));
        }
        Ok(())
    }
}
