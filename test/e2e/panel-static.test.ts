// The panel's webview in headless Chromium, outside VS Code: the real page (CSP, nonce, bundle),
// driven by a solve's message sequence. Checks what a user sees and what the panel posts back,
// and saves screenshots of the running, finished and failed states in three themes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { HostMessage } from '../../src/protocol/webview';
import { artifactsDir, chromiumMissing, launchBrowser } from './support/browser';
import { ensureBuilt } from './support/build';
import { startPanelHarness, type Harness, type Theme } from './support/panel-harness';
import { SAMPLE_ANSWER, sampleEvents, sampleMessages } from './support/sample';

const missing = chromiumMissing();

describe('panel webview (static harness)', { skip: missing ?? false }, () => {
  let harness: Harness;
  let browser: BrowserContext;
  let page: Page;
  const shots = artifactsDir();

  before(async () => {
    ensureBuilt(['webview']);
    harness = await startPanelHarness();
    browser = await launchBrowser({ width: 900, height: 1100 });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(10_000);
  });
  after(async () => {
    await browser?.close();
    await harness?.close();
  });

  async function open(theme: Theme = 'dark'): Promise<void> {
    await page.goto(harness.url(theme));
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.waitForSelector('#actions', { state: 'attached' });
  }
  async function feed(msgs: HostMessage[]): Promise<void> {
    await page.evaluate((list) => {
      for (const m of list) window.postMessage(m, '*');
    }, msgs);
    // One animation frame renders everything received so far.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  }
  const posted = () => page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted);
  const violations = () => page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);

  test('a finished solve shows every round, the hand-offs, the code, metrics and the actions', async () => {
    await open('dark');
    const first = (await posted())[0];
    assert.deepEqual(first, { type: 'ready', solveId: null, lastSeq: 0 });
    const msgs = sampleMessages();
    await feed(msgs);
    assert.equal(await page.locator('.round').count(), 3);
    assert.equal(await page.locator('.round').nth(0).locator('.run').count(), 3);
    assert.equal(await page.locator('.run.done').count(), 9);
    // planner->critic, critic->solver in every round, solver->planner in rounds 1-2.
    assert.equal(await page.locator('.handoff').count(), 8);
    // Plain words in the row; the norms are the details a hover shows.
    assert.match((await page.locator('.handoff').first().textContent()) ?? '', /planner → critic · 16 thought vectors$/);
    assert.match((await page.locator('.handoff').first().getAttribute('title')) ?? '', /mean 1\.02, largest 1\.40/);
    const expectedCode = /```python\n([\s\S]*?)\n```/.exec(SAMPLE_ANSWER)![1];
    assert.equal(await page.locator('#code').textContent(), expectedCode);
    assert.ok((await page.locator('#code .tok-keyword').count()) > 3, 'keywords are highlighted');
    assert.ok((await page.locator('#code .tok-comment').count()) >= 1, 'comments are highlighted');
    for (const a of ['insertAtCursor', 'replaceSelection', 'showDiff', 'copy', 'retry']) {
      assert.equal(await page.locator(`[data-action="${a}"]`).isVisible(), true, `${a} visible`);
    }
    assert.equal(await page.locator('[data-action="cancel"]').isVisible(), false);
    assert.equal(await page.locator('[data-action="insertAtCursor"]').getAttribute('appearance'), 'primary');
    assert.equal(await page.locator('.chart-svg rect').count(), 9);
    assert.match((await page.locator('#metric-tiles').textContent()) ?? '', /Latent steps\s*128/);
    assert.match((await page.locator('#status-line').textContent()) ?? '', /^Done in/);
    assert.deepEqual(await violations(), []);
    await page.screenshot({ path: join(shots, 'panel-static-finished-dark.png'), fullPage: true });

    await page.locator('[data-action="insertAtCursor"]').click();
    await page.locator('[data-action="copy"]').focus();
    await page.keyboard.press('Enter');
    const acts = (await posted()).filter((m) => (m as { type: string }).type === 'action');
    assert.deepEqual(acts, [
      { type: 'action', action: 'insertAtCursor', id: 'solve-1' },
      { type: 'action', action: 'copy', id: 'solve-1' },
    ]);
  });

  test('light and high-contrast themes render without CSP violations', async () => {
    for (const theme of ['light', 'high-contrast'] as const) {
      await open(theme);
      await feed(sampleMessages());
      assert.equal(await page.locator('.round').count(), 3);
      assert.deepEqual(await violations(), [], theme);
      await page.screenshot({ path: join(shots, `panel-static-finished-${theme}.png`), fullPage: true });
    }
  });

  test('a running solve shows live progress and Escape or Cancel asks to cancel', async () => {
    await open('dark');
    // Cut in round 2, in the middle of the critic's latent steps.
    const at = sampleEvents().findIndex((e) => e.type === 'latent-step' && e.round === 2 && e.agent === 'critic' && e.step === 9);
    const events = sampleMessages({ cut: at + 1 });
    await feed(events);
    assert.equal(await page.locator('.round').count(), 2);
    const running = page.locator('.run.running');
    assert.equal(await running.count(), 1);
    assert.equal(await running.getAttribute('data-agent'), 'critic');
    assert.equal(await running.locator('[role="progressbar"]').getAttribute('aria-valuenow'), '9');
    assert.match((await page.locator('#status-line').textContent()) ?? '', /Round 2 of 3 · critic \(critic\) thinking in latent space · step 9 of 16/);
    assert.equal(await page.locator('[data-action="cancel"]').isVisible(), true);
    assert.equal(await page.locator('[data-action="insertAtCursor"]').isVisible(), false);
    assert.match((await page.locator('#live').textContent()) ?? '', /critic/);
    await page.screenshot({ path: join(shots, 'panel-static-running-dark.png'), fullPage: true });
    await page.keyboard.press('Escape');
    await page.locator('[data-action="cancel"]').click();
    const cancels = (await posted()).filter((m) => (m as { action?: string }).action === 'cancel');
    assert.equal(cancels.length, 2);
  });

  test('a failed solve explains what happened and offers the fixes', async () => {
    await open('dark');
    await feed(sampleMessages({ cut: 40, outcome: 'failed' }));
    assert.match((await page.locator('#error').textContent()) ?? '', /runtime process stopped unexpectedly/);
    // Retry is in the toolbar; the error box offers the other fixes.
    assert.equal(await page.locator('#error [data-action^="fix-"]').count(), 2);
    assert.equal(await page.locator('[data-action="retry"]').isVisible(), true);
    assert.equal(await page.locator('.run.stopped').count(), 1);
    await page.screenshot({ path: join(shots, 'panel-static-error-dark.png'), fullPage: true });
    await page.locator('[data-action="fix-show-logs"]').click();
    assert.deepEqual((await posted()).at(-1), { type: 'fix', fix: 'show-logs' });
  });

  test('the panel restores its state after a reload and reports what it already has', async () => {
    await open('dark');
    const msgs = sampleMessages();
    await feed(msgs);
    await page.waitForFunction(() => sessionStorage.getItem('panel-state')?.includes('"outcome":"done"'));
    await page.reload();
    await page.waitForSelector('.round');
    assert.equal(await page.locator('.round').count(), 3);
    const lastSeq = msgs.filter((m) => m.type === 'event').length;
    assert.deepEqual((await posted())[0], { type: 'ready', solveId: 'solve-1', lastSeq });
    // A replay of the same solve is ignored: no duplicated rounds or code.
    await feed(msgs);
    assert.equal(await page.locator('.round').count(), 3);
    assert.equal(await page.locator('.handoff').count(), 8);
  });

  test('malformed messages are rejected and generated code is never markup', async () => {
    await open('dark');
    await feed([{ type: 'event', id: 'x', seq: 0, event: { type: 'nope' } } as unknown as HostMessage]);
    const err = (await posted()).find((m) => (m as { type: string }).type === 'error') as { message: string } | undefined;
    assert.ok(err, 'the panel reports the rejected message');
    assert.match(err.message, /ignored a message/);
    const hostile = 'Done:\n```python\nx = "<img src=x onerror=alert(1)>"  # <script>alert(2)</script>\n```';
    await feed(sampleMessages({ id: 'solve-2', answer: hostile }));
    assert.equal(await page.locator('#code img, #code script').count(), 0);
    assert.equal(await page.locator('#code').textContent(), 'x = "<img src=x onerror=alert(1)>"  # <script>alert(2)</script>');
  });
});
