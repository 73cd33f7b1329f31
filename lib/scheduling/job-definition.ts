import { CronExpressionParser } from 'cron-parser';
import { InvalidJobOptionError } from '../errors';
import { DistributedJobOptions, OVERLAP_POLICIES, OverlapPolicy } from './distributed-job-options.interface';
import { MAX_TIMER_DURATION_MS, parseDuration } from './duration';
import { ScheduleSpec } from './schedule';
import type { ResolvedCheckpointOptions } from '../checkpoint/checkpoint.interface';
import { checkCheckpointOptions } from '../checkpoint/checkpoint.options';
import { checkCronFrequency, checkPeriod, DEFAULT_SCHEDULE_BOUNDS, ScheduleBounds } from './schedule-bounds';
import { defineHosts, JobHosts } from '../cluster/hosts.options';
import { checkMissedRuns, DEFAULT_MISSED_RUNS, isDefaultMissedRuns, MissedRuns } from './missed-runs';
import type { ResolvedRetryOptions } from '../retry/retry.interface';
import { checkRetryOptions } from '../retry/retry.options';
import { ContinuousPlacement, defineContinuous } from '../continuous/continuous.options';

/** A job's options after validation, with defaults applied once. */
export interface JobDefinition {
  readonly name: string;
  /** Null for an on-demand job, which runs only when triggered. */
  readonly spec: ScheduleSpec | null;
  readonly overlap: OverlapPolicy;
  readonly paused: boolean;
  readonly runOnStart: boolean;
  /** How long after the app starts the `runOnStart` run is requested. */
  readonly startDelay: number;
  /** A one-shot run's time (epoch ms), or null. */
  readonly at: number | null;
  /** A scheduled fire later than this (ms) is skipped; null for none. */
  readonly threshold: number | null;
  /** How long after this replica starts it begins claiming the job's scheduled fires. */
  readonly initialDelay: number;
  readonly timeout: number | null;
  /** The vendor type of its execution records. */
  readonly vendorType: string;
  /** Executions of its vendor type the sweep keeps; null for the module's default. */
  readonly retain: number | null;
  /** The checkpoint options this job sets; the module's apply to the others. */
  readonly checkpoint: Partial<ResolvedCheckpointOptions>;
  /** What its missed due times become: its own options over the module's defaults. */
  readonly missedRuns: MissedRuns;
  /** The retry fields this job sets; the module's apply to the others (`resolveRetry`). */
  readonly retry: Partial<ResolvedRetryOptions>;
  /** Which replicas may run its fires; null: every worker. Local to each replica, never shared. */
  readonly hosts: JobHosts | null;
  /** Runs on up to `max` chosen replicas at once, for as long as each is chosen; null for a job that fires. */
  readonly continuous: ContinuousPlacement | null;
  /** At most this many of its tasks run at once across the cluster; null for no limit. Local, as `threshold`. */
  readonly concurrency: number | null;
}

/** What the cluster agrees on for a job; replicas compare it to detect a changed definition. */
export interface SharedJobDefinition {
  spec: ScheduleSpec | null;
  overlap: OverlapPolicy;
  paused: boolean;
  /**
   * The missed-run policy, left out when it is the library's default, so that the definitions
   * (and their hashes) of jobs registered by earlier versions stay identical. Shared: every
   * replica applies the policy in force, and a deploy that changes it replaces the definition.
   */
  missed?: MissedRuns;
  /** A continuous job's cap of runs at once (left out for other jobs, whose hashes stay as they were). */
  continuous?: { max: number };
}

const MAX_NAME_LENGTH = 200;
/** The width of the records' vendor_type column. */
const MAX_VENDOR_TYPE_LENGTH = 64;

