use std::path::Path;

use lore_core::{ChatModel, EmbedKind, Embedder, Language, Message, Result, detect_language};
use serde::Serialize;

use crate::Mean;
use crate::ask::{Asker, Unscored};
use crate::parse::{list_items, verdict};

/// One metric on one item: its value in [0, 1], or why it could not be computed.
pub type ItemScore = std::result::Result<f64, Unscored>;

/// RAGAS-style metrics of how well an answer is grounded in its retrieved context, computed with
/// a chat model (verdicts) and an embedder (answer relevancy). Definitions in
/// `docs/evaluation.md`.
pub struct Grounding<'a> {
    asker: Asker<'a>,
    embedder: &'a dyn Embedder,
    metrics: Vec<GroundingMetric>,
}

/// One of the grounding metrics, to choose which ones [`Grounding::score`] computes: each costs
/// model calls, and a large judge makes the costly ones take hours on a question set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroundingMetric {
    /// [`Grounding::faithfulness`]: a claim list, then one verdict per claim over all passages.
    Faithfulness,
    /// [`Grounding::answer_relevancy`]: one list of questions and the embedder.
    AnswerRelevancy,
    /// [`Grounding::context_precision`]: one verdict per retrieved passage.
    ContextPrecision,
    /// [`Grounding::context_recall`]: one verdict per gold sentence over all passages.
    ContextRecall,
    /// [`Grounding::citation_precision`]: one verdict per (sentence, cited passage) pair.
    CitationPrecision,
}

impl GroundingMetric {
    /// Every metric, in the order reports print them.
    pub const ALL: [GroundingMetric; 5] = [
        GroundingMetric::Faithfulness,
        GroundingMetric::AnswerRelevancy,
        GroundingMetric::ContextPrecision,
        GroundingMetric::ContextRecall,
        GroundingMetric::CitationPrecision,
    ];

    /// The metric's name in flags and JSON: `citation-precision`.
    pub fn name(self) -> &'static str {
        match self {
            GroundingMetric::Faithfulness => "faithfulness",
            GroundingMetric::AnswerRelevancy => "answer-relevancy",
            GroundingMetric::ContextPrecision => "context-precision",
            GroundingMetric::ContextRecall => "context-recall",
            GroundingMetric::CitationPrecision => "citation-precision",
        }
    }

    /// The metrics a flag names: `all`, or names joined by commas
    /// (`citation-precision,faithfulness`).
    pub fn parse_list(text: &str) -> std::result::Result<Vec<GroundingMetric>, String> {
        if text == "all" {
            return Ok(GroundingMetric::ALL.to_vec());
        }
        text.split(',').map(|name| name.trim().parse()).collect()
    }
}

impl std::str::FromStr for GroundingMetric {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<GroundingMetric, String> {
        GroundingMetric::ALL.into_iter().find(|m| m.name() == text).ok_or_else(|| {
            let names: Vec<_> = GroundingMetric::ALL.iter().map(|m| m.name()).collect();
            format!("no grounding metric {text:?}: say one of {}", names.join(", "))
        })
    }
}

/// Claims beyond this many are not checked: a small model asked for claims sometimes lists
/// dozens of near-copies, each of which would cost a verdict.
const MAX_CLAIMS: usize = 12;
/// How many questions answer relevancy has the model write from an answer.
const GENERATED_QUESTIONS: usize = 3;
const LIST_MAX_TOKENS: usize = 384;
const VERDICT_MAX_TOKENS: usize = 48;

/// One value per grounding metric, `None` for a metric that was not asked for: an item's scores
/// ([`GroundingScores`]) or their means over a question set ([`GroundingSummary`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerMetric<T> {
    /// The share of the answer's claims that the context supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faithfulness: Option<T>,
    /// How well the answer addresses the question (see [`Grounding::answer_relevancy`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_relevancy: Option<T>,
    /// Average precision of the chunks judged useful for the gold answer, in rank order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_precision: Option<T>,
    /// The share of the gold answer's sentences that the context supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_recall: Option<T>,
    /// The share of (sentence, cited passage) pairs in which the passage supports the sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citation_precision: Option<T>,
}

impl<T> PerMetric<T> {
    /// Each metric's value, in the order of [`GroundingMetric::ALL`].
    pub fn values(&self) -> [(GroundingMetric, &Option<T>); 5] {
        [
            (GroundingMetric::Faithfulness, &self.faithfulness),
            (GroundingMetric::AnswerRelevancy, &self.answer_relevancy),
            (GroundingMetric::ContextPrecision, &self.context_precision),
            (GroundingMetric::ContextRecall, &self.context_recall),
            (GroundingMetric::CitationPrecision, &self.citation_precision),
        ]
    }
}

