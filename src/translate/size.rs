//! The length of a JSON value as serde_json writes it compactly, counted without writing it:
//! token estimates that go by a value's JSON size need its length, not its text.

use std::fmt::Write;

use serde_json::{Number, Value};

use crate::jsonscan::quotes_or_backslashes;

/// The bytes `value.to_string()` would produce.
#[must_use]
pub fn compact_len(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_len(n),
        Value::String(s) => string_len(s),
        // Brackets, and a comma between items.
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(compact_len).sum::<usize>()
        }
        // Braces, a comma between entries and a colon in each.
        Value::Object(map) => {
            2 + map.len().saturating_sub(1)
                + map
                    .iter()
                    .map(|(k, v)| string_len(k) + 1 + compact_len(v))
                    .sum::<usize>()
        }
    }
}

/// A string's length quoted and escaped: `"` and `\` take one byte more, a control character
/// one more when it has a short escape (`\b`, `\t`, `\n`, `\f`, `\r`) and five more otherwise
/// (`\u00XX`). Text is looked at eight bytes at a time; only a word holding such a byte is
/// looked at byte by byte.
fn string_len(s: &str) -> usize {
    let mut words = s.as_bytes().chunks_exact(8);
    let mut extra = 0;
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if needs_escape(word) {
            extra += escapes(chunk);
        }
    }
    2 + s.len() + extra + escapes(words.remainder())
}

/// The bytes the escapes in `bytes` add, looked up byte by byte without branches.
fn escapes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| usize::from(ESCAPE_EXTRA[usize::from(b)]))
        .sum()
}

/// [`escape_extra`] for every byte.
const ESCAPE_EXTRA: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        // `b` is below 256, so the casts are exact.
        #[allow(clippy::cast_possible_truncation)]
        {
            table[b] = escape_extra(b as u8);
        }
        b += 1;
    }
    table
};

/// Whether a byte of `word` is a quote, a backslash or a control character.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 borrows into its top bit, which `!word` keeps only for bytes below 0x80.
    let control = word.wrapping_sub(ONES * 0x20) & !word & TOPS;
    (control | quotes_or_backslashes(word)) != 0
}

/// The bytes an escape adds to `b`.
const fn escape_extra(b: u8) -> u8 {
    match b {
        b'"' | b'\\' | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 1,
        0..0x20 => 5,
        _ => 0,
    }
}

/// A number's length as written (counted through a writer that keeps nothing).
fn number_len(n: &Number) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = write!(count, "{n}");
    count.0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_of_value_counts_as_written() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12),
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!(""),
            json!("a \"quoted\" \\ path\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f} é 😀"),
            json!([]),
            json!([1, [2, []], {}]),
            json!({"k\n": {"nested": [null, "x"]}, "other": 2.25}),
        ];
        for value in values {
            assert_eq!(compact_len(&value), value.to_string().len(), "{value}");
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_counts_as_serde_json_writes_it(value in arb_json()) {
            prop_assert_eq!(compact_len(&value), value.to_string().len());
        }
    }
}
