// The solve flow: capture the task, open the panel, ask the runtime, stream its events to the
// panel, the status bar and the progress notification, and carry out the panel's actions.
import * as vscode from 'vscode';
import type { SolveEvent, SolveResult } from '../protocol/events';
import type { Fix, Outcome, PanelAction, WebviewMessage } from '../protocol/webview';
import { editorFor, insertAtCursor, isSourceEditor, insertionAt, replacementFor, replaceSelection, type ProposalProvider, type SolveTarget } from './editor';
import { isCancel, panelErrorOf } from './errors';
import { Commands, ContextKeys, EXTENSION_ID } from './ids';
import { EventCoalescer } from './coalesce';
import { codeOfAnswer, linesLabel } from './insertion';
import type { PanelHost } from './panel';
import type { RuntimeHost } from './runtime-host';
import { currentSettings, updateSetting } from './config';
import { SECTION, teamLoadOptions, type Settings } from './settings';
import type { StatusBar, SolveProgress } from './status';
import { followUpTask, normalizeTask, solveLanguage, surroundingContext } from './task';
import { listTeams } from './teams';
import { DEMO_TEAM, describeMachine, downloadLabel, formatBytes, machineFacts, recommend, teamOffers } from './first-run';
import type { ModelCommands } from './models';
import { verifyParamsFor } from './verify';
import type { LiveDiff, LiveDiffs } from './live-diff';
import type { VerifyParams } from '../protocol/rpc';
import type { RuntimeSupervisor } from '../runtime/client/supervisor';

type SolveRequest = Parameters<RuntimeSupervisor['solve']>[0];

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
  /** What the solve ran with and when, for the history. */
  team?: string;
  mode?: Settings['mode'];
  rounds?: number;
  latentSteps?: number;
  startedAt?: number;
}

const RECORDS_KEY = 'recursivemas.solves';
/** The per-workspace history: the newest solves, with their answers. */
const KEEP_RECORDS = 30;

