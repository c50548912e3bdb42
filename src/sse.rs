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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

const ONES128: u128 = u128::MAX / 255;

/// The high bit of each byte of `x` below 14 (`\n` is 10, `\r` 13, the only such bytes in most
/// lines); the lowest flagged byte is exact, higher flags may be spurious.
#[inline(always)]
fn below_14(x: u128) -> u128 {
    x.wrapping_sub(ONES128 * 14) & !x & (ONES128 * 0x80)
}

/// Whether one of 64 bytes is below 14: the lane-wise minimum of four 16-byte groups, tested as
/// one word (three `pminub`s on x86-64).
#[inline(always)]
fn any_below_14(block: &[u8; 64]) -> bool {
    let mut min = [0u8; 16];
    for (j, m) in min.iter_mut().enumerate() {
        *m = block[j]
            .min(block[j + 16])
            .min(block[j + 32].min(block[j + 48]));
    }
    below_14(u128::from_le_bytes(min)) != 0
}

/// The high bit of each byte of `w` that is `\n` or `\r`; the lowest flagged byte is exact.
#[inline(always)]
fn eol8(w: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    has_zero(w ^ (ONES * u64::from(b'\n'))) | has_zero(w ^ (ONES * u64::from(b'\r')))
}

/// The first `\n` or `\r` (a byte-wise search was the parser's largest cost on long events).
#[inline]
fn find_eol(b: &[u8]) -> Option<usize> {
    match b {
        // The blank line ending an event, and trickled input.
        [] => None,
        [b'\n' | b'\r', ..] => Some(0),
        _ if b.len() < 8 => b.iter().position(|&c| c == b'\n' || c == b'\r'),
        _ => find_eol_long(b),
    }
}

/// [`find_eol`] for eight bytes or more: SSE2 (part of the x86-64 baseline), which compares 16
/// bytes with `\n` and `\r` in a few instructions, where the portable search below works 64-bit
/// halves and moves every group from vector to general registers. Not inlined: the chunks of a
/// sliced stream call it once or twice each and its callers stay small.
///
/// A tail shorter than a group is tested as the last group of the input, overlapping bytes
/// already found clean, rather than byte by byte (a sliced stream's chunks are mostly tails).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn find_eol_long(b: &[u8]) -> Option<usize> {
    if b.len() < 16 {
        return find_eol_words2(b);
    }
    // SAFETY: `b` is readable for its length, and nothing is written.
    unsafe { sse2::first_eol::<false>(b.as_ptr(), b.len(), std::ptr::null_mut()) }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_storeu_si128,
    };

    /// The first `\n` or `\r` of the `n` bytes (16 or more) at `src`; with `COPY`, every group
    /// of 16 read is also stored at its offset from `dst` (the groups past a line end may not be).
    /// 64 bytes at a time are tested for any byte below 14 (three minimums and one comparison;
    /// a line end is one, other control bytes are rare in SSE lines), then looked at exactly.
    ///
    /// # Safety
    /// `src` is readable for `n` bytes and, with `COPY`, `dst` writable for `n` bytes. (SSE2 is
    /// part of the x86_64 baseline.)
    #[inline(always)]
    pub(super) unsafe fn first_eol<const COPY: bool>(
        src: *const u8,
        n: usize,
        dst: *mut u8,
    ) -> Option<usize> {
        debug_assert!(n >= 16);
        // Every `at` below has at + 16 <= n.
        let load = |at: usize| {
            let v = _mm_loadu_si128(src.add(at).cast::<__m128i>());
            if COPY {
                _mm_storeu_si128(dst.add(at).cast::<__m128i>(), v);
            }
            v
        };
        let eol = |v: __m128i| {
            let m = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
            );
            _mm_movemask_epi8(m) as u32 as u64
        };
        let mut i = 0;
        while i + 64 <= n {
            let (a, b, c, d) = (load(i), load(i + 16), load(i + 32), load(i + 48));
            let min = _mm_min_epu8(_mm_min_epu8(a, b), _mm_min_epu8(c, d));
            let low = _mm_cmpeq_epi8(_mm_min_epu8(min, _mm_set1_epi8(13)), min);
            if _mm_movemask_epi8(low) != 0 {
                let m = eol(a) | eol(b) << 16 | eol(c) << 32 | eol(d) << 48;
                if m != 0 {
                    return Some(i + m.trailing_zeros() as usize);
                }
            }
            i += 64;
        }
        while i < n {
            // The last group ends at the input's end; the bytes it shares with the previous one
            // hold no line end (and were stored already: they are stored again, the same).
            let at = i.min(n - 16);
            let m = eol(load(at));
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            i = at + 16;
        }
        None
    }
}

