import { checkCheckpoints, CheckpointCheckOptions, CheckpointStats, CheckpointViolationKind } from './checkpoint-checker';
import { checkContinuous, ContinuousCheckOptions, ContinuousStats, ContinuousViolationKind } from './continuous-checker';
import { checkTasks, TaskCheckOptions, TaskStats, TaskViolationKind } from './task-checker';
import type { EndLine, HistoryLine, JobLine, NemesisLine, ObserveLine, ScenarioLine, StartLine } from './history';
import { groupBy, iso } from './check-helpers';

/**
 * What a scenario's documented failure policy lets go missing. Nothing else may: every other
 * due time between the scenario's start and end must run once. Each allowance is explicit in
 * the scenario, and turns the nemesis lines of the history into windows of the timeline.
 */
export type Allowance =
  /**
   * A replica killed -9, stopped (SIGSTOP) or cut off: a fire it claimed just before (and never
   * started) is lost, and its orphan lease holds the job for up to `lockTtl` (overlap `skip`).
   */
  | { kind: 'crash' }
  /**
   * Redis unreachable (killed) or stalled (CLIENT PAUSE): the fires due meanwhile run once,
   * late, as one run; the others are skipped. One such late run is required per job.
   */
  | { kind: 'outage' }
  /**
   * Redis lost its state (FLUSHALL, restart without persistence): due times that came before
   * the loss was detected (the job's next claim, at most one period plus `detectMs`) may be
   * skipped, and the cadence may be re-based once.
   */
  | { kind: 'state-loss'; detectMs?: number }
  /** A job whose keys were corrupted may stop running (every other job must not). */
  | { kind: 'corrupt' }
  /** A deploy changed a job's schedule (a `job` line): the gap around the change is not checked. */
  | { kind: 'schedule-change'; settleMs?: number };

export interface CheckOptions {
  allow: Allowance[];
  /** Fail if a job's median start lag is above this (a replica that never wins shows so). */
  lagP50MaxMs?: number;
  /** ctx.startedAt may differ from the true start by this much. @default 500 */
  clockToleranceMs?: number;
  /**
   * Fail if Redis served more than this many times the commands per second measured before the
   * fault (a replica in a hot loop).
   */
  maxRedisLoadFactor?: number;
  /** Runs on a replica sent SIGTERM must end by themselves (drained, not aborted). */
  drain?: boolean;
  /** Check the checkpointing jobs' lastCheckpoint against their calls (checkpoint-checker.ts). */
  checkpoints?: CheckpointCheckOptions;
  /** Check the continuous jobs' ticks (continuous-checker.ts). */
  continuous?: ContinuousCheckOptions;
  /** Check the tasks' attempts (task-checker.ts). */
  tasks?: TaskCheckOptions;
}

export type ViolationKind =
  | 'duplicate'
  | 'lost'
  | 'early'
  | 'fencing'
  | 'clock'
  | 'irregular'
  | 'late-run-missing'
  | 'drain'
  | 'lag'
  | 'redis-load'
  | 'no-runs'
  | CheckpointViolationKind
  | ContinuousViolationKind
  | TaskViolationKind;

export interface Violation {
  kind: ViolationKind;
  job?: string;
  detail: string;
}

export interface LagStats {
  runs: number;
  p50: number;
  p99: number;
  max: number;
}

export interface CheckReport {
  ok: boolean;
  /** One line: the verdict and every count, for logs and reports. */
  summary: string;
  violations: Violation[];
  runs: number;
  /** Due times missing but allowed by the scenario's policy. */
  allowedLost: number;
  lag: Record<string, LagStats>;
  /** With `checkpoints`: what the checkpoint checks saw. */
  checkpoints?: CheckpointStats;
  continuous?: ContinuousStats;
  tasks?: TaskStats;
}

interface Run extends StartLine {
  end: number | null;
  aborted: string | null;
  /** Until when this run's lease may have been live. */
  leaseEnd: number;
}

interface Window {
  from: number;
  to: number;
  /** A gap across this window may be re-based (not a multiple of the period). */
  rebase: boolean;
}

