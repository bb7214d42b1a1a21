// The panel UI. Receives validated host messages, folds them into the view model (model.ts),
// saves the model with setState so the panel survives hide/show and window reloads, and renders
// it with DOM APIs only: generated code and agent text are always set as textContent.
import { checkHostMessage, linesLabel, type Fix, type PanelAction, type WebviewMessage } from '../src/protocol/webview';
import { button, progressRing, registerComponents, setButtonAppearance, setDisabled, tag } from './components';
import { tokenize } from './highlight';
import { finalCode, formatMs, labelOf, reduce, restoreModel, streamingCode, type AgentRun, type CheckResultView, type ChecksView, type RepairView, type RoundView, type ViewModel } from './model';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();
registerComponents();

let model: ViewModel = restoreModel(api.getState());
const post = (m: WebviewMessage) => api.postMessage(m);

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tagName: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tagName);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tagName: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tagName);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

// ---------------------------------------------------------------------------------------------
// Skeleton, built once

const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
root.textContent = '';

const liveRegion = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', id: 'live' });
const phaseBadge = h('span', { class: 'phase', id: 'phase' });
const ringSlot = h('span', { class: 'ring-slot', 'aria-hidden': 'true' });
const runtimeLine = h('span', { class: 'runtime', id: 'runtime' });
const statusLine = h('p', { class: 'status-line', id: 'status-line' });
const noticeLine = h('p', { class: 'notice', id: 'notice' });

const actionButtons: Record<PanelAction, HTMLElement> = {
  insertAtCursor: button('Insert at cursor', { name: 'insertAtCursor', title: 'Insert the code at the cursor of the editor the task came from (one undoable edit)', onClick: () => act('insertAtCursor') }),
  replaceSelection: button('Replace selection', { name: 'replaceSelection', title: 'Replace the selection the task came from, if it is unchanged', onClick: () => act('replaceSelection') }),
  showDiff: button('Show diff', { name: 'showDiff', title: 'Compare the proposed code with your file, then accept or discard it', onClick: () => act('showDiff') }),
  copy: button('Copy', { name: 'copy', title: 'Copy the code to the clipboard', onClick: () => act('copy') }),
  retry: button('Retry', { name: 'retry', title: 'Solve the same task again with the current settings', onClick: () => act('retry') }),
  cancel: button('Cancel', { name: 'cancel', title: 'Stop the running solve (Escape)', onClick: () => act('cancel') }),
};
const toolbar = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Solve actions', id: 'actions' }, ...Object.values(actionButtons));

const header = h(
  'header',
  { class: 'topbar' },
  h('div', { class: 'brand' }, h('h1', {}, 'RecursiveMAS'), ringSlot, phaseBadge, runtimeLine),
  toolbar,
  statusLine,
  noticeLine,
);

const idleSection = h(
  'section',
  { class: 'idle', id: 'idle', 'aria-label': 'Getting started' },
  h('h2', {}, 'No task yet'),
  h('p', {}, 'Select code or a comment that describes what you need, then run “Solve with RecursiveMAS” from the Command Palette, the editor context menu, or Ctrl+Alt+M.'),
  h('p', { class: 'muted' }, 'A team of local models thinks about the task together for a few rounds; the last agent writes the code. Nothing is written to your files until you choose Insert, Replace or accept a diff.'),
);

const taskMeta = h('div', { class: 'tags', id: 'task-meta' });
const taskText = h('pre', { class: 'task-text', id: 'task-text', tabindex: '0', 'aria-label': 'Task text' });
const taskToggle = button('Show all', { appearance: 'secondary', name: 'toggle-task', onClick: () => toggleTask() });
const teamNote = h('p', { class: 'team-note', id: 'team-note' });
// Editing the task before solving again: the text area replaces the task text until solved or dropped.
const taskEditor = h('textarea', { class: 'task-editor', id: 'task-editor', rows: '6', 'aria-label': 'Edit the task' });
const taskEditForm = h(
  'div',
  { class: 'task-edit', id: 'task-edit' },
  taskEditor,
  h(
    'div',
    { class: 'form-actions' },
    button('Solve with this task', { appearance: 'primary', name: 'solve-edited', title: 'Run the team again on the edited task (Ctrl+Enter)', onClick: () => submitEditedTask() }),
    button('Cancel edit', { name: 'cancel-edit', onClick: () => setEditingTask(false) }),
  ),
);
const editTaskButton = button('Edit task', { name: 'edit-task', title: 'Change the task, then solve again', onClick: () => setEditingTask(true) });
const taskSection = h('section', { class: 'task card', id: 'task', 'aria-labelledby': 'task-h' }, h('h2', { id: 'task-h' }, 'Task'), taskMeta, teamNote, taskText, taskEditForm, h('div', { class: 'task-buttons' }, taskToggle, editTaskButton));

const errorSection = h('section', { class: 'error card', id: 'error', role: 'alert' });

