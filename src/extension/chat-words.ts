// What the chat view says while the team works, in plain words: one line per round (who passed
// what to whom) and a short progress line per step. No `vscode` here, so unit tests run it.
import type { SolveEvent } from '../protocol/events';

/** The words of one round for people: who passed what to whom. */
export class RoundNarrator {
  private passes: string[] = [];

  /** A line to show when `event` completes something worth a line, else undefined. */
  line(event: SolveEvent): string | undefined {
    switch (event.type) {
      case 'round-start':
        this.passes = [];
        return undefined;
      case 'handoff': {
        const what = event.text !== undefined ? `a ${event.text.length}-character message` : `${event.vectors} thought vector${event.vectors === 1 ? '' : 's'}`;
        this.passes.push(`the ${event.from} passed ${what} to the ${event.to}`);
        return undefined;
      }
      case 'round-end': {
        const did = this.passes.length > 0 ? this.passes.join(', ') : 'the team thought it over';
        this.passes = [];
        return `round ${event.round}: ${did} (${(event.ms / 1000).toFixed(1)} s)`;
      }
      default:
        return undefined;
    }
  }
}

/** What the chat shows while a solve runs, as one short progress line. */
export function progressLine(event: SolveEvent): string | undefined {
  switch (event.type) {
    case 'team-loading':
      return `loading model ${event.index + 1} of ${event.count}`;
    case 'round-start':
      return `round ${event.round} of ${event.rounds}`;
    case 'agent-start':
      return event.action === 'decode' ? `round ${event.round}: the ${event.agent} is writing the code` : `round ${event.round}: the ${event.agent} (${event.role}) is thinking`;
    case 'retry':
      return 'the answer had no code block: asking for the code alone';
    case 'check-start':
      return `checking candidate ${event.candidate}`;
    default:
      return undefined;
  }
}
