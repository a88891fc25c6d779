use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use lore_core::{ChunkConfig, Document, Error, Result, detect_language};
use serde::{Deserialize, Serialize};

/// Relevance judgements: query id → document id → grade (0 = judged not relevant).
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// A question with its gold answers. An unanswerable question's only right answer is the
/// refusal sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QaItem {
    /// The question's id: the query id in BEIR, `q1`, `q2`, … in the arena layout.
    pub id: String,
    /// The question's text.
    pub question: String,
    /// The gold answers, any of which is right (empty or the refusal for an unanswerable question).
    pub answers: Vec<String>,
    /// Whether the documents answer the question; if not, the right answer is a refusal.
    pub answerable: bool,
}

impl QaItem {
    /// The answer a judge compares with: the first gold answer, or for an unanswerable question
    /// the refusal sentence in the question's language.
    pub fn reference_answer(&self) -> &str {
        match self.answers.first() {
            Some(answer) if self.answerable => answer,
            _ => lore_rag::refusal(detect_language(&self.question)),
        }
    }
}

/// A retrieval query of a BEIR dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The query's `_id`, as the qrels name it.
    pub id: String,
    /// The query's text.
    pub text: String,
}

/// A dataset in the BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/{split}.tsv`, and for
/// question answering `answers.jsonl`.
#[derive(Clone, Debug)]
pub struct BeirDataset {
    /// One document per corpus record; its `source` is the record's `_id`.
    pub documents: Vec<Document>,
    /// The queries judged in the split, in the order of `queries.jsonl`.
    pub queries: Vec<Query>,
    /// The split's relevance judgements, from `qrels/{split}.tsv`.
    pub qrels: Qrels,
    /// The split's queries that `answers.jsonl` answers (empty without that file).
    pub qa: Vec<QaItem>,
}

impl BeirDataset {
    /// Reads the dataset in `dir` with the judgements of `split` (`qrels/{split}.tsv`), keeping
    /// only the judged queries.
    pub fn load(dir: &Path, split: &str) -> Result<BeirDataset> {
        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        if !qrels_path.is_file() {
            return Err(Error::InvalidInput(format!(
                "{} not found: is {} a BEIR dataset, and does it have a '{split}' split?",
                qrels_path.display(),
                dir.display()
            )));
        }
        let qrels = read_qrels(&qrels_path)?;
        let documents = lore_ingest::read_beir_corpus(&dir.join("corpus.jsonl"))?;

        let queries_path = dir.join("queries.jsonl");
        let mut queries = Vec::new();
        for (line, record) in read_jsonl::<QueryRecord>(&queries_path)? {
            if qrels.contains_key(&record.id) {
                if record.text.trim().is_empty() {
                    return Err(parse_error(&queries_path, format!("line {line}: query '{}' has no text", record.id)));
                }
                queries.push(Query { id: record.id, text: record.text });
            }
        }
        let found: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        if let Some(missing) = qrels.keys().find(|id| !found.contains(id.as_str())) {
            return Err(parse_error(
                &qrels_path,
                format!("query '{missing}' is judged but not in {}", queries_path.display()),
            ));
        }

        let answers_path = dir.join("answers.jsonl");
        let qa = if answers_path.is_file() { read_answers(&answers_path, &queries)? } else { Vec::new() };
        Ok(BeirDataset { documents, queries, qrels, qa })
    }
}

/// The RAG-Arena layout: a folder `docs/` of `.txt` files and `qa.json`
/// (`{"data": [{"question", "answer"}]}`), where an answer that is the refusal sentence marks an
/// unanswerable question.
#[derive(Clone, Debug)]
pub struct ArenaDataset {
    /// The documents, in file-name order.
    pub documents: Vec<Document>,
    /// The questions in file order, with ids `q1`, `q2`, ….
    pub qa: Vec<QaItem>,
}

impl ArenaDataset {
    /// Reads the dataset in `dir`: the `.txt` files of `docs/` and the questions of `qa.json`.
    pub fn load(dir: &Path) -> Result<ArenaDataset> {
        let docs_dir = dir.join("docs");
        let mut paths: Vec<PathBuf> = fs::read_dir(&docs_dir)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "cannot read {}: {e} (an arena dataset has a docs/ folder)",
                    docs_dir.display()
                ))
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        if paths.is_empty() {
            return Err(Error::InvalidInput(format!("{} holds no .txt document", docs_dir.display())));
        }
        paths.sort();
        let documents = paths.iter().map(|p| lore_ingest::parse(p)).collect::<Result<Vec<_>>>()?;

        let qa_path = dir.join("qa.json");
        let text = fs::read_to_string(&qa_path).map_err(|e| parse_error(&qa_path, e.to_string()))?;
        let file: ArenaFile = serde_json::from_str(&text).map_err(|e| {
            parse_error(
                &qa_path,
                format!("line {}: {e} (expected {{\"data\": [{{\"question\", \"answer\"}}]}})", e.line()),
            )
        })?;
        let qa = file
            .data
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                if entry.question.trim().is_empty() {
                    return Err(parse_error(&qa_path, format!("entry {} has an empty question", i + 1)));
                }
                let answerable = !lore_rag::is_refusal(&entry.answer);
                Ok(QaItem {
                    id: format!("q{}", i + 1),
                    question: entry.question,
                    answers: vec![entry.answer],
                    answerable,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ArenaDataset { documents, qa })
    }
}