const FINISH_SLACK_MS = 100;
/** How long before a crash a fire the crashed replica claimed may have been due. */
const CLAIM_WINDOW_MS = 500;
/** The longest reconnection backoff of the library (5 s), plus a resync. */
const RECONNECT_MS = 5_500;

export function checkHistory(history: HistoryLine[], options: CheckOptions): CheckReport {
  const scenario = history.filter((line): line is ScenarioLine => line.type === 'scenario');
  const begin = scenario.find((line) => line.phase === 'begin');
  if (!begin) throw new Error('the history has no scenario begin line');
  const end = scenario.find((line) => line.phase === 'end')?.at ?? Math.max(...history.map(timeOf));
  const lockTtl = begin.lockTtl;
  const nemeses = history.filter((line): line is NemesisLine => line.type === 'nemesis').sort((a, b) => a.at - b.at);
  const allowed = (kind: Allowance['kind']) => options.allow.find((allowance) => allowance.kind === kind);
  const violations: Violation[] = [];
  let allowedLost = 0;

  const runs = joinRuns(history, nemeses, lockTtl, end);
  const scheduled = runs.filter((run) => run.trigger === 'SCHEDULE');
  const periodic = (line: HistoryLine): line is JobLine => line.type === 'job' && !line.continuous && !line.onDemand;
  // A scenario of only continuous or on-demand jobs has no scheduled run to expect.
  if (scheduled.length === 0 && history.some(periodic)) violations.push({ kind: 'no-runs', detail: 'no scheduled run at all: the harness or the app is broken' });
  const byJob = groupBy(runs, (run) => run.job);

  for (const [job, jobRuns] of byJob) {
    const jobScheduled = jobRuns.filter((run) => run.trigger === 'SCHEDULE');
    // Duplicates: a due time served twice.
    for (const [due, same] of groupBy(jobScheduled, (run) => run.due)) {
      if (same.length > 1) {
        const who = same.map((run) => `${run.instance}#${run.token} at +${run.start - due} ms`).join(', ');
        violations.push({ kind: 'duplicate', job, detail: `due ${iso(due)} ran ${same.length} times: ${who}` });
      }
    }
    // Early: started before its due time (true clock vs Redis's).
    for (const run of jobRuns) {
      if (run.start < run.due) violations.push({ kind: 'early', job, detail: `${run.instance}#${run.token} started ${run.due - run.start} ms before ${iso(run.due)}` });
    }
    // Fencing: tokens increase with due time ...
    const byDue = [...jobScheduled].sort((a, b) => a.due - b.due || a.start - b.start);
    for (let i = 1; i < byDue.length; i++) {
      const [a, b] = [byDue[i - 1], byDue[i]];
      if (b.due > a.due && b.token <= a.token) {
        violations.push({ kind: 'fencing', job, detail: `due ${iso(b.due)} has token ${b.token} ≤ ${a.token} of the earlier due ${iso(a.due)}` });
      }
    }
    // ... and a run that started while another held a live lease has the higher token.
    const byStart = [...jobRuns].sort((a, b) => a.start - b.start);
    for (let i = 0; i < byStart.length; i++) {
      for (let j = 0; j < i; j++) {
        const [a, b] = [byStart[j], byStart[i]];
        if (b.start < a.leaseEnd && b.token <= a.token && b !== a) {
          violations.push({ kind: 'fencing', job, detail: `${b.instance}#${b.token} started while ${a.instance}#${a.token} held its lease, with a token not above it` });
        }
      }
    }
    // Clocks: the library's ctx.startedAt is on the same clock as the due time.
    const tolerance = options.clockToleranceMs ?? 500;
    const skewed = jobRuns.filter((run) => Math.abs(run.ctxStart - run.start) > tolerance);
    if (skewed.length > 0) {
      const worst = skewed.reduce((a, b) => (Math.abs(b.ctxStart - b.start) > Math.abs(a.ctxStart - a.start) ? b : a));
      violations.push({
        kind: 'clock',
        job,
        detail: `${skewed.length} run(s) with ctx.startedAt off the true start by more than ${tolerance} ms (worst ${worst.ctxStart - worst.start} ms on ${worst.instance})`,
      });
    }
  }

  // Lost due times, per periodic job.
  const jobLines = groupBy(
    history.filter(periodic).sort((a, b) => a.at - b.at),
    (line) => line.job,
  );
  for (const [job, schedule] of jobLines) {
    const jobRuns = byJob.get(job) ?? [];
    const periodAt = (time: number) => [...schedule].reverse().find((line) => line.at <= time)?.every ?? schedule[0].every;
    const windows = exemptionWindows(job, schedule, nemeses, options, periodAt);
    const observed = [...new Set(jobRuns.filter((run) => run.trigger === 'SCHEDULE' && run.due >= begin.at).map((run) => run.due))].sort((a, b) => a - b);
    const checkEnd = end - periodAt(end) - 1_000;
    const missing: number[] = [];
    const irregular: Array<[number, number]> = [];
    if (observed.length === 0) {
      for (let due = begin.at + periodAt(begin.at); due <= checkEnd; due += periodAt(due)) missing.push(due);
    } else {
      for (let due = observed[0] - periodAt(observed[0]); due > begin.at + periodAt(begin.at); due -= periodAt(due)) missing.push(due);
      for (let i = 1; i < observed.length; i++) {
        const [a, b] = [observed[i - 1], observed[i]];
        const period = periodAt(b);
        const gap = b - a;
        if (gap % period !== 0) {
          irregular.push([a, b]);
          continue;
        }
        for (let due = a + period; due < b; due += period) if (due <= checkEnd) missing.push(due);
      }
      const last = observed[observed.length - 1];
      for (let due = last + periodAt(last); due <= checkEnd; due += periodAt(due)) missing.push(due);
    }
    // A claim reply held past its lease (reply-delayed, when the scenario allows crashes) is a crash
    // of that claim: its fire cannot run, whenever in the window it was claimed.
    const crashes = nemeses.filter((line) => ['kill', 'stop', 'blackhole', 'reply-dropped', 'reply-delayed'].includes(line.f));
    const crashLost = allowed('crash')
      ? missing.filter((due) => crashes.some((crash) => due >= crash.at - CLAIM_WINDOW_MS && due <= (crash.f === 'reply-delayed' ? crash.until ?? crash.at : crash.at) + 100))
      : [];
    for (const due of missing) {
      // Skipped by overlap 'skip': an earlier fire's lease (taken at its claim, at or after its due time) was live.
      const overlapped = jobRuns.some((run) => run.trigger === 'SCHEDULE' && run.due < due && run.leaseEnd >= due);
      const inWindow = windows.some((window) => due >= window.from && due <= window.to);
      const afterCrash = crashLost.some((lost) => due >= lost && due <= lost + lockTtl + 500);
      if (overlapped || inWindow || afterCrash) allowedLost++;
      else violations.push({ kind: 'lost', job, detail: `due ${iso(due)} never ran` });
    }
    for (const [a, b] of irregular) {
      if (windows.some((window) => window.rebase && window.from <= b && window.to >= a)) continue;
      violations.push({ kind: 'irregular', job, detail: `due ${iso(a)} then ${iso(b)}: ${b - a} ms apart, not a multiple of ${periodAt(b)} ms` });
    }
    // An outage's fires run once, late: one of them must have run.
    if (allowed('outage')) {
      for (const [from, to] of outages(nemeses)) {
        if (to - from <= periodAt(from) + 500) continue;
        const late = jobRuns.some((run) => run.trigger === 'SCHEDULE' && run.due >= from - 50 && run.due <= to && run.start >= to - 50);
        if (!late) violations.push({ kind: 'late-run-missing', job, detail: `no due time of the outage ${iso(from)}–${iso(to)} ran once it ended` });
      }
    }
  }

  if (options.drain) {
    for (const term of nemeses.filter((line) => line.f === 'term')) {
      for (const run of runs.filter((run) => run.instance === term.instance && run.start <= term.at)) {
        if (run.end === null || run.end >= term.at) {
          if (run.end === null || run.aborted !== null) {
            violations.push({ kind: 'drain', job: run.job, detail: `${run.instance}#${run.token} was ${run.end === null ? 'never ended' : `aborted (${run.aborted})`} after SIGTERM` });
          }
        }
      }
    }
  }

  const lag: Record<string, LagStats> = {};
  for (const [job, jobRuns] of groupBy(scheduled, (run) => run.job)) lag[job] = lagStats(jobRuns);
  if (scheduled.length > 0) lag['*'] = lagStats(scheduled);
  if (options.lagP50MaxMs !== undefined) {
    for (const [job, stats] of Object.entries(lag)) {
      if (job !== '*' && stats.p50 > options.lagP50MaxMs) {
        violations.push({ kind: 'lag', job, detail: `median start lag ${stats.p50} ms, above ${options.lagP50MaxMs} ms` });
      }
    }
  }
  if (options.maxRedisLoadFactor !== undefined) {
    const observed = history.filter((line): line is ObserveLine => line.type === 'observe');
    const baseline = observed.find((line) => line.phase === 'before');
    for (const line of observed.filter((line) => line.phase === 'after')) {
      if (baseline && line.value > baseline.value * options.maxRedisLoadFactor) {
        violations.push({ kind: 'redis-load', detail: `${line.value} Redis commands/s after the fault, ${(line.value / baseline.value).toFixed(1)} × the ${baseline.value} before it` });
      }
    }
  }

  let checkpoints: CheckpointStats | undefined;
  if (options.checkpoints) {
    const checked = checkCheckpoints(history, options.checkpoints);
    violations.push(...checked.violations);
    checkpoints = checked.stats;
  }

  let continuous: ContinuousStats | undefined;
  if (options.continuous) {
    const checked = checkContinuous(history, options.continuous);
    violations.push(...checked.violations);
    continuous = checked.stats;
  }
  let tasks: TaskStats | undefined;
  if (options.tasks) {
    const checked = checkTasks(history, options.tasks);
    violations.push(...checked.violations);
    tasks = checked.stats;
  }

  const count = (kind: ViolationKind) => violations.filter((violation) => violation.kind === kind).length;
  const all = lag['*'];
  const others = violations.filter((violation) => !['duplicate', 'lost', 'early', 'fencing', 'clock', 'irregular'].includes(violation.kind));
  const summary =
    `${begin.name} seed=${begin.seed}: ${violations.length === 0 ? 'PASS' : 'FAIL'} ` +
    `runs=${runs.length} duplicates=${count('duplicate')} lost=${count('lost')} (allowed ${allowedLost}) early=${count('early')} ` +
    `fencing=${count('fencing')} clock=${count('clock')} irregular=${count('irregular')} other=${others.length}` +
    (others.length > 0 ? ` [${[...new Set(others.map((violation) => violation.kind))].join(', ')}]` : '') +
    (all ? `; lag ms p50/p99/max ${all.p50}/${all.p99}/${all.max}` : '') +
    (checkpoints
      ? `; checkpoints: resumes=${checkpoints.resumes} after-cut=${checkpoints.afterCut} (max lag ${checkpoints.maxLagAfterCut} items) ` +
        `zombies=${checkpoints.zombies} refusals=${checkpoints.refusals}`
      : '') +
    (continuous ? `; continuous: ${continuousSummary(continuous)}` : '') +
    (tasks
      ? `; tasks: ${tasks.tasks} attempts=${tasks.attempts} retries=${tasks.retries} recovered=${tasks.recovered} handed-back=${tasks.handedBack} crash-overlaps=${tasks.crashOverlaps} crash-duplicates=${tasks.crashDuplicates} ` +
        `max-attempt=${tasks.maxAttempt} last success ${tasks.drainMs} ms after the faults`
      : '');
  return { ok: violations.length === 0, summary, violations, runs: runs.length, allowedLost, lag, checkpoints, continuous, tasks };
}

