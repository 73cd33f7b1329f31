import type { ExecutionStatus, ExecutionTrigger, TaskStatus } from './execution.constants';

/** A time range; either end may be left open. */
export interface TimeRange {
  from?: Date;
  to?: Date;
}

/**
 * Every field is also checked at run time (values often come from a request): a name, value or
 * type outside these makes `list` / `count` throw `InvalidQueryError` before any SQL runs.
 */
interface PageAndSort<Field extends string> {
  /** 1-based. @default 1 */
  page?: number;
  /** @default 20; a larger value than 1000 is capped to 1000 */
  pageSize?: number;
  /** @default { field: 'id', order: 'DESC' } (newest first) */
  sort?: { field: Field; order?: 'ASC' | 'DESC' };
  /**
   * Matches `extraAttrs[key] === value` for every pair, evaluated by the database's own JSON
   * functions (not in memory). A key with dots also reaches into nested objects:
   * `{ 'artifact.digest': 'sha256:…' }` matches `extraAttrs.artifact.digest` (and a top-level key
   * `'artifact.digest'`).
   */
  extraAttrs?: Record<string, string | number | boolean>;
}

export interface ExecutionQuery extends PageAndSort<'id' | 'startTime' | 'endTime' | 'updateTime' | 'status'> {
  vendorType?: string;
  vendorId?: string | number;
  status?: ExecutionStatus | ExecutionStatus[];
  trigger?: ExecutionTrigger | ExecutionTrigger[];
  jobName?: string;
  startTime?: TimeRange;
  endTime?: TimeRange;
}

export interface TaskQuery extends PageAndSort<'id' | 'creationTime' | 'startTime' | 'endTime' | 'updateTime' | 'status'> {
  executionId?: number;
  vendorType?: string;
  status?: TaskStatus | TaskStatus[];
  jobName?: string;
  jobId?: string;
  startTime?: TimeRange;
  endTime?: TimeRange;
}
