// The `recursivemas.*` settings (defaults, ranges, coercion, which changes restart the runtime)
// and the manifest in package.json, which must match the code that generates it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Commands, PANEL_VIEW_TYPE } from '../../src/extension/ids';
import { manifestKeys, ownedScripts } from '../../src/extension/manifest';
import { changedKeys, manifestProperties, needsRuntimeRestart, readSettings, SETTING_SPECS, teamLoadOptions, type SettingIssue } from '../../src/extension/settings';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as Record<string, any>;
const from = (values: Record<string, unknown>) => (key: string) => values[key];

describe('reading settings', () => {
  test('nothing set gives the documented defaults', () => {
    const issues: SettingIssue[] = [];
    const s = readSettings(from({}), issues);
    assert.deepEqual(issues, []);
    assert.equal(s.rounds, 3);
    assert.equal(s.latentSteps, 16);
    assert.equal(s.mode, 'latent');
    assert.equal(s.device, 'auto');
    assert.equal(s.threads, 0);
    assert.equal(s.temperature, 0.2);
    assert.equal(s.topP, 0.95);
    assert.equal(s.insertAction, 'insertAtCursor');
    assert.equal(s.huggingFaceEndpoint, 'https://huggingface.co');
    assert.equal(s.modelsDirectory, '');
    assert.equal(s.team, 'sequential-light-code');
  });

  test('numbers are clamped into range and rounded where they must be integers, with a note', () => {
    const issues: SettingIssue[] = [];
    const s = readSettings(from({ rounds: 20, latentSteps: 0, temperature: -1, topP: 3, maxNewTokens: 100.6, threads: '4' }), issues);
    assert.equal(s.rounds, 8);
    assert.equal(s.latentSteps, 1);
    assert.equal(s.temperature, 0);
    assert.equal(s.topP, 1);
    assert.equal(s.maxNewTokens, 101);
    assert.equal(s.threads, 4);
    assert.deepEqual(issues.map((i) => i.key).sort(), ['recursivemas.latentSteps', 'recursivemas.rounds', 'recursivemas.temperature', 'recursivemas.topP']);
    assert.match(issues.find((i) => i.key === 'recursivemas.rounds')!.message, /outside 1-8; using 8/);
  });

  test('values of the wrong kind fall back to the default and say so', () => {
    const issues: SettingIssue[] = [];
    const s = readSettings(from({ rounds: 'many', mode: 'telepathy', device: 'tpu', warmUpOnOpen: 'yes', team: 42, 'huggingFace.endpoint': 'http://mirror.example' }), issues);
    assert.equal(s.rounds, 3);
    assert.equal(s.mode, 'latent');
    assert.equal(s.device, 'auto');
    assert.equal(s.warmUpOnOpen, false);
    assert.equal(s.team, 'sequential-light-code');
    assert.equal(s.huggingFaceEndpoint, 'https://huggingface.co');
    assert.equal(issues.length, 6);
    assert.ok(issues.every((i) => /using/.test(i.message)));
  });

  test('valid choices are kept as they are', () => {
    const s = readSettings(from({ mode: 'text', device: 'cuda', insertAction: 'showDiff', team: ' demo-sequential ', 'huggingFace.endpoint': 'https://hf-mirror.example' }));
    assert.equal(readSettings(from({ 'huggingFace.endpoint': 'http://127.0.0.1:8080' })).huggingFaceEndpoint, 'http://127.0.0.1:8080');
    assert.equal(readSettings(from({ 'huggingFace.endpoint': 'http://localhost/hf' })).huggingFaceEndpoint, 'http://localhost/hf');
    assert.equal(readSettings(from({ 'huggingFace.endpoint': 'http://localhost.evil.example' })).huggingFaceEndpoint, 'https://huggingface.co');
    assert.equal(s.mode, 'text');
    assert.equal(s.device, 'cuda');
    assert.equal(s.insertAction, 'showDiff');
    assert.equal(s.team, 'demo-sequential');
    assert.equal(s.huggingFaceEndpoint, 'https://hf-mirror.example');
  });

  test('only device and threads changes need a new runtime process', () => {
    const a = readSettings(from({}));
    assert.equal(needsRuntimeRestart(a, readSettings(from({ device: 'cpu' }))), true);
    assert.equal(needsRuntimeRestart(a, readSettings(from({ threads: 2 }))), true);
    assert.equal(needsRuntimeRestart(a, readSettings(from({ rounds: 5, latentSteps: 32, team: 'x' }))), false);
    assert.deepEqual(changedKeys(a, readSettings(from({ rounds: 5 }))), ['rounds']);
  });

  test('precision: auto by default, a choice kept, anything else falls back; a change reloads the team, not the runtime', () => {
    assert.equal(readSettings(from({})).precision, 'auto');
    assert.equal(readSettings(from({ precision: 'int4' })).precision, 'int4');
    const issues: SettingIssue[] = [];
    assert.equal(readSettings(from({ precision: 'int8' })).precision, 'int8');
    assert.equal(readSettings(from({ precision: 'int3' }), issues).precision, 'auto');
    assert.equal(issues[0]?.key, 'recursivemas.precision');
    assert.equal(needsRuntimeRestart(readSettings(from({})), readSettings(from({ precision: 'fp32' }))), false);
    assert.deepEqual(teamLoadOptions(readSettings(from({ precision: 'fp16', device: 'webgpu', threads: 0 }))), { device: 'webgpu', precision: 'fp16', threads: undefined });
  });
});