function continuousSummary(stats: ContinuousStats): string {
  const jobs = Object.entries(stats.jobs).map(([job, s]) => `${job} (max ${s.max}) tokens=${s.tokens} longest short ${s.longestShortMs} ms`);
  const delays = [...stats.zombieDelaysAfterCont].sort((a, b) => a - b);
  const zombies = `zombie ticks=${stats.zombieTicks} (allowed ${stats.allowedZombieTicks}${delays.length ? `, ${delays[0]}–${delays[delays.length - 1]} ms after SIGCONT` : ''})`;
  return `${jobs.join(', ')}; ${zombies}; holder faults=${stats.holderFaults}`;
}

function joinRuns(history: HistoryLine[], nemeses: NemesisLine[], lockTtl: number, end: number): Run[] {
  const ends = new Map<string, EndLine>();
  for (const line of history) if (line.type === 'end') ends.set(`${line.job}|${line.token}|${line.instance}`, line);
  const losses = nemeses.filter((line) => line.f === 'flushall' || line.f === 'redis-down');
  return history
    .filter((line): line is StartLine => line.type === 'start')
    .map((start) => {
      const ended = ends.get(`${start.job}|${start.token}|${start.instance}`);
      let leaseEnd = ended ? ended.end + FINISH_SLACK_MS : end + lockTtl;
      // A replica killed, stopped or cut off before its finish reached Redis leaves the lease to
      // expire by itself, at most lockTtl after its last renewal: later than the run's end if the
      // finish was lost, earlier if the process was frozen.
      const cut = nemeses.find((line) => line.instance === start.instance && ['kill', 'stop', 'blackhole'].includes(line.f) && line.at >= start.start && line.at <= leaseEnd);
      if (cut) leaseEnd = cut.at + lockTtl;
      const loss = losses.find((line) => line.at >= start.start);
      if (loss) leaseEnd = Math.min(leaseEnd, loss.at);
      return { ...start, end: ended?.end ?? null, aborted: ended?.aborted ?? null, leaseEnd };
    });
}