/** Validates a job's options; every error names the job, the option and the value. */
export function defineJob(
  options: DistributedJobOptions,
  defaultName: string,
  bounds: ScheduleBounds = DEFAULT_SCHEDULE_BOUNDS,
  missedDefaults: MissedRuns = DEFAULT_MISSED_RUNS,
): JobDefinition {
  const name = options.name ?? defaultName;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH || /[\r\n]/.test(name)) {
    throw new InvalidJobOptionError(String(defaultName), 'name', name, `expected a non-empty string of at most ${MAX_NAME_LENGTH} characters on one line`);
  }
  const overlap = options.overlap ?? 'skip';
  if (!OVERLAP_POLICIES.includes(overlap)) {
    throw new InvalidJobOptionError(name, 'overlap', overlap, `expected one of ${OVERLAP_POLICIES.map((p) => `'${p}'`).join(', ')}`);
  }
  if (options.paused !== undefined && typeof options.paused !== 'boolean') {
    throw new InvalidJobOptionError(name, 'paused', options.paused, 'expected true or false');
  }
  let timeout: number | null = null;
  if (options.timeout !== undefined) {
    timeout = parseDuration(options.timeout) ?? null;
    if (timeout === null || timeout > MAX_TIMER_DURATION_MS) {
      throw new InvalidJobOptionError(name, 'timeout', options.timeout, "expected a duration from 1 ms to 24 days, in ms or such as '30s'");
    }
  }
  const vendorType = options.vendorType ?? name;
  if (typeof vendorType !== 'string' || vendorType === '' || vendorType.length > MAX_VENDOR_TYPE_LENGTH) {
    throw new InvalidJobOptionError(name, 'vendorType', vendorType, `expected a non-empty string of at most ${MAX_VENDOR_TYPE_LENGTH} characters`);
  }
  if (options.retain !== undefined && (!Number.isInteger(options.retain) || options.retain < 0)) {
    throw new InvalidJobOptionError(name, 'retain', options.retain, 'expected a whole number of executions to keep, 0 or more');
  }
  const checkpoint = checkCheckpointOptions(options.checkpoint, (option, value, reason) => {
    throw new InvalidJobOptionError(name, option, value, reason);
  });
  const continuous = defineContinuous(name, options as Record<string, unknown>);
  const retry = checkRetryOptions(options.retry, (option, value, reason) => {
    throw new InvalidJobOptionError(name, option, value, reason);
  });
  const spec = defineSchedule(name, options, bounds);
  const missedRuns = checkMissedRuns(options, missedDefaults, (option, value, reason) => {
    throw new InvalidJobOptionError(name, option, value, reason);
  });
  for (const option of ['missed', 'catchUpWindow', 'maxCatchUp'] as const) {
    if (options[option] !== undefined && !spec) {
      throw new InvalidJobOptionError(name, option, options[option], 'a missed-run policy applies only to a "cron" or "every" schedule');
    }
  }
  if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
    throw new InvalidJobOptionError(name, 'concurrency', options.concurrency, 'expected a whole number of tasks, 1 or more');
  }
  return {
    name,
    hosts: defineHosts(name, options.hosts),
    concurrency: options.concurrency ?? null,
    checkpoint,
    // A continuous run that ends is restarted by its own loop, never retried as a trigger (whatever the module's `retry`).
    retry: continuous ? { attempts: 1 } : retry,
    continuous,
    missedRuns,
    vendorType,
    retain: options.retain ?? null,
    spec,
    overlap,
    paused: options.paused ?? false,
    ...defineStartAndLateness(name, options, spec),
    timeout,
  };
}

/** `runOnStart`, `at`, `threshold` and `initialDelay` (the options @nestjs/schedule users know). */
function defineStartAndLateness(
  job: string,
  options: DistributedJobOptions,
  spec: ScheduleSpec | null,
): Pick<JobDefinition, 'runOnStart' | 'startDelay' | 'at' | 'threshold' | 'initialDelay'> {
  const { runOnStart = false, at, threshold, initialDelay } = options;
  let startDelay = 0;
  if (typeof runOnStart === 'object' && runOnStart !== null) {
    const delay = runOnStart.delay === 0 ? 0 : parseDuration(runOnStart.delay);
    if (delay === undefined || delay > MAX_TIMER_DURATION_MS) {
      throw new InvalidJobOptionError(job, 'runOnStart', runOnStart, "expected true, false or { delay } with a delay from 0 ms to 24 days, in ms or such as '5s'");
    }
    startDelay = delay;
  } else if (typeof runOnStart !== 'boolean') {
    throw new InvalidJobOptionError(job, 'runOnStart', runOnStart, 'expected true, false or { delay }');
  }
  if (at !== undefined) {
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
      throw new InvalidJobOptionError(job, 'at', at, 'expected a valid Date');
    }
    if (spec) {
      throw new InvalidJobOptionError(job, 'at', at, `a one-shot time excludes a "cron" or "every" schedule (${spec.cron ?? spec.every}); keep one`);
    }
  }
  if (threshold !== undefined) {
    if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0) {
      throw new InvalidJobOptionError(job, 'threshold', threshold, 'expected a number of milliseconds, 0 or more');
    }
    if (!spec) throw new InvalidJobOptionError(job, 'threshold', threshold, 'a threshold applies only to a "cron" or "every" schedule');
  }
  let delay = 0;
  if (initialDelay !== undefined && initialDelay !== 0) {
    const parsed = parseDuration(initialDelay);
    if (parsed === undefined || parsed > MAX_TIMER_DURATION_MS) {
      throw new InvalidJobOptionError(job, 'initialDelay', initialDelay, "expected a duration from 0 ms to 24 days, in ms or such as '30s'");
    }
    if (!spec) throw new InvalidJobOptionError(job, 'initialDelay', initialDelay, 'an initial delay applies only to a "cron" or "every" schedule');
    delay = parsed;
  }
  return {
    runOnStart: runOnStart !== false,
    startDelay,
    at: at ? at.getTime() : null,
    threshold: threshold ?? null,
    initialDelay: delay,
  };
}

