use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Metadata;

/// The document metadata field naming the groups that may read a document (a list of names,
/// or one name). It belongs to the document: a chunk's own metadata never overrides it.
pub const GROUPS_FIELD: &str = "groups";

/// A condition on a chunk, applied inside a search so that the top k are the best k chunks
/// that match (never fewer because of the filter, unless fewer match).
///
/// Fields are read from a hit's metadata ([`crate::Hit::metadata`]): the document's metadata
/// overlaid by the chunk's, plus `source`, `ordinal` and `title`. A field holding an array
/// matches when any of its elements does (`{"field": "tags", "equals": "draft"}` finds chunks
/// tagged `draft`). Numbers compare by value, so `7` equals `7.0`. A missing field matches
/// nothing.
///
/// Access to documents is a filter too: [`Filter::readable_by`] passes the chunks of documents
/// without [`GROUPS_FIELD`] and of those sharing one of the reader's groups, inside every search
/// like any other condition.
///
/// In JSON (a request body, a config file) a filter is one object, a list of filters is their
/// conjunction:
///
/// ```
/// use lore_core::{Filter, Metadata};
/// use serde_json::json;
///
/// let filter: Filter = serde_json::from_value(json!([
///     {"source_prefix": "papers/"},
///     {"field": "year", "range": {"min": 2020}},
///     {"field": "lang", "one_of": ["en", "de"]},
///     {"not": {"source": "papers/draft.pdf"}},
/// ]))?;
/// assert_eq!(
///     filter,
///     Filter::source_prefix("papers/")
///         .and(Filter::range("year", Some(2020.0), None))
///         .and(Filter::one_of("lang", [json!("en"), json!("de")]))
///         .and(!Filter::source("papers/draft.pdf")),
/// );
/// let metadata: Metadata = serde_json::from_value(json!(
///     {"source": "papers/rag.pdf", "year": 2023, "lang": "en"}
/// ))?;
/// assert!(filter.matches(&metadata));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    /// Every filter of the list holds (an empty list holds for everything).
    All(Vec<Filter>),
    /// The document's source is exactly this.
    Source {
        /// The source, as stored.
        source: String,
    },
    /// The document's source starts with this (a folder, a URL prefix).
    SourcePrefix {
        /// The start of the source.
        source_prefix: String,
    },
    /// The document may be read by a member of these groups (see [`Filter::readable_by`]).
    ReadableBy {
        /// The reader's groups.
        readable_by: Vec<String>,
    },
    /// The filter inside does not hold (`{"not": {"source": "drafts/plan.md"}}`).
    Not {
        /// The filter a chunk must fail.
        not: Box<Filter>,
    },
    /// A metadata field meets a condition.
    Field {
        /// The metadata key.
        field: String,
        /// What its value must be.
        #[serde(flatten)]
        condition: Condition,
    },
}

/// What a metadata field must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Equal to this value.
    Equals(Value),
    /// A number within the bounds, both inclusive; a missing bound is open.
    Range {
        /// The smallest value that matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// The largest value that matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Equal to one of these.
    OneOf(Vec<Value>),
}

impl Filter {
    /// Chunks of the document from `source`.
    pub fn source(source: impl Into<String>) -> Filter {
        Filter::Source { source: source.into() }
    }

    /// Chunks of documents whose source starts with `prefix`.
    pub fn source_prefix(prefix: impl Into<String>) -> Filter {
        Filter::SourcePrefix { source_prefix: prefix.into() }
    }

    /// Chunks whose `field` equals `value`.
    pub fn equals(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Field { field: field.into(), condition: Condition::Equals(value.into()) }
    }

    /// Chunks whose `field` is a number from `min` to `max` (inclusive; `None` is open).
    pub fn range(field: impl Into<String>, min: Option<f64>, max: Option<f64>) -> Filter {
        Filter::Field { field: field.into(), condition: Condition::Range { min, max } }
    }

    /// Chunks whose `field` equals one of `values`.
    pub fn one_of(field: impl Into<String>, values: impl IntoIterator<Item = Value>) -> Filter {
        Filter::Field { field: field.into(), condition: Condition::OneOf(values.into_iter().collect()) }
    }

    /// Chunks of the documents a reader in `groups` may read: those whose [`GROUPS_FIELD`] is
    /// missing or empty, and those sharing a group with `groups`. A field that is neither a
    /// group name nor a list of them passes nobody.
    pub fn readable_by(groups: impl IntoIterator<Item = impl Into<String>>) -> Filter {
        Filter::ReadableBy { readable_by: groups.into_iter().map(Into::into).collect() }
    }

    /// Both this filter and `other` hold.
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::All(mut all) => {
                all.push(other);
                Filter::All(all)
            }
            first => Filter::All(vec![first, other]),
        }
    }

    /// Whether a chunk with this (hit) metadata passes.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        match self {
            Filter::All(all) => all.iter().all(|filter| filter.matches(metadata)),
            Filter::Source { source } => metadata.get("source").and_then(Value::as_str) == Some(source),
            Filter::SourcePrefix { source_prefix } => {
                metadata.get("source").and_then(Value::as_str).is_some_and(|s| s.starts_with(source_prefix))
            }
            Filter::ReadableBy { readable_by } => match metadata.get(GROUPS_FIELD) {
                None | Some(Value::Null) => true,
                Some(Value::String(group)) => readable_by.contains(group),
                Some(Value::Array(groups)) => {
                    groups.is_empty()
                        || groups.iter().any(|g| g.as_str().is_some_and(|g| readable_by.iter().any(|r| r == g)))
                }
                Some(_) => false,
            },
            Filter::Not { not } => !not.matches(metadata),
            Filter::Field { field, condition } => metadata.get(field).is_some_and(|value| condition.holds(value)),
        }
    }

    /// The metadata fields the filter reads, `source` included, each once, in order of mention.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields = Vec::new();
        self.collect_fields(&mut fields);
        fields
    }

    fn collect_fields<'a>(&'a self, fields: &mut Vec<&'a str>) {
        let field = match self {
            Filter::All(all) => {
                all.iter().for_each(|filter| filter.collect_fields(fields));
                return;
            }
            Filter::Not { not } => return not.collect_fields(fields),
            Filter::Source { .. } | Filter::SourcePrefix { .. } => "source",
            Filter::ReadableBy { .. } => GROUPS_FIELD,
            Filter::Field { field, .. } => field,
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
}

/// `!filter` passes the chunks `filter` does not.
impl std::ops::Not for Filter {
    type Output = Filter;

    fn not(self) -> Filter {
        Filter::Not { not: Box::new(self) }
    }
}

impl Condition {
    /// Whether a field's value satisfies the condition; an array does when an element does.
    pub fn holds(&self, value: &Value) -> bool {
        if let Value::Array(elements) = value {
            return elements.iter().any(|element| self.holds_for_one(element));
        }
        self.holds_for_one(value)
    }

    fn holds_for_one(&self, value: &Value) -> bool {
        match self {
            Condition::Equals(expected) => same_value(value, expected),
            Condition::OneOf(expected) => expected.iter().any(|e| same_value(value, e)),
            Condition::Range { min, max } => {
                value.as_f64().is_some_and(|x| min.is_none_or(|min| x >= min) && max.is_none_or(|max| x <= max))
            }
        }
    }
}

/// JSON equality, except that numbers compare by value (serde_json tells `7` from `7.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
