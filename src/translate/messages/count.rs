//! `/v1/messages/count_tokens`: the request is translated as for the Codex backend and the
//! Responses body is counted with the `o200k_base` tokenizer (the GPT-4o / GPT-5 family's):
//! every text the model reads (developer and user text, assistant text, tool calls and their
//! outputs, reasoning summaries, web-search queries) and the JSON of each tool, plus the chat
//! format's framing (3 tokens per item, 3 to prime the reply). Images are counted by OpenAI's
//! high-detail rule from their size (85 + 170 per 512-pixel tile after scaling to fit 2048 and
//! 768), 765 when the size cannot be read (an image URL); a file counts 1,600 tokens. Encrypted
//! reasoning is opaque and counts nothing.
//!
//! The tokenizer's vocabulary takes a moment to load on first use: call this off the async
//! runtime.

use base64::Engine as _;
use serde_json::{Value, json};

use super::request::messages_to_responses;
use crate::translate::size::compact_len;
use crate::translate::{TranslateError, type_of};

/// Framing tokens per input item (role and separators), as in OpenAI's chat format.
const ITEM_OVERHEAD: u64 = 3;
/// Tokens that prime the reply.
const REPLY_PRIMING: u64 = 3;
/// Tokens counted for an image whose size cannot be read (a 1024 × 1024 image at high detail).
const UNKNOWN_IMAGE_TOKENS: u64 = 765;
/// Tokens counted for a file (a PDF's text and page images are not known before the backend
/// reads it).
const FILE_TOKENS: u64 = 1_600;

/// Tokens of a text with `o200k_base`.
fn tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let bpe = tiktoken_rs::o200k_base_singleton();
    u64::try_from(bpe.encode_ordinary(text).len()).unwrap_or(u64::MAX)
}

/// Counts the input tokens of an Anthropic Messages request (a `count_tokens` body).
///
/// # Errors
///
/// When the request cannot be translated (the same 400 `/v1/messages` would answer).
pub fn count_tokens(body: &Value) -> Result<u64, TranslateError> {
    let mut body = body.clone();
    // `count_tokens` bodies carry no `max_tokens`; nothing else differs.
    if let Value::Object(fields) = &mut body {
        fields.remove("max_tokens");
        fields.remove("stream");
    }
    let translated = messages_to_responses(body)?;
    Ok(count_responses_input(&translated.responses_body))
}

/// The `/v1/messages/count_tokens` answer: `{"input_tokens": n}`.
///
/// # Errors
///
/// As [`count_tokens`].
pub fn count_tokens_body(body: &Value) -> Result<Value, TranslateError> {
    Ok(json!({"input_tokens": count_tokens(body)?}))
}

/// Counts a Responses request body's input: instructions, input items and tools.
#[must_use]
pub fn count_responses_input(body: &Value) -> u64 {
    let mut total = REPLY_PRIMING;
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str)
        && !instructions.is_empty()
    {
        total += ITEM_OVERHEAD + tokens(instructions);
    }
    for item in body
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += ITEM_OVERHEAD + item_tokens(item);
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += tokens(&tool.to_string());
    }
    total
}

/// Tokens of one input item.
fn item_tokens(item: &Value) -> u64 {
    let text = |key: &str| tokens(item.get(key).and_then(Value::as_str).unwrap_or(""));
    match type_of(item) {
        "message" => text("role") + content_tokens(item.get("content")),
        "function_call" => text("name") + text("arguments"),
        "function_call_output" => content_tokens(item.get("output")),
        "reasoning" => item
            .get("summary")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| tokens(s.get("text").and_then(Value::as_str).unwrap_or("")))
            .sum(),
        "web_search_call" => tokens(
            item.pointer("/action/query")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
        _ => tokens(&item.to_string()),
    }
}

/// Tokens of a content value: a string, or a list of parts.
fn content_tokens(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(text)) => tokens(text),
        Some(Value::Array(parts)) => parts.iter().map(part_tokens).sum(),
        _ => 0,
    }
}

fn part_tokens(part: &Value) -> u64 {
    match type_of(part) {
        "input_text" | "output_text" => {
            tokens(part.get("text").and_then(Value::as_str).unwrap_or(""))
        }
        "refusal" => tokens(part.get("refusal").and_then(Value::as_str).unwrap_or("")),
        "input_image" => image_tokens(part.get("image_url").and_then(Value::as_str).unwrap_or("")),
        "input_file" => FILE_TOKENS,
        _ => 0,
    }
}

/// Tokens of an image by OpenAI's high-detail rule, from the size in a base64 data URL.
fn image_tokens(url: &str) -> u64 {
    let size = url
        .split_once(";base64,")
        .filter(|(head, _)| head.starts_with("data:"))
        .and_then(|(_, data)| {
            // The size is in the first bytes of every format read here.
            let head: String = data.chars().take(64 * 1024 / 3 * 4).collect();
            let trimmed = &head[..head.len() - head.len() % 4];
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .ok()
        })
        .and_then(|bytes| image_size(&bytes));
    let Some((width, height)) = size else {
        return UNKNOWN_IMAGE_TOKENS;
    };
    tiles_tokens(width, height)
}

/// 85 + 170 per 512-pixel tile after fitting in 2048 × 2048 and scaling the short side to 768.
fn tiles_tokens(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let fit = (2048.0 / w.max(h)).min(1.0);
    w *= fit;
    h *= fit;
    let shrink = (768.0 / w.min(h)).min(1.0);
    w *= shrink;
    h *= shrink;
    let tiles = (w / 512.0).ceil() * (h / 512.0).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "at most 16 tiles of a 2048-pixel square"
    )]
    let tiles = tiles as u64;
    85 + 170 * tiles
}