const roundsList = h('ol', { class: 'rounds', id: 'rounds' });
const loadingLine = h('p', { class: 'loading muted', id: 'loading' });
const timelineSection = h('section', { class: 'timeline card', id: 'timeline', 'aria-labelledby': 'timeline-h' }, h('h2', { id: 'timeline-h' }, 'Team rounds'), loadingLine, roundsList);

const codeLang = tag('');
const codeState = h('span', { class: 'code-state muted', id: 'code-state' });
const codeEl = h('code', {});
const codePre = h('pre', { class: 'code', id: 'code', tabindex: '0', 'aria-label': 'Generated code' }, codeEl);
const codeNote = h('p', { class: 'muted code-note', id: 'code-note' });
// A follow-up runs the team again on this answer with an instruction ("make it iterative").
const followUpText = h('textarea', { class: 'follow-up-text', id: 'follow-up-text', rows: '2', placeholder: 'Follow up: e.g. make it iterative, add type hints (Ctrl+Enter)', 'aria-label': 'Follow-up instruction for the team' });
const followUpForm = h(
  'div',
  { class: 'follow-up', id: 'follow-up' },
  followUpText,
  h('div', { class: 'form-actions' }, button('Ask the team', { name: 'follow-up', title: 'Solve again with this answer and your instruction', onClick: () => submitFollowUp() })),
);
const codeSection = h('section', { class: 'result card', id: 'result', 'aria-labelledby': 'code-h' }, h('div', { class: 'section-head' }, h('h2', { id: 'code-h' }, 'Code'), codeLang, codeState), codeNote, codePre, followUpForm);

const metricTiles = h('dl', { class: 'tiles', id: 'metric-tiles' });
const chartSlot = h('div', { class: 'chart', id: 'chart' });
const metricsSection = h('section', { class: 'metrics card', id: 'metrics', 'aria-labelledby': 'metrics-h' }, h('h2', { id: 'metrics-h' }, 'Metrics'), metricTiles, chartSlot);

const warningsSection = h('section', { class: 'warnings card', id: 'warnings', 'aria-label': 'Warnings' });

const checksBody = h('div', { id: 'checks-body' });
const checksSection = h('section', { class: 'checks card', id: 'checks', 'aria-labelledby': 'checks-h' }, h('h2', { id: 'checks-h' }, 'Checks'), checksBody);

root.append(header, liveRegion, idleSection, errorSection, taskSection, checksSection, timelineSection, codeSection, metricsSection, warningsSection);

let taskExpanded = false;
function toggleTask(): void {
  taskExpanded = !taskExpanded;
  taskToggle.textContent = taskExpanded ? 'Show less' : 'Show all';
  taskText.classList.toggle('expanded', taskExpanded);
}

let editingTask = false;
function setEditingTask(on: boolean): void {
  editingTask = on && !!model.session;
  if (editingTask) taskEditor.value = model.session!.task;
  scheduleRender();
  if (editingTask) requestAnimationFrame(() => taskEditor.focus());
}

function submitEditedTask(): void {
  const task = taskEditor.value.trim();
  if (!model.session || !task) return;
  post({ type: 'rerun', id: model.session.id, task });
  editingTask = false;
  scheduleRender();
}

function submitFollowUp(): void {
  const followUp = followUpText.value.trim();
  if (!model.session || !followUp) return;
  post({ type: 'rerun', id: model.session.id, followUp });
  followUpText.value = '';
}

for (const [area, submit] of [[taskEditor, submitEditedTask], [followUpText, submitFollowUp]] as const) {
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      submit();
    }
    // Escape in a text box belongs to the box, not to Cancel.
    if (e.key === 'Escape') e.stopPropagation();
  });
}

function act(action: PanelAction): void {
  if (!model.session) return;
  post({ type: 'action', action, id: model.session.id });
}

// ---------------------------------------------------------------------------------------------
// Rendering

const running = (m: ViewModel) => m.phase === 'loading' || m.phase === 'running' || m.phase === 'decoding' || m.phase === 'checking';

const PHASE_LABEL: Record<ViewModel['phase'], string> = {
  idle: 'Idle',
  loading: 'Loading team',
  running: 'Thinking',
  decoding: 'Writing code',
  checking: 'Checking',
  done: 'Done',
  cancelled: 'Cancelled',
  failed: 'Failed',
};

const ACTION_LABEL: Record<AgentRun['action'], string> = { latent: 'thinking', text: 'writing a message', decode: 'writing the code', retry: 'asked again for only the code' };

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The plan of a solve in the words of its mode: no latent steps outside latent mode, no rounds for a single agent. */
function planLabel(mode: string, rounds: number, latentSteps: number): string {
  if (mode === 'single') return 'single agent';
  if (mode === 'text') return `${plural(rounds, 'round')} of text messages`;
  return `${plural(rounds, 'round')} × ${plural(latentSteps, 'latent step')}`;
}

