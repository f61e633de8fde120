# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_bitrouter_global_optspecs
    string join \n config= v/verbose q/quiet h/help V/version
end

function __fish_bitrouter_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_bitrouter_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_bitrouter_using_subcommand
    set -l cmd (__fish_bitrouter_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c bitrouter -n "__fish_bitrouter_needs_command" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_needs_command" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "login" -d 'Sign in to a provider and store the credential under a label'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "logout" -d 'Remove a stored credential (and revoke it upstream, best effort)'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "status" -d 'Show the stored accounts: provider, label, email, plan, expiry, source, store and quota'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "serve" -d 'Run the local server that routes requests to your accounts and providers'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "stop" -d 'Stop the background server (open streams finish first)'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "run" -d 'Run a client (or any command) through the local server, started on demand'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "service" -d 'Start the server at login: a systemd user unit (Linux) or a launchd agent (macOS)'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "doctor" -d 'One paste-able report: config, accounts, server, clients found; no secrets'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "route" -d 'Show how a model id resolves (provider, upstream model, accounts) and why not when it can\'t'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "models" -d 'List what can be routed: declared models, live catalogs and routes'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "connect" -d 'Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l label -d 'The account label to store the credential under' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l no-browser -d 'Print the sign-in URL instead of opening a browser (and accept a pasted redirect URL)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l device-auth -d 'Sign in with a device code (for machines without a browser)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l import -d 'Use the Codex CLI\'s existing session ($CODEX_HOME) instead of signing in again'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -l api-key-stdin -d 'Read an API key from standard input (one line) for a configured API-key provider'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand login" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -l label -d 'The account label to remove [default: default]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -l all -d 'Remove every label of the provider'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand logout" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -l json -d 'Print one JSON document on stdout'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -l refresh -d 'Refresh tokens that are due, and ask the backend for each account\'s current quota (instead of showing the last one a running `serve` saw)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand status" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l listen -d 'Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback address needs server.api_key' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l detach -d 'Run in the background, detached from the terminal, logging to serve.log in the state directory ($XDG_STATE_HOME/bitrouter); `bitrouter stop` stops it'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l detached-child -d '(internal) this process is the background server `--detach` started'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand stop" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand stop" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand stop" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand stop" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand stop" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l model -d 'The model id the client uses' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l opus -d 'Claude Code\'s opus tier [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l sonnet -d 'Claude Code\'s sonnet tier [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l haiku -d 'Claude Code\'s haiku tier, its small fast model (and aider\'s weak model) [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l subagent -d 'The model of Claude Code\'s subagents [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand run" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "install" -d 'Write and enable the unit (or agent), and start the server now'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "uninstall" -d 'Stop the server, disable and remove the unit (or agent)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "status" -d 'Say whether the unit (or agent) is installed, enabled and running'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from install" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from status" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write and enable the unit (or agent), and start the server now'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Stop the server, disable and remove the unit (or agent)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "status" -d 'Say whether the unit (or agent) is installed, enabled and running'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand doctor" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand doctor" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand doctor" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -l account -d 'Pin an account, as the `x-bitrouter-account` header does' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -l check -d 'Also send a tiny request through the chain (uses the network and a little quota)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -l json -d 'Print one JSON document on stdout'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand route" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -l provider -d 'Only this provider\'s models' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -l json -d 'Print one JSON document on stdout'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand models" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l model -d 'The model id the client uses' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l opus -d 'Claude Code\'s opus tier [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l sonnet -d 'Claude Code\'s sonnet tier [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l haiku -d 'Claude Code\'s haiku tier, its small fast model (and aider\'s weak model) [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l subagent -d 'The model of Claude Code\'s subagents [default: --model]' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l listen -d 'The address bitrouter serves on (default: server.listen from the config)' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand connect" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "login" -d 'Sign in to a provider and store the credential under a label'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "logout" -d 'Remove a stored credential (and revoke it upstream, best effort)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "status" -d 'Show the stored accounts: provider, label, email, plan, expiry, source, store and quota'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "serve" -d 'Run the local server that routes requests to your accounts and providers'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "stop" -d 'Stop the background server (open streams finish first)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "run" -d 'Run a client (or any command) through the local server, started on demand'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "service" -d 'Start the server at login: a systemd user unit (Linux) or a launchd agent (macOS)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "doctor" -d 'One paste-able report: config, accounts, server, clients found; no secrets'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "route" -d 'Show how a model id resolves (provider, upstream model, accounts) and why not when it can\'t'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "models" -d 'List what can be routed: declared models, live catalogs and routes'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "connect" -d 'Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from login logout status serve stop run service doctor route models connect completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "install" -d 'Write and enable the unit (or agent), and start the server now'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "uninstall" -d 'Stop the server, disable and remove the unit (or agent)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "status" -d 'Say whether the unit (or agent) is installed, enabled and running'
