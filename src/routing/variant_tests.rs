//! Table tests of variants and glob routes in the resolver: every form of suffix and pin, the
//! glob order, nesting (the outermost pin wins), and each refusal.

use pretty_assertions::assert_eq;

use super::*;
use crate::env::Env;
use crate::variant::VariantError;

const CONFIG: &str = r#"
providers:
  openai-codex:
    accounts: [work]
  openai:
    base_url: https://api.openai.com/v1
    api_key: k
    models: [gpt-4.1]
  anth:
    base_url: https://api.anthropic.com/v1
    api: anthropic_messages
    api_key: k
    models: [claude-x]
routes:
  "claude-*": openai-codex:gpt-6-luna
  "claude-sonnet-*": {to: openai-codex:gpt-6.1-sol, effort: medium}
  "claude-opus-*": {to: opus-main, service_tier: fast}
  opus-main: {to: [gpt-6.1-sol+high, openai:gpt-4.1+high], effort: low}
  luna-low: gpt-6-luna+low
  bad-pin: {to: gpt-6-luna, effort: xhigh}
  standard: {to: gpt-6.1-sol+fast, service_tier: default}
"#;

fn config() -> Config {
    Config::parse(CONFIG, &Env::default()).unwrap()
}

fn inventory(with_catalog: bool) -> Inventory {
    let mut inv = Inventory::default();
    let codex = ProviderId::openai_codex();
    inv.labels
        .insert(codex.clone(), vec!["work".parse().unwrap()]);
    inv.catalogs.insert(
        codex.clone(),
        std::sync::Arc::new(vec!["gpt-6.1-sol".into(), "gpt-6-luna".into()]),
    );
    if with_catalog {
        let caps = |efforts: &[&str], fast| Capabilities {
            efforts: efforts.iter().map(|e| (*e).to_owned()).collect(),
            fast,
        };
        inv.capabilities.insert(
            codex,
            [
                (
                    "gpt-6.1-sol".to_owned(),
                    caps(&["low", "medium", "high"], true),
                ),
                ("gpt-6-luna".to_owned(), caps(&["low", "medium"], false)),
            ]
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into(),
        );
    }
    inv
}

fn suffix<T>(value: T) -> Option<Setting<T>> {
    Some(Setting {
        value,
        origin: Origin::Suffix,
    })
}

fn pin<T>(value: T, route: &str) -> Option<Setting<T>> {
    Some(Setting {
        value,
        origin: Origin::Route(route.to_owned()),
    })
}

/// provider:model, effort, tier, checked against the catalog
type Got = (
    String,
    Option<Setting<String>>,
    Option<Setting<ServiceTier>>,
    bool,
);

fn resolve(model: &str, with_catalog: bool) -> Result<(Option<String>, Vec<Got>), RouteError> {
    let config = config();
    let inv = inventory(with_catalog);
    let plan = Resolver::new(&config, &inv).resolve(model, None)?;
    let steps = plan
        .steps
        .into_iter()
        .map(|s| {
            (
                format!("{}:{}", s.target.provider, s.target.model),
                s.target.effort,
                s.target.service_tier,
                s.catalog_checked,
            )
        })
        .collect();
    Ok((plan.route, steps))
}

fn effort(e: &str) -> String {
    e.to_owned()
}

