// The RecursiveMAS chain on generated teams: every style in latent, text and single modes, the
// KV-cached rollout against full recomputation, token-exact slot splicing, cancellation, and the
// errors a user can meet with presets and links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CancelledError, UserError, type Mode, type SolveEvent } from '../../src/engine/api';
import { loadTeam } from '../../src/engine/index';
import { readPreset } from '../../src/engine/chain/presets';
import { buildRoleMessages, slotMarker, type Role } from '../../src/engine/chain/prompts';
import { latentRollout } from '../../src/engine/chain/rollout';
import { splicePrompt } from '../../src/engine/chain/splice';
import { RecursiveLink } from '../../src/engine/links/link';
import { DecoderModel } from '../../src/engine/model/decoder';
import { ensureSyntheticModel } from '../../src/engine/model/synthetic';
import { HfTokenizer } from '../../src/engine/tokenizer/hf';
import { REPO, tempDir } from '../support/paths';

const modelsDirectory = tempDir();
const cacheDirectory = tempDir();
const load = (name: string) => loadTeam(name, { device: 'cpu', modelsDirectory, cacheDirectory });
const request = (mode: Mode, rounds: number) => ({
  task: 'Write a function named add that adds two numbers', language: 'python', mode, rounds, latentSteps: 3, maxNewTokens: 8, temperature: 0, topP: 1,
});

const expectedAgentsPerRound: Record<string, (round: number, rounds: number) => number> = {
  // planner, critic, and the solver (latent in non-final rounds, decoding in the last)
  'demo-sequential': () => 3,
  // two experts, then the summarizer
  'demo-mixture': () => 3,
  'demo-distillation': () => 2,
};

for (const team of ['demo-sequential', 'demo-mixture', 'demo-distillation']) {
  test(`${team}: latent, text and single runs have the expected rounds, agents and events`, async () => {
    const t = await load(team);
    try {
      for (const mode of ['latent', 'text', 'single'] as Mode[]) {
        const events: SolveEvent[] = [];
        const rounds = 2;
        const result = await t.solve(request(mode, rounds), (e) => events.push(e));
        const of = <K extends SolveEvent['type']>(type: K) => events.filter((e): e is Extract<SolveEvent, { type: K }> => e.type === type);
        const expectedRounds = mode === 'single' ? 1 : rounds;
        assert.equal(result.rounds, expectedRounds);
        assert.equal(of('round-start').length, expectedRounds, `${mode} round-start`);
        assert.equal(of('round-end').length, expectedRounds);
        const starts = of('agent-start');
        if (mode === 'single') {
          assert.equal(starts.length, 1);
          assert.equal(starts[0]!.action, 'decode');
          assert.equal(of('handoff').length, 0);
        } else {
          for (let r = 1; r <= rounds; r++) assert.equal(starts.filter((s) => s.round === r).length, expectedAgentsPerRound[team]!(r, rounds), `${mode} round ${r}`);
          assert.equal(starts.filter((s) => s.action === 'decode').length, 1, 'only the final agent decodes');
          assert.equal(starts.at(-1)!.action, 'decode');
          const thinking = starts.filter((s) => s.action !== 'decode');
          assert.ok(thinking.every((s) => s.action === (mode === 'latent' ? 'latent' : 'text')));
          const handoffs = of('handoff');
          assert.equal(handoffs.length, thinking.length + (team === 'demo-mixture' ? 1 : 0) * (rounds - 1));
          if (mode === 'latent') {
            assert.ok(handoffs.every((h) => h.vectors === 3 && h.meanNorm > 0 && h.maxNorm >= h.meanNorm));
            assert.equal(of('latent-step').length, thinking.length * 3);
            assert.equal(result.metrics.latentSteps, thinking.length * 3);
          } else {
            assert.ok(handoffs.every((h) => h.vectors === 0 && typeof h.text === 'string'));
            assert.ok(result.metrics.textTokens > 8);
          }
        }
        assert.equal(of('answer').length, 1);
        assert.equal(of('metrics').length, 1);
        assert.equal(events[0]!.type, 'solve-start');
        assert.equal(events.at(-1)!.type, 'metrics');
        const streamed = of('token').map((e) => e.text).join('');
        assert.ok(result.answer.length > 0);
        assert.ok(streamed.length > 0);
        assert.equal(result.device, 'cpu');
        assert.ok(result.metrics.stages.length >= starts.length);
      }
    } finally {
      await t.dispose();
    }
  });
}

test('agents on the same checkpoint share one loaded model; training-free links load', async () => {
  const t = await load('demo-training-free');
  try {
    const events: SolveEvent[] = [];
    const result = await t.solve(request('latent', 1), (e) => events.push(e));
    assert.equal(result.rounds, 1);
    const handoffs = events.filter((e) => e.type === 'handoff');
    assert.equal(handoffs.length, 2);
  } finally {
    await t.dispose();
  }
});

