//! The answer log: every answer a server gives, with the passages it read and what users said
//! of it, turned into training data ([`AnswerLog::export`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use lore_core::{Answer, Error, Filter, GROUPS_FIELD, Hit, Metadata, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A passage an answer was given, as logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Its number in the prompt (`[n]`).
    pub n: usize,
    /// The chunk's id.
    pub chunk_id: i64,
    /// The document it came from.
    pub source: String,
    /// The passage as the generator read it.
    pub text: String,
    /// Its retrieval score.
    pub score: f32,
    /// Whether the answer cites it.
    pub cited: bool,
    /// The groups that may read its document; empty for everyone.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One logged answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedAnswer {
    /// Its id, given to the client with the answer.
    pub id: String,
    /// The collection it was answered from.
    pub collection: String,
    /// The question (standalone, after any rewriting of a conversation).
    pub question: String,
    /// The answer's text.
    pub answer: String,
    /// Whether it was the refusal sentence.
    pub refused: bool,
    /// What the generator read.
    pub passages: Vec<Passage>,
}

/// What a user thought of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// Helpful.
    Up,
    /// Wrong or unhelpful.
    Down,
}

/// Feedback on a logged answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The answer's id.
    pub answer_id: String,
    /// Up or down.
    pub rating: Rating,
    /// The answer the user would have wanted.
    #[serde(default)]
    pub correction: Option<String>,
    /// Anything else the user said.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The shapes [`AnswerLog::export`] writes, one JSON object per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// Supervised fine-tuning: `{"messages": [system, user, assistant]}` for answers rated up
    /// (the answer) or corrected (the correction).
    Sft,
    /// Preference pairs: `{"prompt", "chosen", "rejected"}` where a correction replaces an answer.
    Dpo,
    /// Retrieval triples: `{"query", "positive", "negative"}`, a passage the answer cited and one
    /// it was given but did not use, from answers rated up.
    Triples,
}

impl FromStr for ExportFormat {
    type Err = Error;

    fn from_str(name: &str) -> Result<ExportFormat> {
        match name {
            "sft" => Ok(ExportFormat::Sft),
            "dpo" => Ok(ExportFormat::Dpo),
            "triples" => Ok(ExportFormat::Triples),
            other => Err(Error::InvalidInput(format!("no export format '{other}': choose sft, dpo or triples"))),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportFormat::Sft => "sft",
            ExportFormat::Dpo => "dpo",
            ExportFormat::Triples => "triples",
        })
    }
}

