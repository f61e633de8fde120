//! The `routes:` section: aliases and fallback chains, with glob keys and pinned variants.
//!
//! A value is a chain (`[id, id]`), one id, or `{to: id or [ids], effort, service_tier}`; the
//! map form pins a reasoning effort and/or a service tier for every entry of the chain.
//!
//! Keys match the id a client asks for. A key without `*` matches exactly and beats any glob.
//! A key with `*` is a glob: `*` matches any run of characters (none included), and nothing else
//! is special. The most specific matching glob wins, where specific means **more literal
//! (non-`*`) characters**: `claude-sonnet-4-*` (16) beats `claude-sonnet-*` (14) beats
//! `claude-*` (7). Two globs with the same number of literal characters that can match one id
//! are refused at load time, naming an id both match, so the winner is never a matter of order.
//!
//! Chain entries are model ids (with variant suffixes) or other route names, matched exactly:
//! globs only ever match what a client asked for, so a glob cannot capture its own targets.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::expand::expand_current;
use super::locate::segment as path_segment;
use super::value::{OneOrMany, Text};
use crate::variant::{self, ServiceTier};

/// Characters a route name cannot contain: model-id syntax (provider, account, variant) and
/// space.
const RESERVED: &[char] = &[':', '/', '@', '+', ' ', '\t'];
/// Glob syntax of other tools that is not ours: refused rather than matched literally.
const FOREIGN_GLOB: &[char] = &['?', '[', ']', '{', '}'];

/// The raw YAML shape of one route.
#[derive(Debug)]
pub(super) enum RawRoute {
    /// `[id, …]` or `id`.
    Chain(Vec<Text>),
    /// `{to: …, effort: …, service_tier: …}`.
    Alias(RawAlias),
}

/// The map form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlias {
    to: OneOrMany<Text>,
    effort: Option<Text>,
    service_tier: Option<Text>,
}

impl<'de> Deserialize<'de> for RawRoute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRoute;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a model id, a list of model ids, or a map with `to` (and `effort`, `service_tier`)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRoute, E> {
                let expanded = expand_current(v).map_err(E::custom)?;
                Ok(RawRoute::Chain(vec![Text(expanded)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawRoute, A::Error> {
                Vec::<Text>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawRoute::Chain)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRoute, A::Error> {
                RawAlias::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRoute::Alias)
            }
        }
        d.deserialize_any(V)
    }
}

/// One validated route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The chain: model ids (maybe with variant suffixes) or route names, tried in order.
    pub to: Vec<String>,
    /// The reasoning effort pinned for every entry, if any.
    pub effort: Option<String>,
    /// The service tier pinned for every entry, if any.
    pub service_tier: Option<ServiceTier>,
}

/// A route key with `*`: its literal parts between the stars.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    key: String,
    /// The key split at `*`: the first part is a prefix, the last a suffix.
    parts: Vec<String>,
    /// How many non-`*` characters it has: its specificity.
    literal: usize,
}

impl Glob {
    fn new(key: &str) -> Glob {
        Glob {
            key: key.to_owned(),
            parts: key.split('*').map(str::to_owned).collect(),
            literal: key.chars().filter(|&c| c != '*').count(),
        }
    }

    /// Whether the glob matches all of `id`. The first part anchors the start, the last the end,
    /// and the middle parts are found leftmost in order (which is exact for `*`-only globs).
    fn matches(&self, id: &str) -> bool {
        let (Some(first), Some(last)) = (self.parts.first(), self.parts.last()) else {
            return false;
        };
        let Some(mut rest) = id.strip_prefix(first.as_str()) else {
            return false;
        };
        let middle = &self.parts[1..self.parts.len().saturating_sub(1)];
        for part in middle {
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last.as_str())
    }
}

