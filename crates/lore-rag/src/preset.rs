//! Named pipeline configurations, usable wherever a pipeline is chosen by name.

use std::path::Path;

use lore_core::{Error, PipelineConfig, Result};

/// The built-in presets, by name, as the TOML they are written in (`presets/` in this crate).
pub const PRESETS: &[(&str, &str)] = &[
    ("dense", include_str!("../presets/dense.toml")),
    ("tutorial", include_str!("../presets/tutorial.toml")),
    ("bm25", include_str!("../presets/bm25.toml")),
    ("hybrid", include_str!("../presets/hybrid.toml")),
    ("hybrid-zscore", include_str!("../presets/hybrid-zscore.toml")),
    ("hybrid-rerank", include_str!("../presets/hybrid-rerank.toml")),
    ("hyde", include_str!("../presets/hyde.toml")),
    ("multi-query", include_str!("../presets/multi-query.toml")),
    ("step-back", include_str!("../presets/step-back.toml")),
    ("graph", include_str!("../presets/graph.toml")),
    ("hybrid-graph", include_str!("../presets/hybrid-graph.toml")),
    ("multi-hop", include_str!("../presets/multi-hop.toml")),
];

/// A preset's name, or the path of a TOML file holding a [`PipelineConfig`]; returns the name to
/// report it under (the preset's name or the file's stem) and the configuration.
pub fn load_pipeline(name_or_path: &str) -> Result<(String, PipelineConfig)> {
    if let Some((name, text)) = PRESETS.iter().find(|(name, _)| *name == name_or_path) {
        return Ok((name.to_string(), parse_pipeline(text, name)?));
    }
    let path = Path::new(name_or_path);
    if !path.is_file() {
        let names: Vec<&str> = PRESETS.iter().map(|(name, _)| *name).collect();
        return Err(Error::NotFound(format!(
            "no pipeline preset or file named {name_or_path:?}; presets: {}",
            names.join(", ")
        )));
    }
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok((name, parse_pipeline(&text, name_or_path)?))
}

/// Parses a pipeline configuration written in TOML; `origin` names it in errors.
pub fn parse_pipeline(text: &str, origin: &str) -> Result<PipelineConfig> {
    toml::from_str(text).map_err(|e| Error::InvalidInput(format!("pipeline {origin}: {e}")))
}
