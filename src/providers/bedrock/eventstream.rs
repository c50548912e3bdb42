//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) of ConverseStream,
//! decoded incrementally.
//!
//! Facts used (AWS docs "Event stream encoding", e.g. the Transcribe streaming and S3 Select
//! pages, and the smithy event-stream spec): each message is a 12-byte prelude (total length,
//! headers length, CRC32 of the first 8 bytes; big-endian u32s), the headers, the payload, and a
//! CRC32 of everything before it. A header is a 1-byte name length, the name, a 1-byte value
//! type and the value: 0/1 bool (no bytes), 2 byte, 3 i16, 4 i32, 5 i64, 6 bytes and 7 string
//! (u16 length first), 8 timestamp (i64), 9 UUID (16 bytes). Bedrock sets `:message-type`
//! (`event` or `exception`), `:event-type` / `:exception-type` and `:content-type`.

use crate::error::ProxyError;

/// Largest message we accept: AWS caps event-stream messages at 16 MiB.
pub const MAX_MESSAGE: usize = 16 << 20;
const PRELUDE: usize = 12;
/// Prelude plus the trailing message CRC.
const OVERHEAD: usize = PRELUDE + 4;

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// One decoded message: the headers Bedrock's stream uses, and the payload.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message<'a> {
    pub message_type: &'a str,
    pub event_type: &'a str,
    pub exception_type: &'a str,
    pub payload: &'a [u8],
}

/// Incremental decoder: holds at most one partial message (bounded by [`MAX_MESSAGE`]).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn bad(msg: &str) -> ProxyError {
    ProxyError::bad_upstream(format!("malformed AWS event stream: {msg}"))
}

impl Decoder {
    /// Feeds a chunk (split anywhere) and calls `on_message` for every complete message.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        on_message: &mut dyn FnMut(Message<'_>) -> Result<(), ProxyError>,
    ) -> Result<(), ProxyError> {
        // Whole messages straight from the chunk when nothing is pending (no copy).
        let mut rest = chunk;
        if self.buf.is_empty() {
            let used = decode_all(rest, on_message)?;
            rest = &rest[used..];
            if rest.is_empty() {
                return Ok(());
            }
            check_prelude(rest)?;
            self.buf.extend_from_slice(rest);
            return Ok(());
        }
        self.buf.extend_from_slice(rest);
        check_prelude(&self.buf)?;
        let used = decode_all(&self.buf, on_message)?;
        self.buf.drain(..used);
        check_prelude(&self.buf)?;
        Ok(())
    }

    /// Bytes of a partial message at the end of the stream.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Validates the prelude of a (partial) message as soon as it is complete, so a bad length is
/// refused before anything is buffered for it.
fn check_prelude(b: &[u8]) -> Result<(), ProxyError> {
    if b.len() < PRELUDE {
        return Ok(());
    }
    let total = be32(b) as usize;
    let headers = be32(&b[4..]) as usize;
    if crc32(&b[..8]) != be32(&b[8..]) {
        return Err(bad("prelude CRC mismatch"));
    }
    if !(OVERHEAD..=MAX_MESSAGE).contains(&total) || headers > total - OVERHEAD {
        return Err(bad("impossible message length"));
    }
    Ok(())
}

/// Decodes every complete message at the start of `b`; returns the bytes used.
fn decode_all(
    b: &[u8],
    on_message: &mut dyn FnMut(Message<'_>) -> Result<(), ProxyError>,
) -> Result<usize, ProxyError> {
    let mut at = 0;
    loop {
        let m = &b[at..];
        if m.len() < PRELUDE {
            return Ok(at);
        }
        check_prelude(m)?;
        let total = be32(m) as usize;
        if m.len() < total {
            return Ok(at);
        }
        let m = &m[..total];
        if crc32(&m[..total - 4]) != be32(&m[total - 4..]) {
            return Err(bad("message CRC mismatch"));
        }
        let hlen = be32(&m[4..]) as usize;
        let mut msg = parse_headers(&m[PRELUDE..PRELUDE + hlen])?;
        msg.payload = &m[PRELUDE + hlen..total - 4];
        on_message(msg)?;
        at += total;
    }
}

fn parse_headers(mut h: &[u8]) -> Result<Message<'_>, ProxyError> {
    let mut msg = Message::default();
    let short = || bad("truncated header");
    while !h.is_empty() {
        let nlen = h[0] as usize;
        let name = h.get(1..1 + nlen).ok_or_else(short)?;
        let kind = *h.get(1 + nlen).ok_or_else(short)?;
        h = &h[2 + nlen..];
        let fixed = match kind {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            _ => return Err(bad("unknown header value type")),
        };
        let value = match fixed {
            Some(n) => {
                let v = h.get(..n).ok_or_else(short)?;
                h = &h[n..];
                v
            }
            None => {
                let len = h.get(..2).ok_or_else(short)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let v = h.get(2..2 + len).ok_or_else(short)?;
                h = &h[2 + len..];
                v
            }
        };
        if kind == 7 {
            let s = std::str::from_utf8(value).map_err(|_| bad("header is not UTF-8"))?;
            match name {
                b":message-type" => msg.message_type = s,
                b":event-type" => msg.event_type = s,
                b":exception-type" => msg.exception_type = s,
                _ => {}
            }
        }
    }
    Ok(msg)
}

/// Encodes one message with string headers (the mock upstream and tests).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hb = Vec::new();
    for (k, v) in headers {
        hb.push(k.len() as u8);
        hb.extend_from_slice(k.as_bytes());
        hb.push(7);
        hb.extend_from_slice(&(v.len() as u16).to_be_bytes());
        hb.extend_from_slice(v.as_bytes());
    }
    let total = OVERHEAD + hb.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hb.len() as u32).to_be_bytes());
    let pc = crc32(&out);
    out.extend_from_slice(&pc.to_be_bytes());
    out.extend_from_slice(&hb);
    out.extend_from_slice(payload);
    let mc = crc32(&out);
    out.extend_from_slice(&mc.to_be_bytes());
    out
}

/// An event message as Bedrock sends it.
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}
