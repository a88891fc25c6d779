//! Reading what small chat models actually write: JSON with fences, prose around it, trailing
//! commas, single or typographic quotes, full-width punctuation; lists with bullets and numbers;
//! yes/no verdicts buried in a sentence.

use serde_json::{Map, Number, Value};

/// Every JSON-like object in `text`, outermost first, in order of appearance. Text that is not
/// an object is skipped.
pub(crate) fn objects(text: &str) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(offset) = chars[start..].iter().position(|c| matches!(c, '{' | '｛')) {
        let mut reader = Reader { chars: &chars, pos: start + offset, depth: 0 };
        match reader.object() {
            Some(value) => {
                found.push(value);
                start = reader.pos;
            }
            None => start += offset + 1,
        }
    }
    found
}

/// A JSON array of strings in `text`, if there is one.
fn string_array(text: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let open = chars.iter().position(|c| *c == '[')?;
    let mut reader = Reader { chars: &chars, pos: open, depth: 0 };
    match reader.value()? {
        Value::Array(items) if !items.is_empty() => {
            items.into_iter().map(|v| if let Value::String(s) = v { Some(s) } else { None }).collect()
        }
        _ => None,
    }
}

/// A forgiving recursive-descent JSON reader over characters.
struct Reader<'a> {
    chars: &'a [char],
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 32;

fn closing_quote(open: char) -> Option<char> {
    match open {
        '"' => Some('"'),
        '\'' => Some('\''),
        '“' => Some('”'),
        '‘' => Some('’'),
        '「' => Some('」'),
        _ => None,
    }
}

fn is_delimiter(c: char) -> bool {
    matches!(c, ',' | '，' | '}' | '｝' | ']' | ':' | '：')
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn skip_space_and_commas(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace() || c == ',' || c == '，') {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_space();
        let c = self.peek()?;
        match c {
            '{' | '｛' => self.object(),
            '[' => self.array(),
            _ if closing_quote(c).is_some() => self.string().map(Value::String),
            _ => self.bare(),
        }
    }

    fn nested(&mut self, read: impl FnOnce(&mut Self) -> Option<Value>) -> Option<Value> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn object(&mut self) -> Option<Value> {
        self.pos += 1;
        self.nested(|r| {
            let mut map = Map::new();
            loop {
                r.skip_space_and_commas();
                match r.peek()? {
                    '}' | '｝' => {
                        r.pos += 1;
                        return Some(Value::Object(map));
                    }
                    c if closing_quote(c).is_some() => {
                        let key = r.string()?;
                        r.skip_space();
                        r.pos += usize::from(matches!(r.peek()?, ':' | '：' | '='));
                        let value = r.value()?;
                        map.insert(key, value);
                    }
                    _ => {
                        let key = r.bare_key()?;
                        let value = r.value()?;
                        map.insert(key, value);
                    }
                }
            }
        })
    }

    fn array(&mut self) -> Option<Value> {
        self.pos += 1;
        self.nested(|r| {
            let mut items = Vec::new();
            loop {
                r.skip_space_and_commas();
                if r.peek()? == ']' {
                    r.pos += 1;
                    return Some(Value::Array(items));
                }
                items.push(r.value()?);
            }
        })
    }

    /// A quoted string. A quote character closes it only when a delimiter, a line end or the end
    /// of the text follows, so quotes and apostrophes inside model prose survive.
    fn string(&mut self) -> Option<String> {
        let close = closing_quote(self.peek()?)?;
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '\\' {
                let escaped = self.peek()?;
                self.pos += 1;
                match escaped {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => {}
                    'u' => {
                        let hex: String = self.chars.get(self.pos..self.pos + 4)?.iter().collect();
                        self.pos += 4;
                        out.push(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}'));
                    }
                    other => out.push(other),
                }
            } else if c == close && self.closes_here() {
                return Some(out);
            } else {
                out.push(c);
            }
        }
        None
    }

    fn closes_here(&self) -> bool {
        let rest = self.chars[self.pos..].iter().find(|c| **c != ' ' && **c != '\t');
        rest.is_none_or(|&c| c == '\n' || c == '\r' || is_delimiter(c))
    }

    /// An unquoted key, up to its colon.
    fn bare_key(&mut self) -> Option<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                ':' | '：' | '=' => {
                    let key: String = self.chars[start..self.pos].iter().collect();
                    self.pos += 1;
                    let key = key.trim().trim_matches('*').trim();
                    return (!key.is_empty()).then(|| key.to_string());
                }
                '\n' | '{' | '}' | '｛' | '｝' | '[' | ']' | ',' | '，' => return None,
                _ => self.pos += 1,
            }
        }
        None
    }

    /// An unquoted value up to the next delimiter: a number, a literal, or text kept as a string
    /// (such as `4/5`).
    fn bare(&mut self) -> Option<Value> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !matches!(c, ',' | '，' | '}' | '｝' | ']' | '\n')) {
            self.pos += 1;
        }
        let raw: String = self.chars[start..self.pos].iter().collect();
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        Some(match raw {
            "true" | "True" => Value::Bool(true),
            "false" | "False" => Value::Bool(false),
            "null" | "None" => Value::Null,
            _ => match raw.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Value::Number(n),
                None => Value::String(raw.to_string()),
            },
        })
    }
}

