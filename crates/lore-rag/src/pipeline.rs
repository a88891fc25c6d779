use std::time::Instant;

use lore_core::{
    Answer, AnswerChecks, Calibration, ChatModel, Citation, EmbedKind, Embedder, Error, Filter, Fusion, Hit,
    PipelineConfig, RerankKind, Reranker, Result, RetrievalMode, Retriever, RetrieverQuery, RewriteKind, Store,
    ThemeUse, Timings, detect_language,
};
use serde::Serialize;

use lore_graph::{GraphRetriever, PATH_FIELD};

use crate::evidence::{Evidence, closest_window, focus};
use crate::fusion::{WeightedList, fuse};
use crate::prompt::{
    cited_numbers, context_passages, grounded_prompt, is_refusal, quoted_answer, recheck_prompt, refusal,
    withhold_orders,
};
use crate::rerank::{LlmReranker, mmr};
use crate::retrievers::{DenseRetriever, KeywordRetriever};
use crate::rewrite::{QueryRole, SearchQuery, follow_up, rewrite};
use crate::support::lexical_support;
use crate::themes::{THEME_PREFIX, asks_about_collection, is_theme_source};
use crate::verify::verify;

/// How many of the best passages found so far the chat model reads to name what a multi-hop
/// question still lacks: the first hop is usually among them, and each costs prompt tokens.
const FOLLOW_UP_PASSAGES: usize = 3;

/// What retrieval found for a query, how, and how long each stage took.
#[derive(Clone, Debug, Serialize)]
pub struct Retrieval {
    /// The `top_k` best chunks. Their score is the last stage's: the reranker's, else the fused
    /// score, else (one list) the retriever's own (cosine similarity or BM25).
    pub hits: Vec<Hit>,
    /// Time spent rewriting, embedding, searching (with fusion) and reranking; nothing is
    /// generated, so `generate_ms` is 0 and `total_ms` is the sum of the others.
    pub timings: Timings,
    /// How the hits were found.
    pub explanation: Explanation,
}

impl Retrieval {
    /// "embed 8.1 ms, search 0.42 ms", with the rewrite and rerank times when those stages ran.
    pub fn timing_line(&self) -> String {
        let t = &self.timings;
        let mut line = String::new();
        if t.rewrite_ms > 0.0 {
            line.push_str(&format!("rewrite {:.0} ms, ", t.rewrite_ms));
        }
        line.push_str(&format!("embed {:.1} ms, search {:.2} ms", t.embed_ms, t.search_ms));
        if self.explanation.rerank.is_some() {
            line.push_str(&format!(", rerank {:.0} ms", t.rerank_ms));
        }
        line
    }
}

/// How the hits were found: what was searched, what each retriever returned, the fused order
/// and the reranker's scores.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// Which retrievers the configuration asked for.
    pub mode: RetrievalMode,
    /// How their lists were merged.
    pub fusion: Fusion,
    /// The texts searched, the question first.
    pub queries: Vec<SearchQuery>,
    /// The chat model's reply the rewrites were read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_reply: Option<String>,
    /// Each retriever's hits for each query, best first.
    pub lists: Vec<RetrieverHits>,
    /// The fused order, best first, with fused scores; empty when there was one list to fuse.
    pub fused: Vec<Ranked>,
    /// What the reranker did, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankExplanation>,
    /// What was done with theme documents, when a list held any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub themes: Option<ThemeRoute>,
}

/// What a search did with the theme documents its lists held (see [`ThemeUse`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThemeRoute {
    /// Whether they stayed in the lists (with `auto`: the question was taken to be about the
    /// collection as a whole, and the themes went ahead of the passages).
    pub kept: bool,
    /// Whether the question's words ask about the collection as a whole ("what are these
    /// documents about?"); the answerability gate then lets a theme answer.
    pub asked: bool,
    /// How many theme hits were taken out of the lists.
    pub dropped: usize,
}

/// One retriever's list for one query.
#[derive(Clone, Debug, Serialize)]
pub struct RetrieverHits {
    /// Index into `Explanation::queries`.
    pub query: usize,
    /// The retriever's name ([`Retriever::name`]: `dense`, `keyword`, …).
    pub retriever: String,
    /// Its hits, best first, with its own scores.
    pub hits: Vec<Ranked>,
}

