//! Evaluation runs: a dataset's corpus ingested once into a collection of its own, then its
//! queries ranked ([`Engine::eval_retrieval`]), its questions answered and scored
//! ([`Engine::eval_qa`], [`Engine::eval_context`]), or given answers judged
//! ([`Engine::judge_answers`]). Each returns a record a front end prints or serialises.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lore_core::{AnswerChecks, Embedder, Error, Filter, GraphExtractor, PipelineConfig, Result, Store};
use lore_eval::{
    AnsweredQuestion, CUTOFFS, Dataset, Grounding, GroundingMetric, Half, Judge, JudgeSummary, Judgement, Mean, QaItem,
    QaReport, Qrels, Query, Unscored, answer_question, answer_retrieved, as_run, chunk_depth, collection_name,
    evaluate, headline_metrics, rank_documents, sample,
};
use lore_rag::{Evidence, Pipeline, Source};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Engine, Progress, Session};

/// Which dataset, split and sample to evaluate on.
#[derive(Clone, Debug)]
pub struct DatasetRequest {
    /// BEIR layout (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv, answers.jsonl) or RAG-Arena
    /// layout (docs/*.txt, qa.json).
    pub dir: PathBuf,
    /// The qrels split of a BEIR dataset.
    pub split: String,
    /// A fixed sample of this many queries or questions (the same on every run).
    pub limit: Option<usize>,
    /// Only the questions of this half (taken before the sample).
    pub half: Option<Half>,
}

impl DatasetRequest {
    /// Reads the dataset.
    pub fn load(&self) -> Result<Dataset> {
        Dataset::load(&self.dir, &self.split)
    }

    /// The name of the dataset folder, for reports.
    pub fn name(&self) -> String {
        let dir = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
    }

    /// The questions evaluated: all those with gold answers, or the sample of them.
    pub fn questions(&self, dataset: &Dataset) -> Result<Vec<QaItem>> {
        if dataset.qa().is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} has no questions with answers (answers.jsonl or qa.json)",
                self.dir.display()
            )));
        }
        let items: Vec<QaItem> =
            dataset.qa().iter().filter(|q| self.half.is_none_or(|half| half.holds(&q.id))).cloned().collect();
        Ok(match self.limit {
            Some(n) => sample(&items, n, |q| q.id.as_str()),
            None => items,
        })
    }

    /// The judged queries (the sample of them) with their judgements; `None` without qrels.
    pub fn judged(&self, dataset: &Dataset) -> Option<(Vec<Query>, Qrels)> {
        let (queries, qrels) = dataset.judged()?;
        let queries: Vec<Query> =
            queries.iter().filter(|q| self.half.is_none_or(|half| half.holds(&q.id))).cloned().collect();
        let queries = match self.limit {
            Some(n) => sample(&queries, n, |q| q.id.as_str()),
            None => queries,
        };
        let qrels = qrels_of(qrels, &queries);
        Some((queries, qrels))
    }
}

/// The judgements of `queries` only, so that a sample is scored on itself.
pub fn qrels_of(qrels: &Qrels, queries: &[Query]) -> Qrels {
    queries.iter().filter_map(|q| qrels.get(&q.id).map(|judged| (q.id.clone(), judged.clone()))).collect()
}

/// The collection a dataset is evaluated in, with the embedder that built it.
pub struct EvalIndex {
    /// The collection's name (made of the dataset's, the embedder's and the chunking).
    pub name: String,
    /// The collection.
    pub store: Arc<dyn Store>,
    /// Its embedder.
    pub embedder: Arc<dyn Embedder>,
    /// How long bringing it in step with the dataset took.
    pub ingest_seconds: f64,
    /// Chunks embedded by this run (0 when the collection was up to date).
    pub embedded_chunks: usize,
}

