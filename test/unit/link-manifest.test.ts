// Released link manifests in the layouts the RecursiveMAS releases use, the field-name variants we
// accept, and the shapes and file names we refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/engine/api';
import { parseAdapterConfig, parseInnerLinkConfig, parseOuterLinkConfig, type OuterLinkEntry } from '../../src/engine/links/manifest';
import { resolveInside } from '../../src/engine/safe-path';
import { tempDir } from '../support/paths';

const SRC = 'outerlink_config.json';

function throwsUser(fn: () => unknown, pattern: RegExp, code: UserError['code'] = 'model-invalid'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

// The layout the release tooling writes (format_version 1, one list of adapters).
const flat = {
  format_version: 1,
  paradigm: 'sequential',
  legacy_config_filename: 'outer_adapter_config.json',
  adapters: [
    { legacy_key: 'outer_12', filename: 'Planner-Critic-Outerlink(code).pt', source_role: 'Planner', target_role: 'Critic', adapter_type: 'outer_ln_res_adapter', in_dim: 2048, out_dim: 2048 },
    { legacy_key: 'outer_23', filename: 'Critic-Solver-Outerlink(code).pt', source_role: 'Critic', target_role: 'Solver', adapter_type: 'outer_ln_res_adapter', in_dim: 2048, out_dim: 1536 },
    { legacy_key: 'outer_31', filename: 'Solver-Planner-Outerlink(code).pt', source_role: 'Solver', target_role: 'Planner', adapter_type: 'outer_ln_res_adapter', in_dim: 1536, out_dim: 2048 },
  ],
};

const sequentialCode: OuterLinkEntry[] = [
  { key: 'outer_12', file: 'Planner-Critic-Outerlink(code).pt', type: 'outer_ln_res_adapter', inDim: 2048, outDim: 2048 },
  { key: 'outer_23', file: 'Critic-Solver-Outerlink(code).pt', type: 'outer_ln_res_adapter', inDim: 2048, outDim: 1536 },
  { key: 'outer_31', file: 'Solver-Planner-Outerlink(code).pt', type: 'outer_ln_res_adapter', inDim: 1536, outDim: 2048 },
];

function perTaskAdapters(task: string) {
  return flat.adapters.map((a) => ({ ...a, filename: a.filename.replace('(code)', `(${task})`) }));
}

test('a flat outer manifest serves any task', () => {
  assert.deepEqual(parseOuterLinkConfig(flat, 'code', SRC), sequentialCode);
  assert.deepEqual(parseOuterLinkConfig(flat, 'math', SRC), sequentialCode);
  assert.deepEqual(parseOuterLinkConfig(flat.adapters, 'code', SRC), sequentialCode);
});

test('a per-task outer manifest picks the task and names the tasks it has when one is missing', () => {
  const tasks = {
    format_version: 1,
    paradigm: 'sequential',
    variant: 'light',
    tasks: { math: { task: 'math', adapters: perTaskAdapters('math') }, code: { task: 'code', adapters: perTaskAdapters('code') } },
  };
  assert.deepEqual(parseOuterLinkConfig(tasks, 'code', SRC), sequentialCode);
  assert.equal(parseOuterLinkConfig(tasks, 'math', SRC)[1]!.file, 'Critic-Solver-Outerlink(math).pt');
  throwsUser(() => parseOuterLinkConfig(tasks, 'science', SRC), /no outer links for the task "science" \(it has: math, code\)/, 'link-mismatch');

  // Lists directly under each task, under "tasks" or at the top level.
  assert.deepEqual(parseOuterLinkConfig({ tasks: { code: perTaskAdapters('code') } }, 'code', SRC), sequentialCode);
  const topLevel = { format_version: 1, math: perTaskAdapters('math'), code: { adapters: perTaskAdapters('code') } };
  assert.deepEqual(parseOuterLinkConfig(topLevel, 'code', SRC), sequentialCode);
  throwsUser(() => parseOuterLinkConfig(topLevel, 'medicine', SRC), /\(it has: math, code\)/, 'link-mismatch');
});

test('field-name variants are accepted, and a missing type means the released outer type', () => {
  const variants = {
    outerlinks: [
      { key: 'outer_el', file: 'expert-learner.pt', type: 'outer_ln_res_adapter', input_dim: '4096', output_dim: 2560 },
      { name: 'outer_le', path: 'sub/learner-expert.pt', adapterType: 'outer_res_adapter', inDim: 2560, outDim: 4096 },
      { id: 'outer_1s', file_name: 'one-s.pt', in_features: 1536, out_features: 2048 },
    ],
  };
  assert.deepEqual(parseOuterLinkConfig(variants, 'code', SRC), [
    { key: 'outer_el', file: 'expert-learner.pt', type: 'outer_ln_res_adapter', inDim: 4096, outDim: 2560 },
    { key: 'outer_le', file: 'sub/learner-expert.pt', type: 'outer_res_adapter', inDim: 2560, outDim: 4096 },
    { key: 'outer_1s', file: 'one-s.pt', type: 'outer_ln_res_adapter', inDim: 1536, outDim: 2048 },
  ]);
  // An object keyed by legacy key.
  const keyed = { adapters: { outer_rt: { filename: 'rt.pt', in_dim: 2560, out_dim: 2560 }, outer_tr: { filename: 'tr.pt', in_dim: 2560, out_dim: 2560 } } };
  assert.deepEqual(parseOuterLinkConfig(keyed, 'code', SRC).map((e) => [e.key, e.file]), [['outer_rt', 'rt.pt'], ['outer_tr', 'tr.pt']]);
});

test('unknown shapes and broken entries are refused, naming the manifest', () => {
  throwsUser(() => parseOuterLinkConfig({ description: 'links', count: 3 }, 'code', SRC), /outerlink_config\.json: .*neither a list of links nor per-task lists \(it has "description", "count"\)/);
  throwsUser(() => parseOuterLinkConfig('outer_12', 'code', SRC), /not a JSON object or list/);
  throwsUser(() => parseOuterLinkConfig({ adapters: [] }, 'code', SRC), /lists no links/);
  throwsUser(() => parseOuterLinkConfig({ adapters: [{ legacy_key: 'outer_12', in_dim: 1, out_dim: 1 }] }, 'code', SRC), /adapters\[0\] \(outer_12\) has no file name/);
  throwsUser(() => parseOuterLinkConfig({ adapters: [{ filename: 'a.pt', in_dim: 1, out_dim: 1 }] }, 'code', SRC), /no usable legacy key/);
  throwsUser(() => parseOuterLinkConfig({ adapters: [{ legacy_key: 'outer_12', filename: 'a.pt', out_dim: 8 }] }, 'code', SRC), /has no input width/);
  for (const bad of [0, -4, 1.5, 'wide', true]) {
    throwsUser(() => parseOuterLinkConfig({ adapters: [{ legacy_key: 'outer_12', filename: 'a.pt', in_dim: bad, out_dim: 8 }] }, 'code', SRC), /not a positive width/);
  }
  const twice = { adapters: [flat.adapters[0], flat.adapters[0]] };
  throwsUser(() => parseOuterLinkConfig(twice, 'code', SRC), /lists the link outer_12 twice/);
  throwsUser(() => parseOuterLinkConfig({ adapters: ['outer_12'] }, 'code', SRC), /adapters\[0\] is "outer_12", not an object/);
});

test('file names that leave the folder are refused in every manifest', () => {
  const withFile = (filename: string) => ({ adapters: [{ legacy_key: 'outer_12', filename, in_dim: 8, out_dim: 8 }] });
  for (const evil of ['../outer.pt', 'a/../../outer.pt', '/etc/passwd', 'C:\\weights\\outer.pt', 'c:/outer.pt', 'sub\\..\\..\\x.pt', './x.pt', 'a//b.pt', 'x\u0000.pt', '']) {
    assert.throws(() => parseOuterLinkConfig(withFile(evil), 'code', SRC), UserError, evil);
    assert.throws(() => parseInnerLinkConfig({ tasks: { code: { 'adapter.pt': evil } } }, 'code', 'innerlink_config.json'), UserError, evil);
  }
  throwsUser(() => parseOuterLinkConfig(withFile('../outer.pt'), 'code', SRC), /names the file "\.\.\/outer\.pt", which leaves the model folder; it was refused/);
});

test('inner manifests map tasks to adapter files', () => {
  const released = { tasks: { math: { 'adapter.pt': 'adapter(math).pt' }, code: { 'adapter.pt': 'adapter(code).pt' } } };
  assert.equal(parseInnerLinkConfig(released, 'code', 'innerlink_config.json'), 'adapter(code).pt');
  assert.equal(parseInnerLinkConfig(released, 'math', 'innerlink_config.json'), 'adapter(math).pt');
  assert.equal(parseInnerLinkConfig({ code: 'adapter(code).pt', math: 'adapter(math).pt' }, 'code', 'x'), 'adapter(code).pt');
  assert.equal(parseInnerLinkConfig({ tasks: { code: { filename: 'inner/code.pt' } } }, 'code', 'x'), 'inner/code.pt');
  assert.equal(parseInnerLinkConfig({ tasks: { code: 'code.pt' } }, 'code', 'x'), 'code.pt');
  throwsUser(() => parseInnerLinkConfig(released, 'science', 'innerlink_config.json'), /innerlink_config\.json has no inner link for the task "science" \(it has: math, code\)/, 'link-mismatch');
  throwsUser(() => parseInnerLinkConfig({ tasks: { code: { rank: 8 } } }, 'code', 'x'), /the task "code" names no file/);
  throwsUser(() => parseInnerLinkConfig({ tasks: { code: 3 } }, 'code', 'x'), /not a file name/);
  throwsUser(() => parseInnerLinkConfig(['adapter.pt'], 'code', 'x'), /not a JSON object/);
});

test('adapter configs give the adapter type', () => {
  assert.deepEqual(parseAdapterConfig({ adapter_type: 'ln_res_adapter', hidden_size: 2048 }, 'adapter_config.json'), { type: 'ln_res_adapter' });
  assert.deepEqual(parseAdapterConfig({ type: 'res_adapter' }, 'adapter_config.json'), { type: 'res_adapter' });
  assert.deepEqual(parseAdapterConfig({}, 'adapter_config.json'), { type: 'ln_res_adapter' });
  throwsUser(() => parseAdapterConfig([], 'adapter_config.json'), /adapter_config\.json: the adapter config is not a JSON object/);
  throwsUser(() => parseAdapterConfig({ adapter_type: 5 }, 'adapter_config.json'), /adapter type 5 is not a type name/);
  throwsUser(() => parseAdapterConfig({ adapter_type: '../x' }, 'adapter_config.json'), /not a type name/);
});

test('resolveInside keeps files inside the folder, through symbolic links too', () => {
  const root = tempDir('rmas-manifest-');
  const folder = join(root, 'repo');
  mkdirSync(join(folder, 'sub'), { recursive: true });
  writeFileSync(join(folder, 'sub', 'a.pt'), 'x');
  writeFileSync(join(root, 'secret.pt'), 'x');
  assert.equal(resolveInside(folder, 'sub/a.pt'), join(folder, 'sub', 'a.pt'));
  assert.equal(resolveInside(folder, 'not-yet-downloaded.pt'), join(folder, 'not-yet-downloaded.pt'));
  for (const evil of ['../secret.pt', 'sub/../../secret.pt', join(root, 'secret.pt'), 'C:\\secret.pt', '..']) {
    assert.throws(() => resolveInside(folder, evil), UserError, evil);
  }
  symlinkSync(join(root, 'secret.pt'), join(folder, 'escape.pt'));
  symlinkSync(join(folder, 'sub', 'a.pt'), join(folder, 'alias.pt'));
  assert.throws(() => resolveInside(folder, 'escape.pt'), /is a link to .*secret\.pt, outside/);
  assert.equal(resolveInside(folder, 'alias.pt'), join(folder, 'alias.pt'));
});
