//! The conversation's messages → Responses input items, in order: system messages in place
//! (as `developer` messages), tool results before the rest of their user message, assistant
//! reasoning, text, tool calls and web searches as they came; plus what the messages say
//! about the rest of the request (the turn's effort, tool changes).

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::translate::names::ToolNameMap;
use crate::translate::{TranslateError, input_message, input_text, type_of};

use super::blocks::{self, text_of, unsupported_block};
use super::thinking;
use super::tools::ToolChange;

/// The input items being built from the conversation.
pub(super) struct Conversation<'a> {
    pub(super) names: &'a ToolNameMap,
    pub(super) input: Vec<Value>,
    pub(super) changes: Vec<ToolChange>,
    /// The effort of the last system message that set one.
    pub(super) turn_effort: Option<String>,
    pub(super) dropped: Vec<String>,
    /// The index of the last user message.
    last_user: Option<usize>,
    /// Assistant messages at or after this index keep their thinking.
    thinking_from: usize,
    /// The index of the last message.
    last: usize,
}

impl<'a> Conversation<'a> {
    pub(super) fn new(
        names: &'a ToolNameMap,
        messages: &[Value],
        keep_thinking: Option<usize>,
    ) -> Self {
        let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_owned);
        let assistants: Vec<usize> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| role(m).as_deref() == Some("assistant"))
            .map(|(i, _)| i)
            .collect();
        let thinking_from = match keep_thinking {
            None => 0,
            Some(n) if n >= assistants.len() => 0,
            Some(0) => usize::MAX,
            Some(n) => assistants[assistants.len() - n],
        };
        Conversation {
            names,
            input: Vec::new(),
            changes: Vec::new(),
            turn_effort: None,
            dropped: Vec::new(),
            last_user: messages
                .iter()
                .rposition(|m| role(m).as_deref() == Some("user")),
            thinking_from,
            last: messages.len().saturating_sub(1),
        }
    }

    /// The top-level `system` (a string or text blocks) → one `developer` message.
    pub(super) fn system(&mut self, system: Option<&Value>) -> Result<(), TranslateError> {
        let parts = match system {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(blocks)) => {
                let mut texts = Vec::new();
                for (i, block) in blocks.iter().enumerate() {
                    if type_of(block) != "text" {
                        return Err(TranslateError::invalid(
                            format!("system[{i}]"),
                            "must be a text block",
                        ));
                    }
                    texts.push(text_of(block).to_owned());
                }
                texts
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    "system",
                    "must be a string or a list of text blocks",
                ));
            }
        };
        self.push_developer(parts);
        Ok(())
    }

    fn push_developer(&mut self, texts: Vec<String>) {
        let parts: Vec<Value> = texts
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| input_text(t))
            .collect();
        if !parts.is_empty() {
            self.input.push(input_message("developer", parts));
        }
    }

    /// Appends the items for message `i`.
    pub(super) fn message(&mut self, i: usize, message: &Value) -> Result<(), TranslateError> {
        let field = format!("messages[{i}]");
        match message.get("role").and_then(Value::as_str) {
            Some("user") => self.user(i, message),
            Some("assistant") => {
                if i == self.last {
                    return Err(TranslateError::unsupported(
                        format!("{field}.role"),
                        "the conversation ends with an assistant message (prefill); the Responses backend cannot continue a partial answer, so end with a user message",
                    ));
                }
                self.assistant(i, message)
            }
            Some("system") => self.system_message(i, message),
            Some(other) => Err(TranslateError::invalid(
                format!("{field}.role"),
                format!("unknown role `{other}`; expected user, assistant or system"),
            )),
            None => Err(TranslateError::Missing(format!("{field}.role"))),
        }
    }

    /// A message's content as blocks (a string is one text block).
    fn blocks<'m>(message: &'m Value, field: &str) -> Result<Cow<'m, [Value]>, TranslateError> {
        match message.get("content") {
            Some(Value::String(text)) => {
                Ok(Cow::Owned(vec![json!({"type": "text", "text": text})]))
            }
            Some(Value::Array(blocks)) => Ok(Cow::Borrowed(blocks)),
            None | Some(Value::Null) => Ok(Cow::Owned(Vec::new())),
            Some(_) => Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or a list of content blocks",
            )),
        }
    }

    /// A user message: its tool results first, then its other content as one message.
    fn user(&mut self, i: usize, message: &Value) -> Result<(), TranslateError> {
        let field = format!("messages[{i}]");
        let mut parts = Vec::new();
        for (j, block) in Self::blocks(message, &field)?.iter().enumerate() {
            let block_field = format!("{field}.content[{j}]");
            if type_of(block) == "tool_result" {
                let item = blocks::tool_result(block, &block_field, &mut self.changes)?;
                self.input.push(item);
            } else {
                parts.extend(blocks::user_parts(block, &block_field)?);
            }
        }
        if !parts.is_empty() {
            self.input.push(input_message("user", parts));
        }
        Ok(())
    }

    /// An assistant message: reasoning, text, tool calls and web searches in order.
    fn assistant(&mut self, i: usize, message: &Value) -> Result<(), TranslateError> {
        let field = format!("messages[{i}]");
        let mut text = Vec::new();
        let flush = |text: &mut Vec<Value>, input: &mut Vec<Value>| {
            if !text.is_empty() {
                input.push(input_message("assistant", std::mem::take(text)));
            }
        };
        for (j, block) in Self::blocks(message, &field)?.iter().enumerate() {
            let block_field = format!("{field}.content[{j}]");
            match type_of(block) {
                "text" => {
                    let t = text_of(block);
                    if !t.is_empty() {
                        text.push(json!({"type": "output_text", "text": t}));
                    }
                }
                kind @ ("thinking" | "redacted_thinking") => {
                    let item = (kind == "thinking" && i >= self.thinking_from)
                        .then(|| blocks::reasoning(block))
                        .flatten();
                    match item {
                        Some(item) => {
                            flush(&mut text, &mut self.input);
                            self.input.push(item);
                        }
                        // Anthropic's signatures are never forwarded (the backend could not
                        // verify them), and context_management may clear old thinking.
                        None => self.dropped.push(format!("{block_field} ({kind})")),
                    }
                }
                "tool_use" => {
                    flush(&mut text, &mut self.input);
                    self.input
                        .push(blocks::function_call(block, &block_field, self.names)?);
                }
                "server_tool_use" => {
                    flush(&mut text, &mut self.input);
                    self.input
                        .push(blocks::web_search_call(block, &block_field)?);
                }
                "web_search_tool_result" => {}
                other => return Err(unsupported_block(other, &block_field, "assistant")),
            }
        }
        flush(&mut text, &mut self.input);
        Ok(())
    }

    /// A `role: "system"` message → a `developer` message in place; its `output_config.effort`
    /// sets this turn's effort; its tool additions and removals change the tools in effect.
    fn system_message(&mut self, i: usize, message: &Value) -> Result<(), TranslateError> {
        let field = format!("messages[{i}]");
        if let Some(effort) = thinking::effort_of(
            message.get("output_config"),
            &format!("{field}.output_config.effort"),
        )? {
            self.turn_effort = Some(effort);
        }
        let cleared = match message.get("clear_at").and_then(Value::as_str) {
            None | Some("never") => false,
            Some("next_user_message") => self.last_user.is_some_and(|u| u > i),
            Some(other) => {
                return Err(TranslateError::invalid(
                    format!("{field}.clear_at"),
                    format!("unknown value `{other}`; expected next_user_message or never"),
                ));
            }
        };
        let mut texts = Vec::new();
        for (j, block) in Self::blocks(message, &field)?.iter().enumerate() {
            let block_field = format!("{field}.content[{j}]");
            match type_of(block) {
                "text" => texts.push(text_of(block).to_owned()),
                "tool_addition" => self.changes.push(tool_change(block, &block_field, true)?),
                "tool_removal" => self.changes.push(tool_change(block, &block_field, false)?),
                other => return Err(unsupported_block(other, &block_field, "system")),
            }
        }
        if cleared {
            self.dropped
                .push(format!("{field} (cleared at the next user message)"));
        } else {
            self.push_developer(texts);
        }
        Ok(())
    }
}

/// A `tool_addition` or `tool_removal` block → a tool change.
fn tool_change(block: &Value, field: &str, addition: bool) -> Result<ToolChange, TranslateError> {
    let tool = block
        .get("tool")
        .ok_or_else(|| TranslateError::Missing(format!("{field}.tool")))?;
    match type_of(tool) {
        "tool_reference" => {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Missing(format!("{field}.tool.name")))?
                .to_owned();
            Ok(if addition {
                ToolChange::Load(name)
            } else {
                ToolChange::Remove(name)
            })
        }
        "tool_definition" if addition => Ok(ToolChange::Define {
            definition: tool.get("definition").cloned().unwrap_or(Value::Null),
            field: format!("{field}.tool.definition"),
        }),
        other => Err(TranslateError::unsupported(
            format!("{field}.tool.type"),
            format!(
                "`{other}` tool changes are not supported; refer to tools by name or define them inline"
            ),
        )),
    }
}
