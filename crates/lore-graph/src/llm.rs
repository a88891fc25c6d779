//! Entities and relations read by a chat model, its reply held to JSON.

use lore_core::{ChatModel, GenerationOptions, Language, Message, Metadata, ReplyFormat, Result, detect_language};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extract::{entity_key, key_words};

/// The chunk metadata field holding the names of the entities a model found in the chunk (an
/// array of strings); with the `llm` extractor the graph links the chunk to these as well as
/// to the names found without a model.
pub const ENTITIES_FIELD: &str = "entities";

/// The chunk metadata field holding the relations a model found in the chunk, as
/// `[subject, relation, object]` arrays.
pub const RELATIONS_FIELD: &str = "relations";

/// The most entities and relations kept from one chunk: a model that starts repeating itself
/// is cut off.
const MAX_ITEMS: usize = 24;

/// The most characters of a chunk the model reads: about 1,500 tokens.
const MAX_PASSAGE_CHARS: usize = 6000;

/// The longest reply asked for: about 24 names and 12 relations.
const MAX_REPLY_TOKENS: usize = 320;

const SYSTEM_EN: &str = "You extract a knowledge graph from a passage. Reply with one JSON object: \
{\"entities\": [...], \"relations\": [[subject, relation, object], ...]}. Entities are the named things \
the passage mentions (people, places, organisations, works, events, products, named concepts), each \
written once, as the passage writes it. A relation links two of those entities with a short verb \
phrase, as the passage states it. Nothing that is not in the passage.";

const SYSTEM_ZH: &str = "你从一段文字中抽取知识图谱。只回复一个 JSON 对象：\
{\"entities\": [...], \"relations\": [[主体, 关系, 客体], ...]}。entities 是这段文字提到的有名称的事物\
（人物、地点、机构、作品、事件、产品、专有概念），每个只写一次，写法与原文相同。relations 用简短的动词短语\
连接其中两个实体，须为原文所述。不要写原文中没有的内容。";

/// What a model found in one chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    /// Names of the entities the chunk mentions, as it writes them; only names that occur in
    /// the chunk (or its title) are kept.
    pub entities: Vec<String>,
    /// `[subject, relation, object]`, subject and object among `entities`.
    pub relations: Vec<[String; 3]>,
}

impl Extraction {
    /// Records the extraction in a chunk's metadata ([`ENTITIES_FIELD`], [`RELATIONS_FIELD`]),
    /// where the collection's graph reads it.
    pub fn write_to(&self, metadata: &mut Metadata) {
        metadata.insert(ENTITIES_FIELD.into(), Value::from(self.entities.clone()));
        let relations = self.relations.iter().map(|r| Value::from(r.to_vec())).collect::<Vec<_>>();
        metadata.insert(RELATIONS_FIELD.into(), Value::Array(relations));
    }

    /// Whether a chunk's metadata holds an extraction already.
    pub fn is_in(metadata: &Metadata) -> bool {
        metadata.get(ENTITIES_FIELD).is_some_and(Value::is_array)
    }
}

/// Asks `chat` for the entities and relations of a chunk (`text`, of a document titled
/// `title`), in the chunk's language, greedily, the reply held to one JSON object. Names the
/// passage does not contain are dropped, and so are relations between names not kept; a reply
/// cut off by its length keeps what it listed before the cut.
pub fn extract_with_model(chat: &dyn ChatModel, title: Option<&str>, text: &str) -> Result<Extraction> {
    let system = match detect_language(text) {
        Language::Chinese => SYSTEM_ZH,
        Language::English => SYSTEM_EN,
    };
    // A whole document as one chunk must still fit a small model's context.
    let text = match text.char_indices().nth(MAX_PASSAGE_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let passage = match title {
        Some(title) => format!("Title: {title}\n\n{text}"),
        None => text.to_string(),
    };
    let options =
        GenerationOptions { max_tokens: MAX_REPLY_TOKENS, format: ReplyFormat::Json, ..GenerationOptions::default() };
    let reply = chat.chat(&[Message::system(system), Message::user(passage.clone())], &options, &mut |_| {})?;
    Ok(parse_reply(&reply.text, &passage))
}

/// The extraction a model's reply states, checked against the passage it read.
fn parse_reply(reply: &str, passage: &str) -> Extraction {
    // A remote model not held to JSON may wrap the object in prose or a code fence.
    let object = reply.find('{').map_or("", |start| &reply[start..]);
    let value: Value = serde_json::Deserializer::from_str(object)
        .into_iter::<Value>()
        .next()
        .and_then(std::result::Result::ok)
        .unwrap_or_else(|| close(object));
    let spaced = |text: &str| format!(" {} ", text.split_whitespace().collect::<Vec<_>>().join(" "));
    let written = spaced(passage);
    let words = format!(" {} ", key_words(passage).join(" "));
    // A name must be in the passage as the passage writes it, and, in a script with capitals,
    // hold one (`Ada Lovelace`, `iPhone`) or a digit: a small model lists common nouns too
    // ("energy", "demon"), which would link every chunk on the topic to every other.
    let is_name = |name: &str| {
        let key = entity_key(name);
        if key.is_empty() {
            return false;
        }
        if key.chars().any(lore_core::is_cjk) {
            return words.contains(&key);
        }
        let marked = name.chars().any(|c| c.is_uppercase() || c.is_ascii_digit());
        let spelled = spaced(name);
        marked && written.contains(spelled.trim()) && words.contains(&format!(" {key} "))
    };
    let relations: Vec<[&str; 3]> = value
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|relation| {
            let parts: Vec<&str> = relation.as_array()?.iter().filter_map(Value::as_str).map(str::trim).collect();
            <[&str; 3]>::try_from(parts).ok()
        })
        .collect();
    // A small model sometimes names entities only inside its relations.
    let listed = value.get("entities").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    let endpoints = relations.iter().flat_map(|[subject, _, object]| [*subject, *object]);
    let mut extraction = Extraction::default();
    let mut keys = Vec::new();
    for name in listed.map(str::trim).chain(endpoints) {
        let key = entity_key(name);
        if is_name(name) && !keys.contains(&key) && extraction.entities.len() < MAX_ITEMS {
            keys.push(key);
            extraction.entities.push(name.to_string());
        }
    }
    for [subject, predicate, object] in relations {
        let known = |name: &str| keys.contains(&entity_key(name));
        let relation = [subject.to_string(), predicate.to_string(), object.to_string()];
        if known(subject)
            && known(object)
            && entity_key(subject) != entity_key(object)
            && !predicate.is_empty()
            && !extraction.relations.contains(&relation)
            && extraction.relations.len() < MAX_ITEMS
        {
            extraction.relations.push(relation);
        }
    }
    extraction
}

