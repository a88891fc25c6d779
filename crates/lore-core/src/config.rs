use serde::{Deserialize, Serialize};

use crate::GenerationOptions;

/// How documents are cut into chunks. In a TOML or JSON config, `kind` names the chunker
/// (`kind = "recursive"`) and the other fields are its settings; most have defaults.
///
/// Every chunker keeps Markdown table rows (lines starting with `|`) whole, and a chunk that
/// starts inside a table repeats the table's header row and separator row first. Chunkers that
/// take a `unit` measure sizes in characters (the default) or in the embedder's tokens, as the
/// embedder's own tokenizer counts the document (a remote embedder has none).
///
/// Besides `source` and `heading_path`, some chunkers give each chunk a `context` metadata
/// string: the text the generator should read in place of the chunk's `text`, which is what is
/// embedded and searched. `parent-child` chunks also carry `parent`, the ordinal of their parent
/// within the document, so that children of one parent can share one copy of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChunkConfig {
    /// The classic tutorial chunker: split on newlines, drop empty lines, and concatenate lines
    /// until a chunk reaches `chunk_size` characters. A shorter trailing remainder is kept unless
    /// `drop_remainder` is set (the tutorial drops it).
    ParagraphMerge {
        /// The length in characters at which a chunk is closed.
        chunk_size: usize,
        /// Drop the text after the last full chunk. Default false.
        #[serde(default)]
        drop_remainder: bool,
    },
    /// Windows of `size` embedder tokens, each starting `size - overlap` tokens after the last.
    TokenWindow {
        /// Tokens per window.
        size: usize,
        /// Tokens a window shares with the one before; smaller than `size`.
        overlap: usize,
    },
    /// Each document is one chunk (truncated by the embedder to its maximum length).
    Whole,
    /// Cuts text at the coarsest boundaries that make every piece fit `chunk_size`: paragraph
    /// breaks, then line breaks, then sentence ends (`. ! ?` before a space, `。！？；`), then
    /// clause marks (`,` and `;` before a space, `，`), then spaces, then characters; then merges
    /// neighbouring pieces back together up to `chunk_size`. Chunks may span headings.
    Recursive {
        /// The largest chunk, in `unit`s. Default 512.
        #[serde(default = "default_chunk_size")]
        chunk_size: usize,
        /// How much of a chunk's end the next chunk repeats, in `unit`s, counted in whole
        /// pieces; smaller than `chunk_size`. Default 0.
        #[serde(default)]
        overlap: usize,
        /// Default `"chars"`.
        #[serde(default)]
        unit: SizeUnit,
    },
    /// `recursive` within each section: a chunk never spans a heading.
    HeadingAware {
        /// The largest chunk, in `unit`s, heading prefix included (the prefix may take at most
        /// half of it). Default 512.
        #[serde(default = "default_chunk_size")]
        chunk_size: usize,
        /// As for `recursive`. Default 0.
        #[serde(default)]
        overlap: usize,
        /// Default `"chars"`.
        #[serde(default)]
        unit: SizeUnit,
        /// Embed each chunk as `H1 > H2 > H3` and a newline before its text, so that the
        /// headings help retrieval; the generator gets the text alone (as `context`). Default true.
        #[serde(default = "yes")]
        prefix_headings: bool,
    },
    /// Splits text into sentences and embeds each with `buffer` sentences on either side; a
    /// chunk ends where the cosine distance between neighbouring windows is above the
    /// `breakpoint_percentile`-th percentile of all such distances in the document (a change of
    /// topic). Needs the embedder.
    Semantic {
        /// Default 95.
        #[serde(default = "default_breakpoint_percentile")]
        breakpoint_percentile: f32,
        /// Sentences on each side embedded with a sentence to smooth the distances. Default 1.
        #[serde(default = "default_buffer")]
        buffer: usize,
        /// A chunk shorter than this, in `unit`s, is not ended at a breakpoint. Default 100.
        #[serde(default = "default_min_chunk_size")]
        min_chunk_size: usize,
        /// A longer chunk is cut further as `recursive` would. Default 1000.
        #[serde(default = "default_max_chunk_size")]
        max_chunk_size: usize,
        /// Default `"chars"`.
        #[serde(default)]
        unit: SizeUnit,
    },
    /// Each sentence is a chunk, so that it is retrieved on its own meaning; its `context` is
    /// the sentence with `window` sentences on either side.
    SentenceWindow {
        /// Default 3.
        #[serde(default = "default_window")]
        window: usize,
    },
    /// `recursive` chunks of `parent_size` are each cut into `recursive` children of
    /// `child_size`; the children are embedded and searched, and each carries its parent as
    /// `context` and the parent's ordinal as `parent`.
    ParentChild {
        /// In `unit`s, smaller than `parent_size`. Default 256.
        #[serde(default = "default_child_size")]
        child_size: usize,
        /// In `unit`s. Default 2000.
        #[serde(default = "default_parent_size")]
        parent_size: usize,
        /// Default `"chars"`.
        #[serde(default)]
        unit: SizeUnit,
    },
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: false }
    }
}

