//! Running a pipeline over a dataset: the collection it is evaluated in, the documents it ranks
//! per query, and the questions it answers with their scores.

use std::collections::HashSet;
use std::path::Path;

use lore_core::{Answer, ChatModel, ChunkConfig, Error, Result, Store, Timings, detect_language};
use lore_rag::{Pipeline, context_passages};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    Grounding, GroundingScores, GroundingSummary, Judge, JudgeSummary, Judgement, QaItem, QaScores, QaSummary, Query,
    RetrievalMetrics, Run, Unscored, answer_in_context,
};

/// How many documents are ranked per query: the deepest cutoff reported.
pub const RETRIEVAL_DEPTH: usize = 100;
/// The cutoffs the retrieval metrics are computed at.
pub const CUTOFFS: [usize; 5] = [1, 5, 10, 20, 100];

/// The collection a dataset is evaluated in. Only what changes the stored vectors (the embedder
/// and the chunking) is in the name, so that pipelines differing in how they search share one
/// collection and a repeated run embeds nothing: `eval-scifact-e5-small-whole`, or with a
/// chunker `eval-rag_arena_zh-e5-small-paragraph-merge-1a2b3c4d` (a hash of its settings).
pub fn collection_name(dataset_dir: &Path, embedder: &str, chunking: &ChunkConfig) -> String {
    let dataset = dataset_dir
        .canonicalize()
        .ok()
        .and_then(|dir| dir.file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    let settings = serde_json::to_value(chunking).unwrap_or_default();
    let kind = settings.get("kind").and_then(|k| k.as_str()).unwrap_or("chunks").to_string();
    let chunks = if *chunking == ChunkConfig::Whole {
        kind
    } else {
        let digest = Sha256::digest(settings.to_string().as_bytes());
        format!("{kind}-{}", digest[..4].iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    format!("eval-{}-{}-{chunks}", slug(&dataset), slug(embedder))
}

/// Letters, digits, `-` and `_` kept, anything else (path separators, `:` and `@` of a remote
/// model) made a `-`, so the name is one directory.
fn slug(text: &str) -> String {
    let replaced: String =
        text.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    replaced.trim_matches('-').to_string()
}

/// How many chunks to retrieve so that about [`RETRIEVAL_DEPTH`] distinct documents are among
/// them: the depth times the collection's chunks per document, rounded up.
pub fn chunk_depth(documents: usize, chunks: usize) -> usize {
    RETRIEVAL_DEPTH * chunks.div_ceil(documents.max(1)).max(1)
}

/// The documents a pipeline found for one query.
#[derive(Clone, Debug, Serialize)]
pub struct RankedQuery {
    /// The query's id.
    pub query_id: String,
    /// Documents in the order of their best-placed chunk in the pipeline's ranking, with that
    /// chunk's score; at most [`RETRIEVAL_DEPTH`].
    pub documents: Vec<(String, f32)>,
    /// The retrieval's stage times.
    pub timings: Timings,
}

/// Ranks the documents for each query with `pipeline`, whose `top_k` is the number of chunks
/// retrieved (see [`chunk_depth`]); `on_query` is called after each query.
pub fn rank_documents(pipeline: &Pipeline, queries: &[Query], on_query: &mut dyn FnMut()) -> Result<Vec<RankedQuery>> {
    queries
        .iter()
        .map(|query| {
            let found = pipeline.retrieve(&query.text)?;
            let mut seen = HashSet::new();
            let documents: Vec<(String, f32)> = found
                .hits
                .iter()
                .filter(|hit| seen.insert(hit.source.as_str()))
                .take(RETRIEVAL_DEPTH)
                .map(|hit| (hit.source.clone(), hit.score))
                .collect();
            on_query();
            Ok(RankedQuery { query_id: query.id.clone(), documents, timings: found.timings })
        })
        .collect()
}

/// The run [`crate::evaluate`] scores. Each document scores by its place in the pipeline's
/// order, not by its chunk's score: after reranking, the reranked head and the tail behind it
/// carry scores on different scales, and the order is what the pipeline answers with. (With
/// one retriever the two agree, but for exact ties, which the pipeline breaks by chunk id.)
pub fn as_run(ranked: &[RankedQuery]) -> Run {
    ranked
        .iter()
        .map(|r| {
            let n = r.documents.len();
            let scored = r.documents.iter().enumerate().map(|(i, (doc, _))| (doc.clone(), (n - i) as f32)).collect();
            (r.query_id.clone(), scored)
        })
        .collect()
}

/// The metrics BEIR reports, by name (`ndcg@10`, `recall@1` … `recall@100`, `mrr@10`, `map@100`,
/// `p@1`, `p@5`, `p@10`), from metrics computed at [`CUTOFFS`].
pub fn headline_metrics(metrics: &[RetrievalMetrics]) -> Vec<(String, f64)> {
    type Pick = fn(&RetrievalMetrics) -> f64;
    let wanted: [(&str, Pick, &[usize]); 5] = [
        ("ndcg", |m| m.ndcg, &[10]),
        ("recall", |m| m.recall, &[1, 5, 10, 20, 100]),
        ("mrr", |m| m.mrr, &[10]),
        ("map", |m| m.map, &[100]),
        ("p", |m| m.precision, &[1, 5, 10]),
    ];
    let mut named = Vec::new();
    for (name, pick, ks) in wanted {
        for k in ks {
            if let Some(m) = metrics.iter().find(|m| m.k == *k) {
                named.push((format!("{name}@{k}"), pick(m)));
            }
        }
    }
    named
}

/// A passage the generator read, numbered as in its prompt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Passage {
    /// The passage's number in the prompt, `[n]`.
    pub n: usize,
    /// The document the passage comes from.
    pub source: String,
    /// What the generator read: the chunk's text, or the wider context it carries.
    pub text: String,
    /// The chunk's score in the retrieval that found it.
    pub score: f32,
    /// The answer cites `[n]`.
    pub cited: bool,
}

/// One question answered by a pipeline, with what the generator read and the scores.
#[derive(Clone, Debug, Serialize)]
pub struct AnsweredQuestion {
    /// The question and its gold answers.
    pub item: QaItem,
    /// The pipeline's answer, with its citations, timings and token counts.
    pub answer: Answer,
    /// The passages the generator read, in prompt order.
    pub passages: Vec<Passage>,
    /// The LLM-free answer metrics.
    pub scores: QaScores,
    /// With a judge: its grades against the reference answer, or why it gave none.
    pub judgement: Option<std::result::Result<Judgement, Unscored>>,
    /// With grounding metrics asked for.
    pub grounding: Option<GroundingScores>,
}

/// Answers `item` with `pipeline` (built on `collection`) and `chat`, and scores the answer: the
/// LLM-free metrics always, the judge's rubric and the grounding metrics when given.
pub fn answer_question(
    pipeline: &Pipeline,
    collection: &dyn Store,
    chat: &dyn ChatModel,
    item: &QaItem,
    judge: Option<&Judge>,
    grounding: Option<&Grounding>,
) -> Result<AnsweredQuestion> {
    let answer = pipeline.answer(chat, &item.question, &mut |_| {})?;
    let mut passages = Vec::with_capacity(answer.citations.len());
    for citation in &answer.citations {
        let hit = collection.chunk(citation.chunk_id)?.ok_or_else(|| {
            Error::NotFound(format!("chunk {} vanished from the collection during the evaluation", citation.chunk_id))
        })?;
        let text = context_passages(&[hit]).remove(0).text;
        passages.push(Passage {
            n: citation.n,
            source: citation.source.clone(),
            text,
            score: citation.score,
            cited: citation.cited,
        });
    }
    let contexts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let scores = QaScores::of(item, &answer.text, &contexts);
    let judgement = judge.map(|j| j.judge(&item.question, item.reference_answer(), &answer.text)).transpose()?;
    let gold = item.answerable.then(|| item.reference_answer());
    let cited = cited_sentences(&answer, &passages);
    let grounding = grounding.map(|g| g.score(&item.question, &answer.text, gold, &contexts, &cited)).transpose()?;
    Ok(AnsweredQuestion { item: item.clone(), answer, passages, scores, judgement, grounding })
}

/// Each sentence of `answer` with the texts of the passages credited for it: the sentences
/// verification kept, or, when it did not run, the whole answer with the passages it cites.
fn cited_sentences<'a>(answer: &'a Answer, passages: &'a [Passage]) -> Vec<(&'a str, Vec<&'a str>)> {
    let text_of = |n: usize| passages.iter().find(|p| p.n == n).map(|p| p.text.as_str());
    if answer.refused {
        return Vec::new();
    }
    if answer.checks.sentences.is_empty() {
        let cited = passages.iter().filter(|p| p.cited).map(|p| p.text.as_str()).collect();
        return vec![(answer.text.as_str(), cited)];
    }
    answer
        .checks
        .sentences
        .iter()
        .filter(|s| s.kept)
        .map(|s| (s.text.as_str(), s.supported_by.iter().filter_map(|&n| text_of(n)).collect()))
        .collect()
}

/// Whether a gold answer of `item` is in the context `pipeline` retrieves for it, with no
/// answer generated: the LLM-free half of [`answer_question`], cheap enough for every question
/// of a large set. `None` for an unanswerable question.
pub fn answer_retrieved(pipeline: &Pipeline, item: &QaItem) -> Result<Option<bool>> {
    if !item.answerable {
        return Ok(None);
    }
    let passages = context_passages(&pipeline.retrieve(&item.question)?.hits);
    let contexts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    Ok(Some(answer_in_context(&item.answers, &contexts, detect_language(&item.question))))
}

/// The results of a question set: answer metrics, judge and grounding summaries when they were
/// computed, and the cost per question.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QaReport {
    /// The LLM-free answer metrics.
    pub qa: QaSummary,
    /// The judge's summary, when the answers were judged.
    pub judge: Option<JudgeSummary>,
    /// The grounding metrics' summary, when they were computed.
    pub grounding: Option<GroundingSummary>,
    /// Mean milliseconds per question, from the question to the whole answer.
    pub latency_ms: f64,
    /// Mean milliseconds per question spent embedding the question and searching.
    pub retrieval_ms: f64,
    /// Mean milliseconds per question spent writing the answer.
    pub generation_ms: f64,
    /// Mean prompt and answer tokens per question.
    pub prompt_tokens: f64,
    /// Mean answer (completion) tokens per question.
    pub completion_tokens: f64,
}