/** The agents a solve uses: in single mode only the one that writes the answer. */
function agentsInPlay(m: ViewModel): { name: string; role: string; model: string }[] {
  const agents = m.team?.agents ?? [];
  if ((m.solve?.mode ?? m.session?.mode) !== 'single') return agents;
  const writer = m.rounds.flatMap((r) => r.runs).find((x) => x.action === 'decode')?.agent;
  const one = agents.find((a) => a.name === writer) ?? agents[agents.length - 1];
  return one ? [one] : [];
}

const FIX_LABEL: Record<Fix, string> = {
  'download-models': 'Download models',
  'show-logs': 'Show logs',
  'switch-device': 'Switch device',
  'select-team': 'Select team',
  retry: 'Retry',
  'open-settings': 'Open settings',
  'trust-workspace': 'Manage workspace trust',
  'use-demo-team': 'Use the offline demo team',
  'models-settings': 'Models folder and mirror settings',
};

function renderHeader(m: ViewModel): void {
  phaseBadge.textContent = PHASE_LABEL[m.phase];
  phaseBadge.dataset.phase = m.phase;
  const wantRing = running(m);
  if (wantRing && !ringSlot.firstChild) ringSlot.append(progressRing('Working'));
  if (!wantRing) ringSlot.textContent = '';
  const rt = m.runtime;
  runtimeLine.textContent = `runtime: ${rt.state}${rt.device ? ` · ${rt.device}` : ''}`;
  runtimeLine.dataset.state = rt.state;
  runtimeLine.title = rt.detail ?? '';

  const code = finalCode(m);
  // A cancelled solve keeps the code written so far (the extension keeps the same text for the actions).
  const hasCode = (m.phase === 'done' || m.phase === 'cancelled') && code.trim() !== '';
  const s = m.session;
  show(actionButtons.cancel, running(m));
  show(actionButtons.insertAtCursor, hasCode);
  show(actionButtons.replaceSelection, hasCode && !!s?.hasSelection);
  // While the team writes, Show diff streams the answer into the file the task came from.
  show(actionButtons.showDiff, hasCode || (running(m) && !!s?.fileName));
  show(actionButtons.copy, hasCode);
  show(actionButtons.retry, !!s && !running(m));
  for (const [k, b] of Object.entries(actionButtons) as [PanelAction, HTMLElement][]) {
    setButtonAppearance(b, k === s?.defaultAction || (k === 'retry' && !hasCode) ? 'primary' : 'secondary');
  }
  setDisabled(actionButtons.cancel, !running(m));
  show(toolbar, !!s);

  statusLine.textContent = statusText(m);
  noticeLine.textContent = m.notice?.message ?? '';
  noticeLine.dataset.level = m.notice?.level ?? 'info';
  show(noticeLine, !!m.notice);
  const last = m.announcements[m.announcements.length - 1] ?? '';
  if (liveRegion.textContent !== last) liveRegion.textContent = last;
}

function currentRun(m: ViewModel): AgentRun | undefined {
  // The latest running agent of the latest round that has one.
  for (const round of [...m.rounds].reverse()) {
    const running = [...round.runs].reverse().find((run) => run.status === 'running');
    if (running) return running;
  }
  return undefined;
}

function statusText(m: ViewModel): string {
  const rounds = m.solve?.rounds ?? m.session?.rounds ?? 0;
  switch (m.phase) {
    case 'idle':
      return '';
    case 'loading':
      return m.loading ? `Loading model ${m.loading.index + 1} of ${m.loading.count}: ${m.loading.model}` : 'Starting the runtime and loading the team…';
    case 'running':
    case 'decoding': {
      const r = m.rounds[m.rounds.length - 1];
      const run = currentRun(m);
      const where = r ? `Round ${r.round} of ${rounds}` : 'Starting';
      if (!run) return `${where}`;
      if (run.action === 'decode') return `${where} · ${run.agent} is writing the code (${m.output.length} characters so far)`;
      if (run.action === 'latent') return `${where} · ${run.agent} (${run.role}) thinking in latent space · step ${run.step} of ${run.steps}`;
      return `${where} · ${run.agent} (${run.role}) is writing a message`;
    }
    case 'checking': {
      const c = m.checks;
      const candidate = c?.candidates[c.candidates.length - 1];
      const now = candidate?.results.find((r) => r.status === 'running');
      return c && candidate && now ? `Checking candidate ${candidate.candidate}: ${labelOf(c, now.check)}` : 'Checking the candidate…';
    }
    case 'done': {
      const mt = m.metrics;
      const mode = m.solve?.mode ?? m.session?.mode;
      const shape = mode === 'single' ? 'single agent' : plural(m.rounds.length, 'round');
      return mt ? [`Done in ${formatMs(mt.wallMs)}`, shape, mode === 'latent' ? plural(mt.latentSteps, 'latent step') : '', plural(mt.textTokens, 'text token')].filter(Boolean).join(' · ') : `Done · ${shape}`;
    }
    case 'cancelled':
      return `Cancelled${m.session && m.endedAt ? ` after ${formatMs(m.endedAt - m.session.startedAt)}` : ''}. Retry runs the same task again.`;
    case 'failed':
      return m.error ? 'The solve failed; see below for what to do.' : 'The last solve failed; Retry solves the task with the current settings.';
  }
}


