// "RecursiveMAS: Download Models", "Select Team" and the Hugging Face token. Downloads are network
// work, not inference, so the ModelStore runs here in the extension host, behind a cancellable
// progress notification. The token lives in SecretStorage only, never in settings or logs.
import * as vscode from 'vscode';
import { ModelStore, type PullProgress } from '../runtime/store/store';
import { cudaPackage, installCudaSupport, nvidiaDriverPresent } from '../runtime/store/cuda-install';
import { DownloadError } from '../runtime/store/download';
import { ortBindingDirectory, probeCuda } from '../runtime/probes';
import { join } from 'node:path';
import { readPreset, teamRequirements } from '../engine/host';
import { currentSettings, updateSetting } from './config';
import type { Settings } from './settings';
import { listTeams, type TeamSummary } from './teams';
import { DEMO_TEAM } from './first-run';

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
    const precision = currentSettings().precision;
    const items = await Promise.all(
      teams.map(async (t) => ({
        label: t.name,
        description: `${await this.teamFacts(t, precision)}${t.name === current ? ' · current' : ''}`,
        detail: t.description,
        team: t,
      })),
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'RecursiveMAS: Select Team', placeHolder: `Now: ${current}`, matchOnDetail: true });
    if (!pick) return;
    await updateSetting('team', pick.team.name);
    this.log.info(`team set to ${pick.team.name}`);
    if (!pick.team.demo) {
      const missing = await this.missingRepos(pick.team);
      if (missing.length) {
        const a = await vscode.window.showInformationMessage(`Team ${pick.team.name} needs ${missing.length} model${missing.length > 1 ? 's' : ''} that are not downloaded yet.`, 'Download Models');
        if (a) await this.download(pick.team.name);
      }
    }
  }

  /** The line "Select Team" shows for a team: can it run, its scores, download size, memory at the precision, fit. */
  private async teamFacts(t: TeamSummary, choice: Settings['precision']): Promise<string> {
    if (t.demo) return 'demo, generated weights: runs offline, writes no useful code';
    try {
      const preset = await readPreset(join(this.presetsFolder(), `${t.name}.json`));
      // The runtime picks fp16 on a GPU for `auto`; this estimate cannot see the GPU, so it shows the CPU choice.
      const precision = choice === 'auto' ? 'int4' : choice;
      const r = await teamRequirements(preset, { precision, modelsDirectory: this.modelsDirectory() });
      if (r.blockers.length) return `cannot run yet: needs ${r.blockers.join(' and ')}`;
      const about = r.exact ? '' : '~';
      const scores = Object.entries(preset.reference).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
      return [
        scores,
        r.downloadBytes ? `${about}${formatBytes(r.downloadBytes)} download` : 'downloaded',
        `${about}${formatBytes(r.memoryBytes)} at ${precision}, ${r.fits ? 'fits' : `does not fit (${formatBytes(r.availableBytes)} free)`}`,
      ].filter(Boolean).join(' · ');
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** The team's repositories that are not completely downloaded. */
  async missingRepos(team: TeamSummary): Promise<string[]> {
    const store = this.store();
    const missing: string[] = [];
    for (const r of team.repos) if (!(await store.isComplete(r.repo).catch(() => false))) missing.push(r.repo);
    return missing;
  }

  /**
   * Downloads onnxruntime's CUDA provider for the bundled version and places it beside the binding;
   * the runtime is restarted so that `auto` finds CUDA from then on.
   */
  async installCuda(restartRuntime: () => Promise<void>): Promise<void> {
    if (!cudaPackage(process.platform, process.arch)) {
      void vscode.window.showInformationMessage(`CUDA support exists for Linux and Windows on x64; this is ${process.platform}-${process.arch}. RecursiveMAS runs on the CPU${process.platform === 'darwin' ? '' : ' or through WebGPU'} here.`);
      return;
    }
    if (!(await nvidiaDriverPresent())) {
      const go = await vscode.window.showWarningMessage('No NVIDIA driver was found on this machine, and CUDA needs one. Install the driver first, or install CUDA support anyway (it will not be used until a driver is there).', 'Install Anyway');
      if (!go) return;
    }
    const bindingDirectory = ortBindingDirectory();
    const downloadDirectory = vscode.Uri.joinPath(this.context.globalStorageUri, 'cuda').fsPath;
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'RecursiveMAS: installing CUDA support', cancellable: true },
        async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let shown = 0;
          return installCudaSupport({
            bindingDirectory,
            downloadDirectory,
            signal: controller.signal,
            onProgress: (p) => {
              const pct = p.total ? (100 * p.bytes) / p.total : 0;
              progress.report({ message: `onnxruntime CUDA provider ${formatBytes(p.bytes)}${p.total ? ` of ${formatBytes(p.total)}` : ''}`, increment: pct - shown });
              shown = pct;
            },
          });
        },
      );
      this.log.info(`CUDA provider ${result.packageId} ${result.version} installed in ${result.bindingDirectory}: ${result.installed.join(', ')}`);
      await restartRuntime();
      const probe = await probeCuda({ bindingDirectory });
      if (probe.available) {
        void vscode.window.showInformationMessage('CUDA support is installed: with the device setting on "auto", RecursiveMAS now runs on your NVIDIA GPU.');
      } else {
        void vscode.window.showWarningMessage(`CUDA support is installed, but CUDA cannot start yet: ${probe.reason} Install the CUDA 12 runtime and cuDNN 9 (see the README), then solve again.`);
      }
    } catch (e) {
      if (e instanceof DownloadError && e.code === 'cancelled') {
        void vscode.window.showInformationMessage('CUDA support was not installed (cancelled). Running it again resumes the download.');
        return;
      }
      throw e;
    }
  }

  private store(token?: string): ModelStore {
    const s = currentSettings();
    return new ModelStore({ modelsDirectory: this.modelsDirectory(), endpoint: s.huggingFaceEndpoint, token, env: { ...process.env, HF_TOKEN: undefined, HUGGING_FACE_HUB_TOKEN: undefined } });
  }

  /** Downloads every repository the team needs; already complete ones are checked, not fetched. */
  async download(teamName?: string, options: { confirmed?: boolean } = {}): Promise<boolean> {
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
    // A first-run choice that already named the team and its size is the confirmation.
    if (!options.confirmed) {
      const answer = await vscode.window.showInformationMessage(
        `Download the models of team ${team.name}?`,
        { modal: true, detail: `${team.description}\n\nFrom: ${currentSettings().huggingFaceEndpoint}\nTo: ${dir}\n\n${team.repos.map((r) => r.repo).join('\n')}` },
        'Download',
      );
      if (answer !== 'Download') return false;
    }
    const token = (await this.context.secrets.get(TOKEN_KEY)) || process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
    const store = this.store(token);
    this.log.info(`downloading ${team.repos.length} repositories for team ${team.name} into ${dir}${token ? ' (with a token)' : ''}`);
    // The progress closes before any message about the outcome: a failure must not leave it on screen.
    const failure = await vscode.window.withProgress(
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
            const onWait = () => progress.report({ message: `${r.repo}: waiting for another download of it (another window or a terminal) to finish…` });
            const result = await store.pull(r.repo, { files: r.files, revision: r.revision, signal: abort.signal, onProgress, onWait });
            this.log.info(`${r.repo}: ${result.files.length} files, ${formatBytes(result.downloadedBytes)} downloaded, ${result.reusedFiles.length} already present (commit ${result.commit})`);
          }
          void vscode.window.showInformationMessage(`Team ${team.name} is downloaded. Run "Solve with RecursiveMAS" to use it.`);
          return null;
        } catch (e) {
          const err = e as Error & { code?: string };
          if (err.code === 'cancelled' || abort.signal.aborted) {
            this.log.info('model download cancelled; finished files are kept, partial ones resume next time');
            void vscode.window.showInformationMessage('Model download cancelled. Files already finished are kept; the rest resumes next time.');
            return 'cancelled' as const;
          }
          return err;
        }
      },
    );
    if (failure === null) return true;
    if (failure === 'cancelled') return false;
    this.log.error(`model download failed: ${failure.message}`);
    // The first button is the fix: a token for a gated model, else trying again; the mirror setting and the demo team are the ways forward offline.
    const actions = failure.code === 'unauthorized' ? ['Set Hugging Face Token', 'Mirror and Folder Settings', 'Show Logs'] : ['Retry', 'Mirror and Folder Settings', 'Use the Offline Demo Team', 'Show Logs'];
    void vscode.window.showErrorMessage(`Downloading ${team.name} failed: ${failure.message}`, ...actions).then(async (a) => {
      if (a === 'Set Hugging Face Token') await this.setToken();
      else if (a === 'Retry') await this.download(team.name, { confirmed: true });
      else if (a === 'Mirror and Folder Settings') await vscode.commands.executeCommand('workbench.action.openSettings', '@id:recursivemas.huggingFace.endpoint,recursivemas.modelsDirectory');
      else if (a === 'Use the Offline Demo Team') await updateSetting('team', DEMO_TEAM);
      else if (a === 'Show Logs') this.log.show(true);
    });
    return false;
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