describe('manifest', () => {
  test('package.json carries exactly what manifest.ts generates', () => {
    const keys = manifestKeys();
    for (const [k, v] of Object.entries(keys)) assert.deepEqual(pkg[k], v, `package.json "${k}" is out of date: run npx tsx src/extension/manifest.ts --write`);
    for (const [k, v] of Object.entries(ownedScripts)) assert.equal(pkg.scripts[k], v);
  });

  test('every setting has a description, defaults lie in range, numbers have bounds', () => {
    const props = manifestProperties();
    assert.equal(Object.keys(props).length, Object.keys(SETTING_SPECS).length);
    for (const [key, p] of Object.entries(props)) {
      assert.ok(typeof p.markdownDescription === 'string' && (p.markdownDescription).length > 20, `${key} is described`);
      if (p.type === 'integer' || p.type === 'number') {
        assert.ok(typeof p.minimum === 'number' && typeof p.maximum === 'number', `${key} has a range`);
        assert.ok((p.default as number) >= (p.minimum) && (p.default as number) <= (p.maximum), `${key} default in range`);
      }
      if (p.enum) assert.ok((p.enum as string[]).includes(p.default as string), `${key} default is a choice`);
    }
    assert.deepEqual([props['recursivemas.rounds']!.minimum, props['recursivemas.rounds']!.maximum, props['recursivemas.rounds']!.default], [1, 8, 3]);
    assert.deepEqual([props['recursivemas.latentSteps']!.minimum, props['recursivemas.latentSteps']!.maximum, props['recursivemas.latentSteps']!.default], [1, 128, 16]);
    assert.deepEqual(props['recursivemas.device']!.enum, ['auto', 'cuda', 'webgpu', 'cpu']);
    assert.deepEqual(props['recursivemas.mode']!.enum, ['latent', 'text', 'single']);
  });

  test('commands, menus, keybinding, activation and workspace trust are declared', () => {
    const c = pkg.contributes;
    const declared = c.commands.map((x: { command: string }) => x.command).sort();
    assert.deepEqual(declared, Object.values(Commands).sort());
    assert.equal(c.commands.find((x: { command: string }) => x.command === Commands.solve).title, 'Solve with RecursiveMAS');
    for (const t of ['Cancel', 'Select Team', 'Download Models', 'Show Logs']) {
      assert.ok(c.commands.some((x: { title: string; category?: string }) => x.title === t && x.category === 'RecursiveMAS'), `RecursiveMAS: ${t}`);
    }
    const ctx = c.menus['editor/context'].find((m: { command: string }) => m.command === Commands.solve);
    assert.match(ctx.when, /editorHasSelection/);
    assert.ok(c.keybindings.some((k: { command: string; key: string }) => k.command === Commands.solve && k.key));
    assert.ok(pkg.activationEvents.includes(`onWebviewPanel:${PANEL_VIEW_TYPE}`));
    assert.ok(pkg.activationEvents.includes(`onCommand:${Commands.solve}`));
    assert.deepEqual(pkg.extensionKind, ['workspace']);
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes('recursivemas.modelsDirectory'));
    assert.equal(pkg.main, './dist/extension.cjs');
    assert.equal(pkg.icon, 'media/icon.png');
  });
});