/**
 * True when `part` was last rendered from the same values: parts rebuilt only on change keep
 * keyboard focus and selection across the many updates a running solve sends.
 */
const renderedFrom = new Map<string, string>();
function unchanged(part: string, values: unknown): boolean {
  const sig = JSON.stringify(values);
  if (renderedFrom.get(part) === sig) return true;
  renderedFrom.set(part, sig);
  return false;
}

function renderTask(m: ViewModel): void {
  const s = m.session;
  show(idleSection, !s);
  show(taskSection, !!s);
  if (!s) return;
  if (unchanged('task', [s, m.team?.name, m.team?.device, m.team?.precision])) return;
  taskMeta.textContent = '';
  const device = m.team?.device ?? s.device;
  const items = [`team ${m.team?.name ?? s.team}`, `device ${device}`, ...(m.team ? [m.team.precision] : []), `mode ${s.mode}`, planLabel(s.mode, s.rounds, s.latentSteps), s.language];
  if (s.fileName) items.push(s.fileName);
  for (const t of items) taskMeta.append(tag(t));
  if (taskText.textContent !== s.task) taskText.textContent = s.task;
  teamNote.textContent = s.teamNote ?? '';
  show(teamNote, !!s.teamNote);
  show(taskToggle, s.task.split('\n').length > 6 || s.task.length > 500);
}

function renderTaskEditing(m: ViewModel): void {
  const can = !!m.session && !running(m);
  if (!can) editingTask = false;
  show(taskEditForm, editingTask);
  show(taskText, !editingTask);
  show(editTaskButton, can && !editingTask);
  const hasCode = m.phase === 'done' && finalCode(m).trim() !== '';
  show(followUpForm, hasCode);
}

function renderError(m: ViewModel): void {
  const e = m.error;
  show(errorSection, !!e);
  if (unchanged('error', [e, m.phase, !!m.session])) return;
  errorSection.textContent = '';
  if (!e) return;
  errorSection.append(h('h2', {}, m.phase === 'cancelled' ? 'Cancelled' : 'Something went wrong'), h('p', { class: 'error-message' }, e.message));
  if (e.action) errorSection.append(h('p', { class: 'error-action' }, e.action));
  // Retry sits in the toolbar above already; the box offers the other ways out.
  const fixes = e.fixes.filter((f) => f !== 'retry' || !m.session);
  if (fixes.length) {
    errorSection.append(
      h('div', { class: 'fixes', role: 'group', 'aria-label': 'Ways to fix this' }, ...fixes.map((f, i) => button(FIX_LABEL[f], { appearance: i === 0 ? 'primary' : 'secondary', name: `fix-${f}`, onClick: () => post({ type: 'fix', fix: f }) }))),
    );
  }
}

const roundCache = new Map<number, { sig: string; el: HTMLLIElement }>();
const repairCache = new Map<number, { sig: string; el: HTMLLIElement }>();

function renderTimeline(m: ViewModel, now: number): void {
  show(timelineSection, !!m.session);
  loadingLine.textContent = m.loading ? `Loading model ${m.loading.index + 1} of ${m.loading.count}: ${m.loading.model}` : m.team ? `Team ${m.team.name} on ${m.team.device} at ${m.team.precision}: ${agentsInPlay(m).map((a) => `${a.name} (${a.role === a.name ? '' : `${a.role}, `}${a.model})`).join(' → ')}. ${m.team.ms > 0 ? `Loaded in ${formatMs(m.team.ms)}.` : 'Already loaded.'}` : m.session && running(m) ? 'Starting…' : '';
  show(loadingLine, loadingLine.textContent !== '');
  const keep = new Set(m.rounds.map((r) => r.round));
  for (const [k, v] of roundCache) {
    if (!keep.has(k)) {
      v.el.remove();
      roundCache.delete(k);
    }
  }
  const total = m.solve?.rounds ?? m.session?.rounds ?? m.rounds.length;
  let prev: HTMLLIElement | null = null;
  for (const r of m.rounds) {
    const live = r.runs.some((x) => x.status === 'running') || r.status === 'running';
    const sig = JSON.stringify(r) + (live ? Math.floor((now - r.startedAt) / 100) : '') + total + m.phase;
    let entry = roundCache.get(r.round);
    if (!entry || entry.sig !== sig) {
      const el = renderRound(r, total, now, m);
      if (entry) entry.el.replaceWith(el);
      entry = { sig, el };
      roundCache.set(r.round, entry);
    }
    if (prev ? prev.nextSibling !== entry.el : roundsList.firstChild !== entry.el) {
      if (prev) prev.after(entry.el);
      else roundsList.prepend(entry.el);
    }
    prev = entry.el;
    // A repair round sits between the candidate it repairs and the rounds of the next one.
    for (const repair of m.checks?.repairs.filter((x) => x.afterRound === r.round) ?? []) {
      const rsig = JSON.stringify([repair, m.checks?.candidates.find((c) => c.candidate === repair.candidate - 1)]);
      let rep = repairCache.get(repair.repair);
      if (!rep || rep.sig !== rsig) {
        const el = renderRepair(repair, m.checks!);
        if (rep) rep.el.replaceWith(el);
        rep = { sig: rsig, el };
        repairCache.set(repair.repair, rep);
      }
      if (prev.nextSibling !== rep.el) prev.after(rep.el);
      prev = rep.el;
    }
  }
  const repairs = new Set(m.checks?.repairs.map((x) => x.repair) ?? []);
  for (const [k, v] of repairCache) {
    if (!repairs.has(k)) {
      v.el.remove();
      repairCache.delete(k);
    }
  }
}

