#!/usr/bin/env bash
# Installs the real clients the end-to-end tests drive into target/clients/ (nothing global):
# the Codex CLI from npm and the openai / anthropic Python SDKs in a virtualenv.
# Tests that need them fail under CI=true when they are missing, and skip (saying so) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="target/clients"
mkdir -p "$dest"

codex_version="0.169.0"
if [ ! -x "$dest/node_modules/.bin/codex" ]; then
  npm install --silent --no-audit --no-fund --prefix "$dest" "@openai/codex@${codex_version}"
fi
"$dest/node_modules/.bin/codex" --version

if [ ! -x "$dest/venv/bin/python" ]; then
  python3 -m venv "$dest/venv"
fi
"$dest/venv/bin/pip" install --quiet --disable-pip-version-check "openai>=2,<3" "anthropic>=0.70,<1"
"$dest/venv/bin/python" -c "import openai, anthropic; print('openai', openai.__version__, 'anthropic', anthropic.__version__)"
