// The panel's code in VS Code's four default themes, in a real VS Code (code-server): the panel
// gets the theme's own colour variables and VS Code's default webview stylesheet, so this is where
// line bands and unreadable tokens show up. Each theme: every token's colour against the code
// background (contrast ratio), no background behind code or tokens, and a screenshot to look at.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { artifactsDir } from './support/browser';
import { ensureBuilt } from './support/build';
import { sampleMessages } from './support/sample';
import { codeServerMissing, EXTENSION_ID, openWorkbench, panelFrameHandle, runCommand, type Workbench } from './support/code-server';

const missing = codeServerMissing();

const THEMES = [
  { name: 'Default Dark Modern', slug: 'dark-modern', kind: 'vscode-dark' },
  { name: 'Default Light Modern', slug: 'light-modern', kind: 'vscode-light' },
  { name: 'Default High Contrast', slug: 'high-contrast-dark', kind: 'vscode-high-contrast' },
  { name: 'Default High Contrast Light', slug: 'high-contrast-light', kind: 'vscode-high-contrast-light' },
];

/** What the page measures: per token kind, its colour and contrast against the code block. */
interface Measured {
  background: string;
  codeBackground: string;
  bandedSpans: number;
  tokens: { kind: string; color: string; contrast: number; sample: string }[];
}

/** Runs in the panel: the code block's background, and each token kind's colour and contrast ratio against it (WCAG formula). */
const MEASURE = `(() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const opaque = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const [r, g, b, a = 1] = parse(getComputedStyle(e).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const lum = ([r, g, b]) => {
    const ch = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
  };
  const pre = document.querySelector('#code');
  const code = pre.querySelector('code');
  const bg = opaque(pre);
  const over = (c) => {
    const [r, g, b, a = 1] = parse(c);
    return [r * a + bg[0] * (1 - a), g * a + bg[1] * (1 - a), b * a + bg[2] * (1 - a)];
  };
  const ratio = (c) => {
    const [l1, l2] = [lum(over(c)), lum(bg)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  };
  const plain = getComputedStyle(code).color;
  const tokens = [{ kind: 'plain', color: plain, contrast: ratio(plain), sample: 'merged' }];
  const seen = new Set();
  let banded = 0;
  for (const span of Array.from(code.querySelectorAll('span'))) {
    const [, , , a = 1] = parse(getComputedStyle(span).backgroundColor);
    if (a > 0 && getComputedStyle(span).backgroundColor !== 'transparent') banded++;
    const kind = span.className.replace('tok-', '');
    if (seen.has(kind)) continue;
    seen.add(kind);
    const color = getComputedStyle(span).color;
    tokens.push({ kind, color, contrast: ratio(color), sample: span.textContent || '' });
  }
  return { background: 'rgb(' + bg.join(', ') + ')', codeBackground: getComputedStyle(code).backgroundColor, bandedSpans: banded, tokens };
})()`;

describe('the panel in the four default themes (code-server)', { skip: missing ?? false, timeout: 200_000 }, () => {
  let wb: Workbench;
  let page: Page;
  let f: Frame;
  const shots = artifactsDir();

  before(async () => {
    ensureBuilt(['extension', 'webview']);
    wb = await openWorkbench({ files: { 'a.py': 'print(1)\n' }, settings: { 'recursivemas.team': 'demo-sequential', 'workbench.colorTheme': 'Default Dark Modern' }, width: 1300, height: 1000 });
    page = wb.page;
    await runCommand(page, 'RecursiveMAS: Show Panel');
    f = await panelFrameHandle(page);
    await f.waitForSelector('#actions', { state: 'attached' });
    // A finished solve with real Python in it (the demo team's generated weights write noise):
    // the messages go through the panel's own message handler and validation.
    await f.evaluate((msgs) => {
      for (const m of msgs) window.postMessage(m, '*');
    }, sampleMessages({ id: `themes-${Date.now()}` }));
    await f.waitForFunction(() => document.body.dataset.phase === 'done' && (document.querySelector('#code')?.textContent ?? '').includes('def merge_intervals'));
  });
  after(async () => {
    await wb?.close();
  });

  async function measure(): Promise<Measured> {
    // A string, not a function: the test runner's transpiler would add helpers the page lacks.
    return f.evaluate<Measured>(MEASURE);
  }

  for (const theme of THEMES) {
    test(`${theme.name}: every token is readable and no line has a band`, async () => {
      await wb.setSettings({ 'workbench.colorTheme': theme.name });
      await f.waitForFunction((kind) => document.body.classList.contains(kind), theme.kind, { timeout: 20_000 });
      // Colour variables arrive with the theme class; give the page one frame to restyle.
      await f.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const m = await measure();
      console.log(`${theme.name}: code background ${m.background}; ${m.tokens.map((t) => `${t.kind} ${t.color} ${t.contrast.toFixed(1)}:1`).join(', ')}`);
      const outer = await page.locator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]`).first().boundingBox();
      assert.ok(outer, 'the panel is on screen');
      await f.locator('#code').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(shots, `theme-${theme.slug}.png`), clip: outer });
      assert.ok(/rgba\(0, 0, 0, 0\)|transparent/.test(m.codeBackground), `the code element draws no background of its own (${m.codeBackground})`);
      assert.equal(m.bandedSpans, 0, 'no token has a background');
      const kinds = new Set(m.tokens.map((t) => t.kind));
      for (const k of ['plain', 'keyword', 'string', 'number', 'comment', 'function']) assert.ok(kinds.has(k), `the sample has ${k} tokens (${[...kinds].join(', ')})`);
      for (const t of m.tokens) {
        // WCAG AA for text: 4.5:1; comments are secondary text and may be quieter, but stay above 3:1.
        const floor = t.kind === 'comment' ? 3 : 4.5;
        assert.ok(t.contrast >= floor, `${theme.name}: ${t.kind} tokens ("${t.sample}", ${t.color}) have contrast ${t.contrast.toFixed(2)}:1 on ${m.background}, below ${floor}:1`);
      }
    });
  }
});
