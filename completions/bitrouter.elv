
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
            cand serve 'Run the local server that routes requests to your accounts and providers'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;serve'= {
            cand --listen 'Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback address needs server.api_key'
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
            cand serve 'Run the local server that routes requests to your accounts and providers'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'bitrouter;help;serve'= {
        }
        &'bitrouter;help;completions'= {
        }
        &'bitrouter;help;help'= {
        }
    ]
    $completions[$command]
}
