//! The helpers the `login` tests share; the tests themselves are grouped by topic in the modules
//! below.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_issuer::{FakeIssuer, now};

mod browser;
mod device;
mod tokens;

/// The Codex provider signing in at the fake issuer; its `base_url` is the fake's too, so
/// `status --refresh` asks the fake's usage endpoint, never the network.
fn codex_config(ctx: &TestContext, issuer: &FakeIssuer, extra: &str) {
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n      callback_port: 0\n{extra}",
        issuer.codex_base(),
        issuer.url
    ));
}

/// A plain HTTP/1.1 GET (the tests' "browser"; no redirects followed).
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn get(url: &str) -> Resp {
    use std::io::Write;
    let url = url::Url::parse(url).unwrap();
    let port = url.port().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}:{port}\r\nConnection: close\r\n\r\n",
        url.host_str().unwrap()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A running `bitrouter login` whose stderr lines arrive on a channel.
struct LoginChild {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LoginChild {
    fn spawn(ctx: &TestContext, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = ctx.std_cmd();
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LoginChild {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line matching `pred`.
    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no matching line; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits for exit; returns success and the whole stderr.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "", "login prints nothing on stdout");
        (status.success(), self.seen.join("\n"))
    }
}

fn authorize_url(line: &str) -> String {
    line.trim().to_owned()
}

fn redirect_port(authorize: &str) -> u16 {
    let url = url::Url::parse(authorize).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .to_string();
    url::Url::parse(&redirect).unwrap().port().unwrap()
}

/// Plays the browser: follows the authorize URL to the loopback callback; returns the page.
fn play_browser(authorize: &str) -> (u16, String) {
    let resp = get(authorize);
    assert_eq!(resp.status, 302, "{}", resp.body);
    let location = resp.header("location").unwrap().to_owned();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let resp = get(&location);
    assert_eq!(resp.header("connection"), Some("close"));
    (resp.status, resp.body)
}

fn login(ctx: &TestContext, label: &str) -> String {
    let mut child = LoginChild::spawn(
        ctx,
        &["login", "openai-codex", "--no-browser", "--label", label],
        &[],
    );
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    let (status, page) = play_browser(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    let (ok, stderr) = child.finish();
    assert!(ok, "{stderr}");
    stderr
}

fn status_json(ctx: &TestContext) -> Value {
    let out = ctx.cmd().args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn token_file(ctx: &TestContext) -> Value {
    serde_json::from_str(&std::fs::read_to_string(ctx.token_file()).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_private(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
