//! `bitrouter connect <client>`: prints the exact setup (environment variables or config lines)
//! that points a client at this bitrouter. It never edits the client's files, and never prints a
//! secret: a configured `server.api_key` is referred to by the variable that holds it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::cli::{Client, ConnectArgs};
use crate::commands::Context;

/// The name of the environment variable the printed snippets read the local API key from.
const KEY_VAR: &str = "BITROUTER_API_KEY";

/// Everything a snippet needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where bitrouter listens.
    pub listen: SocketAddr,
    /// The model id the snippet uses.
    pub model: String,
    /// Whether clients must present `server.api_key`.
    pub needs_key: bool,
}

impl Setup {
    fn origin(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn v1(&self) -> String {
        format!("{}/v1", self.origin())
    }

    /// What the client sends as its API key: the local key, or any placeholder.
    fn key(&self) -> String {
        if self.needs_key {
            format!("${KEY_VAR}")
        } else {
            "bitrouter".to_owned()
        }
    }
}

/// The setup text for one client.
#[must_use]
pub fn snippet(client: Client, s: &Setup) -> String {
    let mut out = String::new();
    let key = s.key();
    let model = &s.model;
    match client {
        Client::Codex => {
            let _ = writeln!(
                out,
                "# ~/.codex/config.toml (bitrouter attaches your stored ChatGPT sign-in)\n\
                 model = \"{model}\"\n\
                 model_provider = \"bitrouter\"\n\n\
                 [model_providers.bitrouter]\n\
                 name = \"bitrouter\"\n\
                 base_url = \"{v1}\"\n\
                 wire_api = \"responses\"",
                v1 = s.v1()
            );
            if s.needs_key {
                let _ = writeln!(
                    out,
                    "env_http_headers = {{ \"x-bitrouter-key\" = \"{KEY_VAR}\" }}"
                );
            }
            let _ = writeln!(
                out,
                "\n# or for one run, without editing the file:\n\
                 codex -c model_provider=bitrouter -c 'model_providers.bitrouter={{name=\"bitrouter\",base_url=\"{v1}\",wire_api=\"responses\"}}' -m {model}",
                v1 = s.v1()
            );
        }
        Client::Claude => {
            let _ = writeln!(
                out,
                "export ANTHROPIC_BASE_URL={origin}\n\
                 export ANTHROPIC_AUTH_TOKEN={key}\n\
                 export ANTHROPIC_MODEL={model}\n\
                 export ANTHROPIC_DEFAULT_HAIKU_MODEL={model}\n\
                 claude",
                origin = s.origin()
            );
        }
        Client::Opencode => {
            let _ = writeln!(
                out,
                "// opencode.json (project) or ~/.config/opencode/opencode.json\n\
                 {{\n  \"$schema\": \"https://opencode.ai/config.json\",\n  \"provider\": {{\n    \"bitrouter\": {{\n      \"npm\": \"@ai-sdk/openai-compatible\",\n      \"name\": \"bitrouter\",\n      \"options\": {{ \"baseURL\": \"{v1}\", \"apiKey\": \"{key_ref}\" }},\n      \"models\": {{ \"{model}\": {{ \"name\": \"{model} (bitrouter)\" }} }}\n    }}\n  }},\n  \"model\": \"bitrouter/{model}\"\n}}",
                v1 = s.v1(),
                key_ref = if s.needs_key {
                    format!("{{env:{KEY_VAR}}}")
                } else {
                    key.clone()
                },
            );
        }
        Client::Aider => {
            let _ = writeln!(
                out,
                "export OPENAI_API_BASE={v1}\n\
                 export OPENAI_API_KEY={key}\n\
                 aider --model openai/{model}",
                v1 = s.v1()
            );
        }
        Client::OpenaiPython => {
            let _ = writeln!(
                out,
                "from openai import OpenAI\n\n\
                 client = OpenAI(base_url=\"{v1}\", api_key={py_key})\n\
                 print(client.responses.create(model=\"{model}\", input=\"Hello\").output_text)\n\
                 # Chat Completions work too: client.chat.completions.create(model=..., messages=[...])",
                v1 = s.v1(),
                py_key = py_key(s),
            );
        }
        Client::OpenaiNode => {
            let _ = writeln!(
                out,
                "import OpenAI from \"openai\";\n\n\
                 const client = new OpenAI({{ baseURL: \"{v1}\", apiKey: {js_key} }});\n\
                 const r = await client.responses.create({{ model: \"{model}\", input: \"Hello\" }});\n\
                 console.log(r.output_text);",
                v1 = s.v1(),
                js_key = if s.needs_key {
                    format!("process.env.{KEY_VAR}")
                } else {
                    "\"bitrouter\"".to_owned()
                },
            );
        }
        Client::AnthropicPython => {
            let _ = writeln!(
                out,
                "from anthropic import Anthropic\n\n\
                 client = Anthropic(base_url=\"{origin}\", api_key={py_key})\n\
                 msg = client.messages.create(model=\"{model}\", max_tokens=1024, messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}])\n\
                 print(msg.content[0].text)",
                origin = s.origin(),
                py_key = py_key(s),
            );
        }
        Client::Curl => {
            let auth = if s.needs_key {
                format!(" \\\n  -H \"x-bitrouter-key: ${KEY_VAR}\"")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "curl -N {v1}/responses{auth} \\\n  -H 'content-type: application/json' \\\n  -d '{{\"model\": \"{model}\", \"input\": \"Hello\", \"stream\": true}}'",
                v1 = s.v1()
            );
        }
    }
    out
}

fn py_key(s: &Setup) -> String {
    if s.needs_key {
        format!("os.environ[\"{KEY_VAR}\"]  # import os")
    } else {
        "\"bitrouter\"".to_owned()
    }
}

/// Runs the command.
pub fn run(ctx: &Context, args: &ConnectArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let setup = Setup {
        listen: args.listen.unwrap_or(config.server.listen),
        model: args.model.clone(),
        needs_key: config.server.api_key.is_some(),
    };
    ctx.printer.data(&snippet(args.client, &setup))?;
    if setup.needs_key {
        ctx.printer.info(format!(
            "note: set {KEY_VAR} to your server.api_key in the client's environment"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(needs_key: bool) -> Setup {
        Setup {
            listen: "127.0.0.1:4356".parse().unwrap(),
            model: "gpt-6.1-sol".into(),
            needs_key,
        }
    }

    #[test]
    fn codex_snippet_uses_the_responses_wire_api() {
        let text = snippet(Client::Codex, &setup(false));
        assert!(
            text.contains("base_url = \"http://127.0.0.1:4356/v1\""),
            "{text}"
        );
        assert!(text.contains("wire_api = \"responses\""), "{text}");
        assert!(!text.contains("x-bitrouter-key"), "{text}");
    }

    #[test]
    fn key_is_referenced_never_printed() {
        for client in Client::ALL {
            let text = snippet(client, &setup(true));
            assert!(text.contains(KEY_VAR), "{client:?}: {text}");
        }
    }

    #[test]
    fn anthropic_clients_get_the_origin_without_v1() {
        let text = snippet(Client::Claude, &setup(false));
        assert!(
            text.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:4356\n"),
            "{text}"
        );
    }
}
