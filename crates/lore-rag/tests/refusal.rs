//! The second look at refusals, and the lexical support it rests on.

use std::collections::VecDeque;
use std::sync::Mutex;

use lore_core::{
    ChatModel, ChunkConfig, Document, EmbedKind, Embedder, Error, FinishReason, Generation, GenerationOptions, Hit,
    Message, Metadata, PipelineConfig, RefusalCheck, Result, Section, Tokenize,
};
use lore_index::Collection;
use lore_rag::{Pipeline, REFUSAL_ZH, Source, ingest, lexical_support};

/// Characters hashed into 32 buckets, L2-normalised: enough to rank a handful of passages.
struct CharHash;

impl Embedder for CharHash {
    fn id(&self) -> &str {
        "char-hash"
    }
    fn dimension(&self) -> usize {
        32
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
            .map(|text| {
                let mut v = [0.01f32; 32];
                for c in text.chars() {
                    v[c as usize % 32] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

/// Replies from a queue, one per call, each streamed in two pieces; remembers the prompts.
struct Replies {
    queue: Mutex<VecDeque<String>>,
    prompts: Mutex<Vec<Vec<Message>>>,
}

impl Replies {
    fn new(replies: &[&str]) -> Replies {
        Replies { queue: Mutex::new(replies.iter().map(|r| r.to_string()).collect()), prompts: Mutex::new(Vec::new()) }
    }
    fn prompts(&self) -> Vec<Vec<Message>> {
        self.prompts.lock().unwrap().clone()
    }
}

impl ChatModel for Replies {
    fn id(&self) -> &str {
        "replies"
    }
    fn chat(&self, messages: &[Message], _: &GenerationOptions, on_token: &mut dyn FnMut(&str)) -> Result<Generation> {
        self.prompts.lock().unwrap().push(messages.to_vec());
        let text = self.queue.lock().unwrap().pop_front().ok_or_else(|| Error::Endpoint("no reply left".into()))?;
        let middle = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
        on_token(&text[..middle]);
        on_token(&text[middle..]);
        Ok(Generation { text, prompt_tokens: 100, completion_tokens: 10, finish: FinishReason::Stop })
    }
    fn choice_probabilities(&self, _: &[Message], _: &[&str]) -> Result<Vec<f32>> {
        Err(Error::Endpoint("not a scorer".into()))
    }
}

const REPORT: &str = "后训练之后模型在AIME和LiveCodeBench上的性能有所下降，这可能是因为模型在更广泛的通用任务上进行了训练，\
                      损害了其处理复杂问题的专业能力。";
const QUESTION: &str = "为什么模型在AIME上的性能下降了？";

fn collection() -> (tempfile::TempDir, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let collection = Collection::create(&dir.path().join("c"), "char-hash", 32, ChunkConfig::Whole).unwrap();
    let docs = [("report.txt", REPORT), ("tea.txt", "绿茶用八十度的水冲泡。")]
        .map(|(source, text)| Source::Document(Document::new(source, vec![Section::new(vec![], text)])));
    ingest(&collection, &CharHash, &ChunkConfig::Whole, &Metadata::new(), docs.into(), &mut |_| {}).unwrap();
    (dir, collection)
}

fn ask(config: PipelineConfig, replies: &[&str]) -> (lore_core::Answer, String, Vec<Vec<Message>>) {
    let (_dir, collection) = collection();
    let pipeline = Pipeline::new(&collection, &CharHash, config).unwrap();
    let chat = Replies::new(replies);
    let mut streamed = String::new();
    let answer = pipeline.answer(&chat, QUESTION, &mut |piece| streamed.push_str(piece)).unwrap();
    (answer, streamed, chat.prompts())
}

fn passage(text: &str) -> Hit {
    Hit { chunk_id: 1, score: 1.0, text: text.into(), source: "p.txt".into(), metadata: Metadata::new() }
}

#[test]
fn support_counts_what_the_answer_adds_to_the_question() {
    let passages = [passage(REPORT)];
    let copied = "这可能是因为模型在更广泛的通用任务上进行了训练 [1]。";
    let invented = "开发团队实施了严格的伦理审查流程，确保数据来源合法合规。";
    assert!(lexical_support(copied, QUESTION, &passages) > 0.9);
    assert!(lexical_support(invented, QUESTION, &passages) < 0.3);
    // Nothing of its own: a bare citation or the question repeated supports nothing.
    assert_eq!(lexical_support("[2]", QUESTION, &passages), 0.0);
    assert_eq!(lexical_support(QUESTION, QUESTION, &passages), 0.0);

    let english = [passage("The models were trained on broader general tasks, which hurt specialised skills.")];
    let question = "Why did the scores drop?";
    assert!(
        lexical_support("Because training on general tasks hurts specialised skills [1].", question, &english) > 0.8
    );
    assert!(lexical_support("The ethics board reviewed every dataset carefully.", question, &english) < 0.2);
}

#[test]
fn a_refusal_is_overturned_by_an_answer_taken_from_the_passages_and_never_shown() {
    let answer_text = "这可能是因为模型在更广泛的通用任务上进行了训练，损害了其处理复杂问题的专业能力 [1]。";
    let (answer, streamed, prompts) = ask(PipelineConfig::default(), &[REFUSAL_ZH, answer_text]);
    assert!(!answer.refused);
    assert_eq!(answer.text, answer_text);
    assert_eq!(streamed, answer_text, "the overturned refusal must not be streamed");
    assert_eq!(prompts.len(), 2);
    assert!(prompts[0][0].content.contains(REFUSAL_ZH) && !prompts[1][0].content.contains(REFUSAL_ZH));
    assert!(answer.citations[0].cited && answer.citations[0].source == "report.txt");
    assert_eq!((answer.prompt_tokens, answer.completion_tokens), (200, 20));
}

#[test]
fn a_refusal_stands_when_the_second_answer_is_made_up() {
    let invented = "开发团队实施了严格的伦理审查流程，确保数据来源合法合规 [2]。";
    let (answer, streamed, prompts) = ask(PipelineConfig::default(), &[REFUSAL_ZH, invented]);
    assert!(answer.refused);
    assert_eq!(answer.text, REFUSAL_ZH);
    assert_eq!(streamed, REFUSAL_ZH);
    assert_eq!(prompts.len(), 2);
    assert!(answer.citations.iter().all(|c| !c.cited));
}

#[test]
fn answers_stream_as_they_come_and_refusals_are_not_rechecked_when_disabled() {
    let answer_text = "性能下降是因为更广泛的通用任务训练。";
    let (answer, streamed, prompts) = ask(PipelineConfig::default(), &[answer_text]);
    assert_eq!((answer.text.as_str(), streamed.as_str(), prompts.len()), (answer_text, answer_text, 1));
    // No [n] in the answer: it is credited to the passage it takes from.
    assert!(answer.citations.iter().any(|c| c.cited && c.source == "report.txt"));
    assert!(answer.citations.iter().all(|c| !c.cited || c.source == "report.txt"));

    let config =
        PipelineConfig { refusal: RefusalCheck { recheck: false, ..Default::default() }, ..Default::default() };
    let (answer, streamed, prompts) = ask(config, &[REFUSAL_ZH]);
    assert!(answer.refused);
    assert_eq!((streamed.as_str(), prompts.len()), (REFUSAL_ZH, 1));
}
