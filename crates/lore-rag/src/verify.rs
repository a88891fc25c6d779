//! Each sentence of a generated answer checked against the passage it cites.

use std::collections::HashSet;

use lore_core::{CheckedSentence, Hit, Language, Verification, detect_language};

use crate::evidence::{asked_units, asks_for_something};
use crate::prompt::cited_numbers;
use crate::support::{Sentences, WINDOW, own_units, sentences_of, without_citations};

/// Words too common to show that a sentence came from a passage ("Yes, it is." has nothing to
/// check), and stems naming the documents themselves ("The document is [1]." names nothing).
const FILLER_UNITS: [&str; 18] = [
    "yes", "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have", "not", "its",
    "also", "docume", "passag",
];

/// A generated answer after its sentences were checked.
pub(crate) struct Verified {
    /// The answer as shown: the supported sentences with their (corrected) citations, or the
    /// generated text unchanged when every sentence held with the passages it cited.
    pub text: String,
    /// Whether a sentence was removed or a citation moved.
    pub changed: bool,
    /// Whether a kept sentence has words: an answer of citation marks alone says nothing.
    pub says_something: bool,
    /// Each sentence's check.
    pub sentences: Vec<CheckedSentence>,
}

/// Checks each sentence of `answer` against `passages` (numbered from 1, as cited). A sentence
/// claims its own words (those not in the question) *as the answer to the question*, so the
/// claim is its own words with the question's, and a passage supports it when three
/// consecutive sentences of it hold at least `config.min_support` of them: a short answer copied
/// from a passage about something else is not supported by it. The sentence's own numbers must
/// all be in those sentences: a date or a count is often the whole answer and one unit among
/// many, so a wrong one ("1940" where the passage says 1949) would otherwise pass on the
/// question's words. A sentence its cited passages do not support is credited to the passage
/// that does, or removed. A sentence that only gives back the question's words, to a question
/// that asks for something ([`asks_for_something`]), is removed: "The song debuted in that
/// episode" names no song. So is a sentence the answer already gave.
pub(crate) fn verify(answer: &str, question: &str, passages: &[Hit], config: &Verification) -> Verified {
    let passage_sentences: Vec<Sentences> = passages.iter().map(|p| Sentences::of(&p.text, |_| true)).collect();
    let windows: Vec<Vec<HashSet<&String>>> =
        passage_sentences.iter().map(|s| s.windows(WINDOW).map(|(_, units)| units).collect()).collect();
    let asked = asked_units(question);
    let asks_for_something = asks_for_something(question);
    let mut sentences = Vec::new();
    let mut changed = false;
    for piece in sentences_of(answer) {
        let cited: Vec<usize> = cited_numbers(&piece).into_iter().filter(|&n| n >= 1 && n <= passages.len()).collect();
        let text = without_citations(&piece);
        let mut claim: HashSet<String> =
            own_units(&text, question).into_iter().filter(|u| !FILLER_UNITS.contains(&u.as_str())).collect();
        // A small model caught in a loop writes the same sentences again and again; the
        // question's own words given back to a question that asks for something name nothing.
        let repeated = sentences.iter().any(|kept: &CheckedSentence| kept.kept && kept.text.trim() == text.trim());
        let echo = claim.is_empty() && has_letters(&text) && asks_for_something;
        if repeated || echo {
            let method = if repeated { "repeats an earlier sentence" } else { "adds nothing to the question" };
            changed = true;
            sentences.push(CheckedSentence {
                text,
                cited,
                supported_by: Vec::new(),
                support: 0.0,
                method: method.into(),
                kept: false,
            });
            continue;
        }
        if claim.is_empty() && !has_letters(&text) {
            sentences.push(CheckedSentence {
                text,
                cited: cited.clone(),
                supported_by: cited,
                support: 1.0,
                method: "nothing to check".into(),
                kept: true,
            });
            continue;
        }
        let numbers: Vec<String> = claim.iter().filter(|u| u.chars().all(|c| c.is_ascii_digit())).cloned().collect();
        claim.extend(asked.iter().cloned());
        let support = |n: usize| {
            let held = windows[n - 1]
                .iter()
                .filter(|w| numbers.iter().all(|number| w.contains(number)))
                .map(|w| claim.iter().filter(|u| w.contains(u)).count())
                .max();
            held.unwrap_or(0) as f32 / claim.len().max(1) as f32
        };
        let supporting: Vec<usize> = cited.iter().copied().filter(|&n| support(n) >= config.min_support).collect();
        let (supported_by, best) = if supporting.is_empty() {
            let best = (1..=passages.len()).max_by(|&a, &b| support(a).total_cmp(&support(b)));
            let credited: Vec<usize> = best.filter(|&n| support(n) >= config.min_support).into_iter().collect();
            // A sentence that cited nothing is credited without rewriting the text; a wrong
            // citation is moved, an unsupported sentence removed.
            changed |= !cited.is_empty() || credited.is_empty();
            (credited, best.map_or(0.0, support))
        } else {
            let best = supporting.iter().map(|&n| support(n)).fold(0.0, f32::max);
            changed |= supporting.len() != cited.len();
            (supporting, best)
        };
        let kept = !supported_by.is_empty();
        sentences.push(CheckedSentence { text, cited, supported_by, support: best, method: "lexical".into(), kept });
    }
    let text = if changed { rewrite(&sentences, detect_language(answer)) } else { answer.trim().to_string() };
    let says_something = sentences.iter().any(|s| s.kept && has_letters(&s.text));
    Verified { text, changed, says_something, sentences }
}

/// Whether `text` has a letter or digit: a bare citation or punctuation has nothing to check.
fn has_letters(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// The kept sentences, each with its credited passages cited before its closing punctuation.
fn rewrite(sentences: &[CheckedSentence], language: Language) -> String {
    let mut parts = Vec::new();
    for sentence in sentences.iter().filter(|s| s.kept) {
        let text = sentence.text.trim();
        let body = text.trim_end_matches(['.', '。', '!', '！', '?', '？']);
        let end = &text[body.len()..];
        let marks: String = sentence.supported_by.iter().map(|n| format!("[{n}]")).collect();
        let space = if marks.is_empty() || language == Language::Chinese { "" } else { " " };
        parts.push(format!("{body}{space}{marks}{end}"));
    }
    parts.join(if language == Language::Chinese { "" } else { " " })
}
