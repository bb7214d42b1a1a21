// "RecursiveMAS: Download Models", "Select Team" and the Hugging Face token. Downloads are network
// work, not inference, so the ModelStore runs here in the extension host, behind a cancellable
// progress notification. The token lives in SecretStorage only, never in settings or logs.
import * as vscode from 'vscode';
import { ModelStore, type PullProgress } from '../runtime/models/store';
import { currentSettings, updateSetting } from './config';
import { listTeams, type TeamSummary } from './teams';

const TOKEN_KEY = 'recursivemas.huggingFaceToken';

function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${n.toFixed(n >= 100 || u === 0 ? 0 : 1)} ${units[u]}`;
}

export class ModelCommands {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly modelsDirectory: () => string,
  ) {}

  private presetsFolder(): string {
    return vscode.Uri.joinPath(this.context.extensionUri, 'models').fsPath;
  }

  async teams(): Promise<TeamSummary[]> {
    return listTeams(this.presetsFolder());
  }

  async selectTeam(): Promise<void> {
    const teams = await this.teams();
    const current = currentSettings().team;
    if (teams.length === 0) {
      void vscode.window.showErrorMessage(`No team presets were found in ${this.presetsFolder()}. Reinstall the extension.`);
      return;
    }
    const pick = await vscode.window.showQuickPick(
      teams.map((t) => ({
        label: t.name,
        description: `${t.demo ? 'demo, generated weights' : `${t.repos.length} ${t.repos.length === 1 ? 'repository' : 'repositories'} to download`}${t.name === current ? ' · current' : ''}`,
        detail: t.description,
        team: t,
      })),
      { title: 'RecursiveMAS: Select Team', placeHolder: `Now: ${current}`, matchOnDetail: true },
    );
    if (!pick) return;
    await updateSetting('team', pick.team.name);
    this.log.info(`team set to ${pick.team.name}`);
    if (!pick.team.demo) {
      const store = this.store();
      const missing: string[] = [];
      for (const r of pick.team.repos) if (!(await store.isComplete(r.repo).catch(() => false))) missing.push(r.repo);
      if (missing.length) {
        const a = await vscode.window.showInformationMessage(`Team ${pick.team.name} needs ${missing.length} model${missing.length > 1 ? 's' : ''} that are not downloaded yet.`, 'Download Models');
        if (a) await this.download(pick.team.name);
      }
    }
  }

  private store(token?: string): ModelStore {
    const s = currentSettings();
    return new ModelStore({ modelsDirectory: this.modelsDirectory(), endpoint: s.huggingFaceEndpoint, token, env: { ...process.env, HF_TOKEN: undefined, HUGGING_FACE_HUB_TOKEN: undefined } });
  }

  /** Downloads every repository the team needs; already complete ones are checked, not fetched. */
  async download(teamName?: string): Promise<boolean> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('RecursiveMAS does not download models in an untrusted workspace: the workspace settings could choose the endpoint and the folder. Trust the workspace first.', 'Manage Workspace Trust').then((a) => a && vscode.commands.executeCommand('workbench.trust.manage'));
      return false;
    }
    const name = teamName ?? currentSettings().team;
    const team = (await this.teams()).find((t) => t.name === name);
    if (!team) {
      void vscode.window.showErrorMessage(`There is no team preset named "${name}". Pick one with "RecursiveMAS: Select Team".`, 'Select Team').then((a) => a && this.selectTeam());
      return false;
    }
    if (team.demo || team.repos.length === 0) {
      void vscode.window.showInformationMessage(`Team ${team.name} uses generated weights: there is nothing to download.`);
      return true;
    }
    const dir = this.modelsDirectory();
    const answer = await vscode.window.showInformationMessage(
      `Download the models of team ${team.name}?`,
      { modal: true, detail: `${team.description}\n\nFrom: ${currentSettings().huggingFaceEndpoint}\nTo: ${dir}\n\n${team.repos.map((r) => r.repo).join('\n')}` },
      'Download',
    );
    if (answer !== 'Download') return false;
    const token = (await this.context.secrets.get(TOKEN_KEY)) || process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
    const store = this.store(token);
    this.log.info(`downloading ${team.repos.length} repositories for team ${team.name} into ${dir}${token ? ' (with a token)' : ''}`);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `RecursiveMAS: downloading ${team.name}`, cancellable: true },
      async (progress, cancel) => {
        const abort = new AbortController();
        cancel.onCancellationRequested(() => abort.abort());
        let reported = 0;
        try {
          for (const [i, r] of team.repos.entries()) {
            const share = 100 / team.repos.length;
            progress.report({ message: `${r.repo} (${i + 1} of ${team.repos.length}): listing files…` });
            const onProgress = (p: PullProgress) => {
              const frac = p.total > 0 ? p.bytes / p.total : 0;
              const target = i * share + frac * share;
              const inc = Math.max(0, target - reported);
              reported += inc;
              const eta = Number.isFinite(p.etaS) ? `, ${Math.ceil(p.etaS)} s left` : '';
              progress.report({ increment: inc, message: `${r.repo} (${i + 1}/${team.repos.length}): ${formatBytes(p.bytes)} of ${formatBytes(p.total)}${eta}` });
            };
            const result = await store.pull(r.repo, { files: r.files, revision: r.revision, signal: abort.signal, onProgress });
            this.log.info(`${r.repo}: ${result.files.length} files, ${formatBytes(result.downloadedBytes)} downloaded, ${result.reusedFiles.length} already present (commit ${result.commit})`);
          }
          void vscode.window.showInformationMessage(`Team ${team.name} is downloaded. Run "Solve with RecursiveMAS" to use it.`);
          return true;
        } catch (e) {
          const err = e as Error & { code?: string };
          if (err.code === 'cancelled' || abort.signal.aborted) {
            this.log.info('model download cancelled; finished files are kept, partial ones resume next time');
            void vscode.window.showInformationMessage('Model download cancelled. Files already finished are kept; the rest resumes next time.');
            return false;
          }
          this.log.error(`model download failed: ${err.message}`);
          const actions = err.code === 'unauthorized' ? ['Set Hugging Face Token', 'Show Logs'] : ['Retry', 'Show Logs'];
          const a = await vscode.window.showErrorMessage(`Downloading ${team.name} failed: ${err.message}`, ...actions);
          if (a === 'Set Hugging Face Token') await this.setToken();
          else if (a === 'Retry') return this.download(team.name);
          else if (a === 'Show Logs') this.log.show(true);
          return false;
        }
      },
    );
  }

  async setToken(): Promise<void> {
    const has = !!(await this.context.secrets.get(TOKEN_KEY));
    const value = await vscode.window.showInputBox({
      title: 'RecursiveMAS: Hugging Face token',
      prompt: `Used only to download gated or private models; kept in VS Code's secret storage.${has ? ' Leave empty to remove the stored token.' : ''}`,
      password: true,
      ignoreFocusOut: true,
      validateInput: (v) => (/[\s]/.test(v.trim()) ? 'A token is one word without spaces.' : undefined),
    });
    if (value === undefined) return;
    if (value.trim() === '') {
      await this.context.secrets.delete(TOKEN_KEY);
      void vscode.window.showInformationMessage('The Hugging Face token was removed.');
      return;
    }
    await this.context.secrets.store(TOKEN_KEY, value.trim());
    this.log.info('a Hugging Face token was stored in secret storage');
    void vscode.window.showInformationMessage('The Hugging Face token is stored in secret storage.');
  }
}
