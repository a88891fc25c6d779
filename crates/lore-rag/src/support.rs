//! How much of an answer is taken from its passages: a check that needs no model.

use std::collections::HashSet;

use lore_core::{Hit, is_cjk};

/// The share of the answer's content units that occur in `passages`, counting only units that
/// are not in the question (restating the question proves nothing). Units are pairs of adjacent
/// CJK characters and, for other scripts, words of three or more letters, stemmed crudely (an
/// ending -ing, -ed, -es or -s dropped, then cut to six letters: "trained" and "training" meet). Citation marks are ignored. An answer with no
/// unit of its own (nothing but a citation, or the question repeated) has support 0.
///
/// Small models copy from their passages when they answer from them and write generic prose when
/// they make an answer up, so the two are far apart: on the RAG-Arena set, qwen-0.5b's answers
/// taken from the passages score 0.94–0.99 and its invented answer to a question the documents
/// do not cover 0.24. A paraphrasing model or an answer in another language than the passages
/// scores low, so this is a check of small local models' answers, not of every answer.
pub fn lexical_support(answer: &str, question: &str, passages: &[Hit]) -> f32 {
    let mut in_passages = HashSet::new();
    for passage in passages {
        in_passages.extend(units(&passage.text));
    }
    let own = own_units(answer, question);
    if own.is_empty() {
        return 0.0;
    }
    own.iter().filter(|u| in_passages.contains(*u)).count() as f32 / own.len() as f32
}

/// The units of `answer` that are not in `question`, its opening "according to the documents"
/// left out: small models open with it, and it says nothing the passages could hold.
pub(crate) fn own_units(answer: &str, question: &str) -> Vec<String> {
    let in_question: HashSet<String> = units(question).into_iter().collect();
    units(without_preamble(answer)).into_iter().filter(|u| !in_question.contains(u)).collect()
}

/// `answer` without an opening clause that credits the documents ("根据提供的文档，…",
/// "According to the provided documents, …").
fn without_preamble(answer: &str) -> &str {
    let trimmed = answer.trim_start();
    let Some(comma) = trimmed.find(['，', ',']) else { return trimmed };
    let opening = trimmed[..comma].to_lowercase();
    let credits_documents = ["根据", "按照", "依据", "according to", "based on"].iter().any(|p| opening.starts_with(p))
        && ["文档", "文件", "资料", "材料", "document", "passage", "source", "text"]
            .iter()
            .any(|w| opening.contains(w));
    if credits_documents { trimmed[comma..].trim_start_matches(['，', ',', ' ']) } else { trimmed }
}

/// The content units of `text`: adjacent CJK character pairs, and other words of three or more
/// letters, crudely stemmed.
pub(crate) fn units(text: &str) -> Vec<String> {
    let mut units = Vec::new();
    let mut previous_cjk: Option<char> = None;
    let mut word = String::new();
    let flush_word = |word: &mut String, units: &mut Vec<String>| {
        if word.chars().count() >= 3 {
            let stem = ["ing", "ed", "es", "s"]
                .iter()
                .find_map(|ending| word.strip_suffix(ending).filter(|stem| stem.chars().count() >= 3))
                .unwrap_or(word);
            units.push(stem.chars().take(6).collect());
        }
        word.clear();
    };
    for c in text.chars().flat_map(char::to_lowercase) {
        if is_cjk(c) {
            flush_word(&mut word, &mut units);
            if let Some(p) = previous_cjk {
                units.push([p, c].iter().collect());
            }
            previous_cjk = Some(c);
        } else {
            previous_cjk = None;
            if c.is_alphanumeric() {
                word.push(c);
            } else {
                flush_word(&mut word, &mut units);
            }
        }
    }
    flush_word(&mut word, &mut units);
    units
}
