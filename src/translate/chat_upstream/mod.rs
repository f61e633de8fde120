//! Responses → Chat Completions, for upstreams that speak only `openai_chat`.
//!
//! Requests ([`responses_to_chat`]): `instructions` and `system`/`developer` messages become
//! `system` messages (the role every OpenAI-compatible server knows), user parts become `text`,
//! `image_url` and `file` parts, assistant text stays in order, each `function_call` item (and
//! any other `*_call` item with a `call_id`) becomes a `tool_calls` entry on the assistant
//! message before it, and each `*_call_output` a `tool` message (one whose call is not in the
//! input becomes a user message, as [`super::responses::shape_for_codex`] does). Function tools,
//! `tool_choice`, `parallel_tool_calls`, `temperature`, `top_p`, `user`, `reasoning.effort`
//! (`reasoning_effort`) and `text.format` (`response_format`) map; `max_output_tokens` is sent
//! as `max_tokens`, which OpenAI-compatible servers (vLLM, Ollama, llama.cpp, DeepSeek, Groq)
//! accept more widely than `max_completion_tokens`. The upstream is always asked for a stream
//! with usage. Reasoning items and non-function tools are dropped and listed;
//! `previous_response_id` is refused, since a Chat upstream keeps no state.
//!
//! Answers ([`ChatUpstreamStream`]): `chat.completion.chunk` payloads become Responses events
//! through [`crate::translate::writer::ResponsesWriter`]: `delta.content` a message, `delta.reasoning_content` (or
//! `reasoning`) a reasoning summary, `delta.tool_calls` function calls by index; the
//! `finish_reason` and the usage chunk end the response at `data: [DONE]`. A chunk carrying
//! `error` fails it. A stream that ends without `[DONE]` after a `finish_reason` still
//! completes; one that ends before any `finish_reason` produces no terminal event, so the
//! consumer reports it as cut.
//!
//! [`request`] turns the request, [`stream`] the answer; [`items`] reads Responses input the way
//! every upstream-side translator needs it.

pub mod items;
mod request;
mod stream;

pub(crate) use items::{
    call_ids, call_parts, input_items, is_call, is_call_output, message_role, output_text,
    request_fields,
};
pub use request::responses_to_chat;
pub use stream::ChatUpstreamStream;

#[cfg(test)]
mod tests;
