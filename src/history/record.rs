//! What one history row holds: a finished request ([`RequestRecord`]) or an account's quota
//! snapshot ([`QuotaRecord`]), and the token counts of an answer ([`Tokens`]) read from the
//! `usage` object of any of the three APIs into one meaning. Plain data: no prompt or answer
//! text and no credential ever has a field here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jsonscan;

/// Token counts of one answer, as the upstream reported them, in one meaning for all APIs:
/// `input` counts every input token (cached ones included), `cached` the part served from the
/// prompt cache, `output` every output token (reasoning included), `reasoning` that part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Input tokens, cached ones included.
    pub input: Option<u64>,
    /// Input tokens read from the prompt cache.
    pub cached: Option<u64>,
    /// Output tokens, reasoning included.
    pub output: Option<u64>,
    /// Output tokens spent on reasoning.
    pub reasoning: Option<u64>,
}

impl Tokens {
    /// Reads a `usage` object: Responses (`input_tokens`, `input_tokens_details.cached_tokens`,
    /// `output_tokens_details.reasoning_tokens`), Chat Completions (`prompt_tokens`,
    /// `prompt_tokens_details.cached_tokens`, `completion_tokens`, …) or Anthropic Messages
    /// (`input_tokens` plus `cache_read_input_tokens` and `cache_creation_input_tokens`, which
    /// Anthropic counts apart from `input_tokens`). `None` when it holds no count at all.
    #[must_use]
    pub fn from_usage(usage: &Value) -> Option<Tokens> {
        Usage::deserialize(usage)
            .unwrap_or_else(|_| Usage::lenient(usage))
            .tokens()
    }

    /// [`Tokens::from_usage`] on a `usage` object's JSON text, read straight into the few
    /// counts (the hot path builds no JSON tree for it unless a count is not a plain number).
    #[must_use]
    pub fn from_usage_raw(usage: &[u8]) -> Option<Tokens> {
        Tokens::from_usage_at(usage, 0).0
    }

    /// [`Tokens::from_usage_raw`] on the `usage` value that starts at `at` in `s` (whitespace
    /// first allowed), with where that value ends (`None` when it is malformed): a caller
    /// walking the enclosing object reads the value once, not once to find its end and again
    /// for its counts.
    #[must_use]
    pub fn from_usage_at(s: &[u8], at: usize) -> (Option<Tokens>, Option<usize>) {
        if let Some((usage, end)) = Usage::scan(&s[at.min(s.len())..]) {
            return (usage.tokens(), Some(at + end));
        }
        // Not an object, or a count that is not a plain number: read as a tree.
        let Some(range) = jsonscan::value_at(s, at) else {
            return (None, None);
        };
        let tokens = serde_json::from_slice(&s[range.clone()])
            .ok()
            .and_then(|usage| Tokens::from_usage(&usage));
        (tokens, Some(range.end))
    }

    /// These counts, with each one `later` reports taking its place (an Anthropic stream gives
    /// input in `message_start` and the final output in `message_delta`).
    #[must_use]
    pub fn merge(self, later: Tokens) -> Tokens {
        Tokens {
            input: later.input.or(self.input),
            cached: later.cached.or(self.cached),
            output: later.output.or(self.output),
            reasoning: later.reasoning.or(self.reasoning),
        }
    }
}

/// The counts a `usage` object may hold, by the names the three APIs give them (other names
/// are ignored).
#[derive(Default, Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    input_tokens_details: Option<Details>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<Details>,
    prompt_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens: Option<u64>,
    completion_tokens_details: Option<Details>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

/// The `*_tokens_details` objects.
#[derive(Default, Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl Details {
    /// A details value read in place, with where it ends (in `raw`, which it starts after
    /// `at` and whitespace): `None` inside for `null` or another non-object (which holds no
    /// count), `None` when it is malformed.
    fn scan(raw: &[u8], at: usize) -> Option<(Option<Details>, usize)> {
        let start = jsonscan::skip_space(raw, at);
        if raw.get(start) != Some(&b'{') {
            return Some((None, jsonscan::value_at(raw, start)?.end));
        }
        let object = &raw[start..];
        let mut entries = jsonscan::entries(object)?;
        let mut details = Details::default();
        while let Some(entry) = entries.next_key() {
            let (key, at) = entry.ok()?;
            let (count, end) = jsonscan::unsigned_at(object, at)?;
            match &*jsonscan::key_bytes(key)? {
                b"cached_tokens" => details.cached_tokens = count,
                b"reasoning_tokens" => details.reasoning_tokens = count,
                _ => {}
            }
            entries.resume_at(end);
        }
        Some((Some(details), start + entries.end()?))
    }
}