function renderRepair(repair: RepairView, checks: ChecksView): HTMLLIElement {
  const li = h('li', { class: 'repair', 'data-repair': String(repair.repair), 'aria-label': `Repair ${repair.repair} of ${repair.maxRepairs}` });
  const failed = checks.candidates.find((c) => c.candidate === repair.candidate - 1)?.results.filter((r) => r.status !== 'passed' && r.status !== 'running') ?? [];
  li.append(
    h(
      'div',
      { class: 'repair-head' },
      h('span', { class: 'glyph', 'aria-hidden': 'true' }, '↻'),
      h('span', { class: 'repair-title' }, `Repair ${repair.repair} of ${repair.maxRepairs}`),
      h('span', { class: 'muted' }, ` · ${repair.failing} check${repair.failing === 1 ? '' : 's'} failed on candidate ${repair.candidate - 1}; candidate ${repair.candidate} gets the output as text`),
    ),
  );
  if (failed[0]?.firstFailure) li.append(h('p', { class: 'repair-failure' }, failed[0].firstFailure));
  li.append(h('details', { class: 'repair-feedback' }, h('summary', {}, `What the team reads (${repair.feedback.length} characters)`), h('pre', { class: 'check-output' }, repair.feedback)));
  return li;
}

const STATUS_LABEL: Record<CheckResultView['status'], string> = { passed: 'passed', failed: 'failed', errored: 'errored', 'timed-out': 'timed out', running: 'running…' };
const STATUS_GLYPH: Record<CheckResultView['status'], string> = { passed: '✓', failed: '✗', errored: '!', 'timed-out': '⏱', running: '●' };

function renderChecks(m: ViewModel): void {
  const c = m.checks;
  show(checksSection, !!m.session && !!c);
  if (unchanged('checks', [c, running(m)])) return;
  checksBody.textContent = '';
  if (!c) return;
  if (c.plan.length === 0) {
    checksBody.append(h('p', { class: 'muted' }, 'No checks were found for this task; the answer is unchecked.'));
    return;
  }
  checksBody.append(
    h('p', { class: 'check-plan' }, `Each candidate runs ${c.plan.length === 1 ? 'this check' : 'these checks'}${c.maxRepairs > 0 ? `, with up to ${c.maxRepairs} repair round${c.maxRepairs === 1 ? '' : 's'} while any fails` : ''}:`),
    h('ul', { class: 'plan-list' }, ...c.plan.map((p) => h('li', { 'data-check': p.id }, tag(p.kind), ' ', h('span', { class: 'check-label' }, p.label)))),
    h('p', { class: `isolation muted${c.isolation.network ? '' : ' weak'}` }, c.isolation.note),
  );
  if (c.candidates.length > 0) {
    const list = h('ol', { class: 'candidates', 'aria-label': 'Candidates and their check results' });
    for (const cand of c.candidates) {
      const chosen = c.chosen?.candidate === cand.candidate;
      const li = h('li', { class: `candidate${chosen ? ' chosen' : ''}`, 'data-candidate': String(cand.candidate) });
      li.append(h('div', { class: 'candidate-head' }, h('span', { class: 'candidate-title' }, `Candidate ${cand.candidate}`), h('span', { class: 'muted' }, cand.candidate === 1 ? ' · first answer' : ` · after repair ${cand.candidate - 1}`), chosen ? h('span', { class: 'chosen-badge' }, 'chosen') : null));
      const results = h('ul', { class: 'check-results' });
      for (const r of cand.results) {
        const status = r.status === 'running' && !running(m) ? 'errored' : r.status;
        const row = h('li', { class: `check-result status-${status}`, 'data-check': r.check, 'data-status': status });
        row.append(
          h('span', { class: 'glyph', 'aria-hidden': 'true' }, STATUS_GLYPH[status]),
          h('span', { class: 'check-label' }, labelOf(c, r.check)),
          h('span', { class: 'check-status' }, r.status === 'running' && !running(m) ? 'stopped' : STATUS_LABEL[status]),
          h('span', { class: 'muted check-time' }, r.ms !== undefined ? formatMs(r.ms) : ''),
        );
        if (r.firstFailure) row.append(h('p', { class: 'first-failure' }, r.firstFailure));
        if (r.output?.trim() && r.status !== 'passed') row.append(h('details', {}, h('summary', {}, 'Output'), h('pre', { class: 'check-output' }, r.output)));
        results.append(row);
      }
      li.append(results);
      list.append(li);
    }
    checksBody.append(list);
  }
  if (c.chosen) checksBody.append(h('p', { class: 'choice', id: 'check-choice' }, h('strong', {}, `Answer: candidate ${c.chosen.candidate}. `), c.chosen.reason));
}

