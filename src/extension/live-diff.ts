// The live inline diff: while the final agent writes, its code streams into the user's file in
// place of the selection (or at the cursor), each changed line decorated as added, the lines it
// replaces kept and decorated as removed. Once the answer is complete a CodeLens over each hunk
// accepts or discards it, and one over the region does all of them. Accepting leaves one undo step
// that brings the original text back; cancel, failure or Discard restore the text exactly. A file
// the user edits while the answer streams is left alone from then on (the caller falls back to the
// side-by-side proposal diff). Each diff is kept in workspaceState, so a window reload finds a
// proposal under review again, and takes out the lines of one that was still streaming.
import * as vscode from 'vscode';
import { ContextKeys } from './ids';
import { diffLines, findLines, hunkStarts, layoutRows, minimalEdit, resolvedLines, streamedCode, type Decision, type Hunk, type Row } from './hunks';
import { checkSelection, detectEol, planInsertAtCursor, planReplaceSelection } from './insertion';
import { indentStyle, type SolveTarget } from './editor';

const LINE_SPLIT = /\r\n|\r|\n/;

/** Commands behind the CodeLenses (not in the palette: they need the hunk they act on). */
export const LiveDiffCommands = {
  acceptHunk: 'recursivemas.liveDiff.acceptHunk',
  discardHunk: 'recursivemas.liveDiff.discardHunk',
  acceptAll: 'recursivemas.liveDiff.acceptAll',
  discardAll: 'recursivemas.liveDiff.discardAll',
  stop: 'recursivemas.liveDiff.stop',
} as const;

type State = 'streaming' | 'review' | 'ended';

/** workspaceState key of the live diffs not yet ended. */
const SAVED_KEY = 'recursivemas.liveDiffs';

/** A live diff as workspaceState keeps it: enough to find its lines in the file and go on. */
export interface SavedLiveDiff {
  solveId: string;
  uri: string;
  streaming: boolean;
  startLine: number;
  eol: string;
  before: string[];
  after: string[];
  hunks: Hunk[];
  decisions: Decision[];
  rows: Row[];
}

export type Notify = (level: 'info' | 'warning', message: string) => void;

/** Where the code goes: whole lines of the document, and how the code fits into them. */
interface Region {
  /** Document line of the region's first row (moves when lines above it change). */
  startLine: number;
  /** The region's original lines. */
  before: string[];
  /** Turns code into the region's new lines (the text before and after the range kept around it). */
  linesFor(code: string): string[];
  eol: string;
}

function regionFor(editor: vscode.TextEditor, target: SolveTarget | undefined): Region {
  const doc = editor.document;
  const eol = detectEol(doc.getText());
  const style = indentStyle(editor);
  let range: vscode.Range | undefined;
  let selectedText = '';
  if (target?.selectedText.trim() && target.uri === doc.uri.toString()) {
    const check = checkSelection(doc.getText(), target.selectionStart, target.selectionEnd, target.selectedText);
    if (check.status !== 'changed') {
      range = new vscode.Range(doc.positionAt(check.start), doc.positionAt(check.end));
      selectedText = target.selectedText;
    }
  }
  const replacing = range !== undefined;
  range ??= new vscode.Range(editor.selection.active, editor.selection.active);
  // Whole lines: a selection ending at the start of a line does not take that line in.
  const endLine = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
  const firstLine = doc.lineAt(range.start.line).text;
  const lastLine = doc.lineAt(endLine).text;
  const before: string[] = [];
  for (let l = range.start.line; l <= endLine; l++) before.push(doc.lineAt(l).text);
  const prefix = firstLine.slice(0, range.start.character);
  // What follows the range on its last line; a range ending at a line start ends with a line break.
  const suffix = range.end.line > endLine ? '' : lastLine.slice(range.end.character);
  const start = range.start;
  const linesFor = (code: string): string[] => {
    const text = replacing ? planReplaceSelection(code, firstLine, start.character, selectedText, style, eol) : planInsertAtCursor(code, firstLine, start.character, style, eol);
    const lines = (prefix + text + suffix).split(LINE_SPLIT);
    // The range's closing line break is the region's own end, not an extra empty line.
    if (range.end.line > endLine && lines.length > 1 && lines.at(-1) === '') lines.pop();
    return lines;
  };
  return { startLine: range.start.line, before, linesFor, eol };
}

