//! Who may talk to the server and what crosses it: the `Host` check (DNS rebinding), the browser
//! `Origin` check, the local API key (constant-time), and header hygiene in both directions
//! (hop-by-hop headers, client credentials, bitrouter's own headers never go upstream).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, header};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Where the local API key may come from besides `x-bitrouter-key`.
pub const LOCAL_KEY_HEADER: &str = "x-bitrouter-key";
/// Pins an account for one request.
pub const ACCOUNT_HEADER: &str = "x-bitrouter-account";

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus framing headers that the proxy recomputes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Client credentials that only travel in passthrough mode.
const CLIENT_CREDENTIALS: &[&str] = &["authorization", "x-api-key", "chatgpt-account-id"];

/// Whether a header is hop-by-hop (or framing) and so never forwarded as is.
#[must_use]
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
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

/// Refuses a `Host` that is neither the listen address nor a loopback name with the right port.
///
/// # Errors
///
/// A 403 naming the host.
pub fn check_host(host: Option<&str>, listen: SocketAddr) -> Result<(), ApiError> {
    // Browsers always send Host; a request without one cannot come from a rebinding page.
    let Some(host) = host else { return Ok(()) };
    if host_allowed(host, listen) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "host_not_allowed",
            format!(
                "host `{host}` is not this server; use http://127.0.0.1:{} or http://localhost:{}",
                listen.port(),
                listen.port()
            ),
        ))
    }
}

fn host_allowed(host: &str, listen: SocketAddr) -> bool {
    let (name, port) = split_host(host);
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => return false,
        },
        None => 80,
    };
    if port != listen.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    ip.is_loopback() || ip == listen.ip() || listen.ip().is_unspecified()
}

/// Splits `name[:port]` and `[v6][:port]`.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// Refuses a browser `Origin` that is not listed in `server.allowed_origins`.
///
/// # Errors
///
/// A 403 naming the origin.
pub fn check_origin(origin: Option<&str>, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = origin else { return Ok(()) };
    let normal = |o: &str| o.trim_end_matches('/').to_ascii_lowercase();
    let wanted = normal(origin);
    if allowed.iter().any(|a| normal(a) == wanted) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "origin_not_allowed",
            format!(
                "requests from web pages are refused (origin `{origin}`); list it under server.allowed_origins to allow it"
            ),
        ))
    }
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
#[must_use]
pub fn relayable_response_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        if !is_hop_by_hop(name) && name != header::SET_COOKIE {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn listen() -> SocketAddr {
        "127.0.0.1:4356".parse().unwrap()
    }

    #[test]
    fn loopback_hosts_with_the_port_pass() {
        for ok in [
            "127.0.0.1:4356",
            "localhost:4356",
            "LOCALHOST:4356",
            "[::1]:4356",
            "127.0.0.2:4356",
        ] {
            assert!(check_host(Some(ok), listen()).is_ok(), "{ok}");
        }
        assert!(check_host(None, listen()).is_ok());
    }

    #[test]
    fn other_hosts_and_ports_are_refused() {
        for bad in [
            "evil.example:4356",
            "localhost:80",
            "localhost",
            "127.0.0.1:4357",
            "10.0.0.5:4356",
            "localhost.evil.example:4356",
            "127.0.0.1:x",
        ] {
            let err = check_host(Some(bad), listen()).unwrap_err();
            assert_eq!(err.status, 403, "{bad}");
        }
    }

    #[test]
    fn unspecified_listen_accepts_ip_literals_only() {
        let any: SocketAddr = "0.0.0.0:4356".parse().unwrap();
        assert!(check_host(Some("192.168.1.9:4356"), any).is_ok());
        assert!(check_host(Some("rebind.example:4356"), any).is_err());
    }

    #[test]
    fn origins_must_be_listed() {
        assert!(check_origin(None, &[]).is_ok());
        assert!(check_origin(Some("https://evil.example"), &[]).is_err());
        assert!(check_origin(Some("null"), &[]).is_err());
        let allowed = vec!["http://localhost:3000/".to_owned()];
        assert!(check_origin(Some("http://LOCALHOST:3000"), &allowed).is_ok());
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
        let out = relayable_response_headers(&h);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-codex-primary-used-percent"], "12");
    }
}