/// A chunk's place in a list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// The chunk.
    pub chunk_id: i64,
    /// Its document.
    pub source: String,
    /// The list's score for it.
    pub score: f32,
    /// How the graph retriever reached it (its best path from the query's entities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The reranking stage of an [`Explanation`].
#[derive(Clone, Debug, Serialize)]
pub struct RerankExplanation {
    /// How candidates were reordered.
    pub kind: RerankKind,
    /// The reranking model (the chat model or cross-encoder); none for MMR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The reranked candidates in their new order, with the reranker's scores (probabilities of
    /// relevance when it is calibrated).
    pub scores: Vec<Ranked>,
    /// How the reranker's raw scores and the fused ranks became those probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// The question-answering pipeline over one collection, running a [`PipelineConfig`]: rewrite
/// the question (chat model), search with each retriever at its depth, fuse the lists, rerank
/// the best candidates, keep `top_k`, and have a chat model answer from them with citations.
///
/// The retrievers are an open set: the configuration's mode gives the dense and/or keyword
/// retriever over the collection, and [`Pipeline::with_retriever`] adds any other.
pub struct Pipeline<'a> {
    collection: &'a dyn Store,
    embedder: &'a dyn Embedder,
    config: PipelineConfig,
    retrievers: Vec<Slot<'a>>,
    chat: Option<&'a dyn ChatModel>,
    reranker: Option<&'a dyn Reranker>,
    filter: Option<Filter>,
}

/// A retriever with its vote in fusion and how many candidates it returns.
struct Slot<'a> {
    retriever: Box<dyn Retriever + 'a>,
    weight: f32,
    depth: usize,
}

impl<'a> Pipeline<'a> {
    /// Fails when `embedder` is not the one the collection was built with, or when the
    /// configuration contradicts itself.
    pub fn new(collection: &'a dyn Store, embedder: &'a dyn Embedder, config: PipelineConfig) -> Result<Self> {
        collection.check_embedder(embedder.id(), embedder.dimension())?;
        if config.rewrite.kind == RewriteKind::Hyde && !config.retrieval.mode.dense() {
            return Err(Error::InvalidInput(
                "rewrite kind 'hyde' replaces what the dense retriever searches, but this retrieval mode has none: \
                 use mode 'dense', 'hybrid' or 'hybrid-graph' with it"
                    .into(),
            ));
        }
        let retrieval = &config.retrieval;
        let mut retrievers = Vec::new();
        if retrieval.mode.dense() {
            let dense = DenseRetriever::new(collection, config.min_score);
            retrievers.push(Slot {
                retriever: Box::new(dense),
                weight: retrieval.dense_weight,
                depth: retrieval.dense_depth,
            });
        }
        if retrieval.mode.keyword() {
            let keyword = KeywordRetriever::new(collection);
            retrievers.push(Slot {
                retriever: Box::new(keyword),
                weight: retrieval.keyword_weight,
                depth: retrieval.keyword_depth,
            });
        }
        if retrieval.mode.graph() {
            collection.check_graph()?;
            retrievers.push(Slot {
                retriever: Box::new(GraphRetriever::new(collection)),
                weight: retrieval.graph_weight,
                depth: retrieval.graph_depth,
            });
        }
        // `never` keeps themes out of the searches themselves, so the lists stay full.
        let filter = (retrieval.themes == ThemeUse::Never)
            .then(|| Filter::Not { not: Box::new(Filter::source_prefix(THEME_PREFIX)) });
        Ok(Pipeline { collection, embedder, config, retrievers, chat: None, reranker: None, filter })
    }

    /// Adds a retriever whose list is fused with the others': `weight` is its vote in fusion,
    /// `depth` how many candidates it returns (at least what `top_k` and the reranker need).
    pub fn with_retriever(mut self, retriever: Box<dyn Retriever + 'a>, weight: f32, depth: usize) -> Self {
        self.retrievers.push(Slot { retriever, weight, depth });
        self
    }

