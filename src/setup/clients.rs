//! The descriptions themselves: for each client, the variables it reads (checked against the
//! clients' own code: Claude Code 2.1.332's binary, the Codex CLI's `-c` syntax, opencode's
//! `OPENCODE_CONFIG_CONTENT`, aider's and qwen-code's documented variables, the SDKs' defaults).

use super::{ClientInfo, KEY_VAR, Models, Setup, Target, Value};
use crate::cli::Client;

/// Name, program and install hint of a client.
#[must_use]
pub fn info(client: Client) -> ClientInfo {
    let (name, program, install, is_cli) = match client {
        Client::Codex => (
            "the Codex CLI",
            "codex",
            "npm install -g @openai/codex",
            true,
        ),
        Client::Claude => (
            "Claude Code",
            "claude",
            "npm install -g @anthropic-ai/claude-code",
            true,
        ),
        Client::Opencode => ("opencode", "opencode", "npm install -g opencode-ai", true),
        Client::Aider => ("aider", "aider", "pipx install aider-chat", true),
        Client::Llm => ("llm", "llm", "pipx install llm", true),
        Client::Qwen => (
            "Qwen Code",
            "qwen",
            "npm install -g @qwen-code/qwen-code",
            true,
        ),
        Client::OpenaiPython => (
            "the openai Python SDK",
            "python3",
            "install Python 3, then `pip install openai`",
            false,
        ),
        Client::OpenaiNode => (
            "the openai Node.js SDK",
            "node",
            "install Node.js, then `npm install openai`",
            false,
        ),
        Client::AnthropicPython => (
            "the anthropic Python SDK",
            "python3",
            "install Python 3, then `pip install anthropic`",
            false,
        ),
        Client::VercelAi => (
            "the Vercel AI SDK",
            "node",
            "install Node.js, then `npm install ai @ai-sdk/openai @ai-sdk/anthropic`",
            false,
        ),
        Client::Langchain => (
            "LangChain",
            "python3",
            "install Python 3, then `pip install langchain-openai langchain-anthropic`",
            false,
        ),
        Client::Curl => (
            "curl",
            "curl",
            "install curl with your package manager",
            false,
        ),
    };
    ClientInfo {
        name,
        program,
        install,
        is_cli,
    }
}

