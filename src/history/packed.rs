//! Finished requests as bytes, for their trip to the writer thread: the request path appends
//! each record to its thread's buffer ([`super::lanes`]) with [`encode`], which allocates
//! nothing once the buffer has grown, and the writer reads them back with [`decode`] as views
//! that borrow the buffer. Text is cut to what is stored.
//!
//! A record: the numbers (little-endian; a flag byte says which optional ones are present),
//! then each text field as a 2-byte length and its bytes (`0xffff` for an absent field).

use std::borrow::Cow;

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::record::{RequestRecord, Tokens};

/// The longest a stored `User-Agent` or `originator`.
pub(super) const MAX_USER_AGENT: usize = 256;
/// The longest a stored error message.
pub(super) const MAX_ERROR_MESSAGE: usize = 500;
/// The longest any other stored text (a model name, an error code).
pub(super) const MAX_TEXT: usize = 1024;

/// The length that marks an absent text field.
const ABSENT: u16 = u16::MAX;

/// Bits of the flag byte: which optional numbers are present, and whether the answer streamed.
const TTFB: u8 = 1;
const INPUT: u8 = 1 << 1;
const CACHED: u8 = 1 << 2;
const OUTPUT: u8 = 1 << 3;
const REASONING: u8 = 1 << 4;
const STREAMED: u8 = 1 << 5;

/// A text field read back from a buffer: bytes [`encode`] copied from a `str` and cut at a
/// character boundary, so UTF-8 without checking them again (which cost the writer more than
/// binding them did); bound to SQL as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Text<'a>(&'a [u8]);

impl<'a> Text<'a> {
    pub(super) fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// The text as a `str` (checked; for the rare uses that need one).
    pub(super) fn to_str(self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.0)
    }
}

impl ToSql for Text<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// One request record read back from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct View<'a> {
    pub(super) at_ms: i64,
    pub(super) tries: u32,
    pub(super) failovers: u32,
    pub(super) status: u16,
    pub(super) ttfb_ms: Option<u64>,
    pub(super) duration_ms: u64,
    pub(super) tokens: Tokens,
    pub(super) streamed: bool,
    pub(super) user_agent: Option<Text<'a>>,
    pub(super) originator: Option<Text<'a>>,
    pub(super) endpoint: Text<'a>,
    pub(super) model_asked: Option<Text<'a>>,
    pub(super) provider: Option<Text<'a>>,
    pub(super) model: Option<Text<'a>>,
    pub(super) account: Option<Text<'a>>,
    pub(super) error_code: Option<Text<'a>>,
    pub(super) error_message: Option<Text<'a>>,
}

/// The bytes of a record before its optional numbers: flags, `at_ms`, `tries`, `failovers`,
/// `status`, `duration_ms`.
const FIXED: usize = 1 + 8 + 4 + 4 + 2 + 8;

/// Appends `r` to `out`, growing it once.
pub(super) fn encode(r: &RequestRecord, out: &mut Vec<u8>) {
    let t = &r.tokens;
    let numbers = [r.ttfb_ms, t.input, t.cached, t.output, t.reasoning];
    // Cut to the limits above, a length is always far below the marker.
    let texts = [
        (r.user_agent.as_deref(), MAX_USER_AGENT),
        (r.originator.as_deref(), MAX_USER_AGENT),
        (Some(r.endpoint), MAX_TEXT),
        (r.model_asked.as_deref(), MAX_TEXT),
        (r.provider.as_deref(), MAX_TEXT),
        (r.model.as_deref(), MAX_TEXT),
        (r.account.as_deref(), MAX_TEXT),
        (r.error_code.as_deref(), MAX_TEXT),
        (r.error_message.as_deref(), MAX_ERROR_MESSAGE),
    ]
    .map(|(text, max)| text.map(|t| clip(t, max).as_bytes()));
    let size = FIXED
        + 8 * numbers.iter().flatten().count()
        + texts
            .iter()
            .map(|t| 2 + t.map_or(0, <[u8]>::len))
            .sum::<usize>();
    out.reserve(size);
    let flags = [TTFB, INPUT, CACHED, OUTPUT, REASONING]
        .iter()
        .zip(&numbers)
        .filter(|(_, n)| n.is_some())
        .fold(if r.streamed { STREAMED } else { 0 }, |flags, (bit, _)| {
            flags | bit
        });
    out.push(flags);
    out.extend_from_slice(&r.at_ms.to_le_bytes());
    out.extend_from_slice(&r.tries.to_le_bytes());
    out.extend_from_slice(&r.failovers.to_le_bytes());
    out.extend_from_slice(&r.status.to_le_bytes());
    out.extend_from_slice(&r.duration_ms.to_le_bytes());
    for n in numbers.into_iter().flatten() {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for text in texts {
        match text.and_then(|t| Some((t, u16::try_from(t.len()).ok()?))) {
            Some((text, len)) => {
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(text);
            }
            None => out.extend_from_slice(&ABSENT.to_le_bytes()),
        }
    }
}

/// The records in `bytes`, in order (a damaged tail, which [`encode`] never writes, ends it).
pub(super) fn decode(bytes: &[u8]) -> impl Iterator<Item = View<'_>> {
    let mut reader = Reader { bytes };
    std::iter::from_fn(move || reader.record())
}

