//! OpenAI Chat Completions ⇄ Responses.
