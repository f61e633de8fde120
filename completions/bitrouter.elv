
use builtin;
use str;

set edit:completion:arg-completer[bitrouter] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'bitrouter'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'bitrouter'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand login 'Sign in to a provider and store the credential under a label'
            cand logout 'Remove a stored credential (and revoke it upstream, best effort)'
            cand status 'Show the stored accounts: provider, label, email, plan, expiry, source, store and quota'
            cand serve 'Run the local server that routes requests to your accounts and providers'
            cand stop 'Stop the background server (open streams finish first)'
            cand run 'Run a client (or any command) through the local server, started on demand'
            cand service 'Start the server at login: a systemd user unit (Linux) or a launchd agent (macOS)'
            cand doctor 'One paste-able report: config, accounts, server, clients found; no secrets'
            cand route 'Show how a model id resolves (provider, upstream model, accounts) and why not when it can''t'
            cand models 'List what can be routed: declared models, live catalogs and routes'
            cand connect 'Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;login'= {
            cand --label 'The account label to store the credential under'
            cand --config 'Read the configuration from this file instead of the default location'
            cand --no-browser 'Print the sign-in URL instead of opening a browser (and accept a pasted redirect URL)'
            cand --device-auth 'Sign in with a device code (for machines without a browser)'
            cand --import 'Use the Codex CLI''s existing session ($CODEX_HOME) instead of signing in again'
            cand --api-key-stdin 'Read an API key from standard input (one line) for a configured API-key provider'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;logout'= {
            cand --label 'The account label to remove [default: default]'
            cand --config 'Read the configuration from this file instead of the default location'
            cand --all 'Remove every label of the provider'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;status'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand --json 'Print one JSON document on stdout'
            cand --refresh 'Refresh tokens that are due, and ask the backend for each account''s current quota (instead of showing the last one a running `serve` saw)'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;serve'= {
            cand --listen 'Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback address needs server.api_key'
            cand --config 'Read the configuration from this file instead of the default location'
            cand --detach 'Run in the background, detached from the terminal, logging to serve.log in the state directory ($XDG_STATE_HOME/bitrouter); `bitrouter stop` stops it'
            cand --detached-child '(internal) this process is the background server `--detach` started'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;stop'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;run'= {
            cand --model 'The model id the client uses'
            cand --opus 'Claude Code''s opus tier [default: --model]'
            cand --sonnet 'Claude Code''s sonnet tier [default: --model]'
            cand --haiku 'Claude Code''s haiku tier, its small fast model (and aider''s weak model) [default: --model]'
            cand --subagent 'The model of Claude Code''s subagents [default: --model]'
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;service'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand install 'Write and enable the unit (or agent), and start the server now'
            cand uninstall 'Stop the server, disable and remove the unit (or agent)'
            cand status 'Say whether the unit (or agent) is installed, enabled and running'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;service;install'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;service;uninstall'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;service;status'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;service;help'= {
            cand install 'Write and enable the unit (or agent), and start the server now'
            cand uninstall 'Stop the server, disable and remove the unit (or agent)'
            cand status 'Say whether the unit (or agent) is installed, enabled and running'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;service;help;install'= {
        }
        &'bitrouter;service;help;uninstall'= {
        }
        &'bitrouter;service;help;status'= {
        }
        &'bitrouter;service;help;help'= {
        }
        &'bitrouter;doctor'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;route'= {
            cand --account 'Pin an account, as the `x-bitrouter-account` header does'
            cand --config 'Read the configuration from this file instead of the default location'
            cand --check 'Also send a tiny request through the chain (uses the network and a little quota)'
            cand --json 'Print one JSON document on stdout'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;models'= {
            cand --provider 'Only this provider''s models'
            cand --config 'Read the configuration from this file instead of the default location'
            cand --json 'Print one JSON document on stdout'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;connect'= {
            cand --model 'The model id the client uses'
            cand --opus 'Claude Code''s opus tier [default: --model]'
            cand --sonnet 'Claude Code''s sonnet tier [default: --model]'
            cand --haiku 'Claude Code''s haiku tier, its small fast model (and aider''s weak model) [default: --model]'
            cand --subagent 'The model of Claude Code''s subagents [default: --model]'
            cand --listen 'The address bitrouter serves on (default: server.listen from the config)'
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;completions'= {
            cand --config 'Read the configuration from this file instead of the default location'
            cand -v 'Show more detail (repeat for more: -vv)'
            cand --verbose 'Show more detail (repeat for more: -vv)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'bitrouter;help'= {
            cand login 'Sign in to a provider and store the credential under a label'
            cand logout 'Remove a stored credential (and revoke it upstream, best effort)'
            cand status 'Show the stored accounts: provider, label, email, plan, expiry, source, store and quota'
            cand serve 'Run the local server that routes requests to your accounts and providers'
            cand stop 'Stop the background server (open streams finish first)'
            cand run 'Run a client (or any command) through the local server, started on demand'
            cand service 'Start the server at login: a systemd user unit (Linux) or a launchd agent (macOS)'
            cand doctor 'One paste-able report: config, accounts, server, clients found; no secrets'
            cand route 'Show how a model id resolves (provider, upstream model, accounts) and why not when it can''t'
            cand models 'List what can be routed: declared models, live catalogs and routes'
            cand connect 'Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;help;login'= {
        }
        &'bitrouter;help;logout'= {
        }
        &'bitrouter;help;status'= {
        }
        &'bitrouter;help;serve'= {
        }
        &'bitrouter;help;stop'= {
        }
        &'bitrouter;help;run'= {
        }
        &'bitrouter;help;service'= {
            cand install 'Write and enable the unit (or agent), and start the server now'
            cand uninstall 'Stop the server, disable and remove the unit (or agent)'
            cand status 'Say whether the unit (or agent) is installed, enabled and running'
        }
        &'bitrouter;help;service;install'= {
        }
        &'bitrouter;help;service;uninstall'= {
        }
        &'bitrouter;help;service;status'= {
        }
        &'bitrouter;help;doctor'= {
        }
        &'bitrouter;help;route'= {
        }
        &'bitrouter;help;models'= {
        }
        &'bitrouter;help;connect'= {
        }
        &'bitrouter;help;completions'= {
        }
        &'bitrouter;help;help'= {
        }
    ]
    $completions[$command]
}
