//! Stop sequences. The Codex backend accepts none, so bitrouter applies the client's stop
//! sequences to the text on its way back: output is cut before the first match and nothing after
//! it is passed on. The model still generates (and the account is still charged for) the rest of
//! its answer; only the client's view is cut, as with the real APIs' own stop behaviour.
//!
//! In a stream, text that could be the start of a stop sequence is held back until the next
//! delta shows whether it is one, so a sequence split across deltas is still caught.

/// Streaming stop-sequence matcher over text deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopScanner {
    /// The client's non-empty stop sequences.
    stops: Vec<String>,
    /// Text seen but not yet released: a suffix that may begin a stop sequence.
    held: String,
    /// The stop sequence that matched, once one has.
    hit: Option<String>,
}

impl StopScanner {
    /// A scanner for these stop sequences (empty ones are ignored).
    #[must_use]
    pub fn new(stops: Vec<String>) -> Self {
        StopScanner {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            hit: None,
        }
    }

    /// Takes the next delta and returns the text that is now safe to pass on. After a match,
    /// returns only the text before it, then nothing ever again.
    pub fn push(&mut self, delta: &str) -> String {
        if self.hit.is_some() {
            return String::new();
        }
        if self.stops.is_empty() {
            return delta.to_owned();
        }
        self.held.push_str(delta);
        if let Some((at, stop)) = first_match(&self.held, &self.stops) {
            self.hit = Some(stop.to_owned());
            self.held.truncate(at);
            return std::mem::take(&mut self.held);
        }
        let keep = longest_partial_suffix(&self.held, &self.stops);
        let release = self.held.len() - keep;
        self.held.drain(..release).collect()
    }

    /// Returns the held-back text at the end of the output (nothing after a match).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The stop sequence that matched, if one did.
    #[must_use]
    pub fn hit(&self) -> Option<&str> {
        self.hit.as_deref()
    }
}

/// Cuts `text` before the first stop sequence. Returns the kept text and the matched sequence.
#[must_use]
pub fn truncate_at_stop<'a>(text: &'a str, stops: &[String]) -> (&'a str, Option<String>) {
    match first_match(text, stops) {
        Some((at, stop)) => (&text[..at], Some(stop.to_owned())),
        None => (text, None),
    }
}

/// The earliest match of any non-empty stop sequence in `text`: its byte offset and the sequence.
fn first_match<'s>(text: &str, stops: &'s [String]) -> Option<(usize, &'s str)> {
    stops
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop.as_str()).map(|at| (at, stop.as_str())))
        .min_by_key(|(at, _)| *at)
}

/// The length in bytes of the longest suffix of `text` that is a proper prefix of a stop
/// sequence (always on a char boundary).
fn longest_partial_suffix(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|stop| {
            (1..stop.len())
                .filter(|k| stop.is_char_boundary(*k))
                .filter(|k| text.ends_with(&stop[..*k]))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(deltas: &[&str], list: &[&str]) -> (String, Option<String>) {
        let mut scanner = StopScanner::new(stops(list));
        let mut out: String = deltas.iter().map(|d| scanner.push(d)).collect();
        out.push_str(&scanner.flush());
        (out, scanner.hit().map(str::to_owned))
    }

    #[test]
    fn stop_passes_text_through_without_stops() {
        assert_eq!(run(&["a", "b"], &[]), ("ab".to_owned(), None));
        assert_eq!(run(&["a", "b"], &[""]), ("ab".to_owned(), None));
    }

    #[test]
    fn stop_catches_a_sequence_split_across_deltas() {
        assert_eq!(
            run(&["Hello", ", wo", "rld! é"], &["world"]),
            ("Hello, ".to_owned(), Some("world".to_owned()))
        );
    }

    #[test]
    fn stop_holds_back_only_a_possible_prefix() {
        let mut scanner = StopScanner::new(stops(&["END"]));
        assert_eq!(scanner.push("abcE"), "abc");
        assert_eq!(scanner.push("Nx"), "ENx");
        assert_eq!(scanner.push("yE"), "y");
        assert_eq!(scanner.flush(), "E");
        assert_eq!(scanner.hit(), None);
    }

    #[test]
    fn stop_picks_the_earliest_of_several_sequences() {
        assert_eq!(
            run(&["one two three"], &["three", "two"]),
            ("one ".to_owned(), Some("two".to_owned()))
        );
    }

    #[test]
    fn stop_drops_everything_after_a_match() {
        let mut scanner = StopScanner::new(stops(&["\n\n"]));
        assert_eq!(scanner.push("a\n\nb"), "a");
        assert_eq!(scanner.push("more"), "");
        assert_eq!(scanner.flush(), "");
    }

    #[test]
    fn stop_handles_multibyte_sequences() {
        assert_eq!(
            run(&["xé", "😀y"], &["é😀"]),
            ("x".to_owned(), Some("é😀".to_owned()))
        );
    }

    #[test]
    fn truncate_at_stop_cuts_whole_text() {
        let list = stops(&["c", "b"]);
        assert_eq!(truncate_at_stop("abc", &list), ("a", Some("b".to_owned())));
        assert_eq!(truncate_at_stop("xyz", &list), ("xyz", None));
    }
}
