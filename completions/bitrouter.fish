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
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "serve" -d 'Run the local server that routes requests to your accounts and providers'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c bitrouter -n "__fish_bitrouter_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l listen -d 'Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback address needs server.api_key' -r
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s h -l help -d 'Print help'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand serve" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -l config -d 'Read the configuration from this file instead of the default location' -r -F
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s v -l verbose -d 'Show more detail (repeat for more: -vv)'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s q -l quiet -d 'Print only errors'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand completions" -s V -l version -d 'Print version'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from serve completions help" -f -a "serve" -d 'Run the local server that routes requests to your accounts and providers'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from serve completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c bitrouter -n "__fish_bitrouter_using_subcommand help; and not __fish_seen_subcommand_from serve completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