function exemptionWindows(
  job: string,
  schedule: JobLine[],
  nemeses: NemesisLine[],
  options: CheckOptions,
  periodAt: (time: number) => number,
): Window[] {
  const windows: Window[] = [];
  for (const allowance of options.allow) {
    if (allowance.kind === 'outage') {
      for (const [from, to] of outages(nemeses)) windows.push({ from: from - 50, to: to + RECONNECT_MS, rebase: false });
    } else if (allowance.kind === 'state-loss') {
      const detect = allowance.detectMs ?? 1_000;
      for (const line of nemeses) {
        if (line.f === 'flushall') windows.push({ from: line.at - 50, to: line.at + periodAt(line.at) + detect, rebase: true });
      }
      for (const [from, to] of outages(nemeses, 'redis-down')) windows.push({ from: from - 50, to: to + RECONNECT_MS + periodAt(to) + detect, rebase: true });
    } else if (allowance.kind === 'corrupt') {
      for (const line of nemeses) if (line.f === 'corrupt' && line.job === job) windows.push({ from: line.at - 50, to: Infinity, rebase: true });
    } else if (allowance.kind === 'schedule-change') {
      for (const line of schedule.slice(1)) {
        windows.push({ from: line.at - periodAt(line.at - 1), to: line.at + (allowance.settleMs ?? 3_000), rebase: true });
      }
    }
  }
  return windows;
}

/** Redis outages (down → up) and stalls (CLIENT PAUSE), as [from, to]. */
function outages(nemeses: NemesisLine[], only?: 'redis-down'): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const line of nemeses) {
    if (line.f === 'redis-down') {
      const up = nemeses.find((next) => next.f === 'redis-up' && next.at >= line.at);
      spans.push([line.at, up?.at ?? Infinity]);
    } else if (line.f === 'client-pause' && !only) {
      spans.push([line.at, line.until ?? line.at]);
    }
  }
  return spans;
}

function lagStats(runs: Run[]): LagStats {
  const lags = runs.map((run) => run.start - run.due).sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))];
  return { runs: lags.length, p50: at(0.5), p99: at(0.99), max: lags[lags.length - 1] };
}


function timeOf(line: HistoryLine): number {
  return line.type === 'start' ? line.start : line.type === 'end' ? line.end : line.at;
}