test('the KV-cached latent rollout equals recomputing the whole sequence at every step', async () => {
  const preset = await readPreset('demo-sequential');
  const source = preset.models['tiny-llama']!;
  assert.ok('generated' in source);
  const folder = await ensureSyntheticModel(source.generated, join(modelsDirectory, 'rollout-check'));
  const model = await DecoderModel.load(folder, { cacheDirectory });
  const d = model.config.hiddenSize;
  const r = new Float32Array(d * d).map((_, i) => Math.sin(i * 0.7) * 0.2);
  const t = (shape: number[], f: (i: number) => number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)) });
  const inner = await RecursiveLink.fromTensors('inner', new Map([
    ['pre_ln.weight', t([d], () => 1)], ['pre_ln.bias', t([d], () => 0)],
    ['proj1.weight', { shape: [d, d], data: r }], ['proj1.bias', t([d], () => 0.01)],
    ['proj2.weight', { shape: [d, d], data: r }], ['proj2.bias', t([d], () => 0)],
    ['post_ln.weight', t([d], () => 0.5)], ['post_ln.bias', t([d], () => 0)],
  ]), { source: 'test', dIn: d, dOut: d, from: 'm', to: 'm' }, 'cpu');
  const prompt = model.embedding.lookup([5, 17, 99, 300, 42]);
  const m = 5;
  const cached = await latentRollout(model, inner, prompt, 5, m);
  // Without a cache: at step i, run [prompt ; inner(h_1) .. inner(h_{i-1})] from scratch.
  const fed: Float32Array[] = [];
  for (let i = 0; i < m; i++) {
    const seq = new Float32Array((5 + fed.length) * d);
    seq.set(prompt);
    fed.forEach((v, j) => seq.set(v, (5 + j) * d));
    const { hidden } = await model.forward(model.newState(), seq, 5 + fed.length, 0);
    const h = hidden.slice(hidden.length - d);
    let worst = 0;
    for (let k = 0; k < d; k++) worst = Math.max(worst, Math.abs(h[k]! - cached[i * d + k]!));
    assert.ok(worst < 1e-4, `step ${i + 1}: max diff ${worst}`);
    fed.push(await inner.apply(h, 1));
  }
  await inner.dispose();
  await model.dispose();
});

test('slot splicing is token-exact against rendering the whole prompt with the slot text in place', async () => {
  const preset = await readPreset('demo-mixture');
  for (const [key, source] of Object.entries(preset.models)) {
    assert.ok('generated' in source);
    const folder = await ensureSyntheticModel(source.generated, join(modelsDirectory, `splice-${key}`));
    const tok = await HfTokenizer.load(folder);
    const model = await DecoderModel.load(folder, { cacheDirectory });
    for (const role of ['planner', 'critic', 'solver', 'expert', 'summarizer', 'learner'] as Role[]) {
      if (!preset.prompts.roles[role]) continue;
      for (const senders of [['planner'], ['first expert', 'second expert']]) {
        const rendered = tok.renderChat(buildRoleMessages(preset.prompts, { role, task: 'Sort a list of numbers.\nReturn it.', language: 'python', senders, domain: 'testing' }));
        // Slot text ending in a word: byte-level pre-tokenizers glue trailing punctuation to the
        // newlines after it, so no split point can be exact for such text.
        const slotText = 'Step 1: compare two numbers, step 2: swap them';
        const whole = tok.encode(senders.reduce((text, _, i) => text.split(slotMarker(i)).join(slotText), rendered));
        const slotIds = tok.encode(slotText);
        const vectors = model.embedding.lookup(slotIds);
        const spliced = splicePrompt(rendered, senders.map(() => ({ vectors, count: slotIds.length })), tok, model.embedding, role);
        const joined = spliced.textParts.flatMap((part, i) => (i < senders.length ? [...part, ...slotIds] : part));
        assert.deepEqual(joined, whole, `${key} ${role} with ${senders.length} slot(s)`);
        assert.deepEqual(spliced.embeds, model.embedding.lookup(whole));
      }
    }
    await model.dispose();
  }
});

