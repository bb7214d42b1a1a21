// The solve flow: capture the task, open the panel, ask the runtime, stream its events to the
// panel, the status bar and the progress notification, and carry out the panel's actions.
import * as vscode from 'vscode';
import type { SolveEvent, SolveResult } from '../protocol/events';
import type { Fix, Outcome, PanelAction, WebviewMessage } from '../protocol/webview';
import { editorFor, insertAtCursor, insertionAt, replacementFor, replaceSelection, type ProposalProvider, type SolveTarget } from './editor';
import { isCancel, panelErrorOf } from './errors';
import { Commands, ContextKeys, EXTENSION_ID } from './ids';
import { EventCoalescer } from './coalesce';
import { codeOfAnswer, linesLabel } from './insertion';
import type { PanelHost } from './panel';
import type { RuntimeHost } from './runtime-host';
import { currentSettings, updateSetting } from './config';
import { SECTION, type Settings } from './settings';
import type { StatusBar, SolveProgress } from './status';
import { normalizeTask, solveLanguage, surroundingContext } from './task';
import { listTeams } from './teams';

/** Everything about one solve that the actions need, also after a window reload. */
export interface SolveRecord {
  id: string;
  task: string;
  language: string;
  context?: string;
  target?: SolveTarget;
  fileName?: string;
  code?: string;
  outcome?: Outcome;
}

const RECORDS_KEY = 'recursivemas.solves';
const KEEP_RECORDS = 5;

interface Running {
  record: SolveRecord;
  seq: number;
  progress: SolveProgress;
  report?: (message: string, increment?: number) => void;
}

