import { SchedulerError } from './scheduler.error';

/** A `@DistributedJob` option (or an `updateSchedule` argument) that cannot work. */
export class InvalidJobOptionError extends SchedulerError {
  constructor(
    readonly job: string,
    readonly option: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`Job "${job}": option "${option}" has an invalid value ${describeValue(value)}: ${reason}`);
  }
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