    /// The chat model that rewrites questions and, for `rerank.kind = "llm"`, judges passages.
    /// Without one, such a configuration fails at retrieval, except in [`Pipeline::answer`],
    /// which uses its own chat model for them.
    pub fn with_chat(mut self, chat: &'a dyn ChatModel) -> Self {
        self.chat = Some(chat);
        self
    }

    /// The reranker for `rerank.kind = "cross-encoder"`.
    pub fn with_reranker(mut self, reranker: &'a dyn Reranker) -> Self {
        self.reranker = Some(reranker);
        self
    }

    /// Only chunks passing `filter` are retrieved, by every retriever.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(earlier) => filter.and(earlier),
            None => filter,
        });
        self
    }

    /// The configuration it runs.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Whether the configuration needs a chat model before generation (to rewrite or rerank).
    pub fn needs_chat(config: &PipelineConfig) -> bool {
        config.rewrite.kind != RewriteKind::None || config.rerank.kind == RerankKind::Llm
    }

    /// The `top_k` best chunks for `query`, with how they were found.
    pub fn retrieve(&self, query: &str) -> Result<Retrieval> {
        self.retrieve_with(self.chat, query)
    }

    fn retrieve_with(&self, chat: Option<&dyn ChatModel>, question: &str) -> Result<Retrieval> {
        let config = &self.config;
        if Self::needs_chat(config) && chat.is_none() {
            let what = if config.rewrite.kind != RewriteKind::None { "query rewriting" } else { "the LLM reranker" };
            return Err(Error::InvalidInput(format!(
                "this pipeline's {what} needs a chat model: give one with Pipeline::with_chat"
            )));
        }
        let started = Instant::now();
        let (mut queries, mut rewrite_reply) = rewrite(chat, config.rewrite.kind, config.rewrite.queries, question)?;
        let mut rewrite_ms = ms(started);

        let mut search = Search { pipeline: self, embed_ms: 0.0, question_vector: None };
        let started = Instant::now();
        let mut lists = search.lists(&queries, 0)?;
        let mut themes = None;
        let mut fused = self.fuse_routed(question, &mut lists, &mut themes);
        let mut search_ms = ms(started) - search.embed_ms;
        if let (RewriteKind::MultiHop, Some(chat)) = (config.rewrite.kind, chat) {
            let mut replies = Vec::new();
            for _ in 0..config.rewrite.rounds {
                let started = Instant::now();
                let passages: Vec<&str> = fused.iter().take(FOLLOW_UP_PASSAGES).map(|h| h.text.as_str()).collect();
                let (next, reply) = follow_up(chat, question, &queries, &passages)?;
                replies.push(reply);
                rewrite_ms += ms(started);
                let Some(text) = next else { break };
                queries.push(SearchQuery { text, role: QueryRole::FollowUp });
                let (started, embedded_before) = (Instant::now(), search.embed_ms);
                lists.extend(search.lists(&queries, queries.len() - 1)?);
                fused = self.fuse_routed(question, &mut lists, &mut themes);
                search_ms += ms(started) - (search.embed_ms - embedded_before);
            }
            rewrite_reply = Some(replies.join("\n---\n"));
        }

        let ranked = |hits: &[Hit]| hits.iter().map(Ranked::of).collect::<Vec<_>>();
        // One list is its own order, unless themes were moved ahead of its passages.
        let reordered = themes.as_ref().is_some_and(|route| route.kept) && config.retrieval.themes == ThemeUse::Auto;
        let fused_order = if lists.len() > 1 || reordered { ranked(&fused) } else { Vec::new() };

        let started = Instant::now();
        let (hits, rerank) = search.rerank(chat, question, fused)?;
        let rerank_ms = ms(started);
        let embed_ms = search.embed_ms;
        let timings = Timings {
            rewrite_ms,
            embed_ms,
            search_ms,
            rerank_ms,
            generate_ms: 0.0,
            total_ms: rewrite_ms + embed_ms + search_ms + rerank_ms,
        };
        let explanation = Explanation {
            mode: config.retrieval.mode,
            fusion: config.retrieval.fusion,
            queries,
            rewrite_reply,
            lists: lists
                .into_iter()
                .map(|(slot, query, hits)| RetrieverHits {
                    query,
                    retriever: self.retrievers[slot].retriever.name().to_string(),
                    hits: ranked(&hits),
                })
                .collect(),
            fused: fused_order,
            rerank,
            themes,
        };
        Ok(Retrieval { hits, timings, explanation })
    }

    /// Answers `question` from the retrieved chunks, streaming the answer through `on_token`.
    /// `chat` also rewrites and reranks when the pipeline has no chat model of its own.
    /// With no chunk retrieved the answer is the refusal sentence, and no model is run.
    pub fn answer(&self, chat: &dyn ChatModel, question: &str, on_token: &mut dyn FnMut(&str)) -> Result<Answer> {
        let started = Instant::now();
        let retrieval = self.retrieve_with(self.chat.or(Some(chat)), question)?;
        let mut answer = self.answer_from(chat, question, &retrieval, on_token)?;
        answer.timings.total_ms = ms(started);
        Ok(answer)
    }

    /// Answers `question` from chunks already retrieved (to show the retrieval first): the
    /// passages lose the sentences that give orders, the answerability gate refuses without
    /// generating when the evidence is weak, and the generated answer's sentences are checked
    /// against the passages they cite ([`lore_core::AnswerChecks`] says what each step did).
    pub fn answer_from(
        &self,
        chat: &dyn ChatModel,
        question: &str,
        retrieval: &Retrieval,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Answer> {
        let config = &self.config;
        let (passages, withheld) = withhold_orders(&context_passages(&retrieval.hits));
        let gate = &config.answerability;
        let evidence = Evidence::of(question, retrieval, &passages, gate);
        let gated = evidence.gated;
        let mut checks = AnswerChecks {
            evidence: (gate.min_evidence > 0.0).then_some(evidence.score),
            gated,
            withheld,
            ..AnswerChecks::default()
        };
        let generate_started = Instant::now();
        let Generated { mut text, prompt_tokens, completion_tokens, second_look } = if gated {
            let text = refusal(detect_language(question)).to_string();
            on_token(&text);
            Generated { text, prompt_tokens: 0, completion_tokens: 0, second_look: None }
        } else {
            self.generate(chat, question, &passages, evidence.score, on_token)?
        };
        checks.second_look = second_look;
        let generate_ms = ms(generate_started);
        let mut refused = is_refusal(&text);
        if !refused && config.verification.enabled {
            let verified = verify(&text, question, &passages, &config.verification);
            checks.sentences = verified.sentences;
            if verified.changed || !verified.says_something {
                refused = !verified.says_something;
                let shown = if refused { refusal(detect_language(question)).to_string() } else { verified.text };
                checks.generated = Some(std::mem::replace(&mut text, shown));
            }
        }
        let check = &config.refusal;
        let mut quoted_from = None;
        if refused
            && !gated
            && check.quote
            && evidence.score >= check.min_evidence
            && let Some((i, window)) = closest_window(question, &passages)
        {
            let streamed = std::mem::replace(&mut text, quoted_answer(detect_language(question), i + 1, &window));
            checks.generated.get_or_insert(streamed);
            checks.quoted = true;
            refused = false;
            quoted_from = Some(i + 1);
        }
        let mut cited = match (refused, quoted_from) {
            (true, _) => Vec::new(),
            (false, Some(n)) => vec![n],
            // Verification credits each kept sentence to the passages that support it.
            (false, None) if !checks.sentences.is_empty() => {
                let mut credited: Vec<usize> =
                    checks.sentences.iter().filter(|s| s.kept).flat_map(|s| s.supported_by.iter().copied()).collect();
                credited.sort_unstable();
                credited.dedup();
                credited
            }
            (false, None) => cited_numbers(&text),
        };
        if !refused && cited.is_empty() {
            // An answer that names no source is credited to the passage it takes most from (the
            // question's words count: an answer may restate the passage's sentence).
            let best = passages
                .iter()
                .map(|hit| lexical_support(&text, "", std::slice::from_ref(hit)))
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1));
            cited.extend(best.filter(|&(_, support)| support > 0.0).map(|(i, _)| i + 1));
        }
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
        let timings =
            Timings { generate_ms, total_ms: retrieval.timings.total_ms + generate_ms, ..retrieval.timings.clone() };
        Ok(Answer {
            question: question.to_string(),
            text: text.trim().to_string(),
            refused,
            citations,
            prompt_tokens,
            completion_tokens,
            timings,
            checks,
        })
    }

    /// The evidence in `retrieval` that its passages answer `question`, and the gate's decision,
    /// as [`Pipeline::answer_from`] makes it.
    pub fn evidence(&self, question: &str, retrieval: &Retrieval) -> Evidence {
        let (passages, _) = withhold_orders(&context_passages(&retrieval.hits));
        Evidence::of(question, retrieval, &passages, &self.config.answerability)
    }
}

