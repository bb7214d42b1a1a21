// Reading and writing the `recursivemas.*` settings through VS Code (the pure parts live in settings.ts).
import * as vscode from 'vscode';
import { readSettings, SECTION, type SettingIssue, type Settings } from './settings';

/** The settings now; read at every solve, so changes apply without a reload. Problems are logged. */
export function currentSettings(log?: vscode.LogOutputChannel): Settings {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const issues: SettingIssue[] = [];
  const s = readSettings((k) => cfg.get(k), issues);
  for (const i of issues) log?.warn(`setting ${i.key}: ${i.message}`);
  return s;
}

/** Writes a setting where it is currently defined (folder or workspace if set there, else user). */
export async function updateSetting(key: string, value: unknown): Promise<void> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const where = cfg.inspect(key);
  const target =
    where?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : where?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await cfg.update(key, value, target);
}
