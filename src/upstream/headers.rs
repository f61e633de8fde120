//! What crosses the proxy: header hygiene in both directions (hop-by-hop and framing headers,
//! cookies and browser context stay behind; client credentials travel only in passthrough;
//! bitrouter's own `x-bitrouter-*` headers never go upstream), and the local API key, compared
//! in constant time and never forwarded.

use http::{HeaderMap, HeaderName, header};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Where the local API key may come from besides `x-bitrouter-key`.
pub const LOCAL_KEY_HEADER: HeaderName = HeaderName::from_static("x-bitrouter-key");
/// Pins an account for one request.
pub const ACCOUNT_HEADER: HeaderName = HeaderName::from_static("x-bitrouter-account");
/// The header in which a client names itself to the Codex backend (the Codex CLI:
/// `codex_cli_rs`; bitrouter: `bitrouter`).
pub const ORIGINATOR: HeaderName = HeaderName::from_static("originator");
/// The Codex session header (the backend has been seen reading both spellings).
pub const SESSION_ID: HeaderName = HeaderName::from_static("session-id");
/// The Codex session header's other spelling.
pub const SESSION_ID_UNDERSCORE: HeaderName = HeaderName::from_static("session_id");

/// Client credentials that only travel in passthrough mode.
const CLIENT_CREDENTIALS: &[&str] = &["authorization", "x-api-key", "chatgpt-account-id"];

/// Whether a header is hop-by-hop (RFC 9110 §7.6.1) or framing that the proxy recomputes, and
/// so never forwarded as is.
#[must_use]
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Whether a header carries a client credential.
#[must_use]
pub fn is_client_credential(name: &HeaderName) -> bool {
    CLIENT_CREDENTIALS.contains(&name.as_str())
}

/// Whether a header is bitrouter's own (`x-bitrouter-*`), never forwarded.
#[must_use]
pub fn is_bitrouter_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("x-bitrouter-")
}

/// Whether the request carries the local key: always from `x-bitrouter-key`, and from
/// `Authorization: Bearer` or `x-api-key` when `accept_client_headers` (the target is not in
/// passthrough mode, where those headers hold the client's own upstream credential).
#[must_use]
pub fn has_local_key(headers: &HeaderMap, key: &SecretString, accept_client_headers: bool) -> bool {
    let key = key.expose_secret().as_bytes();
    let matches = |value: &[u8]| bool::from(value.ct_eq(key));
    if headers
        .get_all(LOCAL_KEY_HEADER)
        .iter()
        .any(|v| matches(v.as_bytes()))
    {
        return true;
    }
    if !accept_client_headers {
        return false;
    }
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| bearer_token(v.as_bytes()))
        .any(matches);
    bearer
        || headers
            .get_all("x-api-key")
            .iter()
            .any(|v| matches(v.as_bytes()))
}

/// The token of an `Authorization: Bearer …` value.
#[must_use]
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Whether a header value is the local key (so it is never sent upstream, even in passthrough).
#[must_use]
pub fn is_local_key(value: &[u8], key: Option<&SecretString>) -> bool {
    let Some(key) = key else { return false };
    let key = key.expose_secret().as_bytes();
    let candidate = bearer_token(value).unwrap_or(value);
    bool::from(candidate.ct_eq(key))
}

/// Whether the client sent any credential of its own.
#[must_use]
pub fn has_client_credentials(headers: &HeaderMap, local_key: Option<&SecretString>) -> bool {
    ["authorization", "x-api-key"].iter().any(|name| {
        headers
            .get_all(*name)
            .iter()
            .any(|v| !v.is_empty() && !is_local_key(v.as_bytes(), local_key))
    })
}

/// The comma-separated tokens of a header value (`Connection`, `Transfer-Encoding`, ...),
/// trimmed, empty ones left out.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Whether a header value lists `token`, in any case.
#[must_use]
pub fn has_token(value: &[u8], token: &str) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Writes one header field, `name: value` and its line end, as HTTP/1.1 sends it.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes a `content-length` field saying `length`.
pub fn write_length(out: &mut Vec<u8>, length: impl itoa::Integer) {
    write_field(
        out,
        b"content-length",
        itoa::Buffer::new().format(length).as_bytes(),
    );
}

