//! `bitrouter doctor` on a healthy setup, a missing login, a broken config and a stopped
//! server; `bitrouter service` against a fake `systemctl`, its unit checked by systemd-analyze.

use std::time::Duration;

use super::{bitrouter, text, world};
use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;

/// A directory holding executable scripts, for a PATH of fake programs.
fn fake_bin(ctx: &TestContext, scripts: &[(&str, &str)]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = ctx.root().join("fake-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

async fn doctor(ctx: &TestContext, path: &std::path::Path) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", path).arg("doctor");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("doctor finished")
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_healthy_setup_says_so_and_shows_no_secret() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    ctx.write_config(&format!(
        "server:\n  listen: 127.0.0.1:0\n  api_key: local-secret-key\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let out = bitrouter(&ctx, &["serve", "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = ctx.recorded_server_pid().unwrap();
    let bin = fake_bin(&ctx, &[("claude", "echo '9.9.9 (Claude Code)'")]);
    let (code, stdout, stderr) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!("bitrouter {} (", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    for expected in [
        format!("config: {} (ok)", ctx.default_config_path().display()),
        "openai-codex@work: signed in (login, plan plus)".to_owned(),
        format!("server: running, pid {pid}, http://127.0.0.1:"),
        format!("  claude    {}/claude (9.9.9 (Claude Code))", bin.display()),
        "  codex     not found (install: npm install -g @openai/codex)".to_owned(),
        "no problems found".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected}:\n{stdout}");
    }
    for secret in ["local-secret-key", "tok-work", "rt-work"] {
        assert!(!stdout.contains(secret), "{secret} in:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_a_missing_login_a_broken_config_and_a_stopped_server() {
    let fake = FakeUpstream::start().await;
    let bin_ctx = TestContext::new();
    let bin = fake_bin(&bin_ctx, &[]);

    // A stopped server (signed in, config fine).
    let ctx = world(&fake);
    let (code, stdout, stderr) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("server: not running"), "{stdout}");
    assert!(
        stdout.contains("  - no server runs: clients set up with `bitrouter connect` cannot reach bitrouter\n    fix: `bitrouter serve --detach`"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: doctor found 1 problem(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    // A missing login.
    let ctx = TestContext::new();
    let (code, stdout, _) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("  none signed in"), "{stdout}");
    assert!(
        stdout.contains("  - no account is signed in: every request will fail\n    fix: `bitrouter login openai-codex`"),
        "{stdout}"
    );

    // A broken config.
    let ctx = world(&fake);
    ctx.write_config("server:\n  listen: 127.0.0.1:0\n  colour: blue\n");
    let (code, stdout, _) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "config: {} (invalid)",
            ctx.default_config_path().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - the config does not load: ") && stdout.contains("colour"),
        "{stdout}"
    );
}

/// `service install` writes a unit that `systemd-analyze verify` accepts, and asks the user's
/// systemd (a fake `systemctl` here) to enable and start it; `uninstall` undoes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs systemd-analyze"]
async fn service_install_writes_a_unit_systemd_accepts_and_uninstall_removes_it() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let calls = ctx.root().join("systemctl-calls");
    let bin = fake_bin(
        &ctx,
        &[(
            "systemctl",
            &format!(
                "echo \"$*\" >> {}\ncase \"$2\" in is-enabled) echo enabled;; is-active) echo active;; esac",
                calls.display()
            ),
        )],
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let service = |action: &'static str| {
        let mut cmd = tokio::process::Command::from(ctx.std_cmd());
        cmd.env("PATH", &path).args(["service", action]);
        cmd
    };
    let out = service("install").output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unit_path = ctx.config_home().join("systemd/user/bitrouter.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exe = std::fs::canonicalize(assert_cmd::cargo::cargo_bin("bitrouter")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart=\"{}\" \"serve\"\n", exe.display())),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"XDG_STATE_HOME={}\"\n",
            ctx.state_home().display()
        )),
        "{unit}"
    );
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}\n{unit}",
        text(&verify.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "--user daemon-reload\n--user enable --now bitrouter.service\n"
    );

    let out = service("status").output().await.unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "service: installed ({}): enabled, active\n",
            unit_path.display()
        )
    );

    let out = service("uninstall").output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!unit_path.exists());
    assert!(
        std::fs::read_to_string(&calls)
            .unwrap()
            .ends_with("--user disable --now bitrouter.service\n--user daemon-reload\n")
    );
}
