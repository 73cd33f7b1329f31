/**
 * What happens when a job falls due while an earlier run of it is still running anywhere in the
 * cluster.
 * - `skip`: the new fire is skipped and logged.
 * - `allow`: both run.
 * - `queue-one`: one more run starts right after the current one ends (further fires are skipped).
 * - `cancel-previous`: the running one is aborted through its `ctx.signal` and the new one starts.
 */
export type OverlapPolicy = 'skip' | 'allow' | 'queue-one' | 'cancel-previous';

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
   * Requests one run when the app starts. Replicas that start within a minute of each other
   * share one such run.
   * @default false
   */
  runOnStart?: boolean;
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
}
