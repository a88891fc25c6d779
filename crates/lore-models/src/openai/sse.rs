use std::io::{self, BufRead};

/// Reads the `data` of each event of a server-sent event stream. Events may arrive split
/// across any number of reads; comments (keep-alives) and the other fields are skipped.
pub(super) struct SseReader<R> {
    input: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    pub(super) fn new(input: R) -> Self {
        SseReader { input, line: Vec::new() }
    }

    /// The data of the next event (its `data:` lines joined by newlines), or `None` when the
    /// stream has ended.
    pub(super) fn next_data(&mut self) -> io::Result<Option<String>> {
        let mut data: Option<String> = None;
        loop {
            self.line.clear();
            self.input.read_until(b'\n', &mut self.line)?;
            // A line cut off by the end of the stream is incomplete and dropped, so a truncated
            // JSON payload reads as a truncated stream rather than as a malformed event.
            let Some(line) = self.line.strip_suffix(b"\n") else {
                return Ok(data);
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if data.is_some() {
                    return Ok(data);
                }
                continue;
            }
            let line = std::str::from_utf8(line).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            if field == "data" {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
    }
}
