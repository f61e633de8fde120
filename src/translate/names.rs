//! Tool names longer than the backend's 64-character limit, shortened on the way up and
//! restored on the way back.
//!
//! Names of 64 characters or fewer are kept. A longer `mcp__server__tool` name becomes
//! `mcp__tool` (the convention CLIProxyAPI uses, spec §6.3) when that fits and is free; any other
//! long name becomes its first 55 characters, `_`, and 8 hex digits of its SHA-256. Short names
//! are reserved first so a shortened name never collides with a real one.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The longest tool name the backend accepts.
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// The prefix MCP clients put before `server__tool`.
const MCP_PREFIX: &str = "mcp__";

/// A reversible map between client tool names and the names sent upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNameMap {
    /// Client name → upstream name, for shortened names only.
    upstream: BTreeMap<String, String>,
    /// Upstream name → client name, for shortened names only.
    client: BTreeMap<String, String>,
}

impl ToolNameMap {
    /// Builds the map for every tool name a request mentions (tool definitions, tool choice and
    /// earlier tool calls), so that all of them translate consistently.
    #[must_use]
    pub fn build<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut names: Vec<&str> = names.into_iter().collect();
        names.sort_unstable();
        names.dedup();
        let mut taken: std::collections::BTreeSet<String> = names
            .iter()
            .filter(|n| n.len() <= MAX_TOOL_NAME_LEN)
            .map(|n| (*n).to_owned())
            .collect();
        let mut map = ToolNameMap::default();
        for name in names.into_iter().filter(|n| n.len() > MAX_TOOL_NAME_LEN) {
            let short = unique_short_name(name, &taken);
            taken.insert(short.clone());
            map.upstream.insert(name.to_owned(), short.clone());
            map.client.insert(short, name.to_owned());
        }
        map
    }

    /// The name to send upstream for a client's tool name.
    #[must_use]
    pub fn to_upstream<'a>(&'a self, name: &'a str) -> &'a str {
        self.upstream.get(name).map_or(name, String::as_str)
    }

    /// The client's tool name for a name the backend returned.
    #[must_use]
    pub fn to_client<'a>(&'a self, name: &'a str) -> &'a str {
        self.client.get(name).map_or(name, String::as_str)
    }

    /// Whether no name needed shortening.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.upstream.is_empty()
    }
}

/// A short name for `name` that is not in `taken`.
fn unique_short_name(name: &str, taken: &std::collections::BTreeSet<String>) -> String {
    if let Some(short) = mcp_short_name(name).filter(|s| !taken.contains(s)) {
        return short;
    }
    let hashed = hashed_name(name, "");
    if !taken.contains(&hashed) {
        return hashed;
    }
    // Only reachable with a SHA-256 prefix collision between two long names; the counter keeps
    // the map a bijection anyway.
    (1u32..)
        .map(|n| hashed_name(name, &n.to_string()))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(hashed)
}

/// `mcp__server__tool` → `mcp__tool`, when that is short enough.
fn mcp_short_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix(MCP_PREFIX)?;
    let last = rest.rsplit("__").next().filter(|l| !l.is_empty())?;
    let short = format!("{MCP_PREFIX}{last}");
    (short.len() <= MAX_TOOL_NAME_LEN && short != name).then_some(short)
}

/// A prefix of `name`, `_`, and 8 hex digits of SHA-256 of `name` and `salt`: 64 bytes at most.
fn hashed_name(name: &str, salt: &str) -> String {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(salt.as_bytes())
        .finalize();
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_TOOL_NAME_LEN - 1 - hex.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hex}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const LONG_MCP: &str = "mcp__an_extremely_long_server_name_that_goes_on_and_on__lookup_time";

    #[test]
    fn names_keep_short_names() {
        let map = ToolNameMap::build(["get_weather"]);
        assert!(map.is_empty());
        assert_eq!(map.to_upstream("get_weather"), "get_weather");
        assert_eq!(map.to_client("get_weather"), "get_weather");
    }

    #[test]
    fn names_shorten_mcp_names_to_prefix_and_tool() {
        let map = ToolNameMap::build([LONG_MCP]);
        assert_eq!(map.to_upstream(LONG_MCP), "mcp__lookup_time");
        assert_eq!(map.to_client("mcp__lookup_time"), LONG_MCP);
    }

    #[test]
    fn names_hash_when_the_mcp_short_name_is_taken() {
        let map = ToolNameMap::build([LONG_MCP, "mcp__lookup_time"]);
        let short = map.to_upstream(LONG_MCP);
        assert_eq!(short.len(), MAX_TOOL_NAME_LEN);
        assert!(short.starts_with("mcp__an_extremely_long_server_name_that_goes_on_and_"));
        assert_eq!(map.to_client(short), LONG_MCP);
        assert_eq!(map.to_upstream("mcp__lookup_time"), "mcp__lookup_time");
        assert_eq!(map.to_client("mcp__lookup_time"), "mcp__lookup_time");
    }

    #[test]
    fn names_keep_distinct_long_names_distinct() {
        let a = format!("{}a", "x".repeat(70));
        let b = format!("{}b", "x".repeat(70));
        let map = ToolNameMap::build([a.as_str(), b.as_str()]);
        assert_ne!(map.to_upstream(&a), map.to_upstream(&b));
        assert_eq!(map.to_client(map.to_upstream(&a)), a);
        assert_eq!(map.to_client(map.to_upstream(&b)), b);
    }

    #[test]
    fn names_cut_long_names_on_a_char_boundary() {
        let name = "é".repeat(40);
        let map = ToolNameMap::build([name.as_str()]);
        assert!(map.to_upstream(&name).len() <= MAX_TOOL_NAME_LEN);
        assert_eq!(map.to_client(map.to_upstream(&name)), name);
    }
}