/// Reads records from the front of a buffer.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u64_if(&mut self, present: bool) -> Option<Option<u64>> {
        if present {
            Some(Some(u64::from_le_bytes(self.array()?)))
        } else {
            Some(None)
        }
    }

    fn text(&mut self) -> Option<Option<Text<'a>>> {
        let len = u16::from_le_bytes(self.array()?);
        if len == ABSENT {
            return Some(None);
        }
        Some(Some(Text(self.take(usize::from(len))?)))
    }

    fn record(&mut self) -> Option<View<'a>> {
        let [flags] = self.array()?;
        let at_ms = i64::from_le_bytes(self.array()?);
        let tries = u32::from_le_bytes(self.array()?);
        let failovers = u32::from_le_bytes(self.array()?);
        let status = u16::from_le_bytes(self.array()?);
        let duration_ms = u64::from_le_bytes(self.array()?);
        let ttfb_ms = self.u64_if(flags & TTFB != 0)?;
        let tokens = Tokens {
            input: self.u64_if(flags & INPUT != 0)?,
            cached: self.u64_if(flags & CACHED != 0)?,
            output: self.u64_if(flags & OUTPUT != 0)?,
            reasoning: self.u64_if(flags & REASONING != 0)?,
        };
        Some(View {
            at_ms,
            tries,
            failovers,
            status,
            ttfb_ms,
            duration_ms,
            tokens,
            streamed: flags & STREAMED != 0,
            user_agent: self.text()?,
            originator: self.text()?,
            endpoint: self.text()?.unwrap_or_default(),
            model_asked: self.text()?,
            provider: self.text()?,
            model: self.text()?,
            account: self.text()?,
            error_code: self.text()?,
            error_message: self.text()?,
        })
    }
}

/// Text cut to at most `max` bytes, at a character boundary.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_they_went_in_cut_to_their_limits() {
        let full = RequestRecord {
            at_ms: -5,
            user_agent: Some("é".repeat(200).into()),
            originator: None,
            endpoint: "/v1/messages",
            model_asked: Some(String::new()),
            provider: Some("openai-codex".into()),
            model: Some("m".repeat(2000).into()),
            account: Some("work".into()),
            tries: 2,
            failovers: 1,
            status: 502,
            error_code: Some("upstream_failed".into()),
            error_message: Some("x".repeat(900)),
            ttfb_ms: Some(0),
            duration_ms: u64::MAX,
            tokens: Tokens {
                input: Some(u64::MAX),
                cached: None,
                output: Some(0),
                reasoning: Some(7),
            },
            streamed: true,
        };
        let bare = RequestRecord {
            endpoint: "/v1/responses",
            ..RequestRecord::default()
        };
        let mut bytes = Vec::new();
        encode(&full, &mut bytes);
        encode(&bare, &mut bytes);
        let views: Vec<View<'_>> = decode(&bytes).collect();
        assert_eq!(views.len(), 2);
        let v = &views[0];
        // 200 two-byte characters cut at 256 bytes: 128 of them.
        let text = |t: Option<Text<'_>>| t.map(|t| t.to_str().into_owned());
        assert_eq!(text(v.user_agent), Some("é".repeat(128)));
        assert_eq!(v.originator, None);
        assert_eq!(v.endpoint.as_bytes(), b"/v1/messages");
        assert_eq!(text(v.model_asked), Some(String::new()));
        assert_eq!(text(v.model), Some("m".repeat(MAX_TEXT)));
        assert_eq!(text(v.error_message), Some("x".repeat(MAX_ERROR_MESSAGE)));
        assert_eq!((v.at_ms, v.tries, v.failovers, v.status), (-5, 2, 1, 502));
        assert_eq!((v.ttfb_ms, v.duration_ms), (Some(0), u64::MAX));
        assert_eq!(v.tokens, full.tokens);
        assert!(v.streamed);
        let b = &views[1];
        assert_eq!(
            (b.endpoint.as_bytes(), b.user_agent, b.ttfb_ms),
            (&b"/v1/responses"[..], None, None)
        );
        assert_eq!(b.tokens, Tokens::default());
        assert!(!b.streamed);
        // A cut buffer ends the records rather than misreading them.
        assert_eq!(decode(&bytes[..bytes.len() - 1]).count(), 1);
    }
}
