//! The pipeline's own logic, with a word-hashing embedder (lore-rag builds without candle) and
//! scripted chat replies where a real model cannot be made to cite or refuse on demand. The
//! same flow with real models is tested in lore-cli's integration tests.

use std::fs;
use std::sync::Mutex;

use lore_core::{
    ChatModel, ChunkConfig, Document, EmbedKind, Embedder, Filter, FinishReason, Fusion, Generation, GenerationOptions,
    Hit, Message, Metadata, PipelineConfig, PromptStyle, RerankConfig, RerankKind, Result, RetrievalConfig,
    RetrievalMode, RewriteConfig, RewriteKind, Section, Store, ThemeUse, Tokenize,
};
use lore_index::Collection;
use lore_rag::{
    Pipeline, QueryRole, REFUSAL_EN, REFUSAL_ZH, Source, WeightedList, cited_numbers, fuse, grounded_prompt, ingest,
    is_refusal, parse_rewrites, standalone_question, truncate,
};
use lore_testkit::WordHash;
use serde_json::json;

/// Replies with a fixed text, streamed in two pieces, and records the prompt it was given.
struct Scripted {
    reply: String,
    prompts: Mutex<Vec<Vec<Message>>>,
}

impl Scripted {
    fn new(reply: &str) -> Self {
        Scripted { reply: reply.into(), prompts: Mutex::new(Vec::new()) }
    }
}

impl ChatModel for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }
    fn chat(&self, messages: &[Message], _: &GenerationOptions, on_token: &mut dyn FnMut(&str)) -> Result<Generation> {
        self.prompts.lock().unwrap().push(messages.to_vec());
        let middle = self.reply.char_indices().nth(self.reply.chars().count() / 2).map_or(0, |(i, _)| i);
        on_token(&self.reply[..middle]);
        on_token(&self.reply[middle..]);
        Ok(Generation { text: self.reply.clone(), prompt_tokens: 10, completion_tokens: 5, finish: FinishReason::Stop })
    }

    fn choice_probabilities(&self, _: &[Message], _: &[&str]) -> Result<Vec<f32>> {
        Err(lore_core::Error::Endpoint("a scripted model does not score choices".into()))
    }
}

fn doc(source: &str, text: &str) -> Source {
    Source::Document(Document::new(source, vec![Section::new(vec![], text)]))
}

fn collection_with(docs: Vec<Source>) -> (tempfile::TempDir, Collection) {
    collection_embedded(&WordHash, docs)
}

fn collection_embedded(embedder: &dyn Embedder, docs: Vec<Source>) -> (tempfile::TempDir, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let collection =
        Collection::create(&dir.path().join("c"), embedder.id(), embedder.dimension(), ChunkConfig::Whole).unwrap();
    ingest(&collection, embedder, None, &ChunkConfig::Whole, &Metadata::new(), docs, &mut |_| {}).unwrap();
    (dir, collection)
}

#[test]
fn citations_are_parsed_in_every_common_form() {
    assert_eq!(cited_numbers("Rust [1] and Lore [2][3], see [1, 4] and 【5】."), [1, 2, 3, 4, 5]);
    assert_eq!(cited_numbers("arrays like [a] or [1-2] are not citations; [ 6 ] is"), [6]);
    assert!(cited_numbers("no brackets [ at all").is_empty());
}

#[test]
fn refusals_are_recognised_despite_punctuation_and_spacing() {
    assert!(is_refusal(REFUSAL_ZH));
    assert!(is_refusal("根据提供的文档,我无法回答该问题"));
    assert!(is_refusal("  I cannot answer this question based on the provided documents"));
    assert!(is_refusal("根据参考文档，我无法回答该问题。"));
    assert!(is_refusal("I can't answer that from these documents."));
    assert!(!is_refusal("The context length is 32K tokens [1]."));
    assert!(!is_refusal("模型性能下降 [1]。因此无法回答的问题会被拒绝。"));
}

