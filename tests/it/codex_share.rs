//! One Codex CLI session shared by bitrouter (linked with `login --import`) and the real Codex CLI
//! (`target/clients`, from `scripts/install-clients.sh`): whichever refreshes first, the other
//! picks up the rotated tokens from `$CODEX_HOME/auth.json`, and the fake issuer never sees a
//! reused refresh token.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_issuer::{FakeIssuer, jwt, now};
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream};
use crate::support::serve::{ServeProcess, http_client};

/// The setup both directions share: a fake issuer and backend, a `CODEX_HOME` whose
/// `config.toml` points the Codex CLI's own ChatGPT login straight at the fake backend, an
/// `auth.json` with an access token expiring at `exp`, and bitrouter linked to it.
struct Shared {
    ctx: TestContext,
    issuer: FakeIssuer,
    fake: FakeUpstream,
    runtime: tokio::runtime::Runtime,
}

impl Shared {
    fn new(exp: i64) -> Shared {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(FakeUpstream::start());
        let issuer = FakeIssuer::start();
        let ctx = TestContext::new();
        ctx.write_config(&format!(
            "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n",
            fake.codex_base(),
            issuer.url
        ));
        issuer.add_refresh_token("rt.codex-1");
        let claims = json!({"chatgpt_account_id": "acc-default", "chatgpt_plan_type": "pro"});
        let doc = json!({
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": null,
            "tokens": {
                "id_token": jwt(&json!({
                    "email": "codex@example.com", "exp": 4_102_444_800_i64,
                    "https://api.openai.com/auth": claims
                })),
                "access_token": issuer.make_access_token(exp),
                "refresh_token": "rt.codex-1",
                "account_id": "acc-default"
            },
            "last_refresh": "2026-08-07T10:11:12.123456789Z",
            "future_top_level_key": {"something": [1, 2, 3]}
        });
        let home = ctx.codex_home();
        std::fs::write(
            home.join("auth.json"),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                home.join("auth.json"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        std::fs::write(
            home.join("config.toml"),
            format!(
                "model = \"gpt-6-luna\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\nname = \"fake\"\nbase_url = \"{}\"\nwire_api = \"responses\"\nrequires_openai_auth = true\n",
                fake.codex_base()
            ),
        )
        .unwrap();

        let out = ctx
            .cmd()
            .args(["login", "openai-codex", "--import"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(issuer.counts().refreshes, 0, "linking does not refresh");
        Shared {
            ctx,
            issuer,
            fake,
            runtime,
        }
    }

    fn auth(&self) -> Value {
        read_auth(&self.ctx.codex_home())
    }

    fn status(&self, refresh: bool) -> Value {
        let mut cmd = self.ctx.cmd();
        cmd.args(["status", "--json"]);
        if refresh {
            cmd.arg("--refresh");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `codex exec` with this `CODEX_HOME`, its own refreshes going to the fake issuer.
    /// Returns stdout and stderr; fails the test when Codex fails.
    fn codex_exec(&self, codex: &Path) -> (String, String) {
        let work = self.ctx.root().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut cmd = tokio::process::Command::new(codex);
        cmd.env_clear()
            .envs(clients::node_env(&self.ctx))
            .env(
                "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
                format!("{}/oauth/token", self.issuer.url),
            )
            // `CODEX_RUST_LOG=codex_login=trace cargo test ...` shows the Codex CLI's auth decisions.
            .envs(std::env::var("CODEX_RUST_LOG").map(|v| ("RUST_LOG", v)))
            .current_dir(&work)
            .args([
                "exec",
                "--skip-git-repo-check",
                "--ephemeral",
                "--sandbox",
                "read-only",
                "--color",
                "never",
                // ChatGPT sign-ins enable connectors that call chatgpt.com directly.
                "--disable",
                "apps",
                "say hi",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = self.runtime.block_on(async {
            let child = cmd.spawn().expect("start codex");
            tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
                .await
                .expect("codex exec finished within 60 s")
                .unwrap()
        });
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for r in self.fake.requests() {
            eprintln!(
                "backend saw {} {} {:?} {:?}",
                r.method, r.path, r.query, r.headers
            );
        }
        eprintln!("codex stdout:\n{stdout}\ncodex stderr:\n{stderr}");
        assert!(
            out.status.success(),
            "codex exec failed: {}\nissuer: {:?} {:?}",
            out.status,
            self.issuer.counts(),
            self.issuer.errors()
        );
        assert!(stdout.contains(DEFAULT_TEXT), "stdout:\n{stdout}");
        assert!(
            !stderr.contains("chatgpt.com"),
            "the Codex CLI went to the network"
        );
        (stdout, stderr)
    }

    /// The bearer of the Codex CLI's `/responses` request.
    fn codex_bearer(&self) -> String {
        let req = self
            .fake
            .posts()
            .into_iter()
            .find(|r| r.path == "/backend-api/codex/responses")
            .expect("the backend saw the Codex CLI's request");
        assert_eq!(
            req.header("chatgpt-account-id").as_deref(),
            Some("acc-default")
        );
        req.header("authorization")
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_owned()
    }
}

fn read_auth(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("auth.json")).unwrap()).unwrap()
}

/// bitrouter refreshes the shared session first (its access token has expired); the real Codex
/// CLI then answers with the tokens bitrouter wrote back, and nothing reuses a refresh token.
#[test]
#[ignore = "needs the Codex CLI"]
fn codex_cli_keeps_working_after_bitrouter_refreshes_the_shared_session() {
    let codex = clients::codex();
    let shared = Shared::new(now() - 60);

    shared.status(true);
    let counts = shared.issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0), "{counts:?}");
    let doc = shared.auth();
    let rotated = doc["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    let access = doc["tokens"]["access_token"].as_str().unwrap().to_owned();
    assert!(rotated.starts_with("rt.fake-"), "{doc}");
    assert_eq!(doc["future_top_level_key"], json!({"something": [1, 2, 3]}));
    assert_eq!(doc["auth_mode"], "chatgpt");
    assert_eq!(doc["tokens"]["account_id"], "acc-default");

    shared.codex_exec(&codex);
    assert_eq!(
        shared.codex_bearer(),
        access,
        "the Codex CLI sent the access token bitrouter wrote back"
    );
    let counts = shared.issuer.counts();
    assert_eq!(counts.reused, 0, "{counts:?}");
    assert_eq!(
        counts.refreshes, 1,
        "the Codex CLI did not need to refresh: {counts:?}"
    );
    assert_eq!(shared.issuer.errors(), Vec::<String>::new());
    // The Codex CLI left the file usable for bitrouter: still the rotated, live tokens.
    assert_eq!(shared.auth()["tokens"]["refresh_token"], rotated.as_str());
    assert!(
        shared.status(false)["accounts"][0]["expires_at"]
            .as_i64()
            .unwrap()
            > now()
    );
}

/// The reverse: the real Codex CLI refreshes first (its access token has expired) and writes
/// the rotated tokens to auth.json; bitrouter reads them without refreshing again.
#[test]
#[ignore = "needs the Codex CLI"]
fn bitrouter_follows_a_refresh_by_the_codex_cli() {
    let codex = clients::codex();
    let shared = Shared::new(now() - 60);

    shared.codex_exec(&codex);
    let counts = shared.issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0), "{counts:?}");
    assert_eq!(shared.issuer.errors(), Vec::<String>::new());
    let doc = shared.auth();
    let access = doc["tokens"]["access_token"].as_str().unwrap().to_owned();
    assert!(
        doc["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-"),
        "{doc}"
    );
    assert_eq!(
        shared.codex_bearer(),
        access,
        "the Codex CLI used its refreshed token"
    );

    // bitrouter sees a valid token and refreshes nothing, even when asked to refresh what is due.
    let status = shared.status(true);
    assert!(status["accounts"][0]["expires_at"].as_i64().unwrap() > now());
    assert_eq!(status["accounts"][0]["needs_login"], Value::Null);
    let counts = shared.issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0), "{counts:?}");

    // `serve` forwards a request with the token the Codex CLI refreshed, still without refreshing.
    let before = shared.fake.posts().len();
    shared.runtime.block_on(async {
        let server = ServeProcess::start(&shared.ctx, &[]).await;
        let resp = http_client()
            .post(format!("{}/v1/responses", server.url()))
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 200, "{body}\nbitrouter:\n{}", server.stderr());
    });
    let bearers = shared.fake.post_bearers();
    assert_eq!(bearers.len(), before + 1, "{bearers:?}");
    assert_eq!(
        bearers[before], access,
        "bitrouter sent the Codex CLI's token"
    );
    let counts = shared.issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0), "{counts:?}");
}