/** Validates the schedule part of job options (also used by `JobScheduler.updateSchedule`). */
export function defineSchedule(
  job: string,
  options: Pick<DistributedJobOptions, 'cron' | 'every' | 'timeZone' | 'jitter' | 'utcOffset'>,
  bounds: ScheduleBounds = DEFAULT_SCHEDULE_BOUNDS,
): ScheduleSpec | null {
  const { cron, every, jitter = 0, utcOffset } = options;
  let { timeZone } = options;
  if (utcOffset !== undefined) {
    if (timeZone !== undefined) {
      throw new InvalidJobOptionError(job, 'utcOffset', utcOffset, `"utcOffset" and "timeZone" ('${timeZone}') exclude each other; keep one`);
    }
    if (!Number.isInteger(utcOffset) || Math.abs(utcOffset) > 14 * 60) {
      throw new InvalidJobOptionError(job, 'utcOffset', utcOffset, 'expected whole minutes east of UTC, from -840 to 840 (e.g. 330 for UTC+05:30)');
    }
    if (cron === undefined) throw new InvalidJobOptionError(job, 'utcOffset', utcOffset, 'a UTC offset applies only to a "cron" schedule');
    timeZone = fixedOffsetZone(utcOffset);
  }
  if (cron !== undefined && every !== undefined) {
    throw new InvalidJobOptionError(job, 'cron', cron, `"cron" and "every" (${String(every)}) exclude each other; keep one`);
  }
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidJobOptionError(job, 'jitter', jitter, 'expected a fraction of the period between 0 and 1');
  }
  if (timeZone !== undefined) {
    if (cron === undefined) {
      throw new InvalidJobOptionError(job, 'timeZone', timeZone, 'a time zone applies only to a "cron" schedule');
    }
    if (!isTimeZone(timeZone)) {
      throw new InvalidJobOptionError(job, 'timeZone', timeZone, "unknown IANA time zone (for example 'Europe/Berlin' or 'UTC')");
    }
  }
  if (cron !== undefined) {
    validateCron(job, cron, timeZone);
    checkCronFrequency(job, cron, timeZone, bounds);
    return { cron: cron.trim(), ...(timeZone ? { timeZone } : {}), jitter };
  }
  if (every !== undefined) {
    const period = parseDuration(every);
    if (period === undefined) {
      throw new InvalidJobOptionError(job, 'every', every, "expected a period above zero, in ms or as a duration such as '30s' or '5m'");
    }
    checkPeriod(job, every, period, bounds);
    return { every: period, jitter };
  }
  if (jitter !== 0) {
    throw new InvalidJobOptionError(job, 'jitter', jitter, 'jitter needs a "cron" or "every" schedule');
  }
  return null;
}

function validateCron(job: string, cron: unknown, timeZone: string | undefined): void {
  if (typeof cron !== 'string') {
    throw new InvalidJobOptionError(job, 'cron', cron, 'expected a cron expression string');
  }
  const fields = cron.trim().split(/\s+/).length;
  if (!cron.trim().startsWith('@') && fields !== 5 && fields !== 6) {
    throw new InvalidJobOptionError(job, 'cron', cron, `expected 5 fields (or 6 with seconds first), got ${fields}`);
  }
  try {
    CronExpressionParser.parse(cron, { tz: timeZone, strict: false }).next();
  } catch (error) {
    throw new InvalidJobOptionError(job, 'cron', cron, (error as Error).message);
  }
}

/** A fixed offset as a zone name cron-parser reads, e.g. 'UTC+05:30'. */
function fixedOffsetZone(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

function isTimeZone(timeZone: string): boolean {
  if (/^UTC[+-]\d{2}:\d{2}$/.test(timeZone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export function sharedDefinition(definition: JobDefinition): SharedJobDefinition {
  const shared: SharedJobDefinition = { spec: definition.spec, overlap: definition.overlap, paused: definition.paused };
  if (!isDefaultMissedRuns(definition.missedRuns)) shared.missed = { ...definition.missedRuns };
  if (definition.continuous) shared.continuous = { max: definition.continuous.max };
  return shared;
}
