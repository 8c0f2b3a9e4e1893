//! An incremental decoder for `text/event-stream` bodies.
//!
//! Bytes arrive in arbitrary pieces; [`SseDecoder::feed`] yields the `data`
//! of each complete event (data lines joined by `\n`). Comments, `event:`,
//! `id:` and `retry:` lines are skipped: the chat-completions stream carries
//! everything in `data`.
//!
//! The decoder is linear in the bytes it is fed: every byte is examined once
//! and copied at most twice (into the partial-line buffer when a line spans
//! pieces, then into the event's data), whatever the size of the pieces or
//! the lengths of the lines. An event may hold at most [`MAX_EVENT_BYTES`],
//! so an upstream that never ends a line or an event cannot grow memory
//! without bound.
//!
//! Lines end with `\r\n`, `\n` or `\r` (a `\r` at the end of one piece
//! followed by `\n` at the start of the next is one line end), as the
//! `text/event-stream` grammar says; a leading byte-order mark is ignored.

/// Most bytes an event may hold before the stream is declared malformed;
/// bounds memory against an upstream that never ends a line.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a `text/event-stream` body piece by piece.
#[derive(Debug)]
pub struct SseDecoder {
    /// The start of a line whose end has not arrived yet.
    partial_line: Vec<u8>,
    event: EventBuilder,
    /// The last piece ended with `\r`: a `\n` opening the next piece belongs
    /// to that line end.
    after_cr: bool,
    /// The first line is still to come (it may start with a byte-order mark).
    at_stream_start: bool,
    /// The most bytes an event may hold; [`MAX_EVENT_BYTES`] but in tests.
    max_event_bytes: usize,
    #[cfg(test)]
    counters: Counters,
}

/// What the decoder did, so tests can show it stays linear.
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    /// Bytes examined while looking for line ends.
    bytes_scanned: usize,
    /// Bytes copied into the partial-line buffer.
    bytes_buffered: usize,
}

/// The event being read: its data lines so far.
#[derive(Debug, Default)]
struct EventBuilder {
    data: Vec<u8>,
    /// A `data` field was seen (its value may be empty).
    has_data: bool,
}

