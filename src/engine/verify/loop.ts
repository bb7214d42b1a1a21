// The repair loop: the team solves, each check runs on its candidate, and while checks fail and
// repairs remain, the team solves again with the failing output as text feedback (the latent
// hand-offs between agents are unchanged). The answer is the best candidate: most checks passed,
// then the latest. Each candidate's rounds are numbered after the previous candidate's, so one
// timeline shows them all.
import { CancelledError, type SolveEvent, type SolveRequest, type SolveResult } from '../api';
import type { CandidateChecks, CheckOutcome, Isolation, SolveMetrics, Verification } from '../../protocol/events';
import type { VerifyParams } from '../../protocol/rpc';
import { findChecks, type Check } from './checks';
import { runCheck, type Placement } from './run';
import { isolationFor } from './sandbox';

export type TeamSolve = (request: SolveRequest, onEvent: (event: SolveEvent) => void, signal?: AbortSignal) => Promise<SolveResult>;

/** The checks a solve will run, decided before the team starts (the client shows them first). */
export interface CheckPlan {
  checks: Check[];
  maxRepairs: number;
  isolation: Isolation;
  event: Extract<SolveEvent, { type: 'check-plan' }>;
}

export function planChecks(request: Pick<SolveRequest, 'task' | 'language'>, verify: VerifyParams, isolation: 'auto' | 'none' = 'auto'): CheckPlan {
  const checks = findChecks({ task: request.task, language: request.language, selection: verify.selection, command: verify.command, findChecks: verify.findChecks });
  const maxRepairs = checks.length === 0 ? 0 : verify.maxRepairs;
  const iso = isolationFor(isolation);
  return { checks, maxRepairs, isolation: iso, event: { type: 'check-plan', checks: checks.map(({ id, kind, label }) => ({ id, kind, label })), maxRepairs, isolation: iso } };
}

export interface VerifiedSolve {
  solve: TeamSolve;
  request: SolveRequest;
  verify: VerifyParams;
  /** From planChecks; the caller has already sent its event. */
  plan: CheckPlan;
  onEvent: (event: SolveEvent) => void;
  signal?: AbortSignal;
  /** 'none' turns the sandbox's namespaces off (as planned in planChecks). */
  isolation?: 'auto' | 'none';
}

/** Characters of check output that go into the next round's prompts. */
export const FEEDBACK_CHARS = 1500;

/** The failing checks, their first failures and output tails, within `budget` characters. */
export function repairFeedback(checks: readonly Check[], failing: readonly CheckOutcome[], budget = FEEDBACK_CHARS): string {
  const head = `The previous code failed ${failing.length} of ${checks.length} check${checks.length === 1 ? '' : 's'}. Fix the code so that ${checks.length === 1 ? 'it passes' : 'they all pass'}.`;
  const parts = failing.map((o) => {
    const label = checks.find((c) => c.id === o.check)?.label ?? o.check;
    return { title: `Check ${label}: ${o.status}${o.firstFailure ? `: ${o.firstFailure}` : ''}`, output: o.output.trim() };
  });
  // Titles first; what is left of the budget goes to the output tails, shared evenly.
  const titles = parts.map((p) => p.title.slice(0, Math.floor((budget - head.length) / Math.max(1, parts.length)) - 1));
  let room = budget - head.length - titles.reduce((n, t) => n + t.length + 1, 0);
  const lines = [head];
  parts.forEach((p, i) => {
    lines.push(titles[i]!);
    const share = Math.floor(room / (parts.length - i)) - 20;
    if (share > 40 && p.output && !p.title.includes(p.output)) {
      const tail = p.output.length > share ? `...${p.output.slice(p.output.length - share + 3)}` : p.output;
      lines.push(`Output:\n${tail}`);
      room -= tail.length + 9;
    }
  });
  return lines.join('\n').slice(0, budget);
}

/** The best candidate: most checks passed, then the latest; with the reason, in words. */
export function chooseCandidate(candidates: CandidateChecks[], total: number): { chosen: number; reason: string } {
  let best = candidates[0];
  if (!best) throw new Error('chooseCandidate needs at least one candidate');
  for (const c of candidates) if (c.passed >= best.passed) best = c;
  const n = candidates.length;
  if (total === 0) return { chosen: best.candidate, reason: 'No checks were found for this task, so the answer is unchecked.' };
  if (best.passed === total) return { chosen: best.candidate, reason: `Candidate ${best.candidate} passed ${total === 1 ? 'the check' : `all ${total} checks`}${n > 1 ? ` (after ${best.candidate - 1} repair${best.candidate === 2 ? '' : 's'})` : ''}.` };
  const tie = candidates.filter((c) => c.passed === best.passed).length > 1;
  return {
    chosen: best.candidate,
    reason: `No candidate passed every check; candidate ${best.candidate} passed the most (${best.passed} of ${total})${tie ? ' and is the latest of those' : ''}.`,
  };
}

