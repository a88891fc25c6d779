use std::time::Instant;

use lore_core::{
    Answer, ChatModel, Citation, EmbedKind, Embedder, Hit, PipelineConfig, Result, Timings, detect_language,
};
use lore_index::Collection;

use crate::prompt::{cited_numbers, context_passages, grounded_prompt, is_refusal, refusal};

/// What retrieval found for a query, and how long it took.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Retrieval {
    pub hits: Vec<Hit>,
    pub embed_ms: f64,
    pub search_ms: f64,
}

/// The question-answering pipeline over one collection: embed the question, take the top-k
/// chunks, and have a chat model answer from them with citations.
pub struct Pipeline<'a> {
    collection: &'a Collection,
    embedder: &'a dyn Embedder,
    config: PipelineConfig,
}

impl<'a> Pipeline<'a> {
    /// Fails when `embedder` is not the one the collection was built with.
    pub fn new(collection: &'a Collection, embedder: &'a dyn Embedder, config: PipelineConfig) -> Result<Self> {
        collection.check_embedder(embedder.id(), embedder.dimension())?;
        Ok(Pipeline { collection, embedder, config })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The `top_k` best chunks for `query` scoring at least `min_score`.
    pub fn retrieve(&self, query: &str) -> Result<Retrieval> {
        let started = Instant::now();
        let vector = self.embedder.embed(&[query], EmbedKind::Query)?.remove(0);
        let embed_ms = ms(started);
        let started = Instant::now();
        let mut hits = self.collection.search(&vector, self.config.top_k, None)?;
        hits.retain(|h| h.score >= self.config.min_score);
        Ok(Retrieval { hits, embed_ms, search_ms: ms(started) })
    }

    /// Answers `question` from the retrieved chunks, streaming the answer through `on_token`.
    /// With no chunk retrieved the answer is the refusal sentence, and no model is run.
    pub fn answer(&self, chat: &dyn ChatModel, question: &str, on_token: &mut dyn FnMut(&str)) -> Result<Answer> {
        let started = Instant::now();
        let retrieval = self.retrieve(question)?;
        let passages = context_passages(&retrieval.hits);
        let generate_started = Instant::now();
        let (text, prompt_tokens, completion_tokens) = if passages.is_empty() {
            let text = refusal(detect_language(question)).to_string();
            on_token(&text);
            (text, 0, 0)
        } else {
            let messages = grounded_prompt(question, &passages, self.config.prompt);
            let generation = chat.chat(&messages, &self.config.generation, on_token)?;
            (generation.text, generation.prompt_tokens, generation.completion_tokens)
        };
        let generate_ms = ms(generate_started);
        let refused = is_refusal(&text);
        let cited = if refused { Vec::new() } else { cited_numbers(&text) };
        let citations = passages
            .iter()
            .enumerate()
            .map(|(i, hit)| Citation {
                n: i + 1,
                chunk_id: hit.chunk_id,
                source: hit.source.clone(),
                score: hit.score,
                cited: cited.contains(&(i + 1)),
            })
            .collect();
        Ok(Answer {
            question: question.to_string(),
            text: text.trim().to_string(),
            refused,
            citations,
            prompt_tokens,
            completion_tokens,
            timings: Timings {
                embed_ms: retrieval.embed_ms,
                search_ms: retrieval.search_ms,
                generate_ms,
                total_ms: ms(started),
            },
        })
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
