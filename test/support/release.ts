// Test tooling: a RecursiveMAS release on disk, laid out as the authors published it, for any
// released preset. Every repository the preset names (its real ids), each agent repo a generated
// checkpoint in the transformers-5 layout (bf16) with its inner links and manifests, and the
// Outerlinks repo with the legacy keys the preset names, at the widths of the models they join.
// Files are written the way the released resolvers read them; the engine's loader is what is tested.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readPreset, reposOf, type TeamPreset } from '../../src/engine/chain/presets';
import type { FakeFile, FakeRepo } from './fake-hub';
import { tensor, writeTorchSave } from './pt-writer';
import { writeTinyHfModel, type TinyModel, type TinyModelSpec } from './tiny-hf';

export interface ReleaseOptions {
  /** Widths written for an outer link's source side, by legacy key: a link released for other models. */
  outerInDim?: Record<string, number>;
}

export interface Release {
  preset: TeamPreset;
  /** Every repository the preset names. */
  repos: string[];
  /** The generated checkpoint of each preset model key. */
  models: Map<string, TinyModel>;
  /** Where each repository was written. */
  folderOf(repo: string): string;
}

// BioMistral-7B keeps the Mistral-7B-Instruct-v0.1 chat format, which has no system turn: a system
// message breaks its alternation check. Our generator's Mistral template folds one in instead.
const STRICT_MISTRAL_TEMPLATE = `{{- bos_token }}
{%- for message in messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif %}
{%- if message['role'] == 'user' %}
{{- '[INST] ' + message['content'] + ' [/INST]' }}
{%- elif message['role'] == 'assistant' %}
{{- message['content'] + eos_token }}
{%- endif %}
{%- endfor %}
`;

const values = (n: number, seed: number, scale: number, offset = 0) => Array.from({ length: n }, (_, i) => offset + scale * Math.sin(seed * 7.1 + i * 1.3));
const vec = (n: number, seed: number, offset = 0) => tensor('bf16', [n], values(n, seed, 0.1, offset));
const mat = (rows: number, cols: number, seed: number) => tensor('bf16', [rows, cols], values(rows * cols, seed, 1 / Math.sqrt(cols)));

/** An inner link (ln_res_adapter) as the release stores it: bf16, d -> d. */
export function writeInnerLink(path: string, d: number, seed: number): void {
  writeTorchSave(path, [
    ['pre_ln.weight', vec(d, seed, 1)], ['pre_ln.bias', vec(d, seed + 1)],
    ['proj1.weight', mat(d, d, seed + 2)], ['proj1.bias', vec(d, seed + 3)],
    ['proj2.weight', mat(d, d, seed + 4)], ['proj2.bias', vec(d, seed + 5)],
    ['post_ln.weight', vec(d, seed + 6, 1)], ['post_ln.bias', vec(d, seed + 7)],
  ]);
}

/** An outer link (outer_ln_res_adapter) as the release stores it: bf16, dIn -> dOut. */
export function writeOuterLink(path: string, dIn: number, dOut: number, seed: number): void {
  writeTorchSave(path, [
    ['ln_source.weight', vec(dIn, seed, 1)], ['ln_source.bias', vec(dIn, seed + 1)],
    ['proj1.weight', mat(2 * dOut, dIn, seed + 2)], ['proj1.bias', vec(2 * dOut, seed + 3)],
    ['proj2.weight', mat(dOut, 2 * dOut, seed + 4)], ['proj2.bias', vec(dOut, seed + 5)],
    ['residual_proj.weight', mat(dOut, dIn, seed + 6)], ['residual_proj.bias', vec(dOut, seed + 7)],
    ['ln_target.weight', vec(dOut, seed + 8, 1)], ['ln_target.bias', vec(dOut, seed + 9)],
  ]);
}

/** The tasks the sequential and distillation releases carry links for, each with its own weights. */
const RELEASED_TASKS = ['math', 'code'];

/**
 * Writes the release of `presetName` under `root`/<owner>/<name>. `specs` gives a tiny generated
 * model per preset model key, of the family the preset names; the writer puts it in the release's
 * layout (transformers 5, bf16). The Mixture release has one inner link per agent (adapter.pt, no
 * innerlink_config.json) and a flat outerlink_config.json; the others scope both by task.
 */
