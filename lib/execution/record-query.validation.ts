import { InvalidQueryError } from '../errors';
import { EXECUTION_STATUS, EXECUTION_TRIGGERS, ExecutionStatus } from './execution.constants';
import type { ExecutionQuery, TaskQuery } from './record-query.interface';

/*
 * Run-time checks of everything the records' managers put into SQL. Their TypeScript types say
 * the same, but values often come from a request (`sort: { field: req.query.sort }`), and a
 * field name or sort order is not a parameter: it is written into the statement. So every name
 * is taken from a fixed list here, and every value is checked to be of a type the drivers bind
 * as one value (an object or an array bound as a value is expanded by some drivers).
 */

export const EXECUTION_SORT_FIELDS = ['id', 'startTime', 'endTime', 'updateTime', 'status'] as const;
export const TASK_SORT_FIELDS = ['id', 'creationTime', 'startTime', 'endTime', 'updateTime', 'status'] as const;
const SORT_ORDERS = ['ASC', 'DESC'];
const STATUSES: readonly string[] = Object.values(EXECUTION_STATUS);
export const TRIGGERS: readonly string[] = Object.values(EXECUTION_TRIGGERS);
/** The longest `extraAttrs` key: JSON paths of MySQL and SQLite are bounded, and no real key is longer. */
const MAX_ATTR_KEY_LENGTH = 200;
/** More pairs than this is a query no index helps with; it is more likely a request passed through whole. */
const MAX_ATTR_PAIRS = 20;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 1_000;

type Kind = 'execution' | 'task';
type Check = (method: string, field: string, value: unknown) => void;

const FILTERS: Record<Kind, Record<string, Check>> = {
  execution: {
    vendorType: checkString,
    vendorId: checkStringOrNumber,
    status: (method, field, value) => checkOneOrMany(method, field, value, STATUSES),
    trigger: (method, field, value) => checkOneOrMany(method, field, value, TRIGGERS),
    jobName: checkString,
    startTime: checkTimeRange,
    endTime: checkTimeRange,
  },
  task: {
    executionId: (method, field, value) => checkId(method, field, value),
    vendorType: checkString,
    status: (method, field, value) => checkOneOrMany(method, field, value, STATUSES),
    jobName: checkString,
    jobId: checkString,
    startTime: checkTimeRange,
    endTime: checkTimeRange,
  },
};
const PAGING = ['page', 'pageSize', 'sort', 'extraAttrs'];

/** Checks an `ExecutionQuery` as received; throws `InvalidQueryError` naming the first wrong field. */
export function checkExecutionQuery(method: string, query: unknown): ExecutionQuery {
  return checkQuery(method, query, 'execution', EXECUTION_SORT_FIELDS) as ExecutionQuery;
}

/** Checks a `TaskQuery` as received; throws `InvalidQueryError` naming the first wrong field. */
export function checkTaskQuery(method: string, query: unknown): TaskQuery {
  return checkQuery(method, query, 'task', TASK_SORT_FIELDS) as TaskQuery;
}

function checkQuery(method: string, query: unknown, kind: Kind, sortFields: readonly string[]): object {
  if (query === undefined || query === null) return {};
  if (!isRecord(query)) throw new InvalidQueryError(method, 'query', query, 'expected an object of filters');
  const filters = FILTERS[kind];
  for (const [field, value] of Object.entries(query)) {
    if (!Object.hasOwn(filters, field) && !PAGING.includes(field)) {
      throw new InvalidQueryError(method, field, value, `not a filter of ${kind}s; expected one of ${[...Object.keys(filters), ...PAGING].join(', ')}`);
    }
    if (value === undefined) continue;
    if (Object.hasOwn(filters, field)) filters[field](method, field, value);
  }
  const { page, pageSize, sort, extraAttrs } = query as Record<string, unknown>;
  if (page !== undefined) checkWhole(method, 'page', page, 1);
  if (pageSize !== undefined) checkWhole(method, 'pageSize', pageSize, 1);
  if (page !== undefined && !Number.isSafeInteger(((page as number) - 1) * Math.min(MAX_PAGE_SIZE, (pageSize as number | undefined) ?? DEFAULT_PAGE_SIZE))) {
    throw new InvalidQueryError(method, 'page', page, 'it is beyond the last row any database can hold');
  }
  if (sort !== undefined) checkSort(method, sort, sortFields);
  if (extraAttrs !== undefined) checkExtraAttrs(method, extraAttrs);
  return query;
}

