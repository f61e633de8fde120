//! Reading JSON in place, for the hot path: where a value ends, an object's entries and an
//! array's items, as ranges of the original bytes, without building anything. The scanner
//! trusts the input's grammar only as far as finding boundaries needs (strings, nesting); it
//! does not validate numbers or literals, so a caller that needs valid JSON checks it first
//! (the request body is checked when it is taken in). Malformed input gives `None`, never a
//! panic.

use std::borrow::Cow;
use std::ops::Range;

/// The first non-whitespace position at or after `at`.
/// The position of the first byte at or after `at` that is not JSON whitespace.
#[must_use]
pub fn skip_space(s: &[u8], mut at: usize) -> usize {
    while at < s.len() && matches!(s[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The position after the string that opens at `at` (which holds `"`).
fn string_end(s: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += quote_or_backslash(s.get(i..)?)?;
        if s[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// The first `"` or `\\` in `s`. Most strings in JSON are short keys and values: their first
/// bytes are looked at eight at a time in a plain word, whose set-up costs nothing; longer
/// ones go on to `memchr2`, vectorised.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut at = 0;
    while let Some(chunk) = s.get(at..at + 8).filter(|_| at < SHORT) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = &s[at..];
    let found = if at < SHORT {
        rest.iter().position(|&b| b == b'"' || b == b'\\')
    } else {
        memchr::memchr2(b'"', b'\\', rest)
    };
    found.map(|i| i + at)
}

/// The bytes of `word` (little-endian) that equal `byte`, as the top bit of each: the lowest
/// bit set marks the first one exactly (a false mark can only sit above a true one).
pub(crate) fn bytes_equal(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zeroed = word ^ (ONES * u64::from(byte));
    zeroed.wrapping_sub(ONES) & !zeroed & TOPS
}

/// Whether `s`, the contents of a JSON string, holds an escape. A quote inside a string is
/// always escaped, so the first quote or backslash is a backslash exactly when there is one:
/// the word-at-a-time search answers it. (A stray quote in malformed text also counts; the
/// caller then decodes the text, which refuses it.)
fn has_escape(s: &[u8]) -> bool {
    quote_or_backslash(s).is_some()
}

/// The range of the value that starts at or after `at` (leading whitespace skipped).
#[must_use]
pub fn value_at(s: &[u8], at: usize) -> Option<Range<usize>> {
    let start = skip_space(s, at);
    let end = match *s.get(start)? {
        b'"' => string_end(s, start)?,
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match *s.get(i)? {
                    b'"' => {
                        i = string_end(s, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            break i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let rest = &s[start..];
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            if len == 0 {
                return None;
            }
            start + len
        }
    };
    Some(start..end)
}

/// One entry of an object: its key as written (quotes off, escapes kept) and the range of its
/// value in the input; `Err(())` where the input is malformed (the last item then).
pub type Entry<'a> = Result<(&'a [u8], Range<usize>), ()>;

/// An object's entries in order, ending at the object's end.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    s: &'a [u8],
    at: usize,
    done: bool,
    /// Past the object's closing brace, once the entries ran out there.
    end: Option<usize>,
}

/// The entries of the object that `s` holds (whitespace around it allowed).
#[must_use]
pub fn entries(s: &[u8]) -> Option<Entries<'_>> {
    let at = skip_space(s, 0);
    (s.get(at) == Some(&b'{')).then_some(Entries {
        s,
        at: at + 1,
        done: false,
        end: None,
    })
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.guarded(Self::step)
    }
}

impl<'a> Entries<'a> {
    /// Where the object ends (just past its closing brace), once every entry was read without
    /// error: a caller that reads an object's entries learns its extent from the same walk.
    #[must_use]
    pub fn end(&self) -> Option<usize> {
        self.end
    }

    /// The next entry's key and where its value starts (whitespace before it not skipped),
    /// leaving the value to the caller, who must then say where it ends with
    /// [`Entries::resume_at`]: a caller that reads a value itself walks it only once. `None` at
    /// the object's end; `Err(())` where the input is malformed (the last item then).
    pub fn next_key(&mut self) -> Option<Result<(&'a [u8], usize), ()>> {
        self.guarded(Self::key)
    }

    /// Runs one read unless the entries are over, and ends them when it found no entry or a
    /// malformed one.
    fn guarded<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<Result<T, ()>>,
    ) -> Option<Result<T, ()>> {
        if self.done {
            return None;
        }
        let found = read(self);
        if !matches!(found, Some(Ok(_))) {
            self.done = true;
        }
        found
    }

    /// Goes on after a value read by the caller, which ends at `end`.
    pub fn resume_at(&mut self, end: usize) {
        self.at = end;
    }

    fn key(&mut self) -> Option<Result<(&'a [u8], usize), ()>> {
        let s = self.s;
        let mut at = skip_space(s, self.at);
        match s.get(at) {
            Some(b'}') => {
                self.end = Some(at + 1);
                return None;
            }
            Some(b',') => at = skip_space(s, at + 1),
            _ => {}
        }
        if s.get(at) != Some(&b'"') {
            return Some(Err(()));
        }
        let Some(key_end) = string_end(s, at) else {
            return Some(Err(()));
        };
        let key = &s[at + 1..key_end - 1];
        let colon = skip_space(s, key_end);
        if s.get(colon) != Some(&b':') {
            return Some(Err(()));
        }
        Some(Ok((key, colon + 1)))
    }

    fn step(&mut self) -> Option<Entry<'a>> {
        let (key, start) = match self.key()? {
            Ok(found) => found,
            Err(()) => return Some(Err(())),
        };
        let Some(value) = value_at(self.s, start) else {
            return Some(Err(()));
        };
        self.at = value.end;
        Some(Ok((key, value)))
    }
}

