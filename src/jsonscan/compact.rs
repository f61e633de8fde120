//! A JSON value rewritten in one pass, without building a tree: insignificant whitespace
//! dropped and the entries of chosen keys left out at every depth (see [`compact_without`]).

use super::{entries, key_is, skip_space, string_end, value_at};

/// Deeper nesting than serde_json reads (its limit is 128) is refused.
const MAX_DEPTH: usize = 128;

/// Writes `raw`, one JSON value, to `out` without insignificant whitespace and without the
/// entries of any object (at any depth) whose key is one of `dropped`; what is kept is copied
/// as it is written (strings keep their escapes, numbers their form, objects their order).
/// `None` when `raw` is not one value the scanner can follow (`out` may then hold a part).
///
/// One walk over the bytes, each copied at most once: a tree of a request's tools (tens of
/// kilobytes of schemas) cost several times more to build, clean and write again.
pub fn compact_without(raw: &[u8], dropped: &[&str], out: &mut Vec<u8>) -> Option<()> {
    let mut walk = Walk {
        s: raw,
        dropped,
        out,
    };
    let end = walk.value(skip_space(raw, 0), 0)?;
    (skip_space(raw, end) == raw.len()).then_some(())
}

struct Walk<'a, 'o> {
    s: &'a [u8],
    dropped: &'a [&'a str],
    out: &'o mut Vec<u8>,
}

impl Walk<'_, '_> {
    /// Writes the value that starts at `at` (no whitespace before it); where it ends.
    fn value(&mut self, at: usize, depth: usize) -> Option<usize> {
        match *self.s.get(at)? {
            b'{' if depth < MAX_DEPTH => self.object(at, depth + 1),
            b'[' if depth < MAX_DEPTH => self.array(at, depth + 1),
            b'{' | b'[' => None,
            b'"' => {
                let end = string_end(self.s, at)?;
                self.out.extend_from_slice(&self.s[at..end]);
                Some(end)
            }
            _ => {
                let range = value_at(self.s, at)?;
                let end = range.end;
                self.out.extend_from_slice(&self.s[range]);
                Some(end)
            }
        }
    }

    /// Writes the object that opens at `open`, its entries read by [`super::Entries`] (which finds
    /// each key and where its value starts; the value is written here, and read only once).
    fn object(&mut self, open: usize, depth: usize) -> Option<usize> {
        let s = self.s;
        let mut entries = entries(&s[open..])?;
        self.out.push(b'{');
        let mut first = true;
        while let Some(entry) = entries.next_key() {
            let (key, start) = entry.ok()?;
            let start = skip_space(s, open + start);
            let end = if self.dropped.iter().any(|d| key_is(key, d)) {
                value_at(s, start)?.end
            } else {
                if !first {
                    self.out.push(b',');
                }
                first = false;
                // The key as written, escapes and all.
                self.out.push(b'"');
                self.out.extend_from_slice(key);
                self.out.extend_from_slice(b"\":");
                self.value(start, depth)?
            };
            entries.resume_at(end - open);
        }
        self.out.push(b'}');
        Some(open + entries.end()?)
    }

    fn array(&mut self, open: usize, depth: usize) -> Option<usize> {
        self.out.push(b'[');
        let mut at = skip_space(self.s, open + 1);
        if self.s.get(at) == Some(&b']') {
            self.out.push(b']');
            return Some(at + 1);
        }
        loop {
            let end = self.value(at, depth)?;
            at = skip_space(self.s, end);
            match *self.s.get(at)? {
                b',' => {
                    self.out.push(b',');
                    at = skip_space(self.s, at + 1);
                }
                b']' => {
                    self.out.push(b']');
                    return Some(at + 1);
                }
                _ => return None,
            }
        }
    }
}