impl Usage {
    /// The counts read in place ([`jsonscan`]) in one walk, a later entry of a name taking the
    /// place of an earlier one, and where the object ends; `None` when `raw` is not an object
    /// or is malformed (the caller then reads it as a tree).
    fn scan(raw: &[u8]) -> Option<(Usage, usize)> {
        /// Where an entry's value goes.
        enum Slot<'a> {
            Count(&'a mut Option<u64>),
            Details(&'a mut Option<Details>),
            Other,
        }
        let mut usage = Usage::default();
        let mut entries = jsonscan::entries(raw)?;
        while let Some(entry) = entries.next_key() {
            let (key, at) = entry.ok()?;
            let slot = match &*jsonscan::key_bytes(key)? {
                b"input_tokens" => Slot::Count(&mut usage.input_tokens),
                b"output_tokens" => Slot::Count(&mut usage.output_tokens),
                b"prompt_tokens" => Slot::Count(&mut usage.prompt_tokens),
                b"completion_tokens" => Slot::Count(&mut usage.completion_tokens),
                b"cache_read_input_tokens" => Slot::Count(&mut usage.cache_read_input_tokens),
                b"cache_creation_input_tokens" => {
                    Slot::Count(&mut usage.cache_creation_input_tokens)
                }
                b"input_tokens_details" => Slot::Details(&mut usage.input_tokens_details),
                b"output_tokens_details" => Slot::Details(&mut usage.output_tokens_details),
                b"prompt_tokens_details" => Slot::Details(&mut usage.prompt_tokens_details),
                b"completion_tokens_details" => Slot::Details(&mut usage.completion_tokens_details),
                _ => Slot::Other,
            };
            let end = match slot {
                Slot::Details(details) => {
                    let (value, end) = Details::scan(raw, at)?;
                    *details = value;
                    end
                }
                Slot::Count(count) => {
                    let (value, end) = jsonscan::unsigned_at(raw, at)?;
                    *count = value;
                    end
                }
                Slot::Other => jsonscan::value_at(raw, at)?.end,
            };
            entries.resume_at(end);
        }
        Some((usage, entries.end()?))
    }

    /// The counts that are whole numbers, when some other value is not (e.g. a count that is
    /// a string): each read on its own.
    fn lenient(usage: &Value) -> Usage {
        let count = |name: &str| usage.get(name).and_then(Value::as_u64);
        let details = |name: &str| {
            usage.get(name).map(|d| Details {
                cached_tokens: d.get("cached_tokens").and_then(Value::as_u64),
                reasoning_tokens: d.get("reasoning_tokens").and_then(Value::as_u64),
            })
        };
        Usage {
            input_tokens: count("input_tokens"),
            input_tokens_details: details("input_tokens_details"),
            output_tokens: count("output_tokens"),
            output_tokens_details: details("output_tokens_details"),
            prompt_tokens: count("prompt_tokens"),
            prompt_tokens_details: details("prompt_tokens_details"),
            completion_tokens: count("completion_tokens"),
            completion_tokens_details: details("completion_tokens_details"),
            cache_read_input_tokens: count("cache_read_input_tokens"),
            cache_creation_input_tokens: count("cache_creation_input_tokens"),
        }
    }

    /// The counts in one meaning (see [`Tokens`]), by which API's names are present.
    fn tokens(self) -> Option<Tokens> {
        let cached = |d: Option<Details>| d.and_then(|d| d.cached_tokens);
        let reasoning = |d: Option<Details>| d.and_then(|d| d.reasoning_tokens);
        let (cache_read, cache_write) = (
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
        );
        let tokens = if cache_read.is_some() || cache_write.is_some() {
            Tokens {
                input: self
                    .input_tokens
                    .map(|i| i + cache_read.unwrap_or(0) + cache_write.unwrap_or(0)),
                cached: cache_read,
                output: self.output_tokens,
                reasoning: None,
            }
        } else if self.prompt_tokens.is_some() || self.completion_tokens.is_some() {
            Tokens {
                input: self.prompt_tokens,
                cached: cached(self.prompt_tokens_details),
                output: self.completion_tokens,
                reasoning: reasoning(self.completion_tokens_details),
            }
        } else {
            Tokens {
                input: self.input_tokens,
                cached: cached(self.input_tokens_details),
                output: self.output_tokens,
                reasoning: reasoning(self.output_tokens_details),
            }
        };
        (tokens != Tokens::default()).then_some(tokens)
    }
}

/// One finished request to a proxy endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    /// When it arrived, unix milliseconds.
    pub at_ms: i64,
    /// The client's `User-Agent`, if it sent one (shared: one client sends the same one with
    /// every request).
    pub user_agent: Option<Arc<str>>,
    /// The client's `originator` header (the Codex CLI sends one), if any.
    pub originator: Option<Arc<str>>,
    /// The local route, e.g. `/v1/chat/completions`.
    pub endpoint: &'static str,
    /// The model the client asked for.
    pub model_asked: Option<String>,
    /// The provider that served it (or was tried last).
    pub provider: Option<Arc<str>>,
    /// The upstream model.
    pub model: Option<Arc<str>>,
    /// The account label (or `config`, `client`, `none`).
    pub account: Option<Arc<str>>,
    /// Upstream requests sent.
    pub tries: u32,
    /// Times another account or route entry took over after a failure.
    pub failovers: u32,
    /// The HTTP status the client got.
    pub status: u16,
    /// The error code, when the answer failed (also midway through a stream).
    pub error_code: Option<String>,
    /// The error message the client got.
    pub error_message: Option<String>,
    /// Milliseconds until the first byte of the answer's body went out.
    pub ttfb_ms: Option<u64>,
    /// Milliseconds until the answer's body ended.
    pub duration_ms: u64,
    /// Token counts the upstream reported.
    pub tokens: Tokens,
    /// Whether the answer was a stream.
    pub streamed: bool,
}