/// What chunk sizes count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeUnit {
    /// Unicode characters.
    #[default]
    Chars,
    /// The embedder's tokens (special tokens excluded).
    Tokens,
}

fn default_chunk_size() -> usize {
    512
}
fn yes() -> bool {
    true
}
fn default_breakpoint_percentile() -> f32 {
    95.0
}
fn default_buffer() -> usize {
    1
}
fn default_min_chunk_size() -> usize {
    100
}
fn default_max_chunk_size() -> usize {
    1000
}
fn default_window() -> usize {
    3
}
fn default_child_size() -> usize {
    256
}
fn default_parent_size() -> usize {
    2000
}

/// Every knob of the question-answering pipeline. A leaderboard row is a named `PipelineConfig`,
/// and every field has a default, so a TOML file names only what it changes:
///
/// ```toml
/// top_k = 5
/// [retrieval]
/// mode = "hybrid"
/// [rerank]
/// kind = "llm"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// How many chunks are given to the generator.
    pub top_k: usize,
    /// Dense hits scoring below this cosine similarity are dropped before fusion.
    pub min_score: f32,
    /// How a collection built for this pipeline cuts documents. `None`: the collection's own
    /// setting, and for an evaluation dataset, each corpus record as one chunk (BEIR records are
    /// passages already) or the default chunker for a folder of documents.
    pub chunking: Option<ChunkConfig>,
    /// Embedder name or path for a collection built for this pipeline; `None`: the default.
    pub embedder: Option<String>,
    /// Chat model name, path or `openai:MODEL@URL`; `None`: the default.
    pub llm: Option<String>,
    /// How candidates are searched for.
    pub retrieval: RetrievalConfig,
    /// Whether and how the question is rewritten before searching.
    pub rewrite: RewriteConfig,
    /// Whether and how candidates are reordered before the top `top_k` are kept.
    pub rerank: RerankConfig,
    /// The instructions the generator gets.
    pub prompt: PromptStyle,
    /// When the passages are too weak to answer from, so Lore refuses without generating.
    pub answerability: Answerability,
    /// How each sentence of the answer is checked against the passage it cites.
    pub verification: Verification,
    /// What happens when the generator refuses.
    pub refusal: RefusalCheck,
    /// How the answer is sampled.
    pub generation: GenerationOptions,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            top_k: 5,
            min_score: 0.0,
            chunking: None,
            embedder: None,
            llm: None,
            retrieval: RetrievalConfig::default(),
            rewrite: RewriteConfig::default(),
            rerank: RerankConfig::default(),
            prompt: PromptStyle::default(),
            answerability: Answerability::default(),
            verification: Verification::default(),
            refusal: RefusalCheck::default(),
            generation: GenerationOptions::default(),
        }
    }
}

/// Which retrievers run, and how their lists are fused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Which retrievers run.
    pub mode: RetrievalMode,
    /// How the lists of a hybrid search or of several queries are merged.
    pub fusion: Fusion,
    /// The `k` of reciprocal-rank fusion: a document's score is the sum of `weight / (k + rank)`.
    /// 10 rather than the customary 60: measured better on SciFact's train split and on CMRC2018,
    /// equal on HotpotQA (see docs/benchmarks.md, "Fusion").
    pub rrf_k: f32,
    /// Candidates taken from the dense retriever before fusion or reranking.
    pub dense_depth: usize,
    /// Candidates taken from the keyword retriever before fusion or reranking.
    pub keyword_depth: usize,
    /// How much the dense list counts in fusion (the `weight` above, or the factor of its
    /// scaled scores).
    pub dense_weight: f32,
    /// How much the keyword list counts in fusion.
    pub keyword_weight: f32,
    /// Candidates taken from the graph retriever before fusion or reranking.
    pub graph_depth: usize,
    /// How much the graph list counts in fusion.
    pub graph_weight: f32,
    /// What the summaries of `lore collections themes` do in a search.
    pub themes: ThemeUse,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            mode: RetrievalMode::Dense,
            fusion: Fusion::Rrf,
            rrf_k: 10.0,
            dense_depth: 50,
            keyword_depth: 50,
            dense_weight: 1.0,
            keyword_weight: 1.0,
            graph_depth: 50,
            graph_weight: 1.0,
            themes: ThemeUse::Auto,
        }
    }
}

