//! The model cache: each model loaded once per process, shared by every request, with a
//! bounded number of inferences running on it at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use lore_core::{
    Calibration, ChatModel, EmbedKind, Embedder, Generation, GenerationOptions, Message, Reranker, Result, Tokenize,
};

/// How many inferences may run on one model at once unless told otherwise. A local model
/// already uses every core for one inference, so more at once only share the cores and the
/// memory bandwidth; a queue keeps each one fast.
pub const DEFAULT_INFERENCES_PER_MODEL: usize = 1;

/// Models by name, loaded on first use and kept for the life of the cache. Thread-safe: a
/// model asked for by several threads at once is loaded once, and each model runs at most
/// `inferences_per_model` inferences at a time, the others waiting their turn.
pub struct ModelCache {
    home: PathBuf,
    inferences_per_model: usize,
    embedders: Slots<dyn Embedder>,
    chats: Slots<dyn ChatModel>,
    rerankers: Slots<dyn Reranker>,
}

/// Loaded models of one role, each behind its own lock so that loading one model does not
/// hold up requests for another.
type Slots<M> = Mutex<HashMap<String, Arc<Mutex<Option<Arc<M>>>>>>;

impl ModelCache {
    /// A cache loading models from `home` (see `lore_models::models_dir`).
    pub fn new(home: PathBuf, inferences_per_model: usize) -> ModelCache {
        ModelCache {
            home,
            inferences_per_model: inferences_per_model.max(1),
            embedders: Mutex::default(),
            chats: Mutex::default(),
            rerankers: Mutex::default(),
        }
    }

    /// The embedder `name` (a registry name, a path, or `openai:MODEL@URL`).
    pub fn embedder(&self, name: &str) -> Result<Arc<dyn Embedder>> {
        let limit = self.inferences_per_model;
        cached(&self.embedders, name, || {
            let model = lore_models::load_embedder(name, &self.home)?;
            Ok(Arc::new(Limited::new(model, limit)) as Arc<dyn Embedder>)
        })
    }

    /// The chat model `name` (a registry name, a GGUF path, or `openai:MODEL@URL`).
    pub fn chat(&self, name: &str) -> Result<Arc<dyn ChatModel>> {
        let limit = self.inferences_per_model;
        cached(&self.chats, name, || {
            let model = lore_models::load_chat(name, &self.home)?;
            Ok(Arc::new(Limited::new(model, limit)) as Arc<dyn ChatModel>)
        })
    }

    /// The cross-encoder `name` (a folder path, or a folder in the models directory).
    pub fn reranker(&self, name: &str) -> Result<Arc<dyn Reranker>> {
        let limit = self.inferences_per_model;
        cached(&self.rerankers, name, || {
            let model = lore_models::load_reranker(name, &self.home)?;
            Ok(Arc::new(Limited::new(model, limit)) as Arc<dyn Reranker>)
        })
    }
}

fn cached<M: ?Sized>(slots: &Slots<M>, name: &str, load: impl FnOnce() -> Result<Arc<M>>) -> Result<Arc<M>> {
    let slot = slots.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_default().clone();
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(model) = slot.as_ref() {
        return Ok(model.clone());
    }
    // A failed load leaves the slot empty: the next request tries again (a model installed
    // meanwhile, an endpoint back up).
    let model = load()?;
    *slot = Some(model.clone());
    Ok(model)
}

/// A model that runs at most `limit` inferences at once.
struct Limited<M: ?Sized> {
    permits: Permits,
    model: Box<M>,
}

impl<M: ?Sized> Limited<M> {
    fn new(model: Box<M>, limit: usize) -> Self {
        Limited { permits: Permits::new(limit), model }
    }
}

/// A counting semaphore.
struct Permits {
    free: Mutex<usize>,
    released: Condvar,
}

/// A permit, given back when dropped.
struct Permit<'a>(&'a Permits);

impl Permits {
    fn new(count: usize) -> Permits {
        Permits { free: Mutex::new(count), released: Condvar::new() }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.released.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.released.notify_one();
    }
}

impl<M: Embedder + ?Sized> Embedder for Limited<M> {
    fn id(&self) -> &str {
        self.model.id()
    }
    fn dimension(&self) -> usize {
        self.model.dimension()
    }
    fn max_tokens(&self) -> usize {
        self.model.max_tokens()
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        // Tokenizing is cheap and does not run the model: no permit.
        self.model.tokenizer()
    }
    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let _permit = self.permits.acquire();
        self.model.embed(texts, kind)
    }
}

impl<M: ChatModel + ?Sized> ChatModel for Limited<M> {
    fn id(&self) -> &str {
        self.model.id()
    }
    fn chat(
        &self,
        messages: &[Message],
        options: &GenerationOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let _permit = self.permits.acquire();
        self.model.chat(messages, options, on_token)
    }
    fn choice_probabilities(&self, messages: &[Message], choices: &[&str]) -> Result<Vec<f32>> {
        let _permit = self.permits.acquire();
        self.model.choice_probabilities(messages, choices)
    }
}

impl<M: Reranker + ?Sized> Reranker for Limited<M> {
    fn id(&self) -> &str {
        self.model.id()
    }
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let _permit = self.permits.acquire();
        self.model.score(query, passages)
    }
    fn calibration(&self) -> Option<Calibration> {
        self.model.calibration()
    }
}