test('cancelling mid-round stops within a model step and the team solves again afterwards', async () => {
  const t = await load('demo-sequential');
  try {
    const controller = new AbortController();
    const seen: SolveEvent[] = [];
    const started = performance.now();
    await assert.rejects(
      t.solve({ ...request('latent', 3), latentSteps: 50 }, (e) => {
        seen.push(e);
        if (e.type === 'latent-step' && e.agent === 'critic' && e.step === 2) controller.abort();
      }, controller.signal),
      (e: unknown) => e instanceof CancelledError,
    );
    const after = seen.slice(seen.findIndex((e) => e.type === 'latent-step' && e.agent === 'critic' && e.step === 2) + 1);
    assert.ok(after.length <= 1, `events after cancel: ${JSON.stringify(after)}`);
    assert.ok(!seen.some((e) => e.type === 'round-end'));
    assert.ok(performance.now() - started < 20_000);
    const again = await t.solve(request('latent', 1), () => {});
    assert.equal(again.rounds, 1);
  } finally {
    await t.dispose();
  }
});

function writePreset(mutate: (p: Record<string, any>) => void): string {
  const p = JSON.parse(readFileSync(join(REPO, 'models', 'demo-distillation.json'), 'utf8')) as Record<string, any>;
  mutate(p);
  const file = join(tempDir(), `${p.name}.json`);
  writeFileSync(file, JSON.stringify(p));
  return file;
}

test('clear errors: unknown preset, unknown model, missing link, link of the wrong width, template without the slot', async () => {
  await assert.rejects(load('no-such-team'), (e: unknown) => e instanceof UserError && /no team preset named "no-such-team"/.test(e.message) && /demo-sequential/.test(e.message));
  await assert.rejects(load(writePreset((p) => (p.agents[0].model = 'gpt-9'))), /uses the model "gpt-9", which "models" does not define/);
  await assert.rejects(load(writePreset((p) => delete p.outerLinks['expert->learner'])), /no outer link for expert->learner/);
  // A safetensors link trained for other widths, in the sending model's folder.
  const distill = await readPreset('demo-distillation');
  const expertSource = distill.models['tiny-llama']!;
  assert.ok('generated' in expertSource);
  const expertFolder = await ensureSyntheticModel(expertSource.generated, join(modelsDirectory, 'wrong-link'));
  const { writeSafetensors } = await import('../../src/engine/model/synthetic/safetensors-writer');
  const names = ['ln_source.weight', 'ln_source.bias', 'proj1.weight', 'proj1.bias', 'proj2.weight', 'proj2.bias', 'residual_proj.weight', 'residual_proj.bias', 'ln_target.weight', 'ln_target.bias'];
  const shapes = [[128], [128], [64, 128], [64], [32, 64], [32], [32, 128], [32], [32], [32]];
  writeSafetensors(join(expertFolder, 'outer.safetensors'), names.map((name, i) => ({ name, dtype: 'F32' as const, shape: shapes[i]!, data: new Float32Array(shapes[i]!.reduce((a, b) => a * b, 1)) })));
  await assert.rejects(
    load(writePreset((p) => {
      p.models['tiny-llama'] = { path: expertFolder };
      p.outerLinks['expert->learner'] = { file: 'outer.safetensors' };
    })),
    (e: unknown) => e instanceof UserError && e.code === 'link-mismatch' && /outer\.safetensors/.test(e.message) && /hidden 96/.test(e.message),
  );
  await assert.rejects(load(writePreset((p) => (p.outerLinks['expert->learner'] = { file: '../../etc/passwd' }))), /leaves the model folder/);
  await assert.rejects(load(writePreset((p) => (p.models['tiny-llama'] = { repo: '../escape' }))), /not a Hugging Face repository id/);
  const tokDir = tempDir();
  await assert.rejects(
    load(writePreset((p) => {
      p.models['tiny-llama'] = { path: tokDir };
    })),
    (e: unknown) => e instanceof UserError && e.code === 'model-missing',
  );
  // A chat template that drops the user message leaves the incoming thoughts nowhere to go.
  const preset = await readPreset('demo-distillation');
  const source = preset.models['tiny-qwen2']!;
  assert.ok('generated' in source);
  const folder = await ensureSyntheticModel(source.generated, join(modelsDirectory, 'no-slot'));
  const configPath = join(folder, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.chat_template = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}";
  writeFileSync(configPath, JSON.stringify(config));
  const t = await load(writePreset((p) => (p.models['tiny-qwen2'] = { path: folder })));
  try {
    await assert.rejects(t.solve(request('latent', 1), () => {}), /no slot marker/);
  } finally {
    await t.dispose();
  }
});

test('a team that will not fit in memory is refused before loading, with the numbers', async () => {
  await assert.rejects(
    loadTeam('demo-sequential', { device: 'cpu', modelsDirectory, cacheDirectory, availableMemoryBytes: 50 * 1024 * 1024 }),
    (e: unknown) =>
      e instanceof UserError && e.code === 'out-of-memory' && /needs about [\d.]+ MiB of memory but 50\.0 MiB is available/.test(e.message) && /tiny-llama [\d.]+ MiB/.test(e.message),
  );
});
