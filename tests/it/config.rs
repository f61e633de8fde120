//! The configuration file through the real binary: lookup order, `${VAR}` expansion, and every
//! config error exits 2 naming the key. `connect curl` is used as a probe because it loads the
//! config and prints the listen address.

use crate::support::TestContext;

/// Runs `connect curl` and returns (exit code, stdout, stderr).
fn probe(ctx: &TestContext, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = ctx.cmd();
    cmd.args(extra).args(["connect", "curl"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bitrouter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listen(port: u16) -> String {
    format!("server:\n  listen: 127.0.0.1:{port}\n")
}

#[test]
fn config_lookup_order_is_flag_env_xdg_and_never_cwd() {
    let ctx = TestContext::new();
    ctx.write_config(&listen(1001));
    let env_file = ctx.root().join("env.yaml");
    std::fs::write(&env_file, listen(1002)).unwrap();
    let flag_file = ctx.root().join("flag.yaml");
    std::fs::write(&flag_file, listen(1003)).unwrap();
    // A config in the working directory must never be read.
    let cwd = ctx.root().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(cwd.join("bitrouter.yaml"), listen(1004)).unwrap();

    let (code, out, _) = probe(&ctx, &[], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("127.0.0.1:1001"), "xdg: {out}");

    let env_path = env_file.display().to_string();
    let (_, out, _) = probe(&ctx, &[], &[("BITROUTER_CONFIG", &env_path)]);
    assert!(out.contains("127.0.0.1:1002"), "env: {out}");

    let flag_path = flag_file.display().to_string();
    let (_, out, _) = probe(
        &ctx,
        &["--config", &flag_path],
        &[("BITROUTER_CONFIG", &env_path)],
    );
    assert!(out.contains("127.0.0.1:1003"), "flag: {out}");

    std::fs::remove_file(ctx.default_config_path()).unwrap();
    let out = ctx
        .cmd()
        .current_dir(&cwd)
        .args(["connect", "curl"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("127.0.0.1:4356"), "default, not cwd: {out}");
}

#[test]
fn config_named_but_missing_is_a_usage_error() {
    let ctx = TestContext::new();
    let missing = ctx.root().join("nope.yaml").display().to_string();
    let (code, _, err) = probe(&ctx, &["--config", &missing], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: config file") && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn config_expands_variables_both_ways() {
    let ctx = TestContext::new();
    ctx.write_config("server:\n  listen: 127.0.0.1:${BR_PORT:-1005}\n");
    let (_, out, _) = probe(&ctx, &[], &[]);
    assert!(out.contains("127.0.0.1:1005"), "default: {out}");
    let (_, out, _) = probe(&ctx, &[], &[("BR_PORT", "1006")]);
    assert!(out.contains("127.0.0.1:1006"), "set: {out}");

    ctx.write_config("server:\n  listen: 127.0.0.1:${BR_PORT}\n");
    let (code, _, err) = probe(&ctx, &[], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("BR_PORT") && err.contains("server.listen") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn config_errors_exit_2_and_name_the_key() {
    let cases = [
        ("server:\n  lisen: x\n", "server.lisen", "line 2"),
        (
            "providers:\n  openai:\n    base_url: https://x.test\n    auth_mode: maybe\n",
            "providers.openai.auth_mode",
            "line 4",
        ),
        (
            "providers:\n  openai:\n    models: [a]\n",
            "providers.openai",
            "base_url",
        ),
        (
            "providers:\n  openai-codex:\n    accounts: [Bad Label]\n",
            "providers.openai-codex.accounts",
            "Bad Label",
        ),
        (
            "providers:\n  openai:\n    base_url: http://api.example.com/v1\n    api_key: k\n",
            "providers.openai.base_url",
            "clear text",
        ),
        (
            "server:\n  listen: 0.0.0.0:4356\n",
            "server.listen",
            "api_key",
        ),
        ("providers: [\n", "line", "error:"),
    ];
    for (text, key, detail) in cases {
        let ctx = TestContext::new();
        ctx.write_config(text);
        let (code, out, err) = probe(&ctx, &[], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(out.is_empty(), "{text}: nothing on stdout, got {out}");
        assert!(err.starts_with("error: invalid config "), "{text}: {err}");
        assert!(err.contains(key) && err.contains(detail), "{text}: {err}");
        assert!(err.contains("\nhint: "), "{text}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
}
