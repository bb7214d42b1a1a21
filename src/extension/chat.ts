// The team in VS Code's chat: the `@recursivemas` participant runs a solve from the chat view and
// streams the rounds and the code there, and a language model provider lets the team be picked as
// a model (where this VS Code has that API, 1.104 and later). Both go through the controller, so
// they are gated like the command (a trusted workspace, a team on disk or the demo team).
import * as vscode from 'vscode';
import type { SolveEvent } from '../protocol/events';
import type { SolveController } from './controller';
import { isCancel, panelErrorOf } from './errors';
import { CHAT_PARTICIPANT_ID, LANGUAGE_MODEL_VENDOR } from './ids';
import { codeOfAnswer, linesLabel } from './insertion';
import { currentSettings } from './config';
import { solveLanguage } from './task';
import { progressLine, RoundNarrator } from './chat-words';

/** The text parts of a chat message's content (other parts, such as tool calls, carry no task). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => (part && typeof part === 'object' && typeof (part as { value?: unknown }).value === 'string' ? (part as { value: string }).value : ''))
    .join('');
}

function fence(code: string, language: string): string {
  const longest = Math.max(2, ...(code.match(/`+/g) ?? []).map((m) => m.length));
  const ticks = '`'.repeat(longest + 1);
  return `${ticks}${language}\n${code}\n${ticks}\n`;
}

function chatHandler(controller: SolveController, log: vscode.LogOutputChannel): vscode.ChatRequestHandler {
  return async (request, _context, stream, token) => {
    const task = request.prompt.trim();
    if (!task) {
      stream.markdown('Tell the team what to write, for example: `@recursivemas write a function that merges overlapping intervals`.');
      return {};
    }
    if (!vscode.workspace.isTrusted) {
      stream.markdown('RecursiveMAS does not solve tasks in an untrusted workspace: trust the workspace to use it.');
      stream.button({ command: 'workbench.trust.manage', title: 'Manage Workspace Trust' });
      return {};
    }
    const editor = vscode.window.activeTextEditor;
    const language = solveLanguage(editor?.document.languageId);
    const narrator = new RoundNarrator();
    let announced = false;
    stream.progress('starting the team');
    const onEvent = (event: SolveEvent) => {
      if (token.isCancellationRequested) return;
      if (event.type === 'team-loaded' && !announced) {
        announced = true;
        const team = event.agents.map((a) => (a.name === a.role ? a.name : `${a.name} (${a.role})`)).join(' → ');
        stream.markdown(`Team **${event.team}** on ${event.device}: ${team}\n\n`);
        return;
      }
      if (event.type === 'warning') {
        stream.markdown(`> ${event.message}\n\n`);
        return;
      }
      const line = narrator.line(event);
      if (line) stream.markdown(`- ${line}\n`);
      const progress = progressLine(event);
      if (progress) stream.progress(progress);
    };
    try {
      const done = await controller.solveFor({ task, language }, onEvent, token);
      if (!done) {
        stream.markdown('No solve ran: pick a team with "RecursiveMAS: Select Team" or start the offline demo team.');
        stream.button({ command: 'recursivemas.tryDemo', title: 'Start the Offline Demo' });
        return {};
      }
      const { result, settings } = done;
      const code = codeOfAnswer({ text: result.answer, code: result.code });
      const m = result.metrics;
      stream.markdown(`\n**Answer** (${linesLabel(code)} of ${result.language}):\n\n`);
      stream.markdown(fence(code, result.language));
      const steps = settings.mode === 'latent' ? `, ${m.latentSteps} latent steps` : '';
      stream.markdown(`\n${result.rounds} round${result.rounds === 1 ? '' : 's'}${steps}, ${m.textTokens} tokens written, ${(m.wallMs / 1000).toFixed(1)} s on ${result.device}.`);
      if (settings.team.startsWith('demo-')) stream.markdown(` ${settings.team} is a demo team with generated weights: it shows the team at work but writes no useful code.`);
      return { metadata: { team: settings.team } };
    } catch (e) {
      if (isCancel(e) || token.isCancellationRequested) {
        stream.markdown('\n\nCancelled.');
        return {};
      }
      const error = panelErrorOf(e, currentSettings().device);
      log.error(`chat solve failed: ${(e as Error)?.message ?? e}`);
      return { errorDetails: { message: error.action ? `${error.message} ${error.action}` : error.message } };
    }
  };
}

// The language model provider API is in VS Code 1.104 and later; @types/vscode here is 1.90, so the
// few shapes used are declared here and the provider is registered only where the function exists.
interface ModelInformation {
  id: string;
  name: string;
  family: string;
  version: string;
  maxInputTokens: number;
  maxOutputTokens: number;
  tooltip?: string;
  detail?: string;
  /** Listed in the chat's model picker (VS Code reads it from the information it is given). */
  isUserSelectable?: boolean;
  capabilities: Record<string, unknown>;
}
interface ChatRequestMessageLike {
  role: number;
  content: readonly unknown[];
}
interface ModelProvider {
  provideLanguageModelChatInformation(options: { silent: boolean }, token: vscode.CancellationToken): ModelInformation[];
  provideLanguageModelChatResponse(model: ModelInformation, messages: readonly ChatRequestMessageLike[], options: unknown, progress: vscode.Progress<unknown>, token: vscode.CancellationToken): Promise<void>;
  provideTokenCount(model: ModelInformation, text: string | ChatRequestMessageLike, token: vscode.CancellationToken): Promise<number>;
}
type RegisterProvider = (vendor: string, provider: ModelProvider) => vscode.Disposable;
type TextPartConstructor = new (value: string) => unknown;

