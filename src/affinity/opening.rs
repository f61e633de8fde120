//! A conversation's opening in one canonical form, per inbound API: the instructions or system
//! prompt (with any system/developer messages before the first user turn), the tools, and the
//! first user turn. Later requests of the same conversation repeat these unchanged, so their
//! canonical form — and the key hashed from it — stays the same from turn to turn.
//!
//! What a client may vary between turns without changing the conversation is left out: item
//! `id`s, Anthropic `cache_control` markers (Claude Code moves them to the newest turn), and
//! whether text is a plain string or a list of text parts.
//!
//! The body is read in place ([`crate::jsonscan`]): only the opening's own pieces become JSON
//! trees, so the cost does not grow with the conversation's history.

use serde_json::{Map, Value, json};

use crate::config::Api;
use crate::jsonscan;

/// The top-level fields an opening is made of, as JSON text (the last of repeated keys, as a
/// JSON tree keeps).
#[derive(Default)]
struct Fields<'a> {
    instructions: Option<&'a [u8]>,
    input: Option<&'a [u8]>,
    messages: Option<&'a [u8]>,
    system: Option<&'a [u8]>,
    tools: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// The fields of `body`; `None` when it is not an object.
    fn read(body: &'a [u8]) -> Option<Fields<'a>> {
        let mut fields = Fields::default();
        for (key, range) in jsonscan::entries(body)?.map_while(Result::ok) {
            let slot = match NAMES.iter().position(|name| jsonscan::key_is(key, name)) {
                Some(0) => &mut fields.instructions,
                Some(1) => &mut fields.input,
                Some(2) => &mut fields.messages,
                Some(3) => &mut fields.system,
                Some(4) => &mut fields.tools,
                _ => continue,
            };
            *slot = Some(&body[range]);
        }
        Some(fields)
    }
}

/// The fields of [`Fields`], in its order.
const NAMES: [&str; 5] = ["instructions", "input", "messages", "system", "tools"];

/// A piece of the body as a JSON tree (it was checked to be JSON when it was taken in).
fn parse(raw: &[u8]) -> Option<Value> {
    serde_json::from_slice(raw).ok()
}

/// The canonical opening of `body` (JSON text) as compact JSON; `None` when there is nothing to
/// key on. Only the opening's pieces are parsed: the instructions or system prompt, the tools,
/// and the conversation's items up to its first user turn.
pub(super) fn canonical(api: Api, body: &[u8]) -> Option<String> {
    let fields = Fields::read(body)?;
    let (system, first) = match api {
        Api::OpenaiResponses => responses(fields.instructions, fields.input),
        Api::OpenaiChat => messages_like(fields.messages, None),
        Api::AnthropicMessages => messages_like(fields.messages, fields.system),
    };
    let tools = fields
        .tools
        .and_then(parse)
        .map_or(Value::Null, |t| clean(&t));
    if system.is_empty() && first.is_none() && tools.is_null() {
        return None;
    }
    let doc = json!({"system": system, "first": first, "tools": tools});
    Some(doc.to_string())
}

/// The system texts and the first user turn.
type Parts = (Vec<Value>, Option<Value>);

/// Responses: `instructions`, then `input` up to and including the first user message.
fn responses(instructions: Option<&[u8]>, input: Option<&[u8]>) -> Parts {
    let mut system = Vec::new();
    if let Some(text) = instructions.and_then(jsonscan::string)
        && !text.is_empty()
    {
        system.push(Value::String(text.into_owned()));
    }
    let Some(input) = input else {
        return (system, None);
    };
    if let Some(text) = jsonscan::string(input) {
        return (system, Some(texts(&[Value::String(text.into_owned())])));
    }
    let mut first = None;
    for range in jsonscan::items(input)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
    {
        let Some(item) = parse(&input[range]) else {
            continue;
        };
        let role = item.get("role").and_then(Value::as_str);
        let is_message = item
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "message");
        match role {
            Some("user") if is_message => {
                first = Some(content(item.get("content")));
                break;
            }
            Some("system" | "developer") if is_message => {
                system.push(content(item.get("content")));
            }
            _ => {}
        }
    }
    (system, first)
}

/// Chat Completions and Messages: the leading system/developer messages (and Anthropic's
/// `system`), then the first user message.
fn messages_like(messages: Option<&[u8]>, system_field: Option<&[u8]>) -> Parts {
    let mut system = Vec::new();
    if let Some(field) = system_field.and_then(parse)
        && !field.is_null()
    {
        system.push(content(Some(&field)));
    }
    let mut first = None;
    let (Some(messages), Some(items)) = (messages, messages.and_then(jsonscan::items)) else {
        return (system, first);
    };
    for range in items.map_while(Result::ok) {
        let Some(message) = parse(&messages[range]) else {
            continue;
        };
        match message.get("role").and_then(Value::as_str) {
            Some("user") => {
                first = Some(content(message.get("content")));
                break;
            }
            Some("system" | "developer") => system.push(content(message.get("content"))),
            _ => {}
        }
    }
    (system, first)
}

/// Message content in one form: a list of parts, text parts reduced to their text.
fn content(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(text)) => texts(&[Value::String(text.clone())]),
        Some(Value::Array(parts)) => texts(parts),
        Some(other) => clean(other),
        None => Value::Null,
    }
}

/// Parts with text reduced to `{"text": …}` whatever their type (`text`, `input_text`,
/// `output_text`, or a bare string); other parts cleaned.
fn texts(parts: &[Value]) -> Value {
    Value::Array(
        parts
            .iter()
            .map(|part| match part {
                Value::String(text) => json!({"text": text}),
                Value::Object(fields) => match fields.get("text").and_then(Value::as_str) {
                    Some(text)
                        if fields
                            .get("type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t.ends_with("text")) =>
                    {
                        json!({"text": text})
                    }
                    _ => clean(part),
                },
                other => clean(other),
            })
            .collect(),
    )
}

/// A copy without the keys clients vary between turns (`id`, `cache_control`).
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "cache_control"))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}
