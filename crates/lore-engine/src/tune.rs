//! Tuning on the user's own data: training examples from labels (a BEIR split, feedback
//! triples) or from synthetic questions, hard negatives mined with the collection's own hybrid
//! search, and the runs of `lore_tune` that train an embedder or a reranker on them.

use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lore_core::{Calibration, Error, Fnv1a, Hit, PipelineConfig, RerankKind, Result};
use lore_eval::Query;
use lore_tune::{
    Candidate, Example, Judged, NegativeOptions, Passage, QueryForm, QuestionCache, TrainEvent, TrainOptions,
    TrainReport, fit_calibration, generate_queries, hard_negatives, read_examples, train_embedder, train_reranker,
};
use serde::Serialize;

use crate::eval::{DatasetRequest, EvalIndex};
use crate::{Engine, Progress};

/// Where training examples come from.
#[derive(Clone, Debug)]
pub enum TrainingData {
    /// A BEIR dataset's judged queries (`qrels/SPLIT.tsv`): each relevant document's best chunk
    /// is a positive, and negatives are mined from the dataset's own collection.
    Dataset(DatasetRequest),
    /// JSON lines of examples or of feedback triples (`lore feedback export --format triples`),
    /// used as they are.
    Examples(PathBuf),
}

/// How hard negatives are mined.
#[derive(Clone, Debug)]
pub struct Mining {
    /// Candidates the hybrid search returns per question.
    pub depth: usize,
    /// How many negatives are kept and which are dropped as likely false negatives.
    pub negatives: NegativeOptions,
    /// A trained cross-encoder: negatives it scores above the positive are dropped.
    pub filter_reranker: Option<String>,
}

impl Default for Mining {
    fn default() -> Self {
        Mining { depth: 30, negatives: NegativeOptions::default(), filter_reranker: None }
    }
}

/// A training run.
#[derive(Clone, Debug)]
pub struct TuneRequest {
    /// The examples.
    pub data: TrainingData,
    /// The model trained from: a registry name (`minilm`) or an HF-layout BERT folder.
    pub base: String,
    /// The folder the trained model is written to.
    pub out: PathBuf,
    /// The training settings.
    pub options: TrainOptions,
    /// How negatives are mined (for [`TrainingData::Dataset`]).
    pub mining: Mining,
}

/// Which model a [`TuneRequest`] trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trainee {
    /// A sentence embedder, contrastively.
    Embedder,
    /// A cross-encoder reranker.
    Reranker,
}

/// Synthetic queries (questions, claims) for a collection.
#[derive(Clone, Debug)]
pub struct QuestionsRequest {
    /// The collection whose chunks get queries.
    pub collection: String,
    /// The chat model that writes them.
    pub llm: Option<String>,
    /// The forms of query asked for, each once (questions, claims).
    pub forms: Vec<QueryForm>,
    /// Queries of each form asked per chunk.
    pub per_chunk: usize,
    /// Only a fixed sample of this many chunks (the same on every run).
    pub limit: Option<usize>,
    /// A query is kept only if the collection's hybrid search finds its chunk in this many
    /// hits (0 keeps every query).
    pub keep_top: usize,
    /// The BEIR dataset folder written (and the cache of the model's replies in it).
    pub out: PathBuf,
}

/// What [`Engine::tune_questions`] did.
#[derive(Clone, Debug, Serialize)]
pub struct QuestionsReport {
    /// The dataset folder.
    pub out: PathBuf,
    /// Chunks read.
    pub chunks: usize,
    /// Replies taken from the cache (one per chunk and form).
    pub cached: usize,
    /// Queries the model wrote that passed the text filters (all forms).
    pub written: usize,
    /// Queries kept after the search filter, in the dataset.
    pub kept: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// What sees each judged query's search: the query, its relevant documents, the hits and the
/// collection searched.
type JudgedSearch<'a> = dyn FnMut(&Query, &HashSet<&str>, &[Hit], &EvalIndex) -> Result<()> + 'a;

/// What [`Engine::tune`] did.
#[derive(Clone, Debug, Serialize)]
pub struct TuneReport {
    /// The training run.
    #[serde(flatten)]
    pub training: TrainReport,
    /// The reranker's calibration (a finished reranker run with held-out questions).
    pub calibration: Option<CalibrationReport>,
}

/// A reranker's calibration and how each ordering ranks the held-out questions' candidates.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationReport {
    /// The fitted model, saved as `calibration.json` beside the reranker.
    pub calibration: Calibration,
    /// Held-out questions it was fitted on.
    pub questions: usize,
    /// MRR of the first-stage search's order (with a dataset).
    pub search_mrr: Option<f64>,
    /// MRR of the reranker's raw scores.
    pub reranker_mrr: f64,
    /// MRR of the calibrated probabilities, the order pipelines use.
    pub calibrated_mrr: f64,
}