/// The log, one SQLite file (`$LORE_HOME/answers.sqlite`) shared by every collection. Each
/// answer keeps the groups of the passages it read, so that only a reader of all of them sees
/// it, rates it or exports it.
pub struct AnswerLog {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl AnswerLog {
    /// Opens the log at `path`, creating it when missing.
    pub fn open(path: &Path) -> Result<AnswerLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let failed = |e: rusqlite::Error| Error::corrupt(path, format!("the answer log cannot be used: {e}"));
        let conn = Connection::open(path).map_err(failed)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(failed)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS answers (
                 id TEXT PRIMARY KEY, collection TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
                 refused INTEGER NOT NULL, passages TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT (datetime('now')));
             CREATE INDEX IF NOT EXISTS answers_by_collection ON answers(collection);
             CREATE TABLE IF NOT EXISTS feedback (
                 id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL REFERENCES answers(id), rating TEXT NOT NULL,
                 correction TEXT, comment TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));",
        )
        .map_err(failed)?;
        Ok(AnswerLog { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    /// The log of the Lore home `home`.
    pub fn in_home(home: &Path) -> Result<AnswerLog> {
        AnswerLog::open(&home.join("answers.sqlite"))
    }

    /// Logs `answer` to `question`, given from `hits` of `collection`; returns it with its new id.
    pub fn record(&self, collection: &str, question: &str, answer: &Answer, hits: &[Hit]) -> Result<LoggedAnswer> {
        let passages = answer
            .citations
            .iter()
            .map(|c| {
                let hit = hits.iter().find(|h| h.chunk_id == c.chunk_id);
                Passage {
                    n: c.n,
                    chunk_id: c.chunk_id,
                    source: c.source.clone(),
                    text: hit.map(|h| h.text.clone()).unwrap_or_default(),
                    score: c.score,
                    cited: c.cited,
                    groups: hit.map(|h| groups_of(&h.metadata)).unwrap_or_default(),
                }
            })
            .collect();
        let logged = LoggedAnswer {
            id: new_id(),
            collection: collection.to_string(),
            question: question.to_string(),
            answer: answer.text.clone(),
            refused: answer.refused,
            passages,
        };
        let passages = serde_json::to_string(&logged.passages).expect("passages serialize");
        self.lock()
            .execute(
                "INSERT INTO answers (id, collection, question, answer, refused, passages) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![logged.id, logged.collection, logged.question, logged.answer, logged.refused, passages],
            )
            .map_err(|e| self.failed(e))?;
        Ok(logged)
    }

    /// The answer `id`, if a reader passing `access` (see [`Filter::readable_by`]; `None` for
    /// anyone) may read every passage it was given.
    pub fn get(&self, id: &str, access: Option<&Filter>) -> Result<Option<LoggedAnswer>> {
        let answer = self
            .lock()
            .query_row(
                "SELECT id, collection, question, answer, refused, passages FROM answers WHERE id = ?1",
                [id],
                read_answer,
            )
            .optional()
            .map_err(|e| self.failed(e))?;
        Ok(answer.filter(|a| readable(a, access)))
    }

    /// Records `feedback` on an answer that exists and that `access` may read (else NotFound).
    pub fn add_feedback(&self, feedback: &Feedback, access: Option<&Filter>) -> Result<()> {
        if self.get(&feedback.answer_id, access)?.is_none() {
            return Err(Error::NotFound(format!("no answer '{}'", feedback.answer_id)));
        }
        let rating = match feedback.rating {
            Rating::Up => "up",
            Rating::Down => "down",
        };
        self.lock()
            .execute(
                "INSERT INTO feedback (answer_id, rating, correction, comment) VALUES (?1, ?2, ?3, ?4)",
                params![feedback.answer_id, rating, feedback.correction, feedback.comment],
            )
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The answers of `collection` that `access` may read with their latest feedback, as
    /// training records in `format`, oldest first.
    pub fn export(&self, collection: &str, format: ExportFormat, access: Option<&Filter>) -> Result<Vec<Value>> {
        let conn = self.lock();
        let mut query = conn
            .prepare(
                "SELECT a.id, a.collection, a.question, a.answer, a.refused, a.passages, f.rating, f.correction
                 FROM answers a JOIN feedback f ON f.answer_id = a.id
                 WHERE a.collection = ?1
                   AND f.id = (SELECT MAX(id) FROM feedback WHERE answer_id = a.id)
                 ORDER BY a.created_at, a.rowid",
            )
            .map_err(|e| self.failed(e))?;
        let rows = query
            .query_map([collection], |row| {
                Ok((read_answer(row)?, row.get::<_, String>(6)?, row.get::<_, Option<String>>(7)?))
            })
            .map_err(|e| self.failed(e))?;
        let mut records = Vec::new();
        for row in rows {
            let (answer, rating, correction) = row.map_err(|e| self.failed(e))?;
            if !readable(&answer, access) {
                continue;
            }
            let correction = correction.filter(|c| !c.trim().is_empty());
            records.extend(training_records(&answer, rating == "up", correction.as_deref(), format));
        }
        Ok(records)
    }

    /// Forgets every answer of `collection`, with its feedback (the collection is gone).
    pub fn forget(&self, collection: &str) -> Result<()> {
        let mut conn = self.lock();
        let forget = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM feedback WHERE answer_id IN (SELECT id FROM answers WHERE collection = ?1)",
                [collection],
            )?;
            tx.execute("DELETE FROM answers WHERE collection = ?1", [collection])?;
            tx.commit()
        };
        forget(&mut conn).map_err(|e| self.failed(e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed(&self, e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::DatabaseBusy => {
                Error::Busy(format!("the answer log {} is busy; try again", self.path.display()))
            }
            e => Error::corrupt(&self.path, format!("the answer log cannot be used: {e}")),
        }
    }
}

fn read_answer(row: &rusqlite::Row<'_>) -> rusqlite::Result<LoggedAnswer> {
    let passages: String = row.get(5)?;
    Ok(LoggedAnswer {
        id: row.get(0)?,
        collection: row.get(1)?,
        question: row.get(2)?,
        answer: row.get(3)?,
        refused: row.get(4)?,
        passages: serde_json::from_str(&passages).unwrap_or_default(),
    })
}

/// Whether `access` may read every passage of `answer`.
fn readable(answer: &LoggedAnswer, access: Option<&Filter>) -> bool {
    let Some(access) = access else { return true };
    answer.passages.iter().all(|p| {
        let metadata: Metadata = [(GROUPS_FIELD.to_string(), json!(p.groups))].into_iter().collect();
        access.matches(&metadata)
    })
}

/// The groups a hit's document may be read by.
fn groups_of(metadata: &Metadata) -> Vec<String> {
    match metadata.get(GROUPS_FIELD) {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(groups)) => groups.iter().filter_map(|g| g.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn training_records(answer: &LoggedAnswer, up: bool, correction: Option<&str>, format: ExportFormat) -> Vec<Value> {
    let prompt = || {
        let passages: Vec<String> = answer.passages.iter().map(|p| format!("[{}] {}", p.n, p.text)).collect();
        format!("Passages:\n{}\n\nQuestion: {}", passages.join("\n\n"), answer.question)
    };
    match format {
        ExportFormat::Sft => {
            let Some(reply) = correction.or(up.then_some(answer.answer.as_str())) else { return Vec::new() };
            vec![json!({"id": answer.id, "messages": [
                {"role": "system", "content": "Answer from the passages only, citing them as [n]."},
                {"role": "user", "content": prompt()},
                {"role": "assistant", "content": reply},
            ]})]
        }
        ExportFormat::Dpo => match correction {
            Some(correction) if correction.trim() != answer.answer.trim() => {
                vec![json!({"id": answer.id, "prompt": prompt(), "chosen": correction, "rejected": answer.answer})]
            }
            _ => Vec::new(),
        },
        ExportFormat::Triples => {
            if !up || answer.refused {
                return Vec::new();
            }
            let (cited, unused): (Vec<&Passage>, Vec<&Passage>) = answer.passages.iter().partition(|p| p.cited);
            cited
                .iter()
                .flat_map(|positive| {
                    unused.iter().map(move |negative| {
                        json!({"id": answer.id, "query": answer.question, "positive": positive.text,
                               "positive_chunk_id": positive.chunk_id, "negative": negative.text,
                               "negative_chunk_id": negative.chunk_id})
                    })
                })
                .collect()
        }
    }
}

/// A random id: 16 bytes from the operating system, as hex (`ans_…`).
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ans_{hex}")
}
