//! How much of an answer is taken from its passages: a check that needs no model.

use std::collections::HashSet;

use lore_core::{Hit, is_cjk};

/// The share of the answer's content units that occur in `passages`, counting only units that
/// are not in the question (restating the question proves nothing). Units are pairs of adjacent
/// CJK characters, numbers, and, for other scripts, words of three or more letters, stemmed
/// crudely (an ending -ing, -ed, -es or -s dropped, then cut to six letters: "trained" and
/// "training" meet). Citation marks are ignored. An answer with no unit of its own (nothing but
/// a citation, or the question repeated) has support 0.
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

/// The units of `answer` that are not in `question`, its citation marks and its opening
/// "according to the documents" left out: small models open with it, and it says nothing the
/// passages could hold.
pub(crate) fn own_units(answer: &str, question: &str) -> Vec<String> {
    let in_question: HashSet<String> = units(question).into_iter().collect();
    units(without_preamble(&without_citations(answer))).into_iter().filter(|u| !in_question.contains(u)).collect()
}

/// `answer` without an opening clause that credits the documents ("根据提供的文档，…",
/// "According to the provided documents, …", "The reference document states that …").
fn without_preamble(answer: &str) -> &str {
    let trimmed = answer.trim_start();
    let comma = trimmed.find(['，', ',']);
    let that = trimmed.find(" that ");
    // The clause ends at the first comma, or at "that" when it comes first; what follows it is
    // the answer.
    let (end, rest) = match (comma, that) {
        (Some(c), Some(t)) if t < c => (t, t + " that ".len()),
        (Some(c), _) => (c, c),
        (None, Some(t)) => (t, t + " that ".len()),
        (None, None) => return trimmed,
    };
    let opening = trimmed[..end].to_lowercase();
    let credits = ["根据", "按照", "依据", "according to", "based on"].iter().any(|p| opening.starts_with(p))
        || ["指出", "提到", "显示", "表明", "state", "say", "show", "indicate", "mention", "suggest"]
            .iter()
            .any(|verb| opening.contains(verb));
    let names_documents =
        ["文档", "文件", "资料", "材料", "document", "passage", "source", "text"].iter().any(|w| opening.contains(w));
    if credits && names_documents { trimmed[rest..].trim_start_matches(['，', ',', ' ']) } else { trimmed }
}

/// The content units of `text`: adjacent CJK character pairs, numbers, and other words of three
/// or more letters, crudely stemmed.
pub(crate) fn units(text: &str) -> Vec<String> {
    let mut units = Vec::new();
    let mut previous_cjk: Option<char> = None;
    let mut word = String::new();
    let flush_word = |word: &mut String, units: &mut Vec<String>| {
        // A number is the whole of many answers ("5 条"), however short.
        if word.chars().count() >= 3 || !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
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

/// How many consecutive sentences of a passage hold a claim together, for verification, and
/// make up the window the second look reads and the quote shows: an answer is seldom spread
/// wider, and a longer window would hold a question's words by chance.
pub(crate) const WINDOW: usize = 3;

/// A text cut into sentences ([`sentences_of`]), each with its content units ([`units`]): what
/// the gate, the second look and verification compare a question or a claim with.
pub(crate) struct Sentences {
    pub texts: Vec<String>,
    units: Vec<HashSet<String>>,
}

impl Sentences {
    /// `text`'s sentences, each keeping the units `keep` accepts.
    pub fn of(text: &str, keep: impl Fn(&String) -> bool) -> Sentences {
        let texts = sentences_of(text);
        let units = texts.iter().map(|sentence| units(sentence).into_iter().filter(|u| keep(u)).collect()).collect();
        Sentences { texts, units }
    }

    /// The units of each run of `size` consecutive sentences, with the run's first sentence (one
    /// run of them all when there are fewer).
    pub fn windows(&self, size: usize) -> impl Iterator<Item = (usize, HashSet<&String>)> {
        let size = size.min(self.units.len()).max(1);
        self.units.windows(size).enumerate().map(|(start, run)| (start, run.iter().flatten().collect()))
    }

    /// The units of every sentence.
    pub fn all(&self) -> HashSet<&String> {
        self.units.iter().flatten().collect()
    }
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
pub(crate) fn without_citations(text: &str) -> String {
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
