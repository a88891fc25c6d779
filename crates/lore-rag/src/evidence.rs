//! Whether the retrieved passages can answer a question, judged before any text is generated.

use std::cmp::Reverse;
use std::collections::HashSet;

use lore_core::{Answerability, Hit};
use serde::Serialize;

use crate::pipeline::Retrieval;
use crate::support::{Sentences, WINDOW, units};
use crate::themes::is_theme_source;

/// How many of the best passages the coverage signal reads: the generator reads them all, but
/// an answer rarely sits below the third.
const COVERAGE_PASSAGES: usize = 3;

/// English question words, which a passage rarely repeats and which say nothing about its topic;
/// the first nine ask for something ([`asks_for_something`]).
const QUESTION_WORDS: [&str; 17] = [
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "doe", "did", "was", "were", "are", "the",
    "and", "for",
];

/// Chinese question words, cut out of a question before its character pairs are formed, so that
/// no pair straddles one ("属于什么科" gives 属于 and 科, not 于什 or 么科).
const CHINESE_QUESTION_WORDS: [&str; 16] = [
    "为什么",
    "什么",
    "哪些",
    "哪个",
    "哪里",
    "哪儿",
    "哪一",
    "哪年",
    "多少",
    "如何",
    "怎么",
    "怎样",
    "几",
    "谁",
    "吗",
    "呢",
];

/// The evidence that the retrieved passages answer a question: signals every pipeline has,
/// and the probability the gate reads from them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The probability, from 0 to 1, that a passage answers the question: the reranker's
    /// calibrated probability for its best passage when it has one, else the gate's logistic
    /// model over the two coverages below. Only words count, so the same model serves every
    /// embedder and retriever.
    pub score: f32,
    /// The largest share of the question's content words (Chinese: character pairs) that one
    /// of the three best passages contains.
    pub coverage: f32,
    /// The largest share of the question's content words that two consecutive sentences of one
    /// of the three best passages contain: a question written about a passage usually restates
    /// one of its sentences, while a passage merely on its topic spreads the words out.
    pub sentence_coverage: f32,
    /// The calibrated reranker's probability for the best passage, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<f32>,
    /// The gate's decision: no passage, or a score below its `min_evidence`, and the question
    /// is refused without generating. A question whose words ask about the whole collection,
    /// answered from a theme ([`crate::ThemeRoute::asked`]), passes: its words are seldom in any
    /// passage, and the themes answer it by construction. A theme that merely ranks first does
    /// not pass a question: an unanswerable question often finds a general summary closest.
    pub gated: bool,
}

impl Evidence {
    /// The evidence in `retrieval` for `question`, scored by `gate`'s model.
    pub fn of(question: &str, retrieval: &Retrieval, passages: &[Hit], gate: &Answerability) -> Evidence {
        let asked = asked_units(question);
        let (mut coverage, mut sentence_coverage) = (0.0f32, 0.0f32);
        for passage in passages.iter().take(COVERAGE_PASSAGES) {
            let sentences = Sentences::of(&passage.text, |u| asked.contains(u));
            for (_, found) in sentences.windows(2) {
                sentence_coverage = sentence_coverage.max(share(found.len(), asked.len()));
            }
            coverage = coverage.max(share(sentences.all().len(), asked.len()));
        }
        let relevance = retrieval
            .explanation
            .rerank
            .as_ref()
            .filter(|rerank| rerank.calibration.is_some())
            .and_then(|rerank| rerank.scores.first())
            .map(|best| best.score);
        let score = relevance.unwrap_or_else(|| {
            let w = &gate.weights;
            let z = w.bias + w.coverage * coverage + w.sentence_coverage * sentence_coverage;
            1.0 / (1.0 + (-z).exp())
        });
        let collection_wide = retrieval.explanation.themes.as_ref().is_some_and(|route| route.kept && route.asked)
            && passages.first().is_some_and(|best| is_theme_source(&best.source));
        let gated = passages.is_empty() || (score < gate.min_evidence && !collection_wide);
        Evidence { score, coverage, sentence_coverage, relevance, gated }
    }
}

/// The question's content units, question words left out.
pub(crate) fn asked_units(question: &str) -> HashSet<String> {
    let mut question = question.to_string();
    for word in CHINESE_QUESTION_WORDS {
        question = question.replace(word, " ");
    }
    units(&question).into_iter().filter(|u| !QUESTION_WORDS.contains(&u.as_str())).collect()
}

/// Whether `question` asks for something the answer must name (what, who, 哪个, 多少 …), rather
/// than for a yes or no, a choice between named options (" or ", 还是) or a verdict on a claim:
/// only then is an answer that repeats the question's words no answer.
pub(crate) fn asks_for_something(question: &str) -> bool {
    let lower = question.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let wh = &QUESTION_WORDS[..9];
    // A claim ("X, which binds Y, causes Z.") holds question words too; a question opens with
    // one or ends with a question mark.
    let english = words.first().is_some_and(|w| wh.contains(w))
        || question.trim_end().ends_with('?') && wh.iter().any(|w| words.contains(w));
    // 吗 makes a yes/no question (below); 呢 follows any kind.
    let chinese = CHINESE_QUESTION_WORDS.iter().filter(|&&w| w != "呢").any(|w| question.contains(w));
    let choice = words.contains(&"or") || ["还是", "是否", "吗"].iter().any(|w| question.contains(w));
    (english || chinese) && !choice
}

/// Each passage cut to its [`best_window`]: what a small model reads when asked again after
/// refusing, so that the answer is not lost in a long passage.
pub(crate) fn focus(question: &str, passages: &[Hit]) -> Vec<Hit> {
    let asked = asked_units(question);
    passages.iter().map(|passage| Hit { text: best_window(&asked, passage).0, ..passage.clone() }).collect()
}

/// The passage whose [`best_window`] holds the most of the question's words (ties: the better
/// ranked), as its index in `passages` and that window: what Lore quotes when the generator gives
/// no supported answer. `None` when no passage holds any of the words.
pub(crate) fn closest_window(question: &str, passages: &[Hit]) -> Option<(usize, String)> {
    let asked = asked_units(question);
    passages
        .iter()
        .enumerate()
        .map(|(i, passage)| (i, best_window(&asked, passage)))
        .filter(|(_, (_, found))| *found > 0)
        .max_by_key(|(i, (_, found))| (*found, Reverse(*i)))
        .map(|(i, (window, _))| (i, window))
}

/// The three consecutive sentences of `passage` that hold the most of the `asked` units (ties:
/// the first), and how many they hold.
fn best_window(asked: &HashSet<String>, passage: &Hit) -> (String, usize) {
    let sentences = Sentences::of(&passage.text, |u| asked.contains(u));
    let (start, found) = sentences
        .windows(WINDOW)
        .map(|(start, found)| (start, found.len()))
        .max_by_key(|&(start, found)| (found, Reverse(start)))
        .unwrap_or((0, 0));
    let texts = &sentences.texts;
    (texts[start.min(texts.len())..(start + WINDOW).min(texts.len())].concat().trim().to_string(), found)
}

fn share(part: usize, whole: usize) -> f32 {
    if whole == 0 { 1.0 } else { part as f32 / whole as f32 }
}
