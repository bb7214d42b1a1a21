// Owns the runtime process for the extension: creates the RuntimeSupervisor on first use, routes
// its log to the LogOutputChannel, and replaces it when a setting that the process was started
// with (device, threads, models folder) changes. Inference never runs in this process.
import * as vscode from 'vscode';
import { RuntimeSupervisor, type RuntimeState, type StateChange } from '../runtime/client/supervisor';
import type { Settings } from './settings';

export interface RuntimeStatus extends StateChange {
  pid?: number;
}

export class RuntimeHost implements vscode.Disposable {
  private supervisor?: RuntimeSupervisor;
  private key?: string;
  private subscriptions: { dispose(): void }[] = [];
  private readonly stateEmitter = new vscode.EventEmitter<RuntimeStatus>();
  readonly onDidChangeState = this.stateEmitter.event;
  private last: RuntimeStatus = { state: 'stopped' };

  constructor(
    private readonly runtimeEntry: string,
    private readonly log: vscode.LogOutputChannel,
    private readonly defaultModelsDirectory: string,
  ) {}

  get status(): RuntimeStatus {
    return this.last;
  }

  get current(): RuntimeSupervisor | undefined {
    return this.supervisor;
  }

  modelsDirectory(settings: Settings): string {
    return settings.modelsDirectory || this.defaultModelsDirectory;
  }

  private keyOf(settings: Settings): string {
    return JSON.stringify([settings.device, settings.threads, this.modelsDirectory(settings)]);
  }

  /** True when the running process was started with other device/threads/models settings. */
  isStale(settings: Settings): boolean {
    return this.supervisor !== undefined && this.key !== this.keyOf(settings);
  }

  /** The supervisor for these settings, replacing one started with different process settings. */
  async ensure(settings: Settings): Promise<RuntimeSupervisor> {
    if (this.supervisor && this.isStale(settings)) {
      this.log.info('runtime settings changed (device, threads or models folder): restarting the runtime');
      await this.stop();
    }
    if (!this.supervisor) {
      this.key = this.keyOf(settings);
      const s = new RuntimeSupervisor({
        runtimeEntry: this.runtimeEntry,
        clientName: 'vscode',
        threads: settings.threads > 0 ? settings.threads : undefined,
        modelsDirectory: this.modelsDirectory(settings),
        // Inherit the environment minus the token: the runtime never downloads.
        env: { HF_TOKEN: undefined, HUGGING_FACE_HUB_TOKEN: undefined },
      });
      this.supervisor = s;
      this.subscriptions = [
        s.onLog((entry) => {
          const text = `[${entry.source}] ${entry.message}`;
          if (entry.level === 'error') this.log.error(text);
          else if (entry.level === 'warn') this.log.warn(text);
          else if (entry.level === 'debug') this.log.debug(text);
          else if (entry.level === 'trace') this.log.trace(text);
          else this.log.info(text);
        }),
        s.onStateChange((change) => {
          if (this.supervisor !== s) return;
          this.last = { ...change, pid: s.pid };
          this.log.info(`runtime ${change.state}${s.pid ? ` (pid ${s.pid})` : ''}${change.detail ? `: ${firstLine(change.detail)}` : ''}`);
          this.stateEmitter.fire(this.last);
        }),
      ];
    }
    return this.supervisor;
  }

  /** Stops the process; the next `ensure` starts a fresh one. */
  async stop(): Promise<void> {
    const s = this.supervisor;
    if (!s) return;
    this.supervisor = undefined;
    this.key = undefined;
    for (const d of this.subscriptions.splice(0)) d.dispose();
    await s.dispose().catch((e: Error) => this.log.warn(`stopping the runtime: ${e.message}`));
    this.last = { state: 'stopped' };
    this.stateEmitter.fire(this.last);
  }

  get state(): RuntimeState {
    return this.last.state;
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
  }
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i === -1 ? s : `${s.slice(0, i)} …`;
}