function checkSort(method: string, sort: unknown, fields: readonly string[]): void {
  if (!isRecord(sort)) throw new InvalidQueryError(method, 'sort', sort, "expected { field, order? }, e.g. { field: 'startTime', order: 'ASC' }");
  for (const key of Object.keys(sort)) {
    if (key !== 'field' && key !== 'order') throw new InvalidQueryError(method, `sort.${key}`, (sort as Record<string, unknown>)[key], 'expected only "field" and "order"');
  }
  const { field, order } = sort as { field?: unknown; order?: unknown };
  if (typeof field !== 'string' || !fields.includes(field)) {
    throw new InvalidQueryError(method, 'sort.field', field, `expected one of ${fields.map((f) => `'${f}'`).join(', ')}`);
  }
  if (order !== undefined && (typeof order !== 'string' || !SORT_ORDERS.includes(order))) {
    throw new InvalidQueryError(method, 'sort.order', order, "expected 'ASC' or 'DESC'");
  }
}

function checkExtraAttrs(method: string, extraAttrs: unknown): void {
  if (!isRecord(extraAttrs)) throw new InvalidQueryError(method, 'extraAttrs', extraAttrs, 'expected an object of key: value pairs');
  const pairs = Object.entries(extraAttrs);
  if (pairs.length > MAX_ATTR_PAIRS) throw new InvalidQueryError(method, 'extraAttrs', extraAttrs, `expected at most ${MAX_ATTR_PAIRS} pairs`);
  for (const [key, value] of pairs) {
    if (key === '' || key.length > MAX_ATTR_KEY_LENGTH) {
      throw new InvalidQueryError(method, 'extraAttrs key', key, `expected a key of 1 to ${MAX_ATTR_KEY_LENGTH} characters`);
    }
    if (!(typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))) {
      throw new InvalidQueryError(method, `extraAttrs.${key}`, value, 'expected a string, a finite number or a boolean');
    }
  }
}

/** A record id: a positive whole number. */
export function checkId(method: string, field: string, value: unknown): number {
  checkWhole(method, field, value, 1);
  return value as number;
}

/** A whole number of at least `min` (a count, a duration in ms). */
export function checkWhole(method: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidQueryError(method, field, value, `expected a whole number${min === 0 ? ' of 0 or more' : ` of ${min} or more`}`);
  }
  return value;
}

/** A task or execution status. */
export function checkStatus(method: string, field: string, value: unknown): ExecutionStatus {
  checkOneOf(method, field, value, STATUSES);
  return value as ExecutionStatus;
}

/** A list of strings (job ids). */
export function checkStrings(method: string, field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidQueryError(method, field, value, 'expected an array of strings');
  value.forEach((item, index) => checkString(method, `${field}[${index}]`, item));
  return value;
}

export function checkString(method: string, field: string, value: unknown): void {
  if (typeof value !== 'string') throw new InvalidQueryError(method, field, value, 'expected a string');
}

export function checkStringOrNumber(method: string, field: string, value: unknown): void {
  if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) {
    throw new InvalidQueryError(method, field, value, 'expected a string or a finite number');
  }
}

export function checkOneOf(method: string, field: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new InvalidQueryError(method, field, value, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}

/** An object to store as JSON (`extraAttrs`, `parameters`). */
export function checkJsonObject(method: string, field: string, value: unknown): void {
  if (!isRecord(value)) throw new InvalidQueryError(method, field, value, 'expected an object');
}

function checkOneOrMany(method: string, field: string, value: unknown, allowed: readonly string[]): void {
  for (const one of Array.isArray(value) ? value : [value]) checkOneOf(method, field, one, allowed);
}

function checkTimeRange(method: string, field: string, value: unknown): void {
  if (!isRecord(value)) throw new InvalidQueryError(method, field, value, 'expected { from?: Date, to?: Date }');
  for (const [end, at] of Object.entries(value)) {
    if (end !== 'from' && end !== 'to') throw new InvalidQueryError(method, `${field}.${end}`, at, 'expected only "from" and "to"');
    if (at !== undefined && !(at instanceof Date && !Number.isNaN(at.getTime()))) {
      throw new InvalidQueryError(method, `${field}.${end}`, at, 'expected a valid Date');
    }
  }
}

/** An object whose own fields are read (a literal, or an instance of a DTO class); not an array or a Date. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
