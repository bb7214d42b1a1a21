// Entry point of the VS Code extension. Everything registered here is owned by the extension
// context and disposed on deactivation, which also stops the runtime process.
import * as vscode from 'vscode';
import { defaultModelsDirectory } from '../engine/paths';
import { currentSettings } from './config';
import { SolveController } from './controller';
import { ProposalProvider } from './editor';
import { Commands, PANEL_VIEW_TYPE, PROPOSAL_SCHEME } from './ids';
import { ModelCommands } from './models';
import { PanelHost } from './panel';
import { RuntimeHost } from './runtime-host';
import { StatusBar } from './status';
import { LiveDiffs } from './live-diff';
import { registerChat } from './chat';

let runtimeHost: RuntimeHost | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('RecursiveMAS', { log: true });
  // The same models folder as the CLI's, so a team pulled once serves both.
  const runtime = new RuntimeHost(vscode.Uri.joinPath(context.extensionUri, 'dist', 'runtime.mjs').fsPath, log, defaultModelsDirectory());
  runtimeHost = runtime;
  const panel = new PanelHost(context.extensionUri, log);
  const status = new StatusBar();
  const proposals = new ProposalProvider();
  const models = new ModelCommands(context, log, () => runtime.modelsDirectory(currentSettings()));
  const liveDiffs = new LiveDiffs(log, context.workspaceState, (level, message) => panel.post({ type: 'notice', level, message }));
  const controller = new SolveController(context, runtime, panel, status, proposals, log, models, liveDiffs);

  const guard =
    <A extends unknown[]>(name: string, fn: (...args: A) => unknown) =>
    async (...args: A) => {
      try {
        await fn(...args);
      } catch (e) {
        log.error(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        void vscode.window.showErrorMessage(`RecursiveMAS: ${name} failed: ${(e as Error).message}`, 'Show Logs').then((a) => a && log.show(true));
      }
    };

  // Not from a proposal's diff view: there the side-by-side proposal is the one meant.
  const liveDiffFor = (uri?: vscode.Uri) => ((uri ?? vscode.window.activeTextEditor?.document.uri)?.scheme === PROPOSAL_SCHEME ? undefined : liveDiffs.find(uri));

  const afterProposal = (r: { done: boolean; message: string }) => {
    panel.post({ type: 'notice', level: r.done ? 'info' : 'warning', message: r.message });
    if (!r.done) void vscode.window.showWarningMessage(r.message);
  };

  context.subscriptions.push(
    log,
    runtime,
    panel,
    status,
    proposals,
    liveDiffs,
    controller,
    ...registerChat(context, controller, log),
    vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, proposals),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel) => panel.restore(webviewPanel),
    }),
    panel.onDidOpen(() => void controller.warmUp()),
    vscode.commands.registerCommand(Commands.solve, guard('Solve', () => controller.solveCommand())),
    vscode.commands.registerCommand(Commands.cancel, guard('Cancel', () => controller.cancel())),
    vscode.commands.registerCommand(Commands.selectTeam, guard('Select Team', () => models.selectTeam())),
    vscode.commands.registerCommand(Commands.downloadModels, guard('Download Models', () => models.download())),
    vscode.commands.registerCommand(Commands.checkMachine, guard('Check This Machine', () => controller.checkMachine())),
    vscode.commands.registerCommand(Commands.downloadRecommendedTeam, guard('Download the Recommended Team', () => controller.downloadRecommended())),
    vscode.commands.registerCommand(Commands.tryDemo, guard('Start the Offline Demo', () => controller.tryDemo())),
    vscode.commands.registerCommand(Commands.showHistory, guard('Show Solve History', () => controller.showHistory())),
    vscode.commands.registerCommand(Commands.installCuda, guard('Install CUDA Support', () => models.installCuda(() => runtime.stop()))),
    vscode.commands.registerCommand(Commands.showLogs, () => log.show(true)),
    vscode.commands.registerCommand(Commands.showPanel, () => panel.show(false)),
    vscode.commands.registerCommand(Commands.setToken, guard('Set Hugging Face Token', () => models.setToken())),
    // In a file with a live inline diff they act on the whole of it; in a proposal's diff view, on that proposal.
    vscode.commands.registerCommand(Commands.acceptProposal, guard('Accept', async (uri?: vscode.Uri) => {
      const live = liveDiffFor(uri);
      if (live) await live.decideAll('accepted');
      else afterProposal(await proposals.accept(uri));
    })),
    vscode.commands.registerCommand(Commands.discardProposal, guard('Discard', async (uri?: vscode.Uri) => {
      const live = liveDiffFor(uri);
      if (live) await live.decideAll('discarded');
      else afterProposal(await proposals.discard(uri));
    })),
  );
  log.info(`RecursiveMAS ${(context.extension.packageJSON as { version: string }).version} activated (VS Code ${vscode.version}, ${process.platform}-${process.arch}, Node ${process.version})`);
}

export async function deactivate(): Promise<void> {
  // Stop the runtime before the extension host goes away, so no process is left behind.
  await runtimeHost?.stop();
  runtimeHost = undefined;
}
