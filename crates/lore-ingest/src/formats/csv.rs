//! Delimited text with a header row: each row rendered "Header1: v1; Header2: v2", like a sheet.

use lore_core::Section;

use super::{Parsed, labelled_rows};

pub(super) fn parse(text: &str) -> Result<Parsed, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(text))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("damaged CSV: {e}"))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(Parsed { sections: vec![Section::new(Vec::new(), labelled_rows(rows))], ..Parsed::default() })
}

/// The separator the header line uses most: comma, semicolon (European Excel), tab or bar.
fn delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    let count = |d: u8| {
        let mut quoted = false;
        header
            .bytes()
            .filter(|b| {
                quoted ^= *b == b'"';
                !quoted && *b == d
            })
            .count()
    };
    [b',', b';', b'\t', b'|'].into_iter().max_by_key(|d| (count(*d), *d == b',')).unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_line_picks_the_delimiter() {
        assert_eq!(delimiter("a;b;\"c,d,e\"\n1;2;3"), b';');
        assert_eq!(delimiter("a\tb\n"), b'\t');
        assert_eq!(delimiter("single column\n"), b',');
    }
}
