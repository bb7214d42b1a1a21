// What the chat view says during a solve (plain words per round), and the manifest entries that put
// the team in VS Code's chat and bind Accept / Discard to a live inline diff.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, RoundNarrator } from '../../src/extension/chat-words';
import { manifestKeys } from '../../src/extension/manifest';
import { CHAT_PARTICIPANT_ID, Commands, ContextKeys, LANGUAGE_MODEL_VENDOR } from '../../src/extension/ids';
import { sampleEvents } from '../e2e/support/sample';

describe('chat narration', () => {
  test('one line per round says who passed how many thought vectors to whom', () => {
    const narrator = new RoundNarrator();
    const lines = sampleEvents(2, 16).map((e) => narrator.line(e)).filter((l): l is string => l !== undefined);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^round 1: the planner passed 16 thought vectors to the critic, the critic passed 16 thought vectors to the solver, the solver passed 16 thought vectors to the planner \(\d+\.\d s\)$/);
    assert.match(lines[1]!, /^round 2: the planner passed 16 thought vectors to the critic, the critic passed 16 thought vectors to the solver \(\d+\.\d s\)$/);
    for (const l of lines) assert.doesNotMatch(l, /norm|\|\|/);
  });

  test('text messages are counted in characters, and a round without hand-offs still gets a line', () => {
    const narrator = new RoundNarrator();
    assert.equal(narrator.line({ type: 'round-start', round: 1, rounds: 1 }), undefined);
    assert.equal(narrator.line({ type: 'handoff', round: 1, from: 'planner', to: 'solver', vectors: 0, meanNorm: 0, maxNorm: 0, text: 'Use a sorted sweep.' }), undefined);
    assert.equal(narrator.line({ type: 'round-end', round: 1, ms: 1234 }), 'round 1: the planner passed a 19-character message to the solver (1.2 s)');
    assert.equal(narrator.line({ type: 'round-end', round: 2, ms: 50 }), 'round 2: the team thought it over (0.1 s)');
  });

  test('progress lines name the step in plain words', () => {
    assert.equal(progressLine({ type: 'agent-start', round: 2, agent: 'critic', role: 'critic', action: 'latent' }), 'round 2: the critic (critic) is thinking');
    assert.equal(progressLine({ type: 'agent-start', round: 3, agent: 'solver', role: 'solver', action: 'decode' }), 'round 3: the solver is writing the code');
    assert.equal(progressLine({ type: 'team-loading', team: 'demo-sequential', model: 'm', index: 0, count: 3 }), 'loading model 1 of 3');
    assert.equal(progressLine({ type: 'latent-step', round: 1, agent: 'planner', step: 1, steps: 4 }), undefined);
  });
});

describe('manifest: chat and live diff', () => {
  const keys = manifestKeys() as { contributes: Record<string, unknown>; activationEvents: string[] };
  test('the @recursivemas participant and the language model vendor are contributed', () => {
    const participants = keys.contributes.chatParticipants as { id: string; name: string; description: string }[];
    assert.deepEqual(participants.map((p) => [p.id, p.name]), [[CHAT_PARTICIPANT_ID, 'recursivemas']]);
    assert.ok(participants[0]!.description.length > 10);
    assert.deepEqual((keys.contributes.languageModelChatProviders as { vendor: string }[]).map((p) => p.vendor), [LANGUAGE_MODEL_VENDOR]);
    assert.ok(keys.activationEvents.includes(`onChatParticipant:${CHAT_PARTICIPANT_ID}`));
  });
  test('Accept and Discard keybindings also work in a file with a live inline diff', () => {
    const bindings = keys.contributes.keybindings as { command: string; when: string }[];
    for (const c of [Commands.acceptProposal, Commands.discardProposal]) {
      const b = bindings.find((k) => k.command === c)!;
      assert.ok(b.when.includes(ContextKeys.liveDiff) && b.when.includes('isInDiffEditor'), b.when);
    }
  });
});