/// Mean over `lists` of the reciprocal rank of the first relevant candidate when ordered by
/// `key`, highest first (0 for a list without one).
fn mean_reciprocal_rank(lists: &[Vec<Judged>], key: impl Fn(&Judged) -> f32) -> f64 {
    let reciprocal = |list: &Vec<Judged>| {
        let mut order: Vec<&Judged> = list.iter().collect();
        order.sort_by(|a, b| key(b).total_cmp(&key(a)));
        order.iter().position(|j| j.relevant).map_or(0.0, |at| 1.0 / (at + 1) as f64)
    };
    lists.iter().map(reciprocal).sum::<f64>() / lists.len().max(1) as f64
}

impl Engine {
    /// The training examples of `data`: read, or built from a dataset's labels with negatives
    /// mined from its collection.
    pub fn training_examples(
        &self,
        data: &TrainingData,
        mining: &Mining,
        progress: &dyn Progress,
    ) -> Result<Vec<Example>> {
        let request = match data {
            TrainingData::Examples(path) => return read_examples(path),
            TrainingData::Dataset(request) => request,
        };
        let (name, mut config) = lore_rag::load_pipeline("hybrid")?;
        config.top_k = mining.depth;
        let filter = mining.filter_reranker.as_deref().map(|name| self.models().reranker(name)).transpose()?;
        let mut examples = Vec::new();
        let mut mine = |query: &Query, relevant: &HashSet<&str>, hits: &[Hit], index: &EvalIndex| {
            let candidates: Vec<Candidate> =
                hits.iter().map(|h| Candidate { document: h.source.clone(), text: h.text.clone() }).collect();
            for document in relevant {
                // The relevant document's best-ranked chunk, else its first.
                let positive = match hits.iter().find(|h| h.source == *document) {
                    Some(hit) => hit.text.clone(),
                    None => match index.store.stored_document(document)? {
                        Some(stored) if !stored.chunks.is_empty() => stored.chunks[0].text.clone(),
                        _ => continue,
                    },
                };
                let negatives = hard_negatives(
                    &query.text,
                    &positive,
                    relevant,
                    &candidates,
                    filter.as_deref(),
                    &mining.negatives,
                )?;
                examples.push(Example { query: query.text.clone(), positive, negatives });
            }
            Ok(())
        };
        self.search_judged(request, (&name, config), None, "mining hard negatives", progress, &mut mine)?;
        Ok(examples)
    }

    /// Runs pipeline `name, config` over a dataset split's judged queries (only those whose text
    /// is in `only`, when given) in the dataset's collection, and hands `visit` each query, its
    /// relevant documents and the hits.
    fn search_judged(
        &self,
        request: &DatasetRequest,
        (name, config): (&str, PipelineConfig),
        only: Option<&HashSet<&str>>,
        task: &str,
        progress: &dyn Progress,
        visit: &mut JudgedSearch,
    ) -> Result<()> {
        let dataset = request.load()?;
        let Some((mut queries, qrels)) = request.judged(&dataset) else {
            return Err(Error::InvalidInput(format!(
                "{} has no relevance judgements in qrels/{}.tsv to train on",
                request.dir.display(),
                request.split
            )));
        };
        if let Some(only) = only {
            queries.retain(|q| only.contains(q.text.as_str()));
        }
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        let session = index.session(self, name, config, &self.settings().llm_or(&[]), false)?;
        let pipeline = session.pipeline()?;
        progress.start(task, queries.len());
        for (done, query) in queries.iter().enumerate() {
            let hits = pipeline.retrieve(&query.text)?.hits;
            let relevant: HashSet<&str> = qrels
                .get(&query.id)
                .map(|judged| judged.iter().filter(|(_, grade)| **grade > 0).map(|(doc, _)| doc.as_str()).collect())
                .unwrap_or_default();
            visit(query, &relevant, &hits, &index)?;
            progress.update(done + 1, "");
        }
        progress.finish();
        Ok(())
    }

