//! Holding a reply to one JSON object while it is generated: which bytes may come next.

/// How deep objects and arrays may nest.
const MAX_DEPTH: usize = 32;

/// How many whitespace bytes may follow each other outside strings: enough for indented
/// output, few enough that a small model cannot fill its reply with blank lines.
const MAX_BLANKS: u8 = 24;

/// A valid beginning of one JSON object (RFC 8259), fed a byte at a time.
#[derive(Clone, Debug, Default)]
pub(crate) struct JsonPrefix {
    /// The open objects (`true`) and arrays (`false`), outermost first.
    open: Vec<bool>,
    state: State,
    blanks: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Before the object: only `{`.
    #[default]
    Start,
    /// A value must come (after `:`, or `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ValueOrEnd,
    /// Just after `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// Inside a string; `key` when it is an object's key.
    Text {
        key: bool,
        escape: Escape,
    },
    /// After a key: `:`.
    Colon,
    /// After a value: `,` or the bracket that closes its container.
    AfterValue,
    Number(Number),
    /// Inside `true`, `false` or `null`: the bytes still to come.
    Literal(&'static [u8]),
    /// The object is closed; nothing may follow.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// Hex digits of `\u` still to come.
    Hex(u8),
}

/// Where a number is: its parts in RFC 8259's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Number {
    Minus,
    Zero,
    Integer,
    Point,
    Fraction,
    E,
    ExponentSign,
    Exponent,
}

impl Number {
    fn complete(self) -> bool {
        matches!(self, Number::Zero | Number::Integer | Number::Fraction | Number::Exponent)
    }

    fn next(self, byte: u8) -> Option<Number> {
        match (self, byte) {
            (Number::Minus, b'0') => Some(Number::Zero),
            (Number::Minus, b'1'..=b'9') => Some(Number::Integer),
            (Number::Integer, b'0'..=b'9') => Some(Number::Integer),
            (Number::Zero | Number::Integer, b'.') => Some(Number::Point),
            (Number::Point | Number::Fraction, b'0'..=b'9') => Some(Number::Fraction),
            (Number::Zero | Number::Integer | Number::Fraction, b'e' | b'E') => Some(Number::E),
            (Number::E, b'+' | b'-') => Some(Number::ExponentSign),
            (Number::E | Number::ExponentSign | Number::Exponent, b'0'..=b'9') => Some(Number::Exponent),
            _ => None,
        }
    }
}

impl JsonPrefix {
    /// The object has closed: the reply is complete.
    pub(crate) fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether `bytes` may follow what was fed so far; feeds them when they may.
    pub(crate) fn accepts(&mut self, bytes: &[u8]) -> bool {
        match self.after(bytes) {
            Some(next) => {
                *self = next;
                true
            }
            None => false,
        }
    }

    /// The prefix with `bytes` fed, if they may follow.
    pub(crate) fn after(&self, bytes: &[u8]) -> Option<JsonPrefix> {
        let mut next = self.clone();
        bytes.iter().all(|&byte| next.push(byte)).then_some(next)
    }

