//! Reordering candidates: the chat model as a relevance judge, and maximal marginal relevance.

use lore_core::{ChatModel, Language, Message, Reranker, Result, detect_language};

/// Longest passage shown to the LLM judge, in characters. About 300 tokens of English or
/// Chinese for Qwen's tokenizer: the start of a passage says what it is about, and the cost of
/// judging grows with every token of each of the candidates.
const JUDGED_CHARS_EN: usize = 1200;
const JUDGED_CHARS_ZH: usize = 450;

/// A chat model as a reranker: each passage scores the probability that the model answers
/// "yes" (「是」 for a Chinese query) rather than "no" to "is this passage relevant to the
/// question?", read from its next-token distribution without generating text.
pub struct LlmReranker<'a> {
    chat: &'a dyn ChatModel,
}

impl<'a> LlmReranker<'a> {
    /// A reranker that asks `chat` to judge each passage.
    pub fn new(chat: &'a dyn ChatModel) -> Self {
        LlmReranker { chat }
    }
}

impl Reranker for LlmReranker<'_> {
    fn id(&self) -> &str {
        self.chat.id()
    }

    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let language = detect_language(query);
        let choices = match language {
            Language::Chinese => ["是", "否"],
            Language::English => ["yes", "no"],
        };
        passages
            .iter()
            .map(|passage| {
                let messages = judge_prompt(query, passage, language);
                Ok(self.chat.choice_probabilities(&messages, &choices)?[0])
            })
            .collect()
    }
}

fn judge_prompt(query: &str, passage: &str, language: Language) -> Vec<Message> {
    match language {
        Language::Chinese => vec![
            Message::system("你判断一段文字是否有助于回答一个问题。只回答“是”或“否”。"),
            Message::user(format!(
                "问题：{query}\n\n段落：{}\n\n这段文字与问题相关、有助于回答问题吗？请回答“是”或“否”。",
                truncate(passage, JUDGED_CHARS_ZH)
            )),
        ],
        Language::English => vec![
            Message::system("You judge whether a passage helps answer a question. Answer only yes or no."),
            Message::user(format!(
                "Question: {query}\n\nPassage: {}\n\nIs the passage relevant to the question and helpful for \
                 answering it? Answer yes or no.",
                truncate(passage, JUDGED_CHARS_EN)
            )),
        ],
    }
}

/// `text` cut to at most `max_chars` characters, at the last sentence end or space in its final
/// fifth when there is one (so no word is cut), with "…" marking the cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let Some((limit, _)) = text.char_indices().nth(max_chars) else {
        return text.to_string();
    };
    let head = &text[..limit];
    let floor = head.char_indices().nth(max_chars * 4 / 5).map_or(0, |(i, _)| i);
    let cut = head
        .rfind(['。', '！', '？', '；', '.', '!', '?'])
        .map(|i| i + head[i..].chars().next().map_or(1, char::len_utf8))
        .filter(|&end| end > floor)
        .or_else(|| head.rfind(char::is_whitespace).filter(|&i| i > floor))
        .unwrap_or(limit);
    format!("{}…", text[..cut].trim_end())
}

/// Maximal marginal relevance (Carbonell & Goldstein 1998): picks candidates one at a time,
/// each maximising `lambda · sim(query, c) − (1 − lambda) · max sim(c, picked)`, so a passage
/// that repeats one already picked loses to a slightly less relevant one that adds something.
/// Vectors are unit length (cosine = dot product). Returns the candidates' indices in the order
/// picked, each with the value it was picked at.
pub fn mmr(query: &[f32], candidates: &[Vec<f32>], lambda: f32) -> Vec<(usize, f32)> {
    let relevance: Vec<f32> = candidates.iter().map(|c| dot(query, c)).collect();
    // The highest similarity of each candidate to any picked one, updated after each pick.
    let mut redundancy = vec![f32::NEG_INFINITY; candidates.len()];
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    let mut picked = Vec::with_capacity(candidates.len());
    while !left.is_empty() {
        let value = |i: usize| {
            let penalty = if redundancy[i].is_finite() { redundancy[i] } else { 0.0 };
            lambda * relevance[i] - (1.0 - lambda) * penalty
        };
        // The first of equal values wins: candidates come best first.
        let (position, best) = left
            .iter()
            .enumerate()
            .map(|(position, &i)| (position, value(i)))
            .fold((0, f32::NEG_INFINITY), |best, next| if next.1 > best.1 { next } else { best });
        let chosen = left.remove(position);
        picked.push((chosen, best));
        for &i in &left {
            redundancy[i] = redundancy[i].max(dot(&candidates[i], &candidates[chosen]));
        }
    }
    picked
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
