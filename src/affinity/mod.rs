//! Prompt-cache affinity: one stable key per conversation, so every request of it reaches the
//! Codex backend with the same `prompt_cache_key` and `session-id` (the backend's prompt cache
//! and its routing key on them) and stays on one account.
//!
//! [`of`] takes the key from the client's own ids when it sends any, in this order:
//! 1. the body's `prompt_cache_key` (the Codex CLI and OpenAI clients that set one);
//! 2. a session header: `session-id`, `session_id`, `conversation_id` (the Codex CLI, older
//!    Codex and third parties) or `x-claude-code-session-id` (Claude Code);
//! 3. the session in an Anthropic body's `metadata.user_id` (Claude Code writes a JSON object
//!    with `session_id`; older versions `user_…_session_<id>`);
//! 4. the body's `user` (OpenAI clients' per-user cache bucket before `prompt_cache_key`), or
//!    an Anthropic body's `metadata.user_id` that holds no session (the same idea).
//!
//! Without any, the key is derived from the conversation's opening — instructions or system
//! prompt, tools, and the first user turn — which every later request of the conversation
//! repeats unchanged (see [`opening`]). A client id that is a short plain token is used as it
//! is; anything else (long, or possibly personal like `user`) is hashed. Keys are never secrets
//! and never include a credential.
//!
//! The hot path builds no JSON tree of the request: the body's ids come from the pass that
//! takes the body in ([`BodyIds`]), and the opening is read in place, parsing only its own
//! pieces (never the rest of a long conversation).

mod opening;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ops::Range;

use http::{HeaderMap, HeaderName};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Api;
use crate::jsonscan;
use crate::upstream::headers::{SESSION_ID, SESSION_ID_UNDERSCORE};

pub use opening::OpeningFields;

/// Where a conversation's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The body's `prompt_cache_key`.
    CacheKey,
    /// A session header sent by the client.
    SessionHeader,
    /// The session id in Claude Code's `metadata.user_id`.
    ClaudeCodeMetadata,
    /// The body's `user`.
    User,
    /// Derived from the conversation's opening.
    Opening,
}

impl Source {
    /// A short name for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::CacheKey => "prompt_cache_key",
            Source::SessionHeader => "session header",
            Source::ClaudeCodeMetadata => "metadata.user_id",
            Source::User => "user",
            Source::Opening => "opening",
        }
    }
}

/// A conversation's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affinity {
    /// The key: sent as `prompt_cache_key`, `session-id` and `session_id`.
    pub key: String,
    /// Where it came from.
    pub source: Source,
}

/// The ids in a request body that can name a conversation. They are found while the body is
/// taken in (`proxy::intake` reads them in the pass that finds `model`, through
/// [`BodyIds::note`]), so affinity never walks the body again for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyIds {
    /// `prompt_cache_key`, when it is a non-blank string.
    pub prompt_cache_key: Option<String>,
    /// `user`, when it is a non-blank string.
    pub user: Option<String>,
    /// `metadata.user_id`, when it is a non-blank string.
    pub metadata_user_id: Option<String>,
    /// Where the opening's fields lie in the body, when the pass that took it in noted them
    /// (so [`of`] need not walk the body's top level again to find them).
    pub opening: Option<OpeningFields>,
}