    fn push(&mut self, byte: u8) -> bool {
        if let State::Text { key, escape } = self.state {
            return self.push_text(key, escape, byte);
        }
        if let State::Number(number) = self.state {
            if let Some(next) = number.next(byte) {
                self.state = State::Number(next);
                return true;
            }
            if !number.complete() {
                return false;
            }
            self.state = State::AfterValue;
        }
        if let State::Literal(rest) = self.state {
            if rest.first() != Some(&byte) {
                return false;
            }
            self.state = if rest.len() == 1 { State::AfterValue } else { State::Literal(&rest[1..]) };
            return true;
        }
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            if self.state == State::Done || self.blanks == MAX_BLANKS {
                return false;
            }
            self.blanks += 1;
            return true;
        }
        self.blanks = 0;
        match (self.state, byte) {
            (State::Start, b'{') => self.open(true),
            (State::Value | State::ValueOrEnd, _) => self.value(byte),
            (State::KeyOrEnd, b'}') => self.close(),
            (State::KeyOrEnd | State::Key, b'"') => {
                self.state = State::Text { key: true, escape: Escape::None };
                true
            }
            (State::Colon, b':') => {
                self.state = State::Value;
                true
            }
            (State::AfterValue, b',') => {
                self.state = if self.open.last() == Some(&true) { State::Key } else { State::Value };
                true
            }
            (State::AfterValue, b'}') if self.open.last() == Some(&true) => self.close(),
            (State::AfterValue, b']') if self.open.last() == Some(&false) => self.close(),
            _ => false,
        }
    }

    /// The first byte of a value (or `]` right after `[`).
    fn value(&mut self, byte: u8) -> bool {
        self.state = match byte {
            b'{' => return self.open(true),
            b'[' => return self.open(false),
            b']' if self.state == State::ValueOrEnd => return self.close(),
            b'"' => State::Text { key: false, escape: Escape::None },
            b'-' => State::Number(Number::Minus),
            b'0' => State::Number(Number::Zero),
            b'1'..=b'9' => State::Number(Number::Integer),
            b't' => State::Literal(b"rue"),
            b'f' => State::Literal(b"alse"),
            b'n' => State::Literal(b"ull"),
            _ => return false,
        };
        true
    }

    fn open(&mut self, object: bool) -> bool {
        if self.open.len() == MAX_DEPTH {
            return false;
        }
        self.open.push(object);
        self.state = if object { State::KeyOrEnd } else { State::ValueOrEnd };
        true
    }

    fn close(&mut self) -> bool {
        self.open.pop();
        self.state = if self.open.is_empty() { State::Done } else { State::AfterValue };
        true
    }

    fn push_text(&mut self, key: bool, escape: Escape, byte: u8) -> bool {
        let escape = match (escape, byte) {
            (Escape::None, b'"') => {
                self.state = if key { State::Colon } else { State::AfterValue };
                return true;
            }
            (Escape::None, b'\\') => Escape::Backslash,
            (Escape::None, 0..=0x1f) => return false,
            (Escape::None, _) => Escape::None,
            (Escape::Backslash, b'u') => Escape::Hex(4),
            (Escape::Backslash, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Escape::None,
            (Escape::Hex(left), b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                if left == 1 {
                    Escape::None
                } else {
                    Escape::Hex(left - 1)
                }
            }
            _ => return false,
        };
        self.state = State::Text { key, escape };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(text: &str) -> Option<JsonPrefix> {
        fed_bytes(text.as_bytes())
    }

    fn fed_bytes(bytes: &[u8]) -> Option<JsonPrefix> {
        let mut prefix = JsonPrefix::default();
        prefix.accepts(bytes).then_some(prefix)
    }

    #[test]
    fn valid_objects_are_accepted_and_complete_when_closed() {
        for text in [
            r#"{}"#,
            r#"{"a": 1}"#,
            "{\n  \"entities\": [\"Ada Lovelace\", \"London\"],\n  \"n\": -0.5e+3, \"ok\": true, \"x\": null\n}",
            r#"{"nested": {"list": [[], [1, 2.25, "s\"q\u00e9"], {}]}, "f": false}"#,
            "{\"中文\": \"北京大学\"}",
        ] {
            let prefix = fed(text).unwrap_or_else(|| panic!("{text} refused"));
            assert!(prefix.is_complete(), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok(), "{text} is valid JSON");
            // Every beginning of it, to the byte (a token may end inside a character), is
            // accepted and not complete.
            for end in 0..text.len() {
                let prefix = fed_bytes(&text.as_bytes()[..end]).unwrap_or_else(|| panic!("{text}[..{end}] refused"));
                assert!(!prefix.is_complete());
            }
        }
    }

    #[test]
    fn invalid_continuations_are_refused_without_changing_the_state() {
        for text in [
            "[1]",
            "\"text\"",
            "Sure! {",
            "{'a': 1}",
            "{\"a\" 1}",
            "{\"a\": 01}",
            "{\"a\": 1,}",
            "{\"a\": [1,]}",
            "{\"a\": tru }",
            "{\"a\": 1} x",
            "{\"a\": 1}}",
            "{\"a\": \"\\x\"}",
            "{\"a\": \"\n\"}",
            "{\"a\": 1.}",
            "{\"a\": -}",
            "{\"a\": 1]",
            "{a: 1}",
        ] {
            assert!(fed(text).is_none(), "{text:?} accepted");
        }
        let mut prefix = fed("{\"a\": [1").unwrap();
        assert!(!prefix.accepts(b"}"));
        assert!(prefix.accepts(b"]}"));
        assert!(prefix.is_complete());
    }

    #[test]
    fn blank_runs_and_depth_are_bounded() {
        assert!(fed(&format!("{{{}\"a\": 1}}", " ".repeat(MAX_BLANKS as usize))).is_some());
        assert!(fed(&format!("{{{}\"a\": 1}}", " ".repeat(MAX_BLANKS as usize + 1))).is_none());
        assert!(fed(&format!("{{\"a\": {}", "[".repeat(MAX_DEPTH - 1))).is_some());
        assert!(fed(&format!("{{\"a\": {}", "[".repeat(MAX_DEPTH))).is_none());
    }
}
