// Writes generated code into the user's files, only when the user asked for it, as one undoable
// WorkspaceEdit: insert at the cursor, replace the selection the task came from (only while it is
// unchanged, otherwise ask), or show a diff against a read-only proposal to accept or discard.
import * as vscode from 'vscode';
import { PROPOSAL_SCHEME } from './ids';
import { checkSelection, detectEol, linesLabel, planInsertAtCursor, planReplaceSelection, type IndentStyle } from './insertion';

/** Where a solve's task came from, captured when it started. */
export interface SolveTarget {
  uri: string;
  languageId: string;
  /** Offsets of the selection in the document when the solve started. */
  selectionStart: number;
  selectionEnd: number;
  selectedText: string;
  /** Cursor offset when the solve started (used when the document is not open any more). */
  cursor: number;
}

export interface EditOutcome {
  done: boolean;
  message: string;
}

export function indentStyle(editor: vscode.TextEditor): IndentStyle {
  const tabSize = typeof editor.options.tabSize === 'number' ? editor.options.tabSize : 4;
  return { insertSpaces: editor.options.insertSpaces !== false, tabSize };
}

/** Whether a task can come from this editor: Output and log channels are text editors too, but hold no code of the user's. */
export function isSourceEditor(editor: vscode.TextEditor): boolean {
  return ['file', 'untitled', 'vscode-remote'].includes(editor.document.uri.scheme);
}

/** The editor showing the target document, opening it if needed. */
export async function editorFor(target: SolveTarget | undefined, language: string): Promise<vscode.TextEditor> {
  if (target) {
    const uri = vscode.Uri.parse(target.uri);
    const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === target.uri);
    if (visible) return vscode.window.showTextDocument(visible.document, { viewColumn: visible.viewColumn, preserveFocus: false });
    const doc = await vscode.workspace.openTextDocument(uri);
    const editor = await vscode.window.showTextDocument(doc, { preview: false });
    const pos = doc.positionAt(target.cursor);
    editor.selection = new vscode.Selection(pos, pos);
    return editor;
  }
  const active = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (active) return active;
  const doc = await vscode.workspace.openTextDocument({ language, content: '' });
  return vscode.window.showTextDocument(doc);
}

/** Applies one undoable edit; on success the cursor sits at the end of the new code, with no selection. */
async function applyOne(doc: vscode.TextDocument, range: vscode.Range, text: string, label: string): Promise<boolean> {
  const start = doc.offsetAt(range.start);
  const edit = new vscode.WorkspaceEdit();
  edit.replace(doc.uri, range, text, { needsConfirmation: false, label });
  const ok = await vscode.workspace.applyEdit(edit);
  if (ok) placeCursor(doc, doc.positionAt(start + text.length));
  return ok;
}

/**
 * Puts the cursor at `pos` with no selection in the editors showing `doc`: an old selection left
 * over new text would be overwritten by the next key.
 */
function placeCursor(doc: vscode.TextDocument, pos: vscode.Position): void {
  for (const e of vscode.window.visibleTextEditors) {
    if (e.document !== doc) continue;
    e.selection = new vscode.Selection(pos, pos);
    e.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }
}

/** Text and range to insert `code` at the editor's cursor. */
export function insertionAt(editor: vscode.TextEditor, code: string): { range: vscode.Range; text: string } {
  const doc = editor.document;
  const pos = editor.selection.active;
  const text = planInsertAtCursor(code, doc.lineAt(pos.line).text, pos.character, indentStyle(editor), detectEol(doc.getText()));
  return { range: new vscode.Range(pos, pos), text };
}

export async function insertAtCursor(editor: vscode.TextEditor, code: string): Promise<EditOutcome> {
  const { range, text } = insertionAt(editor, code);
  const ok = await applyOne(editor.document, range, text, 'RecursiveMAS: insert code');
  return ok ? { done: true, message: `Inserted ${linesLabel(code)} into ${vscode.workspace.asRelativePath(editor.document.uri)}.` } : { done: false, message: 'VS Code refused the edit (is the file read-only?).' };
}

export type ReplacementPlan = { kind: 'ok'; range: vscode.Range; text: string; moved: boolean } | { kind: 'changed'; reason: string };

/** Where the original selection is now, and what would replace it. */
export function replacementFor(editor: vscode.TextEditor, target: SolveTarget, code: string): ReplacementPlan {
  const doc = editor.document;
  const check = checkSelection(doc.getText(), target.selectionStart, target.selectionEnd, target.selectedText);
  if (check.status === 'changed') return { kind: 'changed', reason: check.reason };
  return { kind: 'ok', moved: check.status === 'moved', ...replacementRange(editor, doc.positionAt(check.start), doc.positionAt(check.end), code) };
}

function replacementRange(editor: vscode.TextEditor, start: vscode.Position, end: vscode.Position, code: string): { range: vscode.Range; text: string } {
  const doc = editor.document;
  const range = new vscode.Range(start, end);
  const text = planReplaceSelection(code, doc.lineAt(start.line).text, start.character, doc.getText(range), indentStyle(editor), detectEol(doc.getText()));
  return { range, text };
}

/**
 * Replaces the selection the task came from. When it changed since the solve started, asks
 * whether to replace the current selection instead, insert at the cursor, or stop.
 */
