//! Unit tests of parsing and validation; the end-to-end lookup order is tested in `tests/it`.

use super::*;

fn env() -> Env {
    Env::from_pairs([("OPENAI_API_KEY", "sk-test"), ("PORT", "9999")])
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, &env())
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => String::from("<parsed without error>"),
        Err(e) => e,
    }
}

#[test]
fn empty_config_gives_builtin_codex() {
    let config = parse("").unwrap();
    let codex = config.provider(&ProviderId::openai_codex()).unwrap();
    assert_eq!(
        codex.base_url.as_str(),
        "https://chatgpt.com/backend-api/codex"
    );
    let oauth = codex.oauth().unwrap();
    assert_eq!(oauth.issuer.as_str(), "https://auth.openai.com/");
    assert_eq!(oauth.callback_port, 1455);
    assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.store, StoreKind::File);
    assert_eq!(config.default_provider, ProviderId::openai_codex());
}

#[test]
fn contract_example_parses() {
    let text = r#"
server:
  listen: 127.0.0.1:4356
  api_key: ${BITROUTER_API_KEY:-}
store: file
default_provider: openai-codex
providers:
  openai-codex:
    base_url: https://chatgpt.com/backend-api/codex
    oauth:
      issuer: https://auth.openai.com
      callback_port: 1455
    accounts: [work, default]
    auth_mode: stored
    headers: {}
  openai:
    base_url: https://api.openai.com/v1
    api: openai_chat
    authorization: bearer
    auth_mode: override
    api_key: ${OPENAI_API_KEY}
    models: [gpt-4.1, gpt-4.1-mini]
routes:
  fast: [openai-codex:gpt-6-luna, openai:gpt-4.1-mini]
  "claude-sonnet-*": { to: openai-codex:gpt-6.1-sol, effort: medium }   # a glob alias that pins effort
"#;
    let config = parse(text).unwrap();
    assert!(config.server.api_key.is_none());
    let openai = config.provider("openai").unwrap();
    assert_eq!(openai.models, vec!["gpt-4.1", "gpt-4.1-mini"]);
    assert!(openai.api_key.is_some());
    assert_eq!(
        config.routes.named("fast").unwrap().to,
        vec!["openai-codex:gpt-6-luna", "openai:gpt-4.1-mini"]
    );
    let (key, sonnet) = config.routes.lookup("claude-sonnet-4-5").unwrap();
    assert_eq!(key, "claude-sonnet-*");
    assert_eq!(sonnet.effort.as_deref(), Some("medium"));
    let codex = config.provider(&ProviderId::openai_codex()).unwrap();
    assert_eq!(
        codex
            .accounts
            .as_deref()
            .map(|a| a.iter().map(Label::as_str).collect::<Vec<_>>()),
        Some(vec!["work", "default"])
    );
}

use crate::ids::Label;

#[test]
fn variables_expand_with_and_without_default() {
    let config =
        parse("providers:\n  openai-codex:\n    oauth:\n      callback_port: ${PORT}\n").unwrap();
    assert_eq!(
        config.providers[&ProviderId::openai_codex()]
            .oauth()
            .unwrap()
            .callback_port,
        9999
    );
    let config =
        parse("providers:\n  openai-codex:\n    oauth:\n      callback_port: ${NOPE:-1457}\n")
            .unwrap();
    assert_eq!(
        config.providers[&ProviderId::openai_codex()]
            .oauth()
            .unwrap()
            .callback_port,
        1457
    );
}

#[test]
fn unset_variable_names_variable_key_and_line() {
    let e = err(
        "store: file\nproviders:\n  openai:\n    base_url: https://x.test\n    api_key: ${MISSING_KEY}\n",
    );
    assert!(e.contains("MISSING_KEY"), "{e}");
    assert!(e.contains("providers"), "{e}");
    assert!(e.contains("line 5"), "{e}");
}

