import { InvalidJobOptionError } from '../errors';
import type { DistributedJobOptions } from './distributed-job-options.interface';
import {
  NEST_SCHEDULE_CRON_OPTIONS,
  NEST_SCHEDULE_INTERVAL_OPTIONS,
  NEST_SCHEDULE_TIMEOUT_OPTIONS,
  NEST_SCHEDULER_NAME,
  NEST_SCHEDULER_TYPE,
  NEST_SCHEDULER_TYPES,
  TAKEN_OVER_SCHEDULE_METADATA,
} from './nest-schedule.constants';

/** What `@Cron`, `@Interval` or `@Timeout` of @nestjs/schedule had put on a method. */
export interface TakenOverSchedule {
  /** @nestjs/schedule's `SchedulerType`: 1 cron, 2 timeout, 3 interval. */
  type: number;
  name?: string;
  /** The options object stored for that type (`{ cronTime, ...CronOptions }` or `{ timeout }`). */
  options: Record<string, unknown>;
}

const OPTIONS_KEYS: Record<number, string> = {
  1: NEST_SCHEDULE_CRON_OPTIONS,
  2: NEST_SCHEDULE_TIMEOUT_OPTIONS,
  3: NEST_SCHEDULE_INTERVAL_OPTIONS,
};

/**
 * Moves @nestjs/schedule's metadata off a `@DistributedJob` method into our own key. Its
 * explorer registers a timer for every method whose `SCHEDULER_TYPE` it finds, on every
 * replica; once the metadata is gone it skips the method, whether `ScheduleModule.forRoot()` is
 * imported or not and whichever module initializes first. Idempotent.
 */
export function takeOverNestSchedule(method: unknown): void {
  if (typeof method !== 'function' || !Reflect.hasOwnMetadata(NEST_SCHEDULER_TYPE, method)) return;
  const type = Reflect.getOwnMetadata(NEST_SCHEDULER_TYPE, method) as number;
  const taken: TakenOverSchedule = {
    type,
    name: Reflect.getOwnMetadata(NEST_SCHEDULER_NAME, method) as string | undefined,
    options: { ...((OPTIONS_KEYS[type] && Reflect.getOwnMetadata(OPTIONS_KEYS[type], method)) ?? {}) },
  };
  Reflect.defineMetadata(TAKEN_OVER_SCHEDULE_METADATA, taken, method);
  for (const key of [NEST_SCHEDULER_TYPE, NEST_SCHEDULER_NAME, ...Object.values(OPTIONS_KEYS)]) Reflect.deleteMetadata(key, method);
}

/**
 * The `@DistributedJob` options of a method that also carries `@Cron`, `@Interval` or
 * `@Timeout`: the schedule comes from those, the rest from `@DistributedJob`. Options that
 * cannot hold across replicas are refused, naming the job, the option and the value.
 *
 * | @nestjs/schedule | here |
 * | --- | --- |
 * | `@Cron(expression)` / `@Cron(date)` | `cron` / `at` |
 * | `@Interval(ms)` / `@Timeout(ms)` | `every` / `runOnStart: { delay }` |
 * | `name`, `timeZone`, `utcOffset`, `threshold`, `initialDelay` | the same |
 * | `disabled: true` / `waitForCompletion: true` / `runOnInit: true` | `paused` / `overlap: 'skip'` / `runOnStart` |
 * | `unrefTimeout` | ignored (Nest owns the process's lifetime) |
 */
