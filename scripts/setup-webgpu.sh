#!/usr/bin/env bash
# Gives a GPU-less Debian 12 machine a WebGPU adapter: Mesa 25's lavapipe (a Vulkan driver on the
# CPU) from bookworm-backports; Dawn rejects bookworm's Mesa 22. Used by CI to exercise the WebGPU
# provider path; it says nothing about GPU speed. Idempotent.
set -euo pipefail
log() { printf 'setup-webgpu: %s\n' "$*"; }
if [ "$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | cut -d. -f1)" -ge 25 ] 2>/dev/null; then
  log "Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi
if ! grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; then
  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
log "installed Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
