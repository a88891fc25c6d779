//! A search or answer request resolved against the engine: the collection, its embedder, the
//! pipeline settings and the models they need.

use std::sync::Arc;

use lore_core::{
    Answer, ChatModel, Embedder, Error, Filter, GenerationOptions, PipelineConfig, RerankKind, Reranker, Result, Store,
};
use lore_rag::{Pipeline, Retrieval};

use crate::Engine;

/// What to search and how; every field left out takes the engine's setting or default.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// The collection [default: the settings', else `default`].
    pub collection: Option<String>,
    /// A pipeline preset or TOML file [default: the settings', else `dense`].
    pub pipeline: Option<String>,
    /// Chunks to return, over the pipeline's.
    pub top_k: Option<usize>,
    /// Lowest cosine similarity a dense hit may have, over the pipeline's.
    pub min_score: Option<f32>,
    /// Only chunks passing this, inside every retriever.
    pub filter: Option<Filter>,
    /// The chat model that rewrites, reranks and answers [default: the pipeline's, else the
    /// settings', else `qwen-0.5b`].
    pub llm: Option<String>,
    /// Sampling settings of the answer, over the pipeline's.
    pub generation: Option<GenerationOptions>,
}

/// A request ready to run: everything a [`Pipeline`] is built from, models loaded (shared
/// through the engine's cache).
pub struct Session {
    /// The collection's name.
    pub collection: String,
    /// The collection.
    pub store: Arc<dyn Store>,
    /// The embedder it was built with.
    pub embedder: Arc<dyn Embedder>,
    /// The pipeline's name (a preset, or the file it was read from).
    pub pipeline_name: String,
    /// The pipeline's settings with the request's applied.
    pub config: PipelineConfig,
    /// The chat model's name.
    pub llm: String,
    /// The chat model, when the pipeline rewrites or reranks with it or the session answers.
    pub chat: Option<Arc<dyn ChatModel>>,
    /// The cross-encoder, when the pipeline reranks with one.
    pub reranker: Option<Arc<dyn Reranker>>,
    /// The request's filter.
    pub filter: Option<Filter>,
}

impl Engine {
    /// Resolves `request`: opens the collection and its embedder, reads the pipeline, and loads
    /// the models it needs; the chat model also when `answering`.
    pub fn session(&self, request: &SearchRequest, answering: bool) -> Result<Session> {
        let settings = self.settings();
        let collection = settings.collection_or(request.collection.as_deref());
        let store = self.catalog().open(&collection)?;
        let embedder = self.models().embedder(&store.manifest().embedder)?;
        let (pipeline_name, mut config) = lore_rag::load_pipeline(&settings.pipeline_or(request.pipeline.as_deref()))?;
        if let Some(top_k) = request.top_k.or(settings.top_k) {
            config.top_k = top_k;
        }
        if let Some(min_score) = request.min_score {
            config.min_score = min_score;
        }
        if let Some(generation) = &request.generation {
            config.generation = generation.clone();
        }
        let llm = settings.llm_or(&[request.llm.as_deref(), config.llm.as_deref()]);
        let mut session =
            self.assemble_session(collection, store, embedder, (pipeline_name, config), llm, answering)?;
        session.filter = request.filter.clone();
        Ok(session)
    }

    /// A session over an open collection with the pipeline `(name, config)`, loading the chat
    /// model `llm` when the pipeline or `answering` needs it and the cross-encoder it names.
    pub(crate) fn assemble_session(
        &self,
        collection: String,
        store: Arc<dyn Store>,
        embedder: Arc<dyn Embedder>,
        (pipeline_name, config): (String, PipelineConfig),
        llm: String,
        answering: bool,
    ) -> Result<Session> {
        let config = self.settings().rerank_with(config);
        let chat = (answering || Pipeline::needs_chat(&config)).then(|| self.models().chat(&llm)).transpose()?;
        let reranker = self.cross_encoder(&config)?;
        Ok(Session { collection, store, embedder, pipeline_name, config, llm, chat, reranker, filter: None })
    }

    /// The cross-encoder `config` reranks with, if it reranks with one.
    pub fn cross_encoder(&self, config: &PipelineConfig) -> Result<Option<Arc<dyn Reranker>>> {
        match (config.rerank.kind, &config.rerank.model) {
            (RerankKind::CrossEncoder, Some(model)) => self.models().reranker(model).map(Some),
            (RerankKind::CrossEncoder, None) => Err(Error::InvalidInput(
                "the pipeline reranks with a cross-encoder but names none: set rerank.model to its folder".into(),
            )),
            _ => Ok(None),
        }
    }
}

impl Session {
    /// The pipeline over the session's collection and models.
    pub fn pipeline(&self) -> Result<Pipeline<'_>> {
        let mut pipeline = Pipeline::new(self.store.as_ref(), self.embedder.as_ref(), self.config.clone())?;
        if let Some(filter) = &self.filter {
            pipeline = pipeline.with_filter(filter.clone());
        }
        if let Some(chat) = &self.chat {
            pipeline = pipeline.with_chat(chat.as_ref());
        }
        if let Some(reranker) = &self.reranker {
            pipeline = pipeline.with_reranker(reranker.as_ref());
        }
        Ok(pipeline)
    }

    /// The chunks for `query`, with how they were found.
    pub fn retrieve(&self, query: &str) -> Result<Retrieval> {
        self.pipeline()?.retrieve(query).map_err(|e| e.in_collection(&self.collection))
    }

    /// Answers `question` from `retrieval` (what [`Session::retrieve`] found for it), streaming
    /// the answer through `on_token`. Needs a session made for answering.
    pub fn answer(&self, question: &str, retrieval: &Retrieval, on_token: &mut dyn FnMut(&str)) -> Result<Answer> {
        let chat = self.chat.as_ref().ok_or_else(|| {
            Error::InvalidInput("this session was not opened for answering: it has no chat model".into())
        })?;
        self.pipeline()?.answer_from(chat.as_ref(), question, retrieval, on_token)
    }
}
