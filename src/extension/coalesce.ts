// Thins the runtime's event stream before it crosses into the webview: a solve can emit a
// latent-step event per model step and a token event per token, hundreds a second, while the
// panel only needs the latest step and the text so far. Consecutive latent steps of one agent
// collapse into the newest; consecutive tokens of one agent join into one event. Any other event
// flushes what is pending first, so the order of the stream is kept. No `vscode` here.
import type { SolveEvent } from '../protocol/events';

type Step = Extract<SolveEvent, { type: 'latent-step' }>;
type Token = Extract<SolveEvent, { type: 'token' }>;

export class EventCoalescer {
  private pending: Step | Token | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly emit: (event: SolveEvent) => void,
    private readonly intervalMs = 50,
  ) {}

  push(event: SolveEvent): void {
    const p = this.pending;
    if (event.type === 'latent-step' || event.type === 'token') {
      if (p && p.type === event.type && p.round === event.round && p.agent === event.agent) {
        this.pending = event.type === 'token' ? { ...event, text: (p as Token).text + event.text } : event;
      } else {
        this.flush();
        this.pending = event;
      }
      // The last step of a rollout goes out at once: the bar should reach its end.
      if (event.type === 'latent-step' && event.step >= event.steps) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
      return;
    }
    this.flush();
    this.emit(event);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = null;
    if (p) this.emit(p);
  }
}
