// The live inline diff in a real VS Code (code-server) with the real runtime and the demo team:
// with Show diff as the highlighted action the answer streams into the file while the solver
// writes; each hunk is accepted or discarded from its CodeLens; accepting leaves one undo step back
// to the original; Discard all (its keybinding) gives the user's text back exactly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { diffLines, resolvedLines } from '../../src/extension/hunks';
import { planReplaceSelection } from '../../src/extension/insertion';
import { artifactsDir } from './support/browser';
import { ensureBuilt } from './support/build';
import { codeServerMissing, goTo, openFile, openWorkbench, panelFrameHandle, runCommand, selectLines, type Workbench } from './support/code-server';

const missing = codeServerMissing();

const SOURCE = ['# Area helpers.', '', 'def area(w, h):', '    # the area of a w x h rectangle', '    pass', '', '', 'print(area(2, 3))', ''].join('\n');
const LINES = SOURCE.split('\n');
const FOUR_SPACES = { insertSpaces: true, tabSize: 4 };
/** Show diff highlighted: the answer streams into the file by itself. */
const STREAM = { 'recursivemas.insertAction': 'showDiff', 'recursivemas.mode': 'latent', 'recursivemas.rounds': 1, 'recursivemas.latentSteps': 4, 'recursivemas.maxNewTokens': 2000, 'recursivemas.temperature': 0 };

