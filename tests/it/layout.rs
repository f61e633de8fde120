//! The source layout's two rules, checked on the files themselves: no import circles between
//! modules, and no source file (library, tests or benchmarks) over 600 lines.
//!
//! Import circles: every `crate::…` and `super::…` path in a module's code (tests and comments
//! left out) is an edge to the deepest module that path names. An edge between two modules is
//! counted between their ancestors that are siblings (`proxy::walk` → `proxy::relay` is an edge
//! between `walk` and `relay` inside `proxy`; `proxy::walk` → `quota::book` one between `proxy`
//! and `quota` at the top); edges between a module and its own ancestors or descendants are
//! containment, not layering, and are not counted. Any cycle among siblings fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 600;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a library source file (`src/proxy/walk.rs` → `["proxy", "walk"]`);
/// `None` for the binary's `main.rs`.
fn module_of(file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(root().join("src")).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "main.rs" if parts.is_empty() => return None,
        "lib.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    Some(parts)
}

/// Whether a module is test code (a `tests` module or one inside it).
fn is_test_module(module: &[String]) -> bool {
    module.iter().any(|p| p == "tests")
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests` block.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a module's code names, as written after `crate::` or as `super::…` resolved
/// against the module: `use` trees are expanded one level (`use crate::a::{b, c::d}` names
/// `a::b` and `a::c::d`).
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let at = &bytes[i..];
        let (prefix, base): (&str, Vec<String>) = if at.starts_with(b"crate::") {
            ("crate::", Vec::new())
        } else if at.starts_with(b"super::") {
            let mut base = module.to_vec();
            let mut skip = 0;
            // An ASCII letter starts here, so this is a character boundary.
            let mut r = &code[i..];
            while let Some(t) = r.strip_prefix("super::") {
                base.pop();
                skip += "super::".len();
                r = t;
            }
            out_super(&mut out, &base, &code[i + skip..]);
            i += skip;
            continue;
        } else {
            i += 1;
            continue;
        };
        if i > 0 && is_ident(bytes[i - 1]) {
            i += 1;
            continue;
        }
        i += prefix.len();
        out_super(&mut out, &base, &code[i..]);
    }
    out
}

/// Reads one path (or `use` tree) at the start of `text` and records it under `base`.
fn out_super(out: &mut Vec<Vec<String>>, base: &[String], text: &str) {
    let mut path = base.to_vec();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_owned());
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("::") {
            rest = r;
            if let Some(tree) = rest.strip_prefix('{') {
                // A use tree: each top-level entry is a path under `path`.
                let mut depth = 0;
                let mut entry = String::new();
                for c in tree.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out_super(out, &path, entry.trim());
                            entry.clear();
                            continue;
                        }
                        _ => {}
                    }
                    entry.push(c);
                }
                out_super(out, &path, entry.trim());
                return;
            }
        } else {
            break;
        }
    }
    out.push(path);
}

/// The deepest known module a path names.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let files = rust_files(&root().join("src"));
    let mut modules = BTreeSet::new();
    let mut code = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        modules.insert(module.clone());
        if !is_test_module(&module) {
            let text = std::fs::read_to_string(file).unwrap();
            code.insert(module, code_of(&text));
        }
    }
    // Sibling-level edges: parent -> (from child -> to child) -> an example of the import.
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, String>>> =
        BTreeMap::new();
    for (module, text) in &code {
        for path in named_paths(module, text) {
            let target = resolve(&path, &modules);
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // one contains the other
            }
            let parent = module[..common].to_vec();
            let (from, to) = (module[common].clone(), target[common].clone());
            edges
                .entry(parent)
                .or_default()
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert_with(|| format!("{} uses {}", module.join("::"), path.join("::")));
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &edges {
        for cycle in find_cycles(graph) {
            let hops: Vec<String> = cycle
                .windows(2)
                .map(|w| graph[&w[0]][&w[1]].clone())
                .collect();
            cycles.push(format!(
                "in `{}`: {} ({})",
                if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    parent.join("::")
                },
                cycle.join(" -> "),
                hops.join("; ")
            ));
        }
    }
    assert!(
        cycles.is_empty(),
        "import circles between modules:\n{}",
        cycles.join("\n")
    );
}

/// One cycle per strongly connected group of siblings, as a closed walk `a -> b -> … -> a`.
fn find_cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    let mut cycles = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        // Breadth-first from `start` back to `start`: the shortest cycle through it.
        let mut previous: BTreeMap<String, String> = BTreeMap::new();
        previous.insert(start.clone(), start.clone());
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut found = false;
        while let Some(node) = queue.pop_front() {
            for next in graph.get(&node).into_iter().flat_map(BTreeMap::keys) {
                if next == start {
                    // Walk back from `node` to `start`, then close the loop.
                    let mut cycle = vec![node.clone()];
                    while cycle.last() != Some(start) {
                        let at = cycle.last().cloned().unwrap_or_default();
                        cycle.push(previous[&at].clone());
                    }
                    cycle.reverse();
                    cycle.push(start.clone());
                    reported.extend(cycle.iter().cloned());
                    cycles.push(cycle);
                    found = true;
                    break;
                }
                if !previous.contains_key(next) {
                    previous.insert(next.clone(), node.clone());
                    queue.push_back(next.clone());
                }
            }
            if found {
                break;
            }
        }
    }
    cycles
}

#[test]
fn the_checker_sees_a_circle() {
    let graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::from([
        ("a".into(), BTreeMap::from([("b".into(), String::new())])),
        ("b".into(), BTreeMap::from([("c".into(), String::new())])),
        ("c".into(), BTreeMap::from([("a".into(), String::new())])),
        ("d".into(), BTreeMap::from([("a".into(), String::new())])),
    ]);
    let cycles = find_cycles(&graph);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].first(), cycles[0].last());
    assert_eq!(cycles[0].len(), 4, "{cycles:?}");
    let module: Vec<String> = vec!["proxy".into(), "walk".into()];
    let paths = named_paths(
        &module,
        "use super::relay::{self, Peek};\nuse crate::quota::{AccountBook, file::load};\nlet x = crate::clock::unix_now();",
    );
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "proxy::relay::self",
            "proxy::relay::Peek",
            "quota::AccountBook",
            "quota::file::load",
            "clock::unix_now"
        ]
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    for dir in ["src", "tests", "benches"] {
        for file in rust_files(&root().join(dir)) {
            let rel = file
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!("{rel}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines (split them by responsibility):\n{}",
        long.join("\n")
    );
}