function renderRound(r: RoundView, total: number, now: number, m: ViewModel): HTMLLIElement {
  const ended = !running(m);
  const done = r.status === 'done' || ended;
  // Once the engine's metrics are in, a round's time is the sum of its stages, as in the chart.
  const stages = m.metrics?.stages.filter((st) => st.round === r.round);
  const ms = stages?.length ? stages.reduce((a, st) => a + st.ms, 0) : r.ms;
  const time = ms !== undefined ? formatMs(ms) : done ? '' : formatMs(now - r.startedAt);
  const li = h('li', { class: `round ${done ? 'done' : 'running'}`, 'data-round': String(r.round), 'aria-label': `Round ${r.round} of ${total}${done ? ', finished' : ', running'}` });
  li.append(h('div', { class: 'round-head' }, h('span', { class: 'round-title' }, `Round ${r.round}`, h('span', { class: 'muted' }, ` of ${total}`)), h('span', { class: 'round-time muted' }, time)));
  const list = h('ol', { class: 'runs' });
  const handed = new Set<number>();
  for (const run of r.runs) {
    // A finished text message is shown in full under its hand-off; the run shows it while it streams.
    const shownBelow = run.action === 'text' && r.handoffs.some((hf) => hf.from === run.agent && hf.text !== undefined);
    list.append(renderRun(run, now, ended, shownBelow));
    r.handoffs.forEach((hf, i) => {
      if (hf.from === run.agent && !handed.has(i) && (run.status === 'done' || ended)) {
        handed.add(i);
        list.append(renderHandoff(hf, `${r.round}:${i}`));
      }
    });
  }
  r.handoffs.forEach((hf, i) => {
    if (!handed.has(i)) list.append(renderHandoff(hf, `${r.round}:${i}`));
  });
  li.append(list);
  return li;
}

function renderRun(run: AgentRun, now: number, ended: boolean, textShownBelow = false): HTMLLIElement {
  const state = run.status === 'running' && ended ? 'stopped' : run.status;
  const glyph = state === 'done' ? '✓' : state === 'stopped' ? '■' : '●';
  const time = run.ms !== undefined ? formatMs(run.ms) : state === 'running' ? formatMs(now - run.startedAt) : '';
  const li = h('li', { class: `run ${state} action-${run.action}`, 'data-agent': run.agent });
  if (run.promptTokens !== undefined) li.title = `${run.agent}: ${run.promptTokens} prompt tokens${run.textTokens ? `, ${run.textTokens} tokens written` : ''}`;
  const who = h('span', { class: 'who' }, h('span', { class: 'agent' }, run.agent));
  if (run.role !== run.agent) who.append(h('span', { class: 'role muted' }, ` ${run.role}`));
  let progress: HTMLElement;
  if (run.action === 'latent') {
    const steps = Math.max(run.steps, 1);
    const pct = Math.min(100, Math.round((run.step / steps) * 100));
    const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(run.steps), 'aria-valuenow': String(run.step), 'aria-label': `${run.agent} latent steps` });
    const fill = h('div', { class: 'fill' });
    fill.style.width = `${pct}%`;
    bar.append(fill);
    progress = h('span', { class: 'progress' }, bar, h('span', { class: 'steps muted' }, `${run.step}/${run.steps}`));
  } else {
    const n = run.textTokens;
    progress = h('span', { class: 'progress muted' }, n !== undefined ? `${n} tokens` : state === 'running' ? 'writing…' : '');
  }
  li.append(
    h(
      'div',
      { class: 'run-head' },
      h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyph),
      who,
      h('span', { class: 'kind' }, ACTION_LABEL[run.action]),
      progress,
      h('span', { class: 'run-time muted' }, time),
    ),
  );
  if (run.text && !textShownBelow) li.append(h('pre', { class: 'agent-text' }, run.text));
  return li;
}

/** Hand-off messages the user opened: a round that re-renders keeps them open. */
const openMessages = new Set<string>();

function renderHandoff(hf: { from: string; to: string; vectors: number; meanNorm: number; maxNorm: number; text?: string }, key: string): HTMLLIElement {
  const li = h('li', { class: 'handoff', 'data-from': hf.from, 'data-to': hf.to }, h('span', { class: 'arrow', 'aria-hidden': 'true' }, '↳'), h('span', {}, `${hf.from} → ${hf.to}`));
  if (hf.text === undefined) {
    li.append(h('span', { class: 'muted' }, ` · ${plural(hf.vectors, 'thought vector')}`));
    li.title = `Thought vector sizes (norms): mean ${hf.meanNorm.toFixed(2)}, largest ${hf.maxNorm.toFixed(2)}`;
    return li;
  }
  // Text mode: the message itself is what a reader compares with the latent run.
  const details = h('details', { class: 'message', 'data-message': key }, h('summary', {}, `message (${plural(hf.text.length, 'character')})`), h('pre', { class: 'agent-text message-text' }, hf.text));
  details.open = openMessages.has(key);
  details.addEventListener('toggle', () => (details.open ? openMessages.add(key) : openMessages.delete(key)));
  li.append(h('span', { class: 'muted' }, ' · '), details);
  return li;
}

