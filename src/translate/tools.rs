//! Function tools, the one tool kind every API here shares, read from and written to each API's
//! shape in one place:
//!
//! | API | shape |
//! |---|---|
//! | Responses | `{type: function, name, description, parameters, strict}` |
//! | Chat Completions | `{type: function, function: {name, description, parameters, strict}}` |
//! | Anthropic Messages | `{name, description, input_schema}` (`type` absent or `custom`) |
//!
//! A description is kept only when it is a string; a schema that is not an object becomes the
//! empty object schema, which every API accepts. What to do with tools of other kinds (refuse
//! or drop) is each translator's decision.

use serde_json::{Map, Value, json};

use super::type_of;

/// A function tool as every API describes it, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionTool<'a> {
    /// The tool's name, as the client sent it.
    pub name: &'a str,
    /// The description, when it is a string.
    pub description: Option<&'a Value>,
    /// The input schema, when it is an object.
    pub parameters: Option<&'a Value>,
    /// Whether the schema is strict, when the client said.
    pub strict: Option<bool>,
}

impl<'a> FunctionTool<'a> {
    /// A Chat Completions tool (`{type: function, function: {…}}`); `None` for other kinds and
    /// for a function without a name.
    #[must_use]
    pub fn in_chat(tool: &'a Value) -> Option<Self> {
        if type_of(tool) != "function" {
            return None;
        }
        FunctionTool::fields(tool.get("function")?, "parameters")
    }

    /// A Responses tool (`{type: function, name, …}`); `None` for other kinds and for a function
    /// without a name.
    #[must_use]
    pub fn in_responses(tool: &'a Value) -> Option<Self> {
        if type_of(tool) != "function" {
            return None;
        }
        FunctionTool::fields(tool, "parameters")
    }

    /// An Anthropic client tool (`{name, input_schema, …}`, no `type` or `custom`); `None` for
    /// server tools and for a tool without a name.
    #[must_use]
    pub fn in_anthropic(tool: &'a Value) -> Option<Self> {
        if !matches!(type_of(tool), "" | "custom") {
            return None;
        }
        FunctionTool::fields(tool, "input_schema")
    }

    fn fields(object: &'a Value, schema_key: &str) -> Option<Self> {
        Some(FunctionTool {
            name: object.get("name").and_then(Value::as_str)?,
            description: object.get("description").filter(|d| d.is_string()),
            parameters: object.get(schema_key).filter(|p| p.is_object()),
            strict: object.get("strict").and_then(Value::as_bool),
        })
    }

    /// The tool in the Responses shape, under `name` (the client's, or a shortened one). The
    /// Responses API's `strict` defaults to true where the other APIs' default to false, so it
    /// is always written out.
    #[must_use]
    pub fn to_responses(&self, name: &str) -> Value {
        self.to_responses_with_schema(name, self.parameters.cloned())
    }

    /// [`FunctionTool::to_responses`] with `schema` in place of a copy of the tool's own: the
    /// caller took it out of the tool it owns (`None`: the empty object schema).
    #[must_use]
    pub fn to_responses_with_schema(&self, name: &str, schema: Option<Value>) -> Value {
        let mut out = Map::new();
        out.insert("type".to_owned(), json!("function"));
        out.insert("name".to_owned(), json!(name));
        self.describe(&mut out);
        out.insert("parameters".to_owned(), schema.unwrap_or_else(empty_schema));
        out.insert("strict".to_owned(), json!(self.strict.unwrap_or(false)));
        Value::Object(out)
    }

    /// The tool in the Chat Completions shape (`strict` only when the client said).
    #[must_use]
    pub fn to_chat(&self) -> Value {
        let mut function = Map::new();
        function.insert("name".to_owned(), json!(self.name));
        self.describe(&mut function);
        function.insert("parameters".to_owned(), self.schema());
        if let Some(strict) = self.strict {
            function.insert("strict".to_owned(), json!(strict));
        }
        json!({"type": "function", "function": function})
    }

    /// The tool in the Anthropic Messages shape.
    #[must_use]
    pub fn to_anthropic(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".to_owned(), json!(self.name));
        self.describe(&mut out);
        out.insert("input_schema".to_owned(), self.schema());
        Value::Object(out)
    }

    fn describe(&self, out: &mut Map<String, Value>) {
        if let Some(description) = self.description {
            out.insert("description".to_owned(), description.clone());
        }
    }

    /// The schema, or the empty object schema.
    fn schema(&self) -> Value {
        self.parameters.cloned().unwrap_or_else(empty_schema)
    }
}

/// The schema of a tool that takes no arguments, which every API accepts.
fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn one_tool_reads_the_same_in_every_shape() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
        let chat = json!({"type": "function", "function": {"name": "weather", "description": "d", "parameters": schema, "strict": true}});
        let responses = json!({"type": "function", "name": "weather", "description": "d", "parameters": schema, "strict": true});
        let anthropic = json!({"name": "weather", "description": "d", "input_schema": schema});
        let from_chat = FunctionTool::in_chat(&chat).unwrap();
        assert_eq!(FunctionTool::in_responses(&responses), Some(from_chat));
        assert_eq!(from_chat.to_chat(), chat);
        assert_eq!(from_chat.to_responses("weather"), responses);
        assert_eq!(from_chat.to_anthropic(), anthropic);
        let from_anthropic = FunctionTool::in_anthropic(&anthropic).unwrap();
        assert_eq!(from_anthropic.strict, None);
        assert_eq!(from_anthropic.to_responses("w")["strict"], json!(false));
    }

    #[test]
    fn other_kinds_and_nameless_tools_are_not_functions() {
        assert_eq!(
            FunctionTool::in_responses(&json!({"type": "web_search"})),
            None
        );
        assert_eq!(
            FunctionTool::in_chat(&json!({"type": "function", "function": {}})),
            None
        );
        assert_eq!(
            FunctionTool::in_anthropic(
                &json!({"type": "web_search_20250305", "name": "web_search"})
            ),
            None
        );
    }

    #[test]
    fn a_missing_or_odd_schema_becomes_the_empty_object_schema() {
        let raw = json!({"type": "function", "name": "f", "parameters": "x", "description": 5});
        let tool = FunctionTool::in_responses(&raw).unwrap();
        assert_eq!(
            tool.to_chat(),
            json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}})
        );
    }
}