/// The grounding metrics of one item.
pub type GroundingScores = PerMetric<ItemScore>;

/// The grounding metrics averaged over a question set, unscored items counted apart.
pub type GroundingSummary = PerMetric<Mean>;

impl PerMetric<Mean> {
    /// Each metric's mean over `scores`, leaving out the items it could not score.
    pub fn of(scores: &[GroundingScores]) -> GroundingSummary {
        let mean = |pick: fn(&GroundingScores) -> &Option<ItemScore>| {
            let asked: Vec<&ItemScore> = scores.iter().filter_map(|s| pick(s).as_ref()).collect();
            (!asked.is_empty()).then(|| Mean::of(asked.iter().map(|score| score.as_ref().ok().copied())))
        };
        GroundingSummary {
            faithfulness: mean(|s| &s.faithfulness),
            answer_relevancy: mean(|s| &s.answer_relevancy),
            context_precision: mean(|s| &s.context_precision),
            context_recall: mean(|s| &s.context_recall),
            citation_precision: mean(|s| &s.citation_precision),
        }
    }
}

impl<'a> Grounding<'a> {
    /// With `cache_path`, the chat model's replies are kept in that JSON-lines file and reused.
    pub fn new(
        chat: &'a dyn ChatModel,
        embedder: &'a dyn Embedder,
        cache_path: Option<&Path>,
    ) -> Result<Grounding<'a>> {
        Ok(Grounding { asker: Asker::new(chat, cache_path)?, embedder, metrics: GroundingMetric::ALL.to_vec() })
    }

    /// Only these metrics are computed by [`Grounding::score`]; all of them by default.
    pub fn with_metrics(mut self, metrics: &[GroundingMetric]) -> Self {
        self.metrics = metrics.to_vec();
        self
    }

    /// How many times the model is asked for one reply before the item is recorded as unscored;
    /// 3 by default.
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.asker.max_attempts = attempts.max(1);
        self
    }

    /// The chosen metrics of one item (all five by default); `cited` is each answer sentence
    /// with the passages it cites (see [`Grounding::citation_precision`]). Without a gold answer
    /// (an unanswerable question) context precision and recall are unscored.
    pub fn score(
        &self,
        question: &str,
        answer: &str,
        gold: Option<&str>,
        contexts: &[&str],
        cited: &[(&str, Vec<&str>)],
    ) -> Result<GroundingScores> {
        let asked = |metric| self.metrics.contains(&metric);
        let needs_gold = || Ok(Err(Unscored::without_model("no gold answer to compare the context with")));
        Ok(GroundingScores {
            faithfulness: asked(GroundingMetric::Faithfulness)
                .then(|| self.faithfulness(question, answer, contexts))
                .transpose()?,
            answer_relevancy: asked(GroundingMetric::AnswerRelevancy)
                .then(|| self.answer_relevancy(question, answer))
                .transpose()?,
            context_precision: asked(GroundingMetric::ContextPrecision)
                .then(|| gold.map_or_else(needs_gold, |gold| self.context_precision(question, gold, contexts)))
                .transpose()?,
            context_recall: asked(GroundingMetric::ContextRecall)
                .then(|| gold.map_or_else(needs_gold, |gold| self.context_recall(question, gold, contexts)))
                .transpose()?,
            citation_precision: asked(GroundingMetric::CitationPrecision)
                .then(|| self.citation_precision(question, cited))
                .transpose()?,
        })
    }

    /// The share of the answer's (sentence, cited passage) pairs in which the model finds the
    /// passage alone supports the sentence: whether citations point where they should. `cited`
    /// is each sentence with the texts of the passages it cites; unscored when nothing is cited
    /// (a refusal, or an answer without citations).
    pub fn citation_precision(&self, question: &str, cited: &[(&str, Vec<&str>)]) -> Result<ItemScore> {
        let language = detect_language(question);
        let pairs =
            cited.iter().flat_map(|(sentence, passages)| passages.iter().map(move |passage| (*passage, *sentence)));
        Ok(match self.count_supported(language, pairs)? {
            Ok((_, 0)) => Err(Unscored::without_model("the answer cites no passage")),
            Ok((supported, judged)) => Ok(supported as f64 / judged as f64),
            Err(failure) => Err(failure),
        })
    }

    /// The share of the answer's claims that the context supports. A refusal makes no claim and
    /// is unscored, as is an answer with no context.
    pub fn faithfulness(&self, question: &str, answer: &str, contexts: &[&str]) -> Result<ItemScore> {
        if lore_rag::is_refusal(answer) {
            return Ok(Err(Unscored::without_model("the answer is a refusal: it makes no claim to check")));
        }
        if contexts.is_empty() {
            return Ok(Err(Unscored::without_model("no context was retrieved")));
        }
        let language = detect_language(question);
        let claims =
            self.asker.ask(claims_prompt(language, question, answer), LIST_MAX_TOKENS, non_empty_list, |reason| {
                list_reminder(language, reason)
            })?;
        let claims = match claims {
            Ok((claims, _)) => claims,
            Err(failure) => return Ok(Err(failure)),
        };
        let claims = &claims[..claims.len().min(MAX_CLAIMS)];
        let context = numbered(contexts);
        let supported =
            self.count_supported(language, claims.iter().map(|claim| (context.as_str(), claim.as_str())))?;
        Ok(supported.map(|(n, judged)| n as f64 / judged as f64))
    }

    /// The mean cosine similarity between the question and questions the model writes from the
    /// answer alone. A refusal answers nothing and scores 0, as a noncommittal answer does in
    /// RAGAS.
    pub fn answer_relevancy(&self, question: &str, answer: &str) -> Result<ItemScore> {
        if lore_rag::is_refusal(answer) {
            return Ok(Ok(0.0));
        }
        let language = detect_language(question);
        let generated = self.asker.ask(questions_prompt(language, answer), LIST_MAX_TOKENS, questions, |reason| {
            list_reminder(language, reason)
        })?;
        let generated = match generated {
            Ok((generated, _)) => generated,
            Err(failure) => return Ok(Err(failure)),
        };
        let mut texts = vec![question];
        texts.extend(generated.iter().map(String::as_str));
        let vectors = self.embedder.embed(&texts, EmbedKind::Query)?;
        let (asked, written) =
            vectors.split_first().ok_or_else(|| lore_core::Error::Model("the embedder returned no vector".into()))?;
        Ok(Ok(written.iter().map(|v| cosine(asked, v)).sum::<f64>() / written.len() as f64))
    }

    /// Average precision of the retrieved chunks, in rank order, judged useful or not for
    /// arriving at the gold answer; 0 when none is useful. Unscored without context.
    pub fn context_precision(&self, question: &str, gold: &str, contexts: &[&str]) -> Result<ItemScore> {
        if contexts.is_empty() {
            return Ok(Err(Unscored::without_model("no context was retrieved")));
        }
        let language = detect_language(question);
        let mut useful = Vec::with_capacity(contexts.len());
        for (i, chunk) in contexts.iter().enumerate() {
            match self.ask_verdict(language, usefulness_prompt(language, question, gold, chunk))? {
                Ok(v) => useful.push(v),
                Err(failure) => {
                    return Ok(Err(Unscored { reason: format!("chunk {}: {}", i + 1, failure.reason), ..failure }));
                }
            }
        }
        Ok(Ok(average_precision(&useful)))
    }

    /// The share of the gold answer's sentences that the context supports; 0 without context.
    pub fn context_recall(&self, question: &str, gold: &str, contexts: &[&str]) -> Result<ItemScore> {
        let sentences = sentences(gold);
        if sentences.is_empty() {
            return Ok(Err(Unscored::without_model("the gold answer is empty")));
        }
        if contexts.is_empty() {
            return Ok(Ok(0.0));
        }
        let language = detect_language(question);
        let context = numbered(contexts);
        let supported =
            self.count_supported(language, sentences.iter().map(|sentence| (context.as_str(), sentence.as_str())))?;
        Ok(supported.map(|(n, judged)| n as f64 / judged as f64))
    }

    /// Judges each (context, statement) pair alone and returns how many the model finds
    /// supported and how many it judged; unscored as soon as one verdict cannot be read.
    fn count_supported<'p>(
        &self,
        language: Language,
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Result<std::result::Result<(usize, usize), Unscored>> {
        let (mut supported, mut judged) = (0, 0);
        for (context, statement) in pairs {
            match self.ask_verdict(language, support_prompt(language, context, statement))? {
                Ok(v) => {
                    judged += 1;
                    supported += usize::from(v);
                }
                Err(failure) => {
                    return Ok(Err(Unscored {
                        reason: format!("statement {} ({statement}): {}", judged + 1, failure.reason),
                        ..failure
                    }));
                }
            }
        }
        Ok(Ok((supported, judged)))
    }

    fn ask_verdict(&self, language: Language, messages: Vec<Message>) -> Result<std::result::Result<bool, Unscored>> {
        let reply = self.asker.ask(messages, VERDICT_MAX_TOKENS, verdict, |reason| match language {
            Language::English => {
                format!("Your reply could not be used: {reason}. Answer with one word only: yes or no.")
            }
            Language::Chinese => format!("你的回复无法使用：{reason}。只回答一个字：是 或 否。"),
        })?;
        Ok(reply.map(|(v, _)| v))
    }
}

