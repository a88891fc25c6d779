//! Explanations as text, for people: what was searched, each list, the fused order, the reranking.

use std::fmt;

use crate::pipeline::{Explanation, Ranked};

/// Lists are cut to this many entries in the text (all are in the serialised explanation).
const SHOWN: usize = 10;

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Searched:")?;
        for (i, query) in self.queries.iter().enumerate() {
            writeln!(f, "  [{i}] {}: {}", query.role.name(), one_line(&query.text, 160))?;
        }
        for list in &self.lists {
            let retriever = match list.retriever.as_str() {
                "dense" => "dense (cosine)",
                "keyword" => "keyword (BM25)",
                "graph" => "graph (entities)",
                other => other,
            };
            writeln!(f, "{retriever} hits for [{}], {} in all:", list.query, list.hits.len())?;
            write_ranked(f, &list.hits)?;
        }
        match &self.themes {
            Some(themes) if themes.kept => writeln!(f, "Themes: kept in the lists")?,
            Some(themes) => writeln!(f, "Themes: {} theme hits taken out of the lists above", themes.dropped)?,
            None => {}
        }
        if !self.fused.is_empty() {
            writeln!(f, "Fused ({}), {} in all:", self.fusion.name(), self.fused.len())?;
            write_ranked(f, &self.fused)?;
        }
        if let Some(rerank) = &self.rerank {
            let model = rerank.model.as_ref().map(|m| format!(" by {m}")).unwrap_or_default();
            writeln!(f, "Reranked ({}{model}), {} candidates:", rerank.kind.name(), rerank.scores.len())?;
            write_ranked(f, &rerank.scores)?;
        }
        Ok(())
    }
}

fn write_ranked(f: &mut fmt::Formatter<'_>, ranked: &[Ranked]) -> fmt::Result {
    for (i, r) in ranked.iter().take(SHOWN).enumerate() {
        writeln!(f, "  {:>3}. {:>9.4}  {}  (chunk {})", i + 1, r.score, r.source, r.chunk_id)?;
        if let Some(path) = &r.path {
            writeln!(f, "       via {path}")?;
        }
    }
    if ranked.len() > SHOWN {
        writeln!(f, "       … {} more", ranked.len() - SHOWN)?;
    }
    Ok(())
}

/// `text` on one line, cut to `max` characters with "…".
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
