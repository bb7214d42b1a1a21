// Hosts the webview panel: creates or restores it, serves the HTML shell, validates every message
// the webview sends, and keeps the current solve's transcript (session, events, end) so a webview
// that was hidden (its context is dropped) or reloaded can be brought up to date on `ready`.
import * as vscode from 'vscode';
import type { HostMessage, WebviewMessage } from '../protocol/webview';
import { checkWebviewMessage } from '../protocol/webview';
import { PANEL_TITLE, PANEL_VIEW_TYPE } from './ids';
import { panelHtml } from './panel-html';

export class PanelHost implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private panelDisposables: vscode.Disposable[] = [];
  /** The current solve: its session message, its events, and its end once it ended. */
  private transcript: HostMessage[] = [];
  private runtimeMessage?: HostMessage;
  private readonly messageEmitter = new vscode.EventEmitter<WebviewMessage>();
  /** Valid messages from the webview. */
  readonly onMessage = this.messageEmitter.event;
  private readonly openEmitter = new vscode.EventEmitter<void>();
  /** Fired when a panel is created or restored. */
  readonly onDidOpen = this.openEmitter.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  /** Shows the panel beside the editor, creating it if needed. */
  show(preserveFocus = true): void {
    if (this.panel) {
      this.panel.reveal(undefined, preserveFocus);
      return;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, PANEL_TITLE, { viewColumn: vscode.ViewColumn.Beside, preserveFocus }, this.webviewOptions());
    this.attach(panel);
  }

  /** Takes over a panel VS Code restored after a window reload (WebviewPanelSerializer). */
  restore(panel: vscode.WebviewPanel): void {
    this.attach(panel);
  }

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      enableFindWidget: true,
      // The webview saves its own state; dropping the hidden context saves memory.
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
  }

  private attach(panel: vscode.WebviewPanel): void {
    if (this.panel && this.panel !== panel) this.panel.dispose();
    this.panel = panel;
    panel.webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    panel.webview.html = panelHtml({
      cspSource: panel.webview.cspSource,
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString(),
      title: PANEL_TITLE,
    });
    this.panelDisposables = [
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => {
        if (this.panel === panel) this.panel = undefined;
        for (const d of this.panelDisposables.splice(0)) d.dispose();
      }),
    ];
    this.openEmitter.fire();
  }

  private receive(raw: unknown): void {
    const checked = checkWebviewMessage(raw);
    if (!checked.ok) {
      this.log.warn(`panel: ignored a malformed message from the webview: ${checked.error}`);
      return;
    }
    const msg = checked.value;
    if (msg.type === 'ready') {
      this.log.debug(`panel: webview ready (has ${msg.solveId ?? 'nothing'} up to ${msg.lastSeq})`);
      this.replay(msg.solveId, msg.lastSeq);
    }
    else if (msg.type === 'error') this.log.warn(`panel: ${msg.message}`);
    this.messageEmitter.fire(msg);
  }

  /** Brings a (re)loaded webview up to date: only what it does not have yet. */
  private replay(solveId: string | null, lastSeq: number): void {
    if (this.runtimeMessage) this.deliver(this.runtimeMessage);
    const session = this.transcript[0];
    if (!session || session.type !== 'session') return;
    const same = session.session.id === solveId;
    for (const m of this.transcript) {
      if (same && m.type === 'event' && m.seq <= lastSeq) continue;
      this.deliver(m);
    }
  }

  /** Sends a message to the webview, recording solve messages for later replay. */
  post(msg: HostMessage): void {
    if (msg.type === 'session') this.transcript = [msg];
    else if (msg.type === 'event' || msg.type === 'end' || msg.type === 'settings-changed') {
      const session = this.transcript[0];
      if (msg.type === 'settings-changed') {
        if (session?.type === 'session') this.transcript.push(msg);
      } else if (session?.type === 'session' && session.session.id === msg.id) this.transcript.push(msg);
    } else if (msg.type === 'runtime') this.runtimeMessage = msg;
    this.deliver(msg);
  }

  private deliver(msg: HostMessage): void {
    // A hidden webview has no context; it asks for a replay when it is shown again.
    if (!this.panel?.visible) return;
    void this.panel.webview.postMessage(msg).then(undefined, (e: Error) => this.log.debug(`panel: postMessage failed: ${e.message}`));
  }

  dispose(): void {
    this.panel?.dispose();
    this.messageEmitter.dispose();
    this.openEmitter.dispose();
  }
}
