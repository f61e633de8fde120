//! A conversation's opening in one canonical form, per inbound API: the instructions or system
//! prompt (with any system/developer messages before the first user turn), the tools, and the
//! first user turn. Later requests of the same conversation repeat these unchanged, so their
//! canonical form — and the key hashed from it — stays the same from turn to turn.
//!
//! What a client may vary between turns without changing the conversation is left out: item
//! `id`s, Anthropic `cache_control` markers (Claude Code moves them to the newest turn), and
//! whether text is a plain string or a list of text parts.
//!
//! The body is read in place ([`crate::jsonscan`]) and the canonical form is written as tagged,
//! length-prefixed pieces: text is copied as it is written (escapes kept: one client writes one
//! text the same way every turn), and what is not text (an image part, the tools) is copied
//! compacted, less the keys above, in one pass ([`jsonscan::compact_without`]). No JSON tree is
//! built, nothing is decoded, and beyond the scan of the body's top level that finds these
//! fields the cost does not grow with the conversation's history.

use std::borrow::Cow;
use std::ops::Range;

use crate::config::Api;
use crate::jsonscan;

/// The keys clients vary between turns of one conversation: item `id`s and Anthropic
/// `cache_control` markers.
const VARIED_KEYS: [&str; 2] = ["id", "cache_control"];

/// Where the top-level fields an opening is made of lie in a body (the last of repeated keys,
/// as a JSON tree keeps): noted by the pass that takes a body in, so the opening need not walk
/// the body's top level again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpeningFields {
    instructions: Option<Range<usize>>,
    input: Option<Range<usize>>,
    messages: Option<Range<usize>>,
    system: Option<Range<usize>>,
    tools: Option<Range<usize>>,
}

impl OpeningFields {
    /// The top-level fields [`OpeningFields::note`] keeps.
    pub const FIELDS: [&'static str; 5] = ["instructions", "input", "messages", "system", "tools"];

    /// Notes where a top-level field's value lies in the body; fields other than
    /// [`OpeningFields::FIELDS`] are ignored, and a later note of a field replaces an earlier
    /// one.
    pub fn note(&mut self, field: &str, range: Range<usize>) {
        let slot = match field {
            "instructions" => &mut self.instructions,
            "input" => &mut self.input,
            "messages" => &mut self.messages,
            "system" => &mut self.system,
            "tools" => &mut self.tools,
            _ => return,
        };
        *slot = Some(range);
    }

    /// The fields in `body`; `None` when a range falls outside it (it was noted in another).
    fn in_body<'a>(&self, body: &'a [u8]) -> Option<Fields<'a>> {
        let at = |range: &Option<Range<usize>>| match range {
            Some(range) => body.get(range.clone()).map(Some),
            None => Some(None),
        };
        Some(Fields {
            instructions: at(&self.instructions)?,
            input: at(&self.input)?,
            messages: at(&self.messages)?,
            system: at(&self.system)?,
            tools: at(&self.tools)?,
        })
    }
}

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
            let slot = match name(key).as_ref() {
                b"instructions" => &mut fields.instructions,
                b"input" => &mut fields.input,
                b"messages" => &mut fields.messages,
                b"system" => &mut fields.system,
                b"tools" => &mut fields.tools,
                _ => continue,
            };
            *slot = Some(&body[range]);
        }
        Some(fields)
    }
}

/// An object key's bytes, decoded only when it has escapes (the names read here are plain
/// ASCII, so comparing bytes is enough); empty when its escapes are not valid.
fn name(key: &[u8]) -> Cow<'_, [u8]> {
    jsonscan::key_bytes(key).unwrap_or(Cow::Borrowed(&[][..]))
}

/// The canonical form being written. Each piece is a tag and, for data, its length and bytes,
/// so no two different openings write the same bytes.
struct Canonical {
    out: Vec<u8>,
    /// Whether a system piece, a first user turn or tools were written.
    any: bool,
}

impl Canonical {
    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    fn data(&mut self, tag: u8, bytes: &[u8]) {
        self.piece(tag, |out| {
            out.extend_from_slice(bytes);
            Some(())
        });
    }

    /// A data piece: `tag`, then the length of what `write` appends and those bytes (none
    /// when `write` fails). The one place a piece's form is written.
    fn piece(&mut self, tag: u8, write: impl FnOnce(&mut Vec<u8>) -> Option<()>) {
        self.out.push(tag);
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 8]);
        if write(&mut self.out).is_none() {
            self.out.truncate(at + 8);
        }
        let len = u64::try_from(self.out.len() - at - 8).unwrap_or(u64::MAX);
        self.out[at..at + 8].copy_from_slice(&len.to_le_bytes());
    }

    /// A text part, as written ([`jsonscan::string_as_written`]): a client writes the same text
    /// the same way from turn to turn, so it need not be decoded (a system prompt of tens of
    /// kilobytes was decoded and copied for nothing).
    fn text(&mut self, text: &[u8]) {
        self.data(b'T', text);
    }

    /// A part that is not text: its JSON, compacted, without the keys clients vary between
    /// turns (empty when it is malformed), written in place.
    fn other(&mut self, raw: &[u8]) {
        self.piece(b'J', |out| {
            jsonscan::compact_without(raw, &VARIED_KEYS, out)
        });
    }

    /// Message content as a list of parts: a string is one text part, text parts (of any
    /// `…text` type) are their text, anything else is [`Canonical::other`].
    fn content(&mut self, raw: Option<&[u8]>) {
        let Some(raw) = raw else {
            return self.tag(b'-');
        };
        if let Some(text) = jsonscan::string_as_written(raw) {
            return self.text(text);
        }
        let Some(parts) = jsonscan::items(raw) else {
            return self.other(raw);
        };
        for range in parts.map_while(Result::ok) {
            let part = &raw[range];
            match text_part(part) {
                Some(text) => self.text(text),
                None => self.other(part),
            }
        }
    }

    /// A system piece (instructions, a system prompt or message).
    fn system(&mut self, raw: Option<&[u8]>) {
        self.tag(b'S');
        self.content(raw);
        self.tag(b'.');
        self.any = true;
    }

    /// The first user turn.
    fn first(&mut self, raw: Option<&[u8]>) {
        self.tag(b'U');
        self.content(raw);
        self.tag(b'.');
        self.any = true;
    }
}