/** Renumbers a candidate's rounds after the rounds of the candidates before it. */
function shifted(event: SolveEvent, offset: number): SolveEvent {
  if (offset === 0) return event;
  if (event.type === 'round-start') return { ...event, round: event.round + offset, rounds: event.rounds + offset };
  if (event.type === 'solve-start') return { ...event, rounds: event.rounds + offset };
  if ('round' in event && typeof event.round === 'number') return { ...event, round: event.round + offset };
  if (event.type === 'metrics') return { ...event, metrics: shiftStages(event.metrics, offset) };
  return event;
}

function shiftStages(metrics: SolveMetrics, offset: number): SolveMetrics {
  return offset === 0 ? metrics : { ...metrics, stages: metrics.stages.map((s) => ({ ...s, round: s.round + offset })) };
}

function mergeMetrics(all: SolveMetrics[], wallMs: number): SolveMetrics {
  const last = all.at(-1);
  if (!last) throw new Error('mergeMetrics needs the metrics of at least one run');
  return {
    ...last,
    wallMs,
    stages: all.flatMap((m) => m.stages),
    promptTokens: all.reduce((n, m) => n + m.promptTokens, 0),
    latentSteps: all.reduce((n, m) => n + m.latentSteps, 0),
    textTokens: all.reduce((n, m) => n + m.textTokens, 0),
    reusedPromptTokens: all.reduce((n, m) => n + (m.reusedPromptTokens ?? 0), 0),
  };
}

/** Solves, checks and repairs; the result carries the chosen candidate and every check result. */
export async function solveWithChecks(o: VerifiedSolve): Promise<SolveResult> {
  const started = performance.now();
  const { checks, maxRepairs, isolation } = o.plan;
  if (checks.length === 0) o.onEvent({ type: 'warning', message: 'No checks were found: no test command is configured and the task has no doctests, assert lines or input/output examples. The answer is unchecked.' });
  const placement: Placement = { ...(o.verify.file ? { file: o.verify.file } : {}), ...(o.verify.root ? { root: o.verify.root } : {}) };

  const results: SolveResult[] = [];
  const candidates: CandidateChecks[] = [];
  let feedback: string | undefined;
  let offset = 0;
  for (let candidate = 1; ; candidate++) {
    const request: SolveRequest = feedback === undefined ? o.request : { ...o.request, checkFeedback: feedback };
    const roundOffset = offset;
    const result = await o.solve(request, (event) => o.onEvent(shifted(event, roundOffset)), o.signal);
    results.push({ ...result, metrics: shiftStages(result.metrics, roundOffset) });
    offset += result.rounds;

    const code = result.code ?? result.answer;
    const outcomes: CheckOutcome[] = [];
    for (const check of checks) {
      o.onEvent({ type: 'check-start', candidate, check: check.id });
      const outcome = await runCheck(check, code, placement, { limits: { timeoutMs: o.verify.timeoutMs }, signal: o.signal, isolation: o.isolation });
      if (o.signal?.aborted) throw new CancelledError('the solve was cancelled while a check ran');
      outcomes.push(outcome);
      o.onEvent({ type: 'check-end', candidate, ...outcome });
    }
    const passed = outcomes.filter((x) => x.status === 'passed').length;
    candidates.push({ candidate, passed, results: outcomes });
    const failing = outcomes.filter((x) => x.status !== 'passed');
    // A check that cannot run at all (a missing tool) fails every candidate alike: repairs cannot help.
    if (failing.length === 0 || candidate > maxRepairs || failing.every((x) => x.status === 'errored')) break;
    feedback = repairFeedback(checks, failing);
    o.onEvent({ type: 'repair-round', repair: candidate, maxRepairs, candidate: candidate + 1, afterRound: offset, failing: failing.length, feedback });
  }

  const { chosen, reason } = chooseCandidate(candidates, checks.length);
  const picked = results[chosen - 1]!;
  if (chosen !== results.length) o.onEvent({ type: 'answer', text: picked.answer, code: picked.code, language: picked.language });
  o.onEvent({ type: 'candidate-chosen', candidate: chosen, passed: candidates[chosen - 1]!.passed, total: checks.length, reason });
  const metrics = mergeMetrics(results.map((r) => r.metrics), performance.now() - started);
  if (results.length > 1) o.onEvent({ type: 'metrics', metrics });
  const verification: Verification = { checks: checks.map(({ id, kind, label }) => ({ id, kind, label })), isolation, candidates, chosen, reason };
  return { ...picked, rounds: offset, metrics, verification };
}
