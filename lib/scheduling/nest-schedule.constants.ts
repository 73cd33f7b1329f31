/**
 * The metadata keys and scheduler types of @nestjs/schedule's `@Cron`, `@Interval` and `@Timeout`
 * (unchanged from its 1.x to 12.x). They are plain strings and numbers, written here rather than
 * imported: @nestjs/schedule is an optional peer, and the library must load without it.
 */
export const NEST_SCHEDULER_NAME = 'SCHEDULER_NAME';
export const NEST_SCHEDULER_TYPE = 'SCHEDULER_TYPE';
export const NEST_SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';
export const NEST_SCHEDULE_INTERVAL_OPTIONS = 'SCHEDULE_INTERVAL_OPTIONS';
export const NEST_SCHEDULE_TIMEOUT_OPTIONS = 'SCHEDULE_TIMEOUT_OPTIONS';

/** @nestjs/schedule's `SchedulerType` enum. */
export const NEST_SCHEDULER_TYPES = { 1: 'cron', 2: 'timeout', 3: 'interval' } as const;

/**
 * Where `@DistributedJob` keeps the @nestjs/schedule metadata it took over from a method (and
 * removed, so that @nestjs/schedule's explorer no longer sees the method).
 */
export const TAKEN_OVER_SCHEDULE_METADATA = 'nestjs-distributed-scheduler:nest-schedule';
