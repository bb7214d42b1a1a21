// The set-up the VS Code e2e files share: the bundles built, one code-server for the whole file on
// a fresh workspace (the demo team on one CPU thread unless the file says otherwise), closed after
// the file; a screenshot of every failing test; and the few steps of driving a solve in the panel.
import { after, before } from 'node:test';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { artifactsDir } from './browser';
import { ensureBuilt } from './build';
import { describeWorkbench, openFile, openWorkbench, panelFrameHandle, runCommand, selectLines, type Workbench, type WorkbenchOptions } from './code-server';

/** The offline demo team on one inference thread, which leaves the other core of a 2-core machine to VS Code and the browser. */
export const DEMO_TEAM_SETTINGS: Record<string, unknown> = { 'recursivemas.team': 'demo-sequential', 'recursivemas.device': 'cpu', 'recursivemas.threads': 1 };

export interface E2eSuite {
  /** The workbench of this file (set once `before` has run). */
  readonly wb: Workbench;
  readonly page: Page;
  /** The screenshot folder. */
  readonly shots: string;
  /** Wraps a test body: when it fails, the workbench is saved as `<prefix>-failed-<slug>.png`, then `afterFailure` runs. */
  shot: (slug: string, body: () => Promise<void>) => () => Promise<void>;
  /** Waits until the panel's phase is one of `wanted`, and returns it. */
  waitPhase: (f: Frame, wanted: string[], timeout?: number) => Promise<string>;
  /** Waits until the panel shows a solve it has not shown before, and returns its id. */
  nextSession: (f: Frame, timeout?: number) => Promise<string>;
  /** Opens `file`, selects lines [from, to] (1-based), runs "Solve with RecursiveMAS" and waits for the new solve in the panel. */
  solveOn: (file: string, from: number, to: number) => Promise<Frame>;
}

/**
 * Registers the file's `before` and `after` (call it inside `describe`). `options` is read in
 * `before`, so it may use what an earlier `before` prepared (a local hub's address).
 */
export function e2eSuite(prefix: string, options: () => WorkbenchOptions, hooks: { afterFailure?: (page: Page) => Promise<void> } = {}): E2eSuite {
  let wb: Workbench | undefined;
  const shots = artifactsDir();
  const known = new Set<string>(['']);
  const need = (): Workbench => {
    if (!wb) throw new Error('the workbench is not open (its `before` failed or has not run)');
    return wb;
  };

  before(async () => {
    ensureBuilt(['extension', 'runtime', 'webview']);
    wb = await openWorkbench(options());
  });
  after(async () => {
    if (!wb) return;
    if (process.env.RECURSIVEMAS_E2E_VERBOSE) console.log(wb.log());
    await wb.close();
  });

  const suite: E2eSuite = {
    get wb() {
      return need();
    },
    get page() {
      return need().page;
    },
    shots,
    shot:
      (slug, body) =>
      async () => {
        try {
          await body();
        } catch (e) {
          if (wb) {
            await wb.page.screenshot({ path: join(shots, `${prefix}-failed-${slug}.png`) }).catch(() => {});
            await hooks.afterFailure?.(wb.page).catch(() => {});
          }
          throw e;
        }
      },
    waitPhase: async (f, wanted, timeout = 120_000) => {
      await f.waitForFunction((w) => w.includes(document.body.dataset.phase ?? ''), wanted, { timeout });
      return f.evaluate(() => document.body.dataset.phase ?? '');
    },
    nextSession: async (f, timeout = 30_000) => {
      const handle = await f
        .waitForFunction((old) => {
          const id = document.body.dataset.solve ?? '';
          return old.includes(id) ? false : id;
        }, [...known], { timeout })
        .catch(async (e: Error) => {
          const shown = await f.evaluate(() => `phase ${document.body.dataset.phase}, solve ${document.body.dataset.solve}`).catch(() => 'panel unreadable');
          throw new Error(`no new solve in the panel within ${timeout} ms (${shown}); on screen: ${await describeWorkbench(need().page)}`, { cause: e });
        });
      const id = (await handle.jsonValue()) as string;
      known.add(id);
      return id;
    },
    solveOn: async (file, from, to) => {
      const page = need().page;
      const askedForTask = page.locator('.quick-input-widget .quick-input-title', { hasText: 'Solve with RecursiveMAS' }).filter({ visible: true });
      const started = async () => {
        const f = await panelFrameHandle(page);
        await suite.nextSession(f);
        return f;
      };
      await openFile(page, file);
      await selectLines(page, from, to);
      await runCommand(page, 'Solve with RecursiveMAS');
      try {
        return await started();
      } catch (e) {
        if ((await askedForTask.count()) === 0) throw e;
        // The command asked for a task: the selection did not reach it. Say what it saw (its prompt
        // tells an editor without a selection from no editor at all), then select again and start
        // with the editor's key binding, which leaves the keyboard in the editor.
        const prompt = await page.locator('.quick-input-widget .quick-input-message').filter({ visible: true }).first().textContent({ timeout: 1000 }).catch(() => '');
        console.log(`solveOn: the palette command asked for a task ("${prompt}"); selecting again and pressing Ctrl+Alt+M`);
        await page.keyboard.press('Escape');
        await askedForTask.first().waitFor({ state: 'hidden', timeout: 5000 });
        await openFile(page, file);
        await selectLines(page, from, to);
        await page.keyboard.press('Control+Alt+M');
        return started();
      }
    },
  };
  return suite;
}