/// What theme documents (summaries of groups of chunks, sources `lore:theme/N`) do in a search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThemeUse {
    /// Kept, ahead of the passages, for a question about the collection as a whole: one of
    /// them comes first in the fused list, or the question's words ask what the collection
    /// holds ("what are these documents about?"). Otherwise taken out of every list before
    /// fusion, so that a specific question gets passages only.
    #[default]
    Auto,
    /// Ranked like any passage.
    Always,
    /// Never searched.
    Never,
}

/// Which retrievers search a collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetrievalMode {
    /// Cosine similarity of embeddings.
    #[default]
    Dense,
    /// BM25 over the collection's keyword index.
    Keyword,
    /// Both, fused.
    Hybrid,
    /// The collection's entity graph alone: the chunks linked to the entities the query names,
    /// and to the entities those chunks name (see [`crate::GraphSettings`]).
    Graph,
    /// Dense, BM25 and the graph, fused.
    HybridGraph,
}

impl RetrievalMode {
    /// Whether the dense retriever runs.
    pub fn dense(self) -> bool {
        matches!(self, RetrievalMode::Dense | RetrievalMode::Hybrid | RetrievalMode::HybridGraph)
    }

    /// Whether the keyword (BM25) retriever runs.
    pub fn keyword(self) -> bool {
        matches!(self, RetrievalMode::Keyword | RetrievalMode::Hybrid | RetrievalMode::HybridGraph)
    }

    /// Whether the graph retriever runs.
    pub fn graph(self) -> bool {
        matches!(self, RetrievalMode::Graph | RetrievalMode::HybridGraph)
    }
}

/// How ranked lists of hits are merged into one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fusion {
    /// Reciprocal-rank fusion: uses ranks only, so scores of different scales mix safely.
    #[default]
    Rrf,
    /// Weighted sum of scores scaled to 0..1 per list.
    MinMax,
    /// Weighted sum of scores standardised per list (mean 0, standard deviation 1).
    ZScore,
}

/// Questions rewritten by the chat model before retrieval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewriteConfig {
    /// The rewrite, if any.
    pub kind: RewriteKind,
    /// How many rewrites `multi-query` asks for (the original question is always searched too).
    pub queries: usize,
    /// How many follow-up searches `multi-hop` may make, one per round.
    pub rounds: usize,
}

impl Default for RewriteConfig {
    fn default() -> Self {
        RewriteConfig { kind: RewriteKind::None, queries: 3, rounds: 2 }
    }
}

/// How the chat model rewrites a question before retrieval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewriteKind {
    /// The question is searched as asked.
    #[default]
    None,
    /// Embed a hypothetical answer written by the chat model instead of the question.
    Hyde,
    /// Search several rewrites of the question and fuse the lists.
    MultiQuery,
    /// Search a more general question alongside the original.
    StepBack,
    /// Search, have the chat model read the best passages and name what they still lack (the
    /// bridge entity of a multi-hop question, or a follow-up question), search that too, for at
    /// most `rounds` rounds, and fuse every list.
    MultiHop,
}

/// Reordering of the retrieved candidates before the top `top_k` are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    /// The reranker, if any.
    pub kind: RerankKind,
    /// How many fused candidates are reranked.
    pub candidates: usize,
    /// Cross-encoder folder (HF layout) for `kind = "cross-encoder"`.
    pub model: Option<String>,
    /// MMR's trade-off: 1 is pure relevance, 0 pure diversity.
    pub mmr_lambda: f32,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig { kind: RerankKind::None, candidates: 20, model: None, mmr_lambda: 0.7 }
    }
}

/// What reorders the retrieved candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RerankKind {
    /// The fused order is kept.
    #[default]
    None,
    /// A BERT sequence-classification model scores each (query, passage) pair.
    CrossEncoder,
    /// The chat model's probability of answering "yes" to "is this passage relevant?".
    Llm,
    /// Maximal marginal relevance: trades relevance against similarity to passages already picked.
    Mmr,
}

/// The answerability gate: before generating, the evidence that the passages answer the question
/// is scored from 0 to 1 (the calibrated reranker's probability for the best passage when the
/// pipeline has one, else a logistic model over how much of the question's words the best
/// passages contain); below `min_evidence` Lore refuses without calling the generator
/// and shows the nearest passages. The default weights and threshold were fitted on development
/// halves of CMRC2018, SciFact and HotpotQA-100 with each question's gold passage present and
/// removed (docs/evaluation.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Answerability {
    /// Refuse without generating below this evidence score; 0 turns the gate off.
    pub min_evidence: f32,
    /// The logistic model of the evidence score.
    pub weights: GateWeights,
}