    /// Fits the [`Calibration`] of the reranker `lore tune` trained in folder `model` on the
    /// questions its training held out, and saves it beside the model as `calibration.json`.
    /// With the `dataset` it was trained on, the candidates are what `hybrid-rerank` would
    /// rerank, each with its rank there; without, a question's positive and negatives, unranked.
    /// `None` when the training held no question out.
    pub fn calibrate_reranker(
        &self,
        model: &Path,
        dataset: Option<&DatasetRequest>,
        progress: &dyn Progress,
    ) -> Result<Option<CalibrationReport>> {
        let options = TrainReport::read(model)?.options;
        let examples = read_examples(&model.join("examples.jsonl"))?;
        let (_, held_out) = lore_tune::split_by_query(&examples, options.validation, options.seed);
        if held_out.is_empty() {
            return Ok(None);
        }
        let reranker = lore_models::load_reranker(&model.to_string_lossy(), self.home())?;
        let task = "calibrating on held-out questions";
        let mut lists: Vec<Vec<Judged>> = Vec::new();
        match dataset {
            Some(dataset) => {
                let questions: HashSet<&str> = held_out.iter().map(|e| e.query.as_str()).collect();
                let (name, mut config) = lore_rag::load_pipeline("hybrid-rerank")?;
                config.top_k = config.rerank.candidates;
                config.rerank.kind = RerankKind::None;
                let mut judge = |query: &Query, relevant: &HashSet<&str>, hits: &[Hit], _: &EvalIndex| {
                    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
                    let scores = reranker.score(&query.text, &texts)?;
                    lists.push(
                        hits.iter()
                            .zip(scores)
                            .enumerate()
                            .map(|(i, (hit, score))| Judged {
                                score,
                                rank: Some(i + 1),
                                relevant: relevant.contains(hit.source.as_str()),
                            })
                            .collect(),
                    );
                    Ok(())
                };
                self.search_judged(dataset, (&name, config), Some(&questions), task, progress, &mut judge)?;
            }
            None => {
                progress.start(task, held_out.len());
                for (done, example) in held_out.iter().enumerate() {
                    let texts: Vec<&str> =
                        std::iter::once(&example.positive).chain(&example.negatives).map(String::as_str).collect();
                    let scores = reranker.score(&example.query, &texts)?;
                    lists.push(
                        scores
                            .into_iter()
                            .enumerate()
                            .map(|(i, score)| Judged { score, rank: None, relevant: i == 0 })
                            .collect(),
                    );
                    progress.update(done + 1, "");
                }
                progress.finish();
            }
        }
        let samples: Vec<Judged> = lists.iter().flatten().copied().collect();
        let calibration = fit_calibration(&samples)?;
        lore_tune::write_calibration(model, &calibration)?;
        let ranked = dataset.is_some();
        Ok(Some(CalibrationReport {
            calibration,
            questions: lists.len(),
            search_mrr: ranked.then(|| mean_reciprocal_rank(&lists, |j| -(j.rank.unwrap_or(0) as f32))),
            reranker_mrr: mean_reciprocal_rank(&lists, |j| j.score),
            calibrated_mrr: mean_reciprocal_rank(&lists, |j| calibration.probability(j.score, j.rank.unwrap_or(1))),
        }))
    }

