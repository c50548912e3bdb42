//! Incremental Server-Sent Events: a parser whose state is one partial line plus the event being
//! assembled (bounded by `max_event_bytes`), and writers for the events we emit.

use serde::Serialize;

/// Upper bound for one upstream event. Larger is malformed.
///
/// How it is counted, the same whatever the chunk split: every line since the last blank line
/// (data, `event`, `id`, `retry`, unknown fields and comments) costs its raw length plus one for
/// its terminator, plus, for an `event:` value that is not UTF-8, the bytes its lossy
/// replacement adds. A line still being received counts with its bytes so far, so a line that
/// never ends is cut off at the limit too. An event is an error exactly when that total exceeds
/// the limit, however the input was split.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// Buffer capacity the parser keeps between events; a larger event's buffers are released once it
/// is dispatched, and buffers grow in steps of this size rather than doubling, so a live stream
/// holds at most about three times this beyond its pending partial event.
pub const RETAINED_CAPACITY: usize = 1024;

/// Makes room for `extra` more bytes, rounding the capacity up to a multiple of
/// [`RETAINED_CAPACITY`] instead of doubling it (large buffers are grown by `realloc`, which
/// remaps pages instead of copying them).
fn grow(buf: &mut Vec<u8>, extra: usize) {
    let need = buf.len() + extra;
    if need > buf.capacity() {
        let want = need.div_ceil(RETAINED_CAPACITY) * RETAINED_CAPACITY;
        buf.reserve_exact(want - buf.len());
    }
}