/// Eight to fifteen bytes: two words, the second overlapping the first.
#[inline]
fn find_eol_words2(b: &[u8]) -> Option<usize> {
    let n = b.len();
    let first = eol8(u64::from_le_bytes(b[..8].try_into().expect("8 bytes")));
    if first != 0 {
        return Some((first.trailing_zeros() / 8) as usize);
    }
    let last = eol8(u64::from_le_bytes(b[n - 8..].try_into().expect("8 bytes")));
    (last != 0).then(|| n - 8 + (last.trailing_zeros() / 8) as usize)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(never)]
fn find_eol_long(b: &[u8]) -> Option<usize> {
    find_eol_portable(b)
}

/// [`find_eol_long`] without SSE2: 64 bytes at a time to the block that may hold a line end, then
/// 16 at a time to the first byte below 14, which is usually it. Other control bytes (a tab) hand
/// over to an exact word search. (Compiled on x86-64 for its test.)
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn find_eol_portable(b: &[u8]) -> Option<usize> {
    let n = b.len();
    if n < 16 {
        return find_eol_words2(b);
    }
    let mut i = 0;
    while let Some(block) = b.get(i..i + 64) {
        if any_below_14(block.try_into().expect("64 bytes")) {
            break;
        }
        i += 64;
    }
    while i < n {
        // The last group ends at the input's end; the bytes it shares with the previous one
        // hold nothing below 14.
        let at = i.min(n - 16);
        let m = below_14(u128::from_le_bytes(
            b[at..at + 16].try_into().expect("16 bytes"),
        ));
        if m != 0 {
            let at = at + (m.trailing_zeros() / 8) as usize;
            if b[at] == b'\n' || b[at] == b'\r' {
                return Some(at);
            }
            // Another control byte (a tab): nothing before it is a line end.
            return find_eol_words(b, at + 1);
        }
        i = at + 16;
    }
    None
}

/// The first `\n` or `\r` at or after `from`, a word at a time.
fn find_eol_words(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let m = eol8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|p| p + i)
}

/// Appends `input` to `line` when it holds no line end; otherwise leaves `line` as it is and
/// returns the first line end.
#[inline(always)]
fn append_unless_eol(line: &mut Vec<u8>, input: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if input.len() >= 16 {
        return append_unless_eol_long(line, input);
    }
    let pos = find_eol(input);
    if pos.is_none() {
        line.extend_from_slice(input);
    }
    pos
}

/// [`append_unless_eol`] for 16 bytes or more: the bytes are copied as they are searched, each
/// group stored where it goes past the line's end (a sliced stream's chunk otherwise pays a
/// search and a call to `memcpy`), and become part of the line only when none held a line end.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn append_unless_eol_long(line: &mut Vec<u8>, input: &[u8]) -> Option<usize> {
    let n = input.len();
    // The caller's room makes this a no-op; the stores below rely on it.
    line.reserve(n);
    let spare = line.spare_capacity_mut();
    assert!(spare.len() >= n);
    // SAFETY: `input` is readable for n bytes; the spare capacity writable for n.
    let pos = unsafe { sse2::first_eol::<true>(input.as_ptr(), n, spare.as_mut_ptr().cast()) };
    if pos.is_none() {
        // SAFETY: the n bytes after the line's end were all written, within the capacity.
        unsafe { line.set_len(line.len() + n) };
    }
    pos
}

/// One dispatched event. `event` is empty when the upstream sent no `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a str,
    pub data: &'a [u8],
}

/// What [`SseParser::absorb`] made of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absorb {
    /// Appended to the partial line: the chunk ends no line.
    Taken,
    /// Left as it is, its first line end found: [`SseParser::feed_from`] takes it from there.
    LineEnd(LineEnd),
    /// Left as it is, not searched: [`SseParser::feed`].
    Declined,
}