    /// Trains `trainee` as `request` says: examples gathered, the base model found, the run
    /// resumed if `request.out` holds its checkpoint; the mined examples are kept in
    /// `out/examples.jsonl`. A finished reranker is then calibrated on the held-out questions.
    pub fn tune(&self, trainee: Trainee, request: &TuneRequest, progress: &dyn Progress) -> Result<TuneReport> {
        let base = self.trainable_base(&request.base)?;
        let examples = self.training_examples(&request.data, &request.mining, progress)?;
        if examples.is_empty() {
            return Err(Error::InvalidInput("no training examples: the data has no question with a positive".into()));
        }
        std::fs::create_dir_all(&request.out).map_err(Error::io(&request.out))?;
        lore_tune::write_examples(&request.out.join("examples.jsonl"), &examples)?;
        // A calibration belongs to the model it was fitted for, which this run replaces.
        let calibration = request.out.join("calibration.json");
        if calibration.exists() {
            std::fs::remove_file(&calibration).map_err(Error::io(&calibration))?;
        }
        let mut observer = |event: &TrainEvent| {
            match event {
                TrainEvent::Started { step, total } => {
                    progress.start(&format!("training the {}", trainee.name()), *total);
                    progress.update(*step, "");
                }
                TrainEvent::Step { step, loss } => progress.update(*step, &format!("loss {loss:.4}")),
                TrainEvent::Validated { step, metric, best } => progress.note(&format!(
                    "step {step}: validation MRR {metric:.4}{}",
                    if *best { " (best, saved)" } else { "" }
                )),
            }
            ControlFlow::Continue(())
        };
        let train = match trainee {
            Trainee::Embedder => train_embedder,
            Trainee::Reranker => train_reranker,
        };
        let training = train(&base, &examples, request.options.clone(), &request.out, &mut observer);
        progress.finish();
        let training = training?;
        let calibration = if trainee == Trainee::Reranker && training.finished {
            let dataset = match &request.data {
                TrainingData::Dataset(dataset) => Some(dataset),
                TrainingData::Examples(_) => None,
            };
            self.calibrate_reranker(&request.out, dataset, progress)?
        } else {
            None
        };
        Ok(TuneReport { training, calibration })
    }

    /// The folder a training starts from: a path, or an installed registry model's folder.
    fn trainable_base(&self, name: &str) -> Result<PathBuf> {
        let given = Path::new(name);
        if given.is_dir() {
            return Ok(given.to_path_buf());
        }
        let spec = lore_models::spec(name)?;
        let path = spec.load_path(self.home());
        if !spec.is_installed(self.home()) {
            return Err(Error::ModelMissing { name: name.to_string() });
        }
        if !path.is_dir() {
            return Err(Error::Unsupported(format!(
                "{name} is stored as {}, not an HF-layout BERT folder, and cannot be trained: \
                 start from minilm or a folder with config.json, model.safetensors and tokenizer.json",
                path.display()
            )));
        }
        Ok(path)
    }

