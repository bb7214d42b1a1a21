// Whether and how a solve checks its candidates: the configured command or the checks found in the
// task, only in a trusted workspace and only after the user allowed them once for this workspace
// (remembered per command in workspaceState). The checks themselves run in the runtime process.
import * as vscode from 'vscode';
import { describeChecks, findChecks, isolationAvailable } from '../engine/host';
import type { VerifyParams } from '../protocol/rpc';
import { LIMITS } from '../protocol/limits';
import type { SolveTarget } from './editor';
import type { Settings } from './settings';

const PERMISSIONS_KEY = 'recursivemas.verify.permissions';
/** The permission key for checks found in the task (a configured command is its own key). */
const FOUND_CHECKS = '<checks found in the task>';

type Permission = 'allowed' | 'denied';

export interface VerifyTask {
  task: string;
  language: string;
  target?: SolveTarget;
}

/** The verify parameters of a solve, or undefined when it runs no checks (none found, not allowed, untrusted). */
export async function verifyParamsFor(t: VerifyTask, settings: Settings, state: vscode.Memento, log: vscode.LogOutputChannel): Promise<VerifyParams | undefined> {
  if (!vscode.workspace.isTrusted) return undefined;
  const command = settings.verifyCommand.trim();
  const selection = t.target?.selectedText.trim() ? t.target.selectedText : undefined;
  const checks = findChecks({ task: t.task, language: t.language, selection, command, findChecks: true });
  if (checks.length === 0) return undefined;
  const key = command || FOUND_CHECKS;
  const permissions = state.get<Record<string, Permission>>(PERMISSIONS_KEY, {});
  if (permissions[key] === 'denied') {
    log.info(`checks not run: ${key} is not allowed in this workspace`);
    return undefined;
  }
  if (permissions[key] !== 'allowed') {
    const what = command ? `"${command}"` : describeChecks(checks);
    const allow = 'Allow';
    const never = 'Not in This Workspace';
    const answer = await vscode.window.showWarningMessage(
      `Allow RecursiveMAS to run ${what} on candidates in this workspace?`,
      {
        modal: true,
        detail: `Each candidate is placed into a temporary copy of your file${command ? ' (and of the workspace folder the command runs in)' : ''}; your files are not changed until you insert the code. ${isolationAvailable().note}`,
      },
      allow,
      never,
    );
    if (answer === never) await state.update(PERMISSIONS_KEY, { ...permissions, [key]: 'denied' });
    if (answer !== allow) return undefined;
    await state.update(PERMISSIONS_KEY, { ...permissions, [key]: 'allowed' });
  }
  const params: VerifyParams = { findChecks: true, maxRepairs: settings.verifyMaxRepairs };
  if (command) params.command = command;
  if (selection) params.selection = selection.slice(0, LIMITS.taskChars);
  const uri = t.target ? vscode.Uri.parse(t.target.uri) : undefined;
  const folder = (uri && vscode.workspace.getWorkspaceFolder(uri)) ?? vscode.workspace.workspaceFolders?.[0];
  if (folder?.uri.scheme === 'file') params.root = folder.uri.fsPath;
  const doc = uri && vscode.workspace.textDocuments.find((d) => d.uri.toString() === t.target!.uri);
  if (doc && doc.uri.scheme === 'file' && t.target && doc.getText().length <= LIMITS.contextChars) {
    // The candidate takes the selection's place, or goes in at the cursor: where Insert would put it.
    const hasSelection = t.target.selectionEnd > t.target.selectionStart;
    const start = hasSelection ? t.target.selectionStart : t.target.cursor;
    params.file = { path: doc.uri.fsPath, text: doc.getText(), start, end: hasSelection ? t.target.selectionEnd : start };
  }
  return params;
}
