//! An incremental decoder for `text/event-stream` bodies.
//!
//! Bytes arrive in arbitrary pieces; [`SseDecoder::feed`] buffers them and
//! yields the `data` of each complete event (data lines joined by `\n`).
//! Comments, `event:`, `id:` and `retry:` lines are skipped: the
//! chat-completions stream carries everything in `data`.

/// Most bytes an event may hold before the stream is declared malformed;
/// bounds memory against an upstream that never ends a line.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

/// The upstream sent an event larger than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event is larger than {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and hands each completed event's data to `out`.
    pub fn feed(&mut self, bytes: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let line = &self.buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.has_data {
                    out(&self.data);
                }
                self.data.clear();
                self.has_data = false;
            } else if let Some(value) = line.strip_prefix(b"data:") {
                let value = value.strip_prefix(b" ").unwrap_or(value);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            start = end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(())
    }

    /// Data of an event the stream ended without terminating with a blank
    /// line, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let line = std::mem::take(&mut self.buf);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        self.has_data.then(|| std::mem::take(&mut self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&str]) -> Vec<String> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p.as_bytes(), |e| {
                out.push(String::from_utf8_lossy(e).into_owned())
            })
            .unwrap();
        }
        out.extend(d.finish().map(|e| String::from_utf8_lossy(&e).into_owned()));
        out
    }

    #[test]
    fn events_split_across_pieces_are_reassembled() {
        assert_eq!(
            decode(&["data: {\"a\"", ":1}\n", "\ndata: [DONE]\n\n"]),
            ["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn crlf_comments_and_other_fields_are_handled() {
        assert_eq!(
            decode(&[": ping\r\nevent: x\r\nid: 4\r\ndata:a\r\ndata: b\r\n\r\n"]),
            ["a\nb"]
        );
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        assert_eq!(decode(&["data: x\n\ndata: y"]), ["x", "y"]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut d = SseDecoder::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big, |_| {}), Err(EventTooLarge));
    }
}
