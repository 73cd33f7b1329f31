import { parseDuration } from '../scheduling/duration';
import { DEFAULT_SESSION_TTL_MS, DEFAULT_WORKER_CONCURRENCY, MAX_LABEL_LENGTH, MAX_LABELS, MAX_SESSION_TTL_MS, MIN_SESSION_TTL_MS } from './cluster.constants';

/** Labels of a replica (`{ zone: 'eu-1', role: 'worker' }`), or those a job's `hosts` requires. */
export type Labels = Readonly<Record<string, string>>;

/** The module's membership options with defaults applied. */
export interface ResolvedClusterOptions {
  /** A member not heard from for this long (ms) leaves the live set. */
  sessionTtl: number;
  labels: Labels;
  /** False: an API-only replica, which claims no fire (it still triggers, pauses, describes). */
  worker: boolean;
  /** A worker runs at most this many tasks at once (`worker: { concurrency }`). */
  concurrency: number;
}

/** `worker: { concurrency }`: a worker replica's own limits. */
export interface WorkerOptions {
  /**
   * At most this many tasks (`TaskManager.create`) run on this replica at once; the others wait
   * for a free slot or go to other replicas. A whole number, 1 or more.
   * @default 10
   */
  concurrency?: number;
}

type Fail = (option: string, value: unknown, reason: string) => never;

export function resolveClusterOptions(options: { sessionTtl?: number | string; labels?: unknown; worker?: unknown }, fail: Fail): ResolvedClusterOptions {
  const sessionTtl = options.sessionTtl === undefined ? DEFAULT_SESSION_TTL_MS : parseDuration(options.sessionTtl);
  if (sessionTtl === undefined || sessionTtl < MIN_SESSION_TTL_MS || sessionTtl > MAX_SESSION_TTL_MS) {
    fail('sessionTtl', options.sessionTtl, `expected a duration from ${MIN_SESSION_TTL_MS} ms to 1 hour, in ms or such as '10s'`);
  }
  const { worker } = options;
  const isObject = typeof worker === 'object' && worker !== null && !Array.isArray(worker);
  if (worker !== undefined && typeof worker !== 'boolean' && !isObject) fail('worker', worker, 'expected true, false or { concurrency }');
  let concurrency = DEFAULT_WORKER_CONCURRENCY;
  if (isObject) {
    const { concurrency: given, ...unknown } = worker as { concurrency?: unknown };
    if (Object.keys(unknown).length > 0) fail('worker', worker, `unknown field(s) ${Object.keys(unknown).join(', ')}; expected { concurrency }`);
    if (given !== undefined && (typeof given !== 'number' || !Number.isInteger(given) || given < 1)) {
      fail('worker.concurrency', given, 'expected a whole number of tasks, 1 or more');
    }
    concurrency = (given as number | undefined) ?? DEFAULT_WORKER_CONCURRENCY;
  }
  return { sessionTtl: sessionTtl!, labels: checkLabels(options.labels, 'labels', fail), worker: worker !== false, concurrency };
}

/**
 * Labels are string keys and string values, short and on one line (they are sent at each
 * heartbeat and logged). Undefined is no labels.
 */
export function checkLabels(value: unknown, option: string, fail: Fail): Labels {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
    fail(option, value, "expected an object of string labels, such as { zone: 'eu-1', role: 'worker' }");
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_LABELS) fail(option, value, `expected at most ${MAX_LABELS} labels`);
  const wellFormed = (text: string) => text !== '' && text.length <= MAX_LABEL_LENGTH && !/[\r\n]/.test(text);
  for (const [key, label] of entries) {
    if (!wellFormed(key)) fail(option, value, `label name '${key}' must be a non-empty string of at most ${MAX_LABEL_LENGTH} characters on one line`);
    if (typeof label !== 'string' || !wellFormed(label)) {
      fail(option, value, `label "${key}" must have a non-empty string value of at most ${MAX_LABEL_LENGTH} characters on one line`);
    }
  }
  // Sorted by name, as the coordinator gives them back: the same labels read and log the same everywhere.
  return Object.freeze(Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)))) as Labels;
}

/** Whether a member carries every label required (a job's `hosts.labels`). */
export function matchesLabels(member: Labels, required: Labels): boolean {
  for (const [key, value] of Object.entries(required)) if (member[key] !== value) return false;
  return true;
}

/** `zone=eu-1, role=worker`, for log lines. */
export function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? 'no labels' : entries.map(([key, value]) => `${key}=${value}`).join(', ');
}
