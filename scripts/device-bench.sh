#!/usr/bin/env bash
# Runs on the accelerator machine (see scripts/pack-device.sh): the WebGPU parity tests, then
# bench:decode on WebGPU at fp16 and int4 and, for comparison in the same run, int4 on its CPU
# (bench:chain on WebGPU with CHAIN=1). CUDA is probed and reported; onnxruntime-node's CUDA provider (about 300 MB) cannot be
# carried there. Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
dev=$PWD/.device
out=${OUT:-/tmp/device-out}
mkdir -p "$out" /tmp/rmas-node
: > "$out/summary.txt"
xz -dc "$dev/node.xz" > /tmp/rmas-node/node && chmod +x /tmp/rmas-node/node
lib=$dev/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$lib/libonnxruntime.so.1" ] || xz -dk "$lib/libonnxruntime.so.1.xz"
# LOCAL_DRY_RUN=1 tries the script on this machine with its own Vulkan (and tiny settings).
if [ "${LOCAL_DRY_RUN:-0}" != 1 ]; then
  for f in "$dev"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "$(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null)" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export PATH=/tmp/rmas-node:$PATH RECURSIVEMAS_SHARED=$dev/shared RECURSIVEMAS_LLAMA_GPU=none CI=
{ nvidia-smi; node --version; ldconfig -p | grep -E 'libvulkan|libcudart|libcublas|libcudnn'; } > "$out/machine.txt" 2>&1

step() { # name, timeout, command...
  local name=$1 limit=$2; shift 2
  echo "== $name" >> "$out/summary.txt"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "exit $?" >> "$out/summary.txt"
  tail -3 "$out/$name.log" >> "$out/summary.txt"
}
# Sized for the tool's 10-minute command and 15-minute session (the first steps matter most); each
# setting can be overridden, e.g. CHAIN=1 adds an R = 3 team solve on WebGPU (slow to generate).
models=${MODELS:-qwen2.5}
contexts=${CONTEXTS:-128,1024}
tokens=${NEW_TOKENS:-32}
repeats=${REPEATS:-2}
threads=$(nproc)
step webgpu-tests 150 node --test --test-reporter=spec "$dev/js/test/integration/webgpu.test.mjs"
step decode-webgpu 300 env DEVICE=webgpu PRECISIONS=fp16,int4 MODELS="$models" CONTEXTS="$contexts" NEW_TOKENS="$tokens" REPEATS="$repeats" THREADS="$threads" node "$dev/js/bench/decode.mjs"
step decode-cpu 90 env DEVICE=cpu PRECISIONS=int4 MODELS="$models" CONTEXTS="$contexts" NEW_TOKENS="$tokens" REPEATS="$repeats" THREADS="$threads" node "$dev/js/bench/decode.mjs"
if [ "${CHAIN:-0}" = 1 ]; then
  step chain-webgpu 300 env DEVICE=webgpu PRECISION=fp16 ROUNDS=3 PAPER_ROW=0 REUSE_REPEATS=0 THREADS="$threads" node "$dev/js/bench/chain.mjs"
fi
cat "$out/summary.txt"
