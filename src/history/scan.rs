//! Token counts from an answer that is passed on untouched (a provider that speaks the client's
//! own API): [`UsageScan`] watches the bytes go by without holding them. For an event stream it
//! keeps only the unfinished last line and parses just the `data:` lines that mention
//! `"usage"` (Chat Completions' last chunk, Anthropic's `message_start` and `message_delta`,
//! Responses' final event); for a JSON answer it keeps the body up to [`MAX_JSON`] and reads
//! its `usage` at the end. Both are read in place ([`jsonscan`]), without building JSON trees.

use super::record::Tokens;
use crate::jsonscan;

/// The largest JSON answer read for its usage.
pub const MAX_JSON: usize = 4 * 1024 * 1024;
/// The longest event-stream line kept while it is unfinished.
const MAX_LINE: usize = 1024 * 1024;

/// Watches an answer's bytes for its token usage.
#[derive(Debug)]
pub struct UsageScan {
    sse: bool,
    /// The unfinished line (event stream) or the body so far (JSON).
    buffer: Vec<u8>,
    /// The buffer outgrew its limit: this answer's usage is not read.
    given_up: bool,
    tokens: Option<Tokens>,
}

impl UsageScan {
    /// A scan of an event stream (`sse`) or of a JSON body.
    #[must_use]
    pub fn new(sse: bool) -> UsageScan {
        UsageScan {
            sse,
            buffer: Vec::new(),
            given_up: false,
            tokens: None,
        }
    }

    /// Looks at the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.given_up {
            return;
        }
        if !self.sse {
            if self.buffer.len() + chunk.len() > MAX_JSON {
                self.give_up();
            } else {
                self.buffer.extend_from_slice(chunk);
            }
            return;
        }
        let mut rest = chunk;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(at);
            rest = &tail[1..];
            if self.buffer.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.buffer);
                whole.extend_from_slice(line);
                self.line(&whole);
            }
        }
        if self.buffer.len() + rest.len() > MAX_LINE {
            self.buffer.clear();
        } else {
            self.buffer.extend_from_slice(rest);
        }
    }

    /// The counts the answer reported, once it has ended.
    #[must_use]
    pub fn finish(mut self) -> Option<Tokens> {
        if self.given_up {
            return None;
        }
        let rest = std::mem::take(&mut self.buffer);
        if self.sse {
            self.line(&rest);
        } else {
            self.note(rest.trim_ascii());
        }
        self.tokens
    }

    fn give_up(&mut self) {
        self.given_up = true;
        self.buffer = Vec::new();
    }

    /// One event-stream line.
    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if memchr::memmem::find(data, b"\"usage\"").is_none() {
            return;
        }
        self.note(data.trim_ascii());
    }

    /// The usage an event or a body (JSON text) carries, at any of the places the APIs put it
    /// (`usage`, `message.usage`, `response.usage`, the first that is an object), its top level
    /// read once for all three.
    fn note(&mut self, value: &[u8]) {
        let [usage, message, response] =
            jsonscan::field_ranges(value, ["usage", "message", "response"]);
        let inner = |range: Option<std::ops::Range<usize>>| {
            range.and_then(|r| jsonscan::field(&value[r], "usage"))
        };
        let usage = [usage.map(|r| &value[r]), inner(message), inner(response)]
            .into_iter()
            .flatten()
            .find(|u| u.starts_with(b"{"));
        if let Some(tokens) = usage.and_then(Tokens::from_usage_raw) {
            self.tokens = Some(self.tokens.unwrap_or_default().merge(tokens));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(sse: bool, body: &str, split: usize) -> Option<Tokens> {
        let mut scan = UsageScan::new(sse);
        for chunk in body.as_bytes().chunks(split) {
            scan.feed(chunk);
        }
        scan.finish()
    }

    #[test]
    fn chat_stream_usage_in_the_last_chunk_at_any_split() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"the usage of words\"}}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n\
            data: [DONE]\n\n";
        for split in [1, 2, 3, 7, 50, body.len()] {
            assert_eq!(
                scan(true, body, split),
                Some(Tokens {
                    input: Some(11),
                    cached: Some(4),
                    output: Some(7),
                    reasoning: None
                }),
                "split {split}"
            );
        }
    }

    #[test]
    fn anthropic_stream_merges_start_and_delta() {
        let body = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n\
            event: message_delta\r\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\r\n\r\n";
        assert_eq!(
            scan(true, body, 9),
            Some(Tokens {
                input: Some(16),
                cached: Some(5),
                output: Some(7),
                reasoning: None
            })
        );
    }

    #[test]
    fn json_answers_and_their_limits() {
        let body = r#"{"id":"x","usage":{"input_tokens":3,"output_tokens":5}}"#;
        assert_eq!(scan(false, body, 4).and_then(|t| t.output), Some(5));
        assert_eq!(scan(false, "not json", 4), None);
        assert_eq!(scan(true, "data: {\"no\":1}\n\n", 4), None);
        let mut big = UsageScan::new(false);
        big.feed(&vec![b' '; MAX_JSON]);
        big.feed(body.as_bytes());
        assert_eq!(big.finish(), None);
    }
}
