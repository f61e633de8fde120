//! OpenAI Chat Completions ⇄ Responses (spec §8).
//!
//! Requests: system and developer messages become `developer` input messages and `instructions`
//! stays `""`, as the Codex CLI itself sends its prompt (spec §10); user text and images become
//! `input_text` / `input_image`; assistant text becomes an `output_text` message and each tool
//! call a top-level `function_call` item; `tool` messages become `function_call_output` items.
//! For the Codex backend the result then goes through [`crate::translate::responses::shape_for_codex`], so every backend rule
//! holds for it too, and sampling and length parameters the backend refuses are dropped and
//! listed; for any other Responses upstream ([`crate::translate::Backend::Generic`]) they are kept. `n > 1` is
//! refused; stop sequences are applied to the output on the way back (see [`super::stop`]).
//!
//! Responses: [`ChatStream`] turns backend events into `chat.completion.chunk` payloads as they
//! arrive; [`chat_completion_from_response`] turns an aggregated response into one
//! `chat.completion`. Reasoning summaries are returned as `reasoning_content` (the field
//! DeepSeek and several gateways use); raw reasoning text events are not forwarded.
//!
//! The files follow the direction: [`request`] and [`options`] turn a Chat Completions request
//! into a Responses body; [`stream`] turns backend events into chunks as they arrive; [`answer`]
//! turns an aggregated response into one completion.

mod answer;
mod options;
mod request;
mod stream;

use serde_json::{Value, json};

use super::{Finish, UpstreamError, Usage};

pub use answer::chat_completion_from_response;
pub(crate) use answer::summary_texts;
pub use request::{ChatRequest, chat_to_responses, chat_to_responses_for};
pub use stream::ChatStream;

/// The id prefix of chat completions.
pub(crate) const ID_PREFIX: &str = "chatcmpl-";
/// The data line that ends a chat stream.
pub const DONE: &str = "[DONE]";

/// The OpenAI error body for an error: `{"error": {message, type, code, param}}`, plus
/// `resets_at` / `resets_in_seconds` for usage limits.
#[must_use]
pub fn chat_error_body(err: &UpstreamError) -> Value {
    let mut error = json!({
        "message": err.message,
        "type": err.kind,
        "code": err.code,
        "param": err.param,
    });
    if let Value::Object(fields) = &mut error {
        if let Some(at) = err.resets_at {
            fields.insert("resets_at".to_owned(), json!(at));
        }
        if let Some(secs) = err.resets_in_seconds {
            fields.insert("resets_in_seconds".to_owned(), json!(secs));
        }
    }
    json!({"error": error})
}

/// Chat `usage` from Responses usage.
pub(crate) fn chat_usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

/// The chat `finish_reason` for how a response ended.
pub(crate) fn finish_reason(finish: &Finish, made_tool_calls: bool) -> &'static str {
    match finish {
        Finish::Completed if made_tool_calls => "tool_calls",
        Finish::Completed | Finish::StopSequence(_) => "stop",
        Finish::MaxTokens => "length",
        Finish::ContentFilter => "content_filter",
    }
}

#[cfg(test)]
mod tests;