#[test]
fn the_prompt_follows_the_question_language_and_numbers_the_sources() {
    let (_dir, collection) = collection_with(vec![doc("a.txt", "alpha beta"), doc("b.txt", "gamma delta")]);
    let hits = collection.search(&WordHash.embed(&["alpha"], EmbedKind::Query).unwrap()[0], 2, None).unwrap();
    let en = grounded_prompt("What is alpha?", &hits, PromptStyle::Cited);
    assert!(en[0].content.contains(REFUSAL_EN));
    assert!(en[1].content.contains("[1] (a.txt) alpha beta") && en[1].content.contains("[2] (b.txt)"));
    let zh = grounded_prompt("阿尔法是什么？", &hits, PromptStyle::Cited);
    assert!(zh[0].content.contains(REFUSAL_ZH));
    assert!(zh[1].content.contains("问题：阿尔法是什么？"));

    let tutorial = grounded_prompt("阿尔法是什么？", &hits, PromptStyle::Tutorial);
    assert!(tutorial[0].content.contains(REFUSAL_ZH) && !tutorial[0].content.contains("[n]"));
    assert!(tutorial[1].content.contains("alpha beta\n\ngamma delta") && !tutorial[1].content.contains("[1]"));
}

#[test]
fn answers_mark_the_sources_they_cite() {
    let (_dir, collection) = collection_with(vec![
        doc("rust.txt", "Rust is a systems programming language"),
        doc("lore.txt", "Lore is a RAG engine written in Rust"),
        doc("tea.txt", "Green tea is brewed at low temperature"),
    ]);
    let pipeline = Pipeline::new(&collection, &WordHash, PipelineConfig { top_k: 2, ..Default::default() }).unwrap();
    let chat = Scripted::new("Lore is a RAG engine [1].");
    let mut streamed = String::new();
    let answer = pipeline.answer(&chat, "What is Lore engine", &mut |p| streamed.push_str(p)).unwrap();
    assert_eq!(streamed, "Lore is a RAG engine [1].");
    assert!(!answer.refused);
    assert_eq!(answer.citations.len(), 2);
    assert_eq!(answer.citations[0].source, "lore.txt");
    assert!(answer.citations[0].cited && !answer.citations[1].cited);
    let prompt = &chat.prompts.lock().unwrap()[0];
    assert!(prompt[1].content.contains("[1] (lore.txt)"));
    assert!(answer.timings.total_ms >= answer.timings.generate_ms);
}

#[test]
fn a_refusal_cites_nothing_and_an_empty_retrieval_skips_the_model() {
    let (_dir, collection) = collection_with(vec![doc("tea.txt", "Green tea is brewed at low temperature")]);
    let pipeline = Pipeline::new(&collection, &WordHash, PipelineConfig::default()).unwrap();
    let refused = pipeline.answer(&Scripted::new(REFUSAL_EN), "Who won in 1998? [1]", &mut |_| {}).unwrap();
    assert!(refused.refused);
    assert!(refused.citations.iter().all(|c| !c.cited));

    let strict =
        Pipeline::new(&collection, &WordHash, PipelineConfig { min_score: 0.99, ..Default::default() }).unwrap();
    let chat = Scripted::new("should not be called");
    let answer = strict.answer(&chat, "量子计算是什么？", &mut |_| {}).unwrap();
    assert_eq!(answer.text, REFUSAL_ZH);
    assert!(answer.refused && answer.citations.is_empty());
    assert!(chat.prompts.lock().unwrap().is_empty());
}

#[test]
fn a_collection_built_with_another_embedder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let collection = Collection::create(&dir.path().join("c"), "e5-small", 384, ChunkConfig::Whole).unwrap();
    let err = Pipeline::new(&collection, &WordHash, PipelineConfig::default()).err().unwrap().to_string();
    assert!(err.contains("e5-small") && err.contains("word-hash"), "{err}");
}

#[test]
fn ingest_reports_bad_files_and_skips_unchanged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    fs::create_dir(&files).unwrap();
    fs::write(files.join("good.txt"), "alpha beta gamma").unwrap();
    fs::write(files.join("other.md"), "# Title\ndelta epsilon").unwrap();
    fs::write(files.join("junk.txt"), b"\x00\x01\x02binary").unwrap();
    let sources = |names: &[&str]| names.iter().map(|n| Source::File(files.join(n))).collect::<Vec<_>>();
    let collection = Collection::create(&dir.path().join("c"), "word-hash", 64, ChunkConfig::default()).unwrap();
    let chunking = ChunkConfig::default();

    let mut progress = Vec::new();
    let first = ingest(
        &collection,
        &WordHash,
        None,
        &chunking,
        &Metadata::new(),
        sources(&["good.txt", "junk.txt", "missing.txt", "other.md"]),
        &mut |p| progress.push(p),
    )
    .unwrap();
    assert_eq!((first.added, first.replaced, first.unchanged, first.chunks), (2, 0, 0, 2));
    let failed: Vec<&str> = first.failed.iter().map(|(path, _)| path.rsplit('/').next().unwrap()).collect();
    assert_eq!(failed, ["junk.txt", "missing.txt"]);
    assert_eq!(progress.last().map(|p| (p.sources_done, p.sources_total)), Some((4, 4)));

    fs::write(files.join("good.txt"), "alpha beta gamma, revised").unwrap();
    let second = ingest(
        &collection,
        &WordHash,
        None,
        &chunking,
        &Metadata::new(),
        sources(&["good.txt", "other.md"]),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((second.added, second.replaced, second.unchanged, second.chunks), (0, 1, 1, 1));
    assert_eq!(collection.documents().unwrap().len(), 2);
}