#[derive(Deserialize)]
struct ArenaFile {
    data: Vec<ArenaEntry>,
}

#[derive(Deserialize)]
struct ArenaEntry {
    question: String,
    answer: String,
}

#[derive(Deserialize)]
struct QueryRecord {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

#[derive(Deserialize)]
struct AnswerRecord {
    #[serde(rename = "_id")]
    id: String,
    answers: Vec<String>,
    answerable: Option<bool>,
}

fn parse_error(path: &Path, reason: String) -> Error {
    Error::Parse { path: path.display().to_string(), reason }
}

/// The records of a JSON-lines file with their line numbers; blank lines are skipped.
fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(usize, T)>> {
    let text = fs::read_to_string(path).map_err(|e| parse_error(path, e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map(|r| (i + 1, r)).map_err(|e| parse_error(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Reads a TREC/BEIR qrels TSV: `query-id`, `corpus-id`, integer `score`, with an optional
/// header line. A pair given twice keeps its last grade, as BEIR's loader does.
fn read_qrels(path: &Path) -> Result<Qrels> {
    let text = fs::read_to_string(path).map_err(|e| parse_error(path, e.to_string()))?;
    let mut qrels = Qrels::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [query, doc, score] = fields[..] else {
            return Err(parse_error(
                path,
                format!(
                    "line {}: expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                    i + 1,
                    fields.len()
                ),
            ));
        };
        let Ok(score) = score.parse::<i32>() else {
            if i == 0 {
                continue; // the header
            }
            return Err(parse_error(path, format!("line {}: score '{score}' is not an integer", i + 1)));
        };
        qrels.entry(query.to_string()).or_default().insert(doc.to_string(), score);
    }
    if qrels.is_empty() {
        return Err(parse_error(path, "no judgements".into()));
    }
    Ok(qrels)
}

fn read_answers(path: &Path, queries: &[Query]) -> Result<Vec<QaItem>> {
    let mut by_id = HashMap::new();
    for (line, record) in read_jsonl::<AnswerRecord>(path)? {
        let answers: Vec<String> = record.answers.into_iter().filter(|a| !a.trim().is_empty()).collect();
        let answerable = record.answerable.unwrap_or(!answers.is_empty());
        if answerable && answers.is_empty() {
            return Err(parse_error(path, format!("line {line}: '{}' is answerable but has no answer", record.id)));
        }
        by_id.insert(record.id, (answers, answerable));
    }
    Ok(queries
        .iter()
        .filter_map(|q| {
            let (answers, answerable) = by_id.remove(&q.id)?;
            Some(QaItem { id: q.id.clone(), question: q.text.clone(), answers, answerable })
        })
        .collect())
}

/// An evaluation dataset in either layout, told apart by its files: `corpus.jsonl` makes it
/// BEIR, `qa.json` RAG-Arena.
#[derive(Clone, Debug)]
pub enum Dataset {
    /// A BEIR dataset (`corpus.jsonl`, `queries.jsonl`, `qrels/`).
    Beir(BeirDataset),
    /// A RAG-Arena dataset (`docs/*.txt`, `qa.json`).
    Arena(ArenaDataset),
}

impl Dataset {
    /// `split` names the BEIR qrels file (`qrels/{split}.tsv`); the arena layout has no splits.
    pub fn load(dir: &Path, split: &str) -> Result<Dataset> {
        if dir.join("corpus.jsonl").is_file() {
            return Ok(Dataset::Beir(BeirDataset::load(dir, split)?));
        }
        if dir.join("qa.json").is_file() {
            return Ok(Dataset::Arena(ArenaDataset::load(dir)?));
        }
        Err(Error::InvalidInput(format!(
            "{} is neither a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/) nor a RAG-Arena one (docs/*.txt, qa.json)",
            dir.display()
        )))
    }

    /// The corpus to index.
    pub fn documents(&self) -> &[Document] {
        match self {
            Dataset::Beir(beir) => &beir.documents,
            Dataset::Arena(arena) => &arena.documents,
        }
    }

    /// The questions with gold answers (a BEIR dataset without `answers.jsonl` has none).
    pub fn qa(&self) -> &[QaItem] {
        match self {
            Dataset::Beir(beir) => &beir.qa,
            Dataset::Arena(arena) => &arena.qa,
        }
    }

    /// The judged queries and their relevance judgements; `None` for the arena layout, which
    /// has none.
    pub fn judged(&self) -> Option<(&[Query], &Qrels)> {
        match self {
            Dataset::Beir(beir) => Some((&beir.queries, &beir.qrels)),
            Dataset::Arena(_) => None,
        }
    }

    /// How the corpus is cut when the pipeline does not say: a BEIR record is a passage already,
    /// one chunk each (as BEIR's own evaluations embed them); arena documents are whole reports
    /// and get the default chunker.
    pub fn default_chunking(&self) -> ChunkConfig {
        match self {
            Dataset::Beir(_) => ChunkConfig::Whole,
            Dataset::Arena(_) => ChunkConfig::default(),
        }
    }
}
