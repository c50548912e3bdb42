//! Incremental Server-Sent Events: a parser whose state is one partial line plus the event being
//! assembled (bounded by `max_event_bytes`), and writers for the events we emit.

use serde::Serialize;

/// Upper bound for one upstream event (line plus accumulated data). Larger is malformed.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// One dispatched event. `event` is empty when the upstream sent no `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a str,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError {
    pub message: String,
}

#[derive(Debug)]
pub struct SseParser {
    /// Bytes of a line whose terminator has not arrived yet.
    line: Vec<u8>,
    data: Vec<u8>,
    event: String,
    has_fields: bool,
    has_data: bool,
    /// The previous chunk ended in `\r`: a leading `\n` belongs to that terminator.
    skip_lf: bool,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            event: String::new(),
            has_fields: false,
            has_data: false,
            skip_lf: false,
            max_event_bytes,
        }
    }

    /// Bytes currently held (partial line + partial event): the parser's whole state.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Feeds one chunk; `on_event` runs for every event completed by it, in order.
    pub fn feed<E>(
        &mut self,
        mut input: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        if self.skip_lf {
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
                self.skip_lf = false;
            } else if !input.is_empty() {
                self.skip_lf = false;
            }
        }
        while let Some(pos) = input.iter().position(|&b| b == b'\n' || b == b'\r') {
            let term = input[pos];
            let mut consumed = pos + 1;
            if term == b'\r' {
                match input.get(pos + 1) {
                    Some(b'\n') => consumed += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let dispatch = if self.line.is_empty() {
                self.process_line(&input[..pos])?
            } else {
                self.check_len(pos)?;
                self.line.extend_from_slice(&input[..pos]);
                let line = std::mem::take(&mut self.line);
                let r = self.process_line(&line);
                self.line = line;
                self.line.clear();
                r?
            };
            if dispatch {
                self.dispatch(&mut on_event)?;
            }
            input = &input[consumed..];
        }
        if !input.is_empty() {
            self.check_len(input.len())?;
            self.line.extend_from_slice(input);
        }
        Ok(())
    }

    /// End of the upstream body: a final event without its blank line is still delivered
    /// (several providers omit it); a partial line is treated as complete.
    pub fn finish<E>(
        &mut self,
        mut on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let r = self.process_line(&line);
            self.line = line;
            self.line.clear();
            r?;
        }
        self.skip_lf = false;
        if self.has_fields {
            self.dispatch(&mut on_event)?;
        }
        Ok(())
    }

    fn check_len(&self, extra: usize) -> Result<(), SseError> {
        if self.buffered_len() + extra > self.max_event_bytes {
            return Err(SseError {
                message: format!(
                    "upstream event exceeds {} bytes without ending",
                    self.max_event_bytes
                ),
            });
        }
        Ok(())
    }

    /// Returns true when the line ends an event.
    fn process_line(&mut self, line: &[u8]) -> Result<bool, SseError> {
        if line.is_empty() {
            return Ok(self.has_fields);
        }
        if line[0] == b':' {
            return Ok(false); // comment (e.g. keep-alives, DashScope's `:HTTP_STATUS/200`)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.check_len(value.len() + 1)?;
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                self.has_fields = true;
            }
            b"event" => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
                self.has_fields = true;
            }
            // `id`, `retry` and unknown fields carry nothing we translate.
            _ => {}
        }
        Ok(false)
    }

    fn dispatch<E>(
        &mut self,
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let r = on_event(SseEvent {
            event: &self.event,
            data: &self.data,
        });
        self.data.clear();
        self.event.clear();
        self.has_fields = false;
        self.has_data = false;
        r
    }
}

/// Appends `data: <json>\n\n`.
pub fn write_data<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, value).expect("serialising to a Vec cannot fail");
    out.extend_from_slice(b"\n\n");
}

/// Appends the OpenAI stream terminator.
pub fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(#[allow(dead_code)] String);
    impl From<SseError> for E {
        fn from(e: SseError) -> Self {
            E(e.message)
        }
    }

    fn parse_in_pieces(input: &[u8], pieces: &[usize]) -> Vec<(String, String)> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        let mut rest = input;
        for &n in pieces {
            let n = n.min(rest.len());
            p.feed::<E>(&rest[..n], |e| {
                out.push((
                    e.event.to_string(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
                Ok(())
            })
            .unwrap();
            rest = &rest[n..];
        }
        p.feed::<E>(rest, |e| {
            out.push((
                e.event.to_string(),
                String::from_utf8_lossy(e.data).into_owned(),
            ));
            Ok(())
        })
        .unwrap();
        p.finish::<E>(|e| {
            out.push((
                e.event.to_string(),
                String::from_utf8_lossy(e.data).into_owned(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    const SAMPLE: &[u8] = b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: line1\ndata:line2\n\nid: 7\nevent: x\rdata: cr\r\rdata: [DONE]\n\ndata: tail-without-blank";

    #[test]
    fn parses_fields_comments_and_all_line_endings() {
        let got = parse_in_pieces(SAMPLE, &[]);
        assert_eq!(
            got,
            vec![
                ("message_start".into(), "{\"a\":1}".into()),
                ("".into(), "line1\nline2".into()),
                ("x".into(), "cr".into()),
                ("".into(), "[DONE]".into()),
                ("".into(), "tail-without-blank".into()),
            ]
        );
    }

    #[test]
    fn every_two_way_split_gives_the_same_events() {
        let whole = parse_in_pieces(SAMPLE, &[]);
        for i in 0..=SAMPLE.len() {
            assert_eq!(parse_in_pieces(SAMPLE, &[i]), whole, "split at {i}");
        }
        let ones = vec![1; SAMPLE.len()];
        assert_eq!(parse_in_pieces(SAMPLE, &ones), whole, "byte by byte");
    }

    #[test]
    fn oversized_event_is_an_error_and_state_stays_bounded() {
        let mut p = SseParser::new(64);
        let big = vec![b'x'; 100];
        let r = p
            .feed::<E>(b"data: ", |_| Ok(()))
            .and_then(|_| p.feed::<E>(&big, |_| Ok(())));
        assert!(r.is_err());
        assert!(p.buffered_len() <= 64);
    }

    #[test]
    fn writers() {
        let mut out = Vec::new();
        write_data(&mut out, &serde_json::json!({"k": "v"}));
        write_done(&mut out);
        assert_eq!(out, b"data: {\"k\":\"v\"}\n\ndata: [DONE]\n\n");
    }
}