#[test]
fn wider_contexts_replace_chunk_texts_and_parents_appear_once() {
    let hit = |id: i64, source: &str, text: &str, extra: &[(&str, serde_json::Value)]| lore_core::Hit {
        chunk_id: id,
        source: source.into(),
        text: text.into(),
        score: 1.0 - id as f32 / 10.0,
        metadata: extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    };
    let hits = [
        hit(1, "a.md", "child one", &[("parent", 0.into()), ("context", "parent zero of a".into())]),
        hit(2, "a.md", "child two", &[("parent", 0.into()), ("context", "parent zero of a".into())]),
        hit(3, "b.md", "child", &[("parent", 0.into()), ("context", "parent zero of b".into())]),
        hit(4, "c.md", "plain chunk", &[]),
    ];
    let passages = lore_rag::context_passages(&hits);
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["parent zero of a", "parent zero of b", "plain chunk"]);
    assert_eq!(passages.iter().map(|p| p.chunk_id).collect::<Vec<_>>(), [1, 3, 4]);
}

#[test]
fn every_preset_parses_and_files_load_by_path() {
    for (name, _) in lore_rag::PRESETS {
        let (loaded, _) = lore_rag::load_pipeline(name).unwrap();
        assert_eq!(&loaded, name);
    }
    let (_, tutorial) = lore_rag::load_pipeline("tutorial").unwrap();
    assert_eq!(tutorial.top_k, 3);
    assert_eq!(tutorial.chunking, Some(ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: true }));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, "top_k = 7\n[retrieval]\nmode = \"hybrid\"\nfusion = \"z-score\"\n").unwrap();
    let (name, config) = lore_rag::load_pipeline(path.to_str().unwrap()).unwrap();
    assert_eq!((name.as_str(), config.top_k), ("mine", 7));
    assert_eq!(config.retrieval.fusion, lore_core::Fusion::ZScore);

    std::fs::write(&path, "top_k = 7\ntop_kk = 1\n").unwrap();
    let err = lore_rag::load_pipeline(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("top_kk"), "{err}");
    let err = lore_rag::load_pipeline("no-such-preset").unwrap_err().to_string();
    assert!(err.contains("hybrid"), "{err}");
}

/// Words mapped to a few concepts (synonyms share one), other words ignored: it finds
/// paraphrases and is blind to codes and names, as dense retrieval often is.
struct Concepts;

const CONCEPTS: [&[&str]; 5] = [
    &["car", "automobile", "vehicle"],
    &["broken", "failure", "fault"],
    &["tea", "brew"],
    &["bread", "bake"],
    &["screen", "display"],
];

impl Embedder for Concepts {
    fn id(&self) -> &str {
        "concepts"
    }
    fn dimension(&self) -> usize {
        CONCEPTS.len()
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.05f32; CONCEPTS.len()];
                for word in t.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase) {
                    if let Some(concept) = CONCEPTS.iter().position(|words| words.contains(&word.as_str())) {
                        v[concept] += 1.0;
                    }
                }
                v
            })
            .collect())
    }
}

/// Judges a passage relevant ("yes" with probability 0.9) when the prompt mentions `topic`, and
/// records the prompts and choices it was given.
struct Judge {
    topic: &'static str,
    asked: Mutex<Vec<(Vec<Message>, Vec<String>)>>,
}

