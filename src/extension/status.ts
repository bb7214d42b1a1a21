// The status-bar item: which team, which device, whether a solve is running (and where it is),
// and whether the runtime is healthy. Clicking it shows the panel.
import * as vscode from 'vscode';
import { Commands } from './ids';
import type { RuntimeStatus } from './runtime-host';

export interface SolveProgress {
  round: number;
  rounds: number;
  agent?: string;
  step?: number;
  steps?: number;
  decoding?: boolean;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('recursivemas.status', vscode.StatusBarAlignment.Right, 100);
  private team = '';
  private device = '';
  private plan = '';
  private runtime: RuntimeStatus = { state: 'stopped' };
  private progress: SolveProgress | null = null;
  private solving = false;

  constructor() {
    this.item.name = 'RecursiveMAS';
    this.item.command = Commands.showPanel;
    this.render();
    this.item.show();
  }

  setTeam(team: string, device: string): void {
    this.team = team;
    this.device = device;
    this.render();
  }

  /** The solve settings now in force, for the tooltip and the screen-reader label. */
  setPlan(rounds: number, latentSteps: number, mode: string): void {
    this.plan = `${rounds} rounds of ${latentSteps} latent steps, ${mode} mode`;
    this.render();
  }

  setRuntime(status: RuntimeStatus): void {
    this.runtime = status;
    this.render();
  }

  setSolving(solving: boolean, progress: SolveProgress | null = null): void {
    this.solving = solving;
    this.progress = progress;
    this.render();
  }

  private render(): void {
    const rt = this.runtime.state;
    let text: string;
    if (this.solving) {
      const p = this.progress;
      const where = !p || p.round === 0 ? 'loading' : p.decoding ? `round ${p.round}/${p.rounds} · writing` : `round ${p.round}/${p.rounds}${p.agent ? ` · ${p.agent}` : ''}`;
      text = `$(sync~spin) RecursiveMAS: ${where}`;
    } else if (rt === 'crashed' || (rt === 'stopped' && this.runtime.detail && this.runtime.detail !== 'disposed')) {
      text = `$(error) RecursiveMAS: runtime stopped`;
    } else {
      text = `$(hubot) RecursiveMAS${this.team ? `: ${this.team}` : ''}${this.device ? ` · ${this.device}` : ''}`;
    }
    this.item.text = text;
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendMarkdown(`**RecursiveMAS**\n\n`);
    tip.appendText(`Team: ${this.team || 'not chosen'}\nDevice: ${this.device || 'auto'}\nPlan: ${this.plan}\nRuntime: ${rt}${this.runtime.pid ? ` (pid ${this.runtime.pid})` : ''}\n`);
    if (this.runtime.detail && rt !== 'ready' && rt !== 'busy') tip.appendText(`\n${this.runtime.detail.split('\n')[0]}\n`);
    tip.appendMarkdown(`\nClick to show the panel.`);
    this.item.tooltip = tip;
    this.item.accessibilityInformation = { label: `${text.replace(/\$\([^)]*\)\s*/g, '')}; ${this.plan}; runtime ${rt}`, role: 'button' };
    this.item.backgroundColor = rt === 'crashed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