/// The scores as an indented table, one per line, as `lore eval qa` prints them.
impl std::fmt::Display for QaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let qa = &self.qa;
        let refusal = &qa.refusal;
        writeln!(f, "  exact match        {}", qa.exact_match)?;
        writeln!(f, "  F1                 {}", qa.f1)?;
        writeln!(f, "  ROUGE-L            {}", qa.rouge_l)?;
        writeln!(f, "  answer in context  {}", qa.answer_in_context)?;
        writeln!(
            f,
            "  refusal accuracy   {} (unanswerable: {} refused, {} answered; answerable: {} refused, {} answered)",
            qa.refusal_accuracy.map_or("n/a".into(), |a| format!("{a:.3}")),
            refusal.refused_unanswerable,
            refusal.answered_unanswerable,
            refusal.refused_answerable,
            refusal.answered_answerable
        )?;
        if let Some(judge) = &self.judge {
            writeln!(f, "{judge}")?;
        }
        if let Some(g) = &self.grounding {
            for (metric, mean) in g.values() {
                if let Some(mean) = mean {
                    writeln!(f, "  {:<18} {mean}", metric.name().replace('-', " "))?;
                }
            }
        }
        writeln!(
            f,
            "  latency            {:.0} ms per question (retrieval {:.0} ms, generation {:.0} ms)",
            self.latency_ms, self.retrieval_ms, self.generation_ms
        )?;
        write!(
            f,
            "  tokens             {:.0} prompt + {:.0} answer per question",
            self.prompt_tokens, self.completion_tokens
        )
    }
}

