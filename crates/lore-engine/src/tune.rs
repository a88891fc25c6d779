//! Tuning on the user's own data: training examples from labels (a BEIR split, feedback
//! triples) or from synthetic questions, hard negatives mined with the collection's own hybrid
//! search, and the runs of `lore_tune` that train an embedder or a reranker on them.

use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lore_core::{Error, Fnv1a, Result};
use lore_tune::{
    Candidate, Example, NegativeOptions, Passage, QuestionCache, TrainEvent, TrainOptions, TrainReport,
    generate_questions, hard_negatives, read_examples, train_embedder, train_reranker,
};
use serde::Serialize;

use crate::eval::DatasetRequest;
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

/// Synthetic questions for a collection.
#[derive(Clone, Debug)]
pub struct QuestionsRequest {
    /// The collection whose chunks get questions.
    pub collection: String,
    /// The chat model that writes them.
    pub llm: Option<String>,
    /// Questions asked per chunk.
    pub per_chunk: usize,
    /// Only a fixed sample of this many chunks (the same on every run).
    pub limit: Option<usize>,
    /// A question is kept only if the collection's hybrid search finds its chunk in this many
    /// hits (0 keeps every question).
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
    /// Chunks whose questions came from the cache.
    pub cached: usize,
    /// Questions the model wrote that passed the text filters.
    pub written: usize,
    /// Questions kept after the search filter, in the dataset.
    pub kept: usize,
    /// Wall time, seconds.
    pub seconds: f64,
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
        let dataset = request.load()?;
        let Some((queries, qrels)) = request.judged(&dataset) else {
            return Err(Error::InvalidInput(format!(
                "{} has no relevance judgements in qrels/{}.tsv to train on",
                request.dir.display(),
                request.split
            )));
        };
        let (name, mut config) = lore_rag::load_pipeline("hybrid")?;
        let index = self.eval_index(&request.dir, &dataset, &config, progress)?;
        config.top_k = mining.depth;
        let session = index.session(self, &name, config, &self.settings().llm_or(&[]), false)?;
        let pipeline = session.pipeline()?;
        let filter = mining.filter_reranker.as_deref().map(|name| self.models().reranker(name)).transpose()?;

        progress.start("mining hard negatives", queries.len());
        let mut examples = Vec::new();
        for (done, query) in queries.iter().enumerate() {
            let hits = pipeline.retrieve(&query.text)?.hits;
            let relevant: HashSet<&str> = qrels
                .get(&query.id)
                .map(|judged| judged.iter().filter(|(_, grade)| **grade > 0).map(|(doc, _)| doc.as_str()).collect())
                .unwrap_or_default();
            let candidates: Vec<Candidate> =
                hits.iter().map(|h| Candidate { document: h.source.clone(), text: h.text.clone() }).collect();
            for document in &relevant {
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
                    &relevant,
                    &candidates,
                    filter.as_deref(),
                    &mining.negatives,
                )?;
                examples.push(Example { query: query.text.clone(), positive, negatives });
            }
            progress.update(done + 1, "");
        }
        progress.finish();
        Ok(examples)
    }

    /// Trains `trainee` as `request` says: examples gathered, the base model found, the run
    /// resumed if `request.out` holds its checkpoint; the mined examples are kept in
    /// `out/examples.jsonl`.
    pub fn tune(&self, trainee: Trainee, request: &TuneRequest, progress: &dyn Progress) -> Result<TrainReport> {
        let base = self.trainable_base(&request.base)?;
        let examples = self.training_examples(&request.data, &request.mining, progress)?;
        if examples.is_empty() {
            return Err(Error::InvalidInput("no training examples: the data has no question with a positive".into()));
        }
        std::fs::create_dir_all(&request.out).map_err(Error::io(&request.out))?;
        lore_tune::write_examples(&request.out.join("examples.jsonl"), &examples)?;
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
        let report = train(&base, &examples, request.options.clone(), &request.out, &mut observer);
        progress.finish();
        report
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

    /// Writes synthetic questions for the chunks of a collection and saves them with the chunks
    /// as a BEIR dataset (`corpus.jsonl` of chunks, `queries.jsonl`, `qrels/train.tsv`) that
    /// `tune` trains on. Resumable: the model's replies are cached in the output folder.
    pub fn tune_questions(&self, request: &QuestionsRequest, progress: &dyn Progress) -> Result<QuestionsReport> {
        let started = Instant::now();
        let store = self.catalog().open(&request.collection)?;
        let mut chunks: Vec<(String, String)> = Vec::new();
        for document in store.documents()? {
            if let Some(stored) = store.stored_document(&document.source)? {
                for chunk in stored.chunks {
                    chunks.push((format!("{}#{}", document.source, chunk.ordinal), chunk.text));
                }
            }
        }
        if let Some(limit) = request.limit {
            chunks = lore_eval::sample(&chunks, limit, |(id, _)| id.as_str());
        }
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
        progress.start(&format!("writing questions with {}", chat.id()), passages.len());
        let mut cached = 0;
        let questions =
            generate_questions(chat.as_ref(), &passages, request.per_chunk, &mut cache, &mut |done, _, reused| {
                cached = reused;
                progress.update(done, &format!("{reused} from the cache"));
            });
        progress.finish();
        let questions = questions?;

        // The search filter: a question whose own chunk the collection's search does not find is
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
        progress.start("checking that search finds each question's chunk", written);
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
        write_question_dataset(&request.out, &chunks, &kept)?;
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

/// The BEIR files of synthetic questions: the chunks as the corpus, each kept question judged
/// relevant to its chunk in the `train` split.
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