export class SolveController implements vscode.Disposable {
  private running?: Running;
  private readonly records = new Map<string, SolveRecord>();
  private counter = 0;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly runtime: RuntimeHost,
    private readonly panel: PanelHost,
    private readonly status: StatusBar,
    private readonly proposals: ProposalProvider,
    private readonly log: vscode.LogOutputChannel,
  ) {
    for (const r of context.workspaceState.get<SolveRecord[]>(RECORDS_KEY, [])) this.records.set(r.id, r);
    this.disposables.push(
      panel.onMessage((m) => void this.onPanelMessage(m)),
      runtime.onDidChangeState((s) => {
        this.status.setRuntime(s);
        this.panel.post({ type: 'runtime', state: s.state, detail: s.detail });
      }),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChange(e)),
    );
    const s = currentSettings();
    this.status.setTeam(s.team, s.device);
    this.status.setPlan(s.rounds, s.latentSteps, s.mode);
  }

  get isSolving(): boolean {
    return this.running !== undefined;
  }

  // --- starting a solve ---------------------------------------------------------------------

  /** The "Solve with RecursiveMAS" command. */
  async solveCommand(): Promise<void> {
    if (!this.checkTrusted('solve tasks')) return;
    const editor = vscode.window.activeTextEditor;
    const settings = currentSettings(this.log);
    let raw: string | undefined;
    let target: SolveTarget | undefined;
    let context: string | undefined;
    if (editor) {
      const doc = editor.document;
      const sel = editor.selection;
      const selectedText = doc.getText(sel);
      target = {
        uri: doc.uri.toString(),
        languageId: doc.languageId,
        selectionStart: doc.offsetAt(sel.start),
        selectionEnd: doc.offsetAt(sel.end),
        selectedText,
        cursor: doc.offsetAt(sel.active),
      };
      if (selectedText.trim()) raw = selectedText;
      const lines = doc.getText().split(/\r\n|\r|\n/);
      const ctx = surroundingContext(lines, sel.start.line, sel.end.line, settings.contextLines);
      context = ctx.text || undefined;
    }
    if (raw === undefined) {
      raw = await vscode.window.showInputBox({
        title: 'Solve with RecursiveMAS',
        prompt: editor ? `Describe the ${solveLanguage(editor.document.languageId)} code to write (or select code or a comment first)` : 'Describe the code to write',
        placeHolder: 'e.g. a function that merges overlapping intervals',
        ignoreFocusOut: true,
      });
      if (raw === undefined) return;
    }
    const task = normalizeTask(raw);
    if (!task) {
      void vscode.window.showInformationMessage('RecursiveMAS needs a task: select code or a comment, or type a description.');
      return;
    }
    if (task.cut) this.log.warn(`the task was cut to ${task.task.length} characters`);
    const record: SolveRecord = {
      id: this.newId(),
      task: task.task,
      language: solveLanguage(editor?.document.languageId),
      context,
      target,
      fileName: editor ? vscode.workspace.asRelativePath(editor.document.uri) : undefined,
    };
    await this.start(record);
  }

  private newId(): string {
    return `s${Date.now().toString(36)}${(++this.counter).toString(36)}`;
  }

  private checkTrusted(what: string): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window
      .showWarningMessage(
        `RecursiveMAS does not ${what} in an untrusted workspace: that loads model files and runs native inference code, and this workspace's settings could point it at files you did not choose. Trust the workspace to use it.`,
        'Manage Workspace Trust',
      )
      .then((a) => a && vscode.commands.executeCommand('workbench.trust.manage'));
    return false;
  }

  private async start(record: SolveRecord): Promise<void> {
    if (this.running) {
      const answer = await vscode.window.showWarningMessage('A RecursiveMAS solve is running. Cancel it and start the new one?', { modal: true }, 'Cancel and start');
      if (answer !== 'Cancel and start') return;
      await this.cancel(this.running.record.id);
    }
    const settings = currentSettings(this.log);
    const team = (await listTeams(vscode.Uri.joinPath(this.context.extensionUri, 'models').fsPath)).find((t) => t.name === settings.team);
    this.remember(record);
    const running: Running = { record, seq: 0, progress: { round: 0, rounds: settings.rounds } };
    this.running = running;
    void vscode.commands.executeCommand('setContext', ContextKeys.solving, true);
    this.status.setTeam(settings.team, settings.device);
    this.status.setSolving(true, running.progress);
    this.panel.show(true);
    this.panel.post({
      type: 'session',
      session: {
        id: record.id,
        task: record.task,
        language: record.language,
        team: settings.team,
        device: settings.device,
        mode: settings.mode,
        rounds: settings.rounds,
        latentSteps: settings.latentSteps,
        fileName: record.fileName,
        ...(team?.demo ? { teamNote: `${team.name} is a demo team with generated random weights: it runs the whole engine but writes no useful code. Pick a real team with "RecursiveMAS: Select Team".` } : {}),
        hasSelection: !!record.target?.selectedText.trim(),
        defaultAction: settings.insertAction,
        startedAt: Date.now(),
      },
    });
    this.log.info(`solve ${record.id}: team ${settings.team}, ${settings.mode}, ${settings.rounds} rounds × ${settings.latentSteps} steps, device ${settings.device}, ${record.language}, task ${record.task.length} chars${record.context ? `, context ${record.context.length} chars` : ''}`);

    let outcome: Outcome = 'failed';
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'RecursiveMAS', cancellable: true },
      async (progress, token) => {
        running.report = (message, increment) => progress.report({ message, increment });
        token.onCancellationRequested(() => void this.cancel(record.id));
        progress.report({ message: 'starting…' });
        try {
          const result = await this.runSolve(record, settings, running);
          record.code = codeOfAnswer({ text: result.answer, code: result.code });
          outcome = 'done';
          this.panel.post({ type: 'end', id: record.id, outcome });
          this.log.info(`solve ${record.id} done in ${Math.round(result.metrics.wallMs)} ms on ${result.device}: ${result.metrics.latentSteps} latent steps, ${result.metrics.textTokens} text tokens`);
        } catch (e) {
          if (isCancel(e)) {
            outcome = 'cancelled';
            this.panel.post({ type: 'end', id: record.id, outcome });
            this.log.info(`solve ${record.id} cancelled`);
          } else {
            outcome = 'failed';
            const error = panelErrorOf(e, settings.device);
            this.panel.post({ type: 'end', id: record.id, outcome, error });
            this.log.error(`solve ${record.id} failed: ${(e as Error)?.message ?? e}`);
          }
        }
      },
    );
    record.outcome = outcome;
    this.remember(record);
    if (this.running === running) this.running = undefined;
    void vscode.commands.executeCommand('setContext', ContextKeys.solving, this.running !== undefined);
    this.status.setSolving(this.running !== undefined, this.running?.progress ?? null);
  }

  private async runSolve(record: SolveRecord, settings: Settings, running: Running): Promise<SolveResult> {
    const supervisor = await this.runtime.ensure(settings);
    const coalescer = new EventCoalescer((event) => {
      running.seq += 1;
      this.panel.post({ type: 'event', id: record.id, seq: running.seq, event });
      this.track(running, event);
    });
    const forward = (event: SolveEvent) => coalescer.push(event);
    // A team loaded by an earlier solve emits no loading events; ask for its description so the
    // panel can show the agents and the device (instant when it is already loaded).
    try {
      const ping = await supervisor.ping();
      if (ping.team === settings.team) {
        const loaded = await supervisor.loadTeam({ team: settings.team, device: settings.device, threads: settings.threads || undefined });
        forward({ type: 'team-loaded', team: loaded.team, agents: loaded.agents, device: loaded.device, ms: loaded.ms });
      }
    } catch (e) {
      this.log.debug(`team description unavailable before the solve: ${(e as Error).message}`);
    }
    try {
      return await supervisor.solve(
        {
          id: record.id,
          task: record.task,
          language: record.language,
          context: record.context,
          team: settings.team,
          mode: settings.mode,
          rounds: settings.rounds,
          latentSteps: settings.latentSteps,
          maxNewTokens: settings.maxNewTokens,
          temperature: settings.temperature,
          topP: settings.topP,
          device: settings.device,
          threads: settings.threads || undefined,
        },
        forward,
      );
    } finally {
      coalescer.flush();
    }
  }

  /** Progress for the status bar and the notification, from the event stream. */
  private track(running: Running, event: SolveEvent): void {
    const p = running.progress;
    let message: string | undefined;
    let increment: number | undefined;
    switch (event.type) {
      case 'team-loading':
        message = `loading model ${event.index + 1} of ${event.count}`;
        break;
      case 'team-loaded':
        this.status.setTeam(event.team, event.device);
        message = `team loaded on ${event.device}`;
        break;
      case 'solve-start':
        p.rounds = event.rounds;
        break;
      case 'round-start':
        p.round = event.round;
        p.rounds = event.rounds;
        p.agent = undefined;
        p.decoding = false;
        increment = 100 / Math.max(1, event.rounds + 1);
        message = `round ${event.round} of ${event.rounds}`;
        break;
      case 'agent-start':
        p.agent = event.agent;
        p.decoding = event.action === 'decode';
        message = event.action === 'decode' ? `round ${p.round} of ${p.rounds}: ${event.agent} is writing the code` : `round ${p.round} of ${p.rounds}: ${event.agent} (${event.role}) is thinking`;
        break;
      case 'answer':
        increment = 100 / Math.max(1, p.rounds + 1);
        message = 'done';
        break;
      default:
        return;
    }
    this.status.setSolving(true, p);
    if (message) running.report?.(message, increment);
  }

  // --- cancel and retry -----------------------------------------------------------------------

  async cancel(id?: string): Promise<void> {
    const target = id ?? this.running?.record.id;
    if (!target || this.running?.record.id !== target) return;
    this.log.info(`cancelling solve ${target}`);
    const supervisor = this.runtime.current;
    const ok = await supervisor?.cancel(target).catch((e: Error) => {
      this.log.warn(`cancel failed: ${e.message}`);
      return false;
    });
    if (!ok) this.log.warn(`solve ${target} was not running in the runtime any more`);
  }

  async retry(id?: string): Promise<void> {
    if (!this.checkTrusted('solve tasks')) return;
    const old = id ? this.records.get(id) : [...this.records.values()].at(-1);
    if (!old) {
      void vscode.window.showInformationMessage('There is no earlier RecursiveMAS task to retry. Run "Solve with RecursiveMAS" first.');
      return;
    }
    // After repeated crashes the supervisor stops restarting; a user's retry starts it afresh.
    const s = this.runtime.current;
    if (s && s.state === 'stopped') await s.restart().catch((e: Error) => this.log.warn(`runtime restart: ${e.message}`));
    await this.start({ ...old, id: this.newId(), code: undefined, outcome: undefined });
  }

  // --- panel actions ----------------------------------------------------------------------------

  private async onPanelMessage(msg: WebviewMessage): Promise<void> {
    try {
      if (msg.type === 'action') await this.onAction(msg.action, msg.id);
      else if (msg.type === 'fix') await this.onFix(msg.fix);
    } catch (e) {
      this.log.error(`panel action failed: ${(e as Error).stack ?? e}`);
      this.panel.post({ type: 'notice', level: 'error', message: `That did not work: ${(e as Error).message}` });
    }
  }

  private async onAction(action: PanelAction, id: string): Promise<void> {
    if (action === 'cancel') return this.cancel(id);
    if (action === 'retry') return this.retry(id);
    const record = this.records.get(id);
    if (!record?.code) {
      this.panel.post({ type: 'notice', level: 'warning', message: 'The code of this solve is no longer available; Retry to solve the task again.' });
      return;
    }
    const code = record.code;
    if (action === 'copy') {
      await vscode.env.clipboard.writeText(code);
      this.panel.post({ type: 'notice', level: 'info', message: `Copied ${linesLabel(code)} to the clipboard.` });
      return;
    }
    const editor = await editorFor(record.target, record.language);
    if (action === 'insertAtCursor') {
      const r = await insertAtCursor(editor, code);
      this.panel.post({ type: 'notice', level: r.done ? 'info' : 'warning', message: r.message });
    } else if (action === 'replaceSelection') {
      if (!record.target || !record.target.selectedText.trim()) {
        this.panel.post({ type: 'notice', level: 'warning', message: 'This task did not come from a selection; use Insert at cursor.' });
        return;
      }
      const r = await replaceSelection(editor, record.target, code);
      this.panel.post({ type: 'notice', level: r.done ? 'info' : 'warning', message: r.message });
    } else if (action === 'showDiff') {
      const plan = record.target?.selectedText.trim() && editor.document.uri.toString() === record.target.uri ? replacementFor(editor, record.target, code) : undefined;
      const change = plan?.kind === 'ok' ? plan : insertionAt(editor, code);
      await this.proposals.show(editor, change);
      this.panel.post({ type: 'notice', level: 'info', message: plan?.kind === 'ok' ? 'The diff shows the selection replaced; accept (✓) or discard in the editor title.' : 'The diff shows the code inserted at the cursor; accept (✓) or discard in the editor title.' });
    }
  }

  private async onFix(fix: Fix): Promise<void> {
    switch (fix) {
      case 'download-models':
        await vscode.commands.executeCommand(Commands.downloadModels);
        break;
      case 'show-logs':
        this.log.show(true);
        break;
      case 'select-team':
        await vscode.commands.executeCommand(Commands.selectTeam);
        break;
      case 'switch-device':
        await this.switchDevice();
        break;
      case 'retry':
        await this.retry();
        break;
      case 'open-settings':
        await vscode.commands.executeCommand('workbench.action.openSettings', `@ext:${EXTENSION_ID}`);
        break;
      case 'trust-workspace':
        await vscode.commands.executeCommand('workbench.trust.manage');
        break;
    }
  }

  async switchDevice(): Promise<void> {
    const info = this.runtime.current?.runtimeInfo;
    const current = currentSettings().device;
    const items: (vscode.QuickPickItem & { device: Settings['device'] })[] = [
      { device: 'auto', label: 'auto', description: 'the fastest available provider' },
      ...(['cpu', 'cuda', 'webgpu'] as const).map((d) => {
        const p = info?.providers.find((x) => x.name === d);
        return { device: d, label: d, description: p ? (p.available ? 'available' : `unavailable: ${p.reason ?? 'not usable here'}`) : undefined };
      }),
    ];
    for (const i of items) if (i.device === current) i.description = `${i.description ?? ''} (current)`.trim();
    const pick = await vscode.window.showQuickPick(items, { title: 'RecursiveMAS: run the models on', placeHolder: `Now: ${current}. The runtime restarts with the new device.` });
    if (!pick) return;
    await updateSetting('device', pick.device);
    this.panel.post({ type: 'notice', level: 'info', message: `Device set to ${pick.device}. Retry to solve again.` });
  }

  private onConfigChange(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration(SECTION)) return;
    const s = currentSettings(this.log);
    if (!this.running) this.status.setTeam(s.team, s.device);
    this.status.setPlan(s.rounds, s.latentSteps, s.mode);
    // A process started with other device/threads/models settings is replaced: now if idle,
    // otherwise at the next solve.
    if (!this.running && this.runtime.isStale(s)) void this.runtime.stop();
  }

  /** Loads the team in the background (the warm-up setting), so the first solve starts faster. */
  async warmUp(): Promise<void> {
    const s = currentSettings();
    if (!s.warmUpOnOpen || !vscode.workspace.isTrusted || this.running) return;
    try {
      const supervisor = await this.runtime.ensure(s);
      const r = await supervisor.loadTeam({ team: s.team, device: s.device, threads: s.threads || undefined });
      this.status.setTeam(r.team, r.device);
      this.log.info(`warm-up: team ${r.team} loaded on ${r.device} in ${Math.round(r.ms)} ms`);
    } catch (e) {
      this.log.warn(`warm-up failed: ${(e as Error).message}`);
    }
  }

  private remember(record: SolveRecord): void {
    this.records.delete(record.id);
    this.records.set(record.id, record);
    while (this.records.size > KEEP_RECORDS) this.records.delete(this.records.keys().next().value!);
    void this.context.workspaceState.update(RECORDS_KEY, [...this.records.values()]);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
