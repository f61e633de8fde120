//! Who may talk to the server: the `Host` check (DNS rebinding) and the browser `Origin` check
//! every request passes, and the CORS answers for pages on an allowed origin.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::proxy::error::{ApiError, ErrorCode};

/// What the checks decided for one request.
pub enum Verdict {
    /// Serve it; add CORS headers for this origin to the answer, if any.
    Serve(Option<HeaderValue>),
    /// A CORS preflight from an allowed origin: answer it with these headers, no body.
    Preflight(HeaderMap),
    /// Refuse it.
    Refuse(ApiError),
}

/// The checks for one request to a server bound to `listen`.
#[must_use]
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    listen: SocketAddr,
    allowed: &[String],
) -> Verdict {
    let text = |name| {
        headers
            .get(name)
            .map(|h: &HeaderValue| h.to_str().unwrap_or("\u{fffd}"))
    };
    let origin = text(header::ORIGIN);
    if let Err(err) =
        check_host(text(header::HOST), listen).and_then(|()| check_origin(origin, allowed))
    {
        return Verdict::Refuse(err);
    }
    let Some(origin) = origin.and_then(|o| HeaderValue::try_from(o).ok()) else {
        return Verdict::Serve(None);
    };
    if method == Method::OPTIONS {
        return Verdict::Preflight(preflight(&origin, headers));
    }
    Verdict::Serve(Some(origin))
}

/// Response headers a page on an allowed origin may read.
const EXPOSED: &str = "x-bitrouter-provider, x-bitrouter-account, x-bitrouter-model, retry-after";

/// Lets a page on an allowed origin read the answer.
pub fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
}

/// The headers of the answer to a CORS preflight from an allowed origin (status 204).
fn preflight(origin: &HeaderValue, request: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    headers
}

/// The status of a preflight answer.
pub const PREFLIGHT_STATUS: StatusCode = StatusCode::NO_CONTENT;

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
            ErrorCode::HostNotAllowed,
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
            ErrorCode::OriginNotAllowed,
            format!(
                "requests from web pages are refused (origin `{origin}`); list it under server.allowed_origins to allow it"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
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
}