export class LiveDiff {
  private state: State = 'streaming';
  private after: string[];
  private hunks: Hunk[] = [];
  private decisions: Decision[] = [];
  /** The rows the document holds now (what was last written). */
  private written: Row[];
  /** The rows it should hold. */
  private wanted: Row[];
  private writing = false;
  private applying = false;
  private firstWrite = true;
  /** True once the user changed the file while the answer streamed: the caller shows the side-by-side diff instead. */
  abandoned = false;
  private readonly ended = new vscode.EventEmitter<void>();
  readonly onDidEnd = this.ended.event;

  constructor(
    readonly solveId: string,
    readonly document: vscode.TextDocument,
    private readonly region: Region,
    private readonly owner: LiveDiffs,
    private readonly notify: Notify,
  ) {
    this.after = [...region.before];
    this.written = layoutRows(region.before, region.before, []);
    this.wanted = this.written;
  }

  /** A proposal that was under review when the window reloaded, its rows found at `startLine`. */
  static underReview(saved: SavedLiveDiff, document: vscode.TextDocument, startLine: number, owner: LiveDiffs, notify: Notify): LiveDiff {
    const d = new LiveDiff(saved.solveId, document, { startLine, before: saved.before, linesFor: () => saved.after, eol: saved.eol }, owner, notify);
    d.state = 'review';
    d.firstWrite = false;
    d.after = saved.after;
    d.hunks = saved.hunks;
    d.decisions = saved.decisions;
    d.written = saved.rows;
    d.wanted = saved.rows;
    return d;
  }

  toSaved(): SavedLiveDiff {
    const { startLine, before, eol } = this.region;
    return { solveId: this.solveId, uri: this.document.uri.toString(), streaming: this.isStreaming, startLine, eol, before, after: this.after, hunks: this.hunks, decisions: this.decisions, rows: this.written };
  }

