import type { CorruptKey } from '../coordinator.interface';

/**
 * Checks, on the Node side, what the scripts hand over undecoded (JSON only Node reads), and what
 * `describe` reads with plain commands. A key edited by hand or by another program must cost its
 * own job only, with a message naming the job, the key and what is wrong, never a bare
 * `Unexpected token` for every job at once. The scripts check the rest (common.lua).
 */

/** The parsed value, or undefined if `raw` is not JSON. */
export function parseJson<T>(raw: string): T | undefined {
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}

/** The first field of `fields` (name → [raw, parsed]) that did not parse, as a corrupt key. */
export function corruptKeyOf(name: string, key: string, fields: Record<string, [string, unknown]>): CorruptKey | null {
  for (const [field, [raw, parsed]] of Object.entries(fields)) {
    if (parsed === undefined) return { name, key, problem: `its field "${field}" is not JSON: ${quoted(raw)}` };
  }
  return null;
}

const NUMERIC_FIELDS = ['rev', 'fence', 'base', 'lockedUntil', 'lateSkips', 'defAt', 'missedSkips', 'catchUps', 'catchUpTo'];
const JSON_FIELDS = ['spec', 'def', 'last'];
const OVERLAPS = ['skip', 'allow', 'queue-one', 'cancel-previous'];

/** What is wrong with a job hash as `HGETALL` read it, or null. */
export function jobHashProblem(job: Record<string, string>): string | null {
  if (job.rev === undefined) return 'it has no field "rev"';
  for (const field of NUMERIC_FIELDS) {
    if (job[field] !== undefined && !Number.isFinite(Number(job[field]))) return `its field "${field}" is not a number: ${quoted(job[field])}`;
  }
  for (const field of JSON_FIELDS) {
    if (job[field] !== undefined && parseJson(job[field]) === undefined) return `its field "${field}" is not JSON: ${quoted(job[field])}`;
  }
  if (!OVERLAPS.includes(job.overlap)) return `its field "overlap" is not an overlap policy: ${quoted(String(job.overlap))}`;
  return null;
}

/** What is wrong with a runs hash as `HGETALL` read it, or null. */
export function runsHashProblem(runs: Record<string, string>): string | null {
  for (const [token, raw] of Object.entries(runs)) {
    const lease = parseJson<{ e?: unknown; i?: unknown; s?: unknown; t?: unknown }>(raw);
    const valid = lease !== null && typeof lease === 'object' && typeof lease.e === 'number' && typeof lease.i === 'string';
    if (!valid || !Number.isFinite(Number(token))) return `its entry ${quoted(token)} is not a run lease: ${quoted(raw)}`;
  }
  return null;
}

/** A command's WRONGTYPE error on a key, in words. */
export function wrongTypeProblem(error: Error | null | undefined, expected: string): string | null {
  if (!error) return null;
  return /^WRONGTYPE/.test(error.message) ? `expected a ${expected}, found another type` : null;
}

function quoted(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}
