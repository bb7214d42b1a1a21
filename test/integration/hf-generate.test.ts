// `recursivemas generate` on a Hugging Face folder, chat templates, and tokenizer checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { TokenTextStream } from '../../src/engine/tokenizer/types';
import { tempDir } from '../support/paths';
import { writeTinyHfModel } from '../support/tiny-hf';

process.env.RECURSIVEMAS_CACHE = tempDir();
const base = { hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 400, seed: 9 };

function capture(): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stdoutBytes: (b) => void (out += Buffer.from(b).toString('utf8')),
    stderr: (t) => void (err += t),
    isTTY: false,
    out: () => out,
    err: () => err,
  };
}

test('generate on a Hugging Face folder prints the prompt, the continuation and a newline; greedy is deterministic', async () => {
  const tiny = await writeTinyHfModel(join(tempDir(), 'm'), { ...base, family: 'qwen2' });
  const args = ['generate', '--model', tiny.dir, '--prompt', 'def add(a, b):', '--max-new-tokens', '20', '--temperature', '0'];
  const a = capture();
  assert.equal(await main(args, a), 0, a.err());
  const b = capture();
  assert.equal(await main(args, b), 0);
  assert.equal(a.out(), b.out());
  assert.ok(a.out().startsWith('def add(a, b):'));
  assert.ok(a.out().endsWith('\n'));
  assert.ok(a.out().length > 'def add(a, b):\n'.length);
  assert.match(a.err(), /tok\/s/);
  for (const precision of ['fp16', 'int4']) {
    const c = capture();
    assert.equal(await main([...args, '--precision', precision], c), 0, c.err());
    assert.ok(c.out().startsWith('def add(a, b):'));
  }
});

test('a tokenizer that does not fit the model is refused, naming both sizes', async () => {
  const small = await writeTinyHfModel(join(tempDir(), 'small'), { ...base, family: 'llama', vocabSize: 300 });
  const big = await writeTinyHfModel(join(tempDir(), 'big'), { ...base, family: 'llama', vocabSize: 500 });
  writeFileSync(join(small.dir, 'tokenizer.json'), readFileSync(join(big.dir, 'tokenizer.json')));
  const io = capture();
  assert.notEqual(await main(['generate', '--model', small.dir, '--prompt', 'hello', '--max-new-tokens', '3'], io), 0);
  assert.match(io.err(), /tokenizer has 500 tokens but the model's vocabulary is 300/);
});

test('chat templates render with a generation prompt and thinking disabled (Qwen3)', async () => {
  const tiny = await writeTinyHfModel(join(tempDir(), 'q3'), { ...base, family: 'qwen3' });
  const tok = await HfTokenizer.load(tiny.dir);
  const text = tok.renderChat([
    { role: 'system', content: 'You plan.' },
    { role: 'user', content: 'Add two numbers.' },
  ]);
  assert.match(text, /<\|im_start\|>system\nYou plan\.<\|im_end\|>/);
  assert.match(text, /<\|im_start\|>user\nAdd two numbers\.<\|im_end\|>/);
  assert.ok(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), JSON.stringify(text.slice(-60)));
  const ids = tok.encode(text);
  assert.ok(ids.includes(tok.eosIds[0]!) || tok.eosIds.length > 0);
  const llama = await writeTinyHfModel(join(tempDir(), 'l3'), { ...base, family: 'llama' });
  const lt = await HfTokenizer.load(llama.dir);
  const rendered = lt.renderChat([{ role: 'user', content: 'hi' }]);
  assert.ok(rendered.startsWith('<|begin_of_text|>'));
  assert.ok(rendered.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'));
  assert.equal(lt.encode(rendered)[0], lt.bosId);
});

test('a text stream can leave special tokens out: messages and answers carry no chat markup', async () => {
  const tiny = await writeTinyHfModel(join(tempDir(), 'special'), { ...base, family: 'qwen2' });
  const tok = await HfTokenizer.load(tiny.dir);
  const marker = tok.encode('<|im_start|>');
  assert.equal(marker.length, 1, '<|im_start|> is one special token');
  const ids = [...tok.encode('x = 1'), ...marker, ...tok.encode('\ny = 2')];
  const streamed = (skip: boolean) => {
    const s = new TokenTextStream(tok, skip);
    return ids.map((id) => s.push(id)).join('') + s.flush();
  };
  assert.equal(streamed(false), 'x = 1<|im_start|>\ny = 2');
  assert.equal(streamed(true), 'x = 1\ny = 2');
});
