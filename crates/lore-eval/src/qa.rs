use std::collections::HashMap;

use lore_core::{Language, detect_language, is_cjk};
use serde::Serialize;

use crate::{Mean, QaItem};

/// Whether the prediction equals a gold answer once both are normalised (see [`tokens`]).
/// 1.0 or 0.0.
pub fn exact_match(prediction: &str, golds: &[impl AsRef<str>], language: Language) -> f64 {
    let predicted = tokens(prediction, language);
    let hit = golds.iter().any(|gold| tokens(gold.as_ref(), language) == predicted);
    if hit { 1.0 } else { 0.0 }
}

/// Token F1, the best over the gold answers. English: SQuAD's bag-of-words overlap. Chinese:
/// the CMRC2018 official script's, whose overlap is the longest common contiguous run of tokens.
pub fn token_f1(prediction: &str, golds: &[impl AsRef<str>], language: Language) -> f64 {
    let predicted = tokens(prediction, language);
    best_over(golds, |gold| {
        let gold = tokens(gold, language);
        if predicted.is_empty() || gold.is_empty() {
            return if predicted == gold { 1.0 } else { 0.0 };
        }
        let overlap = match language {
            Language::English => bag_overlap(&predicted, &gold),
            Language::Chinese => longest_common_run(&predicted, &gold),
        };
        f_measure(overlap, predicted.len(), gold.len())
    })
}

/// ROUGE-L F1: the longest common subsequence of tokens (words in English, characters in
/// Chinese), the best over the gold answers.
pub fn rouge_l(prediction: &str, golds: &[impl AsRef<str>], language: Language) -> f64 {
    let predicted = tokens(prediction, language);
    best_over(golds, |gold| {
        let gold = tokens(gold, language);
        f_measure(longest_common_subsequence(&predicted, &gold), predicted.len(), gold.len())
    })
}

/// Whether some normalised gold answer occurs, as a run of whole tokens, in one of the contexts.
pub fn answer_in_context(golds: &[impl AsRef<str>], contexts: &[&str], language: Language) -> bool {
    let contexts: Vec<Vec<String>> = contexts.iter().map(|c| tokens(c, language)).collect();
    golds
        .iter()
        .map(|g| tokens(g.as_ref(), language))
        .filter(|g| !g.is_empty())
        .any(|gold| contexts.iter().any(|context| context.windows(gold.len()).any(|window| window == gold.as_slice())))
}

/// The normalised tokens of `text`. Both languages lowercase and drop punctuation (any
/// character that is neither a letter, a digit nor whitespace; SQuAD drops only ASCII
/// punctuation, the wider set keeps typographic quotes and dashes from costing points).
/// English then drops the articles a, an, the and splits on whitespace, as SQuAD does. Chinese
/// makes every CJK character a token and splits the runs between them on whitespace, as the
/// CMRC2018 script's mixed segmentation does.
pub fn tokens(text: &str, language: Language) -> Vec<String> {
    let lowered = text.to_lowercase();
    let kept = lowered.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace());
    match language {
        Language::English => kept
            .collect::<String>()
            .split_whitespace()
            .filter(|w| !matches!(*w, "a" | "an" | "the"))
            .map(str::to_string)
            .collect(),
        Language::Chinese => {
            let mut out = Vec::new();
            let mut run = String::new();
            let flush = |run: &mut String, out: &mut Vec<String>| {
                out.extend(run.split_whitespace().map(str::to_string));
                run.clear();
            };
            for c in kept {
                if is_cjk(c) {
                    flush(&mut run, &mut out);
                    out.push(c.to_string());
                } else {
                    run.push(c);
                }
            }
            flush(&mut run, &mut out);
            out
        }
    }
}

fn best_over(golds: &[impl AsRef<str>], score: impl Fn(&str) -> f64) -> f64 {
    golds.iter().map(|g| score(g.as_ref())).fold(0.0, f64::max)
}

fn f_measure(overlap: usize, predicted: usize, gold: usize) -> f64 {
    if overlap == 0 {
        return 0.0;
    }
    let precision = overlap as f64 / predicted as f64;
    let recall = overlap as f64 / gold as f64;
    2.0 * precision * recall / (precision + recall)
}

