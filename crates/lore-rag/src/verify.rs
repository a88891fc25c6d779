//! Each sentence of a generated answer checked against the passage it cites.

use std::collections::HashSet;

use lore_core::{CheckedSentence, Hit, Language, Verification, detect_language};

use crate::evidence::asked_units;
use crate::prompt::cited_numbers;
use crate::support::{own_units, units};

/// Words too common to show that a sentence came from a passage ("Yes, it is." has nothing to
/// check).
const FILLER_UNITS: [&str; 16] = [
    "yes", "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have", "not", "its",
    "also",
];

/// A generated answer after its sentences were checked.
pub(crate) struct Verified {
    /// The answer as shown: the supported sentences with their (corrected) citations, or the
    /// generated text unchanged when every sentence held with the passages it cited.
    pub text: String,
    /// Whether a sentence was removed or a citation moved.
    pub changed: bool,
    /// Each sentence's check.
    pub sentences: Vec<CheckedSentence>,
}

/// How many consecutive sentences of a passage must hold a claim together.
const WINDOW: usize = 3;

/// Checks each sentence of `answer` against `passages` (numbered from 1, as cited). A sentence
/// claims its own words (those not in the question) *as the answer to the question*, so the
/// claim is its own words with the question's, and a passage supports it when three
/// consecutive sentences of it hold at least `config.min_support` of them: a short answer copied
/// from a passage about something else is not supported by it. A sentence its cited passages
/// do not support is credited to the passage that does, or removed.
pub(crate) fn verify(answer: &str, question: &str, passages: &[Hit], config: &Verification) -> Verified {
    let windows: Vec<Vec<HashSet<String>>> = passages.iter().map(|p| windows_of(&p.text)).collect();
    let asked = asked_units(question);
    let mut sentences = Vec::new();
    let mut changed = false;
    for piece in sentences_of(answer) {
        let cited: Vec<usize> = cited_numbers(&piece).into_iter().filter(|&n| n >= 1 && n <= passages.len()).collect();
        let text = without_citations(&piece);
        let mut claim: HashSet<String> =
            own_units(&text, question).into_iter().filter(|u| !FILLER_UNITS.contains(&u.as_str())).collect();
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
        claim.extend(asked.iter().cloned());
        let support = |n: usize| {
            let held = windows[n - 1].iter().map(|w| claim.iter().filter(|u| w.contains(*u)).count()).max();
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
    Verified { text, changed, sentences }
}

/// The units of each run of [`WINDOW`] consecutive sentences of `text` (the whole text when it
/// is shorter).
fn windows_of(text: &str) -> Vec<HashSet<String>> {
    let sentences: Vec<Vec<String>> = sentences_of(text).iter().map(|s| units(s)).collect();
    sentences.windows(WINDOW.min(sentences.len()).max(1)).map(|w| w.iter().flatten().cloned().collect()).collect()
}

/// Whether `text` has a letter or digit: a bare citation or punctuation has nothing to check.
fn has_letters(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// The answer's sentences, each with the citation marks that follow it ("… 2019. [1]" gives the
/// mark to the sentence before it).
pub(crate) fn sentences_of(answer: &str) -> Vec<String> {
    let mut sentences: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = answer.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let ends = match c {
            '。' | '！' | '？' | '!' | '?' | '\n' => true,
            // A full stop ends a sentence before a space, the end, or a citation; not in "3.5".
            '.' => chars.peek().is_none_or(|next| next.is_whitespace() || *next == '['),
            _ => false,
        };
        if ends {
            push_sentence(&mut sentences, std::mem::take(&mut current));
        }
    }
    push_sentence(&mut sentences, current);
    sentences
}

fn push_sentence(sentences: &mut Vec<String>, piece: String) {
    if piece.trim().is_empty() {
        return;
    }
    let marks_only = without_citations(&piece).chars().all(|c| !c.is_alphanumeric());
    match sentences.last_mut() {
        Some(last) if marks_only => last.push_str(&piece),
        _ => sentences.push(piece),
    }
}

/// `text` without `[n]`, `[1, 2]` and `【n】` marks, trimmed.
fn without_citations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['[', '【']) {
        out.push_str(&rest[..open]);
        let after = &rest[open + rest[open..].chars().next().map_or(1, char::len_utf8)..];
        match after.find([']', '】']) {
            Some(close)
                if after[..close].chars().all(|c| c.is_ascii_digit() || ", ，".contains(c))
                    && after[..close].chars().any(|c| c.is_ascii_digit()) =>
            {
                rest = &after[close + after[close..].chars().next().map_or(1, char::len_utf8)..];
            }
            _ => {
                out.push_str(&rest[open..open + rest[open..].chars().next().map_or(1, char::len_utf8)]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ").replace(" .", ".").replace(" 。", "。")
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
