//! The processes a run measures: the nginx instances (canned upstream, reverse proxy),
//! `bitrouter serve` in a home of its own, and the holding upstream for open streams.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use tokio::sync::Semaphore;

use crate::EVENTS;

/// A child process, stopped when dropped (SIGTERM for nginx so its workers go too).
pub(crate) struct Proc {
    pub(crate) child: Child,
    graceful: bool,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (nginx needs its port in its config file).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// When the server under test runs alone on the first CPU ([`pin_apart`]): `taskset` and the
/// list of the other CPUs, for the load.
static PINNED: OnceLock<(PathBuf, String)> = OnceLock::new();

/// From now on the server under test runs alone on the first CPU and the processes that load
/// it and answer it (wrk, nginx) on the others, so they no longer take turns on the same cores:
/// the server is the bottleneck and its throughput is its own, with far less noise. Needs two
/// CPUs and `taskset` (util-linux).
#[allow(
    dead_code,
    reason = "the proxy benchmark compares hops as they share the machine"
)]
pub(crate) fn pin_apart() {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert!(
        cpus >= 2,
        "pinning the server apart needs 2 CPUs, this machine has {cpus}"
    );
    PINNED.get_or_init(|| (require("taskset", "util-linux"), format!("1-{}", cpus - 1)));
}

/// Which CPUs a process gets when the server is pinned apart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    /// The server under test: the first CPU.
    Server,
    /// The load and the upstream: the other CPUs.
    Load,
}

/// A command that runs `program` on its side's CPUs when the server is pinned apart.
pub(crate) fn command(program: impl AsRef<OsStr>, side: Side) -> Command {
    let Some((taskset, load_cpus)) = PINNED.get() else {
        return Command::new(program);
    };
    let cpus = match side {
        Side::Server => "0",
        Side::Load => load_cpus,
    };
    let mut cmd = Command::new(taskset);
    cmd.args(["-c", cpus]).arg(program);
    cmd
}

pub(crate) fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("`{program}` not found: install it first (Debian: apt-get install {package})");
}

/// An nginx instance in `dir` with this `http` block, listening on 127.0.0.1:`port`.
async fn spawn_nginx(dir: &Path, name: &str, port: u16, http: &str) -> Proc {
    let nginx = require("nginx", "nginx-light");
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let r = root.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes auto;\npid {r}/nginx.pid;\nerror_log {r}/error.log warn;\nworker_rlimit_nofile 20000;\nevents {{ worker_connections 8192; multi_accept on; }}\nhttp {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  client_body_temp_path {r}/tmp/body;\n  proxy_temp_path {r}/tmp/proxy;\n  fastcgi_temp_path {r}/tmp/fastcgi;\n  uwsgi_temp_path {r}/tmp/uwsgi;\n  scgi_temp_path {r}/tmp/scgi;\n{http}\n}}\n"
    );
    let path = root.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = command(nginx, Side::Load)
        .args([
            "-p",
            &root.display().to_string(),
            "-c",
            &path.display().to_string(),
        ])
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proc = Proc {
        child,
        graceful: true,
    };
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port))).await;
    proc
}

async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The canned upstream: every `POST /codex/responses` gets the same 5-event stream.
pub(crate) async fn spawn_canned_upstream(dir: &Path) -> (Proc, SocketAddr) {
    spawn_canned_upstream_with(dir, &[]).await
}

