// The only module that knows about @vscode/webview-ui-toolkit: it registers the few components
// the panel uses and hands out plain elements, so swapping the toolkit out touches one file.
// The toolkit's badge and tag render a `style` attribute, which the panel's CSP refuses; tags are
// plain styled spans instead.
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeProgressRing } from '@vscode/webview-ui-toolkit';

let registered = false;

export function registerComponents(): void {
  if (registered) return;
  registered = true;
  provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeProgressRing());
}

export type ButtonAppearance = 'primary' | 'secondary' | 'icon';

export interface ButtonOptions {
  appearance?: ButtonAppearance;
  /** Longer description for tooltips and screen readers. */
  title?: string;
  /** Stable name for tests and styling. */
  name?: string;
  onClick: () => void;
}

export function button(label: string, opts: ButtonOptions): HTMLElement {
  const b = document.createElement('vscode-button');
  b.textContent = label;
  b.setAttribute('appearance', opts.appearance ?? 'secondary');
  if (opts.title) {
    b.title = opts.title;
    b.setAttribute('aria-label', `${label}: ${opts.title}`);
  }
  if (opts.name) b.dataset.action = opts.name;
  b.addEventListener('click', () => {
    if (!b.hasAttribute('disabled')) opts.onClick();
  });
  return b;
}

export function setButtonAppearance(b: HTMLElement, appearance: ButtonAppearance): void {
  if (b.getAttribute('appearance') !== appearance) b.setAttribute('appearance', appearance);
}

export function setDisabled(b: HTMLElement, disabled: boolean): void {
  if (disabled) b.setAttribute('disabled', '');
  else b.removeAttribute('disabled');
}

export function tag(text: string): HTMLElement {
  const el = document.createElement('span');
  el.className = 'tag';
  el.textContent = text;
  return el;
}

export function progressRing(label: string): HTMLElement {
  const el = document.createElement('vscode-progress-ring');
  el.setAttribute('aria-label', label);
  return el;
}