/// Where a chunk [`SseParser::absorb`] declined ends its first line, so that feeding it does not
/// search for that again (only `absorb` makes one, for the chunk it was given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineEnd(usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError {
    pub message: String,
}

#[derive(Debug)]
pub struct SseParser {
    /// Bytes of a line whose terminator has not arrived yet.
    line: Vec<u8>,
    /// The event's data from `data_start` on (a data line's field name before it when the
    /// partial-line buffer became this one, see [`SseParser::keep`]).
    data: Vec<u8>,
    data_start: usize,
    event: String,
    has_fields: bool,
    has_data: bool,
    /// The previous chunk ended in `\r`: a leading `\n` belongs to that terminator.
    skip_lf: bool,
    /// Cost of the complete lines of the event being assembled (see [`DEFAULT_MAX_EVENT_BYTES`]).
    event_bytes: usize,
    max_event_bytes: usize,
    /// Bytes [`SseParser::absorb`] may append to the partial line with no other check: within
    /// the line's capacity and the event limit, and 0 while a `\r` waits for its pair or
    /// absorbing is off. Set by every `feed` and `finish` (0 on their error paths).
    room: usize,
    /// Cleared by [`SseParser::set_absorbing`]: `absorb` then declines everything.
    absorbing: bool,
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
            data_start: 0,
            event: String::new(),
            has_fields: false,
            has_data: false,
            skip_lf: false,
            event_bytes: 0,
            max_event_bytes,
            room: 0,
            absorbing: true,
        }
    }

    /// Whether [`SseParser::absorb`] may take chunks (a host turns it off once the stream it
    /// feeds has ended, so that a late chunk reaches its own checks).
    pub fn set_absorbing(&mut self, on: bool) {
        self.absorbing = on;
        self.update_room();
    }

    /// Recomputes [`SseParser::room`] from the state.
    #[inline]
    fn update_room(&mut self) {
        self.room = if self.absorbing && !self.skip_lf {
            let spare = self.line.capacity() - self.line.len();
            let budget = self
                .max_event_bytes
                .saturating_sub(self.event_bytes.saturating_add(self.line.len()));
            spare.min(budget)
        } else {
            0
        };
    }

    /// Bytes currently held (partial line + partial event): the parser's whole state.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() - self.data_start + self.event.len()
    }

    /// Memory the parser holds (its buffers' capacity), pending bytes included.
    pub fn held_capacity(&self) -> usize {
        self.line.capacity() + self.data.capacity() + self.event.capacity()
    }

    /// Appends `input` to the partial line when it ends no line, which is all a trickled chunk
    /// usually does. Otherwise changes nothing: [`Absorb::LineEnd`] when it ends a line (feed it
    /// with [`SseParser::feed_from`]), [`Absorb::Declined`] when [`SseParser::feed`] is needed for
    /// anything else (a `\r` to pair, the buffer to grow, the limit reached, absorbing off).
    ///
    /// One comparison against a precomputed room stands for the conditions (a call per byte
    /// of a trickled stream pays little else).
    #[inline(always)]
    pub fn absorb(&mut self, input: &[u8]) -> Absorb {
        if input.len() > self.room {
            return Absorb::Declined;
        }
        match input {
            // One byte at a time: no call to `memcpy` for it (one comparison for most bytes).
            [c] => {
                if *c < 14 && (*c == b'\n' || *c == b'\r') {
                    return Absorb::LineEnd(LineEnd(0));
                }
                self.line.push(*c);
            }
            _ => {
                if let Some(pos) = append_unless_eol(&mut self.line, input) {
                    return Absorb::LineEnd(LineEnd(pos));
                }
            }
        }
        self.room -= input.len();
        Absorb::Taken
    }

    /// Feeds one chunk; `on_event` runs for every event completed by it, in order.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        self.feed_inner(input, None, on_event)
    }

    /// [`SseParser::feed`] for the chunk [`SseParser::absorb`] answered `at` for.
    #[inline]
    pub fn feed_from<E>(
        &mut self,
        input: &[u8],
        at: LineEnd,
        on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        debug_assert_eq!(find_eol(input), Some(at.0), "not the chunk absorb declined");
        self.feed_inner(input, Some(at.0), on_event)
    }

    /// `known`: the first line end of `input`, when `absorb` found it (it then had room, so
    /// there is no `\r` to pair).
    #[inline]
    fn feed_inner<E>(
        &mut self,
        mut input: &[u8],
        known: Option<usize>,
        mut on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        // Error paths leave it 0: the next chunk takes this path again.
        self.room = 0;
        if self.skip_lf {
            debug_assert!(known.is_none());
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
                self.skip_lf = false;
            } else if !input.is_empty() {
                self.skip_lf = false;
            }
        }
        // The data of the event being assembled while it is one line, not yet copied.
        let mut held = Held::None;
        let mut eol = match known {
            Some(pos) => Some(pos),
            None => find_eol(input),
        };
        if !self.line.is_empty() {
            // First the line an earlier chunk began.
            let Some(pos) = eol else {
                self.check_partial(input.len())?;
                grow(&mut self.line, input.len());
                self.line.extend_from_slice(input);
                self.update_room();
                return Ok(());
            };
            let consumed = self.terminator(input, pos);
            self.check_partial(pos)?;
            grow(&mut self.line, pos);
            self.line.extend_from_slice(&input[..pos]);
            input = &input[consumed..];
            let line = std::mem::take(&mut self.line);
            // Not blank: it has the earlier chunk's bytes.
            let r = self.process_line(&line).map(|kind| match kind {
                Line::Data(value) if !self.has_data => {
                    // Left where it is: handed over from here if the event ends in this chunk.
                    self.has_data = true;
                    Some(value.as_ptr() as usize - line.as_ptr() as usize)
                }
                Line::Data(value) => {
                    self.push_data(value);
                    None
                }
                Line::Blank | Line::Other => None,
            });
            self.line = line;
            match r {
                Ok(Some(at)) => held = Held::Line(at),
                Ok(None) => self.clear_line(),
                Err(e) => {
                    self.clear_line();
                    return Err(e.into());
                }
            }
            eol = find_eol(input);
        }
        // Whole lines straight from the input. The data of an event that ends in this chunk with
        // one data line (the usual event) is handed over where it lies, without a copy.
        let r = self.feed_lines(&mut input, eol, &mut held, &mut on_event);
        // The event continues in the next chunk: keep its data.
        self.keep(held);
        r?;
        if !input.is_empty() {
            self.check_partial(input.len())?;
            grow(&mut self.line, input.len());
            self.line.extend_from_slice(input);
        }
        self.update_room();
        Ok(())
    }

    /// The complete lines at the start of `input`, leaving the rest in `input`; `eol` is the
    /// first line end.
    #[inline]
    fn feed_lines<'i, E>(
        &mut self,
        input: &mut &'i [u8],
        mut eol: Option<usize>,
        held: &mut Held<'i>,
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<SseError>,
    {
        let mut rest: &'i [u8] = input;
        while let Some(pos) = eol {
            let consumed = self.terminator(rest, pos);
            let line = &rest[..pos];
            rest = &rest[consumed..];
            *input = rest;
            match self.process_line(line)? {
                Line::Blank => {
                    if self.has_fields {
                        let held = std::mem::replace(held, Held::None);
                        self.dispatch(held, on_event)?;
                    }
                }
                Line::Data(value) => {
                    if !self.has_data {
                        *held = Held::Input(value);
                        self.has_data = true;
                    } else {
                        self.keep(std::mem::replace(held, Held::None));
                        self.push_data(value);
                    }
                }
                Line::Other => {}
            }
            eol = find_eol(rest);
        }
        Ok(())
    }

    /// Copies held data into the event's data buffer.
    fn keep(&mut self, held: Held<'_>) {
        match held {
            Held::None => {}
            Held::Input(data) => {
                self.has_data = false;
                self.push_data(data);
            }
            Held::Line(at) => {
                // The event's first data line (the data buffer is empty): the partial-line buffer
                // becomes the data buffer rather than being copied to it.
                debug_assert!(self.data.is_empty());
                std::mem::swap(&mut self.line, &mut self.data);
                self.data_start = at;
            }
        }
    }

    /// Empties the partial-line buffer, giving back what an unusually long line grew.
    fn clear_line(&mut self) {
        self.line.clear();
        if self.line.capacity() > RETAINED_CAPACITY {
            self.line = Vec::new();
        }
    }

    /// Bytes taken by the line ending at `pos` with its terminator; notes a `\r` that may pair
    /// with a `\n` at the start of the next chunk.
    #[inline]
    fn terminator(&mut self, input: &[u8], pos: usize) -> usize {
        if input[pos] == b'\r' {
            match input.get(pos + 1) {
                Some(b'\n') => return pos + 2,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        pos + 1
    }

    /// Appends one data line's value to the event's data.
    fn push_data(&mut self, value: &[u8]) {
        grow(&mut self.data, value.len() + 1);
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
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
        self.room = 0;
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let r = self.process_line(&line).map(|kind| {
                if let Line::Data(value) = kind {
                    self.push_data(value);
                }
            });
            self.line = line;
            self.line.clear();
            r?;
        }
        self.skip_lf = false;
        if self.has_fields {
            self.dispatch(Held::None, &mut on_event)?;
        }
        self.update_room();
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
    #[inline]
    fn charge(&mut self, cost: usize) -> Result<(), SseError> {
        let total = self.event_bytes.saturating_add(cost);
        if total > self.max_event_bytes {
            return Err(self.too_big());
        }
        self.event_bytes = total;
        Ok(())
    }

    /// Charges and interprets one complete line; a data line's value is the caller's to keep.
    #[inline]
    fn process_line<'l>(&mut self, line: &'l [u8]) -> Result<Line<'l>, SseError> {
        if line.is_empty() {
            // Event boundary: the next event starts its own count (even when nothing dispatches,
            // e.g. after comments only).
            self.event_bytes = 0;
            return Ok(Line::Blank);
        }
        self.charge(line.len() + 1)?;
        if let Some(v) = line.strip_prefix(b"data:") {
            self.has_fields = true;
            return Ok(Line::Data(v.strip_prefix(b" ").unwrap_or(v)));
        }
        self.other_line(line)
    }

    /// Comments and fields other than `data`.
    fn other_line<'l>(&mut self, line: &'l [u8]) -> Result<Line<'l>, SseError> {
        if line[0] == b':' {
            return Ok(Line::Other); // comment (e.g. keep-alives, DashScope's `:HTTP_STATUS/200`)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            // An empty value inside the line (callers locate a data value in its line).
            None => (line, &line[line.len()..]),
        };
        match field {
            b"data" => {
                self.has_fields = true;
                return Ok(Line::Data(value));
            }
            b"event" => {
                self.event.clear();
                if value.is_ascii() {
                    // SAFETY: ASCII is UTF-8. Event names are ASCII in practice, and this skips
                    // the lossy decoder's chunk iteration (most of an event line's cost).
                    self.event
                        .push_str(unsafe { std::str::from_utf8_unchecked(value) });
                } else {
                    let name = String::from_utf8_lossy(value);
                    // Lossy replacement grows invalid bytes (up to 3 per byte): charge the growth.
                    self.charge(name.len().saturating_sub(value.len()))?;
                    self.event.push_str(&name);
                }
                self.has_fields = true;
            }
            // `id`, `retry` and unknown fields carry nothing we translate.
            _ => {}
        }
        Ok(Line::Other)
    }

    /// Hands the event over, its data where it is held.
    #[inline(always)]
    fn dispatch<E>(
        &mut self,
        held: Held<'_>,
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let data = match held {
            Held::None => &self.data[self.data_start..],
            Held::Input(data) => data,
            Held::Line(at) => &self.line[at..],
        };
        let r = on_event(SseEvent {
            event: &self.event,
            data,
        });
        if let Held::Line(_) = held {
            self.clear_line();
        }
        self.data.clear();
        self.data_start = 0;
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

/// Where the data of the event being assembled is while it is a single line not yet copied to
/// the parser's data buffer.
#[derive(Clone, Copy)]
enum Held<'i> {
    /// In the data buffer (or there is none yet).
    None,
    /// A line of the chunk being fed.
    Input(&'i [u8]),
    /// In the partial-line buffer from this offset (its line ended in the chunk being fed).
    Line(usize),
}

/// What a complete line is to the event being assembled.
enum Line<'l> {
    /// The blank line ending an event.
    Blank,
    /// A `data` field's value.
    Data(&'l [u8]),
    /// Anything else (comments, `event`, `id`, unknown fields), already taken into account.
    Other,
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

    /// The block and word search finds what a byte-wise one finds, at every offset and length
    /// (past two 64-byte blocks), with other bytes below 14 (tab, form feed) that only look like
    /// line ends to the block test, and bytes with the high bit set; so does the portable search,
    /// and appending appends exactly the inputs that end no line.
    #[test]
    fn find_eol_matches_a_bytewise_search() {
        let mut buf = [b'a'; 150];
        for len in 0..buf.len() {
            for at in 0..=len {
                for (c, other) in [
                    (b'\n', 0x8a),
                    (b'\r', b'\t'),
                    (b'\n', b'\x0c'),
                    (b'\r', b'a'),
                ] {
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
                    if len >= 8 {
                        assert_eq!(find_eol_portable(s), want, "portable {s:?}");
                    }
                    // Appended after a line of any length, with and without spare capacity.
                    for (prefix, spare) in [(0, 0), (5, 200), (37, 0)] {
                        let mut line = vec![b'p'; prefix];
                        line.reserve_exact(spare);
                        assert_eq!(append_unless_eol(&mut line, s), want, "{s:?}");
                        let mut expect = vec![b'p'; prefix];
                        if want.is_none() {
                            expect.extend_from_slice(s);
                        }
                        assert_eq!(line, expect, "{s:?}");
                    }
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

    /// Random streams of every kind of line, cut at random points and fed the way the exchange
    /// feeds them (`absorb` first, then `feed_from` or `feed` when it declines): the same events
    /// and the same error as one whole feed, and never more state than the limit.
    #[test]
    fn absorb_then_feed_matches_a_whole_feed() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let lines: [&[u8]; 12] = [
            b"data: {\"a\":1}",
            b"data:x",
            b"data",
            b"event: e",
            b"event:\xff",
            b": keep-alive",
            b"id: 3",
            b"",
            b"",
            b"data: a long line of text that goes past one sixty-four byte block of the search, \t tab",
            b"retry: 5",
            b"data: \xc3\xa9",
        ];
        let ends: [&[u8]; 3] = [b"\n", b"\r\n", b"\r"];
        let mut rng = StdRng::seed_from_u64(13);
        for round in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..rng.gen_range(0..16) {
                input.extend_from_slice(lines[rng.gen_range(0..lines.len())]);
                input.extend_from_slice(ends[rng.gen_range(0..ends.len())]);
            }
            if rng.gen_bool(0.3) {
                input.extend_from_slice(b"data: tail");
            }
            let limit = if round % 3 == 0 {
                rng.gen_range(0..200)
            } else {
                1 << 20
            };
            let whole = outcome(&input, &[], limit);
            let mut p = SseParser::new(limit);
            let mut events = Vec::new();
            let mut push = |e: SseEvent<'_>| -> Result<(), E> {
                events.push((e.event.to_string(), e.data.to_vec()));
                Ok(())
            };
            let mut failed = false;
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = match rng.gen_range(0..4) {
                    0 => 1,
                    1 => rng.gen_range(1..8),
                    2 => rng.gen_range(1..70),
                    _ => rng.gen_range(1..400),
                }
                .min(rest.len());
                let (piece, tail) = rest.split_at(n);
                rest = tail;
                let r = match p.absorb(piece) {
                    Absorb::Taken => Ok(()),
                    Absorb::LineEnd(at) => {
                        assert_eq!(Some(at.0), find_eol(piece));
                        p.feed_from(piece, at, &mut push)
                    }
                    Absorb::Declined => p.feed(piece, &mut push),
                };
                if r.is_err() {
                    failed = true;
                    break;
                }
                assert!(p.buffered_len() <= limit, "state above the limit");
            }
            if !failed {
                failed = p.finish(&mut push).is_err();
            }
            assert_eq!(
                (events, failed),
                whole,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn writers() {
        let mut out = Vec::new();
        write_data(&mut out, &serde_json::json!({"k": "v"}));
        write_done(&mut out);
        assert_eq!(out, b"data: {\"k\":\"v\"}\n\ndata: [DONE]\n\n");
    }
}
