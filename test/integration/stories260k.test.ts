// The real trained llama2.c model: greedy output must match llama2.c's reference byte for byte,
// through the same CLI command users run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { STORIES, tempDir } from '../support/paths';

process.env.RECURSIVEMAS_CACHE = tempDir();

async function generate(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const out: Buffer[] = [];
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => void out.push(Buffer.from(t)),
    stdoutBytes: (b) => void out.push(Buffer.from(b)),
    stderr: (t) => void (stderr += t),
    isTTY: false,
  };
  const code = await main(['generate', '--model', join(STORIES, 'stories260K.bin'), '--tokenizer', join(STORIES, 'tok512.bin'), ...args], io);
  return { code, stdout: Buffer.concat(out), stderr };
}

test('greedy output is byte-identical to llama2.c for "Once upon a time", 256 steps', async () => {
  const { code, stdout } = await generate(['--prompt', 'Once upon a time', '--steps', '256', '--temperature', '0']);
  assert.equal(code, 0);
  assert.deepEqual(stdout, readFileSync(join(STORIES, 'reference-once-upon-a-time-256.txt')));
});

test('short step counts cut the output exactly where llama2.c does', async () => {
  const reference = readFileSync(join(STORIES, 'reference-once-upon-a-time-256.txt'), 'latin1');
  // 5 prompt positions (BOS + 4 tokens); steps=5 prints the prompt and one new token.
  const five = (await generate(['--prompt', 'Once upon a time', '--steps', '5', '--temperature', '0'])).stdout.toString('latin1');
  assert.ok(five.endsWith('\n'));
  assert.ok(reference.startsWith(five.slice(0, -1)), `${JSON.stringify(five)} is not a prefix of the reference`);
  assert.ok(five.length > 'Once upon a time\n'.length);
  const three = (await generate(['--prompt', 'Once upon a time', '--steps', '3', '--temperature', '0'])).stdout.toString('latin1');
  assert.ok(reference.startsWith(three.slice(0, -1)) && three.length < 'Once upon a time\n'.length, JSON.stringify(three));
});

test('a seeded sampled run is reproducible and differs from greedy', async () => {
  const args = ['--prompt', 'The dog', '--steps', '60', '--temperature', '0.9', '--top-p', '0.9', '--seed', '42'];
  const a = await generate(args);
  const b = await generate(args);
  const greedy = await generate(['--prompt', 'The dog', '--steps', '60', '--temperature', '0']);
  assert.equal(a.code, 0);
  assert.deepEqual(a.stdout, b.stdout);
  assert.notDeepEqual(a.stdout, greedy.stdout);
  assert.ok(a.stdout.toString().startsWith('The dog'));
});

test('a missing tokenizer, a wrong tokenizer and a bad flag are clear errors', async () => {
  const noTok = await main(['generate', '--model', join(STORIES, 'stories260K.bin'), '--prompt', 'x'], quietIo());
  assert.equal(noTok, 2);
  const io = quietIo();
  const wrong = await main(['generate', '--model', join(STORIES, 'stories260K.bin'), '--tokenizer', join(STORIES, 'stories260K.bin'), '--prompt', 'x'], io);
  assert.notEqual(wrong, 0);
  assert.match(io.text(), /tokenizer/i);
  const bad = await main(['generate', '--model', join(STORIES, 'stories260K.bin'), '--bogus'], quietIo());
  assert.equal(bad, 2);
});

function quietIo(): CliIo & { text(): string } {
  let err = '';
  return { stdout: () => {}, stdoutBytes: () => {}, stderr: (t) => void (err += t), isTTY: false, text: () => err };
}
