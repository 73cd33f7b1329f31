import { CronExpressionParser } from 'cron-parser';
import { InvalidJobOptionError } from '../errors';

/**
 * The shortest and longest period a schedule may have. Every path that sets a schedule (the
 * decorator, `updateSchedule`) checks them, so that one caller cannot make a job fire a thousand
 * times a second across the cluster, nor stop it by pushing its next time past what a date holds.
 */
export interface ScheduleBounds {
  /** In ms; the module option `minPeriod`. */
  minPeriod: number;
  /** In ms. */
  maxPeriod: number;
}

/** The default of the module option `minPeriod`: a cron expression cannot fire more often either. */
export const DEFAULT_MIN_PERIOD_MS = 1_000;
/** The lowest `minPeriod` an app may set (tests, sub-second jobs). */
export const MIN_PERIOD_FLOOR_MS = 10;
/** A year, leap day included; rarer runs are a cron expression's job. */
export const MAX_PERIOD_MS = 366 * 24 * 3_600_000;

export const DEFAULT_SCHEDULE_BOUNDS: ScheduleBounds = { minPeriod: DEFAULT_MIN_PERIOD_MS, maxPeriod: MAX_PERIOD_MS };

/** How many fires of a cron expression are looked at when `minPeriod` is above a second. */
const CRON_FIRES_CHECKED = 100;

/** Throws unless `period` (ms) is within the bounds; the error names the job, the option and the value. */
export function checkPeriod(job: string, value: unknown, period: number, bounds: ScheduleBounds): void {
  if (period < bounds.minPeriod) {
    throw new InvalidJobOptionError(
      job,
      'every',
      value,
      `a period below the minimum of ${formatPeriod(bounds.minPeriod)} (module option "minPeriod") would load every replica and Redis`,
    );
  }
  if (period > bounds.maxPeriod) {
    throw new InvalidJobOptionError(job, 'every', value, `a period above the maximum of ${formatPeriod(bounds.maxPeriod)}; for rarer runs use "cron"`);
  }
}

/**
 * A cron expression fires at most once a second, so with the default `minPeriod` (1 s) any valid
 * one is within bounds. With a higher `minPeriod`, its next fires are checked (one iterator):
 * the shortest gaps of an expression come from its finest field, which repeats within them.
 */
export function checkCronFrequency(job: string, cron: string, timeZone: string | undefined, bounds: ScheduleBounds): void {
  if (bounds.minPeriod <= 1_000) return;
  const fires = CronExpressionParser.parse(cron, { tz: timeZone, currentDate: new Date() });
  let previous = fires.next().getTime();
  for (let i = 1; i < CRON_FIRES_CHECKED && fires.hasNext(); i++) {
    const next = fires.next().getTime();
    if (next - previous < bounds.minPeriod) {
      throw new InvalidJobOptionError(
        job,
        'cron',
        cron,
        `it fires ${formatPeriod(next - previous)} apart, more often than the minimum period of ${formatPeriod(bounds.minPeriod)} (module option "minPeriod")`,
      );
    }
    previous = next;
  }
}

/** A period in the words of its messages: `250 ms`, `1 s`, `90 s`, `366 days`. */
export function formatPeriod(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${+(ms / 1_000).toFixed(3)} s`;
  if (ms < 2 * 3_600_000) return `${+(ms / 60_000).toFixed(2)} min`;
  if (ms < 2 * 86_400_000) return `${+(ms / 3_600_000).toFixed(2)} h`;
  return `${+(ms / 86_400_000).toFixed(2)} days`;
}