impl Pipeline<'_> {
    /// [`Pipeline::fuse`] after theme documents are kept in `lists` or taken out of them, as the
    /// configuration's [`ThemeUse`] says (`never` keeps them out of the searches themselves:
    /// see [`Pipeline::new`]).
    /// `auto` decides on the first fusion where a list holds a theme: the question is about the
    /// collection as a whole when a theme comes ahead of every passage, or when its words ask
    /// for one ([`asks_about_collection`]), and the themes then go ahead of the passages.
    /// `route` keeps the decision for later rounds, and stays `None` while no list holds a
    /// theme.
    fn fuse_routed(
        &self,
        question: &str,
        lists: &mut [(usize, usize, Vec<Hit>)],
        route: &mut Option<ThemeRoute>,
    ) -> Vec<Hit> {
        let is_theme = |hit: &Hit| is_theme_source(&hit.source);
        let mut fused = self.fuse(lists);
        if !lists.iter().any(|(_, _, hits)| hits.iter().any(is_theme)) {
            return fused;
        }
        let themes = self.config.retrieval.themes;
        let route = route.get_or_insert_with(|| {
            let asked = asks_about_collection(question);
            let kept = match themes {
                ThemeUse::Always => true,
                ThemeUse::Never => false,
                ThemeUse::Auto => asked || fused.first().is_some_and(is_theme),
            };
            ThemeRoute { kept, asked, dropped: 0 }
        });
        if route.kept {
            if themes == ThemeUse::Auto {
                // Stable: themes in their fused order, then passages in theirs.
                fused.sort_by_key(|hit| !is_theme(hit));
            }
            return fused;
        }
        for (_, _, hits) in lists.iter_mut() {
            let before = hits.len();
            hits.retain(|hit| !is_theme(hit));
            route.dropped += before - hits.len();
        }
        self.fuse(lists)
    }

    /// The lists of (retriever slot, query, hits) fused into one, or the one list as it is.
    fn fuse(&self, lists: &[(usize, usize, Vec<Hit>)]) -> Vec<Hit> {
        let weighted: Vec<WeightedList> =
            lists.iter().map(|(slot, _, hits)| WeightedList { hits, weight: self.retrievers[*slot].weight }).collect();
        match weighted.as_slice() {
            [one] => one.hits.to_vec(),
            many => fuse(many, self.config.retrieval.fusion, self.config.retrieval.rrf_k),
        }
    }

    /// The generator's answer from `passages`, with the second look of [`RefusalCheck`] at a
    /// refusal when the `evidence` score is high enough. While the first sentence may be a
    /// refusal the streamed pieces are held back, so that a refusal the second look overturns
    /// is never shown.
    ///
    /// [`RefusalCheck`]: lore_core::RefusalCheck
    fn generate(
        &self,
        chat: &dyn ChatModel,
        question: &str,
        passages: &[Hit],
        evidence: f32,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generated> {
        let check = &self.config.refusal;
        let recheck = check.recheck && evidence >= check.min_evidence;
        let options = &self.config.generation;
        let mut held = String::new();
        let mut streaming = !recheck;
        let first = chat.chat(&grounded_prompt(question, passages, self.config.prompt), options, &mut |piece| {
            if streaming {
                return on_token(piece);
            }
            held.push_str(piece);
            if held.contains(['。', '.', '!', '！', '?', '？', '\n']) && !is_refusal(&held) {
                streaming = true;
                on_token(&held);
            }
        })?;
        let (mut text, mut prompt_tokens, mut completion_tokens) =
            (first.text, first.prompt_tokens, first.completion_tokens);
        let mut second_look = None;
        if recheck && is_refusal(&text) {
            // Asked again, the model reads only each passage's sentences that hold the question's
            // words: a small model misses an answer in a long passage more than in a short one.
            let focused = focus(question, passages);
            let second = chat.chat(&recheck_prompt(question, &focused, self.config.prompt), options, &mut |_| {})?;
            prompt_tokens += second.prompt_tokens;
            completion_tokens += second.completion_tokens;
            if !is_refusal(&second.text) && lexical_support(&second.text, question, passages) >= check.min_support {
                text = second.text.clone();
            }
            second_look = Some(second.text);
        }
        if !streaming {
            on_token(&text);
        }
        Ok(Generated { text, prompt_tokens, completion_tokens, second_look })
    }
}

