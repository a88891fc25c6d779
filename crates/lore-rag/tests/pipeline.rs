//! The pipeline's own logic, with a word-hashing embedder (lore-rag builds without candle) and
//! scripted chat replies where a real model cannot be made to cite or refuse on demand. The
//! same flow with real models is tested in lore-cli's integration tests.

use std::fs;
use std::sync::Mutex;

use lore_core::{
    ChatModel, ChunkConfig, Document, EmbedKind, Embedder, FinishReason, Generation, GenerationOptions, Message,
    PipelineConfig, PromptStyle, Result, Section, Tokenize,
};
use lore_index::Collection;
use lore_rag::{Pipeline, REFUSAL_EN, REFUSAL_ZH, Source, cited_numbers, grounded_prompt, ingest, is_refusal};

/// Words hashed into 64 buckets, L2-normalised: texts sharing words are close.
struct WordHash;

impl Embedder for WordHash {
    fn id(&self) -> &str {
        "word-hash"
    }
    fn dimension(&self) -> usize {
        64
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
                let mut v = vec![0.01f32; 64];
                for word in t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                    let h =
                        word.to_lowercase().bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                    v[(h % 64) as usize] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

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
    let dir = tempfile::tempdir().unwrap();
    let mut collection = Collection::create(&dir.path().join("c"), "word-hash", 64, ChunkConfig::Whole).unwrap();
    ingest(&mut collection, &WordHash, &ChunkConfig::Whole, docs, &mut |_| {}).unwrap();
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
    let mut collection = Collection::create(&dir.path().join("c"), "word-hash", 64, ChunkConfig::default()).unwrap();
    let chunking = ChunkConfig::default();

    let mut progress = Vec::new();
    let first = ingest(
        &mut collection,
        &WordHash,
        &chunking,
        sources(&["good.txt", "junk.txt", "missing.txt", "other.md"]),
        &mut |p| progress.push(p),
    )
    .unwrap();
    assert_eq!((first.added, first.replaced, first.unchanged, first.chunks), (2, 0, 0, 2));
    let failed: Vec<&str> = first.failed.iter().map(|(path, _)| path.rsplit('/').next().unwrap()).collect();
    assert_eq!(failed, ["junk.txt", "missing.txt"]);
    assert_eq!(progress.last().map(|p| (p.sources_done, p.sources_total)), Some((4, 4)));

    fs::write(files.join("good.txt"), "alpha beta gamma, revised").unwrap();
    let second =
        ingest(&mut collection, &WordHash, &chunking, sources(&["good.txt", "other.md"]), &mut |_| {}).unwrap();
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