  get isStreaming(): boolean {
    return this.state === 'streaming';
  }
  get isPending(): boolean {
    return this.state === 'review';
  }
  get isEnded(): boolean {
    return this.state === 'ended';
  }
  get rows(): readonly Row[] {
    return this.written;
  }
  get startLine(): number {
    return this.region.startLine;
  }
  get hunkCount(): number {
    return this.hunks.length;
  }
  /** Hunk index -> document line of its first row, for the hunks still undecided. */
  pendingHunkLines(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [hunk, row] of hunkStarts(this.written)) out.set(hunk, this.region.startLine + row);
    return out;
  }

  /** What the final agent has written so far (the raw answer text); an empty text restores the original. */
  update(partial: string): void {
    if (this.state !== 'streaming') return;
    const code = streamedCode(partial);
    this.setAfter(code === '' ? [...this.region.before] : this.region.linesFor(code));
  }

  /** The complete answer: the hunks to review. Resolves once the document shows them. */
  async finish(code: string): Promise<void> {
    if (this.state !== 'streaming') return;
    this.setAfter(this.region.linesFor(code));
    this.state = 'review';
    await this.flush();
    if (this.isEnded) return;
    if (this.hunks.length === 0) {
      await this.end('The answer is the same as the text it would replace; nothing to accept.');
      return;
    }
    this.owner.save();
    this.owner.refresh();
  }

  /** Cancelled or failed: the streamed lines go, the user's text comes back as it was. */
  async abort(message?: string): Promise<void> {
    if (this.isEnded) return;
    this.state = 'review';
    this.decisions = this.hunks.map(() => 'discarded');
    await this.finalize('discarded', message);
  }

  async decide(hunk: number, decision: 'accepted' | 'discarded'): Promise<void> {
    if (this.state !== 'review' || hunk < 0 || hunk >= this.hunks.length || this.decisions[hunk] !== 'pending') return;
    this.decisions[hunk] = decision;
    if (this.decisions.every((d) => d !== 'pending')) {
      await this.finalize('accepted');
      return;
    }
    this.wanted = layoutRows(this.region.before, this.after, this.hunks, this.decisions);
    await this.flush();
    this.owner.save();
    this.owner.refresh();
  }

  /** Accept all / Discard all: the undecided hunks take `decision`. */
  async decideAll(decision: 'accepted' | 'discarded'): Promise<void> {
    if (this.state !== 'review') return;
    await this.finalize(decision);
  }

  private setAfter(lines: string[]): void {
    this.after = lines;
    this.hunks = diffLines(this.region.before, lines);
    this.decisions = this.hunks.map(() => 'pending');
    this.wanted = layoutRows(this.region.before, this.after, this.hunks);
    void this.flush();
  }

  /**
   * Writes the wanted rows, one edit at a time. Edits leave no undo stop of their own, so the
   * whole stream is one step in the file's undo history.
   */
  private async flush(): Promise<void> {
    if (this.writing) {
      // The edit in flight picks up the newest rows when it is done.
      while (this.writing) await new Promise((r) => setTimeout(r, 10));
      if (this.wanted === this.written || this.isEnded) return;
    }
    this.writing = true;
    try {
      while (this.wanted !== this.written && !this.isEnded) {
        const rows = this.wanted;
        if (rows.length === this.written.length && rows.every((r, i) => r.text === this.written[i]?.text)) {
          // Same text, other marks (a hunk decided the way the text already reads): no edit.
          this.written = rows;
          this.owner.decorate(this);
          continue;
        }
        const ok = await this.replaceRegion(this.written.length, rows.map((r) => r.text), { undoStopBefore: this.firstWrite, undoStopAfter: false });
        if (ok === 'no-editor') return;
        if (!ok) {
          await this.giveUp();
          return;
        }
        if (this.firstWrite) {
          // The selection the task came from would grow over the streamed lines: the next key would replace them.
          const at = new vscode.Position(this.region.startLine, 0);
          for (const e of vscode.window.visibleTextEditors) if (e.document === this.document && !e.selection.isEmpty) e.selection = new vscode.Selection(at, at);
        }
        this.firstWrite = false;
        this.written = rows;
        this.owner.decorate(this);
        this.owner.save();
      }
    } finally {
      this.writing = false;
    }
  }

  /** Replaces the region's current `rowCount` lines by `lines`; 'no-editor' when the file is not on screen. */
  private async replaceRegion(rowCount: number, lines: string[], stops: { undoStopBefore: boolean; undoStopAfter: boolean }): Promise<boolean | 'no-editor'> {
    const doc = this.document;
    if (doc.isClosed) return false;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === doc);
    if (!editor) return 'no-editor';
    const first = this.region.startLine;
    const last = first + rowCount - 1;
    if (last >= doc.lineCount) return false;
    const range = new vscode.Range(first, 0, last, doc.lineAt(last).text.length);
    const current = doc.getText(range);
    const next = lines.join(this.region.eol);
    const base = doc.offsetAt(range.start);
    const e = minimalEdit(current, next);
    this.applying = true;
    try {
      return await editor.edit((b) => b.replace(new vscode.Range(doc.positionAt(base + e.start), doc.positionAt(base + e.end)), e.text), stops);
    } catch {
      return false;
    } finally {
      this.applying = false;
    }
  }

  /** Writes the region's final lines: back to the original first, then the result as one undo step. */
  private async finalize(otherwise: 'accepted' | 'discarded', message?: string): Promise<void> {
    if (this.isEnded) return;
    while (this.writing) await new Promise((r) => setTimeout(r, 10));
    this.writing = true;
    const final = resolvedLines(this.region.before, this.after, this.hunks, this.decisions, otherwise);
    const accepted = this.decisions.filter((d) => d === 'accepted').length + (otherwise === 'accepted' ? this.decisions.filter((d) => d === 'pending').length : 0);
    const total = this.hunks.length;
    const name = vscode.workspace.asRelativePath(this.document.uri);
    const same = (lines: readonly string[]) => lines.join('\n') === this.region.before.join('\n');
    if (same(final) && same(this.written.map((r) => r.text))) {
      // Nothing of the answer is in the file: nothing to write.
      this.writing = false;
      await this.end(message ?? `Discarded the proposal; ${name} is as it was.`);
      return;
    }
    try {
      if (vscode.window.visibleTextEditors.every((e) => e.document !== this.document) && !this.document.isClosed) {
        await vscode.window.showTextDocument(this.document, { preview: false, preserveFocus: true });
      }
      const restored = await this.replaceRegion(this.written.length, this.region.before, { undoStopBefore: false, undoStopAfter: same(final) });
      if (restored !== true) {
        this.writing = false;
        await this.giveUp();
        return;
      }
      this.written = layoutRows(this.region.before, this.region.before, []);
      if (!same(final)) {
        const ok = await this.replaceRegion(this.region.before.length, final, { undoStopBefore: true, undoStopAfter: true });
        if (ok === true) {
          const last = this.region.startLine + final.length - 1;
          const end = new vscode.Position(last, this.document.lineAt(last).text.length);
          for (const e of vscode.window.visibleTextEditors) {
            if (e.document !== this.document) continue;
            e.selection = new vscode.Selection(end, end);
            e.revealRange(new vscode.Range(end, end), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
          }
        }
      }
    } finally {
      this.writing = false;
    }
    await this.end(message ?? (accepted === 0 ? `Discarded the proposal; ${name} is as it was.` : `Accepted ${accepted} of ${total} change${total === 1 ? '' : 's'} in ${name}; one undo brings the original back.`));
  }

  /** The document changed under us: put the user's text back if our lines are still intact, then stop. */
  private async giveUp(): Promise<void> {
    if (this.isEnded) return;
    this.abandoned = true;
    const streaming = this.state === 'streaming';
    const doc = this.document;
    let restored = this.written.length === this.region.before.length && this.written.every((r, i) => r.text === this.region.before[i]);
    if (!restored && !doc.isClosed) {
      this.applying = true;
      try {
        restored = await restoreOriginal(doc, this.written, this.region.before, this.region.startLine, this.region.eol);
      } finally {
        this.applying = false;
      }
    }
    const name = vscode.workspace.asRelativePath(doc.uri);
    await this.end(
      restored
        ? `${name} changed while the answer ${streaming ? 'streamed' : 'waited for review'}: the streamed lines were taken out and your text is back; the answer opens as a side-by-side diff.`
        : `${name} changed inside the streamed lines: they were left as they are; undo to take them out, or use Show diff for the side-by-side diff.`,
      'warning',
    );
  }

  private async end(message: string, level: 'info' | 'warning' = 'info'): Promise<void> {
    if (this.isEnded) return;
    this.state = 'ended';
    this.owner.forget(this);
    this.notify(level, message);
    this.ended.fire();
    this.ended.dispose();
  }

  /** A change to the document: ours, above the region (it moves), or the user's in it. */
  onDocumentChange(e: vscode.TextDocumentChangeEvent): void {
    if (this.applying || this.isEnded || e.contentChanges.length === 0) return;
    const first = this.region.startLine;
    const last = first + this.written.length - 1;
    let shift = 0;
    let touched = this.state === 'streaming';
    for (const c of e.contentChanges) {
      if (c.range.end.line < first) shift += c.text.split(LINE_SPLIT).length - 1 - (c.range.end.line - c.range.start.line);
      else if (c.range.start.line > last) continue;
      else touched = true;
    }
    this.region.startLine += shift;
    if (touched) void this.giveUp();
    else if (shift !== 0) {
      this.owner.decorate(this);
      this.owner.save();
      this.owner.refresh();
    }
  }

  /** The editor showing the document came back: write what waited for it. */
  resume(): void {
    if (this.wanted !== this.written) void this.flush();
  }
}

