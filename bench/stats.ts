/** Figures computed from the runs the replicas report; pure functions, no I/O. */

export interface RunRecord {
  name: string;
  /** The due time this run serves (ctx.scheduledAt), epoch ms. */
  scheduledAt: number;
  /** Date.now() at the handler's entry, epoch ms. */
  startedAt: number;
  /** ctx.startedAt: when the library started the run, right after its claim succeeded. */
  claimedAt: number;
  /** Ours only: the other systems have no fencing token. */
  fencingToken?: number;
  instanceId: string;
}

export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface Window {
  start: number;
  end: number;
}

export interface RunFigures {
  runs: number;
  lagMs: { p50: number; p99: number; max: number; mean: number };
  /** The part of the lag before the library started the run (wake-up and claim), ctx.startedAt − scheduledAt. */
  claimLagMs: { p50: number; p99: number; max: number };
  /** Runs whose handler started before their due time. */
  early: number;
  /** Extra runs of a (job, scheduledAt) that had already run. */
  duplicates: number;
  /** Due times in the window that no run served. */
  missed: number;
  /** Consecutive due times of a job that are not a whole number of periods apart. */
  offCadence: number;
  /** Runs whose fencing token was not above the previous run's of the same job; null without tokens. */
  fencingNotIncreasing: number | null;
  runsPerInstance: Record<string, number>;
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Figures of the runs whose due time falls in the window. Lag is startedAt − scheduledAt.
 * Each job should run once per period with due times exactly `periodMs` apart, so a gap of
 * k periods between consecutive due times is k − 1 misses; so is a gap between a window edge
 * and the job's first or last due time in it. A job with no run at all missed the whole window.
 */
export function analyzeRuns(all: RunRecord[], window: Window, periodMs: number, jobNames: string[]): RunFigures {
  const runs = all.filter((run) => run.scheduledAt >= window.start && run.scheduledAt < window.end);
  const lags = runs.map((run) => run.startedAt - run.scheduledAt).sort((a, b) => a - b);
  const claimLags = runs.map((run) => run.claimedAt - run.scheduledAt).sort((a, b) => a - b);
  const byJob = new Map<string, RunRecord[]>(jobNames.map((name) => [name, []]));
  const runsPerInstance: Record<string, number> = {};
  for (const run of runs) {
    byJob.get(run.name)?.push(run);
    runsPerInstance[run.instanceId] = (runsPerInstance[run.instanceId] ?? 0) + 1;
  }
  const fenced = runs.length > 0 && runs.every((run) => run.fencingToken !== undefined);
  let duplicates = 0;
  let missed = 0;
  let offCadence = 0;
  let fencingNotIncreasing = 0;
  const periodsInWindow = Math.floor((window.end - window.start) / periodMs);
  for (const jobRuns of byJob.values()) {
    if (jobRuns.length === 0) {
      missed += periodsInWindow;
      continue;
    }
    jobRuns.sort((a, b) => a.scheduledAt - b.scheduledAt || a.startedAt - b.startedAt);
    missed += Math.floor((jobRuns[0].scheduledAt - window.start) / periodMs);
    missed += Math.floor((window.end - 1 - jobRuns[jobRuns.length - 1].scheduledAt) / periodMs);
    for (let i = 1; i < jobRuns.length; i++) {
      const gap = jobRuns[i].scheduledAt - jobRuns[i - 1].scheduledAt;
      if (fenced && jobRuns[i].fencingToken! <= jobRuns[i - 1].fencingToken!) fencingNotIncreasing++;
      if (gap === 0) {
        duplicates++;
        continue;
      }
      if (gap % periodMs !== 0) offCadence++;
      missed += Math.max(0, Math.round(gap / periodMs) - 1);
    }
  }
  return {
    runs: runs.length,
    lagMs: {
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: percentile(lags, 100),
      mean: lags.length > 0 ? lags.reduce((sum, lag) => sum + lag, 0) / lags.length : NaN,
    },
    claimLagMs: { p50: percentile(claimLags, 50), p99: percentile(claimLags, 99), max: percentile(claimLags, 100) },
    early: lags.filter((lag) => lag < 0).length,
    duplicates,
    missed,
    offCadence,
    fencingNotIncreasing: fenced ? fencingNotIncreasing : null,
    runsPerInstance,
  };
}

export interface CommandStat {
  calls: number;
  usec: number;
}

/** Parses `INFO commandstats` into calls and time per command (`cmdstat_hset:calls=3,usec=9,...`). */
export function parseCommandStats(info: string): Record<string, CommandStat> {
  const stats: Record<string, CommandStat> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats[match[1]] = { calls: Number(match[2]), usec: Number(match[3]) };
  }
  return stats;
}

export interface RedisCost {
  /** Every command Redis executed, including the ones Lua scripts call. */
  calls: number;
  /** EVALSHA / EVAL: one per script round trip. */
  scriptCalls: number;
  byCommand: Record<string, CommandStat>;
}

/** The scheduler's share of the stats: the bench's own CONFIG RESETSTAT and INFO are left out. */
export function redisCost(stats: Record<string, CommandStat>): RedisCost {
  const byCommand = Object.fromEntries(Object.entries(stats).filter(([name]) => !/^(config|info)\b/.test(name)));
  const values = Object.entries(byCommand);
  const scripts = values.filter(([name]) => name === 'evalsha' || name === 'eval');
  return {
    calls: values.reduce((sum, [, stat]) => sum + stat.calls, 0),
    scriptCalls: scripts.reduce((sum, [, stat]) => sum + stat.calls, 0),
    byCommand,
  };
}
