// How the CLI shows an error: one line, a stack only when asked for.
import { UserError } from '../engine/index';

/** `--debug` anywhere, or RECURSIVEMAS_DEBUG=1: errors that are not the user's show their stack. */
export function debugRequested(argv: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return argv.includes('--debug') || (env.RECURSIVEMAS_DEBUG !== undefined && !['', '0', 'false'].includes(env.RECURSIVEMAS_DEBUG));
}

/**
 * One line for anything thrown: a UserError's message and action; for anything else its first
 * line, since it is our bug or the system's and a stack helps nobody but a developer (--debug).
 */
export function errorLine(e: unknown, debug: boolean): string {
  if (e instanceof UserError) return `error: ${oneLine(e.message)}${e.action ? ` ${oneLine(e.action)}` : ''}`;
  const err = e as Error | undefined;
  if (debug) return `error: ${err?.stack ?? String(e)}`;
  const first = (err?.message ?? String(e)).split('\n')[0]!.trim() || String(err?.name ?? 'unknown error');
  const known = err?.name === 'DownloadError' || err?.name === 'RuntimeError' || err?.name === 'CancelledError';
  return `error: ${first}${known ? '' : ' (an internal error: run again with --debug for details, and report it)'}`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
