import ms from 'ms';

/** The longest wait a Node.js timer can hold (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_DURATION_MS = 2 ** 31 - 1;

/**
 * Reads a duration given as milliseconds or as a string `ms` understands (`'30s'`, `'5m'`,
 * `'1.5h'`). Returns undefined for anything that is not a whole number of milliseconds of at
 * least 1, so the caller can name the option in its error.
 */
export function parseDuration(value: number | string): number | undefined {
  const millis = typeof value === 'number' ? value : typeof value === 'string' ? ms(value as ms.StringValue) : NaN;
  if (typeof millis !== 'number' || !Number.isFinite(millis)) return undefined;
  const rounded = Math.round(millis);
  return rounded >= 1 ? rounded : undefined;
}
