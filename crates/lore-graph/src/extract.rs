//! Finding the entities a text names, without a model: capitalised phrases in alphabetic
//! scripts, jieba's proper-noun tags in Chinese.

use std::collections::HashMap;
use std::sync::LazyLock;

use jieba_rs::Jieba;
use lore_core::{GraphExtractor, Metadata, is_cjk};

use crate::ENTITIES_FIELD;

/// The most words an entity's name keeps; a longer capitalised run (a heading, a title of a
/// work) is cut there.
pub const MAX_NAME_WORDS: usize = 8;

/// The words of a query that are linked to entities (and the characters, for Chinese).
const MAX_QUERY_WORDS: usize = 64;
const MAX_QUERY_CHARS: usize = 256;

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// An entity a chunk names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The entity's key ([`entity_key`]).
    pub key: String,
    /// The chunk's document is about the entity (its title names it), rather than the chunk
    /// mentioning it.
    pub about: bool,
}

/// The entities a chunk names, each once: its document's `title` (about), then the names in
/// `text` (mentions), in order of first appearance.
pub fn extract_names(title: Option<&str>, text: &str) -> Vec<Named> {
    names_in(title, text).names
}

fn names_in(title: Option<&str>, text: &str) -> NameSet {
    let mut found = NameSet::default();
    if let Some(title) = title {
        found.add(title, true);
    }
    for name in capitalised_runs(text) {
        found.add(&name, false);
    }
    if text.chars().any(is_cjk) {
        for tag in JIEBA.tag(text, true) {
            let proper = ["nr", "ns", "nt", "nz"].iter().any(|t| tag.tag.starts_with(t));
            if proper && tag.word.chars().filter(|&c| is_cjk(c)).count() >= 2 {
                found.add(tag.word, false);
            }
        }
    }
    found
}

/// The entities each chunk of one document names, as a collection's graph links them: the
/// document's title (the entity it is about) and [`extract_names`], and with the `llm`
/// extractor also the names a model listed in the chunk's [`ENTITIES_FIELD`]. (The model's names
/// add to the others rather than replace them: alone, qwen-0.5b's found fewer of the entities
/// HotpotQA's questions walk through.) Then aliases are resolved across the document: a one-word name that is the first or
/// last word of exactly one longer name the document names (`Temple` and `Shirley Temple`)
/// links its chunk to that entity too. The short name stays linked as well: a question may
/// name the entity by it.
pub fn document_entities<'a>(
    extractor: GraphExtractor,
    title: Option<&str>,
    chunks: impl IntoIterator<Item = (&'a str, &'a Metadata)>,
) -> Vec<Vec<Named>> {
    let mut per_chunk: Vec<Vec<Named>> = chunks
        .into_iter()
        .map(|(text, metadata)| {
            let mut found = names_in(title, text);
            if extractor == GraphExtractor::Llm {
                for name in listed_names(metadata).into_iter().flatten() {
                    found.add(name, false);
                }
            }
            found.names
        })
        .collect();
    let mut longer: HashMap<&str, Vec<String>> = HashMap::new();
    for named in per_chunk.iter().flatten() {
        let words: Vec<&str> = named.key.split(' ').collect();
        if words.len() > 1 {
            for end in [words[0], words[words.len() - 1]] {
                let candidates = longer.entry(end).or_default();
                if !candidates.contains(&named.key) {
                    candidates.push(named.key.clone());
                }
            }
        }
    }
    let aliases: HashMap<String, String> = longer
        .into_iter()
        .filter(|(_, candidates)| candidates.len() == 1)
        .map(|(word, mut candidates)| (word.to_string(), candidates.remove(0)))
        .collect();
    for names in &mut per_chunk {
        let mut resolved = NameSet::default();
        for named in names.drain(..) {
            let alias_of = aliases.get(&named.key).cloned();
            resolved.add_key(named.key, named.about);
            // A chunk about `Paris` is not about `Paris Saint-Germain` because it names it.
            if let Some(full) = alias_of {
                resolved.add_key(full, false);
            }
        }
        *names = resolved.names;
    }
    per_chunk
}

