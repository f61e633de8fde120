//! Finds the line of a key path (`providers.openai.base_url`) in block-style YAML text, so that
//! errors found after parsing (validation) and errors whose parser position is only the enclosing
//! mapping can point at the exact line.

/// The 1-based line of `path` in `text`, or of the deepest ancestor that could be found.
#[must_use]
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let segments: Vec<&str> = path
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
        .collect();
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
    fn falls_back_to_the_deepest_ancestor() {
        assert_eq!(line_of(DOC, "providers.openai.api_key"), Some(4));
        assert_eq!(line_of(DOC, "nothing"), None);
    }
}
