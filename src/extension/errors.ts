// Turns a failed solve into what the panel shows: what happened, what to do, and the buttons that
// do it. No `vscode` here, so the mapping is unit-testable.
import { isUserErrorCode, type UserErrorCode } from '../protocol/errors';
import type { DeviceChoice } from '../protocol/events';
import type { Fix, PanelError } from '../protocol/webview';

interface ErrorLike {
  name?: string;
  message?: string;
  code?: string;
  action?: string;
  reason?: string;
}

export function isCancel(e: unknown): boolean {
  return (e as ErrorLike | undefined)?.name === 'CancelledError';
}

/** Every code the engine can raise has its buttons: a new code fails to compile until it is here. */
const USER_FIXES: Record<UserErrorCode, Fix[]> = {
  'model-missing': ['download-models', 'use-demo-team', 'models-settings', 'select-team'],
  'model-invalid': ['download-models', 'show-logs'],
  'device-unavailable': ['switch-device', 'show-logs'],
  'out-of-memory': ['select-team', 'switch-device'],
  'preset-invalid': ['select-team', 'show-logs'],
  'link-mismatch': ['select-team', 'show-logs'],
  unsupported: ['select-team', 'switch-device', 'show-logs'],
  'bad-input': ['open-settings', 'show-logs'],
};

/** The panel's error for a solve that threw `e` (not a cancel). */
export function panelErrorOf(e: unknown, device: DeviceChoice): PanelError {
  const err = (e ?? {}) as ErrorLike;
  const message = (err.message ?? String(e)).trim() || 'The solve failed without a message.';
  if (err.name === 'UserError') {
    const code = err.code ?? 'bad-input';
    const fixes: Fix[] = isUserErrorCode(code) ? USER_FIXES[code] : ['show-logs'];
    return { message, action: err.action, fixes };
  }
  if (err.name === 'RuntimeError') {
    const gpu = device !== 'cpu';
    switch (err.reason) {
      case 'crashed':
        return {
          message: firstParagraph(message),
          action: `The runtime restarts by itself; Retry runs the task again.${gpu ? ' If it keeps crashing, switch to the CPU.' : ''} The logs have the runtime's last output.`,
          fixes: ['retry', 'show-logs', ...(gpu ? (['switch-device'] as Fix[]) : [])],
        };
      case 'gave-up':
        return {
          message: firstParagraph(message),
          action: 'Look at the logs for the cause. Retry starts the runtime again.',
          fixes: ['show-logs', 'retry', ...(gpu ? (['switch-device'] as Fix[]) : [])],
        };
      case 'start-failed':
        return { message: firstParagraph(message), action: 'The logs show why the runtime did not start.', fixes: ['show-logs', 'retry'] };
      case 'stopped':
        return { message: firstParagraph(message), action: 'Retry starts it again.', fixes: ['retry'] };
      default:
        return { message: firstParagraph(message), action: 'The logs have details.', fixes: ['show-logs', 'retry'] };
    }
  }
  if (err.name === 'DownloadError') return { message, fixes: ['download-models', 'models-settings', 'use-demo-team', 'show-logs'] };
  return { message: firstParagraph(message), action: 'This looks like a bug; the logs have details.', fixes: ['show-logs', 'retry'] };
}

/** The message up to the quoted runtime output, which belongs in the logs, not the panel. */
function firstParagraph(s: string): string {
  const cut = s.search(/\n(Its last output:|It printed nothing\.)/);
  return (cut === -1 ? s : s.slice(0, cut)).trim();
}