impl QaReport {
    /// Summarises the answered questions: metric summaries and mean costs.
    pub fn of(answered: &[AnsweredQuestion]) -> QaReport {
        let n = answered.len().max(1) as f64;
        let mean = |pick: fn(&AnsweredQuestion) -> f64| answered.iter().map(pick).sum::<f64>() / n;
        let scores: Vec<QaScores> = answered.iter().map(|a| a.scores.clone()).collect();
        let judgements: Vec<_> = answered.iter().filter_map(|a| a.judgement.clone()).collect();
        let grounding: Vec<_> = answered.iter().filter_map(|a| a.grounding.clone()).collect();
        QaReport {
            qa: QaSummary::of(&scores),
            judge: (!judgements.is_empty()).then(|| JudgeSummary::of(&judgements)),
            grounding: (!grounding.is_empty()).then(|| GroundingSummary::of(&grounding)),
            latency_ms: mean(|a| a.answer.timings.total_ms),
            retrieval_ms: mean(|a| a.answer.timings.embed_ms + a.answer.timings.search_ms),
            generation_ms: mean(|a| a.answer.timings.generate_ms),
            prompt_tokens: mean(|a| a.answer.prompt_tokens as f64),
            completion_tokens: mean(|a| a.answer.completion_tokens as f64),
        }
    }
}

/// One of two fixed halves of a question set, chosen by a hash of each question's id: settings
/// are tuned on `Dev` and reported on `Test`, for datasets that have one split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Half {
    /// The half settings are chosen on.
    Dev,
    /// The half kept aside for reporting.
    Test,
}

impl Half {
    /// Whether the question with `id` belongs to this half.
    pub fn holds(self, id: &str) -> bool {
        (Sha256::digest(id.as_bytes())[0] % 2 == 0) == (self == Half::Dev)
    }
}

impl std::str::FromStr for Half {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Half, String> {
        match text {
            "dev" => Ok(Half::Dev),
            "test" => Ok(Half::Test),
            other => Err(format!("no half {other:?}: say dev or test")),
        }
    }
}

/// A fixed pseudo-random sample of `n` of `items` (all of them when there are fewer), in their
/// original order: those whose ids hash lowest. Every run and every pipeline draws the same
/// sample, and it spreads over a dataset whose file is grouped by document, as CMRC2018's is.
pub fn sample<T: Clone>(items: &[T], n: usize, id: impl Fn(&T) -> &str) -> Vec<T> {
    if n >= items.len() {
        return items.to_vec();
    }
    let mut order: Vec<(Vec<u8>, usize)> =
        items.iter().enumerate().map(|(i, item)| (Sha256::digest(id(item).as_bytes()).to_vec(), i)).collect();
    order.sort();
    let mut chosen: Vec<usize> = order.into_iter().take(n).map(|(_, i)| i).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}