/// RAGAS's average precision: Σₖ precision@k · vₖ / Σₖ vₖ over the verdicts vₖ in rank order.
fn average_precision(useful: &[bool]) -> f64 {
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (i, _) in useful.iter().enumerate().filter(|(_, u)| **u) {
        hits += 1;
        sum += hits as f64 / (i + 1) as f64;
    }
    if hits == 0 { 0.0 } else { sum / hits as f64 }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator > 0.0 { dot / denominator } else { 0.0 }
}

/// The sentences of `text`: cut after 。！？!?；; and line ends, and after a full stop followed by
/// a space (so that 2.5 stays whole).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let ends = matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '\n')
            || (c == '.' && chars.peek().is_none_or(|next| next.is_whitespace()));
        if ends {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| s.chars().any(char::is_alphanumeric)).collect()
}

fn numbered(contexts: &[&str]) -> String {
    contexts.iter().enumerate().map(|(i, c)| format!("[{}] {}", i + 1, c.trim())).collect::<Vec<_>>().join("\n\n")
}

fn non_empty_list(reply: &str) -> std::result::Result<Vec<String>, String> {
    let items = list_items(reply);
    if items.is_empty() { Err("no item found, one per line".into()) } else { Ok(items) }
}

/// The questions in a reply: the listed lines that are questions, or all of them when none ends
/// in a question mark; at most [`GENERATED_QUESTIONS`].
fn questions(reply: &str) -> std::result::Result<Vec<String>, String> {
    let items = non_empty_list(reply)?;
    let asked: Vec<String> = items.iter().filter(|q| q.contains(['?', '？'])).cloned().collect();
    let mut chosen = if asked.is_empty() { items } else { asked };
    chosen.truncate(GENERATED_QUESTIONS);
    Ok(chosen)
}