    /// Writes synthetic queries for the chunks of a collection and saves them with the chunks
    /// as a BEIR dataset (`corpus.jsonl` of chunks, `queries.jsonl`, `qrels/train.tsv`) that
    /// `tune` trains on. Resumable: the model's replies are cached in the output folder.
    pub fn tune_questions(&self, request: &QuestionsRequest, progress: &dyn Progress) -> Result<QuestionsReport> {
        let started = Instant::now();
        let mut forms = Vec::new();
        for &form in &request.forms {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        if forms.is_empty() {
            return Err(Error::InvalidInput("no query form to ask for: give question, claim or both".into()));
        }
        let store = self.catalog().open(&request.collection)?;
        let mut corpus: Vec<(String, String)> = Vec::new();
        for document in store.documents()? {
            if let Some(stored) = store.stored_document(&document.source)? {
                for chunk in stored.chunks {
                    corpus.push((format!("{}#{}", document.source, chunk.ordinal), chunk.text));
                }
            }
        }
        // A sample asks about some chunks, but the corpus keeps them all: the negatives mined for
        // training should come from everything the collection holds.
        let sampled = request.limit.map(|limit| lore_eval::sample(&corpus, limit, |(id, _)| id.as_str()));
        let chunks = sampled.as_deref().unwrap_or(&corpus);
        std::fs::create_dir_all(request.out.join("qrels")).map_err(Error::io(&request.out))?;
        let mut cache = QuestionCache::open(&request.out.join("questions-cache.jsonl"))?;
        let chat = self.models().chat(&self.settings().llm_or(&[request.llm.as_deref()]))?;
        let passages: Vec<Passage> = chunks
            .iter()
            .map(|(id, text)| Passage {
                key: format!("{:016x}", Fnv1a::of(format!("{id}\0{text}").as_bytes())),
                text: text.clone(),
            })
            .collect();
        progress.start(&format!("writing queries with {}", chat.id()), passages.len());
        let mut cached = 0;
        let questions = generate_queries(
            chat.as_ref(),
            &passages,
            &forms,
            request.per_chunk,
            &mut cache,
            &mut |done, _, reused| {
                cached = reused;
                progress.update(done, &format!("{reused} replies from the cache"));
            },
        );
        progress.finish();
        let questions = questions?;

        // The search filter: a query whose own chunk the collection's search does not find is
        // either vague or about something else.
        let session = if request.keep_top > 0 {
            let (name, mut config) = lore_rag::load_pipeline("hybrid")?;
            config.top_k = request.keep_top;
            let embedder = self.models().embedder(&store.manifest().embedder)?;
            Some(self.assemble_session(
                request.collection.clone(),
                store.clone(),
                embedder,
                (name, config),
                self.settings().llm_or(&[]),
                false,
            )?)
        } else {
            None
        };
        let pipeline = session.as_ref().map(|s| s.pipeline()).transpose()?;
        let written: usize = questions.iter().map(Vec::len).sum();
        progress.start("checking that search finds each query's chunk", written);
        let (mut kept, mut checked) = (Vec::new(), 0);
        for ((id, text), asked) in chunks.iter().zip(&questions) {
            for question in asked {
                let found = match &pipeline {
                    Some(pipeline) => pipeline.retrieve(question)?.hits.iter().any(|hit| &hit.text == text),
                    None => true,
                };
                if found {
                    kept.push((id.clone(), question.clone()));
                }
                checked += 1;
                progress.update(checked, "");
            }
        }
        progress.finish();
        write_question_dataset(&request.out, &corpus, &kept)?;
        Ok(QuestionsReport {
            out: request.out.clone(),
            chunks: chunks.len(),
            cached,
            written,
            kept: kept.len(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

impl Trainee {
    /// `embedder` or `reranker`.
    pub fn name(self) -> &'static str {
        match self {
            Trainee::Embedder => "embedder",
            Trainee::Reranker => "reranker",
        }
    }
}

/// The BEIR files of synthetic queries: all the collection's chunks as the corpus, each kept
/// query judged relevant to its chunk in the `train` split.
fn write_question_dataset(out: &Path, chunks: &[(String, String)], kept: &[(String, String)]) -> Result<()> {
    let write = |name: &str, lines: Vec<String>| -> Result<()> {
        let path = out.join(name);
        let partial = path.with_extension("partial");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(Error::io(&partial))?);
        for line in lines {
            writeln!(file, "{line}").map_err(Error::io(&partial))?;
        }
        file.flush().map_err(Error::io(&partial))?;
        drop(file);
        std::fs::rename(&partial, &path).map_err(Error::io(&path))
    };
    let json = |value: serde_json::Value| value.to_string();
    write(
        "corpus.jsonl",
        chunks.iter().map(|(id, text)| json(serde_json::json!({"_id": id, "title": "", "text": text}))).collect(),
    )?;
    write(
        "queries.jsonl",
        kept.iter()
            .enumerate()
            .map(|(i, (_, q))| json(serde_json::json!({"_id": format!("q{i}"), "text": q})))
            .collect(),
    )?;
    let mut qrels = vec!["query-id\tcorpus-id\tscore".to_string()];
    qrels.extend(kept.iter().enumerate().map(|(i, (id, _))| format!("q{i}\t{id}\t1")));
    write("qrels/train.tsv", qrels)
}
