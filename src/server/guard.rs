//! Who may talk to the server: the `Host` check (DNS rebinding) and the browser `Origin` check
//! every request passes, and the CORS answers for pages on an allowed origin.

use std::net::{IpAddr, SocketAddr};

use crate::proxy::error::{ApiError, ErrorCode};

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