#[test]
fn unknown_key_is_refused_with_path_and_line() {
    let e = err("server:\n  listen: 127.0.0.1:1\n  lisen: 1\n");
    assert!(e.contains("server"), "{e}");
    assert!(e.contains("lisen"), "{e}");
    assert!(e.contains("line 3"), "{e}");

    let e = err("providers:\n  openai:\n    base_url: https://x.test\n    modles: [a]\n");
    assert!(e.contains("modles"), "{e}");
    assert!(e.contains("providers.openai"), "{e}");
    assert!(e.contains("line 4"), "{e}");

    let e = err("stores: file\n");
    assert!(e.contains("stores"), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn unknown_auth_mode_is_refused() {
    let e = err("providers:\n  openai:\n    base_url: https://x.test\n    auth_mode: sometimes\n");
    assert!(e.contains("providers.openai.auth_mode"), "{e}");
    assert!(e.contains("sometimes"), "{e}");
    assert!(e.contains("line 4"), "{e}");
}

#[test]
fn missing_base_url_is_refused() {
    let e = err("providers:\n  local:\n    models: [m]\n");
    assert!(e.contains("base_url"), "{e}");
    assert!(e.contains("local"), "{e}");
    assert!(e.contains("line "), "{e}");
}

#[test]
fn bad_label_is_refused() {
    let e = err("providers:\n  openai-codex:\n    accounts: [Work]\n");
    assert!(e.contains("Work"), "{e}");
    assert!(e.contains("providers.openai-codex.accounts"), "{e}");
}

#[test]
fn clear_text_credentials_to_other_hosts_are_refused() {
    let e = err("providers:\n  openai:\n    base_url: http://api.example.com/v1\n    api_key: k\n");
    assert!(e.contains("clear text"), "{e}");
    assert!(e.contains("openai"), "{e}");
    let e = err("providers:\n  openai-codex:\n    base_url: http://10.0.0.1/codex\n");
    assert!(e.contains("clear text"), "{e}");
    let e = err("providers:\n  openai-codex:\n    oauth:\n      issuer: http://auth.example.com\n");
    assert!(e.contains("oauth.issuer"), "{e}");
}

#[test]
fn clear_text_to_loopback_or_without_credentials_is_allowed() {
    parse("providers:\n  local:\n    base_url: http://127.0.0.1:8080/v1\n").unwrap();
    parse("providers:\n  local:\n    base_url: http://localhost:8080/v1\n").unwrap();
    parse("providers:\n  local:\n    base_url: http://[::1]:8080/v1\n").unwrap();
    parse("providers:\n  lan:\n    base_url: http://192.168.1.5/v1\n    auth_mode: none\n")
        .unwrap();
    parse("providers:\n  openai-codex:\n    base_url: http://127.0.0.1:1/codex\n    oauth:\n      issuer: http://127.0.0.1:2\n").unwrap();
}

#[test]
fn non_loopback_listen_needs_an_api_key() {
    let e = err("server:\n  listen: 0.0.0.0:4356\n");
    assert!(e.contains("server.listen"), "{e}");
    parse("server:\n  listen: 0.0.0.0:4356\n  api_key: secret\n").unwrap();
}

#[test]
fn codex_refuses_generic_only_keys() {
    let e = err("providers:\n  openai-codex:\n    api_key: x\n");
    assert!(e.contains("api_key"), "{e}");
    let e = err("providers:\n  openai:\n    base_url: https://x.test\n    oauth: {}\n");
    assert!(e.contains("oauth"), "{e}");
}

#[test]
fn default_provider_must_exist() {
    let e = err("default_provider: nope\n");
    assert!(e.contains("default_provider"), "{e}");
}

#[test]
fn syntax_error_has_a_line() {
    let e = err("server:\n  listen: [\n");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn route_accepts_a_string_a_list_or_a_map() {
    let config = parse(
        "routes:\n  a: openai-codex:x\n  b: [openai-codex:y, openai-codex:z+high]\n  c: {to: openai-codex:x, effort: xhigh, service_tier: fast}\n  d: {to: [a, b], service_tier: default}\n",
    )
    .unwrap();
    let route = |name: &str| config.routes.named(name).unwrap().clone();
    let plain = |to: &[&str]| Route {
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        effort: None,
        service_tier: None,
    };
    assert_eq!(route("a"), plain(&["openai-codex:x"]));
    assert_eq!(
        route("b"),
        plain(&["openai-codex:y", "openai-codex:z+high"])
    );
    assert_eq!(
        route("c"),
        Route {
            effort: Some("xhigh".into()),
            service_tier: Some(ServiceTier::Priority),
            ..plain(&["openai-codex:x"])
        }
    );
    assert_eq!(
        route("d"),
        Route {
            service_tier: Some(ServiceTier::Default),
            ..plain(&["a", "b"])
        }
    );
}

#[test]
fn the_most_specific_glob_wins_and_exact_names_beat_globs() {
    let config = parse(
        "routes:\n  \"claude-*\": a\n  \"claude-sonnet-*\": b\n  \"claude-sonnet-4-*\": c\n  claude-sonnet-4-5: d\n  \"*-haiku-4-*\": e\n",
    )
    .unwrap();
    let key = |id: &str| config.routes.lookup(id).map(|(k, _)| k.to_owned());
    assert_eq!(
        key("claude-sonnet-4-5").as_deref(),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(
        key("claude-sonnet-4-6").as_deref(),
        Some("claude-sonnet-4-*")
    );
    assert_eq!(key("claude-sonnet-5").as_deref(), Some("claude-sonnet-*"));
    assert_eq!(key("claude-opus-4-1").as_deref(), Some("claude-*"));
    // 9 literal characters in `*-haiku-4-*` against 7 in `claude-*`.
    assert_eq!(key("claude-haiku-4-5").as_deref(), Some("*-haiku-4-*"));
    assert_eq!(key("gpt-6"), None);
    // Globs are matched against what a client asks for, never as chain entries.
    assert!(config.routes.named("claude-*").is_none());
}

#[test]
fn route_errors_name_the_key_and_line() {
    let cases = [
        (
            "routes:\n  \"a*c\": x\n  \"ab*\": y\n",
            "routes.\"ab*\": `a*c` and `ab*` are equally specific (2 literal characters each) and both match `abc`",
            "line 3",
        ),
        (
            "routes:\n  fast:\n    to: x\n    effort: extreme\n",
            "routes.fast.effort: unknown effort `extreme` (known: none, minimal, low, medium, high, xhigh, max, ultra)",
            "line 4",
        ),
        (
            "routes:\n  \"gpt-6.1-*\":\n    to: x\n    service_tier: turbo\n",
            "routes.\"gpt-6.1-*\".service_tier: unknown service tier `turbo`",
            "line 4",
        ),
        (
            "routes:\n  fast: []\n",
            "routes.fast: list at least one model",
            "line 2",
        ),
        (
            "routes:\n  fast:\n    to: []\n",
            "routes.fast.to: list at least one model",
            "line 3",
        ),
        (
            "routes:\n  \"claude-?\": x\n",
            "routes.\"claude-?\": only `*` is a wildcard",
            "line 2",
        ),
        (
            "routes:\n  \"a**\": x\n",
            "routes.\"a**\": `**` matches",
            "line 2",
        ),
        (
            "routes:\n  \"x+high\": y\n",
            "a route name cannot contain `:`, `/`, `@`, `+`",
            "line 2",
        ),
        (
            "routes:\n  fast: [gpt-6+]\n",
            "routes.fast: `gpt-6+`: empty variant after `+`",
            "line 2",
        ),
        (
            "routes:\n  fast: [\"claude-*\"]\n",
            "routes.fast: `claude-*` is a pattern",
            "line 2",
        ),
        (
            "routes:\n  fast: x\n  slow: [fast+high]\n",
            "routes.slow: `fast+high`: variants apply to models, and `fast` is a route",
            "line 3",
        ),
        (
            "routes:\n  fast:\n    to: x\n    efort: high\n",
            "unknown field `efort`",
            "line 4",
        ),
    ];
    for (text, want, line) in cases {
        let e = err(text);
        assert!(e.contains(want), "{text}\n{e}");
        assert!(e.contains(line), "{text}\n{e}");
    }
}

use crate::variant::ServiceTier;

mod fuzz {
    //! Property tests: no input makes the loader or the expander panic, and expansion without
    //! `$` is the identity. Run longer by hand with `PROPTEST_CASES=100000`.

    use proptest::prelude::{Just, Strategy, prop_assert_eq, prop_oneof, proptest};

    use super::{Config, Env, expand};

    /// YAML-ish text built from the tokens that matter to the loader.
    fn yamlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("server:".to_owned()),
            Just("providers:".to_owned()),
            Just("openai-codex:".to_owned()),
            Just("base_url: ".to_owned()),
            Just("http://127.0.0.1:1/x".to_owned()),
            Just("auth_mode: ".to_owned()),
            Just("routes:".to_owned()),
            Just("[a, b]".to_owned()),
            Just("${X:-1}".to_owned()),
            Just("${".to_owned()),
            Just("\n  ".to_owned()),
            Just("\n".to_owned()),
            Just("- ".to_owned()),
            Just("{".to_owned()),
            "[ -~]{0,8}".prop_map(|s| s),
        ];
        proptest::collection::vec(token, 0..24).prop_map(|t| t.concat())
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in yamlish()) {
            let _ = Config::parse(&text, &Env::from_pairs([("X", "1")]));
        }

        #[test]
        fn parse_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = Config::parse(&text, &Env::default());
        }

        #[test]
        fn expansion_without_dollar_is_identity(text in "[^$]{0,64}") {
            prop_assert_eq!(expand(&text, &Env::default()), Ok(text));
        }
    }
}