impl Ranked {
    fn of(hit: &Hit) -> Ranked {
        let path = hit.metadata.get(PATH_FIELD).and_then(|p| p.as_str()).map(str::to_string);
        Ranked { chunk_id: hit.chunk_id, source: hit.source.clone(), score: hit.score, path }
    }
}

/// What [`Pipeline::generate`] produced.
struct Generated {
    text: String,
    prompt_tokens: usize,
    completion_tokens: usize,
    /// The second look's reply, when there was one.
    second_look: Option<String>,
}

/// One retrieval's searches, with the embedding time and the question's vector kept for MMR.
struct Search<'p, 'a> {
    pipeline: &'p Pipeline<'a>,
    embed_ms: f64,
    question_vector: Option<Vec<f32>>,
}

impl Search<'_, '_> {
    /// Candidates each retriever must return: enough for `top_k`, and for the reranker.
    fn depth(&self, retriever_depth: usize) -> usize {
        let config = &self.pipeline.config;
        let needed = match config.rerank.kind {
            RerankKind::None => config.top_k,
            _ => config.top_k.max(config.rerank.candidates),
        };
        retriever_depth.max(needed)
    }

    /// Each retriever's hits for each query from `queries[from]` on, as (retriever slot, query
    /// index, hits): for every query in order, each retriever in order. A retriever that needs
    /// vectors searches a hypothetical answer (embedded as a passage) instead of the question
    /// when there is one; the others search every query but hypothetical answers.
    fn lists(&mut self, queries: &[SearchQuery], from: usize) -> Result<Vec<(usize, usize, Vec<Hit>)>> {
        let pipeline = self.pipeline;
        let filter = pipeline.filter.as_ref();
        let hypothetical = queries.iter().any(|q| q.role == QueryRole::HypotheticalAnswer);

        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; queries.len()];
        if pipeline.retrievers.iter().any(|slot| slot.retriever.needs_vector()) {
            for kind in [EmbedKind::Query, EmbedKind::Passage] {
                let wanted: Vec<usize> = (from..queries.len())
                    .filter(|&i| match queries[i].role {
                        QueryRole::HypotheticalAnswer => kind == EmbedKind::Passage,
                        QueryRole::Question if hypothetical => false,
                        _ => kind == EmbedKind::Query,
                    })
                    .collect();
                let texts: Vec<&str> = wanted.iter().map(|&i| queries[i].text.as_str()).collect();
                for (i, vector) in wanted.iter().zip(self.embed(&texts, kind)?) {
                    vectors[*i] = Some(vector);
                }
            }
            if from == 0 && queries[0].role == QueryRole::Question {
                self.question_vector = vectors[0].clone();
            }
        }