/// The names a model listed for a chunk, if it did.
fn listed_names(metadata: &Metadata) -> Option<impl Iterator<Item = &str>> {
    let listed = metadata.get(ENTITIES_FIELD)?.as_array()?;
    Some(listed.iter().filter_map(serde_json::Value::as_str))
}

/// Names in order of first appearance, each key once; a key both named and about is about.
#[derive(Default)]
struct NameSet {
    names: Vec<Named>,
    seen: HashMap<String, usize>,
}

impl NameSet {
    fn add(&mut self, name: &str, about: bool) {
        self.add_key(entity_key(name), about);
    }

    fn add_key(&mut self, key: String, about: bool) {
        if key.is_empty() || is_stop_word(&key) {
            return;
        }
        match self.seen.get(&key) {
            Some(&i) => self.names[i].about |= about,
            None => {
                self.seen.insert(key.clone(), self.names.len());
                self.names.push(Named { key, about });
            }
        }
    }
}

/// The key an entity is stored and matched under, which merges the ways one name is written:
/// lower case; a bracketed disambiguation dropped (`Ed Wood (film)` is `ed wood`); possessive
/// `'s` dropped; punctuation turned into spaces (`Jean-Luc` is `jean luc`); a leading `the`
/// dropped from a longer name.
pub fn entity_key(name: &str) -> String {
    let name = match name.find(['(', '（']) {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    let mut words = key_words(name);
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    words.truncate(MAX_NAME_WORDS);
    words.join(" ")
}

/// The keys a query may name an entity by: every run of up to [`MAX_NAME_WORDS`] words of its
/// [`entity_key`] form (among its first 64 words or 256 characters) starting at a word written with a capital (any word when the query has
/// no capitals after its first word: typed in lower case), and the words jieba cuts from its
/// Chinese. Looking these up in a collection's graph links the query to its entities.
pub fn query_keys(query: &str) -> Vec<String> {
    let mut keys = Vec::new();
    // A question names its entities early; a pasted page would cost a lookup per phrase.
    let raw: Vec<&str> = query.split_whitespace().take(MAX_QUERY_WORDS).collect();
    let capitalised: Vec<bool> = raw.iter().map(|w| starts_with_capital(w)).collect();
    let anywhere = !capitalised.iter().skip(1).any(|&c| c);
    // Word positions in key form, each with whether its raw word was capitalised.
    let mut words: Vec<(String, bool)> = Vec::new();
    for (word, &capital) in raw.iter().zip(&capitalised) {
        for (i, part) in key_words(word).into_iter().enumerate() {
            words.push((part, capital && i == 0));
        }
    }
    for start in 0..words.len() {
        if !(anywhere || words[start].1) {
            continue;
        }
        let mut key = String::new();
        for (word, _) in words.iter().skip(start).take(MAX_NAME_WORDS) {
            if !key.is_empty() {
                key.push(' ');
            }
            key.push_str(word);
            if !is_stop_word(&key) {
                keys.push(key.clone());
            }
        }
    }
    if query.chars().any(is_cjk) {
        let head: String = query.chars().take(MAX_QUERY_CHARS).collect();
        for token in JIEBA.cut_for_search(&head, true) {
            let word = token.word;
            if word.chars().filter(|&c| is_cjk(c)).count() >= 2 {
                keys.push(entity_key(word));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Whether key `small` is part of key `big` (whole words; characters for Chinese).
pub fn key_within(small: &str, big: &str) -> bool {
    if small == big {
        return false;
    }
    if small.chars().all(is_cjk) {
        return big.contains(small);
    }
    format!(" {big} ").contains(&format!(" {small} "))
}

/// Lower-cased words of `text` with possessives dropped, cut at anything but letters and digits.
pub(crate) fn key_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['’', '`'], "'");
    let mut words = Vec::new();
    for token in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let token = token.strip_suffix("'s").unwrap_or(token);
        let token: String = token.chars().filter(|&c| c != '\'').collect();
        if !token.is_empty() {
            words.push(token);
        }
    }
    words
}

/// Runs of capitalised words in `text` (`Christopher Nolan`, `University of Oxford`), with
/// common sentence openers dropped from their start and lower-case joiners from their end.
fn capitalised_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    for line in text.lines() {
        let mut run: Vec<&str> = Vec::new();
        for raw in line.split_whitespace() {
            let opens = raw.starts_with(|c: char| "\"'“‘([{«".contains(c));
            let word = raw.trim_matches(|c: char| !(c.is_alphanumeric() || c == '&'));
            let closes = raw.ends_with(|c: char| !(c.is_alphanumeric()));
            if opens {
                close_run(&mut run, &mut runs);
            }
            let continues =
                !run.is_empty() && (JOINERS.contains(&word) || word.starts_with(|c: char| c.is_ascii_digit()));
            if !word.is_empty() && (starts_with_capital(word) || continues) && run.len() < MAX_NAME_WORDS {
                run.push(word);
            } else {
                close_run(&mut run, &mut runs);
            }
            if closes {
                close_run(&mut run, &mut runs);
            }
        }
        close_run(&mut run, &mut runs);
    }
    runs
}

fn close_run(run: &mut Vec<&str>, runs: &mut Vec<String>) {
    while run.last().is_some_and(|w| JOINERS.contains(w)) {
        run.pop();
    }
    while run.first().is_some_and(|w| !starts_with_capital(w) || is_stop_word(&w.to_lowercase())) {
        run.remove(0);
    }
    if !run.is_empty() {
        runs.push(run.join(" "));
    }
    run.clear();
}

fn starts_with_capital(word: &str) -> bool {
    word.trim_start_matches(|c: char| !c.is_alphanumeric()).chars().next().is_some_and(char::is_uppercase)
}

/// Lower-case words that may stand inside a name: `University of Oxford`, `Vincent van Gogh`.
const JOINERS: &[&str] =
    &["of", "the", "de", "del", "della", "di", "da", "du", "des", "la", "le", "van", "von", "der", "den", "&"];

/// Words that open sentences and questions with a capital without naming anything, sorted.
const STOP: &[&str] = &[
    "a", "about", "after", "all", "also", "although", "an", "and", "another", "any", "are", "as", "at", "because",
    "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "during", "each", "either", "for",
    "from", "had", "has", "have", "he", "her", "here", "hers", "him", "his", "how", "however", "i", "if", "in", "into",
    "is", "it", "its", "many", "may", "more", "most", "much", "my", "neither", "no", "nor", "not", "of", "on", "once",
    "one", "or", "other", "our", "she", "should", "since", "so", "some", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "though", "through", "to", "under", "unlike", "until",
    "upon", "was", "we", "were", "what", "when", "where", "whereas", "whether", "which", "while", "who", "whom",
    "whose", "why", "will", "with", "within", "without", "would", "yes", "you", "your",
];

fn is_stop_word(key: &str) -> bool {
    STOP.binary_search(&key).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_resolves_one_word_aliases_and_adds_listed_names() {
        let listed: Metadata =
            [(crate::ENTITIES_FIELD.to_string(), serde_json::json!(["Temple", "Corliss Archer"]))].into();
        let plain = Metadata::new();
        let chunks = [
            ("Shirley Temple played Corliss Archer.", &plain),
            ("After that, Temple became a diplomat in Ghana, as Paris Hilton and Paris Jackson did not.", &plain),
            ("Paris, the capital.", &plain),
            ("the model read this: Kansas.", &listed),
        ];
        let keys: Vec<Vec<String>> = document_entities(GraphExtractor::Llm, Some("Kiss and Tell"), chunks)
            .into_iter()
            .map(|names| names.into_iter().filter(|n| !n.about).map(|n| n.key).collect())
            .collect();
        // `Temple` is Shirley Temple throughout the document, and stays `temple` too.
        assert_eq!(keys[0], ["shirley temple", "corliss archer"]);
        assert_eq!(keys[1], ["temple", "shirley temple", "ghana", "paris hilton", "paris jackson"]);
        // `Paris` stays itself where two longer names share the word.
        assert_eq!(keys[2], ["paris"]);
        assert_eq!(keys[3], ["kansas", "temple", "shirley temple", "corliss archer"]);
        // Without a model the listed names are not read.
        let names = document_entities(GraphExtractor::Names, None, [chunks[3]]);
        assert_eq!(names[0].iter().map(|n| n.key.as_str()).collect::<Vec<_>>(), ["kansas"]);
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
