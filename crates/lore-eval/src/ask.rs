//! Asking a chat model for something parseable: the retry loop shared by the judge and the
//! grounding metrics, and the cache of model replies.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lore_core::{ChatModel, Error, Generation, GenerationOptions, Message, Result, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why an item could not be scored, with the model's last reply, so that a report can count
/// and show failures instead of averaging in a made-up number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unscored {
    /// What went wrong: why the reply could not be read, or why no model was asked.
    pub reason: String,
    /// How many times the model was asked.
    pub attempts: usize,
    /// The model's last reply (empty when no model was asked).
    pub last_output: String,
}

impl Unscored {
    pub(crate) fn without_model(reason: impl Into<String>) -> Unscored {
        Unscored { reason: reason.into(), attempts: 0, last_output: String::new() }
    }
}

/// Replies of chat models keyed by the SHA-256 of model id, messages and generation options,
/// kept in a JSON-lines file. Raw replies are cached rather than parsed results, so that a
/// better parser applies to replies already paid for.
struct ReplyCache {
    replies: Mutex<HashMap<String, Generation>>,
    file: Mutex<File>,
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CacheLine {
    key: String,
    model: String,
    generation: Generation,
}

impl ReplyCache {
    fn open(path: &Path) -> Result<ReplyCache> {
        let fail = |reason: String| Error::Parse { path: path.display().to_string(), reason };
        let mut replies = HashMap::new();
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match serde_json::from_str::<CacheLine>(line) {
                    Ok(entry) => {
                        replies.insert(entry.key, entry.generation);
                    }
                    // A line cut short by an interrupted run is only ever the last one.
                    Err(_) if i + 1 == lines.len() => {}
                    Err(e) => {
                        return Err(fail(format!("line {}: {e} (delete the file to start the cache afresh)", i + 1)));
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| fail(e.to_string()))?;
        Ok(ReplyCache { replies: Mutex::new(replies), file: Mutex::new(file), path: path.to_path_buf() })
    }

    fn key(model: &str, messages: &[Message], options: &GenerationOptions) -> String {
        let mut hasher = Sha256::new();
        // Serialising owned, derived types cannot fail.
        let serialised = serde_json::to_string(&(model, messages, options)).unwrap_or_default();
        hasher.update(serialised.as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn chat(&self, chat: &dyn ChatModel, messages: &[Message], options: &GenerationOptions) -> Result<Generation> {
        let key = Self::key(chat.id(), messages, options);
        if let Some(hit) = lock(&self.replies).get(&key) {
            return Ok(hit.clone());
        }
        let generation = chat.chat(messages, options, &mut |_| {})?;
        let line = CacheLine { key: key.clone(), model: chat.id().to_string(), generation: generation.clone() };
        let mut json = serde_json::to_string(&line).map_err(|e| Error::InvalidInput(e.to_string()))?;
        json.push('\n');
        lock(&self.file).write_all(json.as_bytes()).map_err(Error::io(&self.path))?;
        lock(&self.replies).insert(key, generation.clone());
        Ok(generation)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a map that is still consistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A chat model with an optional reply cache, asked until its reply parses.
pub(crate) struct Asker<'a> {
    chat: &'a dyn ChatModel,
    cache: Option<ReplyCache>,
    pub(crate) max_attempts: usize,
}

/// How many times a model is asked before an item is recorded as unscored.
pub(crate) const DEFAULT_ATTEMPTS: usize = 3;

impl<'a> Asker<'a> {
    pub(crate) fn new(chat: &'a dyn ChatModel, cache_path: Option<&Path>) -> Result<Asker<'a>> {
        let cache = cache_path.map(ReplyCache::open).transpose()?;
        Ok(Asker { chat, cache, max_attempts: DEFAULT_ATTEMPTS })
    }

    pub(crate) fn model_id(&self) -> &str {
        self.chat.id()
    }

    /// Sends `messages` and parses the reply; while it does not parse, appends the reply and
    /// `reminder(reason)` and asks again, up to `max_attempts` times. Greedy decoding, so a
    /// retry differs from the first try only by the reminder.
    pub(crate) fn ask<T>(
        &self,
        mut messages: Vec<Message>,
        max_tokens: usize,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
        reminder: impl Fn(&str) -> String,
    ) -> Result<std::result::Result<(T, usize), Unscored>> {
        let options = GenerationOptions { max_tokens, ..GenerationOptions::default() };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let generation = match &self.cache {
                Some(cache) => cache.chat(self.chat, &messages, &options)?,
                None => self.chat.chat(&messages, &options, &mut |_| {})?,
            };
            match parse(&generation.text) {
                Ok(value) => return Ok(Ok((value, attempt))),
                Err(reason) if attempt >= self.max_attempts => {
                    return Ok(Err(Unscored { reason, attempts: attempt, last_output: generation.text }));
                }
                Err(reason) => {
                    messages.push(Message { role: Role::Assistant, content: generation.text });
                    messages.push(Message::user(reminder(&reason)));
                }
            }
        }
    }
}
