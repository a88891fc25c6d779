//! Settings from `lore.toml`, under flags and `LORE_*` environment variables.
//!
//! Precedence, highest first: command-line flag, environment variable, `./lore.toml`,
//! `$LORE_HOME/lore.toml`, built-in default.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Collection used when `-c` is not given.
    pub collection: Option<String>,
    /// Embedder for new collections.
    pub embedder: Option<String>,
    /// Chat model for `ask`.
    pub llm: Option<String>,
    pub top_k: Option<usize>,
    /// Pipeline preset or TOML file for `query` and `ask` when `--pipeline` is not given.
    pub pipeline: Option<String>,
    pub threads: Option<usize>,
}

impl FileConfig {
    pub fn load(home: &Path) -> Result<FileConfig> {
        let mut merged = FileConfig::default();
        for path in [PathBuf::from("lore.toml"), home.join("lore.toml")] {
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let file: FileConfig = toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
            merged = FileConfig {
                collection: merged.collection.or(file.collection),
                embedder: merged.embedder.or(file.embedder),
                llm: merged.llm.or(file.llm),
                top_k: merged.top_k.or(file.top_k),
                pipeline: merged.pipeline.or(file.pipeline),
                threads: merged.threads.or(file.threads),
            };
        }
        Ok(merged)
    }
}