/// The logistic model of [`Answerability`]: `score = 1 / (1 + exp(-z))` with
/// `z = bias + coverage·c + sentence_coverage·w`, where `c` is the largest share of the
/// question's content words one of the three best passages holds and `w` the largest share
/// two consecutive sentences of one hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateWeights {
    /// The constant term.
    pub bias: f32,
    /// Weight of the largest share of the question's words one passage contains.
    pub coverage: f32,
    /// Weight of the largest share two consecutive sentences of one passage contain.
    pub sentence_coverage: f32,
}

impl Default for Answerability {
    fn default() -> Self {
        Answerability { min_evidence: 0.2, weights: GateWeights::default() }
    }
}

impl Default for GateWeights {
    fn default() -> Self {
        GateWeights { bias: -3.294, coverage: 3.186, sentence_coverage: 3.384 }
    }
}

/// Verification of the answer: it is split into sentences and each is checked against the
/// passages it cites. A sentence claims its own words as the answer to the question, so its
/// claim is its words (Chinese: character pairs) with the question's content words, and a
/// passage supports it when three consecutive sentences of the passage hold `min_support` of
/// them. A sentence its cited passage does not support is credited to the passage that does, or
/// removed; an answer left with nothing becomes the refusal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Verification {
    /// Check the answer's sentences. Default true.
    pub enabled: bool,
    /// The share of a sentence's claim that three consecutive sentences of its passage must
    /// hold, from 0 to 1.
    pub min_support: f32,
}

impl Default for Verification {
    fn default() -> Self {
        Verification { enabled: true, min_support: 0.5 }
    }
}

/// A second look at refusals. Small models told that they may refuse also refuse questions their
/// passages answer (qwen-0.5b and qwen-1.5b both refuse the first RAG-Arena question, whose answer
/// is in the top passage); asked without that instruction they answer it, but also invent answers
/// to questions the passages do not cover. So when the generator refuses, it is asked again
/// without the instruction, and that answer replaces the refusal only if it is taken from the
/// passages: at least `min_support` of its words (Chinese: character pairs) that are not in the
/// question occur in them. It is asked only when the evidence that the passages answer is
/// strong ([`Answerability`]'s score at least `min_evidence`). When, with evidence that strong,
/// the answer still ends as a refusal (the second look failed too, or verification removed every
/// sentence), Lore can quote the passage sentences that hold the most of the question's words
/// instead: a small model fails to write an answer its passage holds more often than a passage
/// that strong fails to hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefusalCheck {
    /// Ask again without the permission to refuse when the generator refuses. Default true.
    pub recheck: bool,
    /// Quote the closest passage sentences instead of refusing, from the same evidence on.
    /// Default true.
    pub quote: bool,
    /// The evidence score from which a refusal is questioned (asked again, or quoted).
    pub min_evidence: f32,
    /// The share of the new answer's words that must occur in the passages, from 0 to 1.
    /// Default 0.6.
    pub min_support: f32,
}

impl Default for RefusalCheck {
    fn default() -> Self {
        RefusalCheck { recheck: true, quote: true, min_evidence: 0.5, min_support: 0.6 }
    }
}

/// The instructions the generator gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptStyle {
    /// Lore's prompt: answer from the numbered sources, cite them as `[n]`, or refuse.
    #[default]
    Cited,
    /// The RAG-Arena tutorial's prompt: answer strictly from the reference documents or refuse;
    /// no citations asked for.
    Tutorial,
}

impl Fusion {
    /// The name used in configuration files and explanations (`rrf`, `min-max`, `z-score`).
    pub fn name(self) -> &'static str {
        match self {
            Fusion::Rrf => "rrf",
            Fusion::MinMax => "min-max",
            Fusion::ZScore => "z-score",
        }
    }
}

impl RerankKind {
    /// The name used in configuration files and explanations (`none`, `cross-encoder`, `llm`, `mmr`).
    pub fn name(self) -> &'static str {
        match self {
            RerankKind::None => "none",
            RerankKind::CrossEncoder => "cross-encoder",
            RerankKind::Llm => "llm",
            RerankKind::Mmr => "mmr",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialised_names() {
        for fusion in [Fusion::Rrf, Fusion::MinMax, Fusion::ZScore] {
            assert_eq!(serde_json::to_value(fusion).unwrap(), fusion.name());
        }
        for kind in [RerankKind::None, RerankKind::CrossEncoder, RerankKind::Llm, RerankKind::Mmr] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }
}