/// An array's items in order, as ranges of the input.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    s: &'a [u8],
    at: usize,
    done: bool,
}

/// The items of the array that `s` holds (whitespace around it allowed).
#[must_use]
pub fn items(s: &[u8]) -> Option<Items<'_>> {
    let at = skip_space(s, 0);
    (s.get(at) == Some(&b'[')).then_some(Items {
        s,
        at: at + 1,
        done: false,
    })
}

impl Iterator for Items<'_> {
    type Item = Result<Range<usize>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let s = self.s;
        let mut at = skip_space(s, self.at);
        match s.get(at) {
            Some(b']') => {
                self.done = true;
                return None;
            }
            Some(b',') => at += 1,
            _ => {}
        }
        match value_at(s, at) {
            Some(range) => {
                self.at = range.end;
                Some(Ok(range))
            }
            None => {
                self.done = true;
                Some(Err(()))
            }
        }
    }
}

/// A key as text (decoded only when it has escapes); `None` when it is not valid.
#[must_use]
pub fn key(key: &[u8]) -> Option<Cow<'_, str>> {
    if !has_escape(key) {
        return std::str::from_utf8(key).ok().map(Cow::Borrowed);
    }
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .ok()
        .map(Cow::Owned)
}

/// A key's bytes, decoded only when it has escapes; `None` when its escapes are not valid.
/// Enough to compare with plain names (no UTF-8 check is needed for that).
#[must_use]
pub fn key_bytes(key: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !has_escape(key) {
        return Some(Cow::Borrowed(key));
    }
    self::key(key).map(|k| Cow::Owned(k.into_owned().into_bytes()))
}

/// A key as written equals `name`, plain text without escapes (keys with escapes are decoded
/// first).
#[must_use]
pub fn key_is(key: &[u8], name: &str) -> bool {
    if key == name.as_bytes() {
        return true;
    }
    // An escape is longer than what it stands for: a shorter key cannot decode to `name`.
    if key.len() < name.len() || !has_escape(key) {
        return false;
    }
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == name)
}

