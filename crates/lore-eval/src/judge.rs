use std::path::Path;

use lore_core::{ChatModel, Language, Message, Result, detect_language};
use serde::{Deserialize, Serialize};

use crate::Mean;
use crate::ask::{Asker, Unscored};
use crate::parse::{entries, labelled_number, number_in, objects};

/// The rubric's three scores, integers from 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RubricScores {
    /// Says the same as the reference answer, with no contradiction or wrong fact.
    pub correctness: u8,
    /// Covers every key point of the reference answer.
    pub completeness: u8,
    /// Clear and concise, without irrelevant content.
    pub clarity: u8,
}

impl RubricScores {
    /// The item's score: the mean of the three.
    pub fn mean(&self) -> f64 {
        f64::from(u16::from(self.correctness) + u16::from(self.completeness) + u16::from(self.clarity)) / 3.0
    }
}

/// The judge's grade of one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The rubric's three scores.
    pub scores: RubricScores,
    /// The judge's explanation, or its whole reply when it gave the scores in prose.
    pub reasoning: String,
    /// How many times the judge was asked before its reply parsed.
    pub attempts: usize,
}

/// Grades answers against gold answers with a chat model, on the rubric of the classic RAG
/// tutorial: correctness, completeness, clarity & conciseness, each 1–5.
pub struct Judge<'a> {
    asker: Asker<'a>,
}

/// The JSON with a sentence or two of reasoning takes under 150 tokens; a reply that runs past
/// this is rambling and would not parse anyway.
const JUDGE_MAX_TOKENS: usize = 256;

/// Each score's name, the words that mark it in a JSON key (found in the lowercased key), and
/// the labels that mark it in prose, where only unambiguous words count.
const SCORES: [(&str, &[&str], &[&str]); 3] = [
    ("correctness", &["correct", "accura", "正确", "准确"], &["correctness", "accuracy", "正确性", "准确性"]),
    ("completeness", &["complete", "完整", "全面"], &["completeness", "完整性", "全面性"]),
    ("clarity", &["clar", "concise", "清晰", "简洁", "清楚"], &["clarity", "conciseness", "清晰", "简洁"]),
];
const REASONING_KEYS: &[&str] = &["reason", "explanation", "rationale", "理由", "解释", "分析", "评价"];

impl<'a> Judge<'a> {
    /// A judge on `chat`. With `cache_path`, the model's replies are kept in that JSON-lines file
    /// and a question asked again with the same model is answered from it.
    pub fn new(chat: &'a dyn ChatModel, cache_path: Option<&Path>) -> Result<Judge<'a>> {
        Ok(Judge { asker: Asker::new(chat, cache_path)? })
    }

    /// How many times the judge is asked (the later times with a reminder of the format) before
    /// an item is recorded as unscored; 3 by default.
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.asker.max_attempts = attempts.max(1);
        self
    }

    /// The id of the chat model that judges.
    pub fn model_id(&self) -> &str {
        self.asker.model_id()
    }

    /// Grades `answer` to `question` against the reference `gold`. The outer error is the model
    /// failing to run; the inner one a reply that never parsed.
    ///
    /// When the reference or the answer is the refusal sentence the grade needs no model: a
    /// refusal matching a refusal scores 5 on all three, a mismatch 1. Small judges get this
    /// wrong — qwen-1.5b gave 5/5/5 to invented answers whose reference was the refusal.
    pub fn judge(&self, question: &str, gold: &str, answer: &str) -> Result<std::result::Result<Judgement, Unscored>> {
        let (refusal_expected, refused) = (lore_rag::is_refusal(gold), lore_rag::is_refusal(answer));
        if refusal_expected || refused {
            let (score, reasoning) = match (refusal_expected, refused) {
                (true, true) => (5, "the reference and the answer both say the documents do not answer the question"),
                (true, false) => {
                    (1, "the reference says the documents do not answer the question; the answer answers it")
                }
                _ => (1, "the answer refuses a question the reference answers"),
            };
            let scores = RubricScores { correctness: score, completeness: score, clarity: score };
            return Ok(Ok(Judgement { scores, reasoning: reasoning.into(), attempts: 0 }));
        }
        let language = detect_language(question);
        let outcome = self.asker.ask(
            judge_prompt(language, question, gold, answer),
            JUDGE_MAX_TOKENS,
            parse_judgement,
            |reason| reminder(language, reason),
        )?;
        Ok(outcome.map(|((scores, reasoning), attempts)| Judgement { scores, reasoning, attempts }))
    }
}

/// The judge's results over a question set; the final score is the mean of the item scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JudgeSummary {
    /// The mean of the item scores (each the mean of its three rubric scores), 1–5.
    pub score: Mean,
    /// Mean correctness, 1–5.
    pub correctness: Mean,
    /// Mean completeness, 1–5.
    pub completeness: Mean,
    /// Mean clarity, 1–5.
    pub clarity: Mean,
}

