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
