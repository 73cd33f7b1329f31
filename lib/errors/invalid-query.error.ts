import { SchedulerError } from './scheduler.error';

/** The longest part of a refused value a message repeats: enough to recognise it, not to echo a payload. */
const MAX_SHOWN = 120;

/**
 * A value given to the execution records' managers (a query's filter, sort or page, an id, a
 * status) that cannot be used. Values are checked at run time, not only by their TypeScript
 * type, because they often come straight from a request: nothing unchecked reaches the SQL.
 */
export class InvalidQueryError extends SchedulerError {
  constructor(
    /** The method that refused it, e.g. `ExecutionManager.list`. */
    readonly method: string,
    /** The field of the query (or the argument), e.g. `sort.field`, `extraAttrs`, `id`. */
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`${method}: "${field}" has an invalid value ${shown(value)}: ${reason}`);
  }
}

function shown(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = `'${value}'`;
  else if (value === undefined) text = 'undefined';
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null) text = String(value);
  else if (value instanceof Date) text = `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}