impl ChatModel for Judge {
    fn id(&self) -> &str {
        "judge"
    }
    fn chat(&self, _: &[Message], _: &GenerationOptions, _: &mut dyn FnMut(&str)) -> Result<Generation> {
        Err(lore_core::Error::Endpoint("a judge only scores".into()))
    }
    fn choice_probabilities(&self, messages: &[Message], choices: &[&str]) -> Result<Vec<f32>> {
        self.asked.lock().unwrap().push((messages.to_vec(), choices.iter().map(|c| c.to_string()).collect()));
        let relevant = messages.iter().any(|m| m.content.contains(self.topic));
        Ok(if relevant { vec![0.9, 0.1] } else { vec![0.2, 0.8] })
    }
}

fn hit(chunk_id: i64, score: f32) -> Hit {
    Hit { chunk_id, source: format!("doc{chunk_id}"), text: String::new(), score, metadata: Metadata::new() }
}

fn ids(hits: &[Hit]) -> Vec<i64> {
    hits.iter().map(|h| h.chunk_id).collect()
}

fn sources(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.source.as_str()).collect()
}

fn config(mode: RetrievalMode, top_k: usize) -> PipelineConfig {
    PipelineConfig { top_k, retrieval: RetrievalConfig { mode, ..Default::default() }, ..Default::default() }
}

#[test]
fn fusion_computes_reciprocal_ranks_and_normalised_scores() {
    let first = [hit(1, 0.9), hit(2, 0.5), hit(3, 0.1)];
    let second = [hit(3, 10.0), hit(4, 5.0)];
    let lists = [WeightedList { hits: &first, weight: 1.0 }, WeightedList { hits: &second, weight: 2.0 }];

    let rrf = fuse(&lists, Fusion::Rrf, 60.0);
    assert_eq!(ids(&rrf), [3, 4, 1, 2]);
    let expected = [1.0 / 63.0 + 2.0 / 61.0, 2.0 / 62.0, 1.0 / 61.0, 1.0 / 62.0];
    for (hit, want) in rrf.iter().zip(expected) {
        assert!((hit.score - want).abs() < 1e-6, "{} scored {} not {want}", hit.chunk_id, hit.score);
    }

    // Min-max, equal weights: 1 → 1 + 0 (missing from the second list: its minimum, 0),
    // 2 → 0.5, 3 → 0 + 1, 4 → 0 + 0; the tie of 1 and 3 goes to the lower id.
    let equal = [WeightedList { hits: &first, weight: 1.0 }, WeightedList { hits: &second, weight: 1.0 }];
    let min_max = fuse(&equal, Fusion::MinMax, 60.0);
    assert_eq!(ids(&min_max), [1, 3, 2, 4]);
    for (hit, want) in min_max.iter().zip([1.0, 1.0, 0.5, 0.0]) {
        assert!((hit.score - want).abs() < 1e-6, "{} scored {} not {want}", hit.chunk_id, hit.score);
    }

    // Z-scores: the first list is ±1.2247 around 0.5, the second ±1 around 7.5; a missing hit
    // gets the list's lowest z-score.
    let z = fuse(&equal, Fusion::ZScore, 60.0);
    assert_eq!(ids(&z), [1, 3, 2, 4]);
    let s = 1.5f32.sqrt();
    for (hit, want) in z.iter().zip([s - 1.0, 1.0 - s, -1.0, -s - 1.0]) {
        assert!((hit.score - want).abs() < 1e-5, "{} scored {} not {want}", hit.chunk_id, hit.score);
    }

    // One list keeps its order; equal scores normalise without dividing by zero.
    let flat = [hit(7, 2.0), hit(8, 2.0)];
    for fusion in [Fusion::Rrf, Fusion::MinMax, Fusion::ZScore] {
        assert_eq!(ids(&fuse(&[WeightedList { hits: &flat, weight: 1.0 }], fusion, 60.0)), [7, 8]);
    }
}

