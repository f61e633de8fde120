//! Table tests of the resolver: every grammar form, ambiguity and each error.

use pretty_assertions::assert_eq;

use super::*;
use crate::env::Env;

const CONFIG: &str = r"
providers:
  openai-codex:
    accounts: [work, default]
  openai:
    base_url: https://api.openai.com/v1
    api_key: sk-config
    models: [gpt-4.1, gpt-4.1-mini, shared]
  local:
    base_url: http://127.0.0.1:11434/v1
    auth_mode: none
    models: ['llama3:8b', shared]
  byok:
    base_url: https://byok.example/v1
    auth_mode: passthrough
routes:
  fast: [openai-codex:gpt-6-luna, openai:gpt-4.1-mini]
  nested: [fast, local/llama3:8b]
  loop-a: [loop-b]
  loop-b: [loop-a]
";

fn config() -> Config {
    Config::parse(CONFIG, &Env::default()).unwrap()
}

fn inventory() -> Inventory {
    let mut inv = Inventory::default();
    inv.labels.insert(
        ProviderId::openai_codex(),
        vec![
            "default".parse().unwrap(),
            "personal".parse().unwrap(),
            "work".parse().unwrap(),
        ],
    );
    inv.catalogs.insert(
        ProviderId::openai_codex(),
        std::sync::Arc::new(vec!["gpt-6.1-sol".into(), "gpt-6-luna".into()]),
    );
    inv
}

fn label(s: &str) -> Label {
    s.parse().unwrap()
}

/// provider, upstream model, credentials, pinned, reason
type Summary = (String, String, Vec<Credential>, bool, Reason);
type Expected<'a> = (&'a str, &'a str, Vec<Credential>, bool, Reason);

fn first(model: &str, header: Option<&str>) -> Result<Summary, RouteError> {
    let config = config();
    let inv = inventory();
    let plan = Resolver::new(&config, &inv).resolve(model, header)?;
    let step = plan.steps.into_iter().next().unwrap();
    Ok((
        step.target.provider.to_string(),
        step.target.model.to_string(),
        step.target.credentials,
        step.target.pinned,
        step.reason,
    ))
}

fn acct(s: &str) -> Credential {
    Credential::Account(label(s))
}

#[test]
fn grammar_forms_resolve() {
    let codex_order = vec![acct("work"), acct("default")];
    let cases: Vec<(&str, Option<&str>, Expected)> = vec![
        (
            "openai-codex:gpt-6.1-sol",
            None,
            (
                "openai-codex",
                "gpt-6.1-sol",
                codex_order.clone(),
                false,
                Reason::Pinned,
            ),
        ),
        (
            "openai-codex/gpt-6.1-sol",
            None,
            (
                "openai-codex",
                "gpt-6.1-sol",
                codex_order.clone(),
                false,
                Reason::Pinned,
            ),
        ),
        (
            "openai-codex@personal:gpt-6.1-sol",
            None,
            (
                "openai-codex",
                "gpt-6.1-sol",
                vec![acct("personal")],
                true,
                Reason::Pinned,
            ),
        ),
        (
            "openai-codex:gpt-6.1-sol",
            Some("personal"),
            (
                "openai-codex",
                "gpt-6.1-sol",
                vec![acct("personal")],
                true,
                Reason::Pinned,
            ),
        ),
        (
            "gpt-6.1-sol",
            None,
            (
                "openai-codex",
                "gpt-6.1-sol",
                codex_order.clone(),
                false,
                Reason::Catalog,
            ),
        ),
        (
            "gpt-4.1",
            None,
            (
                "openai",
                "gpt-4.1",
                vec![Credential::ConfiguredKey],
                false,
                Reason::Declared,
            ),
        ),
        (
            "unheard-of",
            None,
            (
                "openai-codex",
                "unheard-of",
                codex_order.clone(),
                false,
                Reason::Default,
            ),
        ),
        (
            "llama3:8b",
            None,
            (
                "local",
                "llama3:8b",
                vec![Credential::None],
                false,
                Reason::Declared,
            ),
        ),
        (
            "local/llama3:8b",
            None,
            (
                "local",
                "llama3:8b",
                vec![Credential::None],
                false,
                Reason::Pinned,
            ),
        ),
        (
            "byok:anything",
            None,
            (
                "byok",
                "anything",
                vec![Credential::None],
                false,
                Reason::Pinned,
            ),
        ),
        (
            "openai:not-declared",
            None,
            (
                "openai",
                "not-declared",
                vec![Credential::ConfiguredKey],
                false,
                Reason::Pinned,
            ),
        ),
    ];
    for (model, header, (provider, upstream, creds, pinned, reason)) in cases {
        let got = first(model, header).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(
            got,
            (
                provider.to_owned(),
                upstream.to_owned(),
                creds,
                pinned,
                reason
            ),
            "{model} {header:?}"
        );
    }
}