let renderedCode = '';
let renderedLang = '';
function renderCode(m: ViewModel): void {
  const decodeStarted = m.rounds.some((r) => r.runs.some((x) => x.action === 'decode'));
  show(codeSection, !!m.session && (decodeStarted || m.answer !== null || m.phase === 'done'));
  const lang = m.answer?.language ?? m.session?.language ?? '';
  codeLang.textContent = lang;
  const stream = streamingCode(m.output);
  let code = m.answer ? finalCode(m) : stream.code;
  let note = '';
  if (m.answer && m.answer.code === null) note = 'The answer had no fenced code block; showing all of it.';
  if (!m.answer && !stream.fenced && m.output) note = 'The solver is writing; code appears once it opens a code block.';
  if (m.phase === 'done' && !code.trim()) {
    code = '';
    note = 'The team finished without writing code. Retry, or raise the rounds or token limit in the settings.';
  }
  codeNote.textContent = note;
  show(codeNote, note !== '');
  codeState.textContent = running(m) ? 'writing…' : code ? linesLabel(code) : '';
  codePre.setAttribute('aria-label', `Generated ${lang} code`);
  codePre.setAttribute('aria-busy', String(running(m)));
  if (code === renderedCode && lang === renderedLang) return;
  renderedCode = code;
  renderedLang = lang;
  const frag = document.createDocumentFragment();
  for (const t of tokenize(code, lang)) {
    if (t.kind === 'plain') frag.append(t.text);
    else frag.append(h('span', { class: `tok-${t.kind}` }, t.text));
  }
  codeEl.replaceChildren(frag);
}

const AGENT_COLORS = ['var(--chart-1)', 'var(--chart-2)', 'var(--chart-3)', 'var(--chart-4)', 'var(--chart-5)', 'var(--chart-6)'];

interface Stage {
  round: number;
  agent: string;
  kind: string;
  ms: number;
}

function stagesOf(m: ViewModel): Stage[] {
  if (m.metrics) return m.metrics.stages;
  const out: Stage[] = [];
  for (const r of m.rounds) for (const run of r.runs) if (run.ms !== undefined) out.push({ round: r.round, agent: run.agent, kind: run.action, ms: run.ms });
  return out;
}

let renderedChartSig = '';
function renderMetrics(m: ViewModel): void {
  const stages = stagesOf(m);
  show(metricsSection, stages.length > 0 || m.metrics !== null);
  const sig = JSON.stringify([m.metrics, stages, m.team?.ms]);
  if (sig === renderedChartSig) return;
  renderedChartSig = sig;
  metricTiles.textContent = '';
  const tile = (label: string, value: string) => metricTiles.append(h('div', { class: 'tile' }, h('dt', {}, label), h('dd', {}, value)));
  if (m.metrics) {
    tile('Time', formatMs(m.metrics.wallMs));
    if ((m.solve?.mode ?? m.session?.mode) === 'latent') tile('Latent steps', String(m.metrics.latentSteps));
    tile('Text tokens', String(m.metrics.textTokens));
    tile('Prompt tokens', String(m.metrics.promptTokens));
    tile('Device', m.metrics.device);
    tile('Precision', m.metrics.precision);
  } else {
    tile('Time so far', formatMs(stages.reduce((a, s) => a + s.ms, 0)));
    if ((m.solve?.mode ?? m.session?.mode) === 'latent') tile('Latent steps', String(m.rounds.reduce((a, r) => a + r.runs.reduce((b, x) => b + (x.action === 'latent' ? x.step : 0), 0), 0)));
  }
  if (m.team) tile('Team load', m.team.ms > 0 ? formatMs(m.team.ms) : 'already loaded');
  chartSlot.replaceChildren(stages.length ? chart(stages) : '');
}

