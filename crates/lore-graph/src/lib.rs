//! Lore's knowledge graph: the entities a collection's chunks name, and retrieval along them.
//!
//! A collection that keeps a graph ([`lore_core::GraphSettings`]) finds the entities of every
//! chunk it stores ([`document_entities`]: [`extract_names`] without a model, or what a chat
//! model read with [`extract_with_model`], its reply held to JSON) and links each chunk to the
//! entities it names, and to the entity its document is about (its title). [`GraphRetriever`] walks those links from the entities a
//! question names, two hops out, so that the passage about the entity a first passage names
//! (the bridge of a multi-hop question) is found though it shares no words with the question.
//!
//! ```
//! use lore_graph::{entity_key, extract_names, query_keys};
//!
//! let names = extract_names(
//!     Some("Kiss and Tell (1945 film)"),
//!     "Kiss and Tell is a 1945 American comedy film starring then 17-year-old Shirley Temple as Corliss Archer.",
//! );
//! let keys: Vec<&str> = names.iter().map(|n| n.key.as_str()).collect();
//! assert_eq!(keys, ["kiss and tell", "kiss", "tell", "american", "shirley temple", "corliss archer"]);
//! assert!(names[0].about && !names[4].about);
//!
//! // A question is linked to the graph by the keys of its capitalised phrases.
//! let keys = query_keys("What government position was held by the woman who portrayed Corliss Archer?");
//! assert!(keys.contains(&entity_key("Corliss Archer")));
//! assert!(!keys.contains(&"government".to_string()));
//! ```

#![warn(missing_docs)]

mod extract;
mod llm;
mod retriever;

pub use extract::{MAX_NAME_WORDS, Named, document_entities, entity_key, extract_names, key_within, query_keys};
pub use llm::{ENTITIES_FIELD, Extraction, RELATIONS_FIELD, extract_with_model};
pub use retriever::{GraphRetriever, PATH_FIELD};