/// The width and height of a PNG, GIF or JPEG image from its first bytes.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let be32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF8") {
        let le16 = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        };
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Walk the JPEG segments to the first start-of-frame marker.
        let mut at = 2;
        while at + 9 < bytes.len() {
            if bytes[at] != 0xFF {
                return None;
            }
            let marker = bytes[at + 1];
            let length = usize::try_from(be16(at + 2)?).ok()?;
            let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if is_frame {
                return Some((be16(at + 7)?, be16(at + 5)?));
            }
            at += 2 + length;
        }
    }
    None
}

/// Tokens counted for each image or non-text document: about what Anthropic documents for a
/// full-size image (~1.15 megapixels / 750).
const ESTIMATE_IMAGE_TOKENS: u64 = 1_600;
/// Tokens counted for each message's framing (role, separators).
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// A quick estimate of a Messages request's input tokens, for `message_start` (the backend's
/// real count follows in `message_delta`); [`count_tokens`] is the exact count.
///
/// A heuristic, not a tokenizer, so that streaming pays nothing for it: one token per
/// 4 bytes (rounded up) of system text, message text, tool-use inputs, tool results and the JSON
/// of tool definitions; 4 tokens per message; 1,600 per image or non-text document. It tends to
/// overestimate code and underestimate non-Latin scripts.
#[must_use]
pub fn input_estimate(body: &Value) -> u64 {
    let mut bytes = 0u64;
    let mut fixed = 0u64;
    let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX);
    match body.get("system") {
        Some(Value::String(text)) => bytes += len(text),
        Some(Value::Array(blocks)) => bytes += blocks_bytes(blocks, &mut fixed),
        _ => {}
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for message in messages {
        fixed += MESSAGE_OVERHEAD_TOKENS;
        match message.get("content") {
            Some(Value::String(text)) => bytes += len(text),
            Some(Value::Array(blocks)) => bytes += blocks_bytes(blocks, &mut fixed),
            _ => {}
        }
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for tool in tools {
        bytes += as_u64(compact_len(tool));
    }
    bytes.div_ceil(4).saturating_add(fixed)
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Text bytes of content blocks; images and binary documents add to `fixed` tokens.
fn blocks_bytes(blocks: &[Value], fixed: &mut u64) -> u64 {
    let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX);
    let mut bytes = 0;
    for block in blocks {
        match type_of(block) {
            "text" => bytes += len(block.get("text").and_then(Value::as_str).unwrap_or("")),
            "thinking" => bytes += len(block.get("thinking").and_then(Value::as_str).unwrap_or("")),
            "tool_use" => {
                bytes += block
                    .get("input")
                    .map_or(0, |input| as_u64(compact_len(input)));
            }
            "tool_result" => match block.get("content") {
                Some(Value::String(text)) => bytes += len(text),
                Some(Value::Array(inner)) => bytes += blocks_bytes(inner, fixed),
                _ => {}
            },
            "document" if block.pointer("/source/type").and_then(Value::as_str) == Some("text") => {
                bytes += len(block
                    .pointer("/source/data")
                    .and_then(Value::as_str)
                    .unwrap_or(""));
            }
            "image" | "document" => *fixed += ESTIMATE_IMAGE_TOKENS,
            _ => {}
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_counted_with_o200k() {
        // "hello world" is two o200k tokens.
        assert_eq!(tokens("hello world"), 2);
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello world"}]});
        // 3 to prime the reply, 3 for the message, "user", "hello world".
        assert_eq!(count_tokens(&body).unwrap(), 3 + 3 + 1 + 2);
        let with_system = json!({"model": "m", "system": "hello world",
            "messages": [{"role": "user", "content": "hello world"}]});
        assert_eq!(
            count_tokens(&with_system).unwrap(),
            9 + 3 + tokens("developer") + 2
        );
    }

    #[test]
    fn tools_and_tool_calls_count() {
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        ], "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
        let without_tools = {
            let mut b = body.clone();
            b.as_object_mut().unwrap().remove("tools");
            b["messages"] = json!([{"role": "user", "content": "weather?"}]);
            count_tokens(&b).unwrap()
        };
        let all = count_tokens(&body).unwrap();
        let call = 3 + tokens("get_weather") + tokens("{\"city\":\"Paris\"}");
        let output = 3 + tokens("sunny");
        let tool = tokens(
            r#"{"name":"get_weather","parameters":{"type":"object"},"strict":false,"type":"function"}"#,
        );
        assert_eq!(all, without_tools + call + output + tool);
    }

    #[test]
    fn images_count_by_size() {
        // A 1 × 1 PNG: one tile.
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
        assert_eq!(
            image_tokens(&format!("data:image/png;base64,{png}")),
            85 + 170
        );
        assert_eq!(
            image_tokens("https://example.com/a.png"),
            UNKNOWN_IMAGE_TOKENS
        );
        // 1024 × 1024 → 768 × 768 → 4 tiles.
        assert_eq!(tiles_tokens(1024, 1024), 85 + 170 * 4);
        // 4096 × 1024 → 2048 × 512 → short side already under 768 → 4 × 1 tiles.
        assert_eq!(tiles_tokens(4096, 1024), 85 + 170 * 4);
    }

    #[test]
    fn a_request_that_cannot_be_translated_is_refused() {
        assert!(count_tokens(&json!({"model": "m"})).is_err());
    }
}