impl BodyIds {
    /// The top-level fields [`BodyIds::note`] reads.
    pub const FIELDS: [&'static str; 3] = ["prompt_cache_key", "user", "metadata"];

    /// Notes a top-level field of the body, given as its JSON text; fields other than
    /// [`BodyIds::FIELDS`] and values of another type are ignored. A later note of the same
    /// field replaces an earlier one, as a JSON tree keeps the last of repeated keys.
    pub fn note(&mut self, field: &str, raw: &[u8]) {
        match field {
            "prompt_cache_key" => self.prompt_cache_key = text(raw),
            "user" => self.user = text(raw),
            "metadata" => {
                self.metadata_user_id = jsonscan::field(raw, "user_id").and_then(text);
            }
            _ => {}
        }
    }

    /// The ids of a body already parsed into a tree, read as [`BodyIds::note`] reads them
    /// from text.
    #[must_use]
    pub fn of_tree(body: &Value) -> BodyIds {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        BodyIds {
            prompt_cache_key: text(body.get("prompt_cache_key")),
            user: text(body.get("user")),
            metadata_user_id: text(body.get("metadata").and_then(|m| m.get("user_id"))),
            opening: None,
        }
    }

    /// The ids of a whole body (JSON text), for callers that have not read it yet.
    #[must_use]
    pub fn scan(body: &[u8]) -> BodyIds {
        let mut ids = BodyIds::default();
        for (field, range) in top_level(body) {
            ids.note(&field, &body[range]);
        }
        ids
    }
}

/// The top-level entries of a body (JSON text): each key as text and where its value lies, up
/// to the first malformed entry (a key that is not valid text is skipped).
fn top_level(body: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Range<usize>)> {
    jsonscan::entries(body)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .filter_map(|(key, range)| Some((jsonscan::key(key)?, range)))
}

/// A JSON string's text, trimmed, when it is a non-blank string.
fn text(raw: &[u8]) -> Option<String> {
    let s = jsonscan::string(raw)?;
    let trimmed = s.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Session headers, in the order they are read.
static SESSION_HEADERS: [HeaderName; 4] = [
    SESSION_ID,
    SESSION_ID_UNDERSCORE,
    HeaderName::from_static("conversation_id"),
    HeaderName::from_static("x-claude-code-session-id"),
];

/// The session a client names in its headers: the first value of the first of
/// [`SESSION_HEADERS`] whose first value is non-blank text. One pass over the request's few
/// headers, rather than a hashed look-up per name (four, when none is sent, as most clients
/// send none).
fn session_header(headers: &HeaderMap) -> Option<&str> {
    // Which names were met (a name's later values are not read), and the best session so far.
    let mut met = 0u8;
    let mut best: Option<(usize, &str)> = None;
    for (name, value) in headers {
        let Some(rank) = SESSION_HEADERS.iter().position(|n| n == name) else {
            continue;
        };
        let bit = 1 << rank;
        if met & bit != 0 {
            continue;
        }
        met |= bit;
        if best.is_some_and(|(better, _)| better < rank) {
            continue;
        }
        if let Some(session) = value.to_str().ok().map(str::trim).filter(|s| !s.is_empty()) {
            best = Some((rank, session));
        }
    }
    best.map(|(_, session)| session)
}

/// The conversation key of a request that came in on `api` with these headers, body ids and
/// body (JSON text, read only when no id names the conversation); `None` when the body holds
/// no conversation at all (no ids, no instructions, tools or user turn).
#[must_use]
pub fn of(api: Api, headers: &HeaderMap, ids: &BodyIds, body: &[u8]) -> Option<Affinity> {
    if let Some(key) = &ids.prompt_cache_key {
        return Some(client_key(key, Source::CacheKey));
    }
    if let Some(session) = session_header(headers) {
        return Some(client_key(session, Source::SessionHeader));
    }
    let user_field = if api == Api::AnthropicMessages {
        let user_id = ids.metadata_user_id.as_deref();
        if let Some(session) = user_id.and_then(claude_code_session) {
            return Some(client_key(&session, Source::ClaudeCodeMetadata));
        }
        user_id
    } else {
        ids.user.as_deref()
    };
    if let Some(user) = user_field {
        return Some(Affinity {
            key: hashed("user", user.as_bytes()),
            source: Source::User,
        });
    }
    let opening = opening::canonical(api, body, ids.opening.as_ref())?;
    Some(Affinity {
        key: opening_key(&opening),
        source: Source::Opening,
    })
}

/// The session id in Claude Code's `metadata.user_id`: a JSON object with `session_id`, or the
/// older `user_<hash>_account_<uuid>_session_<uuid>` string.
fn claude_code_session(user_id: &str) -> Option<String> {
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(user_id) {
        return fields
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    user_id
        .rsplit_once("_session_")
        .map(|(_, session)| session.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A client's own id: used as it is when it is a short plain token, else hashed.
fn client_key(id: &str, source: Source) -> Affinity {
    let plain = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    let key = if plain {
        id.to_owned()
    } else {
        hashed("client", id.as_bytes())
    };
    Affinity { key, source }
}

/// A UUID-shaped key from SHA-256 over a namespace and the input (so equal inputs in different
/// roles never collide): a client's id, or a `user`, which may be personal.
fn hashed(namespace: &str, input: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"bitrouter affinity ");
    hasher.update(namespace.as_bytes());
    hasher.update([0]);
    hasher.update(input);
    let digest = hasher.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_shaped(bytes)
}

/// Seeds [`opening_key`]'s hash, apart from every other use of it.
const OPENING_SEED: u64 = u64::from_le_bytes(*b"bropenin");

/// The UUID-shaped key of a conversation's canonical opening: XXH3-128, not SHA-256 as for the
/// keys above. An opening holds the whole system prompt and tool schemas (59 KB of qwen-code's
/// 60 KB request), which SHA-256 took 32 µs to read even with the CPU's SHA instructions; it is
/// what the upstream receives anyway, so there is nothing a one-way hash would keep from it,
/// and 128 bits keep two openings from meeting by chance.
fn opening_key(canonical: &[u8]) -> String {
    let hash = xxhash_rust::xxh3::xxh3_128_with_seed(canonical, OPENING_SEED);
    uuid_shaped(hash.to_le_bytes())
}

/// `bytes` as a UUID's text.
fn uuid_shaped(mut bytes: [u8; 16]) -> String {
    // Version 8 (custom) and the RFC 9562 variant, so it reads as a well-formed UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = uuid::Uuid::encode_buffer();
    uuid::Uuid::from_bytes(bytes)
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// Puts the key into a Codex backend body as `prompt_cache_key` (the backend caches and routes
/// on it). A body that is not an object is left alone (it is refused elsewhere).
pub fn stamp(body: &mut Value, affinity: &Affinity) {
    if let Value::Object(fields) = body {
        fields.insert(
            "prompt_cache_key".to_owned(),
            Value::String(affinity.key.clone()),
        );
    }
}
