//! Anthropic Messages ⇄ Responses, for Claude Code and the other Anthropic clients.
//!
//! - [`request`]: a Messages request → a Responses request (every field mapped, ignored where
//!   that cannot change the answer, or refused with a clear 400).
//! - `conversation`: the messages, in order, → input items.
//! - [`blocks`]: content blocks → Responses content parts and items.
//! - [`tools`]: tools, deferred tools, mid-conversation tool changes, web search, tool choice.
//! - [`thinking`]: thinking and effort → `reasoning`; encrypted reasoning carried in thinking
//!   block signatures that bitrouter makes and recognises.
//! - [`stream`]: Responses stream events → Anthropic stream events.
//! - [`response`]: a whole Responses answer → one Anthropic message; errors and usage.
//! - [`count`]: `count_tokens` with the `o200k_base` tokenizer on the translated request.

pub mod blocks;
mod conversation;
pub mod count;
pub mod request;
pub mod response;
pub mod stream;
pub mod thinking;
pub mod tools;

pub use count::{count_tokens, count_tokens_body, input_estimate};
pub use request::{MessagesRequest, messages_to_responses, messages_to_responses_for};
pub use response::{message_from_response, messages_error_body};
pub use stream::MessagesStream;

#[cfg(test)]
mod tests;
