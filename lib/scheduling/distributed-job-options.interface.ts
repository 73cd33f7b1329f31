/**
 * What happens when a job falls due while an earlier run of it is still running anywhere in the
 * cluster.
 * - `skip`: the new fire is skipped and logged.
 * - `allow`: both run.
 * - `queue-one`: one more run starts right after the current one ends (further fires are skipped).
 * - `cancel-previous`: the running one is aborted through its `ctx.signal` and the new one starts.
 */
export type OverlapPolicy = 'skip' | 'allow' | 'queue-one' | 'cancel-previous';

import type { CheckpointOptions } from '../checkpoint/checkpoint.interface';
import type { MissedPolicy } from './missed-runs';
import type { RetryOptions } from '../retry/retry.interface';
import type { JobHostsOptions } from '../cluster/hosts.options';
import type { ContinuousJobOptions } from '../continuous/continuous.options';

export const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['skip', 'allow', 'queue-one', 'cancel-previous'];

export interface DistributedJobOptions {
  /**
   * Unique name of the job across the app (and so across its replicas).
   * @default `${ClassName}.${methodName}`
   */
  name?: string;
  /** A cron expression of 5 fields, or 6 with seconds first. Exclusive with `every`. */
  cron?: string;
  /** IANA time zone the `cron` expression is read in. @default the process's time zone */
  timeZone?: string;
  /**
   * A fixed offset from UTC, in minutes (e.g. `330` for UTC+05:30), that the `cron` expression
   * is read in, without daylight saving time. Exclusive with `timeZone`.
   */
  utcOffset?: number;
  /**
   * A fixed period: milliseconds, or a string such as `'30s'`, `'5m'`, `'1h'`. Exclusive with `cron`.
   * With neither `cron` nor `every`, the job runs only when triggered.
   */
  every?: number | string;
  /**
   * A random delay, as a fraction (0..1) of the period, added to each next due time so that
   * jobs sharing a schedule do not all start at the same instant.
   * @default 0
   */
  jitter?: number;
  /** Time limit of one run (ms or a duration string); `ctx.signal` aborts and the run ends as timed out. */
  timeout?: number | string;
  /** @default 'skip' */
  overlap?: OverlapPolicy;
  /** Registers the job paused; it runs only once resumed (or triggered). @default false */
  paused?: boolean;
  /**
   * Requests one run when the app starts, or `delay` (ms or a duration string) after it starts.
   * Replicas that request it within a minute of each other share one such run.
   * @default false
   */
  runOnStart?: boolean | { delay: number | string };
  /**
   * Runs the job once across the cluster at this time (a one-shot; exclusive with `cron` and
   * `every`). A time already past when the app starts is logged and not run.
   */
  at?: Date;
  /**
   * A scheduled fire claimed more than this many ms after its due time is skipped (and counted
   * in `describe`'s `skippedLate`) instead of running late, e.g. after Redis was unreachable.
   * Keep it above 100 ms, the delay after which replicas take over from a dead one. It also
   * bounds catch-up: no run starts more than this after the due time it serves.
   * @default none: a late fire runs, late (or as the `missed` policy says, if it was missed)
   */
  threshold?: number;
  /**
   * What to do with the due times that passed while nobody could serve them (the whole cluster
   * was down, Redis was unreachable, or its state was restored from the past): `'skip'` them (the
   * job goes on at its next due time), run `'once'` for the latest of them, or run `'all'` of them,
   * oldest first and one at a time. Catch-up runs have `ctx.catchUp` set and `ctx.scheduledAt` the
   * due time they serve; skipped ones are counted (`describe().skippedMissed`). A due time counts
   * as missed when it is claimed after the next one has come too, or later than
   * `max(lockTtl, 2 s)` after it fell due.
   * @default the module's `missed` ('once')
   */
  missed?: MissedPolicy;
  /**
   * How far back (ms or a duration string) a missed due time may still run; older ones are
   * skipped and counted. @default the module's `catchUpWindow` ('24h')
   */
  catchUpWindow?: number | string;
  /**
   * `missed: 'all'`: at most this many catch-up runs (the latest missed due times); the older ones
   * are skipped and counted. From 1 to 1,000. @default the module's `maxCatchUp` (100)
   */
  maxCatchUp?: number;
  /**
   * A replica claims none of the job's scheduled fires during this long (ms or a duration
   * string) after it starts; replicas up for longer still do. When they all start together, a
   * fire due meanwhile runs once at the end of the delay (or is skipped, with `threshold`).
   * @default 0
   */
  initialDelay?: number | string;
  /**
   * With execution records: the vendor type of this job's executions, to group runs of several
   * jobs, or to find the hooks (`@OnTaskStatusChange` ...) that apply to them.
   * @default the job's name
   */
  vendorType?: string;
  /**
   * With execution records: how many of the newest executions of this job's vendor type the
   * built-in sweep keeps. @default the module's `records.retain`
   */
  retain?: number;
  /**
   * When this job's `ctx.checkpoint` updates are written: overrides the module's `checkpoint`
   * options, field by field. @default the module's `checkpoint`
   */
  checkpoint?: CheckpointOptions;
  /**
   * Retries of a run whose handler throws (or runs past `timeout`): `attempts` in all, waiting
   * `backoff.delay * backoff.factor ^ (n - 1)` (at most `maxDelay`, less a random `jitter` part)
   * after attempt n fails; `retryIf(error)` returning false stops them. Each attempt is a new
   * claim with a new fencing token, serving the same `ctx.scheduledAt`; `ctx.attempt` is its
   * number. A pending retry waits in the coordinator, so another replica runs it if this one dies.
   * It is claimed under the job's `overlap` policy, as any trigger (a task's retry is not).
   * @default the module's `retry` (no retry)
   */
  retry?: RetryOptions;
  /**
   * Which replicas may run this job's fires: `{ labels }` only those whose module `labels`
   * match; with `strategy` (`'spread'`, `'sticky'`, `'random'` or your own) and `max`, only the
   * `max` replicas the strategy chooses among the matching live workers (`{ strategy: 'sticky',
   * max: 1 }` is a leader). Replicas with `worker: false` never run it. A job no live replica may
   * run waits until one joins.
   * @default every worker replica
   */
  hosts?: JobHostsOptions;
  /**
   * Runs the handler continuously on up to `max` replicas at once (a consumer loop, a leader, a
   * cache warmer), chosen by `strategy` (default `'sticky'`) among the live workers carrying
   * `labels`, for as long as each is chosen: a replica no longer chosen has its run aborted
   * through `ctx.signal` (reason `unchosen`), a newly chosen one starts one. Each run holds a slot
   * lease with its own fencing token; the coordinator never gives more than `max` at once. A run
   * whose handler returns or throws while its replica is still chosen is started again after a
   * backoff. `{ max: 1 }` is a leader. Excludes `cron`, `every`, `at`, `runOnStart`, `hosts`,
   * `retry` and `initialDelay`.
   * @default none: the job runs at its schedule, or when triggered
   */
  continuous?: ContinuousJobOptions;
  /**
   * At most this many of this job's tasks (`TaskManager.create`) run at once across the cluster,
   * enforced when a replica claims one; the others wait until one ends. Tasks are governed by this
   * only: the `overlap` policy and the manual lock apply to the job's own fires, which never
   * count, wait for, skip or cancel its tasks (nor the other way round). A whole number, 1 or more.
   * @default no limit (each replica still runs at most its `worker.concurrency` tasks)
   */
  concurrency?: number;
}