/// The shortest id that both `a` and `b` match, if there is one: a search over pairs of
/// positions in the two patterns, where a `*` may end or absorb the other side's next literal.
fn common_match(a: &str, b: &str) -> Option<String> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let index = |i: usize, j: usize| i * (m + 1) + j;
    // For each reached state: the state it was reached from and the character that step emits.
    let mut came_from: Vec<Option<(usize, usize, Option<char>)>> = vec![None; (n + 1) * (m + 1)];
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut queue = VecDeque::from([(0, 0)]);
    seen[index(0, 0)] = true;
    while let Some((i, j)) = queue.pop_front() {
        if (i, j) == (n, m) {
            let mut out = Vec::new();
            let (mut ci, mut cj) = (i, j);
            while let Some((pi, pj, c)) = came_from[index(ci, cj)] {
                out.extend(c);
                (ci, cj) = (pi, pj);
            }
            return Some(out.into_iter().rev().collect());
        }
        let star_a = i < n && a[i] == '*';
        let star_b = j < m && b[j] == '*';
        let mut next = Vec::new();
        if star_a {
            next.push((i + 1, j, None));
        }
        if star_b {
            next.push((i, j + 1, None));
        }
        if i < n && j < m {
            match (star_a, star_b) {
                (false, false) if a[i] == b[j] => next.push((i + 1, j + 1, Some(a[i]))),
                (true, false) => next.push((i, j + 1, Some(b[j]))),
                (false, true) => next.push((i + 1, j, Some(a[i]))),
                _ => {}
            }
        }
        for (ni, nj, c) in next {
            if !seen[index(ni, nj)] {
                seen[index(ni, nj)] = true;
                came_from[index(ni, nj)] = Some((i, j, c));
                queue.push_back((ni, nj));
            }
        }
    }
    None
}

/// Every route, exact names and globs apart.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    exact: BTreeMap<String, Route>,
    globs: Vec<(Glob, Route)>,
}

impl Routes {
    /// The route a client's id selects: the exact name, else the most specific matching glob.
    /// Returns the key that matched with the route.
    #[must_use]
    pub fn lookup(&self, id: &str) -> Option<(&str, &Route)> {
        if let Some((key, route)) = self.exact.get_key_value(id) {
            return Some((key.as_str(), route));
        }
        self.globs
            .iter()
            .filter(|(glob, _)| glob.matches(id))
            .max_by_key(|(glob, _)| glob.literal)
            .map(|(glob, route)| (glob.key.as_str(), route))
    }

    /// The route with exactly this name (not a glob): how chain entries refer to routes.
    #[must_use]
    pub fn named(&self, name: &str) -> Option<&Route> {
        self.exact.get(name)
    }