#[test]
fn routes_expand_in_order_and_nest() {
    let config = config();
    let inv = inventory();
    let plan = Resolver::new(&config, &inv)
        .resolve("nested", None)
        .unwrap();
    assert_eq!(plan.route.as_deref(), Some("nested"));
    let chain: Vec<(String, String)> = plan
        .steps
        .iter()
        .map(|s| (s.target.provider.to_string(), s.target.model.to_string()))
        .collect();
    assert_eq!(
        chain,
        vec![
            ("openai-codex".to_owned(), "gpt-6-luna".to_owned()),
            ("openai".to_owned(), "gpt-4.1-mini".to_owned()),
            ("local".to_owned(), "llama3:8b".to_owned()),
        ]
    );
}

#[test]
fn errors_explain_themselves() {
    let cases: Vec<(&str, Option<&str>, RouteError)> = vec![
        ("", None, RouteError::EmptyModel),
        ("openai-codex:", None, RouteError::EmptyModel),
        (
            "opneai:gpt-4.1",
            None,
            RouteError::UnknownProvider {
                requested: "opneai:gpt-4.1".into(),
                provider: "opneai".into(),
                known: "byok, local, openai, openai-codex".into(),
            },
        ),
        (
            "openai-codex@nobody:gpt-6",
            None,
            RouteError::UnknownAccount {
                provider: ProviderId::openai_codex(),
                label: label("nobody"),
            },
        ),
        (
            "openai-codex@Bad:gpt-6",
            None,
            RouteError::BadLabel("Bad".into()),
        ),
        (
            "gpt-6",
            Some("NOPE NOPE"),
            RouteError::BadLabel("NOPE NOPE".into()),
        ),
        (
            "openai-codex@work:gpt-6",
            Some("personal"),
            RouteError::ConflictingAccounts {
                in_id: label("work"),
                in_header: label("personal"),
            },
        ),
        (
            "shared",
            None,
            RouteError::Ambiguous {
                model: "shared".into(),
                providers: "local, openai".into(),
            },
        ),
        ("loop-a", None, RouteError::RouteLoop("loop-a".into())),
    ];
    for (model, header, want) in cases {
        assert_eq!(first(model, header).map(|_| ()), Err(want), "{model}");
    }
}

#[test]
fn codex_without_accounts_is_not_logged_in() {
    let config = config();
    let inv = Inventory::default();
    let err = Resolver::new(&config, &inv)
        .resolve("openai-codex:gpt-6", None)
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::NotLoggedIn {
            provider: ProviderId::openai_codex()
        }
    );
    assert_eq!(err.http_status(), 401);
    assert!(err.hint().contains("bitrouter login openai-codex"));
}

#[test]
fn configured_order_filters_to_stored_labels() {
    let config = Config::parse(
        "providers:\n  openai-codex:\n    accounts: [missing, personal]\n",
        &Env::default(),
    )
    .unwrap();
    let inv = inventory();
    let plan = Resolver::new(&config, &inv)
        .resolve("openai-codex:m", None)
        .unwrap();
    assert_eq!(plan.steps[0].target.credentials, vec![acct("personal")]);
}

#[test]
fn passthrough_codex_without_accounts_uses_client_credentials() {
    let config = Config::parse(
        "providers:\n  openai-codex:\n    auth_mode: passthrough\n",
        &Env::default(),
    )
    .unwrap();
    let inv = Inventory::default();
    let plan = Resolver::new(&config, &inv).resolve("gpt-6", None).unwrap();
    assert_eq!(plan.steps[0].target.credentials, vec![Credential::None]);
}
