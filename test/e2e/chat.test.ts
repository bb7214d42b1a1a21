// The team in VS Code's own chat view, in a real VS Code (code-server 1.139) without Copilot: the
// extension's language model (the team) is listed and picked in the chat's model picker, and
// "@recursivemas <task>" runs a solve with the demo team, streaming the rounds in plain words and
// then the code in a fenced block. A second extension (test/e2e/support/lm-consumer) gets the team
// through vscode.lm and sends it a request, as Copilot or any chat extension using the picked model would.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { codeServerMissing, runCommand, type Workbench } from './support/code-server';
import { DEMO_TEAM_SETTINGS, e2eSuite } from './support/suite';

const missing = codeServerMissing();

describe('@recursivemas in the chat view (code-server, demo team)', { skip: missing ?? false, timeout: 240_000 }, () => {
  const suite = e2eSuite('chat', () => ({
    files: { 'src/add.py': '# helpers\n' },
    extraExtensions: [join(import.meta.dirname, 'support', 'lm-consumer')],
    settings: {
      ...DEMO_TEAM_SETTINGS,
      'recursivemas.rounds': 2,
      'recursivemas.latentSteps': 8,
      'recursivemas.maxNewTokens': 40,
      'recursivemas.temperature': 0,
      // The harness turns VS Code's AI features off; the chat view needs them on.
      'chat.disableAIFeatures': false,
    },
  }));
  const { shot, shots } = suite;
  let wb: Workbench;
  let page: Page;
  before(() => {
    wb = suite.wb;
    page = suite.page;
  });

  test('the team is a model in the chat, and @recursivemas answers with the rounds and the code', shot('participant', async () => {
    await runCommand(page, 'Chat: Open Chat');
    const input = page.locator('.interactive-input-part .monaco-editor').filter({ visible: true }).first();
    await input.waitFor({ state: 'visible' });
    // Without Copilot the chat needs a model to send anything: the team's, once VS Code has listed it.
    const pickerLabel = page.locator('.chat-input-toolbars .action-label', { hasText: /RecursiveMAS|Models/ }).first();
    const until = Date.now() + 60_000;
    while (!/RecursiveMAS/.test((await pickerLabel.textContent().catch(() => '')) ?? '')) {
      if (Date.now() > until) throw new Error(`the chat's model picker never offered the team: "${await pickerLabel.textContent().catch(() => '')}"`);
      await pickerLabel.click().catch(() => {});
      const row = page.locator('.action-widget .monaco-list-row', { hasText: 'RecursiveMAS' }).filter({ visible: true }).first();
      if (await row.isVisible({ timeout: 2000 }).catch(() => false)) await row.click();
      else await page.keyboard.press('Escape');
      await new Promise((r) => setTimeout(r, 500));
    }
    await input.click();
    await page.keyboard.type('@recursivemas Write a function add(a, b) that returns the sum.');
    await page.keyboard.press('Enter');
    const response = page.locator('.interactive-item-container.interactive-response').filter({ visible: true }).last();
    await response.locator('pre, .interactive-result-code-block').first().waitFor({ state: 'visible', timeout: 180_000 });
    await page.waitForFunction(() => /tokens written/.test(Array.from(document.querySelectorAll('.interactive-response')).pop()?.textContent ?? ''), undefined, { timeout: 60_000 });
    const text = ((await response.textContent()) ?? '').replace(/\u00a0/g, ' ');
    await page.screenshot({ path: join(shots, 'chat-participant.png') });
    // VS Code folds the rounds into its steps summary above the answer: open it to show them.
    const steps = response.getByText(/Completed \d+ steps?/).first();
    if (await steps.isVisible().catch(() => false)) {
      await steps.click();
      await page.screenshot({ path: join(shots, 'chat-participant-rounds.png') });
    }
    assert.match(text, /Team demo-sequential on cpu: planner → critic → solver/);
    assert.match(text, /round 1: the planner passed 8 thought vectors to the critic, the critic passed 8 thought vectors to the solver/);
    assert.match(text, /round 2: the planner passed 8 thought vectors to the critic/);
    assert.match(text, /2 rounds, \d+ latent steps, \d+ tokens written/);
    assert.match(text, /demo team with generated weights/);
    assert.doesNotMatch(text, /Language model unavailable|norm/);
    // The solve ran in the extension's runtime process, as a panel solve does.
    assert.ok(wb.runtimePids().length >= 1, 'the runtime process is running');
  }));

  test('another extension gets the team through the language model API, and its request is solved by the team', shot('lm-api', async () => {
    const answerFile = join(wb.workspace, 'lm-answer.txt');
    writeFileSync(join(wb.workspace, 'lm-task.txt'), 'Write a function add(a, b) that returns the sum.');
    await runCommand(page, 'LM Consumer: Ask the RecursiveMAS Model');
    // VS Code asks once whether that extension may use the team's model.
    const allow = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Allow/ }).filter({ visible: true }).first();
    let consent = false;
    const until = Date.now() + 180_000;
    while (!existsSync(answerFile)) {
      if (Date.now() > until) throw new Error(`no reply from the team's language model within 180 s; on screen: ${await page.locator('.monaco-dialog-box').textContent().catch(() => 'no dialog')}`);
      if (await allow.isVisible().catch(() => false)) {
        await page.screenshot({ path: join(shots, 'chat-lm-consent.png') });
        await allow.click();
        consent = true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const answer = readFileSync(answerFile, 'utf8');
    console.log(`language model consumer (consent dialog ${consent ? 'shown and allowed' : 'not shown'}):\n${answer.slice(0, 400)}`);
    assert.match(answer, /^MODEL RecursiveMAS \(demo-sequential\) \(team\)\n/);
    assert.ok(answer.slice(answer.indexOf('\n') + 1).trim().length > 0, 'the team wrote its answer into the reply');
    assert.doesNotMatch(answer, /^ERROR/);
  }));
});