/// One rate-limit window of a quota snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QuotaWindow {
    /// Percent of the window used.
    pub used_percent: Option<f64>,
    /// The window's length in minutes (300 = 5 h, 10080 = a week).
    pub window_minutes: Option<i64>,
    /// When it resets, unix seconds.
    pub reset_at: Option<i64>,
}

/// An account's quota as one answer or the usage endpoint reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuotaRecord {
    /// When it was read, unix milliseconds.
    pub at_ms: i64,
    /// The provider.
    pub provider: String,
    /// The account label.
    pub account: String,
    /// Where it came from: `headers` or `usage_endpoint`.
    pub source: String,
    /// The plan, when reported.
    pub plan: Option<String>,
    /// The primary (5-hour) window.
    pub primary: Option<QuotaWindow>,
    /// The secondary (weekly) window.
    pub secondary: Option<QuotaWindow>,
}

impl QuotaRecord {
    /// Whether `other` reports the same quota (time and source aside).
    #[must_use]
    pub fn same_quota(&self, other: &QuotaRecord) -> bool {
        self.plan == other.plan
            && self.primary == other.primary
            && self.secondary == other.secondary
    }
}

/// For tests: a request `agent` sent at `at_ms` for `model`, served as asked by the `work`
/// account of `openai-codex` with a 200.
#[cfg(test)]
pub(crate) fn served(at_ms: i64, agent: &str, model: &str) -> RequestRecord {
    RequestRecord {
        at_ms,
        user_agent: Some(agent.into()),
        endpoint: "/v1/responses",
        model_asked: Some(model.into()),
        provider: Some("openai-codex".into()),
        model: Some(model.into()),
        account: Some("work".into()),
        status: 200,
        ..RequestRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn responses_usage() {
        let t = Tokens::from_usage(
            &json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 80},
            "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 120}),
        );
        assert_eq!(
            t,
            Some(Tokens {
                input: Some(100),
                cached: Some(80),
                output: Some(20),
                reasoning: Some(12)
            })
        );
    }

    #[test]
    fn chat_usage() {
        let t = Tokens::from_usage(&json!({"prompt_tokens": 11, "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}));
        assert_eq!(
            t,
            Some(Tokens {
                input: Some(11),
                cached: Some(3),
                output: Some(7),
                reasoning: Some(2)
            })
        );
    }

    #[test]
    fn anthropic_usage_counts_cache_reads_and_writes_as_input() {
        let t = Tokens::from_usage(&json!({"input_tokens": 5, "cache_read_input_tokens": 90,
            "cache_creation_input_tokens": 10, "output_tokens": 4}));
        assert_eq!(
            t,
            Some(Tokens {
                input: Some(105),
                cached: Some(90),
                output: Some(4),
                reasoning: None
            })
        );
    }

    #[test]
    fn raw_text_reads_as_the_tree_does() {
        for raw in [
            r#"{"input_tokens": 100, "input_tokens_details": {"cached_tokens": 80},
                "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12}}"#,
            r#"{"prompt_tokens":11,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":3}}"#,
            r#"{"input_tokens":5,"cache_read_input_tokens":90,"output_tokens":4}"#,
            r#"{"output_tokens":7}"#,
            r#"{"total_tokens":7}"#,
            r#"{"input_\u0074okens":9,"output_tokens":{"nested":1}}"#,
            r#""not an object""#,
            r#"{"input_tokens":1,"input_tokens":2}"#,
            r#"{"input_tokens_details":null,"input_tokens":3}"#,
            r#"{ "input_tokens_details" : 5 , "input_tokens" : 3 , "x" : [1, {"y": "}"}] }"#,
            r#"{"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}"#,
            r#"{"input_tokens":12.5,"output_tokens":1e3,"cache_read_input_tokens":-1}"#,
            r#"{"input_tokens_details" : { "cached_tokens" : 4 , "x" : [1] } ,"input_tokens":9 }"#,
            r#"{"output_tokens_details":{"reasoning_tokens":"2"},"output_tokens":18446744073709551616}"#,
        ] {
            let tree: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(
                Tokens::from_usage_raw(raw.as_bytes()),
                Tokens::from_usage(&tree),
                "{raw}"
            );
        }
        // A count that is not a whole number is left out; the others are kept.
        assert_eq!(
            Tokens::from_usage_raw(br#"{"input_tokens":"12","output_tokens":3}"#),
            Some(Tokens {
                output: Some(3),
                ..Tokens::default()
            })
        );
        // The escaped key is read as the name it stands for.
        assert_eq!(
            Tokens::from_usage_raw(br#"{"input_\u0074okens":9}"#).and_then(|t| t.input),
            Some(9)
        );
    }

    #[test]
    fn usage_read_where_it_stands_says_where_it_ends() {
        let s = br#"{"usage" : {"input_tokens": 3, "output_tokens_details": {"reasoning_tokens": 1}} , "id": 1}"#;
        let at = s.iter().position(|&b| b == b':').unwrap() + 1;
        let (tokens, end) = Tokens::from_usage_at(s, at);
        assert_eq!(
            tokens,
            Some(Tokens {
                input: Some(3),
                reasoning: Some(1),
                ..Tokens::default()
            })
        );
        assert_eq!(&s[end.unwrap()..], br#" , "id": 1}"#);
        // A value that is not an object holds no counts, and still has an end.
        let s = br#"{"usage":null,"id":1}"#;
        assert_eq!(Tokens::from_usage_at(s, 9), (None, Some(13)));
        // A cut-off value has none.
        assert_eq!(
            Tokens::from_usage_at(br#"{"usage":{"input_tokens":"#, 9),
            (None, None)
        );
    }

    #[test]
    fn empty_usage_is_none_and_merge_prefers_later_counts() {
        assert_eq!(Tokens::from_usage(&json!({})), None);
        assert_eq!(Tokens::from_usage(&json!(null)), None);
        let start = Tokens::from_usage(&json!({"input_tokens": 11, "output_tokens": 1})).unwrap();
        let end = Tokens::from_usage(&json!({"output_tokens": 7})).unwrap();
        assert_eq!(
            start.merge(end),
            Tokens {
                input: Some(11),
                cached: None,
                output: Some(7),
                reasoning: None
            }
        );
    }
}
