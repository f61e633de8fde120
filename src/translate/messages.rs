//! Anthropic Messages ⇄ Responses.
