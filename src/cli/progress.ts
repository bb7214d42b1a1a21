// What the CLI shows while a team works or a model downloads. On a terminal one status line is
// redrawn in place (latent steps, tokens, bytes) under the lines that stay; elsewhere only the lines
// that stay are written, so logs and pipes read cleanly.
import type { SolveEvent, SolveResult } from '../protocol/events';
import { formatBytes } from '../engine/index';

export { formatBytes };

export interface ProgressOptions {
  write: (text: string) => void;
  /** Redraw a status line in place (a terminal). */
  live: boolean;
  color?: boolean;
  /** Minimum time between two redraws of the status line. */
  redrawMs?: number;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

function bar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** A status line redrawn in place on a terminal, with lines that stay written above it. */
class LiveArea {
  private status = '';
  private shown = false;
  private lastDraw = 0;
  constructor(private readonly o: ProgressOptions) {}

  line(text: string): void {
    if (this.o.live && this.shown) this.o.write('\r\x1b[K');
    this.o.write(`${text}\n`);
    this.shown = false;
    if (this.o.live && this.status) this.draw(true);
  }

  setStatus(text: string, force = false): void {
    this.status = text;
    if (this.o.live) this.draw(force);
  }

  private draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < (this.o.redrawMs ?? 50)) return;
    this.lastDraw = now;
    const width = Math.max(20, (process.stderr.columns || 100) - 1);
    const text = this.status.length > width ? `${this.status.slice(0, width - 3)}...` : this.status;
    this.o.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  clear(): void {
    this.status = '';
    if (this.o.live && this.shown) this.o.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Turns a solve's event stream into progress lines. */
export class SolveProgress {
  private readonly area: LiveArea;
  private readonly paint: (code: string, text: string) => string;
  private tokens = 0;
  private rounds = 0;

  constructor(private readonly o: ProgressOptions) {
    this.area = new LiveArea(o);
    this.paint = o.color ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_, text) => text;
  }

  private dim(t: string) {
    return this.paint('2', t);
  }

  event(e: SolveEvent): void {
    const a = this.area;
    switch (e.type) {
      case 'team-loading':
        if (this.o.live) a.setStatus(`loading team ${e.team}: model ${e.model} (${e.index + 1}/${e.count})`, true);
        else a.line(`loading team ${e.team}: model ${e.model} (${e.index + 1}/${e.count})`);
        break;
      case 'team-loaded':
        a.setStatus('');
        a.line(`${this.paint('32', 'team')} ${e.team} loaded on ${e.device} at ${e.precision} in ${formatDuration(e.ms)}: ${e.agents.map((x) => `${x.name} (${x.role}, ${x.model})`).join(', ')}`);
        break;
      case 'solve-start':
        a.line(`solving in ${e.language || 'any language'}: ${e.mode} mode, ${e.style} team, ${e.rounds} round${e.rounds === 1 ? '' : 's'}${e.mode === 'latent' ? ` x ${e.latentSteps} latent steps` : ''}`);
        break;
      case 'round-start':
        this.rounds = e.rounds;
        a.line(this.paint('1', `round ${e.round}/${e.rounds}`));
        break;
      case 'agent-start':
        this.tokens = 0;
        a.setStatus(`  ${e.agent} (${e.role}) ${e.action === 'latent' ? 'thinking in latent space' : e.action === 'text' ? 'writing a message' : 'writing the answer'}...`, true);
        break;
      case 'latent-step':
        a.setStatus(`  round ${e.round}/${this.rounds || '?'}  ${e.agent}  latent step ${bar(e.step, e.steps)} ${e.step}/${e.steps}`, e.step === e.steps);
        break;
      case 'token':
        this.tokens++;
        a.setStatus(`  round ${e.round}/${this.rounds || '?'}  ${e.agent} writing: ${this.tokens} token${this.tokens === 1 ? '' : 's'}`);
        break;
      case 'agent-end': {
        a.setStatus('');
        const work = [
          e.latentSteps ? `${e.latentSteps} latent steps` : '',
          e.textTokens ? `${e.textTokens} tokens written` : '',
          `${e.promptTokens} prompt positions`,
        ].filter(Boolean);
        a.line(`  ${e.agent}: ${work.join(', ')} ${this.dim(`(${formatDuration(e.ms)})`)}`);
        break;
      }
      case 'handoff':
        a.line(
          e.text !== undefined
            ? `    ${e.from} -> ${e.to}: a text message of ${e.text.length} characters`
            : `    ${e.from} -> ${e.to}: ${e.vectors} latent vectors ${this.dim(`(norm mean ${e.meanNorm.toFixed(2)}, max ${e.maxNorm.toFixed(2)})`)}`,
        );
        break;
      case 'round-end':
        a.line(this.dim(`round ${e.round} done in ${formatDuration(e.ms)}`));
        break;
      case 'retry':
        this.tokens = 0;
        a.line(`${this.paint('33', 'retry')}: ${e.reason}`);
        break;
      case 'warning':
        a.line(`${this.paint('33', 'warning')}: ${e.message}`);
        break;
      case 'answer':
        a.setStatus('');
        break;
      case 'check-plan':
        a.line(
          e.checks.length === 0
            ? `${this.paint('33', 'checks')}: none found`
            : `${this.paint('1', 'checks')}: ${e.checks.map((c) => c.label).join('; ')} (up to ${e.maxRepairs} repair round${e.maxRepairs === 1 ? '' : 's'})`,
        );
        a.line(this.dim(`  ${e.isolation.note}`));
        break;
      case 'check-start':
        a.setStatus(`  candidate ${e.candidate}: running check ${e.check}...`, true);
        break;
      case 'check-end': {
        a.setStatus('');
        const color = e.status === 'passed' ? '32' : e.status === 'failed' ? '31' : '33';
        a.line(`  candidate ${e.candidate}: check ${e.check} ${this.paint(color, e.status)}${e.firstFailure ? `: ${e.firstFailure}` : ''} ${this.dim(`(${formatDuration(e.ms)})`)}`);
        break;
      }
      case 'repair-round':
        a.line(this.paint('1', `repair ${e.repair}/${e.maxRepairs}: ${e.failing} check${e.failing === 1 ? '' : 's'} failed; the team tries again with their output (${e.feedback.length} characters)`));
        break;
      case 'candidate-chosen':
        a.line(`${this.paint('32', 'chosen')}: candidate ${e.candidate}. ${e.reason}`);
        break;
      case 'metrics': {
        const m = e.metrics;
        a.line(
          `${this.paint('32', 'done')} in ${formatDuration(m.wallMs)} on ${m.device} at ${m.precision}: ${m.promptTokens} prompt positions, ${m.latentSteps} latent steps, ${m.textTokens} tokens written`,
        );
        break;
      }
    }
  }

  /** Removes the status line (before printing the answer or an error). */
  finish(): void {
    this.area.clear();
  }

  /** A plain summary for when the stream gave no metrics event. */
  summary(result: SolveResult): string {
    return `${result.rounds} round${result.rounds === 1 ? '' : 's'} on ${result.device} in ${formatDuration(result.metrics.wallMs)}`;
  }
}

export interface TransferProgress {
  file: string;
  bytes: number;
  total: number;
  rateBytesPerS: number;
  etaS: number;
}

/** Download progress: a live line on a terminal, a line every few seconds elsewhere. */
export class TransferView {
  private readonly area: LiveArea;
  private lastLine = 0;

  constructor(
    private readonly o: ProgressOptions & { intervalMs?: number },
    private readonly label: string,
  ) {
    this.area = new LiveArea(o);
  }

  update(p: TransferProgress): void {
    const pct = p.total > 0 ? ` ${((100 * p.bytes) / p.total).toFixed(0)}%` : '';
    const size = p.total > 0 ? `${formatBytes(p.bytes)} / ${formatBytes(p.total)}` : formatBytes(p.bytes);
    const rate = p.rateBytesPerS > 0 ? `, ${formatBytes(p.rateBytesPerS)}/s` : '';
    const eta = Number.isFinite(p.etaS) && p.etaS > 0 ? `, ${formatDuration(p.etaS * 1000)} left` : '';
    const text = `${this.label}: ${p.file} ${p.total > 0 ? bar(p.bytes, p.total) : ''}${pct} ${size}${rate}${eta}`;
    if (this.o.live) {
      this.area.setStatus(text);
      return;
    }
    const now = performance.now();
    if (now - this.lastLine >= (this.o.intervalMs ?? 5000)) {
      this.lastLine = now;
      this.area.line(text);
    }
  }

  line(text: string): void {
    this.area.line(text);
  }

  finish(): void {
    this.area.clear();
  }
}
