import { InvalidJobOptionError } from '../errors';
import type { ScheduleUpdate } from './job-description.interface';
import type { ScheduleSpec } from './schedule';

/**
 * The schedule options `updateSchedule` puts in force: the fields given, and for the others the
 * values in force (not the defaults), so that `{ every }` does not silently reset the jitter.
 */
export function mergeSchedule(job: string, current: ScheduleSpec | null, update: ScheduleUpdate): ScheduleUpdate {
  const given = Object.fromEntries(Object.entries(update ?? {}).filter(([, value]) => value !== undefined)) as ScheduleUpdate;
  if (Object.keys(given).length === 0) {
    throw new InvalidJobOptionError(job, 'schedule', update, 'updateSchedule needs "cron" or "every" (or "timeZone" or "jitter" to change only that)');
  }
  const jitter = given.jitter ?? current?.jitter ?? 0;
  if (given.every !== undefined || given.cron !== undefined) {
    // A new cron expression keeps the time zone of the cron schedule in force.
    const timeZone = given.timeZone ?? (given.cron !== undefined && given.every === undefined && current?.cron !== undefined ? current.timeZone : undefined);
    return { ...given, jitter, ...(timeZone !== undefined ? { timeZone } : {}) };
  }
  if (!current) {
    throw new InvalidJobOptionError(job, 'schedule', update, 'an on-demand job has no schedule to change: updateSchedule needs "cron" or "every"');
  }
  if (current.every !== undefined) return { every: current.every, jitter, ...(given.timeZone !== undefined ? { timeZone: given.timeZone } : {}) };
  return { cron: current.cron, timeZone: given.timeZone ?? current.timeZone, jitter };
}