/// The first `\n` or `\r`, eight bytes at a time (a byte-wise search was the parser's largest
/// cost on long events).
#[inline]
fn find_eol(b: &[u8]) -> Option<usize> {
    if b.len() < 8 {
        // Trickled input: a plain search costs less than setting up the word loop.
        return b.iter().position(|&c| c == b'\n' || c == b'\r');
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if has_zero(w ^ (ONES * u64::from(b'\n'))) | has_zero(w ^ (ONES * u64::from(b'\r'))) != 0 {
            break;
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|p| p + i)
}

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
    /// Cost of the complete lines of the event being assembled (see [`DEFAULT_MAX_EVENT_BYTES`]).
    event_bytes: usize,
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
            event_bytes: 0,
            max_event_bytes,
        }
    }

    /// Bytes currently held (partial line + partial event): the parser's whole state.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Memory the parser holds (its buffers' capacity), pending bytes included.
    pub fn held_capacity(&self) -> usize {
        self.line.capacity() + self.data.capacity() + self.event.capacity()
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
        while let Some(pos) = find_eol(input) {
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
                self.check_partial(pos)?;
                grow(&mut self.line, pos);
                self.line.extend_from_slice(&input[..pos]);
                let line = std::mem::take(&mut self.line);
                let r = self.process_line(&line);
                self.line = line;
                self.line.clear();
                if self.line.capacity() > RETAINED_CAPACITY {
                    self.line = Vec::new();
                }
                r?
            };
            if dispatch {
                self.dispatch(&mut on_event)?;
            }
            input = &input[consumed..];
        }
        if !input.is_empty() {
            self.check_partial(input.len())?;
            grow(&mut self.line, input.len());
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

    fn too_big(&self) -> SseError {
        SseError {
            message: format!(
                "upstream event exceeds {} bytes without ending",
                self.max_event_bytes
            ),
        }
    }

    /// A partial line grows by `extra` bytes. Its cost so far never exceeds what the complete
    /// line will cost, so rejecting here gives the same answer as rejecting the whole line.
    fn check_partial(&self, extra: usize) -> Result<(), SseError> {
        let cost = self
            .event_bytes
            .saturating_add(self.line.len())
            .saturating_add(extra);
        if cost > self.max_event_bytes {
            return Err(self.too_big());
        }
        Ok(())
    }

    /// Charges a complete line (`cost` bytes) to the event being assembled.
    fn charge(&mut self, cost: usize) -> Result<(), SseError> {
        let total = self.event_bytes.saturating_add(cost);
        if total > self.max_event_bytes {
            return Err(self.too_big());
        }
        self.event_bytes = total;
        Ok(())
    }

    /// Returns true when the line ends an event.
    fn process_line(&mut self, line: &[u8]) -> Result<bool, SseError> {
        if line.is_empty() {
            // Event boundary: the next event starts its own count (even when nothing dispatches,
            // e.g. after comments only).
            self.event_bytes = 0;
            return Ok(self.has_fields);
        }
        self.charge(line.len() + 1)?;
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
                grow(&mut self.data, value.len() + 1);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                self.has_fields = true;
            }
            b"event" => {
                let name = String::from_utf8_lossy(value);
                // Lossy replacement grows invalid bytes (up to 3 per byte): charge the growth.
                self.charge(name.len().saturating_sub(value.len()))?;
                self.event.clear();
                self.event.push_str(&name);
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
        // Keep small buffers for the next event; give back what an unusually large one grew.
        if self.data.capacity() > RETAINED_CAPACITY {
            self.data = Vec::new();
        }
        if self.event.capacity() > RETAINED_CAPACITY {
            self.event = String::new();
        }
        self.has_fields = false;
        self.has_data = false;
        self.event_bytes = 0;
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

    /// The word-at-a-time search finds what a byte-wise one finds, at every offset and length.
    #[test]
    fn find_eol_matches_a_bytewise_search() {
        let mut buf = [b'a'; 40];
        for len in 0..buf.len() {
            for at in 0..=len {
                for (c, other) in [(b'\n', 0x8a), (b'\r', 0x0b), (b'\n', b'\x0c')] {
                    buf.iter_mut().for_each(|b| *b = other);
                    if at < len {
                        buf[at] = c;
                        if at + 3 < len {
                            buf[at + 3] = b'\r';
                        }
                    }
                    let s = &buf[..len];
                    let want = s.iter().position(|&b| b == b'\n' || b == b'\r');
                    assert_eq!(find_eol(s), want, "{s:?}");
                }
            }
        }
    }

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

    /// Events and the error (if any) for `input` fed in `pieces` under `limit`.
    fn outcome(input: &[u8], cuts: &[usize], limit: usize) -> (Vec<(String, Vec<u8>)>, bool) {
        let mut p = SseParser::new(limit);
        let mut events = Vec::new();
        let mut push = |e: SseEvent<'_>| -> Result<(), E> {
            events.push((e.event.to_string(), e.data.to_vec()));
            Ok(())
        };
        let mut start = 0;
        let mut failed = false;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            if p.feed(&input[start..c], &mut push).is_err() {
                failed = true;
                break;
            }
            assert!(p.buffered_len() <= limit, "state above the limit");
            start = c;
        }
        if !failed {
            failed = p.finish(&mut push).is_err();
        }
        (events, failed)
    }

    /// Comments, `id`, unknown fields, CRLF / CR / LF, an `event:` value that is not UTF-8 (its
    /// lossy form is longer), multi-line data and a final line without its terminator.
    const MIXED: &[u8] = b": ping\r\nevent: a\xff\xfe\r\nid: 1\r\ndata: {\"x\":1}\r\n\r\n\
        :c\n\ndata: l1\ndata: l2\nfoo: bar\n\nevent: b\rdata: cr\r\r: tail comment\ndata: end";

    #[test]
    fn the_limit_does_not_depend_on_the_split() {
        let n = MIXED.len();
        for limit in 0..=n + 4 {
            let whole = outcome(MIXED, &[], limit);
            for i in 0..=n {
                assert_eq!(
                    outcome(MIXED, &[i], limit),
                    whole,
                    "limit {limit}, split at {i}"
                );
            }
            let every: Vec<usize> = (1..n).collect();
            assert_eq!(
                outcome(MIXED, &every, limit),
                whole,
                "limit {limit}, byte by byte"
            );
            for i in (0..n).step_by(7) {
                for j in (i..n).step_by(5) {
                    assert_eq!(
                        outcome(MIXED, &[i, j], limit),
                        whole,
                        "limit {limit} at {i},{j}"
                    );
                }
            }
        }
        // A large enough limit accepts everything; a tiny one rejects.
        assert!(!outcome(MIXED, &[], n + 4).1);
        assert!(outcome(MIXED, &[], 4).1);
    }

    #[test]
    fn every_kind_of_line_counts_toward_the_limit() {
        // `event: ` + 10 bytes + terminator = 18; data line `data: x` + terminator = 8.
        let ev = b"event: 0123456789\ndata: x\n\n";
        assert!(!outcome(ev, &[], 26).1);
        assert!(outcome(ev, &[], 25).1);
        // A comment line is charged like any other line of the event.
        let c = b": 0123456789\ndata: x\n\n";
        assert!(!outcome(c, &[], 21).1);
        assert!(outcome(c, &[], 20).1);
        // Invalid UTF-8 in the event name: each byte becomes 3 bytes, the growth is charged.
        let bad = b"event: \xff\xff\ndata: x\n\n";
        let cost = 10 + 4 + 8;
        assert!(!outcome(bad, &[], cost).1);
        assert!(outcome(bad, &[], cost - 1).1);
        // A line that never ends is cut at the limit, wherever the chunks split it.
        let endless = vec![b'x'; 100];
        for i in 0..=100 {
            assert!(outcome(&endless, &[i], 64).1);
        }
        // Keep-alive comments between events do not add up across events.
        let many = b": k\n\n".repeat(100);
        assert!(!outcome(&many, &[], 8).1);
    }

    #[test]
    fn large_event_buffers_are_released_after_dispatch() {
        let mut p = SseParser::default();
        let big = format!("data: {}\n\n", "x".repeat(100_000));
        for piece in big.as_bytes().chunks(7) {
            p.feed::<E>(piece, |_| Ok(())).unwrap();
        }
        assert_eq!(p.buffered_len(), 0);
        assert!(
            p.held_capacity() <= 2 * RETAINED_CAPACITY,
            "{}",
            p.held_capacity()
        );
    }

    #[test]
    fn writers() {
        let mut out = Vec::new();
        write_data(&mut out, &serde_json::json!({"k": "v"}));
        write_done(&mut out);
        assert_eq!(out, b"data: {\"k\":\"v\"}\n\ndata: [DONE]\n\n");
    }
}
