//! Reading JSON in place, for the hot path: where a value ends, an object's entries and an
//! array's items, as ranges of the original bytes, without building anything. The scanner
//! trusts the input's grammar only as far as finding boundaries needs (strings, nesting); it
//! does not validate numbers or literals, so a caller that needs valid JSON checks it first
//! (the request body is checked when it is taken in). Malformed input gives `None`, never a
//! panic.

mod compact;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ops::Range;

pub use compact::compact_without;

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
        let hits = quotes_or_backslashes(word);
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
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zeroed = word ^ (ONES * u64::from(byte));
    zeroed.wrapping_sub(ONES) & !zeroed & TOPS
}

/// The bytes of `word` that are `"` or `\`, marked as [`bytes_equal`] marks them: what ends a
/// string's plain run, and what a string's contents must escape.
pub(crate) fn quotes_or_backslashes(word: u64) -> u64 {
    bytes_equal(word, b'"') | bytes_equal(word, b'\\')
}

/// Whether `s`, the contents of a JSON string, holds an escape. A quote inside a string is
/// always escaped, so the first quote or backslash is a backslash exactly when there is one:
/// the word-at-a-time search answers it. (A stray quote in malformed text also counts; the
/// caller then decodes the text, which refuses it.)
fn has_escape(s: &[u8]) -> bool {
    let hit = |at: usize| {
        let word = u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
        quotes_or_backslashes(word) != 0
    };
    match s.len() {
        0..8 => s.iter().any(|&b| b == b'"' || b == b'\\'),
        // Keys and short values, the usual case: eight bytes at a time, the last word
        // overlapping the one before, so no byte is looked at alone.
        8..=32 => {
            let last = s.len() - 8;
            let mut at = 0;
            while at < last {
                if hit(at) {
                    return true;
                }
                at += 8;
            }
            hit(last)
        }
        _ => memchr::memchr2(b'"', b'\\', s).is_some(),
    }
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

/// The contents of a JSON string value (`raw` includes its quotes) as written: quotes off,
/// escapes kept, nothing decoded or checked; `None` when `raw` is not a string.
#[must_use]
pub fn string_as_written(raw: &[u8]) -> Option<&[u8]> {
    raw.strip_prefix(b"\"")?.strip_suffix(b"\"")
}

/// The text of a JSON string value (`raw` includes its quotes), borrowed when it has no escapes;
/// `None` when `raw` is not a string.
#[must_use]
pub fn string(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = string_as_written(raw)?;
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