/// The value of a JSON reply cut off by its length: cut back to the last complete item and
/// closed, or `null` when nothing complete was written.
fn close(reply: &str) -> Value {
    // Positions after which the text is a complete item of an open container, with the
    // brackets open there.
    let (mut open, mut in_string, mut escaped) = (Vec::new(), false, false);
    let mut best: Option<(usize, Vec<char>)> = None;
    for (i, c) in reply.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    // A string closing inside an array is a complete item; inside an object it
                    // may be a key still waiting for its value.
                    if open.last() == Some(&'[') {
                        best = Some((i + 1, open.clone()));
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => open.push(c),
            '}' | ']' => {
                open.pop();
                best = Some((i + 1, open.clone()));
            }
            _ => {}
        }
    }
    let Some((end, open)) = best else { return Value::Null };
    let closing: String = open.iter().rev().map(|&c| if c == '{' { '}' } else { ']' }).collect();
    serde_json::from_str(&format!("{}{closing}", &reply[..end])).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSAGE: &str =
        "Title: Kiss and Tell\n\nKiss and Tell is a 1945 film starring Shirley Temple as Corliss Archer.";

    #[test]
    fn names_not_in_the_passage_common_nouns_and_their_relations_are_dropped() {
        let reply = r#"{"entities": ["Shirley Temple", "Corliss Archer", "Kiss and Tell", "Hollywood", "shirley temple", "film"],
            "relations": [["Shirley Temple", "played", "Corliss Archer"], ["Shirley Temple", "lived in", "Hollywood"],
                ["Kiss and Tell", "", "Shirley Temple"], ["Kiss and Tell", "is", "Kiss and Tell"]]}"#;
        let extraction = parse_reply(reply, PASSAGE);
        assert_eq!(extraction.entities, ["Shirley Temple", "Corliss Archer", "Kiss and Tell"]);
        assert_eq!(extraction.relations, [["Shirley Temple".to_string(), "played".into(), "Corliss Archer".into()]]);
    }

    #[test]
    fn names_found_only_in_relations_are_entities() {
        let reply = r#"{"entities": [], "relations": [["Shirley Temple", "played", "Corliss Archer"], ["Kiss and Tell", "is", "1945 comedy film"]]}"#;
        let extraction = parse_reply(reply, PASSAGE);
        assert_eq!(extraction.entities, ["Shirley Temple", "Corliss Archer", "Kiss and Tell"]);
        assert_eq!(extraction.relations.len(), 1);
    }

    #[test]
    fn names_must_be_spelled_as_the_passage_does_and_prose_around_the_object_is_ignored() {
        let reply = "Here it is:\n```json\n{\"entities\": [\"Shirley Temple\", \"Film\", \"kiss And Tell\"]}\n```";
        assert_eq!(parse_reply(reply, PASSAGE).entities, ["Shirley Temple"]);
    }

    #[test]
    fn a_reply_cut_off_keeps_its_complete_items() {
        let cut = r#"{"entities": ["Shirley Temple", "Corliss Archer", "Kiss an"#;
        assert_eq!(parse_reply(cut, PASSAGE).entities, ["Shirley Temple", "Corliss Archer"]);
        let cut = r#"{"entities": ["Shirley Temple"], "relations": [["Shirley Temple", "played", "Corl"#;
        let extraction = parse_reply(cut, PASSAGE);
        assert_eq!(extraction.entities, ["Shirley Temple"]);
        assert!(extraction.relations.is_empty());
        assert_eq!(parse_reply(r#"{"entit"#, PASSAGE), Extraction::default());
    }

    #[test]
    fn an_extraction_round_trips_through_chunk_metadata() {
        let extraction = parse_reply(r#"{"entities": ["Shirley Temple"], "relations": []}"#, PASSAGE);
        let mut metadata = Metadata::new();
        assert!(!Extraction::is_in(&metadata));
        extraction.write_to(&mut metadata);
        assert!(Extraction::is_in(&metadata));
        assert_eq!(metadata[ENTITIES_FIELD], serde_json::json!(["Shirley Temple"]));
    }
}