#[test]
fn hybrid_finds_what_dense_and_keyword_search_each_miss() {
    let (_dir, collection) = collection_embedded(
        &Concepts,
        vec![
            doc("code.txt", "Code XR7734 is shown on the screen"),
            doc("paraphrase.txt", "My automobile had a failure"),
            doc("parked.txt", "The vehicle is parked outside"),
            doc("cup.txt", "A broken cup"),
            doc("tea.txt", "Brew the tea slowly"),
        ],
    );
    let question = "car broken XR7734";
    let found = |mode| {
        let pipeline = Pipeline::new(&collection, &Concepts, config(mode, 3)).unwrap();
        pipeline.retrieve(question).unwrap()
    };
    let dense = found(RetrievalMode::Dense);
    let keyword = found(RetrievalMode::Keyword);
    let hybrid = found(RetrievalMode::Hybrid);
    assert!(!sources(&dense.hits).contains(&"code.txt"), "{:?}", sources(&dense.hits));
    assert!(!sources(&keyword.hits).contains(&"paraphrase.txt"), "{:?}", sources(&keyword.hits));
    let both = sources(&hybrid.hits);
    assert!(both.contains(&"code.txt") && both.contains(&"paraphrase.txt"), "{both:?}");
    assert_eq!(both[0], "cup.txt", "found by both, so first: {both:?}");

    // The explanation shows both lists and the fused order the hits were cut from.
    let explanation = &hybrid.explanation;
    let retrievers: Vec<&str> = explanation.lists.iter().map(|l| l.retriever.as_str()).collect();
    assert_eq!(retrievers, ["dense", "keyword"]);
    assert_eq!(explanation.fused.len(), 5);
    assert_eq!(explanation.fused[..3].iter().map(|r| r.chunk_id).collect::<Vec<_>>(), ids(&hybrid.hits));
    let json = serde_json::to_value(&hybrid).unwrap();
    assert_eq!(json["explanation"]["lists"][1]["retriever"], "keyword");
    assert_eq!(json["explanation"]["queries"][0], json!({"text": question, "role": "question"}));
}

#[test]
fn filters_apply_inside_every_retriever_so_top_k_stays_k() {
    let mut docs = Vec::new();
    for i in 0..12 {
        let (lang, folder) = if i < 9 { ("en", "en/") } else { ("de", "de/") };
        // The German documents match the query worst, so an after-the-fact filter would drop them.
        let text = if i < 9 { format!("rust tip number {i} about rust") } else { format!("a note {i} on rust") };
        let metadata: Metadata = [("lang".to_string(), json!(lang))].into();
        let mut document = Document::new(format!("{folder}{i}.txt"), vec![Section::new(vec![], text)]);
        document.metadata = metadata;
        docs.push(Source::Document(document));
    }
    let (_dir, collection) = collection_with(docs);
    let german = Filter::one_of("lang", [json!("de")]).and(Filter::source_prefix("de/"));
    for mode in [RetrievalMode::Dense, RetrievalMode::Keyword, RetrievalMode::Hybrid] {
        let pipeline = Pipeline::new(&collection, &WordHash, config(mode, 3)).unwrap().with_filter(german.clone());
        let hits = pipeline.retrieve("rust tip").unwrap().hits;
        assert_eq!(hits.len(), 3, "{mode:?}");
        assert!(hits.iter().all(|h| h.source.starts_with("de/")), "{mode:?}: {:?}", sources(&hits));
    }
}