export async function writeRelease(root: string, presetName: string, specs: Record<string, TinyModelSpec>, options: ReleaseOptions = {}): Promise<Release> {
  const preset = await readPreset(presetName);
  const folderOf = (repo: string) => join(root, ...repo.split('/'));
  const taskScoped = preset.style !== 'mixture';
  const models = new Map<string, TinyModel>();
  const widthOfAgent = new Map<string, number>();
  let seed = 0;
  for (const [key, source] of Object.entries(preset.models)) {
    const spec = specs[key];
    if (!('repo' in source)) throw new Error(`${presetName}: the model ${key} is not a repository`);
    if (!spec) throw new Error(`${presetName}: no generated spec for the model ${key}`);
    if (source.family && spec.family !== source.family) throw new Error(`${presetName}: the model ${key} is a ${source.family}, the spec a ${spec.family}`);
    const folder = folderOf(source.repo);
    const model = await writeTinyHfModel(folder, { dtype: 'BF16', ...spec, layout: 'transformers5' });
    models.set(key, model);
    if (spec.family === 'mistral') writeFileSync(join(folder, 'chat_template.jinja'), STRICT_MISTRAL_TEMPLATE);
    const d = spec.hiddenSize;
    writeFileSync(join(folder, 'adapter_config.json'), JSON.stringify({ adapter_type: 'ln_res_adapter', hidden_dim: d }));
    const tasks = new Set(preset.agents.filter((a) => a.model === key).map((a) => ('task' in a.innerLink ? a.innerLink.task : undefined)));
    if (tasks.has(undefined)) throw new Error(`${presetName}: an agent of ${key} does not take its inner link from the release's manifest`);
    if (taskScoped) {
      const all = [...new Set([...RELEASED_TASKS, ...(tasks as Set<string>)])];
      writeFileSync(join(folder, 'innerlink_config.json'), JSON.stringify({ tasks: Object.fromEntries(all.map((t) => [t, { 'adapter.pt': `adapter(${t}).pt` }])) }));
      all.forEach((t, i) => writeInnerLink(join(folder, `adapter(${t}).pt`), d, seed + 5 * i));
    } else {
      writeInnerLink(join(folder, 'adapter.pt'), d, seed);
    }
    writeFileSync(join(folder, 'README.md'), '# model card\n');
    seed += 10;
  }
  for (const a of preset.agents) widthOfAgent.set(a.name, specs[a.model]!.hiddenSize);

  // One manifest per Outerlinks repo, gathered from the preset's pairs.
  const manifests = new Map<string, Map<string, { key: string; file: string; inDim: number; outDim: number }[]>>();
  for (const [pair, source] of Object.entries(preset.outerLinks)) {
    if (!('manifest' in source) || source.manifest !== 'outer') throw new Error(`${presetName}: the outer link ${pair} is not resolved through outerlink_config.json`);
    const [from, to] = pair.split('->') as [string, string];
    const inDim = options.outerInDim?.[source.key] ?? widthOfAgent.get(from)!;
    const outDim = widthOfAgent.get(to)!;
    const byTask = manifests.get(source.repo) ?? new Map();
    manifests.set(source.repo, byTask);
    for (const task of taskScoped ? [...new Set([...RELEASED_TASKS, source.task])] : ['']) {
      const list = byTask.get(task) ?? [];
      byTask.set(task, list);
      const file = task ? `${task}/${source.key}.pt` : `${source.key}.pt`;
      list.push({ key: source.key, file, inDim, outDim });
      mkdirSync(join(folderOf(source.repo), task), { recursive: true });
      writeOuterLink(join(folderOf(source.repo), file), inDim, outDim, 100 * (list.length + (task === 'math' ? 50 : 0)));
    }
  }
  for (const [repo, byTask] of manifests) {
    const entries = (list: { key: string; file: string; inDim: number; outDim: number }[]) => ({
      adapters: list.map((e) => ({ legacy_key: e.key, filename: e.file, adapter_type: 'outer_ln_res_adapter', in_dim: e.inDim, out_dim: e.outDim })),
    });
    const json = taskScoped ? { tasks: Object.fromEntries([...byTask].map(([task, list]) => [task, entries(list)])) } : entries(byTask.get('')!);
    writeFileSync(join(folderOf(repo), 'outerlink_config.json'), JSON.stringify(json, null, 2));
  }
  return { preset, repos: reposOf(preset), models, folderOf };
}

/** Every file under `folder`, as the hub serves it (weights through LFS, as on the real hub). */
export function hubFiles(folder: string): FakeFile[] {
  const out: FakeFile[] = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push({ path: relative(folder, path).split('\\').join('/'), content: readFileSync(path), lfs: /\.(safetensors|pt)$/.test(name) });
    }
  })(folder);
  return out;
}

/** The release's repositories for FakeHub.start. */
export function hubRepos(release: Release): Record<string, FakeRepo> {
  return Object.fromEntries(release.repos.map((repo) => [repo, { sha: 'a'.repeat(40), files: hubFiles(release.folderOf(repo)) }]));
}
