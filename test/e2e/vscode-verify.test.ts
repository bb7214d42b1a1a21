// Checks in the loop, in a real VS Code (code-server) with the real runtime and the generated demo
// team: a configured test command is allowed once for the workspace, fails on the demo team's
// candidate, a repair round runs, and the panel shows each candidate's check results, the repair
// in the timeline and the final choice. Screenshots in Dark Modern and High Contrast Light.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { codeServerMissing, openFile, panelFrameHandle, runCommand, selectLines, type Workbench } from './support/code-server';
import { DEMO_TEAM_SETTINGS, e2eSuite } from './support/suite';

const missing = codeServerMissing();

const CALC = ['def add(a, b):', '    # return the sum of a and b', '    raise NotImplementedError', ''].join('\n');
const TEST = ['import sys', "sys.path.insert(0, 'src')", 'from calc import add', 'assert add(2, 3) == 5, "add(2, 3) should be 5"', 'print("ok")', ''].join('\n');
// code-server runs with its own HOME, where a version manager's python3 shim may not work: name the interpreter.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
const COMMAND = `${PYTHON} tests/test_calc.py`;

describe('checks on candidates in VS Code (code-server)', { skip: missing ?? false, timeout: 240_000 }, () => {
  const suite = e2eSuite('vscode', () => ({
    files: { 'src/calc.py': CALC, 'tests/test_calc.py': TEST },
    settings: {
      ...DEMO_TEAM_SETTINGS,
      'recursivemas.rounds': 1,
      'recursivemas.latentSteps': 4,
      'recursivemas.maxNewTokens': 24,
      'recursivemas.temperature': 0,
      'recursivemas.verify.command': COMMAND,
      'recursivemas.verify.maxRepairs': 1,
      'workbench.colorTheme': 'Default Dark Modern',
    },
  }));
  const { shot, shots } = suite;
  let wb: Workbench;
  let page: Page;
  before(() => {
    wb = suite.wb;
    page = suite.page;
  });

  async function solveSelection(): Promise<void> {
    await openFile(page, 'src/calc.py');
    await selectLines(page, 1, 3);
    await runCommand(page, 'Solve with RecursiveMAS');
  }
  async function waitDone(f: Frame, solve: string): Promise<void> {
    await f.waitForFunction((id) => document.body.dataset.solve !== id && ['done', 'failed'].includes(document.body.dataset.phase ?? ''), solve, { timeout: 120_000 });
    assert.equal(await f.evaluate(() => document.body.dataset.phase), 'done', (await f.locator('#error').textContent()) ?? '');
  }

  test('allowing the command once, a failed check, a repair round and the choice in the panel', shot('checks', async () => {
    await solveSelection();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    assert.match((await dialog.textContent()) ?? '', new RegExp(`Allow RecursiveMAS to run "${COMMAND.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" on candidates in this workspace\\?`));
    await dialog.locator('.monaco-button', { hasText: /^Allow$/ }).click();
    const f = await panelFrameHandle(page);
    await suite.nextSession(f);
    await waitDone(f, '');
    // The plan, each candidate with its failed check, the repair between the rounds, the choice.
    assert.equal(await f.locator('#checks .plan-list li').count(), 1);
    assert.match((await f.locator('#checks .plan-list').textContent()) ?? '', /tests\/test_calc\.py/);
    assert.equal(await f.locator('#checks .candidate').count(), 2);
    assert.equal(await f.locator('#checks .check-result[data-status="failed"]').count(), 2);
    assert.match((await f.locator('#checks .first-failure').first().textContent()) ?? '', /\S/);
    assert.equal(await f.locator('#rounds .repair').count(), 1);
    const order = await f.evaluate(() => Array.from(document.querySelectorAll('#rounds > li')).map((li) => (li.classList.contains('repair') ? 'repair' : `round ${li.getAttribute('data-round')}`)));
    assert.deepEqual(order, ['round 1', 'repair', 'round 2']);
    assert.match((await f.locator('#check-choice').textContent()) ?? '', /Answer: candidate 2\. No candidate passed every check/);
    assert.equal(readFileSync(join(wb.workspace, 'src/calc.py'), 'utf8'), CALC, "the user's file is untouched until Insert");
    await f.locator('#checks').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, 'vscode-checks-dark-modern.png') });
    await f.locator('#rounds .repair').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, 'vscode-checks-repair-dark-modern.png') });
    await f.locator('#checks').scrollIntoViewIfNeeded();
    await wb.setSettings({ 'workbench.colorTheme': 'Default High Contrast Light' });
    await page.locator('body.hc-light, .monaco-workbench.hc-light').first().waitFor({ state: 'attached', timeout: 15_000 });
    await f.waitForFunction(() => document.body.classList.contains('vscode-high-contrast-light'), undefined, { timeout: 15_000 });
    await page.screenshot({ path: join(shots, 'vscode-checks-high-contrast-light.png') });
    await f.locator('#rounds .repair').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, 'vscode-checks-repair-high-contrast-light.png') });
    await wb.setSettings({ 'workbench.colorTheme': 'Default Dark Modern' });

    // Allowed once: the next solve runs the checks without asking again.
    const first = await f.evaluate(() => document.body.dataset.solve ?? '');
    await suite.solveOn('src/calc.py', 1, 3);
    await waitDone(f, first);
    assert.equal(await dialog.count(), 0, 'no second permission dialog');
    assert.equal(await f.locator('#checks .candidate').count(), 2);
  }));
});
