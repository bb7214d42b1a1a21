// What a user sees when things go wrong, from the built CLI as a real process: one line on stderr,
// the documented exit code, no stack unless --debug; a closed stdout ends the command quietly.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { debugRequested, errorLine } from '../../src/cli/errors';
import { CLI, ensureCliBuilt, runCli } from '../support/cli';
import { tempDir } from '../support/paths';
import { writeTinyHfModel } from '../support/tiny-hf';

const HOME = tempDir('rmas-cli-errors-');
const env = { ...process.env, RECURSIVEMAS_CACHE: join(HOME, 'cache'), RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_DEBUG: '' };
let model: string;

/** One line, `error: ...`, no stack frames, nothing on stdout. */
function assertOneLineError(run: { code: number | null; stdout: string; stderr: string }, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  assert.match(run.stderr, /^error: [^\n]+\n$/, `not one line:\n${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\bat .*:\d+:\d+|internal error/);
}

function withConfig(patch: (config: Record<string, unknown>) => void): string {
  const dir = join(HOME, `m${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
    try {
      writeFileSync(join(dir, f), readFileSync(join(model, f)));
    } catch {
      // not every family writes every file
    }
  }
  const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
  patch(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

before(async () => {
  ensureCliBuilt();
  model = (await writeTinyHfModel(join(HOME, 'tiny'), { family: 'llama', hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: 300, seed: 5 })).dir;
});

test('a config whose head dimension is odd, or fractional, is refused in one line before building', async () => {
  const odd = await runCli(['generate', '--model', withConfig((c) => (c.head_dim = 7)), '--prompt', 'hi', '--max-new-tokens', '2'], { env });
  assertOneLineError(odd, 1, /head_dim 7\) is odd; RoPE needs an even number of dimensions/);
  const heads = await runCli(['generate', '--model', withConfig((c) => (c.num_attention_heads = 3)), '--prompt', 'hi'], { env });
  assert.equal(heads.code, 1, heads.stderr);
  assert.match(heads.stderr, /^error: [^\n]+\n$/);
  const huge = await runCli(['generate', '--model', withConfig((c) => (c.vocab_size = 2 ** 40)), '--prompt', 'hi'], { env });
  assertOneLineError(huge, 1, /vocabSize is 1099511627776, more than/);
  const rope = await runCli(['generate', '--model', withConfig((c) => (c.rope_scaling = 'linear')), '--prompt', 'hi'], { env });
  assertOneLineError(rope, 1, /"rope_scaling" must be an object/);
});

test('inspect of a folder or of a missing file: one line, usage / not-found exit codes', async () => {
  assertOneLineError(await runCli(['inspect', HOME], { env }), 2, /is a folder, not a file/);
  assertOneLineError(await runCli(['inspect', join(HOME, 'nope.pt')], { env }), 3, /Cannot open .*nope\.pt: there is no such file/);
});

test('a closed stdout ends the command quietly: models list | head -1, inspect --json | head -1 of 300,000 tensors', () => {
  // Enough models that the listing overflows the pipe after head has gone.
  const models = join(HOME, 'many');
  for (let i = 0; i < 1500; i++) mkdirSync(join(models, `owner${i}`, 'model'), { recursive: true });
  const list = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" models list --models-dir "${models}" | head -1`], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(list.status, 0, list.stderr);
  assert.equal(list.stdout, `models in ${models}:\n`);
  assert.equal(list.stderr, '');

  const header: Record<string, unknown> = {};
  for (let i = 0; i < 300_000; i++) header[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const file = join(HOME, 'many.safetensors');
  writeFileSync(file, Buffer.concat([prefix, json, Buffer.alloc(300_000, 2)]));
  const inspect = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" inspect "${file}" --json | head -1`], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.deepEqual(JSON.parse(inspect.stdout), { name: 't0', dtype: 'u8', shape: [1], sum: 2 });
  assert.equal(inspect.stderr, '');
});

test('a stack only with --debug or RECURSIVEMAS_DEBUG; a user error is one line with its action', () => {
  const internal = new TypeError("Cannot read properties of undefined (reading 'x')");
  assert.equal(errorLine(internal, false), "error: Cannot read properties of undefined (reading 'x') (an internal error: run again with --debug for details, and report it)");
  assert.match(errorLine(internal, true), /^error: TypeError: Cannot read properties[^\n]*\n\s+at /);
  assert.equal(errorLine(new UserError('The model is missing.\nIt was removed.', 'model-missing', 'Pull it again.'), true), 'error: The model is missing. It was removed. Pull it again.');
  assert.equal(debugRequested(['inspect', 'x', '--debug'], {}), true);
  assert.equal(debugRequested(['inspect', 'x'], { RECURSIVEMAS_DEBUG: '1' }), true);
  assert.equal(debugRequested(['inspect', 'x'], { RECURSIVEMAS_DEBUG: '0' }), false);
  assert.equal(debugRequested(['inspect', 'x'], {}), false);
});