/** User messages carry the task; role 1 is the user in VS Code's LanguageModelChatMessageRole. */
const USER_ROLE = 1;

function modelProvider(controller: SolveController, TextPart: TextPartConstructor): ModelProvider {
  return {
    provideLanguageModelChatInformation: () => {
      if (!vscode.workspace.isTrusted) return [];
      const s = currentSettings();
      return [
        {
          id: 'team',
          name: `RecursiveMAS (${s.team})`,
          family: 'recursivemas',
          version: '1',
          maxInputTokens: 8192,
          maxOutputTokens: s.maxNewTokens,
          tooltip: `The local team ${s.team}: ${s.rounds} rounds, ${s.mode} mode, on this machine.`,
          detail: 'local team',
          isUserSelectable: true,
          // Without Copilot, VS Code's chat has one mode, Agent, whose model picker lists only models
          // that take tools; with no model picked it refuses even @recursivemas ("Language model
          // unavailable"). The team declares tools and answers in text, calling none.
          capabilities: { toolCalling: true },
        },
      ];
    },
    provideLanguageModelChatResponse: async (_model, messages, _options, progress, token) => {
      const task = [...messages].reverse().find((m) => m.role === USER_ROLE);
      const text = task ? textOf(task.content).trim() : '';
      if (!text) throw new Error('RecursiveMAS needs a task: write what the code should do.');
      let writing = false;
      const done = await controller.solveFor(
        { task: text, language: solveLanguage(vscode.window.activeTextEditor?.document.languageId) },
        (event) => {
          if (event.type === 'agent-start') writing = event.action === 'decode';
          else if (event.type === 'retry') {
            writing = true;
            progress.report(new TextPart('\n\n'));
          } else if (event.type === 'token' && writing) progress.report(new TextPart(event.text));
        },
        token,
      );
      if (!done) throw new Error('RecursiveMAS did not solve: trust the workspace and pick a team ("RecursiveMAS: Select Team") or start the offline demo.');
    },
    provideTokenCount: async (_model, text) => Math.ceil((typeof text === 'string' ? text : textOf(text.content)).length / 4),
  };
}

export function registerChat(context: vscode.ExtensionContext, controller: SolveController, log: vscode.LogOutputChannel): vscode.Disposable[] {
  const out: vscode.Disposable[] = [];
  // The chat API is in every VS Code this extension supports; a host without it (some forks) just lacks the chat.
  if (typeof vscode.chat?.createChatParticipant === 'function') {
    const participant = vscode.chat.createChatParticipant(CHAT_PARTICIPANT_ID, chatHandler(controller, log));
    participant.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
    out.push(participant);
  }
  const lm = vscode.lm as unknown as { registerLanguageModelChatProvider?: RegisterProvider };
  const TextPart = (vscode as unknown as { LanguageModelTextPart?: TextPartConstructor }).LanguageModelTextPart;
  if (typeof lm.registerLanguageModelChatProvider === 'function' && TextPart) {
    try {
      out.push(lm.registerLanguageModelChatProvider(LANGUAGE_MODEL_VENDOR, modelProvider(controller, TextPart)));
      log.info('the team is offered as a language model in VS Code\'s chat');
      // VS Code asks a provider for its models only when someone selects them: without this the
      // chat's model picker would not list the team until a first request had failed.
      vscode.lm.selectChatModels({ vendor: LANGUAGE_MODEL_VENDOR }).then(
        (models) => log.info(`language models offered: ${models.map((m) => m.name).join(', ') || 'none'}`),
        (e: Error) => log.warn(`listing the team as a language model failed: ${e.message}`),
      );
    } catch (e) {
      log.warn(`language model provider not registered: ${(e as Error).message}`);
    }
  }
  return out;
}
