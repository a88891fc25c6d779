//! The filter language of the command line and of query strings: `FIELD=VALUE`,
//! `FIELD>=NUMBER`, `FIELD<=NUMBER`, `FIELD in A,B,C`, plus documents by source or prefix.

use lore_core::{Error, Filter, Result};
use serde_json::Value;

/// What a search is restricted to, as a user writes it. Everything given must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterSpec {
    /// Conditions on metadata fields, each as [`parse_condition`] reads it.
    pub conditions: Vec<String>,
    /// Only chunks of these documents (sources as ingested).
    pub documents: Vec<String>,
    /// Only chunks of documents whose source starts with this.
    pub source_prefix: Option<String>,
}

impl FilterSpec {
    /// The conjunction of everything given, or `None` when nothing is.
    ///
    /// ```
    /// use lore_engine::FilterSpec;
    /// use lore_core::Metadata;
    /// use serde_json::json;
    ///
    /// let spec = FilterSpec { conditions: vec!["year>=2020".into(), "lang in en,de".into()], ..Default::default() };
    /// let filter = spec.to_filter()?.unwrap();
    /// let metadata: Metadata = serde_json::from_value(json!({"year": 2023, "lang": "de"}))?;
    /// assert!(filter.matches(&metadata));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_filter(&self) -> Result<Option<Filter>> {
        let mut all: Vec<Filter> = self.conditions.iter().map(|c| parse_condition(c)).collect::<Result<_>>()?;
        match self.documents.as_slice() {
            [] => {}
            [one] => all.push(Filter::source(one.clone())),
            many => all.push(Filter::one_of("source", many.iter().map(|s| Value::String(s.clone())))),
        }
        if let Some(prefix) = &self.source_prefix {
            all.push(Filter::source_prefix(prefix.clone()));
        }
        Ok(match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(Filter::All(all)),
        })
    }
}

/// One condition: `FIELD in A,B`, `FIELD>=X`, `FIELD<=X` or `FIELD=VALUE`. A value that reads
/// as a number or a boolean matches that value and the same text (`year=2023` finds 2023 and
/// "2023").
pub fn parse_condition(text: &str) -> Result<Filter> {
    let usage = || {
        format!(
            "--where {text:?}: write FIELD=VALUE, FIELD>=NUMBER, FIELD<=NUMBER or \"FIELD in A,B\" (e.g. year>=2020)"
        )
    };
    let field_of = |field: &str| {
        let field = field.trim();
        if field.is_empty() || field.contains(char::is_whitespace) {
            Err(Error::InvalidInput(usage()))
        } else {
            Ok(field.to_string())
        }
    };
    if let Some((field, values)) = text.split_once(" in ") {
        return Ok(Filter::one_of(field_of(field)?, values.split(',').flat_map(|v| value_forms(v.trim()))));
    }
    for (operator, is_min) in [(">=", true), ("<=", false)] {
        if let Some((field, number)) = text.split_once(operator) {
            let number: f64 = number
                .trim()
                .parse()
                .map_err(|_| Error::InvalidInput(format!("{}: {number:?} is not a number", usage())))?;
            let (min, max) = if is_min { (Some(number), None) } else { (None, Some(number)) };
            return Ok(Filter::range(field_of(field)?, min, max));
        }
    }
    match text.split_once('=') {
        Some((field, value)) => Ok(Filter::one_of(field_of(field)?, value_forms(value.trim()))),
        None => Err(Error::InvalidInput(usage())),
    }
}

/// What a typed value may stand for in metadata: `2023` is the number and the text, `true` the
/// boolean and the text, anything else text.
fn value_forms(text: &str) -> Vec<Value> {
    let text_form = Value::String(text.to_string());
    match serde_json::from_str::<Value>(text) {
        Ok(typed @ (Value::Number(_) | Value::Bool(_))) => vec![typed, text_form],
        _ => vec![text_form],
    }
}