describe('the live inline diff (code-server, demo team)', { skip: missing ?? false, timeout: 300_000 }, () => {
  let wb: Workbench;
  let page: Page;
  const shots = artifactsDir();
  const shot =
    (slug: string, body: () => Promise<void>) =>
    async () => {
      try {
        await body();
      } catch (e) {
        await page?.screenshot({ path: join(shots, `live-diff-failed-${slug}.png`) }).catch(() => {});
        throw e;
      }
    };

  before(async () => {
    ensureBuilt(['extension', 'runtime', 'webview']);
    wb = await openWorkbench({
      files: { 'src/accept.py': SOURCE, 'src/discard.py': SOURCE },
      settings: { 'recursivemas.team': 'demo-sequential', 'recursivemas.device': 'cpu', 'recursivemas.threads': 1, 'editor.codeLens': true, ...STREAM },
    });
    page = wb.page;
  });
  after(async () => {
    if (wb) {
      if (process.env.RECURSIVEMAS_E2E_VERBOSE) console.log(wb.log());
      await wb.close();
    }
  });

  const known = new Set<string>(['']);
  async function nextSession(f: Frame): Promise<string> {
    const handle = await f.waitForFunction((old) => {
      const id = document.body.dataset.solve ?? '';
      return old.includes(id) ? false : id;
    }, [...known], { timeout: 30_000 });
    const id = (await handle.jsonValue()) as string;
    known.add(id);
    return id;
  }
  const phase = (f: Frame) => f.evaluate(() => document.body.dataset.phase ?? '');
  async function waitPhase(f: Frame, wanted: string[], timeout = 120_000): Promise<string> {
    await f.waitForFunction((w) => w.includes(document.body.dataset.phase ?? ''), wanted, { timeout });
    return phase(f);
  }
  async function solveOn(file: string): Promise<Frame> {
    await openFile(page, file);
    await selectLines(page, 3, 5);
    await runCommand(page, 'Solve with RecursiveMAS');
    const f = await panelFrameHandle(page);
    await nextSession(f);
    return f;
  }
  const lens = (title: string) => page.locator('.editor-group-container.active .codelens-decoration a', { hasText: new RegExp(`^${title}$`) }).filter({ visible: true });
  /** Saves the active file and reads it from disk. */
  async function saved(file: string): Promise<string> {
    await runCommand(page, 'File: Save');
    const path = join(wb.workspace, file);
    const until = Date.now() + 10_000;
    // The save is done once the tab is no longer marked dirty.
    while (Date.now() < until && (await page.locator('.editor-group-container.active .tab.active.dirty').count()) > 0) await new Promise((r) => setTimeout(r, 100));
    return readFileSync(path, 'utf8');
  }
  /** What the file holds with `code` in place of lines 3-5, each hunk decided as `decisions` says (first hunk first). */
  function expectedText(code: string, decide: (hunk: number) => 'accepted' | 'discarded'): { text: string; hunks: number } {
    const start = LINES.slice(0, 2).join('\n').length + 1;
    const end = start + LINES.slice(2, 5).join('\n').length;
    const replacement = planReplaceSelection(code, LINES[2]!, 0, LINES.slice(2, 5).join('\n'), FOUR_SPACES, '\n');
    const hunks = diffLines(LINES.slice(2, 5), replacement.split('\n'));
    const region = resolvedLines(LINES.slice(2, 5), replacement.split('\n'), hunks, hunks.map((_, i) => decide(i)), 'accepted');
    return { text: SOURCE.slice(0, start) + region.join('\n') + SOURCE.slice(end), hunks: hunks.length };
  }

  test('the answer streams in as it is written; the first hunk accepted from its CodeLens, any others discarded; one undo gives the original back', shot('accept', async () => {
    await openFile(page, 'src/accept.py');
    // Every text the editor shows from here on, and whether the review CodeLenses were up then.
    await page.evaluate(`(() => {
      const group = document.querySelector('.editor-group-container.active');
      const read = () => Array.from(group.querySelectorAll('.view-lines .view-line')).map((l) => ({ top: parseFloat(l.style.top || '0'), text: (l.textContent || '').replace(/\\u00a0/g, ' ') })).sort((a, b) => a.top - b.top).map((l) => l.text).join('\\n');
      window.__liveStates = [];
      let last = read();
      new MutationObserver(() => {
        const text = read();
        if (text === last) return;
        last = text;
        const reviewing = Array.from(group.querySelectorAll('.codelens-decoration a')).some((a) => a.textContent === 'Accept all');
        window.__liveStates.push({ text, reviewing });
      }).observe(group, { subtree: true, childList: true, characterData: true });
    })()`);
    const f = await solveOn('src/accept.py');
    assert.equal(await waitPhase(f, ['done', 'failed']), 'done', (await f.locator('#error').textContent()) ?? '');
    await lens('Accept all').first().waitFor({ state: 'visible' });
    const states = await page.evaluate<{ text: string; reviewing: boolean }[]>('window.__liveStates');
    const streamed = new Set(states.filter((x) => !x.reviewing && x.text !== SOURCE).map((x) => x.text));
    console.log(`the editor showed ${streamed.size} versions of the file while the answer streamed, ${states.length} in all`);
    assert.ok(streamed.size >= 3, `the answer came in pieces before the review (${streamed.size} versions)`);
    const code = (await f.locator('#code').textContent()) ?? '';
    const perHunk = await lens('Accept').count();
    await page.screenshot({ path: join(shots, 'live-diff-review.png') });
    // First hunk accepted, every other one discarded.
    const want = expectedText(code, (h) => (h === 0 ? 'accepted' : 'discarded'));
    assert.equal(perHunk, want.hunks, 'one Accept per hunk');
    await lens('Accept').first().click();
    for (let h = 1; h < want.hunks; h++) {
      await page.waitForFunction((n) => document.querySelectorAll('.editor-group-container.active .codelens-decoration a').length > 0 && Array.from(document.querySelectorAll('.editor-group-container.active .codelens-decoration a')).filter((a) => a.textContent === 'Accept').length === n, want.hunks - h);
      await lens('Discard').first().click();
    }
    await f.waitForFunction(() => /Accepted 1 of \d+ changes? in src\/accept\.py/.test(document.querySelector('#notice')?.textContent ?? ''));
    await lens('Accept all').first().waitFor({ state: 'hidden' });
    assert.equal(await saved('src/accept.py'), want.text);
    // One undo: the original text (the save through the palette gave the keyboard back to the editor).
    await page.keyboard.press('Control+Z');
    assert.equal(await saved('src/accept.py'), SOURCE);
  }));

  test('Discard all (its keybinding) gives the text back exactly', shot('discard', async () => {
    const f = await solveOn('src/discard.py');
    assert.equal(await waitPhase(f, ['done', 'failed']), 'done');
    await lens('Discard all').first().waitFor({ state: 'visible' });
    await goTo(page, 1);
    await page.keyboard.press('Control+Alt+Backspace');
    await f.waitForFunction(() => /Discarded the proposal; src\/discard\.py is as it was/.test(document.querySelector('#notice')?.textContent ?? ''));
    await lens('Discard all').first().waitFor({ state: 'hidden' });
    assert.equal(await saved('src/discard.py'), SOURCE);
  }));
});
