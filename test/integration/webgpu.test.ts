// The WebGPU execution provider, on whatever adapter this machine has. Without a GPU, CI installs
// Mesa's lavapipe (a CPU Vulkan driver) so the provider path itself is exercised: the graph must
// give the same greedy tokens as the CPU provider. Speed on lavapipe means nothing (~50x slower).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { probeWebGpu } from '../../src/runtime/providers';
import { STORIES, tempDir } from '../support/paths';
import { DecoderModel } from '../../src/engine/model/decoder';
import { argmax } from '../support/tiny-hf';

process.env.RECURSIVEMAS_CACHE = tempDir();

test('stories260K on the WebGPU provider prints the same greedy text as llama2.c', async (t) => {
  const probe = await probeWebGpu({ timeoutMs: 60_000 });
  if (!probe.available) {
    // CI installs a WebGPU-capable driver, so there a missing adapter is a failure, not a skip.
    assert.ok(!process.env.CI, `no WebGPU adapter in CI: ${probe.reason}`);
    t.skip(`no WebGPU adapter here (${probe.reason}); install mesa-vulkan-drivers >= 25 to run this`);
    return;
  }
  let out = Buffer.alloc(0);
  let err = '';
  const io: CliIo = {
    stdout: (s) => void (out = Buffer.concat([out, Buffer.from(s)])),
    stdoutBytes: (b) => void (out = Buffer.concat([out, Buffer.from(b)])),
    stderr: (s) => void (err += s),
    isTTY: false,
  };
  const steps = 40;
  const code = await main(['generate', '--model', join(STORIES, 'stories260K.bin'), '--tokenizer', join(STORIES, 'tok512.bin'),
    '--prompt', 'Once upon a time', '--steps', String(steps), '--temperature', '0', '--device', 'webgpu'], io);
  assert.equal(code, 0, err);
  assert.doesNotMatch(err, /running on the CPU instead/, 'the provider fell back to the CPU');
  const reference = readFileSync(join(STORIES, 'reference-once-upon-a-time-256.txt'));
  const text = out.subarray(0, out.length - 1);
  assert.ok(text.length > 100);
  assert.deepEqual(text, reference.subarray(0, text.length));
});

test('fp16 on a GPU provider multiplies fp16 weights in fp16, and its greedy tokens track fp32', async (t) => {
  const probe = await probeWebGpu({ timeoutMs: 60_000 });
  if (!probe.available) {
    assert.ok(!process.env.CI, `no WebGPU adapter in CI: ${probe.reason}`);
    t.skip(`no WebGPU adapter here (${probe.reason})`);
    return;
  }
  const model = join(STORIES, 'stories260K.bin');
  const cacheDirectory = tempDir();
  const fp32 = await DecoderModel.load(model, { precision: 'fp32', device: 'cpu', cacheDirectory });
  const gpu16 = await DecoderModel.load(model, { precision: 'fp16', device: 'webgpu', cacheDirectory });
  try {
    assert.equal(gpu16.device, 'webgpu');
    // The GPU graph feeds its fp16 weights to the products and casts the activations around them
    // (two Casts per matrix); the CPU graph widens each weight instead (one Cast per matrix).
    const cpu16 = await DecoderModel.load(model, { precision: 'fp16', device: 'cpu', cacheDirectory });
    await cpu16.dispose();
    assert.notEqual(gpu16.graphPath, cpu16.graphPath);
    const casts = (path: string) => readFileSync(path).toString('latin1').split('Cast').length - 1;
    assert.ok(casts(gpu16.graphPath) >= 1.8 * casts(cpu16.graphPath), `${casts(gpu16.graphPath)} vs ${casts(cpu16.graphPath)} Cast nodes`);
    const greedy = async (m: DecoderModel) => {
      const state = m.newState();
      const ids: number[] = [];
      let { logits } = await m.forward(state, m.embedding.lookup([1]), 1, 1);
      for (let i = 0; i < 24; i++) {
        const next = argmax(logits);
        ids.push(next);
        ({ logits } = await m.forward(state, m.embedding.lookup([next]), 1, 1));
      }
      return ids;
    };
    const [a, b] = [await greedy(fp32), await greedy(gpu16)];
    const same = a.findIndex((id, i) => id !== b[i]);
    console.log(`fp16 on webgpu vs fp32 on cpu: greedy ids identical for ${same < 0 ? a.length : same} of ${a.length} tokens`);
    assert.ok(same < 0 || same >= 8, `fp16 diverged at token ${same}`);
  } finally {
    await fp32.dispose();
    await gpu16.dispose();
  }
});