    /// Every route with its key, exact names first (sorted), then globs (sorted).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Route, bool)> {
        self.exact
            .iter()
            .map(|(k, r)| (k.as_str(), r, false))
            .chain(self.globs.iter().map(|(g, r)| (g.key.as_str(), r, true)))
    }

    /// Whether there are no routes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.globs.is_empty()
    }

    /// Validates the raw section. Errors are `(key path, message)`.
    pub(super) fn from_raw(raw: BTreeMap<Text, RawRoute>) -> Result<Routes, (String, String)> {
        let mut routes = Routes::default();
        let mut globs = BTreeMap::new();
        for (Text(name), raw) in raw {
            let path = format!("routes.{}", path_segment(&name));
            check_name(&name).map_err(|m| (path.clone(), m))?;
            let route = validate(&path, raw)?;
            if name.contains('*') {
                globs.insert(name, route);
            } else {
                routes.exact.insert(name, route);
            }
        }
        routes.globs = globs.into_iter().map(|(k, r)| (Glob::new(&k), r)).collect();
        routes.check_entries()?;
        routes.check_ties()?;
        Ok(routes)
    }

    /// A chain entry naming a route cannot carry a variant suffix: the suffix would apply to
    /// models the route may send anywhere.
    fn check_entries(&self) -> Result<(), (String, String)> {
        for (key, route, _) in self.iter() {
            for entry in &route.to {
                let (base, words) = variant::split(entry);
                if words.is_some() && self.exact.contains_key(base) {
                    return Err((
                        format!("routes.{}", path_segment(key)),
                        format!(
                            "`{entry}`: variants apply to models, and `{base}` is a route; pin `effort` or `service_tier` in `{base}` instead"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Refuses two equally specific globs that can match the same id.
    fn check_ties(&self) -> Result<(), (String, String)> {
        for (i, (a, _)) in self.globs.iter().enumerate() {
            for (b, _) in &self.globs[i + 1..] {
                if a.literal != b.literal {
                    continue;
                }
                if let Some(both) = common_match(&a.key, &b.key) {
                    return Err((
                        format!("routes.{}", path_segment(&b.key)),
                        format!(
                            "`{}` and `{}` are equally specific ({} literal characters each) and both match `{both}`; make one of them more specific",
                            a.key, b.key, a.literal
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a route name cannot be empty".into());
    }
    if name.contains(RESERVED) {
        return Err(
            "a route name cannot contain `:`, `/`, `@`, `+` or spaces: they are model-id syntax (provider, account, variant)"
                .into(),
        );
    }
    if name.contains(FOREIGN_GLOB) {
        return Err(
            "only `*` is a wildcard in a route name (`?`, `[`, `]`, `{`, `}` are not)".into(),
        );
    }
    if name.contains("**") {
        return Err("`**` matches what `*` matches; write one `*`".into());
    }
    Ok(())
}

fn validate(path: &str, raw: RawRoute) -> Result<Route, (String, String)> {
    let (targets, to_path, effort, tier) = match raw {
        RawRoute::Chain(targets) => (targets, path.to_owned(), None, None),
        RawRoute::Alias(RawAlias {
            to: OneOrMany(targets),
            effort,
            service_tier,
        }) => (targets, format!("{path}.to"), effort, service_tier),
    };
    if targets.is_empty() {
        return Err((to_path, "list at least one model".into()));
    }
    let mut to = Vec::with_capacity(targets.len());
    for Text(target) in targets {
        check_target(&target).map_err(|m| (to_path.clone(), m))?;
        to.push(target);
    }
    let effort = effort
        .map(|Text(e)| {
            variant::known_effort(&e)
                .map(str::to_owned)
                .map_err(|err| (format!("{path}.effort"), err.to_string()))
        })
        .transpose()?;
    let service_tier = tier
        .map(|Text(t)| {
            ServiceTier::parse(&t).map_err(|err| (format!("{path}.service_tier"), err.to_string()))
        })
        .transpose()?;
    Ok(Route {
        to,
        effort,
        service_tier,
    })
}

fn check_target(target: &str) -> Result<(), String> {
    if target.trim().is_empty() {
        return Err("an entry is empty: name a model".into());
    }
    if target.contains('*') {
        return Err(format!(
            "`{target}` is a pattern; a route lists model ids or route names"
        ));
    }
    variant::parse(target)
        .map(|_| ())
        .map_err(|e| format!("`{target}`: {e}"))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn globs_match_whole_ids() {
        let cases = [
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "claude-", true),
            ("claude-*", "xclaude-a", false),
            ("*-haiku-*", "claude-haiku-4-5", true),
            ("*-haiku-*", "claude-haiku", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*", "anything", true),
            ("*4-5", "claude-opus-4-5", true),
            ("*4-5", "claude-opus-4-6", false),
        ];
        for (glob, id, want) in cases {
            assert_eq!(Glob::new(glob).matches(id), want, "{glob} ~ {id}");
        }
    }

    #[test]
    fn common_matches_are_found_or_ruled_out() {
        let cases = [
            ("a*", "*a", Some("a")),
            ("claude-*", "*-4-5", Some("claude-4-5")),
            ("ab*", "a*c", Some("abc")),
            ("a*", "b*", None),
            ("*x", "*y", None),
            ("a*b", "a*b", Some("ab")),
        ];
        for (a, b, want) in cases {
            let got = common_match(a, b);
            assert_eq!(got.as_deref(), want, "{a} & {b}");
            if let Some(id) = got {
                assert!(
                    Glob::new(a).matches(&id) && Glob::new(b).matches(&id),
                    "{id}"
                );
            }
        }
    }
}
