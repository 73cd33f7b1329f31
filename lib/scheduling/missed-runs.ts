import { parseDuration } from './duration';
import type { NextFire, Schedule } from './schedule';
import { MAX_PERIOD_MS } from './schedule-bounds';

/**
 * What a job does with the due times that passed while nobody could serve them (the whole
 * cluster was down, Redis was unreachable, or its state came back from the past):
 * - `skip`: none of them runs; the job goes on at its next due time after now.
 * - `once`: one run now, for the latest of them (`ctx.scheduledAt`), marked `ctx.catchUp`.
 * - `all`: one run per missed due time within `catchUpWindow` (the latest `maxCatchUp` of
 *   them), oldest first, one at a time; then the job goes on at its next due time.
 */
export type MissedPolicy = 'skip' | 'once' | 'all';

export const MISSED_POLICIES: readonly MissedPolicy[] = ['skip', 'once', 'all'];

/** A job's missed-run policy with every default applied. */
export interface MissedRuns {
  policy: MissedPolicy;
  /** How far back (ms) a missed due time may still run; older ones are skipped and counted. */
  catchUpWindow: number;
  /** `all`: at most this many catch-up runs per outage, the latest ones; the older ones are skipped and counted. */
  maxCatchUp: number;
}

/**
 * The defaults, and why: a team with a nightly report whose cluster was down at 03:00 expects
 * that night's report when the cluster is back, once, not nothing (`skip`, the rival's default,
 * loses it silently unless someone reads the logs) and not one per night missed (`all`, which
 * replays history a report job rarely wants). A day back covers the nightly job's one missed
 * fire; an outage longer than that is for a person to decide about. The cap keeps `all` from
 * replaying thousands of runs of a frequent job.
 */
export const DEFAULT_MISSED_RUNS: MissedRuns = { policy: 'once', catchUpWindow: 24 * 3_600_000, maxCatchUp: 100 };

/** `maxCatchUp` is at most this: each claim of an `all` catch-up walks back that many due times. */
export const MAX_CATCH_UP = 1_000;

/**
 * A due time claimed later than this after it fell due (and before the next one) is late, not
 * missed: it runs as an ordinary fire. `lockTtl` bounds the delays the scheduler itself makes (a
 * claim left in doubt is resolved within it), and 2 s covers a backup replica's claim (100 ms
 * late), a claim retried once (1 s later) and ordinary lag, so a claim a few hundred ms late
 * because of a slow Redis or a busy event loop never counts as missed.
 */
export function missedGrace(lockTtl: number): number {
  return Math.max(lockTtl, 2_000);
}

/** A range of due times, counted (a lower bound if `exact` is false: a cron schedule walked only so far). */
export interface DueRange {
  count: number;
  exact: boolean;
  from: number;
  to: number;
}

/** What a claim of a job's due time does when some of its due times were missed. */
export interface MissedPlan {
  policy: MissedPolicy;
  /** The due time the run serves (`ctx.scheduledAt`); null: nothing runs. */
  serve: number | null;
  /** True if a run serves a missed due time (`ctx.catchUp`): `serve` is not null. */
  catchUp: boolean;
  /** The job's next due time: for `all`, the next missed one while any is left to run. */
  next: NextFire;
  /** Every due time this claim found missed (not served in its own period, or later than the grace). */
  missed: DueRange;
  /** The missed due times this claim consumes without a run, by policy; null for none. */
  skipped: DueRange | null;
  /** The latest due time this claim consumes (run or skipped), the `served` watermark if nothing runs. */
  through: number;
  /** `all`: the catch-up runs planned from this one on, this one included (0 if none runs). */
  runs: number;
}

/**
 * Plans the claim of a job whose due time is `due` (base `base`) at `now` (the coordinator's
 * clock): null if nothing was missed (the ordinary claim), else which due time runs, which are
 * skipped, and the next due time, by the job's policy.
 *
 * A due time is missed if it is claimed after the next one has come too (it was not served in
 * its own period), or more than `grace` after it fell due. Then every due time that has come
 * since belongs to the same episode, the latest one included, however recent: after an outage
 * the latest due time runs as a catch-up (`once`), or not at all (`skip`), whatever the moment
 * the cluster came back within its period. Missed due times older than the window never run,
 * and with a `threshold` none runs later than that after its due time (the coordinator skips it
 * as late).
 *
 * Catch-up due times are bases: the jitter of a due time that passed is of no use.
 */