#[test]
fn themes_answer_questions_about_the_collection_and_stay_out_of_specific_ones() {
    let (_dir, collection) = collection_with(vec![
        doc("rust.txt", "Rust is a systems programming language with ownership"),
        doc("tea.txt", "Green tea is brewed at low temperature"),
        doc("lore:theme/1", "Programming and tea brewing are what these notes cover. Documents: rust.txt; tea.txt"),
    ]);
    let pipeline = |themes| {
        let mut config = config(RetrievalMode::Hybrid, 3);
        config.retrieval.themes = themes;
        Pipeline::new(&collection, &WordHash, config).unwrap()
    };
    let specific = "rust ownership language";
    let ranked_first = "span of notes";
    let worded = "What is the collection mostly about?";

    // Auto: a passage ahead of the theme means a specific question, and the theme is taken out
    // of both lists; a theme ahead of every passage, or words that ask about the collection,
    // mean a question about the whole collection, and the themes go first.
    let found = pipeline(ThemeUse::Auto).retrieve(specific).unwrap();
    assert_eq!(sources(&found.hits)[0], "rust.txt");
    assert!(!sources(&found.hits).contains(&"lore:theme/1"), "{:?}", sources(&found.hits));
    let route = found.explanation.themes.as_ref().unwrap();
    assert!(!route.kept && route.dropped >= 1, "{route:?}");
    assert!(found.explanation.lists.iter().flat_map(|l| &l.hits).all(|h| !h.source.starts_with("lore:theme/")));
    let shown = found.explanation.to_string();
    assert!(shown.contains(&format!("Themes: {} theme hits taken out", route.dropped)), "{shown}");
    for (question, asked) in [(ranked_first, false), (worded, true)] {
        let found = pipeline(ThemeUse::Auto).retrieve(question).unwrap();
        assert_eq!(sources(&found.hits)[0], "lore:theme/1", "{question}");
        let route = found.explanation.themes.as_ref().unwrap();
        assert!(route.kept && route.asked == asked, "{question}: {route:?}");
    }

    // The gate lets the theme answer although none of the question's words is in it.
    let pipeline_auto = pipeline(ThemeUse::Auto);
    let found = pipeline_auto.retrieve(worded).unwrap();
    let weak = pipeline_auto.evidence(worded, &found);
    assert!(weak.score < pipeline_auto.config().answerability.min_evidence && !weak.gated, "{weak:?}");
    let chat = Scripted::new("These notes cover programming and tea brewing [1].");
    let answer = pipeline_auto.answer(&chat, worded, &mut |_| {}).unwrap();
    assert!(!answer.refused && answer.citations[0].cited, "{answer:?}");

    // Always ranks themes like passages; Never keeps them out even when one would come first.
    let found = pipeline(ThemeUse::Always).retrieve(specific).unwrap();
    assert!(sources(&found.hits).contains(&"lore:theme/1"), "{:?}", sources(&found.hits));
    let found = pipeline(ThemeUse::Never).retrieve(ranked_first).unwrap();
    assert!(!sources(&found.hits).contains(&"lore:theme/1"), "{:?}", sources(&found.hits));

    // A collection without themes explains nothing about them.
    let (_plain, plain) = collection_with(vec![doc("tea.txt", "Green tea is brewed at low temperature")]);
    let found = Pipeline::new(&plain, &WordHash, config(RetrievalMode::Hybrid, 3)).unwrap().retrieve("tea").unwrap();
    assert!(found.explanation.themes.is_none());
}

#[test]
fn rewrites_are_read_from_messy_model_output() {
    let question = "What is Lore?";
    let reply = "Sure! Here are 3 rewrites:\n\n1. **What is the Lore engine?**\n2) Rewrite 2: \"Lore engine \
                 description\"\n- what is lore\n* What does Lore do?\n5. One too many?";
    assert_eq!(
        parse_rewrites(reply, question, 3),
        ["What is the Lore engine?", "Lore engine description", "What does Lore do?"]
    );
    let zh = "以下是改写：\n1、Lore 是什么引擎？\n（2）Lore 的用途\n改写3：Lore 能做什么？\n\n1、Lore 是什么引擎？";
    assert_eq!(parse_rewrites(zh, "Lore 是什么？", 5), ["Lore 是什么引擎？", "Lore 的用途", "Lore 能做什么？"]);
    assert_eq!(parse_rewrites("General question: What is a RAG engine?", question, 1), ["What is a RAG engine?"]);
    assert!(parse_rewrites("\n  \n", question, 3).is_empty());
}

#[test]
fn multi_query_searches_each_rewrite_and_fuses_the_lists() {
    let (_dir, collection) = collection_with(vec![
        doc("lore.txt", "Lore is a RAG engine written in Rust"),
        doc("tea.txt", "Green tea is brewed at low temperature"),
        doc("bread.txt", "Bread is baked in an oven"),
    ]);
    let chat = Scripted::new("Here are two rewrites:\n1. How is tea brewed?\n2. **RAG engine in Rust**\n");
    let mut config = config(RetrievalMode::Dense, 2);
    config.rewrite = RewriteConfig { kind: RewriteKind::MultiQuery, queries: 2, ..RewriteConfig::default() };
    let pipeline = Pipeline::new(&collection, &WordHash, config).unwrap();
    let err = pipeline.retrieve("What is Lore?").unwrap_err().to_string();
    assert!(err.contains("with_chat"), "{err}");

    let pipeline = pipeline.with_chat(&chat);
    let found = pipeline.retrieve("What is Lore?").unwrap();
    let explanation = &found.explanation;
    let texts: Vec<&str> = explanation.queries.iter().map(|q| q.text.as_str()).collect();
    assert_eq!(texts, ["What is Lore?", "How is tea brewed?", "RAG engine in Rust"]);
    assert_eq!(explanation.queries[1].role, QueryRole::Rewrite);
    assert_eq!(explanation.lists.len(), 3);
    assert_eq!(sources(&found.hits), ["lore.txt", "tea.txt"]);
    let prompt = &chat.prompts.lock().unwrap()[0];
    assert!(prompt[1].content.contains("2 different ways") && prompt[1].content.contains("What is Lore?"));
}