/// Every (key, value) pair in `value`, depth first, keys of nested objects included.
pub(crate) fn entries(value: &Value) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, inner) in map {
                    out.push((k.as_str(), inner));
                }
                stack.extend(map.values().rev());
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    out
}

/// The number a JSON value stands for: a number, a string that starts with one (`"4/5"`,
/// `"4分"`), or an object holding one (`{"score": 4}`).
pub(crate) fn number_in(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => leading_number(s.trim()),
        Value::Object(map) => map.values().find_map(|v| if v.is_object() { None } else { number_in(v) }),
        _ => None,
    }
}

/// The number `text` starts with, if any.
fn leading_number(text: &str) -> Option<f64> {
    split_number(text).0.parse().ok()
}

/// `"4.5/5 rest"` → `("4.5", "/5 rest")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    (number.trim_end_matches('.'), rest)
}

/// The score written after one of `labels` in prose (`Correctness: 4/5`, `**正确性**：4分`):
/// the first number on the rest of the label's line or, when that line has none, on the next
/// non-empty line. A range such as `1-5` is the scale, not a score, and is skipped.
pub(crate) fn labelled_number(text: &str, labels: &[&str]) -> Option<f64> {
    let lower = text.to_lowercase();
    labels.iter().find_map(|label| {
        lower.match_indices(label).find_map(|(at, _)| {
            let rest = &lower[at + label.len()..];
            let mut lines = rest.lines();
            let first = lines.next().unwrap_or_default();
            number_after_separator(first)
                .or_else(|| lines.find(|l| !l.trim().is_empty()).and_then(number_after_separator))
        })
    })
}

fn number_after_separator(line: &str) -> Option<f64> {
    let from = line.char_indices().find(|(_, c)| matches!(c, ':' | '：' | '=')).map_or(0, |(i, c)| i + c.len_utf8());
    let mut rest = &line[from..];
    loop {
        let start = rest.find(|c: char| c.is_ascii_digit())?;
        let (number, after) = split_number(&rest[start..]);
        match past_range_end(after) {
            Some(past) => rest = past,
            None => return number.parse().ok(),
        }
    }
}

/// When `after_number` continues a range (`-5`, ` to 5`, `～5`), the text after the range.
fn past_range_end(after_number: &str) -> Option<&str> {
    let text = after_number.trim_start();
    ["-", "–", "~", "～", "到", "to"].iter().find_map(|marker| {
        let end = text.strip_prefix(marker)?.trim_start();
        end.starts_with(|c: char| c.is_ascii_digit()).then(|| split_number(end).1)
    })
}

/// The items of a list the model was asked to write one per line: bullets, numbers and labels
/// such as `1.`, `(2)`, `- `, `Claim 3:`, `问题1：` removed; code fences, empty lines and header
/// lines ending in a colon dropped. A JSON array of strings is taken as is.
pub(crate) fn list_items(text: &str) -> Vec<String> {
    if let Some(items) = string_array(text) {
        return items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("```") && !l.ends_with(':') && !l.ends_with('：'))
        .map(strip_list_marker)
        .map(|l| unwrap(unwrap(unwrap(l, "**", "**"), "\"", "\""), "“", "”").trim().to_string())
        .filter(|l| l.chars().any(char::is_alphanumeric))
        .collect()
}