fn bag_overlap(a: &[String], b: &[String]) -> usize {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in b {
        *counts.entry(t).or_default() += 1;
    }
    a.iter()
        .filter(|t| match counts.get_mut(t.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count()
}

fn longest_common_run(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                current[j + 1] = previous[j] + 1;
                best = best.max(current[j + 1]);
            }
        }
        previous = current;
    }
    best
}

fn longest_common_subsequence(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    for x in a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        previous = current;
    }
    previous[b.len()]
}

/// The answer metrics of one question, in the question's language.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QaScores {
    /// The question's id.
    pub id: String,
    /// Whether the question has an answer in the documents.
    pub answerable: bool,
    /// The answer is the refusal sentence.
    pub refused: bool,
    /// The text metrics are `None` for an unanswerable question, whose only right answer is the
    /// refusal; a refusal of an answerable question scores 0 on them.
    pub exact_match: Option<f64>,
    /// Token F1 against the best gold answer (see [`token_f1`]).
    pub f1: Option<f64>,
    /// ROUGE-L F1 against the best gold answer (see [`rouge_l`]).
    pub rouge_l: Option<f64>,
    /// Whether a gold answer is in the retrieved context: a retrieval miss, not a generation one,
    /// when it is not.
    pub answer_in_context: Option<bool>,
}

impl QaScores {
    /// Scores `answer` to `item`, with `contexts` the passages the generator read.
    pub fn of(item: &QaItem, answer: &str, contexts: &[&str]) -> QaScores {
        let language = detect_language(&item.question);
        let answered = |metric: fn(&str, &[String], Language) -> f64| {
            item.answerable.then(|| metric(answer, &item.answers, language))
        };
        QaScores {
            id: item.id.clone(),
            answerable: item.answerable,
            refused: lore_rag::is_refusal(answer),
            exact_match: answered(exact_match),
            f1: answered(token_f1),
            rouge_l: answered(rouge_l),
            answer_in_context: item.answerable.then(|| answer_in_context(&item.answers, contexts, language)),
        }
    }
}

/// How refusals went: an unanswerable question should be refused, an answerable one answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RefusalCounts {
    /// Unanswerable questions refused (right).
    pub refused_unanswerable: usize,
    /// Unanswerable questions answered anyway (wrong).
    pub answered_unanswerable: usize,
    /// Answerable questions refused (wrong).
    pub refused_answerable: usize,
    /// Answerable questions answered (right).
    pub answered_answerable: usize,
}

impl RefusalCounts {
    /// The share of questions whose refusal was right; `None` with no question.
    pub fn accuracy(&self) -> Option<f64> {
        let right = self.refused_unanswerable + self.answered_answerable;
        let total = right + self.answered_unanswerable + self.refused_answerable;
        (total > 0).then(|| right as f64 / total as f64)
    }
}

/// The answer metrics over a question set: text metrics averaged over the answerable questions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QaSummary {
    /// How many questions, answerable or not.
    pub questions: usize,
    /// Mean exact match.
    pub exact_match: Mean,
    /// Mean token F1.
    pub f1: Mean,
    /// Mean ROUGE-L F1.
    pub rouge_l: Mean,
    /// The share of answerable questions with a gold answer in the retrieved context.
    pub answer_in_context: Mean,
    /// How many questions were refused or answered, by whether they were answerable.
    pub refusal: RefusalCounts,
    /// The share of questions whose refusal was right (see [`RefusalCounts::accuracy`]).
    pub refusal_accuracy: Option<f64>,
}

impl QaSummary {
    /// Summarises the per-question scores.
    pub fn of(scores: &[QaScores]) -> QaSummary {
        let answerable = || scores.iter().filter(|s| s.answerable);
        let mut refusal = RefusalCounts::default();
        for s in scores {
            let count = match (s.answerable, s.refused) {
                (false, true) => &mut refusal.refused_unanswerable,
                (false, false) => &mut refusal.answered_unanswerable,
                (true, true) => &mut refusal.refused_answerable,
                (true, false) => &mut refusal.answered_answerable,
            };
            *count += 1;
        }
        QaSummary {
            questions: scores.len(),
            exact_match: Mean::of(answerable().map(|s| s.exact_match)),
            f1: Mean::of(answerable().map(|s| s.f1)),
            rouge_l: Mean::of(answerable().map(|s| s.rouge_l)),
            answer_in_context: Mean::of(answerable().map(|s| s.answer_in_context.map(f64::from))),
            refusal_accuracy: refusal.accuracy(),
            refusal,
        }
    }
}