/** Puts `before` back where the document still holds `rows` (at `hint`, else their only place); false when they are not there intact. */
async function restoreOriginal(doc: vscode.TextDocument, rows: readonly Row[], before: readonly string[], hint: number, eol: string): Promise<boolean> {
  const lines = doc.getText().split(LINE_SPLIT);
  const at = findLines(lines, rows.map((r) => r.text), hint);
  if (at === -1) return false;
  const last = at + rows.length - 1;
  const edit = new vscode.WorkspaceEdit();
  edit.replace(doc.uri, new vscode.Range(at, 0, last, lines[last]?.length ?? 0), before.join(eol));
  return vscode.workspace.applyEdit(edit);
}

/** All live diffs: their decorations, CodeLenses, commands and the context key for the keybindings. */
export class LiveDiffs implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly live = new Set<LiveDiff>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly added = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.insertedLineBackground'),
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.addedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
    before: { contentText: '+', color: new vscode.ThemeColor('editorGutter.addedBackground'), width: '1.2ch' },
  });
  private readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.removedLineBackground'),
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.deletedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
    before: { contentText: '−', color: new vscode.ThemeColor('editorGutter.deletedBackground'), width: '1.2ch' },
  });
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly memento: vscode.Memento,
    /** Where a diff's closing message goes (the panel). */
    private readonly notify: Notify,
  ) {
    this.disposables = [
      this.added,
      this.removed,
      this.lensesChanged,
      vscode.languages.registerCodeLensProvider([{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-remote' }], this),
      vscode.workspace.onDidChangeTextDocument((e) => {
        for (const d of this.live) if (d.document === e.document) d.onDocumentChange(e);
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => {
        for (const d of this.live) {
          d.resume();
          this.decorate(d);
        }
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
      vscode.commands.registerCommand(LiveDiffCommands.acceptHunk, (uri: string, hunk: number) => this.find(uri)?.decide(hunk, 'accepted')),
      vscode.commands.registerCommand(LiveDiffCommands.discardHunk, (uri: string, hunk: number) => this.find(uri)?.decide(hunk, 'discarded')),
      vscode.commands.registerCommand(LiveDiffCommands.acceptAll, (uri?: string) => this.find(uri)?.decideAll('accepted')),
      vscode.commands.registerCommand(LiveDiffCommands.discardAll, (uri?: string) => this.find(uri)?.decideAll('discarded')),
    ];
    void this.restore();
  }

  /** The diffs the last window left: one under review comes back as it was; one still streaming has its lines taken out. */
  private async restore(): Promise<void> {
    for (const saved of this.memento.get<SavedLiveDiff[]>(SAVED_KEY, [])) {
      const uri = vscode.Uri.parse(saved.uri);
      const name = vscode.workspace.asRelativePath(uri);
      try {
        // A file left unsaved by the reload opens with the text it had (VS Code's backup).
        const doc = await vscode.workspace.openTextDocument(uri);
        if (saved.streaming) {
          if (await restoreOriginal(doc, saved.rows, saved.before, saved.startLine, saved.eol)) {
            this.notify('warning', `The window reloaded while the answer streamed into ${name}: the streamed lines were taken out and your text is back. The answer is in Show Solve History.`);
          }
          continue;
        }
        const lines = doc.getText().split(LINE_SPLIT);
        const at = findLines(lines, saved.rows.map((r) => r.text), saved.startLine);
        if (at === -1) {
          // The file as it is on disk (the reload came before VS Code had backed up the unsaved file), or changed since.
          if (findLines(lines, saved.before, saved.startLine) !== -1) this.notify('info', `The proposal waiting in ${name} did not survive the reload; your text is as it was, and the answer is in Show Solve History.`);
          this.log.info(`the live diff in ${name} from before the reload is no longer in the file; dropped`);
          continue;
        }
        const diff = LiveDiff.underReview(saved, doc, at, this, this.notify);
        this.live.add(diff);
        this.decorate(diff);
        this.log.info(`live diff for ${saved.solveId} in ${name} waits for review again after the reload`);
      } catch (e) {
        this.log.warn(`the live diff in ${name} from before the reload could not be restored: ${(e as Error).message}`);
      }
    }
    this.save();
    this.refresh();
  }

  /** Keeps every live diff that has not ended, for the next window. */
  save(): void {
    void this.memento.update(SAVED_KEY, [...this.live].filter((d) => !d.isEnded).map((d) => d.toSaved()));
  }

  /** Starts streaming into `editor`: the region is the selection the task came from if it is still there, else the cursor. */
  start(solveId: string, editor: vscode.TextEditor, target: SolveTarget | undefined): LiveDiff {
    for (const d of this.live) if (d.document === editor.document) void d.abort('A new answer streams into this file; the earlier one was taken out.');
    const diff = new LiveDiff(solveId, editor.document, regionFor(editor, target), this, this.notify);
    this.live.add(diff);
    this.log.info(`live diff for ${solveId} in ${vscode.workspace.asRelativePath(editor.document.uri)} from line ${diff.startLine + 1}`);
    this.refresh();
    return diff;
  }

  /** The live diff waiting for review in the document `uri` (or the active editor's), else the newest one. */
  find(uri?: string | vscode.Uri): LiveDiff | undefined {
    const key = uri?.toString() ?? vscode.window.activeTextEditor?.document.uri.toString();
    const pending = [...this.live].filter((d) => d.isPending);
    return pending.find((d) => d.document.uri.toString() === key) ?? pending.at(-1);
  }

  forSolve(solveId: string): LiveDiff | undefined {
    return [...this.live].find((d) => d.solveId === solveId);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const lenses: vscode.CodeLens[] = [];
    for (const d of this.live) {
      if (d.document !== document) continue;
      const top = new vscode.Range(d.startLine, 0, d.startLine, 0);
      const uri = document.uri.toString();
      if (d.isStreaming) {
        lenses.push(new vscode.CodeLens(top, { title: '$(loading~spin) RecursiveMAS is writing…', command: 'recursivemas.cancel', tooltip: 'Cancel the solve: the streamed lines are taken out' }));
        continue;
      }
      if (!d.isPending) continue;
      lenses.push(
        new vscode.CodeLens(top, { title: 'Accept all', command: LiveDiffCommands.acceptAll, arguments: [uri], tooltip: 'Keep every change of this proposal (Ctrl+Alt+Enter)' }),
        new vscode.CodeLens(top, { title: 'Discard all', command: LiveDiffCommands.discardAll, arguments: [uri], tooltip: 'Take every change out and keep your text (Ctrl+Alt+Backspace)' }),
      );
      for (const [hunk, line] of d.pendingHunkLines()) {
        const at = new vscode.Range(line, 0, line, 0);
        lenses.push(
          new vscode.CodeLens(at, { title: 'Accept', command: LiveDiffCommands.acceptHunk, arguments: [uri, hunk], tooltip: `Keep change ${hunk + 1} of ${d.hunkCount}` }),
          new vscode.CodeLens(at, { title: 'Discard', command: LiveDiffCommands.discardHunk, arguments: [uri, hunk], tooltip: `Take change ${hunk + 1} of ${d.hunkCount} out` }),
        );
      }
    }
    return lenses;
  }

  /** Paints added and removed rows in every editor showing the diff's document. */
  decorate(d: LiveDiff): void {
    const added: vscode.Range[] = [];
    const removed: vscode.Range[] = [];
    if (!d.isEnded) {
      d.rows.forEach((r, i) => {
        const line = d.startLine + i;
        if (r.kind === 'added') added.push(new vscode.Range(line, 0, line, 0));
        else if (r.kind === 'removed') removed.push(new vscode.Range(line, 0, line, 0));
      });
    }
    for (const e of vscode.window.visibleTextEditors) {
      if (e.document !== d.document) continue;
      e.setDecorations(this.added, added);
      e.setDecorations(this.removed, removed);
    }
  }

  refresh(): void {
    this.lensesChanged.fire();
    this.updateContext();
  }

  forget(d: LiveDiff): void {
    this.live.delete(d);
    this.decorate(d);
    this.save();
    this.refresh();
  }

  private updateContext(): void {
    const doc = vscode.window.activeTextEditor?.document;
    const pending = [...this.live].some((d) => d.isPending && d.document === doc);
    void vscode.commands.executeCommand('setContext', ContextKeys.liveDiff, pending);
  }

  dispose(): void {
    // A proposal under review stays in the file and in workspaceState: the next window (a reload)
    // brings its decorations and CodeLenses back. A streaming one dies with its solve.
    for (const d of [...this.live]) if (d.isStreaming) void d.abort();
    for (const x of this.disposables) x.dispose();
  }
}