#[test]
fn history_defaults_off_and_keep_days() {
    assert_eq!(parse("").unwrap().history, HistoryConfig::default());
    assert_eq!(parse("").unwrap().history.keep_days, DEFAULT_KEEP_DAYS);
    for off in ["history: off", "history: false", "history: \"off\""] {
        assert!(!parse(off).unwrap().history.enabled, "{off}");
    }
    let config = parse("history:\n  keep_days: 30\n").unwrap();
    assert_eq!(
        config.history,
        HistoryConfig {
            enabled: true,
            keep_days: 30
        }
    );
    assert_eq!(
        parse("history:\n").unwrap().history,
        HistoryConfig::default()
    );
}

#[test]
fn history_errors_name_the_key() {
    let e = err("history:\n  keep_days: 0\n");
    assert!(e.contains("history.keep_days"), "{e}");
    let e = err("history:\n  keep: 3\n");
    assert!(e.contains("history"), "{e}");
    assert!(e.contains("keep"), "{e}");
    let e = err("history: sometimes\n");
    assert!(e.contains("history"), "{e}");
    assert!(e.contains("off"), "{e}");
}

#[test]
fn websocket_is_off_by_default_and_only_for_codex() {
    let config = parse("").unwrap();
    let codex = config.provider("openai-codex").unwrap();
    assert!(!codex.websocket);
    let config = parse("providers:\n  openai-codex:\n    websocket: true\n").unwrap();
    let codex = config.provider("openai-codex").unwrap();
    assert!(codex.websocket);
    let e = err("providers:\n  openai:\n    base_url: https://x.test\n    websocket: true\n");
    assert!(e.contains("websocket"), "{e}");
    assert!(e.contains("only openai-codex"), "{e}");
}
