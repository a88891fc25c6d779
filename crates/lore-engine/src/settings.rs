//! Settings resolved in one place: flag, then `LORE_*` environment variable, then `./lore.toml`,
//! then `$LORE_HOME/lore.toml`, then the built-in default.

use std::path::{Path, PathBuf};

use lore_core::{Error, PipelineConfig, RerankKind, Result};

use crate::StoreLocation;
use serde::Deserialize;

/// The embedder of new collections when none is named.
pub const DEFAULT_EMBEDDER: &str = "e5-small";
/// The chat model when none is named.
pub const DEFAULT_LLM: &str = "qwen-0.5b";
/// The collection when none is named.
pub const DEFAULT_COLLECTION: &str = "default";
/// The pipeline of `query` and `ask` when none is named.
pub const DEFAULT_PIPELINE: &str = "dense";

/// The settings every command and request starts from. Each field is what the environment
/// and the config files say, before any flag; the `*_or` methods put a flag on top and fall
/// back to the default.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where models and collections live (`LORE_HOME`, default `~/.lore`).
    #[serde(skip)]
    pub home: PathBuf,
    /// Collection used when none is named (`LORE_COLLECTION`).
    pub collection: Option<String>,
    /// Embedder for new collections (`LORE_EMBEDDER`).
    pub embedder: Option<String>,
    /// Chat model that answers (`LORE_LLM`).
    pub llm: Option<String>,
    /// Chunks retrieved, over the pipeline's own.
    pub top_k: Option<usize>,
    /// Pipeline preset or TOML file for `query` and `ask` (`LORE_PIPELINE`).
    pub pipeline: Option<String>,
    /// CPU threads for the models (`LORE_THREADS`).
    pub threads: Option<usize>,
    /// Where new collections are made: `embedded` (the default) or a PostgreSQL URL
    /// (`LORE_STORE`); see [`Settings::store_location`].
    pub store: Option<String>,
    /// A read replica of `store` that searches go to (`LORE_READ_STORE`).
    pub read_store: Option<String>,
    /// A cross-encoder folder (such as one `lore tune reranker` wrote) that replaces the
    /// reranker of every pipeline that reranks (`LORE_RERANKER`); see [`Settings::rerank_with`].
    pub reranker: Option<String>,
}

impl Settings {
    /// The settings for `home` (else `LORE_HOME`, else `~/.lore`): environment variables over
    /// `./lore.toml` over `HOME/lore.toml`.
    pub fn load(home: Option<PathBuf>) -> Result<Settings> {
        let home = home.unwrap_or_else(lore_models::lore_home);
        let mut merged = Settings::from_env()?;
        for path in [PathBuf::from("lore.toml"), home.join("lore.toml")] {
            if path.exists() {
                merged = merged.or(Settings::from_file(&path)?);
            }
        }
        merged.home = home;
        merged.store_location()?;
        Ok(merged)
    }

    /// Settings with nothing set but `home`: the defaults, for tests and embedding Lore.
    pub fn at(home: impl Into<PathBuf>) -> Settings {
        Settings { home: home.into(), ..Settings::default() }
    }

    fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        toml::from_str(&text).map_err(|e| Error::InvalidInput(format!("invalid {}: {e}", path.display())))
    }

    fn from_env() -> Result<Settings> {
        let text = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str| {
            text(name)
                .map(|v| {
                    v.parse::<usize>().map_err(|_| Error::InvalidInput(format!("{name}={v:?} is not a whole number")))
                })
                .transpose()
        };
        Ok(Settings {
            home: PathBuf::new(),
            collection: text("LORE_COLLECTION"),
            embedder: text("LORE_EMBEDDER"),
            llm: text("LORE_LLM"),
            top_k: number("LORE_TOP_K")?,
            pipeline: text("LORE_PIPELINE"),
            threads: number("LORE_THREADS")?,
            store: text("LORE_STORE"),
            read_store: text("LORE_READ_STORE"),
            reranker: text("LORE_RERANKER"),
        })
    }

    /// Each field of `self`, else of `lower`.
    fn or(self, lower: Settings) -> Settings {
        Settings {
            home: self.home,
            collection: self.collection.or(lower.collection),
            embedder: self.embedder.or(lower.embedder),
            llm: self.llm.or(lower.llm),
            top_k: self.top_k.or(lower.top_k),
            pipeline: self.pipeline.or(lower.pipeline),
            threads: self.threads.or(lower.threads),
            store: self.store.or(lower.store),
            read_store: self.read_store.or(lower.read_store),
            reranker: self.reranker.or(lower.reranker),
        }
    }

    /// The collection: `flag`, else the settings', else [`DEFAULT_COLLECTION`].
    pub fn collection_or(&self, flag: Option<&str>) -> String {
        pick(flag, &self.collection, DEFAULT_COLLECTION)
    }

    /// The embedder of a new collection: `flag`, else the settings', else [`DEFAULT_EMBEDDER`].
    pub fn embedder_or(&self, flag: Option<&str>) -> String {
        pick(flag, &self.embedder, DEFAULT_EMBEDDER)
    }

    /// The pipeline of `query` and `ask`: `flag`, else the settings', else [`DEFAULT_PIPELINE`].
    pub fn pipeline_or(&self, flag: Option<&str>) -> String {
        pick(flag, &self.pipeline, DEFAULT_PIPELINE)
    }

    /// The chat model: the first of `choices` given (a flag, a pipeline's own), else the
    /// settings', else [`DEFAULT_LLM`].
    pub fn llm_or(&self, choices: &[Option<&str>]) -> String {
        pick(choices.iter().flatten().next().copied(), &self.llm, DEFAULT_LLM)
    }

    /// Where new collections are made: the `store` setting with its `read_store`, else embedded.
    pub fn store_location(&self) -> Result<StoreLocation> {
        StoreLocation::parse(self.store.as_deref().unwrap_or("embedded"), self.read_store.as_deref())
    }

    /// `config` with the `reranker` setting applied: a pipeline that reranks with the chat model
    /// or another cross-encoder reranks the same number of fused candidates with that
    /// cross-encoder instead; one that does not rerank, or diversifies with MMR, is unchanged.
    pub fn rerank_with(&self, mut config: PipelineConfig) -> PipelineConfig {
        if let Some(model) = &self.reranker
            && config.rerank.kind != RerankKind::None
            && config.rerank.kind != RerankKind::Mmr
        {
            config.rerank.kind = RerankKind::CrossEncoder;
            config.rerank.model = Some(model.clone());
        }
        config
    }

    /// Where collections live.
    pub fn collections_dir(&self) -> PathBuf {
        self.home.join("collections")
    }
}

fn pick(flag: Option<&str>, setting: &Option<String>, default: &str) -> String {
    flag.or(setting.as_deref()).unwrap_or(default).to_string()
}