export function planMissed(
  schedule: Schedule,
  base: number,
  due: number,
  now: number,
  options: MissedRuns & { grace: number; threshold?: number | null },
  random: () => number = Math.random,
): MissedPlan | null {
  const { grace } = options;
  const { every } = schedule.spec;
  // The common case costs no cron walk: claimed within the grace, and too soon for another base.
  if (now - due <= grace && now - base < (every ?? 1_000)) return null;
  const after = schedule.countBases(base, now);
  // Claimed within the grace, and no later due time has come: an ordinary (late) claim.
  if (after.count === 0 && now - due <= grace) return null;
  // Once one due time was missed, every due time that has come since is part of the episode,
  // the latest one included (it runs as a catch-up under `once` and `all`, not at all under `skip`).
  const latest = after.count > 0 ? schedule.latestBases(base, now, 1)[0] : due;

  /** The due time of the base before `b` (`due` for the first base after `base`). */
  const before = (b: number): number => schedule.latestBases(base, b - 1, 1)[0] ?? due;
  const missed: DueRange = { count: 1 + after.count, exact: after.exact, from: due, to: latest };
  const windowStart = now - options.catchUpWindow;
  /** The latest `n` missed due times within the window, oldest first. */
  const candidates = (n: number): number[] => {
    const bases = schedule.latestBases(base, now, n).filter((b) => b >= windowStart);
    if (bases.length < n && due >= windowStart) bases.unshift(due);
    return bases;
  };
  const following = (): NextFire => schedule.next(base, now, random);
  const plan = (serve: number | null, next: NextFire, skipped: DueRange | null, runs = 0): MissedPlan => ({
    policy: options.policy,
    serve,
    catchUp: serve !== null,
    next,
    missed,
    skipped: skipped && skipped.count > 0 ? skipped : null,
    through: serve ?? latest,
    runs,
  });
  // Nothing to catch up (`skip`, or none within the window): every missed due time is skipped.
  if (options.policy === 'skip') return plan(null, following(), missed);
  let kept = candidates(options.policy === 'once' ? 1 : options.maxCatchUp);
  // `threshold` is judged by the coordinator on the due time a run serves: one later than it is
  // skipped as late (counted in skippedLate, as before). `all` plans no chain of runs bound to be
  // late: only those within the threshold, or else the latest, which the coordinator skips as late.
  if (options.policy === 'all' && options.threshold != null && kept.length > 0) {
    const timely = kept.filter((b) => now - b <= options.threshold!);
    kept = timely.length > 0 ? timely : kept.slice(-1);
  }
  if (kept.length === 0) return plan(null, following(), missed);
  const serve = kept[0];
  if (options.policy === 'once') {
    const skipped = { count: missed.count - 1, exact: missed.exact, from: due, to: serve === due ? due : before(serve) };
    return plan(serve, following(), skipped, 1);
  }
  // all: the oldest kept runs now; the next one is claimed when it has ended.
  const skippedCount = serve === due ? 0 : 1 + schedule.countBases(base, serve - 1).count;
  const skipped = { count: skippedCount, exact: missed.exact, from: due, to: serve === due ? due : before(serve) };
  const next = kept.length > 1 ? { base: kept[1], due: kept[1] } : following();
  return plan(serve, next, skipped, kept.length);
}

/** The options that set a missed-run policy, on `@DistributedJob` and as the module's defaults. */
export interface MissedRunsOptions {
  missed?: MissedPolicy;
  catchUpWindow?: number | string;
  maxCatchUp?: number;
}

/**
 * Validates missed-run options over `defaults`, field by field; `fail` names the option and the
 * value (a job's error names the job too).
 */
export function checkMissedRuns(
  options: MissedRunsOptions,
  defaults: MissedRuns,
  fail: (option: string, value: unknown, reason: string) => never,
): MissedRuns {
  const { missed, catchUpWindow, maxCatchUp } = options;
  if (missed !== undefined && !MISSED_POLICIES.includes(missed)) {
    fail('missed', missed, `expected one of ${MISSED_POLICIES.map((policy) => `'${policy}'`).join(', ')}`);
  }
  let window = defaults.catchUpWindow;
  if (catchUpWindow !== undefined) {
    const parsed = parseDuration(catchUpWindow);
    if (parsed === undefined || parsed > MAX_PERIOD_MS) fail('catchUpWindow', catchUpWindow, "expected a duration from 1 ms to 366 days, in ms or such as '24h'");
    window = parsed!;
  }
  if (maxCatchUp !== undefined && (!Number.isInteger(maxCatchUp) || maxCatchUp < 1 || maxCatchUp > MAX_CATCH_UP)) {
    fail('maxCatchUp', maxCatchUp, `expected a whole number of runs from 1 to ${MAX_CATCH_UP}`);
  }
  return { policy: missed ?? defaults.policy, catchUpWindow: window, maxCatchUp: maxCatchUp ?? defaults.maxCatchUp };
}

/** True if `policy` is the library's default, which the shared definition leaves out (definitions of earlier versions stay identical). */
export function isDefaultMissedRuns(policy: MissedRuns): boolean {
  return (
    policy.policy === DEFAULT_MISSED_RUNS.policy &&
    policy.catchUpWindow === DEFAULT_MISSED_RUNS.catchUpWindow &&
    policy.maxCatchUp === DEFAULT_MISSED_RUNS.maxCatchUp
  );
}

/** A policy read back from a definition in force (written by any replica, or by hand): the default if it is not one. */
export function missedRunsOf(stored: unknown): MissedRuns {
  if (stored === undefined || stored === null || typeof stored !== 'object') return DEFAULT_MISSED_RUNS;
  const { policy, catchUpWindow, maxCatchUp } = stored as Partial<MissedRuns>;
  if (!MISSED_POLICIES.includes(policy as MissedPolicy)) return DEFAULT_MISSED_RUNS;
  if (typeof catchUpWindow !== 'number' || !(catchUpWindow > 0)) return DEFAULT_MISSED_RUNS;
  if (!Number.isInteger(maxCatchUp) || maxCatchUp! < 1) return DEFAULT_MISSED_RUNS;
  return { policy: policy!, catchUpWindow, maxCatchUp: Math.min(maxCatchUp!, MAX_CATCH_UP) };
}