impl EvalIndex {
    /// A session over this collection with pipeline `config`, its chat model `llm` loaded when
    /// the pipeline or `answering` needs it.
    pub fn session(
        &self,
        engine: &Engine,
        pipeline: &str,
        config: PipelineConfig,
        llm: &str,
        answering: bool,
    ) -> Result<Session> {
        let pipeline = (pipeline.to_string(), config);
        let (name, store, embedder) = (self.name.clone(), self.store.clone(), self.embedder.clone());
        engine.assemble_session(name, store, embedder, pipeline, llm.to_string(), answering)
    }

    /// The number of chunks to retrieve so that [`lore_eval::RETRIEVAL_DEPTH`] documents come back.
    pub fn chunk_depth(&self) -> Result<usize> {
        let stats = self.store.stats()?;
        Ok(chunk_depth(stats.documents, stats.chunks))
    }
}

/// What [`Engine::eval_retrieval`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct RetrievalEval {
    /// The dataset folder's name.
    pub dataset: String,
    /// The qrels split.
    pub split: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The collection searched.
    pub collection: String,
    /// Queries scored.
    pub queries: usize,
    /// The headline metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Where the time went.
    pub timings: Value,
    /// The headline metrics in the order a table shows them.
    #[serde(skip)]
    pub headline: Vec<(String, f64)>,
    /// Each query's metrics, top 10 documents and relevant documents, one JSON object each.
    #[serde(skip)]
    pub per_query: Vec<Value>,
}

/// What [`Engine::eval_qa`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct QaEval {
    /// The dataset folder's name.
    pub dataset: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The generator.
    pub llm: String,
    /// The judge, if answers were judged.
    pub judge: Option<String>,
    /// The collection searched.
    pub collection: String,
    /// Questions answered.
    pub questions: usize,
    /// The scores.
    pub report: QaReport,
    /// Each question's answer, passages and scores.
    #[serde(skip)]
    pub answered: Vec<AnsweredQuestion>,
}

/// What [`Engine::eval_context`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct ContextEval {
    /// The dataset folder's name.
    pub dataset: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The collection searched.
    pub collection: String,
    /// Questions retrieved for.
    pub questions: usize,
    /// How often a gold answer appears in the passages the generator would read.
    pub answer_in_context: Mean,
    /// Mean retrieval time.
    pub retrieval_ms_per_question: f64,
}

/// What [`Engine::eval_answerability`] measured: each question asked with its gold documents in
/// the collection (answerable) and with them filtered out (unanswerable by construction).
#[derive(Clone, Debug, Serialize)]
pub struct AnswerabilityEval {
    /// The dataset folder's name.
    pub dataset: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The generator, when answers were generated; `None`: only the gate decided.
    pub llm: Option<String>,
    /// The collection searched.
    pub collection: String,
    /// Questions asked (each twice).
    pub questions: usize,
    /// Share refused with the gold documents present (should be low).
    pub refused_present: f64,
    /// Share refused with the gold documents removed (should be high).
    pub refused_removed: f64,
    /// Of those, the shares the gate refused before generating.
    pub gated_present: f64,
    /// The same with the gold documents removed.
    pub gated_removed: f64,
    /// Each question's two outcomes.
    pub per_question: Vec<AnswerabilityItem>,
}

/// One question of an [`AnswerabilityEval`].
#[derive(Clone, Debug, Serialize)]
pub struct AnswerabilityItem {
    /// The query id.
    pub id: String,
    /// The question.
    pub question: String,
    /// With its gold documents in the collection.
    pub present: AnswerabilityOutcome,
    /// With its gold documents filtered out.
    pub removed: AnswerabilityOutcome,
}

/// What happened to one question in one condition.
#[derive(Clone, Debug, Serialize)]
pub struct AnswerabilityOutcome {
    /// The evidence the gate read.
    pub evidence: Evidence,
    /// The answer was a refusal (by the gate, the generator or verification).
    pub refused: bool,
    /// The gate refused before generating.
    pub gated: bool,
    /// The answer, when one was generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// How the generated answer was checked, sentence by sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<AnswerChecks>,
}

