//! Filters compiled to SQL over `c` (chunks) and `d` (documents), with the semantics of
//! [`Filter::matches`] on a hit's metadata: the chunk's fields over the document's (never its
//! groups), `source`, `title` and `ordinal` from their columns, arrays matching by any element,
//! numbers by value.

use lore_core::{Condition, Filter, GROUPS_FIELD};
use postgres::types::ToSql;
use serde_json::Value;

/// Parameters collected while compiling, numbered after the query's own.
pub(crate) struct Sql {
    first: usize,
    params: Vec<Box<dyn ToSql + Sync>>,
}

impl Sql {
    /// Parameters from `$(first + 1)` on.
    pub fn new(first: usize) -> Sql {
        Sql { first, params: Vec::new() }
    }

    fn bind(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.first + self.params.len())
    }

    /// The parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = &(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref())
    }
}

/// The SQL condition for `filter`.
pub(crate) fn compile(filter: &Filter, sql: &mut Sql) -> String {
    match filter {
        Filter::All(all) if all.is_empty() => "TRUE".into(),
        Filter::All(all) => {
            let parts: Vec<String> = all.iter().map(|f| compile(f, sql)).collect();
            format!("({})", parts.join(" AND "))
        }
        // NULL counts as not passing, as in Filter::matches, so its complement passes.
        Filter::Not { not } => format!("NOT coalesce(({}), FALSE)", compile(not, sql)),
        Filter::Source { source } => format!("d.source = {}", sql.bind(source.clone())),
        Filter::SourcePrefix { source_prefix } => format!("starts_with(d.source, {})", sql.bind(source_prefix.clone())),
        Filter::ReadableBy { readable_by } => {
            let groups = sql.bind(readable_by.clone());
            let g = format!("d.metadata->'{GROUPS_FIELD}'");
            format!(
                "({g} IS NULL OR {g} = 'null'::jsonb OR {g} = '[]'::jsonb
                  OR (jsonb_typeof({g}) = 'string' AND {g} #>> '{{}}' = ANY({groups}::text[]))
                  OR (jsonb_typeof({g}) = 'array' AND EXISTS (
                      SELECT 1 FROM jsonb_array_elements_text({g}) AS member WHERE member = ANY({groups}::text[]))))"
            )
        }
        Filter::Field { field, condition } => {
            let value = field_value(field, sql);
            let test = match condition {
                Condition::Equals(expected) => format!("element = {}::jsonb", sql.bind(expected.clone())),
                Condition::OneOf(expected) => {
                    format!(
                        "element IN (SELECT jsonb_array_elements({}::jsonb))",
                        sql.bind(Value::Array(expected.clone()))
                    )
                }
                Condition::Range { min, max } => {
                    let mut test = "jsonb_typeof(element) = 'number'".to_string();
                    if let Some(min) = min {
                        test += &format!(" AND (element)::float8 >= {}", sql.bind(*min));
                    }
                    if let Some(max) = max {
                        test += &format!(" AND (element)::float8 <= {}", sql.bind(*max));
                    }
                    test
                }
            };
            // A missing field matches nothing; an array matches when an element does.
            format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof({value}) WHEN 'array' THEN {value}
                  ELSE jsonb_build_array({value}) END) AS element WHERE {value} IS NOT NULL AND {test})"
            )
        }
    }
}

/// The JSON value of `field` in a hit's metadata.
fn field_value(field: &str, sql: &mut Sql) -> String {
    match field {
        "source" => "to_jsonb(d.source)".into(),
        "ordinal" => "to_jsonb(c.ordinal)".into(),
        GROUPS_FIELD => format!("(d.metadata->'{GROUPS_FIELD}')"),
        "title" => "coalesce(to_jsonb(d.title), c.metadata->'title', d.metadata->'title')".into(),
        _ => {
            let key = sql.bind(field.to_string());
            format!("coalesce(c.metadata->{key}::text, d.metadata->{key}::text)")
        }
    }
}