/// The text of a part that is text: a string, or an object whose `text` is a string and whose
/// `type` is absent or ends in `text` (`text`, `input_text`, `output_text`).
fn text_part(part: &[u8]) -> Option<&[u8]> {
    if let Some(text) = jsonscan::string_as_written(part) {
        return Some(text);
    }
    let mut text = None;
    let mut textual = true;
    for (key, range) in jsonscan::entries(part)?.map_while(Result::ok) {
        match name(key).as_ref() {
            b"text" => text = Some(jsonscan::string_as_written(&part[range])?),
            b"type" => {
                textual = jsonscan::string(&part[range]).is_some_and(|t| t.ends_with("text"));
            }
            _ => {}
        }
    }
    text.filter(|_| textual)
}

/// The canonical opening of `body` (JSON text); `None` when there is nothing to key on. Only
/// the opening's pieces are read: the instructions or system prompt, the tools, and the
/// conversation's items up to its first user turn. With `noted`, the fields are where it says
/// (the body's top level is not walked again).
pub(super) fn canonical(api: Api, body: &[u8], noted: Option<&OpeningFields>) -> Option<Vec<u8>> {
    let fields = match noted.and_then(|n| n.in_body(body)) {
        Some(fields) => fields,
        None => Fields::read(body)?,
    };
    let mut c = Canonical {
        out: Vec::with_capacity(256),
        any: false,
    };
    match api {
        Api::OpenaiResponses => responses(&mut c, fields.instructions, fields.input),
        Api::OpenaiChat => messages_like(&mut c, fields.messages, None),
        Api::AnthropicMessages => messages_like(&mut c, fields.messages, fields.system),
    }
    if let Some(tools) = fields.tools.filter(|t| *t != b"null") {
        c.tag(b'O');
        c.other(tools);
        c.any = true;
    }
    c.any.then_some(c.out)
}

/// What an input item or message is, read in place.
struct Item<'a> {
    role: Option<Cow<'a, str>>,
    /// Whether it is a message (its `type` is absent or `message`).
    is_message: bool,
    content: Option<&'a [u8]>,
}

impl<'a> Item<'a> {
    /// Reads an item's `role`, `type` and `content`; `None` when it is not an object.
    fn read(item: &'a [u8]) -> Option<Item<'a>> {
        let mut read = Item {
            role: None,
            is_message: true,
            content: None,
        };
        for (key, range) in jsonscan::entries(item)?.map_while(Result::ok) {
            let raw = &item[range];
            match name(key).as_ref() {
                b"role" => read.role = jsonscan::string(raw),
                b"type" => {
                    read.is_message = jsonscan::string(raw).is_none_or(|t| t == "message");
                }
                b"content" => read.content = Some(raw),
                _ => {}
            }
        }
        Some(read)
    }
}

/// Responses: `instructions`, then `input` up to and including the first user message.
fn responses(c: &mut Canonical, instructions: Option<&[u8]>, input: Option<&[u8]>) {
    if let Some(raw) = instructions
        && jsonscan::string_as_written(raw).is_some_and(|text| !text.is_empty())
    {
        c.system(Some(raw));
    }
    let Some(input) = input else {
        return;
    };
    if jsonscan::string_as_written(input).is_some() {
        return c.first(Some(input));
    }
    for range in jsonscan::items(input)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
    {
        let Some(item) = Item::read(&input[range]) else {
            continue;
        };
        match item.role.as_deref() {
            Some("user") if item.is_message => return c.first(item.content),
            Some("system" | "developer") if item.is_message => c.system(item.content),
            _ => {}
        }
    }
}

/// Chat Completions and Messages: the leading system/developer messages (and Anthropic's
/// `system`), then the first user message.
fn messages_like(c: &mut Canonical, messages: Option<&[u8]>, system_field: Option<&[u8]>) {
    if let Some(raw) = system_field.filter(|s| *s != b"null") {
        c.system(Some(raw));
    }
    let Some(messages) = messages else {
        return;
    };
    for range in jsonscan::items(messages)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
    {
        let Some(message) = Item::read(&messages[range]) else {
            continue;
        };
        match message.role.as_deref() {
            Some("user") => return c.first(message.content),
            Some("system" | "developer") => c.system(message.content),
            _ => {}
        }
    }
}