/// The canned upstream, its answers carrying these headers too.
pub(crate) async fn spawn_canned_upstream_with(
    dir: &Path,
    headers: &[(&str, &str)],
) -> (Proc, SocketAddr) {
    let port = free_port();
    let add: String = headers
        .iter()
        .map(|(name, value)| format!(" add_header {name} \"{value}\";"))
        .collect();
    let body: String = EVENTS
        .concat()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let http = format!(
        "  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location = /codex/responses {{ default_type text/event-stream;{add} return 200 \"{body}\"; }}\n    location / {{ return 404; }}\n  }}"
    );
    let proc = spawn_nginx(dir, "upstream", port, &http).await;
    (proc, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// nginx as a plain reverse proxy in front of `upstream`, as one would set it up for SSE, with
/// request bodies held in memory up to 1 MB (as bitrouter holds them; by default nginx writes
/// bodies over 16 KB to a file first, which made it the slowest row with a real client's body).
pub(crate) async fn spawn_nginx_proxy(dir: &Path, upstream: SocketAddr) -> (Proc, SocketAddr) {
    let port = free_port();
    let http = format!(
        "  upstream codex {{ server {upstream}; keepalive 512; }}\n  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location /v1/ {{\n      rewrite ^ /codex/responses break;\n      proxy_pass http://codex;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n      client_body_buffer_size 1m;\n    }}\n  }}"
    );
    let proc = spawn_nginx(dir, "proxy", port, &http).await;
    (proc, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// This program re-executed as the holding upstream; it prints its address on the first line.
pub(crate) fn spawn_hold_upstream() -> (Proc, SocketAddr) {
    spawn_self(
        std::env::current_exe().unwrap(),
        &["--hold-upstream"],
        false,
    )
}

/// This program re-executed as one of the floor proxies in front of `upstream`: `hyper` (see
/// `floor`) or `raw` (see `raw`). When `BITROUTER_BENCH_ONLY` names it,
/// `BITROUTER_BENCH_FLOOR_BIN` runs a wrapper instead, given the same arguments (for callgrind).
pub(crate) fn spawn_floor_proxy(kind: &str, upstream: SocketAddr) -> (Proc, SocketAddr) {
    let wrapper = std::env::var_os("BITROUTER_BENCH_FLOOR_BIN")
        .filter(|_| std::env::var("BITROUTER_BENCH_ONLY").is_ok_and(|only| only == kind));
    let program = wrapper.map_or_else(|| std::env::current_exe().unwrap(), PathBuf::from);
    // Stopped with SIGTERM, so that a profiler it runs under writes its output.
    spawn_self(
        program,
        &[&format!("--{kind}-proxy"), &upstream.to_string()],
        true,
    )
}

/// `program` with `args`, which prints the address it listens on as its first line.
fn spawn_self(program: PathBuf, args: &[&str], graceful: bool) -> (Proc, SocketAddr) {
    let mut child = command(program, Side::Server)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc { child, graceful }, line.trim().parse().unwrap())
}

/// A home for one bitrouter: config pointing `openai-codex` at `upstream`, `accounts` stored
/// accounts (`default`, then `a1`, `a2`, …).
pub(crate) fn world(upstream: SocketAddr, accounts: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config/bitrouter");
    let data = dir.path().join("data/bitrouter");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    std::fs::write(
        config.join("bitrouter.yaml"),
        format!("providers:\n  openai-codex:\n    base_url: http://{upstream}/codex\n"),
    )
    .unwrap();
    let token_file = data.join("oauth-tokens.json");
    std::fs::write(
        &token_file,
        serde_json::json!({"version": 1, "credentials": (0..accounts.max(1)).map(|n| {
            let label = if n == 0 { "default".to_owned() } else { format!("a{n}") };
            serde_json::json!({
                "provider": "openai-codex", "label": label, "kind": "oauth",
                "access_token": jwt_sized(&format!("bench-access-{n}"), 1_800),
                "id_token": jwt_sized(&format!("bench-id-{n}"), 1_500),
                "refresh_token": format!("rt_{}", "r".repeat(88)),
                "expires_at": 4_102_444_800_i64, "account_id": format!("acct-bench-{n}"), "source": "login"
            })
        }).collect::<Vec<_>>()})
        .to_string(),
    )
    .unwrap();
    set_private(&token_file);
    // An old file: the store re-reads files changed in the last two seconds on every use.
    std::fs::File::options()
        .write(true)
        .open(&token_file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    dir
}

/// A token the size of the ChatGPT sign-in's JWTs (some 1,500 to 2,000 characters: a header,
/// a payload of claims and an RS256 signature), so the benchmark pays what copying, checking and
/// attaching a real one costs.
fn jwt_sized(name: &str, len: usize) -> String {
    let mut token = format!("eyJhbGciOiJSUzI1NiJ9.{name}.");
    let pad = len.saturating_sub(token.len());
    token.extend(std::iter::repeat_n('x', pad));
    token
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub(crate) fn bitrouter_cmd(bin: &Path, world: &Path) -> Command {
    let mut cmd = command(bin, Side::Server);
    cmd.env_clear()
        .env("HOME", world.join("home"))
        .env("XDG_CONFIG_HOME", world.join("config"))
        .env("XDG_DATA_HOME", world.join("data"))
        .env("XDG_STATE_HOME", world.join("state"))
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `bitrouter serve` and returns it with its address and the time until `/health`
/// answered 200.
pub(crate) async fn spawn_bitrouter(bin: &Path, world: &Path) -> (Proc, SocketAddr, Duration) {
    let started = Instant::now();
    let mut child = bitrouter_cmd(bin, world)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1)
                && let Some(tx) = tx.take()
            {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            } else if tx.is_none() && (line.contains("WARN") || line.contains("ERROR")) {
                eprintln!("bitrouter: {line}");
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("bitrouter printed its address")
        .parse()
        .unwrap();
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // SIGTERM: a graceful stop, so a wrapper such as valgrind writes its results.
    let proc = Proc {
        child,
        graceful: true,
    };
    (proc, addr, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// The holding upstream (for memory with open streams)

pub(crate) fn hold_upstream_main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let held = Arc::new(Semaphore::new(0));
        let app = Router::new()
            .route(
                "/codex/responses",
                post({
                    let held = held.clone();
                    move || hold(held.clone())
                }),
            )
            .route(
                "/release",
                post({
                    let held = held.clone();
                    move || async move {
                        // Every held stream, now and later, may finish.
                        held.add_permits(1 << 20);
                        "released"
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// Sends the first output (bitrouter forwards a stream once output begins), then holds the
/// stream open until `/release`.
async fn hold(held: Arc<Semaphore>) -> Response {
    let first = bytes::Bytes::from(EVENTS[..3].concat());
    let rest = bytes::Bytes::from(EVENTS[3..].concat());
    let stream = futures_util::stream::unfold(0u8, move |state| {
        let held = held.clone();
        let (first, rest) = (first.clone(), rest.clone());
        async move {
            match state {
                0 => Some((Ok::<_, std::io::Error>(first), 1)),
                1 => {
                    if let Ok(permit) = held.acquire().await {
                        permit.forget();
                    }
                    Some((Ok(rest), 2))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