#[test]
fn suffixes_and_pins_resolve() {
    let sol = "openai-codex:gpt-6.1-sol".to_owned();
    let luna = "openai-codex:gpt-6-luna".to_owned();
    let gpt41 = "openai:gpt-4.1".to_owned();
    let priority = ServiceTier::Priority;
    let cases: Vec<(&str, Option<&str>, Vec<Got>)> = vec![
        (
            "gpt-6.1-sol+high",
            None,
            vec![(sol.clone(), suffix(effort("high")), None, true)],
        ),
        (
            "gpt-6.1-sol+fast+low",
            None,
            vec![(sol.clone(), suffix(effort("low")), suffix(priority), true)],
        ),
        (
            "openai-codex@work:gpt-6.1-sol+high",
            None,
            vec![(sol.clone(), suffix(effort("high")), None, true)],
        ),
        ("gpt-6.1-sol", None, vec![(sol.clone(), None, None, true)]),
        (
            "claude-sonnet-4-5",
            Some("claude-sonnet-*"),
            vec![(
                sol.clone(),
                pin(effort("medium"), "claude-sonnet-*"),
                None,
                true,
            )],
        ),
        (
            "claude-haiku-4-5",
            Some("claude-*"),
            vec![(luna.clone(), None, None, true)],
        ),
        // Nested: the inner route pins effort over the `+high` suffixes, the outer glob pins
        // the tier for both entries.
        (
            "claude-opus-4-1",
            Some("claude-opus-*"),
            vec![
                (
                    sol.clone(),
                    pin(effort("low"), "opus-main"),
                    pin(priority, "claude-opus-*"),
                    true,
                ),
                (
                    gpt41.clone(),
                    pin(effort("low"), "opus-main"),
                    pin(priority, "claude-opus-*"),
                    false,
                ),
            ],
        ),
        // A route to a suffixed id keeps the suffix as a default, not a pin.
        (
            "luna-low",
            Some("luna-low"),
            vec![(luna.clone(), suffix(effort("low")), None, true)],
        ),
        (
            "standard",
            Some("standard"),
            vec![(
                sol.clone(),
                None,
                pin(ServiceTier::Default, "standard"),
                true,
            )],
        ),
        // No catalog entry for a configured provider: known efforts and fast are accepted.
        (
            "openai:gpt-4.1+xhigh+fast",
            None,
            vec![(
                gpt41.clone(),
                suffix(effort("xhigh")),
                suffix(priority),
                false,
            )],
        ),
        // A provider-qualified id is never matched against route globs.
        (
            "openai-codex:claude-x",
            None,
            vec![("openai-codex:claude-x".to_owned(), None, None, false)],
        ),
    ];
    for (model, route, steps) in cases {
        let got = resolve(model, true).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(got, (route.map(str::to_owned), steps), "{model}");
    }
}

#[test]
fn without_a_catalog_the_upstream_decides() {
    let (_, steps) = resolve("gpt-6-luna+xhigh+fast", false).unwrap();
    assert_eq!(
        steps,
        vec![(
            "openai-codex:gpt-6-luna".to_owned(),
            suffix(effort("xhigh")),
            suffix(ServiceTier::Priority),
            false
        )]
    );
}

#[test]
fn unsupported_and_malformed_variants_are_refused() {
    let unsupported = |model: &str, asked: &str, offered: &str| RouteError::UnsupportedVariant {
        model: model.into(),
        asked: asked.into(),
        offered: offered.into(),
    };
    let bad = |requested: &str, error| RouteError::BadVariant {
        requested: requested.into(),
        error,
    };
    let cases = vec![
        (
            "gpt-6-luna+xhigh",
            unsupported(
                "openai-codex:gpt-6-luna",
                "`+xhigh`",
                "it offers +low, +medium",
            ),
            404,
        ),
        (
            "gpt-6-luna+fast",
            unsupported(
                "openai-codex:gpt-6-luna",
                "`+fast`",
                "it offers +low, +medium",
            ),
            404,
        ),
        (
            "bad-pin",
            unsupported(
                "openai-codex:gpt-6-luna",
                "effort `xhigh`, pinned by route `bad-pin`",
                "it offers +low, +medium",
            ),
            404,
        ),
        (
            "openai:gpt-4.1+extreme",
            unsupported(
                "openai:gpt-4.1",
                "`+extreme`",
                "known efforts: none, minimal, low, medium, high, xhigh, max, ultra",
            ),
            404,
        ),
        (
            "anth:claude-x+fast",
            unsupported(
                "anth:claude-x",
                "`+fast`",
                "it speaks only anthropic_messages, which has no priority tier",
            ),
            404,
        ),
        (
            "claude-sonnet-4-5+high",
            RouteError::VariantOfRoute {
                requested: "claude-sonnet-4-5+high".into(),
                route: "claude-sonnet-*".into(),
            },
            400,
        ),
        (
            "luna-low+high",
            RouteError::VariantOfRoute {
                requested: "luna-low+high".into(),
                route: "luna-low".into(),
            },
            400,
        ),
        (
            "gpt-6.1-sol+",
            bad("gpt-6.1-sol+", VariantError::Empty),
            400,
        ),
        (
            "gpt-6.1-sol+high+low",
            bad(
                "gpt-6.1-sol+high+low",
                VariantError::Twice {
                    what: "reasoning effort",
                    first: "high".into(),
                    second: "low".into(),
                },
            ),
            400,
        ),
    ];
    for (model, want, status) in cases {
        assert_eq!(want.http_status(), status, "{model}");
        assert_eq!(resolve(model, true).map(|_| ()), Err(want), "{model}");
    }
}