/// The four means as an indented table, one per line.
impl std::fmt::Display for JudgeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  judge score (1-5)  {}", self.score)?;
        writeln!(f, "    correctness      {}", self.correctness)?;
        writeln!(f, "    completeness     {}", self.completeness)?;
        write!(f, "    clarity          {}", self.clarity)
    }
}

impl JudgeSummary {
    /// The means over `outcomes`, leaving out the unscored items.
    pub fn of(outcomes: &[std::result::Result<Judgement, Unscored>]) -> JudgeSummary {
        let mean = |pick: fn(&RubricScores) -> f64| {
            Mean::of(outcomes.iter().map(|o| o.as_ref().ok().map(|j| pick(&j.scores))))
        };
        JudgeSummary {
            score: mean(RubricScores::mean),
            correctness: mean(|s| f64::from(s.correctness)),
            completeness: mean(|s| f64::from(s.completeness)),
            clarity: mean(|s| f64::from(s.clarity)),
        }
    }
}

const FORMAT: &str = r#"{"reasoning": "...", "correctness": <1-5>, "completeness": <1-5>, "clarity": <1-5>}"#;

fn judge_prompt(language: Language, question: &str, gold: &str, answer: &str) -> Vec<Message> {
    match language {
        Language::English => vec![
            Message::system(
                "You are a strict and impartial grader. You compare an answer with the reference answer and score it.",
            ),
            Message::user(format!(
                "Question: {question}\n\nReference answer: {gold}\n\nAnswer to grade: {answer}\n\n\
                 Score the answer to grade against the reference answer on three criteria, each an integer from 1 (worst) to 5 (best):\n\
                 - correctness: does it say the same as the reference answer, with no contradiction or wrong fact?\n\
                 - completeness: does it cover every key point of the reference answer?\n\
                 - clarity: is it clear and concise, without irrelevant content?\n\
                 If the reference answer says the question cannot be answered from the documents, an answer that also declines is fully correct and complete.\n\n\
                 Reply with only this JSON object, the scores filled in:\n{FORMAT}"
            )),
        ],
        Language::Chinese => vec![
            Message::system("你是一名严格、公正的评分员。你将待评分的回答与参考答案进行比较并打分。"),
            Message::user(format!(
                "问题：{question}\n\n参考答案：{gold}\n\n待评分的回答：{answer}\n\n\
                 请对照参考答案，从三个维度为待评分的回答打分，每项为 1（最差）到 5（最好）的整数：\n\
                 - correctness（正确性）：与参考答案的意思是否一致，有无矛盾或错误的事实？\n\
                 - completeness（完整性）：是否涵盖了参考答案的所有要点？\n\
                 - clarity（清晰简洁）：是否清楚、简洁，没有无关内容？\n\
                 如果参考答案表示无法根据文档回答该问题，那么同样拒绝回答的回答是完全正确且完整的。\n\n\
                 只输出下面这个 JSON 对象，并填入分数：\n{FORMAT}"
            )),
        ],
    }
}

fn reminder(language: Language, reason: &str) -> String {
    match language {
        Language::English => {
            format!(
                "Your reply could not be used: {reason}. Reply with only this JSON object, each score an integer from 1 to 5:\n{FORMAT}"
            )
        }
        Language::Chinese => {
            format!("你的回复无法使用：{reason}。请只输出下面这个 JSON 对象，每项分数为 1 到 5 的整数：\n{FORMAT}")
        }
    }
}

/// The scores and reasoning in a judge's reply: from the first JSON-like object that names all
/// three criteria, else from labelled scores in prose. A score that is missing, fractional or
/// outside 1–5 makes the reply unusable (the reason says which).
fn parse_judgement(reply: &str) -> std::result::Result<(RubricScores, String), String> {
    let from_json = objects(reply).iter().find_map(|object| {
        let pairs = entries(object);
        let named = |names: &'static [&'static str]| {
            pairs.iter().filter(move |(key, _)| names.iter().any(|n| key.to_lowercase().contains(n))).map(|(_, v)| *v)
        };
        let scores = SCORES.map(|(_, keys, _)| named(keys).find_map(number_in));
        let reasoning = named(REASONING_KEYS).find_map(|v| v.as_str()).unwrap_or_default().trim().to_string();
        scores.iter().all(Option::is_some).then_some((scores, reasoning))
    });
    let (scores, reasoning) = from_json
        .unwrap_or_else(|| (SCORES.map(|(_, _, labels)| labelled_number(reply, labels)), reply.trim().to_string()));
    let mut valid = [0u8; 3];
    for (((name, _, _), score), slot) in SCORES.iter().zip(scores).zip(&mut valid) {
        let score = score.ok_or_else(|| format!("no {name} score found"))?;
        if score.fract() != 0.0 || !(1.0..=5.0).contains(&score) {
            return Err(format!("the {name} score {score} is not an integer from 1 to 5"));
        }
        *slot = score as u8;
    }
    let [correctness, completeness, clarity] = valid;
    Ok((RubricScores { correctness, completeness, clarity }, reasoning))
}