/// Client request headers to forward to a native upstream: everything except hop-by-hop and
/// framing headers, `accept-encoding` (the body is relayed as is, so ask for identity),
/// cookies, browser context, bitrouter's own headers, and client credentials unless
/// `keep_credentials`. A credential equal to the local key is never forwarded.
#[must_use]
pub fn forwardable_request_headers(
    inbound: &HeaderMap,
    keep_credentials: bool,
    local_key: Option<&SecretString>,
) -> HeaderMap {
    // Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
    let listed: Vec<String> = inbound
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in inbound {
        let drop = is_hop_by_hop(name)
            || listed.iter().any(|t| t == name.as_str())
            || is_bitrouter_header(name)
            || matches!(
                name.as_str(),
                "accept-encoding" | "cookie" | "origin" | "referer"
            )
            || name.as_str().starts_with("sec-")
            || (is_client_credential(name)
                && (!keep_credentials || is_local_key(value.as_bytes(), local_key)));
        if !drop {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Upstream response headers to relay to the client: everything except hop-by-hop and framing
/// headers and cookies (`set-cookie` belongs to bitrouter's upstream session, not the client).
/// The others are kept where they are, in the map they came in.
///
/// Only the names found in the map are removed: an answer has a handful of headers, and
/// removing each of a dozen names it mostly lacks (every removal hashes and probes) cost ten
/// times as much as looking through it.
#[must_use]
pub fn relayable_response_headers(mut upstream: HeaderMap) -> HeaderMap {
    let goes = |name: &&HeaderName| is_hop_by_hop(name) || *name == header::SET_COOKIE;
    while let Some(name) = upstream.keys().find(goes).cloned() {
        upstream.remove(name);
    }
    upstream
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn header_tokens_are_trimmed_and_matched_in_any_case() {
        let value = b" keep-alive ,, Upgrade,close ";
        assert_eq!(
            tokens(value).collect::<Vec<_>>(),
            [&b"keep-alive"[..], b"Upgrade", b"close"]
        );
        assert!(has_token(value, "upgrade") && has_token(value, "CLOSE"));
        assert!(!has_token(value, "keep") && !has_token(b"", "close"));
    }

    #[test]
    fn local_key_from_each_header() {
        let key = SecretString::from("k-123");
        let mut h = HeaderMap::new();
        assert!(!has_local_key(&h, &key, true));
        h.insert("x-bitrouter-key", HeaderValue::from_static("k-123"));
        assert!(has_local_key(&h, &key, false));

        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer k-123"));
        assert!(has_local_key(&h, &key, true));
        assert!(!has_local_key(&h, &key, false));

        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k-123"));
        assert!(has_local_key(&h, &key, true));
        h.insert("x-api-key", HeaderValue::from_static("k-12"));
        assert!(!has_local_key(&h, &key, true));
    }

    #[test]
    fn forwarding_strips_hop_by_hop_credentials_and_own_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private-hop"),
            ("x-private-hop", "1"),
            ("host", "127.0.0.1:4356"),
            ("content-length", "10"),
            ("authorization", "Bearer client"),
            ("x-api-key", "client"),
            ("x-bitrouter-key", "local"),
            ("x-bitrouter-account", "work"),
            ("accept-encoding", "gzip"),
            ("anthropic-version", "2023-06-01"),
            ("user-agent", "sdk/1"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = forwardable_request_headers(&h, false, None);
        let names: Vec<_> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["anthropic-version", "user-agent"]);
        let out = forwardable_request_headers(&h, true, None);
        assert_eq!(out["authorization"], "Bearer client");
        assert_eq!(out["x-api-key"], "client");
    }

    #[test]
    fn the_local_key_never_travels_even_in_passthrough() {
        let key = SecretString::from("local");
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer local"));
        assert!(
            forwardable_request_headers(&h, true, Some(&key))
                .get("authorization")
                .is_none()
        );
        assert!(!has_client_credentials(&h, Some(&key)));
        assert!(has_client_credentials(&h, None));
    }

    #[test]
    fn response_headers_drop_framing_and_cookies() {
        let mut h = HeaderMap::new();
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("set-cookie", HeaderValue::from_static("cf=1"));
        h.insert(
            "x-codex-primary-used-percent",
            HeaderValue::from_static("12"),
        );
        h.append("set-cookie", HeaderValue::from_static("cf=2"));
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        h.insert("content-length", HeaderValue::from_static("10"));
        let out = relayable_response_headers(h);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-codex-primary-used-percent"], "12");
    }
}
