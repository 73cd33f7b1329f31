import ms from 'ms';

/**
 * Reads a duration given as milliseconds or as a string `ms` understands (`'30s'`, `'5m'`,
 * `'1.5h'`). Returns undefined for anything that is not a finite, positive duration, so the
 * caller can name the option in its error.
 */
export function parseDuration(value: number | string): number | undefined {
  const millis = typeof value === 'number' ? value : typeof value === 'string' ? ms(value as ms.StringValue) : NaN;
  return typeof millis === 'number' && Number.isFinite(millis) && millis > 0 ? Math.round(millis) : undefined;
}