#[test]
fn multi_hop_searches_what_the_passages_lack_until_the_model_is_done() {
    let (_dir, collection) = collection_with(vec![
        doc("lore.txt", "Lore was written by Ada, who drinks Sencha"),
        doc("sencha.txt", "Sencha is a green tea steeped at low temperature"),
        doc("bread.txt", "Bread is baked in an oven"),
    ]);
    let mut config = config(RetrievalMode::Keyword, 2);
    config.rewrite = RewriteConfig { kind: RewriteKind::MultiHop, rounds: 3, ..RewriteConfig::default() };
    // The model names the bridge each round; its repeat ends the search.
    let chat = Scripted::new("Search query: Sencha");
    let pipeline = Pipeline::new(&collection, &WordHash, config.clone()).unwrap().with_chat(&chat);
    let question = "How is the drink of the author of Lore brewed?";
    let found = pipeline.retrieve(question).unwrap();
    let queries: Vec<(&str, QueryRole)> = found.explanation.queries.iter().map(|q| (q.text.as_str(), q.role)).collect();
    assert_eq!(queries, [(question, QueryRole::Question), ("Sencha", QueryRole::FollowUp)]);
    assert_eq!(found.explanation.lists.len(), 2);
    assert_eq!(sources(&found.hits), ["lore.txt", "sencha.txt"]);
    let prompts = chat.prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), 2, "a round that repeats a search is the last");
    assert!(prompts[0][1].content.contains("[1] Lore was written by Ada"), "{:?}", prompts[0]);
    assert!(prompts[1][1].content.contains("Searched already: Sencha"), "{:?}", prompts[1]);

    // A model that finds the passages enough ends it at once.
    let done = Scripted::new("DONE");
    let found = Pipeline::new(&collection, &WordHash, config).unwrap().with_chat(&done).retrieve(question).unwrap();
    assert_eq!(found.explanation.queries.len(), 1);
    assert_eq!(found.explanation.rewrite_reply.as_deref(), Some("DONE"));
}

#[test]
fn hyde_searches_the_hypothetical_answer_and_answer_lends_its_model() {
    let (_dir, collection) = collection_with(vec![
        doc("tea.txt", "Green tea is brewed at low temperature"),
        doc("bread.txt", "Bread is baked in an oven"),
    ]);
    let mut config = config(RetrievalMode::Hybrid, 1);
    config.rewrite.kind = RewriteKind::Hyde;
    let pipeline = Pipeline::new(&collection, &WordHash, config.clone()).unwrap();
    // `answer` rewrites with its own chat model; here the same reply is the passage and the answer.
    let chat = Scripted::new("Green tea is brewed at low temperature [1].");
    let answer = pipeline.answer(&chat, "绿茶怎么泡？", &mut |_| {}).unwrap();
    assert_eq!(answer.citations[0].source, "tea.txt");
    let hyde_prompt = chat.prompts.lock().unwrap()[0].clone();
    assert!(hyde_prompt[1].content.contains("问题：绿茶怎么泡？"), "a Chinese HyDE prompt: {hyde_prompt:?}");

    let found = pipeline.with_chat(&chat).retrieve("What should I drink?").unwrap();
    let roles: Vec<QueryRole> = found.explanation.queries.iter().map(|q| q.role).collect();
    assert_eq!(roles, [QueryRole::Question, QueryRole::HypotheticalAnswer]);
    // Dense searched the passage (query 1), keyword the question (query 0).
    let lists: Vec<(usize, &str)> = found.explanation.lists.iter().map(|l| (l.query, l.retriever.as_str())).collect();
    assert_eq!(lists, [(0, "keyword"), (1, "dense")]);

    config.retrieval.mode = RetrievalMode::Keyword;
    let err = Pipeline::new(&collection, &WordHash, config).err().unwrap().to_string();
    assert!(err.contains("hyde") && err.contains("hybrid"), "{err}");
}