interface Running {
  record: SolveRecord;
  seq: number;
  progress: SolveProgress;
  report?: (message: string, increment?: number) => void;
  /** What the final agent has written so far (its decode, or the code retry), kept if the solve is cancelled. */
  partial: string;
  writing: boolean;
  /** The answer streaming into the user's file as an inline diff (Show diff while it is written). */
  live?: LiveDiff;
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
    private readonly models: ModelCommands,
    private readonly liveDiffs?: LiveDiffs,
  ) {
    for (const r of context.workspaceState.get<SolveRecord[]>(RECORDS_KEY, [])) this.records.set(r.id, r);
    this.disposables.push(
      panel.onMessage((m) => void this.onPanelMessage(m)),
      runtime.onDidChangeState((s) => {
        this.status.setRuntime(s);
        this.panel.post({ type: 'runtime', state: s.state, detail: s.detail });
      }),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChange(e)),
      vscode.window.onDidChangeActiveTextEditor((e) => {
        if (e && isSourceEditor(e)) this.lastEditor = e;
      }),
    );
    const s = currentSettings();
    this.status.setTeam(s.team, s.device);
    this.status.setPlan(s.rounds, s.latentSteps, s.mode);
  }

  /** The text editor the user last worked in: a solve started while the panel has focus takes its selection. */
  private lastEditor?: vscode.TextEditor = vscode.window.activeTextEditor;

  get isSolving(): boolean {
    return this.running !== undefined;
  }

  // --- starting a solve ---------------------------------------------------------------------

  /** The "Solve with RecursiveMAS" command. */
  async solveCommand(): Promise<void> {
    if (!this.checkTrusted('solve tasks')) return;
    const editor = this.sourceEditor();
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

  /** With the panel (or another non-text view) focused: the last text editor, if it is still on screen. */
  /**
   * The editor a task comes from: the active one when it holds a file, else the one the user last
   * worked in (the panel, an Output channel or a terminal has the focus).
   */
  private sourceEditor(): vscode.TextEditor | undefined {
    const active = vscode.window.activeTextEditor;
    if (active && isSourceEditor(active)) return active;
    const last = this.lastEditor;
    if (!last || last.document.isClosed) return undefined;
    const visible = vscode.window.visibleTextEditors;
    return visible.find((e) => e === last) ?? visible.find((e) => e.document === last.document);
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
    const settings = await this.readyTeam(currentSettings(this.log));
    if (!settings) return;
    // Asked before the panel opens: a modal over a running solve would be worse.
    const verify = await verifyParamsFor(record, settings, this.context.workspaceState, this.log);
    const team = (await listTeams(vscode.Uri.joinPath(this.context.extensionUri, 'models').fsPath)).find((t) => t.name === settings.team);
    Object.assign(record, { team: settings.team, mode: settings.mode, rounds: settings.rounds, latentSteps: settings.latentSteps, startedAt: Date.now() });
    this.remember(record);
    const running: Running = { record, seq: 0, progress: { round: 0, rounds: settings.rounds }, partial: '', writing: false };
    this.running = running;
    void vscode.commands.executeCommand('setContext', ContextKeys.solving, true);
    this.status.setTeam(settings.team, settings.device);
    this.status.setSolving(true, running.progress);
    if (settings.diffStream && settings.insertAction === 'showDiff' && record.target) void this.streamInto(running, false);
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
    // The solve is over for the status bar and the keybindings as soon as the runtime is done with
    // it, not only once the live diff has opened in the editor (or been taken out).
    const settle = () => {
      if (this.running === running) this.running = undefined;
      void vscode.commands.executeCommand('setContext', ContextKeys.solving, this.running !== undefined);
      this.status.setSolving(this.running !== undefined, this.running?.progress ?? null);
    };
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'RecursiveMAS', cancellable: true },
      async (progress, token) => {
        running.report = (message, increment) => progress.report({ message, increment });
        token.onCancellationRequested(() => void this.cancel(record.id));
        progress.report({ message: 'starting…' });
        try {
          const result = await this.runSolve(record, settings, running, verify);
          record.code = codeOfAnswer({ text: result.answer, code: result.code });
          outcome = 'done';
          this.panel.post({ type: 'end', id: record.id, outcome });
          settle();
          if (running.live) await this.finishLive(running.live, record).catch((e: Error) => this.log.warn(`live diff: ${e.message}`));
          this.log.info(`solve ${record.id} done in ${Math.round(result.metrics.wallMs)} ms on ${result.device}: ${result.metrics.latentSteps} latent steps, ${result.metrics.textTokens} text tokens`);
        } catch (e) {
          settle();
          if (isCancel(e)) {
            outcome = 'cancelled';
            await running.live?.abort('Cancelled: the streamed lines were taken out; your text is as it was.').catch((x: Error) => this.log.warn(`live diff: ${x.message}`));
            // Keep what the final agent had written: the panel still shows it, and its actions use it.
            const partial = running.partial.trim() ? codeOfAnswer({ text: running.partial, code: null }) : '';
            if (partial) record.code = partial;
            this.panel.post({ type: 'end', id: record.id, outcome });
            if (partial) this.panel.post({ type: 'notice', level: 'info', message: `Cancelled while writing: what was written so far (${linesLabel(partial)}) is kept; Insert, Copy and Show diff use it as it is.` });
            this.log.info(`solve ${record.id} cancelled`);
          } else {
            outcome = 'failed';
            await running.live?.abort('The solve failed: the streamed lines were taken out; your text is as it was.').catch((x: Error) => this.log.warn(`live diff: ${x.message}`));
            const error = panelErrorOf(e, settings.device);
            this.panel.post({ type: 'end', id: record.id, outcome, error });
            this.log.error(`solve ${record.id} failed: ${(e as Error)?.message ?? e}`);
          }
        }
      },
    );
    record.outcome = outcome;
    this.remember(record);
    settle();
  }

  /**
   * The settings to solve with once the team is on disk. A team that is not downloaded yet is
   * not an error to show after the fact: the user picks the download, the offline demo team, or
   * the folder and mirror settings. Undefined: do not solve now.
   */
  private async readyTeam(settings: Settings): Promise<Settings | undefined> {
    const team = (await this.models.teams()).find((t) => t.name === settings.team);
    // An unknown team is reported by the runtime (with "Select team" as its fix).
    if (!team || team.demo || (await this.models.missingRepos(team)).length === 0) return settings;
    const precision = settings.precision === 'auto' ? 'int4' : settings.precision;
    const offers = await teamOffers(vscode.Uri.joinPath(this.context.extensionUri, 'models').fsPath, this.runtime.modelsDirectory(settings), precision);
    // A team the user chose on purpose is the one offered; the default gives way to what fits here.
    const chosen = vscode.workspace.getConfiguration(SECTION).inspect('team');
    const explicit = chosen?.globalValue !== undefined || chosen?.workspaceValue !== undefined || chosen?.workspaceFolderValue !== undefined;
    const offer = (explicit ? offers.find((o) => o.team.name === team.name) : undefined) ?? recommend(offers) ?? offers.find((o) => o.team.name === team.name);
    const download = offer ? `Download ${offer.team.name} (${downloadLabel(offer)})` : undefined;
    const demo = 'Use the offline demo team';
    const folder = 'Models folder and mirror settings';
    const detail = [
      offer ? `${offer.team.description}${offer.scores ? ` Reference scores: ${offer.scores}.` : ''} It needs about ${formatBytes(offer.memoryBytes)} of memory at ${precision}${offer.fits ? '' : ', more than is free now'}.` : '',
      `The offline demo team (${DEMO_TEAM}) runs now with generated weights: it shows the whole team at work but writes no useful code.`,
      `Models are kept in ${this.runtime.modelsDirectory(settings)} and downloaded from ${settings.huggingFaceEndpoint}.`,
    ].filter(Boolean).join('\n\n');
    const pick = await vscode.window.showInformationMessage(`Team ${team.name} is not downloaded yet.`, { modal: true, detail }, ...[download, demo, folder].filter((x): x is string => !!x));
    if (pick === demo) {
      await updateSetting('team', DEMO_TEAM);
      this.log.info(`first run: switched to the offline demo team ${DEMO_TEAM}`);
      return currentSettings(this.log);
    }
    if (pick === folder) {
      await vscode.commands.executeCommand('workbench.action.openSettings', '@id:recursivemas.modelsDirectory,recursivemas.huggingFace.endpoint');
      return undefined;
    }
    if (pick === download && offer) {
      if (offer.team.name !== settings.team) await updateSetting('team', offer.team.name);
      const ok = await this.models.download(offer.team.name, { confirmed: true });
      return ok ? currentSettings(this.log) : undefined;
    }
    return undefined;
  }

  // --- the walkthrough's steps ---------------------------------------------------------------

  /** The team to recommend on this machine, and the line that describes it. */
  private async recommendation(): Promise<{ name: string; line: string; button: string } | undefined> {
    const s = currentSettings(this.log);
    const precision = s.precision === 'auto' ? 'int4' : s.precision;
    const offer = recommend(await teamOffers(vscode.Uri.joinPath(this.context.extensionUri, 'models').fsPath, this.runtime.modelsDirectory(s), precision));
    if (!offer) return undefined;
    const size = offer.downloadBytes > 0 ? `${downloadLabel(offer)} download` : 'already downloaded';
    return {
      name: offer.team.name,
      line: `Recommended: ${offer.team.name} (${size}, about ${formatBytes(offer.memoryBytes)} of memory at ${precision}${offer.scores ? `; reference scores ${offer.scores}` : ''})${offer.fits ? '' : ', though it needs more memory than is free now'}.`,
      button: offer.downloadBytes > 0 ? `Download ${offer.team.name} (${downloadLabel(offer)})` : `Use ${offer.team.name}`,
    };
  }

  /** "Check this machine": memory, the GPU providers the runtime finds, and the team that fits. */
  async checkMachine(): Promise<void> {
    const s = currentSettings(this.log);
    let providers: { name: string; available: boolean; reason?: string }[] = [];
    try {
      providers = (await (await this.runtime.ensure(s)).start()).providers;
    } catch (e) {
      this.log.warn(`machine check: the runtime did not start: ${(e as Error).message}`);
    }
    const facts = machineFacts(providers);
    const rec = await this.recommendation();
    const lines = [...describeMachine(facts), rec?.line ?? 'No real team can run in this version; the offline demo team can.'];
    this.log.info(`machine check: ${lines.join(' ')}`);
    const demo = 'Start the Offline Demo';
    const pick = await vscode.window.showInformationMessage('RecursiveMAS: this machine', { modal: true, detail: lines.join('\n') }, ...(rec ? [rec.button] : []), demo);
    if (rec && pick === rec.button) await this.downloadRecommended();
    else if (pick === demo) await this.tryDemo();
  }

  /** Selects the recommended team and downloads what it still needs. */
  async downloadRecommended(): Promise<void> {
    if (!this.checkTrusted('download models')) return;
    const rec = await this.recommendation();
    if (!rec) {
      void vscode.window.showWarningMessage('No real team can run in this version. Start the offline demo team instead.', 'Start the Offline Demo').then((a) => a && this.tryDemo());
      return;
    }
    await updateSetting('team', rec.name);
    await this.models.download(rec.name, { confirmed: rec.button.startsWith('Download') });
  }

  /** One click to a running team: the demo team solves a sample task (or the selection, if any). */
  async tryDemo(): Promise<void> {
    await updateSetting('team', DEMO_TEAM);
    // Only the editor in front: a selection left in one behind the walkthrough is not what the user means.
    const editor = vscode.window.activeTextEditor;
    if (editor && isSourceEditor(editor) && !editor.selection.isEmpty) return this.solveCommand();
    if (!this.checkTrusted('solve tasks')) return;
    await this.start({ id: this.newId(), task: 'Write a function that merges overlapping intervals and returns them sorted.', language: 'python' });
  }

  private async runSolve(record: SolveRecord, settings: Settings, running: Running, verify?: VerifyParams): Promise<SolveResult> {
    const supervisor = await this.runtime.ensure(settings);
    const coalescer = new EventCoalescer((event) => {
      running.seq += 1;
      this.panel.post({ type: 'event', id: record.id, seq: running.seq, event });
      this.track(running, event);
    });
    // Every solve's events start with team-loaded (ms 0 for a team kept from an earlier solve).
    const forward = (event: SolveEvent) => coalescer.push(event);
    try {
      return await supervisor.solve(this.solveRequest(record, settings, verify), forward);
    } finally {
      coalescer.flush();
    }
  }

  private solveRequest(record: SolveRecord, settings: Settings, verify?: VerifyParams): SolveRequest {
    return {
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
      ...teamLoadOptions(settings),
      ...(verify ? { verify } : {}),
    };
  }

  /**
   * A solve asked for from another surface (the chat view, a language model request), gated like
   * the command: a trusted workspace, and a team on disk or the demo team. Events go to `onEvent`;
   * the token cancels it in the runtime. Undefined when the gate said no (the user was told why).
   */
  async solveFor(ask: { task: string; language: string; context?: string }, onEvent: (event: SolveEvent) => void, token: vscode.CancellationToken): Promise<{ result: SolveResult; settings: Settings } | undefined> {
    if (!this.checkTrusted('solve tasks')) return undefined;
    const task = normalizeTask(ask.task);
    if (!task) return undefined;
    const settings = await this.readyTeam(currentSettings(this.log));
    if (!settings || token.isCancellationRequested) return undefined;
    const record: SolveRecord = { id: this.newId(), task: task.task, language: ask.language, context: ask.context, team: settings.team, mode: settings.mode, rounds: settings.rounds, latentSteps: settings.latentSteps, startedAt: Date.now() };
    const supervisor = await this.runtime.ensure(settings);
    const cancel = token.onCancellationRequested(() => {
      supervisor.cancel(record.id).catch((e: Error) => this.log.warn(`cancel failed: ${e.message}`));
    });
    this.log.info(`solve ${record.id} from the chat: team ${settings.team}, ${settings.mode}, ${settings.rounds} rounds × ${settings.latentSteps} steps`);
    try {
      const result = await supervisor.solve(this.solveRequest(record, settings), onEvent);
      record.code = codeOfAnswer({ text: result.answer, code: result.code });
      record.outcome = 'done';
      return { result, settings };
    } catch (e) {
      record.outcome = isCancel(e) ? 'cancelled' : 'failed';
      throw e;
    } finally {
      cancel.dispose();
      this.remember(record);
    }
  }

  // --- the live inline diff ------------------------------------------------------------------

  /**
   * Streams the answer into the file the task came from. `focus`: the user asked for it (Show
   * diff), so the file is opened; otherwise only into an editor already on screen.
   */
  private async streamInto(running: Running, focus: boolean): Promise<boolean> {
    const record = running.record;
    if (!this.liveDiffs || running.live) return running.live !== undefined;
    const editor = focus ? await editorFor(record.target, record.language) : vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === record.target?.uri);
    if (!editor || this.running !== running) return false;
    const live = this.liveDiffs.start(record.id, editor, record.target);
    running.live = live;
    if (running.writing && running.partial) live.update(running.partial);
    return true;
  }

  /** The answer is complete: its hunks wait in the editor, or, when the user changed the file meanwhile, the side-by-side diff opens. */
  private async finishLive(live: LiveDiff, record: SolveRecord): Promise<void> {
    if (!live.abandoned) {
      if (record.code?.trim()) await live.finish(record.code);
      else await live.abort('The answer has no code: nothing was written.');
    }
    if (live.abandoned && record.code?.trim()) {
      await this.onAction('showDiff', record.id);
      this.panel.post({ type: 'notice', level: 'warning', message: `The file changed while the answer streamed, so the answer opens as a side-by-side diff: accept (✓) or discard in the editor title.` });
    } else if (live.isPending) {
      this.panel.post({ type: 'notice', level: 'info', message: `The answer is in ${vscode.workspace.asRelativePath(live.document.uri)} as an inline diff: Accept or Discard each change above it, or all of them (Ctrl+Alt+Enter / Ctrl+Alt+Backspace).` });
    }
  }

  /** Show diff on a solve whose answer streams (or waits) in the editor: that inline diff. False: the side-by-side diff is wanted. */
  private async showLiveDiff(id: string): Promise<boolean> {
    const live = this.liveDiffs?.forSolve(id);
    if (live && !live.isEnded) {
      const visible = vscode.window.visibleTextEditors.find((e) => e.document === live.document);
      await vscode.window.showTextDocument(live.document, { preview: false, viewColumn: visible?.viewColumn });
      return true;
    }
    const running = this.running;
    if (!running || running.record.id !== id || running.record.code !== undefined) return false;
    if (!currentSettings(this.log).diffStream) {
      this.panel.post({ type: 'notice', level: 'info', message: 'Streaming into the file is off (recursivemas.diff.stream): Show diff opens once the answer is ready.' });
      return true;
    }
    if (await this.streamInto(running, true)) this.panel.post({ type: 'notice', level: 'info', message: 'The answer streams into the file as an inline diff; accept or discard each change once it is written.' });
    return true;
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
        running.writing = p.decoding;
        if (p.decoding) {
          running.partial = '';
          running.live?.update('');
        }
        message = event.action === 'decode' ? `round ${p.round} of ${p.rounds}: ${event.agent} is writing the code` : `round ${p.round} of ${p.rounds}: ${event.agent} (${event.role}) is thinking`;
        break;
      case 'retry':
        running.writing = true;
        running.partial = '';
        running.live?.update('');
        return;
      case 'token':
        if (running.writing) {
          running.partial += event.text;
          running.live?.update(running.partial);
        }
        return;
      case 'answer':
        increment = 100 / Math.max(1, p.rounds + 1);
        message = 'done';
        break;
      case 'check-start':
        message = `checking candidate ${event.candidate}`;
        break;
      case 'repair-round':
        message = `repair ${event.repair} of ${event.maxRepairs}: ${event.failing} check${event.failing === 1 ? '' : 's'} failed`;
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

  /** Solves again from an earlier solve: with the task as edited in the panel, or a follow-up on its answer. */
  async rerun(id: string, change: { task?: string; followUp?: string }): Promise<void> {
    if (!this.checkTrusted('solve tasks')) return;
    const old = this.records.get(id);
    if (!old) {
      this.panel.post({ type: 'notice', level: 'warning', message: 'That solve is no longer in the history; run "Solve with RecursiveMAS" again.' });
      return;
    }
    let raw = change.task ?? old.task;
    if (change.followUp !== undefined) {
      if (!old.code) {
        this.panel.post({ type: 'notice', level: 'warning', message: 'This solve has no code to follow up on; edit the task and solve again instead.' });
        return;
      }
      raw = followUpTask(change.followUp, old.task, old.code, old.language);
    }
    const task = normalizeTask(raw);
    if (!task) {
      this.panel.post({ type: 'notice', level: 'warning', message: 'The task is empty: type what the team should do.' });
      return;
    }
    await this.start({ ...old, id: this.newId(), task: task.task, code: undefined, outcome: undefined });
  }

  /** "Show Solve History": the workspace's earlier solves, newest first; picking one shows it in the panel. */
  async showHistory(): Promise<void> {
    const records = [...this.records.values()].reverse();
    if (records.length === 0) {
      void vscode.window.showInformationMessage('No solves in this workspace yet. Run "Solve with RecursiveMAS" first.');
      return;
    }
    const when = (t?: number) => (t ? new Date(t).toLocaleString() : 'earlier');
    const items = records.map((r) => ({
      label: r.task.split('\n')[0]!.slice(0, 100),
      description: [r.team, r.mode, when(r.startedAt)].filter(Boolean).join(' · '),
      detail: `${r.outcome ?? 'unfinished'}${r.code ? ` · ${linesLabel(r.code)} of ${r.language}` : ''}${r.fileName ? ` · ${r.fileName}` : ''}`,
      record: r,
    }));
    const pick = await vscode.window.showQuickPick(items, { title: 'RecursiveMAS: solve history (this workspace)', placeHolder: 'Pick a solve to show it in the panel', matchOnDescription: true, matchOnDetail: true });
    if (pick) this.reopen(pick.record);
  }

  /** Shows an earlier solve in the panel: its task, plan and answer; Insert, Copy, Retry and follow-ups work on it. */
  reopen(r: SolveRecord): void {
    const s = currentSettings(this.log);
    this.panel.show(false);
    this.panel.post({
      type: 'session',
      session: {
        id: r.id,
        task: r.task,
        language: r.language,
        team: r.team ?? s.team,
        device: s.device,
        mode: r.mode ?? s.mode,
        rounds: r.rounds ?? s.rounds,
        latentSteps: r.latentSteps ?? s.latentSteps,
        fileName: r.fileName,
        hasSelection: !!r.target?.selectedText.trim(),
        defaultAction: s.insertAction,
        startedAt: r.startedAt ?? Date.now(),
      },
    });
    if (r.code !== undefined) this.panel.post({ type: 'event', id: r.id, seq: 1, event: { type: 'answer', text: r.code, code: r.code, language: r.language } });
    this.panel.post({ type: 'end', id: r.id, outcome: r.outcome ?? 'cancelled' });
  }

  // --- panel actions ----------------------------------------------------------------------------

  private async onPanelMessage(msg: WebviewMessage): Promise<void> {
    try {
      if (msg.type === 'action') await this.onAction(msg.action, msg.id);
      else if (msg.type === 'fix') await this.onFix(msg.fix);
      else if (msg.type === 'rerun') await this.rerun(msg.id, msg);
    } catch (e) {
      this.log.error(`panel action failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      this.panel.post({ type: 'notice', level: 'error', message: `That did not work: ${(e as Error).message}` });
    }
  }

  private async onAction(action: PanelAction, id: string): Promise<void> {
    if (action === 'cancel') return this.cancel(id);
    if (action === 'retry') return this.retry(id);
    if (action === 'showDiff' && (await this.showLiveDiff(id))) return;
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
        // The fix is the download and then the solve it was for.
        if (await this.models.download()) await this.retry();
        break;
      case 'use-demo-team':
        await updateSetting('team', DEMO_TEAM);
        await this.retry();
        break;
      case 'models-settings':
        await vscode.commands.executeCommand('workbench.action.openSettings', '@id:recursivemas.modelsDirectory,recursivemas.huggingFace.endpoint');
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
    if (!this.running) this.panel.post({ type: 'settings-changed', team: s.team });
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
      const r = await supervisor.loadTeam({ team: s.team, ...teamLoadOptions(s) });
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