export async function replaceSelection(editor: vscode.TextEditor, target: SolveTarget, code: string): Promise<EditOutcome> {
  const plan = replacementFor(editor, target, code);
  const doc = editor.document;
  const name = vscode.workspace.asRelativePath(doc.uri);
  if (plan.kind === 'ok') {
    const ok = await applyOne(doc, plan.range, plan.text, 'RecursiveMAS: replace selection');
    return ok ? { done: true, message: `Replaced the selection in ${name}${plan.moved ? ' (it had moved; found it by its text)' : ''}.` } : { done: false, message: 'VS Code refused the edit (is the file read-only?).' };
  }
  const current = editor.selection;
  const choices = [...(current.isEmpty ? [] : ['Replace current selection']), 'Insert at cursor'];
  const answer = await vscode.window.showWarningMessage(
    `The code you selected in ${name} changed since the solve started (${plan.reason}). What should RecursiveMAS do?`,
    { modal: true, detail: 'Nothing has been written yet.' },
    ...choices,
  );
  if (answer === 'Replace current selection') {
    const r = replacementRange(editor, current.start, current.end, code);
    const ok = await applyOne(doc, r.range, r.text, 'RecursiveMAS: replace selection');
    return ok ? { done: true, message: `Replaced the current selection in ${name}.` } : { done: false, message: 'VS Code refused the edit.' };
  }
  if (answer === 'Insert at cursor') return insertAtCursor(editor, code);
  return { done: false, message: 'Nothing was written: the selection had changed.' };
}

// ---------------------------------------------------------------------------------------------
// Diff: the right side is a read-only virtual document holding the whole file with the change.

interface Proposal {
  id: string;
  target: vscode.Uri;
  version: number;
  range: vscode.Range;
  text: string;
  content: string;
}

export class ProposalProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly proposals = new Map<string, Proposal>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private counter = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.proposals.get(uri.toString())?.content ?? '';
  }

  /** Opens a diff between the file and the file with the code applied. */
  async show(editor: vscode.TextEditor, change: { range: vscode.Range; text: string }): Promise<void> {
    const doc = editor.document;
    const before = doc.getText();
    const start = doc.offsetAt(change.range.start);
    const end = doc.offsetAt(change.range.end);
    const content = before.slice(0, start) + change.text + before.slice(end);
    const base = doc.uri.path.split('/').pop() || 'untitled';
    const uri = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${base}`, query: `n=${++this.counter}` });
    this.proposals.set(uri.toString(), { id: uri.toString(), target: doc.uri, version: doc.version, range: change.range, text: change.text, content });
    // In the file's own group: opening it in the active one would cover the panel after a click there.
    await vscode.commands.executeCommand('vscode.diff', doc.uri, uri, `${base} ↔ RecursiveMAS proposal (accept ✓ or discard)`, { preview: true, viewColumn: editor.viewColumn });
  }

  private activeProposal(uri?: vscode.Uri): Proposal | undefined {
    const candidates = [uri, vscode.window.activeTextEditor?.document.uri, ...vscode.window.visibleTextEditors.map((e) => e.document.uri)];
    for (const u of candidates) {
      if (u?.scheme === PROPOSAL_SCHEME) {
        const p = this.proposals.get(u.toString());
        if (p) return p;
      }
    }
    return [...this.proposals.values()].at(-1);
  }

  /** Applies the proposal as one undoable edit, if the file did not change since the diff opened. */
  async accept(uri?: vscode.Uri): Promise<EditOutcome> {
    const p = this.activeProposal(uri);
    if (!p) return { done: false, message: 'There is no RecursiveMAS proposal to accept.' };
    const doc = await vscode.workspace.openTextDocument(p.target);
    if (doc.version !== p.version) {
      this.proposals.delete(p.id);
      await closeDiff(p.id);
      return { done: false, message: `${vscode.workspace.asRelativePath(doc.uri)} changed after the diff was opened, so nothing was written. Open the diff again from the panel.` };
    }
    const start = doc.offsetAt(p.range.start);
    const ok = await applyOne(doc, p.range, p.text, 'RecursiveMAS: accept proposal');
    this.proposals.delete(p.id);
    await closeDiff(p.id);
    // Closing the diff brings the file's own editor back: the cursor goes there too, and it gets the keyboard.
    if (ok) {
      const end = doc.positionAt(start + p.text.length);
      const editor = vscode.window.visibleTextEditors.find((e) => e.document === doc) ?? (await vscode.window.showTextDocument(doc, { preview: false }));
      await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
      placeCursor(doc, end);
    }
    return ok ? { done: true, message: `Applied the proposal to ${vscode.workspace.asRelativePath(doc.uri)}.` } : { done: false, message: 'VS Code refused the edit.' };
  }

  async discard(uri?: vscode.Uri): Promise<EditOutcome> {
    const p = this.activeProposal(uri);
    if (!p) return { done: false, message: 'There is no RecursiveMAS proposal to discard.' };
    this.proposals.delete(p.id);
    await closeDiff(p.id);
    return { done: true, message: 'Discarded the proposal; the file is unchanged.' };
  }

  dispose(): void {
    this.changed.dispose();
    this.proposals.clear();
  }
}

async function closeDiff(proposalUri: string): Promise<void> {
  for (const group of vscode.window.tabGroups.all) {
    for (const tab of group.tabs) {
      const input = tab.input;
      if (input instanceof vscode.TabInputTextDiff && input.modified.toString() === proposalUri) await vscode.window.tabGroups.close(tab);
    }
  }
}