#[test]
fn the_llm_reranker_puts_judged_relevant_passages_first() {
    let long_tail = "steeping ".repeat(400);
    let (_dir, collection) = collection_with(vec![
        doc("rust.txt", "Rust drinks: the Rust compiler team drinks coffee"),
        doc("coffee.txt", "Coffee drinks are brewed hot"),
        doc("tea.txt", &format!("Tea drinks are brewed at low temperature {long_tail}")),
    ]);
    let judge = Judge { topic: "Tea", asked: Mutex::new(Vec::new()) };
    let mut config = config(RetrievalMode::Dense, 2);
    config.rerank = RerankConfig { kind: RerankKind::Llm, candidates: 3, ..Default::default() };
    let pipeline = Pipeline::new(&collection, &WordHash, config).unwrap().with_chat(&judge);
    let found = pipeline.retrieve("Rust drinks").unwrap();
    assert_eq!(found.hits[0].source, "tea.txt");
    assert!((found.hits[0].score - 0.9).abs() < 1e-6);
    let rerank = found.explanation.rerank.as_ref().unwrap();
    assert_eq!((rerank.kind, rerank.model.as_deref(), rerank.scores.len()), (RerankKind::Llm, Some("judge"), 3));

    let asked = judge.asked.lock().unwrap();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0].1, ["yes", "no"]);
    let tea_prompt = asked.iter().map(|(m, _)| &m[1].content).find(|c| c.contains("Tea drinks")).unwrap();
    assert!(tea_prompt.contains("…") && tea_prompt.len() < 1600, "a long passage is cut: {} bytes", tea_prompt.len());
    drop(asked);

    pipeline.retrieve("喝什么茶？").unwrap();
    let asked = judge.asked.lock().unwrap();
    assert_eq!(asked.last().unwrap().1, ["是", "否"]);
    assert!(asked.last().unwrap().0[1].content.contains("问题：喝什么茶？"));
}

#[test]
fn truncation_cuts_at_a_sentence_or_word_end() {
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("One sentence here. Another one follows on", 30), "One sentence here. Another…");
    assert_eq!(truncate("First sentence ends. Second", 24), "First sentence ends.…");
    assert_eq!(truncate("这是第一句。这是第二句很长很长", 10), "这是第一句。这是第二…");
}

#[test]
fn mmr_prefers_a_new_passage_to_a_near_duplicate() {
    let (_dir, collection) = collection_with(vec![
        doc("a.txt", "rust compiler rust compiler"),
        doc("a-again.txt", "rust compiler rust compiler fast"),
        doc("b.txt", "rust borrow checker"),
    ]);
    let plain = Pipeline::new(&collection, &WordHash, config(RetrievalMode::Dense, 2)).unwrap();
    assert_eq!(sources(&plain.retrieve("rust compiler").unwrap().hits), ["a.txt", "a-again.txt"]);

    let mut config = config(RetrievalMode::Dense, 2);
    config.rerank = RerankConfig { kind: RerankKind::Mmr, candidates: 3, mmr_lambda: 0.3, ..Default::default() };
    let diverse = Pipeline::new(&collection, &WordHash, config).unwrap();
    let found = diverse.retrieve("rust compiler").unwrap();
    assert_eq!(sources(&found.hits), ["a.txt", "b.txt"]);
    assert_eq!(found.explanation.rerank.unwrap().scores.len(), 3);
}

#[test]
fn a_follow_up_question_is_made_to_stand_alone() {
    let earlier = [
        Message::user("Which lighthouse did Agnes Thornbury build?"),
        Message { role: lore_core::Role::Assistant, content: "The harbour lighthouse [1].".into() },
    ];
    let chat = Scripted::new("Rewritten question: When was the harbour lighthouse built?");
    let standalone = standalone_question(&chat, &earlier, "When was it built?").unwrap();
    assert_eq!(standalone, "When was the harbour lighthouse built?");
    let prompt = &chat.prompts.lock().unwrap()[0];
    let user = &prompt.last().unwrap().content;
    assert!(
        user.contains("Agnes Thornbury")
            && user.contains("The harbour lighthouse")
            && user.contains("When was it built?")
    );

    // No conversation: no model call. A reply that rambles: the question as asked.
    let unused = Scripted::new("unused");
    assert_eq!(standalone_question(&unused, &[], "When was it built?").unwrap(), "When was it built?");
    assert!(unused.prompts.lock().unwrap().is_empty());
    let rambling = Scripted::new(&"The lighthouse has a long and storied history. ".repeat(10));
    assert_eq!(standalone_question(&rambling, &earlier, "When was it built?").unwrap(), "When was it built?");
}
