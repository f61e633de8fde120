//! `bitrouter dashboard [--listen ADDR:PORT] [--no-browser]`: checks that a server answers at
//! the address (`--listen`, else `server.listen`), then opens its dashboard page in the browser,
//! or prints the URL when asked to or when no browser can be opened. The URL never carries the
//! local key: the page asks for it when `server.api_key` is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Context;
use crate::cli::DashboardArgs;
use crate::error::Failure;

/// How long the server may take to answer `/health`.
const HEALTH_WAIT: Duration = Duration::from_secs(3);

/// Runs the command.
pub async fn run(ctx: &Context, args: &DashboardArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let url = dashboard_url(args.listen.unwrap_or(config.server.listen));
    check_running(&url).await?;
    if config.server.api_key.is_some() {
        ctx.printer
            .info("The page asks for the server's key (server.api_key) once per browser tab.");
    }
    if args.no_browser {
        ctx.printer.data(&url)?;
        return Ok(());
    }
    match open::that_detached(&url) {
        Ok(()) => ctx.printer.info(format!("Opened {url}")),
        Err(e) => {
            ctx.printer.warn(format!(
                "cannot open a browser ({e}); open the URL yourself"
            ));
            ctx.printer.data(&url)?;
        }
    }
    Ok(())
}

/// The page's URL for a listen address (a wildcard address is reached on loopback).
fn dashboard_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, listen.port()))
}

/// Fails unless a server answers `GET /health` at `url`.
async fn check_running(url: &str) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(HEALTH_WAIT)
        .build()?;
    let health = format!("{url}health");
    match client.get(&health).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(Failure::new(
            format!("{health} answered {}", r.status()),
            "is a bitrouter server listening there? start one with `bitrouter serve`",
        )
        .into()),
        Err(_) => Err(Failure::new(
            format!("no bitrouter server answers at {url}"),
            "start one with `bitrouter serve` (or name its address with --listen ADDR:PORT)",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(
            dashboard_url("0.0.0.0:4356".parse().unwrap()),
            "http://127.0.0.1:4356/"
        );
        assert_eq!(
            dashboard_url("[::]:80".parse().unwrap()),
            "http://[::1]:80/"
        );
        assert_eq!(
            dashboard_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
    }
}
