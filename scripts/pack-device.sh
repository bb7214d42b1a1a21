#!/usr/bin/env bash
# Packs what the GPU checks need into .device/ (ignored; about 40 MB) for the accelerator machine the
# `device` tool lends, which has no network, no npm and no Node: a Node binary, onnxruntime-node's
# Linux x64 binding, the benchmarks and the WebGPU tests bundled into plain JavaScript, stories260K,
# and the Vulkan loader (Debian packages). Then, with the tool: carry [".device"], command
# `bash scripts/device-bench.sh` (it writes its logs to $OUT). llama.cpp is left out: node-llama-cpp's
# GPU builds (80-180 MB) do not fit the 64 MiB the tool carries.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device
rm -rf "$out"
mkdir -p "$out/js" "$out/node_modules" "$out/shared/models" "$out/gl"

# Node: the official build links only libc and libstdc++, so it runs on the device's image.
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$out/node.xz"

# onnxruntime-node and onnxruntime-common, Linux x64 binding only.
for pkg in onnxruntime-node onnxruntime-common; do
  mkdir -p "$out/node_modules/$pkg"
  (cd "node_modules/$pkg" && tar --exclude='./bin' -cf - .) | (cd "$out/node_modules/$pkg" && tar -xf -)
done
bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
mkdir -p "$out/$bin"
cp "$bin"/onnxruntime_binding.node "$out/$bin/"
xz -T0 -6 -c "$bin/libonnxruntime.so.1" > "$out/$bin/libonnxruntime.so.1.xz"

# Plain JavaScript, so neither tsx nor esbuild is needed there.
npx esbuild bench/decode.ts bench/chain.ts test/integration/webgpu.test.ts \
  --bundle --platform=node --format=esm --target=node20 --outdir="$out/js" --out-extension:.js=.mjs --log-level=warning \
  --external:onnxruntime-node --external:node-llama-cpp \
  --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"

cp -r ../shared/models/stories260K "$out/shared/models/"
# Where the bundles look for the team presets and the bench team (beside their own folders).
cp -r models "$out/models"
cp -r bench/teams "$out/js/bench/teams"

# The Vulkan loader and GL vendor libraries for WebGPU (the device's driver brings the NVIDIA ICD).
(cd "$out/gl" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) ||
  { echo "apt-get download failed: run apt-get update first" >&2; exit 1; }
du -sh "$out"
