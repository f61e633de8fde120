//! SIGKILL while token refreshes rewrite the token file: never a partial file.

use super::*;

// ---------------------------------------------------------------------------------------------

/// The `n` claim of a fake issuer access token (which refresh it came from).
fn access_n(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["n"].as_u64()
}

/// Seeds expired sign-ins for `labels` with refresh tokens the issuer knows.
fn seed_expired(ctx: &TestContext, issuer: &FakeIssuer, labels: &[&str], round: usize) {
    let credentials: Vec<Value> = labels
        .iter()
        .map(|label| {
            let rt = format!("rt.seed-{label}-{round}");
            issuer.add_refresh_token(&rt);
            json!({
                "provider": "openai-codex", "label": label, "kind": "oauth",
                "access_token": issuer.make_access_token(now() - 60), "refresh_token": rt,
                "id_token": null, "expires_at": now() - 60, "account_id": "acc-default",
                "email": "you@example.com", "plan": "pro", "last_refresh": now() - 864_000,
                "source": "login", "needs_login": null
            })
        })
        .collect();
    let path = ctx.token_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        json!({"version": 1, "credentials": credentials}).to_string(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// `bitrouter status --refresh` rewrites the token file (three labels, every access token
/// already expired); SIGKILL lands at random moments until 30 runs died in flight. After each
/// kill the file is whole: valid JSON, `version: 1`, each credential an old or a new token
/// pair, never a mix; and interrupted writes leave at most a few temp files behind.
#[test]
fn sigkill_during_token_refresh_writes_never_leaves_a_partial_file() {
    const KILLS: usize = 30;
    let labels = ["a", "b", "c"];
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    issuer.set_access_ttl(0);
    // `status --refresh` also asks the usage endpoint: the fake issuer answers it.
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n      callback_port: 0\n",
        issuer.codex_base(),
        issuer.url
    ));
    let mut round = 0;
    seed_expired(&ctx, &issuer, &labels, round);
    let dir = ctx.token_file().parent().unwrap().to_owned();

    // Time uninterrupted runs (the fastest of three) to aim the kills inside one.
    let mut run_time = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = ctx
            .std_cmd()
            .args(["status", "--refresh", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run_time = run_time.min(started.elapsed());
    }
    let written: Value = serde_json::from_slice(&std::fs::read(ctx.token_file()).unwrap()).unwrap();
    assert!(
        written["credentials"][0]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );

    let mut seed = u64::from(std::process::id()) ^ now().unsigned_abs();
    let mut next = move || {
        // xorshift64*
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    // Kills land uniformly over the first three quarters of the fastest run; a run that ends
    // before its kill does not count, so the loop goes on until KILLS runs died in flight (a
    // busy machine can make runs faster or slower than the timed ones).
    let window = (u64::try_from(run_time.as_micros()).unwrap() * 3 / 4).max(1_000);
    let (mut killed, mut finished, mut reseeded) = (0, 0, 0);
    let mut max_tmp = 0;
    while killed < KILLS && killed + finished < 4 * KILLS {
        let before = std::fs::read_to_string(ctx.token_file()).unwrap();
        let mut child = ctx
            .std_cmd()
            .args(["status", "--refresh", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(next() % window));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        } else {
            finished += 1;
        }
        child.wait().unwrap();

        let text = std::fs::read_to_string(ctx.token_file()).unwrap();
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("token file is not JSON after a kill: {e}: {text:?}"));
        assert_eq!(doc["version"], 1, "{doc}");
        let old: Value = serde_json::from_str(&before).unwrap();
        let creds = doc["credentials"].as_array().unwrap();
        assert_eq!(creds.len(), labels.len(), "{doc}");
        for cred in creds {
            let label = cred["label"].as_str().unwrap();
            let rt = cred["refresh_token"].as_str().unwrap();
            let at = cred["access_token"].as_str().unwrap();
            let unchanged = old["credentials"].as_array().unwrap().iter().any(|o| {
                o["label"] == label && o["refresh_token"] == rt && o["access_token"] == at
            });
            let fresh_pair = rt
                .strip_prefix("rt.fake-")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| access_n(at) == Some(n));
            assert!(
                unchanged || fresh_pair,
                "credential {label} is neither the old nor a new pair: {cred}"
            );
        }
        let tmp = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        max_tmp = max_tmp.max(tmp);
        assert!(tmp <= 1, "{tmp} temp files left in {}", dir.display());

        // A kill between the issuer's rotation and the write leaves a spent refresh token: the
        // next run marks the account for a new sign-in. Start a fresh chain then.
        if creds.iter().any(|c| !c["needs_login"].is_null()) {
            round += 1;
            reseeded += 1;
            seed_expired(&ctx, &issuer, &labels, round);
        }
    }
    eprintln!(
        "sigkill: one run takes {run_time:?}; {killed} killed, {finished} finished first, \
         {reseeded} chains restarted, at most {max_tmp} temp files, {} refreshes",
        issuer.counts().refreshes
    );
    assert!(
        killed >= KILLS / 2,
        "only {killed} of {} runs were killed in flight",
        killed + finished
    );
}