/// What [`Engine::judge_answers`] found.
#[derive(Clone, Debug, Serialize)]
pub struct JudgeEval {
    /// The judge model.
    pub judge: String,
    /// Answers judged.
    pub items: usize,
    /// The means.
    pub summary: JudgeSummary,
    /// Each answer's judgement, or why it could not be scored.
    pub judgements: Vec<std::result::Result<Judgement, Unscored>>,
}

/// How answers are scored beyond the answer metrics.
#[derive(Clone, Debug, Default)]
pub struct Scoring {
    /// Grade each answer against the gold answer with this chat model.
    pub judge: Option<String>,
    /// Also compute these grounding metrics, with the judge (else the generator).
    pub grounding: Option<Vec<GroundingMetric>>,
}

/// One line of a file of answers to judge.
#[derive(Deserialize)]
struct AnswerToJudge {
    question: String,
    gold: String,
    answer: String,
}

impl Engine {
    /// Opens (or creates) the collection `config` is evaluated in and brings it in step with
    /// the dataset's documents: new or changed documents are embedded, documents no longer in
    /// the dataset are removed.
    pub fn eval_index(
        &self,
        dataset_dir: &Path,
        dataset: &Dataset,
        config: &PipelineConfig,
        progress: &dyn Progress,
    ) -> Result<EvalIndex> {
        let embedder_name = self.settings().embedder_or(config.embedder.as_deref());
        let chunking = config.chunking.clone().unwrap_or_else(|| dataset.default_chunking());
        let name = collection_name(dataset_dir, &embedder_name, &chunking);
        let embedder = self.models().embedder(&embedder_name)?;
        let store = match self.catalog().open(&name) {
            Ok(store) => store,
            Err(e) if e.kind() == lore_core::ErrorKind::NotFound => {
                self.catalog().create(&name, &embedder_name, embedder.dimension(), chunking.clone())?
            }
            Err(e) => return Err(e),
        };
        let built = store.manifest().chunking;
        if built != chunking {
            return Err(Error::InvalidInput(format!(
                "collection {name} cuts documents with {built:?}, not {chunking:?}: delete it with \
                 `lore collections delete {name}`"
            )));
        }
        if config.retrieval.mode.graph() && store.manifest().search.graph.extractor == GraphExtractor::Off {
            // An evaluation collection is the engine's own: it gains the graph the pipeline walks.
            let mut search = store.manifest().search;
            search.graph.extractor = GraphExtractor::Names;
            store.configure(search)?;
        }
        let wanted: HashSet<&str> = dataset.documents().iter().map(|d| d.source.as_str()).collect();
        // Themes (`lore collections themes` run on this collection) summarise the dataset's own
        // documents, and stay so that pipelines are measured with them; they are not rebuilt
        // here (running that command again is what drops the documents that left).
        let is_stale = |source: &str| !wanted.contains(source) && !lore_rag::is_theme_source(source);
        for stale in store.documents()?.into_iter().filter(|d| is_stale(&d.source)) {
            store.delete_document(&stale.source)?;
        }
        let target = crate::sync::IngestTarget::new(&name, store.clone(), embedder.clone());
        let started = Instant::now();
        let report = target.ingest(dataset.documents().iter().cloned().map(Source::Document).collect(), progress)?;
        if let Some((source, reason)) = report.failed.first() {
            return Err(Error::InvalidInput(format!(
                "{} documents could not be ingested, the first {source}: {reason}",
                report.failed.len()
            )));
        }
        Ok(EvalIndex {
            name,
            store,
            embedder,
            ingest_seconds: started.elapsed().as_secs_f64(),
            embedded_chunks: report.chunks,
        })
    }

    /// Where judge and grounding replies are cached, so that a rerun costs no model calls.
    pub fn reply_cache(&self) -> Result<PathBuf> {
        let dir = self.home().join("eval-cache");
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        Ok(dir.join("replies.jsonl"))
    }