/// The text of a JSON string value (`raw` includes its quotes), borrowed when it has no escapes;
/// `None` when `raw` is not a string.
#[must_use]
pub fn string(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !has_escape(inner) {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
}

/// The range of the first entry named `name` in the object `s` holds.
#[must_use]
pub fn field_range(s: &[u8], name: &str) -> Option<Range<usize>> {
    let [range] = field_ranges(s, [name]);
    range
}

/// The ranges of the first entries named `names` in the object `s` holds, read in one pass
/// (which stops once each has been found).
#[must_use]
pub fn field_ranges<const N: usize>(s: &[u8], names: [&str; N]) -> [Option<Range<usize>>; N] {
    let mut found = [const { None }; N];
    let Some(entries) = entries(s) else {
        return found;
    };
    let mut left = N;
    for (key, range) in entries.map_while(Result::ok) {
        for (name, slot) in names.iter().zip(found.iter_mut()) {
            if slot.is_none() && key_is(key, name) {
                *slot = Some(range.clone());
                left -= 1;
            }
        }
        if left == 0 {
            break;
        }
    }
    found
}

/// Where the value of the first entry named `name` in the object `s` holds begins, found
/// without reading that value: a caller that only looks inside it (the fields of a nested
/// object) reads it once, not once to find its end and again to look in it. The value itself
/// is not checked; `s` may go on past it.
#[must_use]
pub fn field_start(s: &[u8], name: &str) -> Option<usize> {
    let mut entries = entries(s)?;
    while let Some(Ok((key, start))) = entries.next_key() {
        if key_is(key, name) {
            return Some(skip_space(s, start));
        }
        entries.resume_at(value_at(s, start)?.end);
    }
    None
}

/// The value of the first entry named `name` in the object `s` holds.
#[must_use]
pub fn field<'a>(s: &'a [u8], name: &str) -> Option<&'a [u8]> {
    field_range(s, name).map(|range| &s[range])
}

