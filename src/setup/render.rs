//! Setups as text for `connect`: the one-run command (`bitrouter run …`), the same setup as
//! shell lines, and for some clients the permanent form (the Codex CLI's config.toml, opencode's
//! config file) or a code sample. The local key is always a reference to `$BITROUTER_API_KEY`.

use std::fmt::Write as _;

use super::{KEY_VAR, Models, Setup, Target, Value, describe, info};
use crate::cli::Client;

/// Quotes `s` for a POSIX shell when it needs it.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn shell_value(value: &Value) -> String {
    match value {
        Value::Text(t) => shell_quote(t),
        Value::LocalKey => format!("\"${KEY_VAR}\""),
    }
}

/// The setup as shell lines: `unset`, `export`, then the command.
#[must_use]
pub fn shell_lines(setup: &Setup) -> String {
    let mut out = String::new();
    if !setup.unset.is_empty() {
        let _ = writeln!(out, "unset {}", setup.unset.join(" "));
    }
    for (name, value) in &setup.env {
        let _ = writeln!(out, "export {name}={}", shell_value(value));
    }
    if let Some(program) = setup.program {
        let mut line = program.to_owned();
        for arg in &setup.args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The whole `connect` text for a client.
#[must_use]
pub fn connect_text(client: Client, target: &Target, models: &Models, run_flags: &str) -> String {
    let setup = describe(client, target, models);
    let about = info(client);
    let mut out = String::new();
    let name = client_arg(client);
    let mut name_chars = about.name.chars();
    let title: String = name_chars
        .next()
        .map(|c| c.to_uppercase().chain(name_chars).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# {title} through bitrouter, for one run (starts the server when none runs; changes no file):"
    );
    let _ = writeln!(out, "bitrouter run{run_flags} {name}\n");
    let _ = writeln!(out, "# or in this shell, with `bitrouter serve` running:");
    out.push_str(&shell_lines(&setup));
    if let Some(extra) = permanent_or_sample(client, target, models) {
        out.push('\n');
        out.push_str(&extra);
    }
    out
}

/// The client's name on the command line.
fn client_arg(client: Client) -> String {
    use clap::ValueEnum as _;
    client
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// A permanent setup (config file) or a code sample, for the clients that have one.
fn permanent_or_sample(client: Client, target: &Target, models: &Models) -> Option<String> {
    let model = &models.main;
    let v1 = target.v1();
    let origin = target.origin();
    let text = match client {
        Client::Codex => {
            let mut t = format!(
                "# or for good, in ~/.codex/config.toml:\nmodel = \"{model}\"\nmodel_provider = \"bitrouter\"\n\n[model_providers.bitrouter]\nname = \"bitrouter\"\nbase_url = \"{v1}\"\nwire_api = \"responses\"\n"
            );
            if target.needs_key {
                let _ = writeln!(
                    t,
                    "env_http_headers = {{ \"x-bitrouter-key\" = \"{KEY_VAR}\" }}"
                );
            }
            let _ = writeln!(
                t,
                "# optional: supports_websockets = true keeps one socket open for a whole run"
            );
            let https = origin.replacen("http://", "https://", 1);
            let _ = write!(
                t,
                "# for your quota in /status and the status line (with a Codex ChatGPT login of its own):\n# requires_openai_auth = true under [model_providers.bitrouter], chatgpt_base_url = \"{https}/backend-api/\"\n# at the top, and CODEX_CA_CERTIFICATE set to the local CA `bitrouter serve` prints\n"
            );
            t
        }
        Client::Opencode => {
            let key = if target.needs_key {
                format!("{{env:{KEY_VAR}}}")
            } else {
                super::PLACEHOLDER_KEY.to_owned()
            };
            format!(
                "# or for good, in opencode.json (project) or ~/.config/opencode/opencode.json:\n{{\n  \"$schema\": \"https://opencode.ai/config.json\",\n  \"provider\": {{\n    \"bitrouter\": {{\n      \"npm\": \"@ai-sdk/openai-compatible\",\n      \"name\": \"bitrouter\",\n      \"options\": {{ \"baseURL\": \"{v1}\", \"apiKey\": \"{key}\" }},\n      \"models\": {{ \"{model}\": {{ \"name\": \"{model} (bitrouter)\" }} }}\n    }}\n  }},\n  \"model\": \"bitrouter/{model}\"\n}}\n"
            )
        }
        Client::OpenaiPython => format!(
            "# app.py (the SDK reads OPENAI_BASE_URL and OPENAI_API_KEY):\nfrom openai import OpenAI\n\nclient = OpenAI()\nprint(client.responses.create(model=\"{model}\", input=\"Hello\").output_text)\n"
        ),
        Client::OpenaiNode => format!(
            "// app.mjs (the SDK reads OPENAI_BASE_URL and OPENAI_API_KEY):\nimport OpenAI from \"openai\";\n\nconst client = new OpenAI();\nconst r = await client.responses.create({{ model: \"{model}\", input: \"Hello\" }});\nconsole.log(r.output_text);\n"
        ),
        Client::AnthropicPython => format!(
            "# app.py (the SDK reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY):\nfrom anthropic import Anthropic\n\nclient = Anthropic()\nmsg = client.messages.create(model=\"{model}\", max_tokens=1024, messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}])\nprint(msg.content[0].text)\n"
        ),
        Client::VercelAi => format!(
            "// app.mjs (@ai-sdk/openai reads OPENAI_BASE_URL and OPENAI_API_KEY):\nimport {{ generateText }} from \"ai\";\nimport {{ openai }} from \"@ai-sdk/openai\";\n\nconst {{ text }} = await generateText({{ model: openai(\"{model}\"), prompt: \"Hello\" }});\nconsole.log(text);\n"
        ),
        Client::Langchain => format!(
            "# app.py (langchain-openai reads OPENAI_BASE_URL / OPENAI_API_BASE and OPENAI_API_KEY):\nfrom langchain_openai import ChatOpenAI\n\nprint(ChatOpenAI(model=\"{model}\").invoke(\"Hello\").content)\n"
        ),
        Client::Curl => {
            let auth = if target.needs_key {
                format!(" \\\n  -H \"x-bitrouter-key: ${KEY_VAR}\"")
            } else {
                String::new()
            };
            format!(
                "# a streamed answer:\ncurl -N {v1}/responses{auth} \\\n  -H 'content-type: application/json' \\\n  -d '{{\"model\": \"{model}\", \"input\": \"Hello\", \"stream\": true}}'\n# Anthropic Messages: {origin}/v1/messages\n"
            )
        }
        Client::Llm => format!(
            "# llm knows only the models in its registry: once, add this one to\n# \"$(dirname \"$(llm logs path)\")/extra-openai-models.yaml\" (no address or key in it: llm's\n# OpenAI client reads OPENAI_BASE_URL and OPENAI_API_KEY, which `bitrouter run llm` sets):\n- model_id: {model}\n  model_name: {model}\n"
        ),
        Client::Claude | Client::Aider | Client::Qwen => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(needs_key: bool) -> Target {
        Target {
            addr: "127.0.0.1:4356".parse().unwrap(),
            needs_key,
        }
    }

    #[test]
    fn quoting_leaves_plain_words_alone() {
        assert_eq!(
            shell_quote("http://127.0.0.1:4356/v1"),
            "http://127.0.0.1:4356/v1"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_key_is_referenced_never_printed() {
        for client in Client::ALL {
            let text = connect_text(client, &target(true), &Models::one("m"), "");
            assert!(text.contains(KEY_VAR), "{client:?}: {text}");
        }
    }

    #[test]
    fn claude_gets_the_origin_and_every_model_variable() {
        let text = connect_text(Client::Claude, &target(false), &Models::one("m"), "");
        for line in [
            "export ANTHROPIC_BASE_URL=http://127.0.0.1:4356\n",
            "export ANTHROPIC_AUTH_TOKEN=bitrouter\n",
            "export ANTHROPIC_MODEL=m\n",
            "export ANTHROPIC_DEFAULT_OPUS_MODEL=m\n",
            "export ANTHROPIC_DEFAULT_SONNET_MODEL=m\n",
            "export ANTHROPIC_DEFAULT_HAIKU_MODEL=m\n",
            "export CLAUDE_CODE_SUBAGENT_MODEL=m\n",
            "export CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1\n",
            "unset ANTHROPIC_API_KEY\n",
            "bitrouter run claude\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }

    #[test]
    fn codex_overrides_are_one_shot_and_quoted_for_the_shell() {
        let text = connect_text(Client::Codex, &target(false), &Models::one("m"), "");
        assert!(
            text.contains(r#"codex -c 'model_provider="bitrouter"' -c 'model_providers.bitrouter={name="bitrouter",base_url="http://127.0.0.1:4356/v1",wire_api="responses"}' -c 'model="m"'"#),
            "{text}"
        );
        assert!(text.contains("wire_api = \"responses\""), "{text}");
        assert!(!text.contains("x-bitrouter-key"), "{text}");
    }
}