/** Stacked horizontal bars: one row per round, one segment per agent stage, widths ∝ time. */
function chart(stages: Stage[]): Node {
  const rounds = [...new Set(stages.map((s) => s.round))].sort((a, b) => a - b);
  const agents = [...new Set(stages.map((s) => s.agent))];
  const totals = rounds.map((r) => stages.filter((s) => s.round === r).reduce((a, s) => a + s.ms, 0));
  const max = Math.max(...totals, 1);
  const rowH = 22;
  const labelW = 70;
  const valueW = 64;
  const width = 480;
  const barW = width - labelW - valueW;
  const height = rounds.length * rowH + 4;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': `Time per agent and round: ${rounds.map((r, i) => `round ${r} ${formatMs(totals[i]!)}`).join(', ')}`, class: 'chart-svg' });
  rounds.forEach((r, i) => {
    const y = i * rowH + 2;
    const label = svg('text', { x: 0, y: y + rowH / 2 + 4, class: 'chart-label' });
    label.textContent = `Round ${r}`;
    root.append(label);
    let x = labelW;
    for (const s of stages.filter((st) => st.round === r)) {
      const w = Math.max(1, (s.ms / max) * barW);
      const rect = svg('rect', { x, y: y + 3, width: w, height: rowH - 6, rx: 2, fill: AGENT_COLORS[agents.indexOf(s.agent) % AGENT_COLORS.length]!, class: `seg kind-${s.kind}` });
      const title = svg('title', {});
      title.textContent = `Round ${r} · ${s.agent} (${s.kind}): ${formatMs(s.ms)}`;
      rect.append(title);
      root.append(rect);
      x += w;
    }
    const value = svg('text', { x: x + 6, y: y + rowH / 2 + 4, class: 'chart-value' });
    value.textContent = formatMs(totals[i]!);
    root.append(value);
  });
  const legend = h('ul', { class: 'legend', 'aria-hidden': 'true' });
  agents.forEach((a, i) => {
    const sw = h('span', { class: 'swatch' });
    sw.style.background = AGENT_COLORS[i % AGENT_COLORS.length]!;
    legend.append(h('li', {}, sw, a));
  });
  const frag = document.createDocumentFragment();
  frag.append(root, legend);
  return frag;
}

function renderWarnings(m: ViewModel): void {
  const items = [...m.warnings, ...m.retries.map((r) => `The solver was asked again: ${r}`)];
  show(warningsSection, items.length > 0);
  if (unchanged('warnings', items)) return;
  warningsSection.textContent = '';
  if (!items.length) return;
  warningsSection.append(h('h2', {}, 'Notes'), h('ul', {}, ...items.map((w) => h('li', {}, w))));
}

/** Once the code is ready it is what the user came for: it moves above the rounds. */
function arrangeSections(m: ViewModel): void {
  const wanted = m.phase === 'done' ? [codeSection, checksSection, metricsSection, timelineSection] : [checksSection, timelineSection, codeSection, metricsSection];
  let prev: Element = taskSection;
  for (const el of wanted) {
    if (prev.nextElementSibling !== el) prev.after(el);
    prev = el;
  }
}

/** Render counts and the longest render, for the e2e test's responsiveness check. */
const stats = { renders: 0, longestRenderMs: 0 };
(window as unknown as { __panelStats: typeof stats }).__panelStats = stats;
let renderedPhase: ViewModel['phase'] = model.phase;

function render(): void {
  const now = Date.now();
  const wasRunning = running({ ...model, phase: renderedPhase });
  const focusWasOnCancel = document.activeElement === actionButtons.cancel || document.activeElement === document.body;
  arrangeSections(model);
  renderHeader(model);
  renderTask(model);
  renderTaskEditing(model);
  renderError(model);
  renderChecks(model);
  renderTimeline(model, now);
  renderCode(model);
  renderMetrics(model);
  renderWarnings(model);
  document.body.dataset.phase = model.phase;
  document.body.dataset.solve = model.session?.id ?? '';
  // Cancel hides itself: the keyboard moves on to Retry instead of dropping to the page.
  if (wasRunning && model.phase === 'cancelled' && focusWasOnCancel && document.hasFocus() && !actionButtons.retry.hidden) actionButtons.retry.focus();
  renderedPhase = model.phase;
  stats.renders++;
  stats.longestRenderMs = Math.max(stats.longestRenderMs, Date.now() - now);
}

// ---------------------------------------------------------------------------------------------
// Scheduling: render once per frame, save state at most twice a second, tick live timers.

let frame = 0;
function scheduleRender(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

let saveTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleSave(immediate = false): void {
  if (immediate) {
    clearTimeout(saveTimer);
    saveTimer = undefined;
    api.setState(model);
    return;
  }
  saveTimer ??= setTimeout(() => {
    saveTimer = undefined;
    api.setState(model);
  }, 500);
}

setInterval(() => {
  if (running(model)) scheduleRender();
}, 250);

window.addEventListener('message', (e: MessageEvent) => {
  const checked = checkHostMessage(e.data);
  if (!checked.ok) {
    post({ type: 'error', message: `panel ignored a message: ${checked.error}` });
    return;
  }
  const next = reduce(model, checked.value, Date.now());
  if (next === model) return;
  model = next;
  scheduleRender();
  scheduleSave(checked.value.type === 'end' || checked.value.type === 'session');
});

window.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && running(model)) {
    e.preventDefault();
    act('cancel');
  }
});

window.addEventListener('error', (e) => post({ type: 'error', message: `panel script error: ${e.message}` }));

render();
post({ type: 'ready', solveId: model.session?.id ?? null, lastSeq: model.lastSeq });