/// The setup of `client` against `target` with `models`.
#[must_use]
pub fn describe(client: Client, target: &Target, models: &Models) -> Setup {
    let program = Some(info(client).program);
    let key = target.key();
    fn text(s: impl Into<String>) -> Value {
        Value::text(s)
    }
    let mut setup = Setup {
        program,
        args: Vec::new(),
        env: Vec::new(),
        unset: Vec::new(),
    };
    match client {
        Client::Codex => {
            // One-shot overrides (TOML values): the provider, and the model; the Codex CLI's
            // config.toml is never touched.
            let headers = if target.needs_key {
                format!(r#",env_http_headers={{"x-bitrouter-key"="{KEY_VAR}"}}"#)
            } else {
                String::new()
            };
            setup.args = [
                r#"model_provider="bitrouter""#.to_owned(),
                format!(
                    r#"model_providers.bitrouter={{name="bitrouter",base_url="{}",wire_api="responses"{headers}}}"#,
                    target.v1()
                ),
                format!(r#"model="{}""#, models.main),
            ]
            .into_iter()
            .flat_map(|o| ["-c".to_owned(), o])
            .collect();
            if target.needs_key {
                setup.env.push((KEY_VAR, Value::LocalKey));
            }
        }
        Client::Claude => {
            // Every variable Claude Code 2.1.332 reads for a model, so no request names a model
            // bitrouter cannot route; the bearer token (not ANTHROPIC_API_KEY, which makes the
            // interactive client ask whether to trust the key); and gateway model discovery
            // (read by 2.1.129 and later), which lists the server's `claude-*` routes in /model.
            let opus = models.or_main(models.opus.as_ref());
            let sonnet = models.or_main(models.sonnet.as_ref());
            let haiku = models.or_main(models.haiku.as_ref());
            setup.env = vec![
                ("ANTHROPIC_BASE_URL", text(target.origin())),
                ("ANTHROPIC_AUTH_TOKEN", key),
                ("ANTHROPIC_MODEL", text(&models.main)),
                ("ANTHROPIC_DEFAULT_OPUS_MODEL", text(opus)),
                ("ANTHROPIC_DEFAULT_SONNET_MODEL", text(sonnet)),
                ("ANTHROPIC_DEFAULT_HAIKU_MODEL", text(haiku)),
                ("ANTHROPIC_DEFAULT_FABLE_MODEL", text(opus)),
                ("ANTHROPIC_SMALL_FAST_MODEL", text(haiku)),
                (
                    "CLAUDE_CODE_SUBAGENT_MODEL",
                    text(models.or_main(models.subagent.as_ref())),
                ),
                ("CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY", text("1")),
            ];
            setup.unset = vec!["ANTHROPIC_API_KEY"];
        }
        Client::Opencode => {
            // opencode merges a whole config from OPENCODE_CONFIG_CONTENT over its files.
            let api_key = if target.needs_key {
                format!("{{env:{KEY_VAR}}}")
            } else {
                super::PLACEHOLDER_KEY.to_owned()
            };
            let model = &models.main;
            let config = serde_json::json!({
                "$schema": "https://opencode.ai/config.json",
                "provider": {"bitrouter": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "bitrouter",
                    "options": {"baseURL": target.v1(), "apiKey": api_key},
                    "models": {model.as_str(): {"name": format!("{model} (bitrouter)")}},
                }},
                "model": format!("bitrouter/{model}"),
            });
            setup
                .env
                .push(("OPENCODE_CONFIG_CONTENT", text(config.to_string())));
            if target.needs_key {
                setup.env.push((KEY_VAR, Value::LocalKey));
            }
        }
        Client::Aider => {
            setup.env = vec![
                ("OPENAI_API_BASE", text(target.v1())),
                ("OPENAI_API_KEY", key),
                ("AIDER_MODEL", text(format!("openai/{}", models.main))),
                (
                    "AIDER_WEAK_MODEL",
                    text(format!("openai/{}", models.or_main(models.haiku.as_ref()))),
                ),
            ];
        }
        Client::Llm => {
            // llm's OpenAI client reads OPENAI_BASE_URL when a model names no `api_base`; the
            // model itself must be in llm's registry (`connect llm` shows the one-time entry).
            setup.env = vec![
                ("OPENAI_BASE_URL", text(target.v1())),
                ("OPENAI_API_KEY", key),
                ("LLM_MODEL", text(&models.main)),
            ];
        }
        Client::Qwen => {
            setup.env = vec![
                ("OPENAI_BASE_URL", text(target.v1())),
                ("OPENAI_API_KEY", key),
                ("OPENAI_MODEL", text(&models.main)),
            ];
        }
        Client::OpenaiPython | Client::OpenaiNode => {
            setup.env = vec![
                ("OPENAI_BASE_URL", text(target.v1())),
                ("OPENAI_API_KEY", key),
            ];
        }
        Client::AnthropicPython => {
            setup.env = vec![
                ("ANTHROPIC_BASE_URL", text(target.origin())),
                ("ANTHROPIC_API_KEY", key),
            ];
            setup.unset = vec!["ANTHROPIC_AUTH_TOKEN"];
        }
        Client::VercelAi => {
            // @ai-sdk/anthropic's base URL includes the version (`…/v1`), unlike the SDKs'.
            setup.env = vec![
                ("OPENAI_BASE_URL", text(target.v1())),
                ("OPENAI_API_KEY", key.clone()),
                ("ANTHROPIC_BASE_URL", text(target.v1())),
                ("ANTHROPIC_API_KEY", key),
            ];
        }
        Client::Langchain => {
            setup.env = vec![
                ("OPENAI_BASE_URL", text(target.v1())),
                ("OPENAI_API_BASE", text(target.v1())),
                ("OPENAI_API_KEY", key.clone()),
                ("ANTHROPIC_BASE_URL", text(target.origin())),
                ("ANTHROPIC_API_KEY", key),
            ];
        }
        Client::Curl => {
            setup = generic(target);
            setup.program = program;
        }
    }
    setup
}

/// The setup of `run -- <command>`: the base URLs and keys most OpenAI and Anthropic clients
/// read.
#[must_use]
pub fn generic(target: &Target) -> Setup {
    let key = target.key();
    let mut env = vec![
        ("OPENAI_BASE_URL", Value::text(target.v1())),
        ("OPENAI_API_BASE", Value::text(target.v1())),
        ("OPENAI_API_KEY", key.clone()),
        ("ANTHROPIC_BASE_URL", Value::text(target.origin())),
        ("ANTHROPIC_API_KEY", key),
    ];
    if target.needs_key {
        env.push((KEY_VAR, Value::LocalKey));
    }
    Setup {
        program: None,
        args: Vec::new(),
        env,
        unset: vec!["ANTHROPIC_AUTH_TOKEN"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            addr: "127.0.0.1:4356".parse().unwrap(),
            needs_key: false,
        }
    }

    #[test]
    fn every_client_runs_its_own_program() {
        for client in Client::ALL {
            let setup = describe(client, &target(), &Models::one("m"));
            assert_eq!(setup.program, Some(info(client).program), "{client:?}");
        }
    }

    #[test]
    fn claude_tiers_default_to_the_main_model_and_follow_their_flags() {
        let models = Models {
            main: "main".into(),
            opus: Some("big".into()),
            sonnet: None,
            haiku: Some("small".into()),
            subagent: None,
        };
        let setup = describe(Client::Claude, &target(), &models);
        let var = |n: &str| match setup.var(n) {
            Some(Value::Text(t)) => t.clone(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(var("ANTHROPIC_MODEL"), "main");
        assert_eq!(var("ANTHROPIC_DEFAULT_OPUS_MODEL"), "big");
        assert_eq!(var("ANTHROPIC_DEFAULT_SONNET_MODEL"), "main");
        assert_eq!(var("ANTHROPIC_DEFAULT_HAIKU_MODEL"), "small");
        assert_eq!(var("ANTHROPIC_SMALL_FAST_MODEL"), "small");
        assert_eq!(var("CLAUDE_CODE_SUBAGENT_MODEL"), "main");
        assert_eq!(var("CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"), "1");
        assert_eq!(
            setup.var("ANTHROPIC_AUTH_TOKEN"),
            Some(&Value::text("bitrouter"))
        );
    }

    #[test]
    fn the_local_key_goes_where_each_client_reads_it() {
        let keyed = Target {
            needs_key: true,
            ..target()
        };
        let models = Models::one("m");
        let codex = describe(Client::Codex, &keyed, &models);
        assert_eq!(codex.var(KEY_VAR), Some(&Value::LocalKey));
        assert!(
            codex
                .args
                .iter()
                .any(|a| a.contains(r#"env_http_headers={"x-bitrouter-key"="BITROUTER_API_KEY"}"#)),
            "{:?}",
            codex.args
        );
        let claude = describe(Client::Claude, &keyed, &models);
        assert_eq!(claude.var("ANTHROPIC_AUTH_TOKEN"), Some(&Value::LocalKey));
        let generic = generic(&keyed);
        assert_eq!(generic.var("OPENAI_API_KEY"), Some(&Value::LocalKey));
        assert_eq!(generic.var("ANTHROPIC_API_KEY"), Some(&Value::LocalKey));
    }

    #[test]
    fn vercel_ai_gets_a_versioned_anthropic_base_url() {
        let setup = describe(Client::VercelAi, &target(), &Models::one("m"));
        assert_eq!(
            setup.var("ANTHROPIC_BASE_URL"),
            Some(&Value::text("http://127.0.0.1:4356/v1"))
        );
        let setup = describe(Client::AnthropicPython, &target(), &Models::one("m"));
        assert_eq!(
            setup.var("ANTHROPIC_BASE_URL"),
            Some(&Value::text("http://127.0.0.1:4356"))
        );
    }
}
