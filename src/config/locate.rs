//! Finds the line of a key path (`providers.openai.base_url`) in block-style YAML text, so that
//! errors found after parsing (validation) and errors whose parser position is only the enclosing
//! mapping can point at the exact line.

/// A key as one segment of a path: quoted when it holds anything but letters, digits, `-` and
/// `_`, so dots and stars stay readable and findable (`routes."claude-*".effort`).
#[must_use]
pub fn segment(key: &str) -> String {
    let needs_quotes = key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if needs_quotes {
        format!("\"{key}\"")
    } else {
        key.to_owned()
    }
}

/// Splits a path at the dots outside double quotes, dropping `[i]` indexes and the quotes.
fn split_path(path: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (segment, tail) = if let Some(quoted) = rest.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], quoted[end + 1..].trim_start_matches('.')),
                None => (quoted, ""),
            }
        } else {
            match rest.split_once('.') {
                Some((head, tail)) => (head, tail),
                None => (rest, ""),
            }
        };
        let segment = segment.split('[').next().unwrap_or(segment);
        if !segment.is_empty() {
            segments.push(segment);
        }
        rest = tail;
    }
    segments
}

/// The 1-based line of `path` in `text`, or of the deepest ancestor that could be found.
#[must_use]
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let segments = split_path(path);
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    for segment in segments {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if found.is_some() && parent_indent.is_some_and(|p| indent <= p) {
                break; // left the parent's block
            }
            if is_key_line(trimmed, segment) {
                hit = Some((i, indent));
                break;
            }
        }
        let Some((i, indent)) = hit else { break };
        found = Some(i + 1);
        start = i + 1;
        parent_indent = Some(indent);
    }
    found
}

/// Whether a line (indentation removed) is `segment:`, `"segment":` or `'segment':`.
fn is_key_line(trimmed: &str, segment: &str) -> bool {
    let t = trimmed.trim_start_matches("- ");
    let rest = t
        .strip_prefix(segment)
        .or_else(|| t.strip_prefix(&format!("\"{segment}\"")))
        .or_else(|| t.strip_prefix(&format!("'{segment}'")));
    rest.is_some_and(|r| r.trim_start().starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const DOC: &str = "server:\n  listen: x\nproviders:\n  openai:\n    models: [a]\n    base_url: u\n  other:\n    base_url: v\n";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(line_of(DOC, "server.listen"), Some(2));
        assert_eq!(line_of(DOC, "providers.openai.base_url"), Some(6));
        assert_eq!(line_of(DOC, "providers.other.base_url"), Some(8));
    }

    #[test]
    fn quoted_segments_keep_their_dots() {
        let doc = "routes:\n  fast: [a]\n  \"gpt-6.1-*\":\n    to: b\n    effort: high\n";
        assert_eq!(line_of(doc, "routes.\"gpt-6.1-*\".effort"), Some(5));
        assert_eq!(
            line_of(doc, &format!("routes.{}", super::segment("gpt-6.1-*"))),
            Some(3)
        );
        assert_eq!(super::segment("fast"), "fast");
        assert_eq!(super::segment("claude-*"), "\"claude-*\"");
    }

    #[test]
    fn falls_back_to_the_deepest_ancestor() {
        assert_eq!(line_of(DOC, "providers.openai.api_key"), Some(4));
        assert_eq!(line_of(DOC, "nothing"), None);
    }
}