/// `text` without `open` and `close` when it is wrapped in them.
fn unwrap<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let inner = text.strip_prefix(open).and_then(|t| t.strip_suffix(close));
    inner.filter(|t| !t.is_empty()).unwrap_or(text)
}

fn strip_list_marker(line: &str) -> &str {
    let line = line.trim_start_matches(['-', '*', '•', '·', '+']).trim_start();
    // A short label ending in a number before a colon: "Claim 2:", "问题1：", "Q3:".
    if let Some(colon) = line.find([':', '：']) {
        let label = line[..colon].trim();
        let name = label.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end();
        if name.len() < label.len() && !name.contains(|c: char| c.is_ascii_digit()) && name.chars().count() <= 10 {
            return line[colon..].trim_start_matches([':', '：']).trim_start();
        }
    }
    let unbracketed = line.trim_start_matches(['(', '（', '[', '【']);
    let digits = unbracketed.find(|c: char| !c.is_ascii_digit()).unwrap_or(unbracketed.len());
    if digits > 0 {
        let mut after = unbracketed[digits..].chars();
        let marker = after.next().filter(|c| matches!(c, '.' | ')' | '）' | ']' | '】' | '、'));
        // "1.5 million" is a number, not an item number.
        if marker.is_some() && !after.as_str().starts_with(|c: char| c.is_ascii_digit()) {
            return after.as_str().trim_start();
        }
    }
    line
}

/// A yes/no verdict: read at the start of the reply (after any label such as `Answer:` or
/// `判断：`), else from the verdict words in the whole reply when they all agree.
pub(crate) fn verdict(text: &str) -> Result<bool, String> {
    let lower = text.trim().to_lowercase();
    let skip_marks = |s: &str| s.trim_start_matches(|c: char| !c.is_alphanumeric()).to_string();
    let opening = skip_marks(&lower);
    let after_label = opening
        .char_indices()
        .find(|(_, c)| matches!(c, ':' | '：'))
        .filter(|(i, _)| opening[..*i].chars().count() <= 12)
        .map(|(i, c)| skip_marks(&opening[i + c.len_utf8()..]));
    if let Some(v) = verdict_word_at_start(&opening).or_else(|| after_label.as_deref().and_then(verdict_word_at_start))
    {
        return Ok(v);
    }
    match verdict_words(&lower) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        (true, true) => Err("the reply says both yes and no".into()),
        (false, false) => Err("the reply has no yes/no verdict".into()),
    }
}

fn verdict_word_at_start(text: &str) -> Option<bool> {
    let word_end = text.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(text.len());
    match &text[..word_end] {
        "yes" | "supported" | "true" | "attributed" | "useful" | "relevant" => return Some(true),
        "no" | "not" | "unsupported" | "false" | "none" => return Some(false),
        _ => {}
    }
    // "是否支持：否" opens with the question, not the answer.
    if text.starts_with("是否") {
        return None;
    }
    const NO: [&str; 5] = ["不", "否", "没有", "无法", "未"];
    const YES: [&str; 6] = ["是", "支持", "能", "可以", "有", "对"];
    if NO.iter().any(|w| text.starts_with(w)) {
        Some(false)
    } else if YES.iter().any(|w| text.starts_with(w)) {
        Some(true)
    } else {
        None
    }
}

/// Whether `text` holds words of agreement and of refusal: English whole words, and Chinese
/// verdict phrases, the negated ones masked before the plain ones are looked for.
fn verdict_words(text: &str) -> (bool, bool) {
    let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).collect();
    let (mut yes, mut no) = (false, false);
    for (i, word) in words.iter().enumerate() {
        match *word {
            "yes" => yes = true,
            "no" | "unsupported" => no = true,
            "supported" if i > 0 && words[i - 1] == "not" => no = true,
            "supported" => yes = true,
            _ => {}
        }
    }
    let mut chinese = text.to_string();
    for negated in ["不支持", "无法支持", "无法", "不可以", "不能", "不是", "没有"] {
        if chinese.contains(negated) {
            no = true;
            chinese = chinese.replace(negated, "");
        }
    }
    no |= chinese.contains('否');
    yes |= ["支持", "是的", "可以"].iter().any(|w| chinese.contains(w));
    (yes, no)
}