export function fromNestSchedule(defaultName: string, own: DistributedJobOptions, taken: TakenOverSchedule): DistributedJobOptions {
  const kind = NEST_SCHEDULER_TYPES[taken.type as keyof typeof NEST_SCHEDULER_TYPES];
  const job = own.name ?? taken.name ?? defaultName;
  if (!kind) {
    throw new InvalidJobOptionError(job, 'SCHEDULER_TYPE', taken.type, 'unknown @nestjs/schedule decorator; expected @Cron, @Interval or @Timeout');
  }
  const decorator = { cron: '@Cron', interval: '@Interval', timeout: '@Timeout' }[kind];
  for (const key of ['cron', 'every', 'at'] as const) {
    if (own[key] !== undefined) {
      throw new InvalidJobOptionError(job, key, own[key], `the method also has ${decorator}() of @nestjs/schedule, which gives its schedule; keep one`);
    }
  }
  if (own.name !== undefined && taken.name !== undefined && own.name !== taken.name) {
    throw new InvalidJobOptionError(job, 'name', taken.name, `${decorator}() names the job differently from @DistributedJob ('${own.name}'); name it in one place`);
  }
  const options: DistributedJobOptions = { ...own, name: job };
  /** Sets an option from @nestjs/schedule unless @DistributedJob says otherwise. */
  const set = <K extends keyof DistributedJobOptions>(key: K, value: DistributedJobOptions[K], from: string, fromValue: unknown) => {
    if (own[key] !== undefined && JSON.stringify(own[key]) !== JSON.stringify(value)) {
      throw new InvalidJobOptionError(job, from, fromValue, `${decorator}() asks for ${key}: ${JSON.stringify(value)}, @DistributedJob for ${JSON.stringify(own[key])}; keep one`);
    }
    options[key] = value;
  };

  if (kind === 'interval' || kind === 'timeout') {
    const ms = taken.options.timeout;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < (kind === 'interval' ? 1 : 0)) {
      throw new InvalidJobOptionError(job, decorator, ms, kind === 'interval' ? 'expected a period in ms, 1 or more' : 'expected a delay in ms, 0 or more');
    }
    if (kind === 'interval') options.every = ms;
    else set('runOnStart', { delay: ms }, decorator, ms);
    return options;
  }

  const { cronTime, ...cron } = taken.options;
  const oneShot = toDate(cronTime);
  if (oneShot) options.at = oneShot;
  else if (typeof cronTime === 'string') options.cron = cronTime;
  else throw new InvalidJobOptionError(job, 'cronTime', cronTime, 'expected a cron expression, a Date or a Luxon DateTime');
  for (const [key, value] of Object.entries(cron)) {
    if (value === undefined) continue;
    switch (key) {
      case 'name':
        break;
      case 'timeZone':
      case 'utcOffset':
        // A one-shot time is an instant: a zone changes nothing.
        if (!oneShot) set(key, value as never, key, value);
        break;
      case 'threshold':
        // A one-shot is requested at its time and claimed at once: there is no lateness to bound.
        if (!oneShot) set('threshold', Math.abs(value as number), key, value);
        break;
      case 'initialDelay':
        if (oneShot) throw new InvalidJobOptionError(job, key, value, `an initial delay applies to a cron expression, not to a one-shot date (${oneShot.toISOString()})`);
        set('initialDelay', value as number, key, value);
        break;
      case 'disabled':
        if (value === true) set('paused', true, key, value);
        break;
      case 'waitForCompletion':
        // Without it, runs could overlap in one process; here the default is already to skip a
        // fire while a run goes on anywhere, and `overlap: 'allow'` keeps overlapping.
        if (value === true) set('overlap', 'skip', key, value);
        break;
      case 'runOnInit':
        if (value === true) set('runOnStart', true, key, value);
        break;
      case 'unrefTimeout':
        // Whether a timer keeps the process alive is Nest's business here, not the job's.
        break;
      default:
        throw new InvalidJobOptionError(
          job,
          key,
          typeof value === 'function' ? '[function]' : value,
          `${decorator}() option with no counterpart across replicas (callbacks and state live in one process); ` +
            'remove it, and use JobScheduler (pause/resume/trigger) or errors$ instead',
        );
    }
  }
  return options;
}

/** A JS Date, or a Luxon DateTime (duck-typed: Luxon is @nestjs/schedule's dependency, not ours). */
function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  const luxon = value as { toJSDate?: () => unknown } | null;
  if (typeof luxon === 'object' && luxon !== null && typeof luxon.toJSDate === 'function') {
    const date = luxon.toJSDate();
    if (date instanceof Date) return date;
  }
  return undefined;
}
