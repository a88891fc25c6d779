use std::ops::Range;

/// The Markdown tables of a text (runs of lines starting with `|`, as the parsers render
/// tables), so that every chunker keeps rows whole and repeats a table's header in each chunk
/// that continues it.
pub(super) struct Tables {
    /// Byte ranges no chunk boundary may fall inside, in order: each row, with the header row
    /// and its separator row (`|---|`) together as one.
    units: Vec<Range<usize>>,
    /// Tables with a header and at least one row after it, in order.
    headed: Vec<HeadedTable>,
}

struct HeadedTable {
    /// The header row and separator row with the line break after them: the text repeated
    /// before a chunk that starts inside the table.
    header: Range<usize>,
    /// Where the table's last row ends.
    end: usize,
}

/// A line of the text: its range without the line break, and where the next line starts.
struct Line {
    content: Range<usize>,
    next: usize,
}

impl Tables {
    pub(super) fn new(text: &str) -> Self {
        let mut tables = Tables { units: Vec::new(), headed: Vec::new() };
        let mut table: Vec<Line> = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim();
            let start = offset + (line.len() - line.trim_start().len());
            let content = start..start + trimmed.len();
            offset += line.len();
            if trimmed.starts_with('|') {
                table.push(Line { content, next: offset });
            } else {
                tables.add(text, std::mem::take(&mut table));
            }
        }
        tables.add(text, table);
        tables
    }

    fn add(&mut self, text: &str, rows: Vec<Line>) {
        let has_header = rows.len() >= 2 && is_separator_row(&text[rows[1].content.clone()]);
        let body = if has_header {
            self.units.push(rows[0].content.start..rows[1].content.end);
            &rows[2..]
        } else {
            &rows[..]
        };
        self.units.extend(body.iter().map(|row| row.content.clone()));
        if let (true, Some(last)) = (has_header, body.last()) {
            self.headed.push(HeadedTable { header: rows[0].content.start..rows[1].next, end: last.content.end });
        }
    }

    /// Whether a chunk may end or start at byte `position`.
    pub(super) fn allows_cut(&self, position: usize) -> bool {
        let index = self.units.partition_point(|u| u.start < position);
        index == 0 || self.units[index - 1].end <= position
    }

    /// Whether `range` holds any part of a table.
    pub(super) fn touch(&self, range: &Range<usize>) -> bool {
        let index = self.units.partition_point(|u| u.end <= range.start);
        self.units.get(index).is_some_and(|u| u.start < range.end)
    }

    /// Merges each piece that starts inside a row into the piece before it, so that no piece
    /// boundary cuts a row.
    pub(super) fn join_units(&self, pieces: impl IntoIterator<Item = Range<usize>>) -> Vec<Range<usize>> {
        let mut joined: Vec<Range<usize>> = Vec::new();
        for piece in pieces {
            match joined.last_mut() {
                Some(previous) if !self.allows_cut(piece.start) => previous.end = piece.end,
                _ => joined.push(piece),
            }
        }
        joined
    }

    /// The header (with its separator row and a line break) to repeat before a chunk starting at
    /// `start`, when that is after the header of a table and inside the table.
    pub(super) fn header_before(&self, start: usize) -> Option<Range<usize>> {
        let index = self.headed.partition_point(|t| t.header.end <= start);
        let table = self.headed.get(index.checked_sub(1)?)?;
        (start < table.end).then(|| table.header.clone())
    }

    /// `body`, a chunk starting at byte `start` of `text`, after the header to repeat there.
    pub(super) fn with_header(&self, text: &str, start: usize, body: &str) -> String {
        match self.header_before(start) {
            Some(header) => format!("{}{body}", &text[header]),
            None => body.to_string(),
        }
    }
}

/// A Markdown table's separator row: pipes, dashes, colons and spaces, with at least one dash.
fn is_separator_row(row: &str) -> bool {
    row.contains('-') && row.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
}