        let mut lists = Vec::new();
        for (i, query) in queries.iter().enumerate().skip(from) {
            for (slot_index, slot) in pipeline.retrievers.iter().enumerate() {
                let retriever = &slot.retriever;
                let vector = vectors[i].as_deref();
                let searched = if retriever.needs_vector() {
                    vector.is_some()
                } else {
                    query.role != QueryRole::HypotheticalAnswer
                };
                if !searched {
                    continue;
                }
                let input = RetrieverQuery { text: &query.text, vector };
                let hits = retriever.retrieve(input, self.depth(slot.depth), filter)?;
                lists.push((slot_index, i, hits));
            }
        }
        Ok(lists)
    }

    fn embed(&mut self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let vectors = self.pipeline.embedder.embed(texts, kind)?;
        self.embed_ms += ms(started);
        Ok(vectors)
    }

    /// The `top_k` hits after reranking the best `rerank.candidates` of `fused`, and what the
    /// reranker scored.
    fn rerank(
        &mut self,
        chat: Option<&dyn ChatModel>,
        question: &str,
        mut fused: Vec<Hit>,
    ) -> Result<(Vec<Hit>, Option<RerankExplanation>)> {
        let config = &self.pipeline.config;
        let top_k = config.top_k;
        let kind = config.rerank.kind;
        let count = config.rerank.candidates.min(fused.len());
        let llm;
        let scorer: &dyn Reranker = match kind {
            RerankKind::None => {
                fused.truncate(top_k);
                return Ok((fused, None));
            }
            RerankKind::Mmr => return self.mmr(question, fused),
            RerankKind::Llm => {
                llm = LlmReranker::new(
                    chat.ok_or_else(|| Error::InvalidInput("the LLM reranker needs a chat model".into()))?,
                );
                &llm
            }
            RerankKind::CrossEncoder => self.pipeline.reranker.ok_or_else(|| {
                Error::InvalidInput(
                    "rerank kind 'cross-encoder' needs a cross-encoder: give one with Pipeline::with_reranker \
                     (the lore command loads it from rerank.model)"
                        .into(),
                )
            })?,
        };
        let rest = fused.split_off(count);
        let texts: Vec<&str> = fused.iter().map(|h| h.text.as_str()).collect();
        let scores = scorer.score(question, &texts)?;
        let calibration = scorer.calibration();
        for (rank, (hit, score)) in fused.iter_mut().zip(scores).enumerate() {
            hit.score = calibration.map_or(score, |c| c.probability(score, rank + 1));
        }
        // Stable: equal scores keep the fused order.
        fused.sort_by(|a, b| b.score.total_cmp(&a.score));
        let explanation = RerankExplanation {
            kind,
            model: Some(scorer.id().to_string()),
            scores: fused.iter().map(Ranked::of).collect(),
            calibration,
        };
        fused.extend(rest);
        fused.truncate(top_k);
        Ok((fused, Some(explanation)))
    }

    /// MMR over the best `rerank.candidates`, relevance being cosine similarity with the
    /// question's embedding and redundancy with the stored vectors of the chunks picked.
    fn mmr(&mut self, question: &str, mut fused: Vec<Hit>) -> Result<(Vec<Hit>, Option<RerankExplanation>)> {
        let config = &self.pipeline.config;
        let query = match self.question_vector.take() {
            Some(vector) => vector,
            None => self.embed(&[question], EmbedKind::Query)?.remove(0),
        };
        let rest = fused.split_off(config.rerank.candidates.min(fused.len()));
        let ids: Vec<i64> = fused.iter().map(|h| h.chunk_id).collect();
        // A chunk deleted since the search has no vector; it is dropped.
        let (candidates, vectors): (Vec<Hit>, Vec<Vec<f32>>) = fused
            .into_iter()
            .zip(self.pipeline.collection.vectors(&ids)?)
            .filter_map(|(hit, vector)| vector.map(|v| (hit, v)))
            .unzip();
        let mut picked: Vec<Hit> = mmr(&query, &vectors, config.rerank.mmr_lambda)
            .into_iter()
            .map(|(i, value)| Hit { score: value, ..candidates[i].clone() })
            .collect();
        let explanation = RerankExplanation {
            kind: RerankKind::Mmr,
            model: None,
            scores: picked.iter().map(Ranked::of).collect(),
            calibration: None,
        };
        picked.extend(rest);
        picked.truncate(config.top_k);
        Ok((picked, Some(explanation)))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