/// A JSON number that is a whole, non-negative integer.
#[must_use]
pub fn unsigned(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The value that starts at or after `at` (whitespace skipped) read as a whole, non-negative
/// number, with where that value ends: a count read where it stands, walked once. The number is
/// `None` when the value is something else; all is `None` when there is no value there.
#[must_use]
pub fn unsigned_at(s: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
    let start = skip_space(s, at);
    let digits = s
        .get(start..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let ends = matches!(
        s.get(start + digits),
        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
    );
    let end = if digits > 0 && ends {
        start + digits
    } else {
        value_at(s, start)?.end
    };
    Some((unsigned(&s[start..end]), end))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|f| json!(f)),
            "[a-z\"\\\\\n\u{e9}{}\\[\\],:]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\]{0,5}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn ranges_agree_with_serde(value in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            let bytes = text.as_bytes();
            // Compared with serde's own reading of the text (floats may not round-trip).
            let value: Value = serde_json::from_slice(bytes).unwrap();
            let range = value_at(bytes, 0).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Value>(&bytes[range.clone()]).unwrap(), value.clone());
            if let Value::Object(map) = &value {
                // Read to the end, the entries know where the object ends: where value_at says.
                let mut all = entries(bytes).unwrap();
                all.by_ref().for_each(drop);
                prop_assert_eq!(all.end(), Some(range.end));
                // Keys with the values left to the caller: the same entries, the same end.
                let mut keyed = entries(bytes).unwrap();
                let mut by_key = Vec::new();
                while let Some(entry) = keyed.next_key() {
                    let (key, start) = entry.unwrap();
                    let value = value_at(bytes, start).unwrap();
                    keyed.resume_at(value.end);
                    by_key.push((key, value));
                }
                let plain: Vec<_> = entries(bytes).unwrap().map(Result::unwrap).collect();
                prop_assert_eq!(by_key, plain);
                prop_assert_eq!(keyed.end(), Some(range.end));
                let found: Vec<(String, Value)> = entries(bytes)
                    .unwrap()
                    .map(|e| {
                        let (key, range) = e.unwrap();
                        let key = string(&[b"\"", key, b"\""].concat()).unwrap().into_owned();
                        (key, serde_json::from_slice(&bytes[range]).unwrap())
                    })
                    .collect();
                let expected: Vec<(String, Value)> =
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(found, expected);
                // Each key's value starts where field_start says (the first entry of a name).
                for key in map.keys().filter(|k| !k.contains(['"', '\\'])) {
                    let start = field_range(bytes, key).map(|r| r.start);
                    prop_assert_eq!(field_start(bytes, key), start);
                }
            }
            if let Value::Array(list) = &value {
                let found: Vec<Value> = items(bytes)
                    .unwrap()
                    .map(|r| serde_json::from_slice(&bytes[r.unwrap()]).unwrap())
                    .collect();
                prop_assert_eq!(&found, list);
            }
        }

        #[test]
        fn malformed_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = value_at(&bytes, 0);
            if let Some(e) = entries(&bytes) {
                for _ in e {}
            }
            if let Some(i) = items(&bytes) {
                for _ in i {}
            }
            let _ = string(&bytes);
        }
    }

    #[test]
    fn fields_and_strings_read_in_place() {
        let doc = br#" {"a": 1, "b\u0073": "x\"y", "c": {"d": [1, {"e": null}]}} "#;
        assert_eq!(field(doc, "a"), Some(&b"1"[..]));
        assert_eq!(field(doc, "bs").map(string), Some(Some("x\"y".into())));
        assert_eq!(field(doc, "c"), Some(&br#"{"d": [1, {"e": null}]}"#[..]));
        assert_eq!(field(doc, "z"), None);
        let [c, z, a] = field_ranges(doc, ["c", "z", "a"]);
        assert_eq!(
            (c, z, a),
            (field_range(doc, "c"), None, field_range(doc, "a"))
        );
        // The first of two entries with one name, as `field` reads it.
        let twice = br#"{"a": 1, "a": 2}"#;
        assert_eq!(field_ranges(twice, ["a"]), [field_range(twice, "a")]);
        assert_eq!(string(b"\"plain\""), Some(Cow::Borrowed("plain")));
        // Strings around the word and vectorised search boundaries, with escapes on both
        // sides of each.
        for text in [7, 8, 9, 31, 32, 33, 80].map(|n| "z".repeat(n)) {
            for at in [0, 7, 8, 9, 23, 31, 32, 33, 80].map(|at: usize| at.min(text.len())) {
                let mut value = text.clone();
                value.insert_str(at, "\"\\");
                let doc = serde_json::to_vec(&json!({"k": value, "after": 1})).unwrap();
                assert_eq!(field(&doc, "k").and_then(string), Some(Cow::Owned(value)));
                assert_eq!(field(&doc, "after"), Some(&b"1"[..]));
            }
        }
        assert_eq!(
            value_at(b"\"unterminated and longer than twenty-four", 0),
            None
        );
        assert_eq!(string(b"5"), None);
    }

    #[test]
    fn the_first_quote_or_backslash_is_found_at_every_position() {
        for len in 0..80 {
            let plain = vec![b'a'; len];
            assert_eq!(quote_or_backslash(&plain), None, "len {len}");
            for at in 0..len {
                for (first, later) in [(b'"', b'\\'), (b'\\', b'"')] {
                    let mut text = plain.clone();
                    text[at] = first;
                    // A later one, and bytes one off from the ones looked for, change nothing.
                    for i in (at + 1..len).step_by(3) {
                        text[i] = [later, b'"' + 1, b'\\' - 1][i % 3];
                    }
                    assert_eq!(quote_or_backslash(&text), Some(at), "len {len}, at {at}");
                }
            }
        }
    }

    #[test]
    fn unsigned_reads_whole_numbers_only() {
        assert_eq!(unsigned(b"0"), Some(0));
        assert_eq!(unsigned(b"1234"), Some(1234));
        assert_eq!(unsigned(b"18446744073709551615"), Some(u64::MAX));
        for not in [
            &b""[..],
            b"18446744073709551616",
            b"1.5",
            b"1e3",
            b"-1",
            b"+1",
            b"12a",
            b" 1",
        ] {
            assert_eq!(unsigned(not), None, "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn counts_are_read_where_they_stand() {
        let s = br#"{"a": 42 , "b":7}"#;
        assert_eq!(unsigned_at(s, 5), Some((Some(42), 8)));
        assert_eq!(unsigned_at(s, 15), Some((Some(7), 16)));
        assert_eq!(unsigned_at(b"12", 0), Some((Some(12), 2)));
        // Other values are walked to their end and hold no count.
        assert_eq!(unsigned_at(br#"1.5}"#, 0), Some((None, 3)));
        assert_eq!(unsigned_at(br#"-3,"#, 0), Some((None, 2)));
        assert_eq!(unsigned_at(br#""9"}"#, 0), Some((None, 3)));
        assert_eq!(unsigned_at(br#"{"x":[1]},"#, 0), Some((None, 9)));
        assert_eq!(unsigned_at(b"99999999999999999999,", 0), Some((None, 20)));
        // No value at all.
        assert_eq!(unsigned_at(b"  ", 0), None);
        assert_eq!(unsigned_at(br#""cut"#, 0), None);
    }
}