fn list_reminder(language: Language, reason: &str) -> String {
    match language {
        Language::English => format!(
            "Your reply could not be used: {reason}. Write the list again, one item per line, and nothing else."
        ),
        Language::Chinese => format!("你的回复无法使用：{reason}。请重新写出列表，每行一项，不要输出其他内容。"),
    }
}

fn claims_prompt(language: Language, question: &str, answer: &str) -> Vec<Message> {
    vec![Message::user(match language {
        Language::English => format!(
            "Question: {question}\nAnswer: {answer}\n\nList every factual claim the answer makes, each as a short sentence \
             that can be understood without the question, one per line. Write nothing else."
        ),
        Language::Chinese => format!(
            "问题：{question}\n回答：{answer}\n\n请把回答中的每一个事实性陈述改写成不看问题也能理解的简短句子，每行一个。不要输出其他内容。"
        ),
    })]
}

fn support_prompt(language: Language, context: &str, statement: &str) -> Vec<Message> {
    vec![Message::user(match language {
        Language::English => format!(
            "Context:\n{context}\n\nStatement: {statement}\n\nCan the statement be inferred from the context? Answer with one word: yes or no."
        ),
        Language::Chinese => format!(
            "参考内容：\n{context}\n\n陈述：{statement}\n\n根据参考内容能否推断出该陈述？只回答一个字：是 或 否。"
        ),
    })]
}

fn questions_prompt(language: Language, answer: &str) -> Vec<Message> {
    let n = GENERATED_QUESTIONS;
    vec![Message::user(match language {
        Language::English => {
            format!(
                "Answer: {answer}\n\nWrite {n} different questions that this answer answers, one per line. Write nothing else."
            )
        }
        Language::Chinese => format!(
            "回答：{answer}\n\n请写出 {n} 个不同的问题，上面的回答正好回答这些问题。每行一个问题，不要输出其他内容。"
        ),
    })]
}

fn usefulness_prompt(language: Language, question: &str, gold: &str, chunk: &str) -> Vec<Message> {
    vec![Message::user(match language {
        Language::English => format!(
            "Question: {question}\nReference answer: {gold}\n\nPassage: {chunk}\n\nIs this passage useful for arriving at the reference \
             answer to the question? Answer with one word: yes or no."
        ),
        Language::Chinese => format!(
            "问题：{question}\n参考答案：{gold}\n\n段落：{chunk}\n\n这个段落对于得出该问题的参考答案是否有用？只回答一个字：是 或 否。"
        ),
    })]
}