    /// Retrieval metrics of `pipeline` on the judged queries of `request`'s dataset; `llm`
    /// rewrites or reranks where the pipeline asks (over the pipeline's own).
    pub fn eval_retrieval(
        &self,
        request: &DatasetRequest,
        pipeline: &str,
        llm: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<RetrievalEval> {
        let dataset = request.load()?;
        let Some((queries, qrels)) = request.judged(&dataset) else {
            return Err(Error::InvalidInput(format!(
                "{} has no relevance judgements (qrels/), so retrieval cannot be scored on it; \
                 `lore eval qa` measures retrieval there as answer-in-context",
                request.dir.display()
            )));
        };
        let (pipeline_name, mut config) = lore_rag::load_pipeline(pipeline)?;
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        config.top_k = index.chunk_depth()?;
        let llm = self.settings().llm_or(&[llm, config.llm.as_deref()]);
        let session = index.session(self, &pipeline_name, config, &llm, false)?;
        let pipeline = session.pipeline()?;

        progress.start("retrieving", queries.len());
        let started = Instant::now();
        let mut done = 0;
        let ranked = rank_documents(&pipeline, &queries, &mut || {
            done += 1;
            progress.update(done, "");
        });
        progress.finish();
        let ranked = ranked?;
        let query_seconds = started.elapsed().as_secs_f64();
        let report = evaluate(&as_run(&ranked), &qrels, &CUTOFFS);
        let headline = headline_metrics(&report.mean);
        let per_query = ranked
            .iter()
            .filter_map(|result| {
                let metrics = report.per_query.get(&result.query_id)?;
                let judged = &qrels[&result.query_id];
                Some(json!({
                    "query_id": result.query_id,
                    "metrics": headline_metrics(metrics).into_iter().collect::<BTreeMap<_, _>>(),
                    "top10": result.documents.iter().take(10).map(|(doc, score)| {
                        json!({"document": doc, "score": score, "grade": judged.get(doc)})
                    }).collect::<Vec<_>>(),
                    "relevant": judged.iter().filter(|(_, g)| **g > 0).map(|(d, _)| d).collect::<Vec<_>>(),
                }))
            })
            .collect();
        let n = ranked.len().max(1) as f64;
        let mean = |pick: fn(&lore_core::Timings) -> f64| ranked.iter().map(|r| pick(&r.timings)).sum::<f64>() / n;
        let timings = json!({
            "ingest_s": index.ingest_seconds,
            "embedded_chunks": index.embedded_chunks,
            "queries_s": query_seconds,
            "rewrite_ms_per_query": mean(|t| t.rewrite_ms),
            "embed_ms_per_query": mean(|t| t.embed_ms),
            "search_ms_per_query": mean(|t| t.search_ms),
            "rerank_ms_per_query": mean(|t| t.rerank_ms),
        });
        Ok(RetrievalEval {
            dataset: request.name(),
            split: request.split.clone(),
            pipeline: pipeline_name,
            collection: index.name,
            queries: report.per_query.len(),
            metrics: headline.iter().cloned().collect(),
            timings,
            headline,
            per_query,
        })
    }

    /// Answers the questions of `request`'s dataset with `pipeline` and generator `llm` (over
    /// the pipeline's), and scores the answers.
    pub fn eval_qa(
        &self,
        request: &DatasetRequest,
        pipeline: &str,
        llm: Option<&str>,
        scoring: &Scoring,
        progress: &dyn Progress,
    ) -> Result<QaEval> {
        let dataset = request.load()?;
        let items = request.questions(&dataset)?;
        let (pipeline_name, config) = lore_rag::load_pipeline(pipeline)?;
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        let llm = self.settings().llm_or(&[llm, config.llm.as_deref()]);
        let session = index.session(self, &pipeline_name, config, &llm, true)?;
        let answered = self.answer_all(&session, &items, scoring, "answering", progress)?;
        Ok(QaEval {
            dataset: request.name(),
            pipeline: pipeline_name,
            llm,
            judge: scoring.judge.clone(),
            collection: index.name,
            questions: answered.len(),
            report: QaReport::of(&answered),
            answered,
        })
    }

    /// Answers `items` in `session` (made for answering), scoring each answer as `scoring` says.
    pub fn answer_all(
        &self,
        session: &Session,
        items: &[QaItem],
        scoring: &Scoring,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Vec<AnsweredQuestion>> {
        let chat = session.chat.as_deref().ok_or_else(|| {
            Error::InvalidInput("this session was not opened for answering: it has no chat model".into())
        })?;
        let cache = self.reply_cache()?;
        let judge_model = scoring.judge.as_deref().map(|name| self.models().chat(name)).transpose()?;
        let judge = judge_model.as_deref().map(|model| Judge::new(model, Some(&cache))).transpose()?;
        let grounding = scoring
            .grounding
            .as_deref()
            .map(|metrics| {
                Grounding::new(judge_model.as_deref().unwrap_or(chat), session.embedder.as_ref(), Some(&cache))
                    .map(|grounding| grounding.with_metrics(metrics))
            })
            .transpose()?;
        let pipeline = session.pipeline()?;
        progress.start(what, items.len());
        let mut answered = Vec::with_capacity(items.len());
        for item in items {
            let outcome =
                answer_question(&pipeline, session.store.as_ref(), chat, item, judge.as_ref(), grounding.as_ref());
            answered.push(outcome.inspect_err(|_| progress.finish())?);
            progress.update(answered.len(), "");
        }
        progress.finish();
        Ok(answered)
    }

    /// Only retrieves for the questions of `request`'s dataset: how often a gold answer is in
    /// the passages the generator would read. For pipelines that use no chat model.
    pub fn eval_context(
        &self,
        request: &DatasetRequest,
        pipeline: &str,
        progress: &dyn Progress,
    ) -> Result<ContextEval> {
        let dataset = request.load()?;
        let items = request.questions(&dataset)?;
        let (pipeline_name, config) = lore_rag::load_pipeline(pipeline)?;
        if Pipeline::needs_chat(&config) {
            return Err(Error::InvalidInput(format!(
                "pipeline {pipeline_name} rewrites or reranks with a chat model, which --context-only does not run"
            )));
        }
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        let pipeline = Pipeline::new(index.store.as_ref(), index.embedder.as_ref(), config)?;
        progress.start("retrieving", items.len());
        let started = Instant::now();
        let mut found = Vec::with_capacity(items.len());
        for (done, item) in items.iter().enumerate() {
            found.extend(answer_retrieved(&pipeline, item)?.map(|hit| Some(f64::from(hit))));
            progress.update(done + 1, "");
        }
        progress.finish();
        Ok(ContextEval {
            dataset: request.name(),
            pipeline: pipeline_name,
            collection: index.name,
            questions: items.len(),
            answer_in_context: Mean::of(found),
            retrieval_ms_per_question: started.elapsed().as_secs_f64() * 1e3 / items.len().max(1) as f64,
        })
    }

    /// Asks each judged question of `request`'s dataset that has a relevant document twice, with
    /// its gold documents (qrels) in the collection and filtered out, and counts the refusals: only the answerability gate's
    /// with `llm` `None`, whole answers (gate, generator, verification) with a generator.
    pub fn eval_answerability(
        &self,
        request: &DatasetRequest,
        pipeline: &str,
        llm: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<AnswerabilityEval> {
        let dataset = request.load()?;
        let (queries, qrels) = request.judged(&dataset).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} has no qrels/{}.tsv: removing each question's gold documents needs them",
                request.dir.display(),
                request.split
            ))
        })?;
        let (pipeline_name, config) = lore_rag::load_pipeline(pipeline)?;
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        let generator = llm.map(|name| self.settings().llm_or(&[Some(name), config.llm.as_deref()]));
        let chat_name = generator.clone().unwrap_or_else(|| self.settings().llm_or(&[config.llm.as_deref()]));
        let session = index.session(self, &pipeline_name, config, &chat_name, generator.is_some())?;
        let ask = |question: &str, filter: Option<Filter>| -> Result<AnswerabilityOutcome> {
            let mut pipeline = session.pipeline()?;
            if let Some(filter) = filter {
                pipeline = pipeline.with_filter(filter);
            }
            let retrieval = pipeline.retrieve(question)?;
            let evidence = pipeline.evidence(question, &retrieval);
            match session.chat.as_deref() {
                Some(chat) if generator.is_some() => {
                    let answer = pipeline.answer_from(chat, question, &retrieval, &mut |_| {})?;
                    Ok(AnswerabilityOutcome {
                        evidence,
                        refused: answer.refused,
                        gated: answer.checks.gated,
                        answer: Some(answer.text),
                        checks: Some(answer.checks),
                    })
                }
                _ => {
                    let gated = evidence.gated;
                    Ok(AnswerabilityOutcome { evidence, refused: gated, gated, answer: None, checks: None })
                }
            }
        };
        progress.start("asking", queries.len());
        let mut per_question = Vec::with_capacity(queries.len());
        for (done, query) in queries.iter().enumerate() {
            progress.update(done, "");
            let gold: Vec<Filter> = qrels
                .get(&query.id)
                .into_iter()
                .flatten()
                .filter(|(_, grade)| **grade > 0)
                .map(|(doc, _)| !Filter::source(doc.clone()))
                .collect();
            if gold.is_empty() {
                // No document answers it: there is nothing to remove.
                continue;
            }
            let outcome = ask(&query.text, None).and_then(|present| {
                Ok(AnswerabilityItem {
                    id: query.id.clone(),
                    question: query.text.clone(),
                    present,
                    removed: ask(&query.text, Some(Filter::All(gold)))?,
                })
            });
            per_question.push(outcome.inspect_err(|_| progress.finish())?);
        }
        progress.finish();
        let share = |f: &dyn Fn(&AnswerabilityItem) -> bool| {
            per_question.iter().filter(|item| f(item)).count() as f64 / per_question.len().max(1) as f64
        };
        Ok(AnswerabilityEval {
            dataset: request.name(),
            pipeline: pipeline_name,
            llm: generator.clone(),
            collection: index.name.clone(),
            questions: per_question.len(),
            refused_present: share(&|item| item.present.refused),
            refused_removed: share(&|item| item.removed.refused),
            gated_present: share(&|item| item.present.gated),
            gated_removed: share(&|item| item.removed.gated),
            per_question,
        })
    }

    /// Grades the answers in the JSON-lines file `input` (one `{"question", "gold", "answer"}`
    /// per line) with chat model `judge`.
    pub fn judge_answers(&self, input: &Path, judge: &str, progress: &dyn Progress) -> Result<JudgeEval> {
        let text = std::fs::read_to_string(input).map_err(Error::io(input))?;
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let parsed: AnswerToJudge = serde_json::from_str(line).map_err(|e| Error::Parse {
                path: input.display().to_string(),
                reason: format!("line {}: expected {{\"question\", \"gold\", \"answer\"}}: {e}", i + 1),
            })?;
            lines.push(parsed);
        }
        let chat = self.models().chat(judge)?;
        let grader = Judge::new(chat.as_ref(), Some(&self.reply_cache()?))?;
        progress.start("judging", lines.len());
        let mut judgements = Vec::with_capacity(lines.len());
        for line in &lines {
            let outcome = grader.judge(&line.question, &line.gold, &line.answer);
            judgements.push(outcome.inspect_err(|_| progress.finish())?);
            progress.update(judgements.len(), "");
        }
        progress.finish();
        Ok(JudgeEval {
            judge: judge.to_string(),
            items: lines.len(),
            summary: JudgeSummary::of(&judgements),
            judgements,
        })
    }
}