/// The upstream sent an event larger than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event is larger than {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder whose events may hold at most `max_event_bytes`.
    pub(crate) fn with_limit(max_event_bytes: usize) -> Self {
        Self {
            partial_line: Vec::new(),
            event: EventBuilder::default(),
            after_cr: false,
            at_stream_start: true,
            max_event_bytes,
            #[cfg(test)]
            counters: Counters::default(),
        }
    }

    /// Adds bytes and hands each completed event's data to `out`.
    pub fn feed(&mut self, bytes: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), EventTooLarge> {
        let mut rest = bytes;
        // An empty piece says nothing about a pending `\r\n`.
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        // Only the new bytes are searched: the partial line was searched
        // when it arrived.
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            #[cfg(test)]
            {
                self.counters.bytes_scanned += end + 1;
            }
            let (line_tail, after) = rest.split_at(end);
            let terminator = after[0];
            rest = &after[1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial_line.is_empty() {
                self.line(line_tail, &mut out)?;
            } else {
                self.buffer(line_tail)?;
                let line = std::mem::take(&mut self.partial_line);
                let result = self.line(&line, &mut out);
                // The buffer is kept, so a stream of long lines allocates once.
                self.partial_line = line;
                self.partial_line.clear();
                result?;
            }
        }
        #[cfg(test)]
        {
            self.counters.bytes_scanned += rest.len();
        }
        self.buffer(rest)
    }

    /// Data of an event the stream ended without terminating with a blank
    /// line, if any: the last line is read even without its line end.
    pub fn finish(&mut self) -> Result<Option<Vec<u8>>, EventTooLarge> {
        let line = std::mem::take(&mut self.partial_line);
        // No partial line is not a blank line: it must not end the event.
        if !line.is_empty() {
            self.line(&line, &mut |_| {})?;
        }
        let event = std::mem::take(&mut self.event);
        Ok(event.has_data.then_some(event.data))
    }

    /// Keeps the start of a line until its end arrives.
    fn buffer(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.partial_line.len() + bytes.len() + self.event.data.len() > self.max_event_bytes {
            return Err(EventTooLarge);
        }
        #[cfg(test)]
        {
            self.counters.bytes_buffered += bytes.len();
        }
        self.partial_line.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets one complete line (without its line end).
    fn line(&mut self, line: &[u8], out: &mut impl FnMut(&[u8])) -> Result<(), EventTooLarge> {
        let mut line = line;
        if std::mem::take(&mut self.at_stream_start) {
            line = line.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line);
        }
        if line.is_empty() {
            let event = &mut self.event;
            if event.has_data {
                out(&event.data);
            }
            event.data.clear();
            event.has_data = false;
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            // A comment (`: ping`), kept alive by some servers.
            Some(0) => return Ok(()),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return Ok(());
        }
        let event = &mut self.event;
        let separator = usize::from(event.has_data);
        if event.data.len() + separator + value.len() > self.max_event_bytes {
            return Err(EventTooLarge);
        }
        if event.has_data {
            event.data.push(b'\n');
        }
        event.data.extend_from_slice(value);
        event.has_data = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_with(d: &mut SseDecoder, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, |e| out.push(e.to_vec())).unwrap();
        }
        out.extend(d.finish().unwrap());
        out
    }

    fn decode(pieces: &[&str]) -> Vec<String> {
        let pieces: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        decode_with(&mut SseDecoder::new(), &pieces)
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect()
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
    fn a_lone_cr_ends_a_line_and_a_crlf_split_across_pieces_is_one_line_end() {
        assert_eq!(decode(&["data: a\r\rdata: b\r", "\n\r", "\n"]), ["a", "b"]);
        // The `\r` ending the blank line, then a `\n`: one line end, not two
        // blank lines, so the second event is not cut short.
        assert_eq!(decode(&["data: a\r\r", "\ndata: b\n\n"]), ["a", "b"]);
        // An empty piece between the `\r` and the `\n` changes nothing
        // (a case proptest found).
        assert_eq!(decode(&["data: a\r", "", "\ndata: b\n\n"]), ["a\nb"]);
    }

    #[test]
    fn a_data_field_without_colon_or_value_is_an_empty_line_of_data() {
        assert_eq!(decode(&["data\ndata:\ndata: x\n\n"]), ["\n\nx"]);
        assert_eq!(decode(&["data:\n\n"]), [""]);
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        assert_eq!(decode(&["event: ping\n\n: c\n\n\n\ndata: x\n\n"]), ["x"]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        assert_eq!(decode(&["\u{FEFF}data: x\n\n"]), ["x"]);
        let mut d = SseDecoder::new();
        let events = decode_with(&mut d, &[b"\xEF", b"\xBB\xBFdata: x\n\n"]);
        assert_eq!(events, [b"x".to_vec()]);
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        assert_eq!(decode(&["data: x\n\ndata: y"]), ["x", "y"]);
        assert_eq!(decode(&["data: x\n\ndata: y\n"]), ["x", "y"]);
        assert_eq!(decode(&["data: x\n\n: only a comment"]), ["x"]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut d = SseDecoder::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big, |_| {}), Err(EventTooLarge));
    }

    #[test]
    fn an_event_of_many_lines_is_bounded_as_a_whole() {
        let mut d = SseDecoder::with_limit(64);
        let line = format!("data: {}\n", "x".repeat(20));
        let mut result = Ok(());
        for _ in 0..4 {
            result = result.and_then(|()| d.feed(line.as_bytes(), |_| {}));
        }
        assert_eq!(result, Err(EventTooLarge));
        // Each event under the limit is fine, however many there are.
        let mut d = SseDecoder::with_limit(64);
        let mut count = 0;
        for _ in 0..100 {
            d.feed(line.as_bytes(), |_| {}).unwrap();
            d.feed(b"\n", |_| count += 1).unwrap();
        }
        assert_eq!(count, 100);
    }

    #[test]
    fn a_one_megabyte_line_decodes_in_linear_work() {
        let payload = "y".repeat(1024 * 1024);
        let body = format!("data: {payload}\n\n");
        for piece_len in [1, 7, 1024, 64 * 1024] {
            let mut d = SseDecoder::new();
            let pieces: Vec<&[u8]> = body.as_bytes().chunks(piece_len).collect();
            let events = decode_with(&mut d, &pieces);
            assert_eq!(events.len(), 1);
            assert!(events[0] == payload.as_bytes(), "payload intact");
            // Each byte is examined once and buffered at most once; a
            // decoder that re-scans its buffer per piece examines ~n²/2k.
            assert_eq!(
                d.counters.bytes_scanned,
                body.len(),
                "pieces of {piece_len}"
            );
            assert!(d.counters.bytes_buffered <= body.len());
        }
    }

    /// One line of an event stream, as a generator builds it.
    #[derive(Debug, Clone)]
    enum Line {
        Data(String),
        Comment(String),
        OtherField(String),
        Blank,
    }

    fn line() -> impl Strategy<Value = Line> {
        // Values may hold colons, spaces and any non-line-end character.
        let value = "[^\r\n]{0,12}";
        prop_oneof![
            4 => value.prop_map(Line::Data),
            1 => value.prop_map(Line::Comment),
            1 => value.prop_map(Line::OtherField),
            2 => Just(Line::Blank),
        ]
    }

    fn line_end() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
    }

    /// The stream's bytes and the events the format says it holds.
    fn stream_and_events(lines: &[(Line, &'static str)]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (mut bytes, mut events) = (Vec::new(), Vec::new());
        // The data of the event being written; `Some` once it has a data
        // line, even an empty one.
        let mut data: Option<Vec<u8>> = None;
        let mut previous_end = "\n";
        for (line, end) in lines {
            let mut end = *end;
            match line {
                Line::Data(v) => {
                    bytes.extend_from_slice(format!("data: {v}").as_bytes());
                    match &mut data {
                        Some(d) => {
                            d.push(b'\n');
                            d.extend_from_slice(v.as_bytes());
                        }
                        None => data = Some(v.as_bytes().to_vec()),
                    }
                }
                Line::Comment(v) => bytes.extend_from_slice(format!(":{v}").as_bytes()),
                Line::OtherField(v) => bytes.extend_from_slice(format!("event:{v}").as_bytes()),
                Line::Blank => {
                    // `\r` then `\n` is one line end, not a blank line.
                    if previous_end == "\r" && end == "\n" {
                        end = "\r\n";
                    }
                    events.extend(data.take());
                }
            }
            bytes.extend_from_slice(end.as_bytes());
            previous_end = end;
        }
        events.extend(data);
        (bytes, events)
    }

    proptest! {
        #[test]
        fn any_chunking_decodes_to_the_events_the_stream_holds(
            lines in proptest::collection::vec((line(), line_end()), 0..40),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let (bytes, expected) = stream_and_events(&lines);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts {
                pieces.push(&bytes[start..cut]);
                start = cut;
            }
            pieces.push(&bytes[start..]);
            let whole = decode_with(&mut SseDecoder::new(), &[&bytes]);
            let chunked = decode_with(&mut SseDecoder::new(), &pieces);
            prop_assert_eq!(&whole, &expected);
            prop_assert_eq!(&chunked, &expected);
        }
    }
}
