import { InvalidSchedulerOptionError } from '../errors';
import { MAX_TIMER_DURATION_MS, parseDuration } from '../scheduling/duration';
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_RETAIN_COUNT, DEFAULT_SWEEP_EVERY, MAX_LOG_MAX_BYTES } from './execution.constants';
import type { RecordsOptions } from './records-options.interface';
import { RECORDS_DATABASES, type RecordsDatabase } from './execution.constants';

export interface ResolvedRecordsOptions {
  dataSource: string | undefined;
  database: RecordsDatabase | undefined;
  retain: number;
  retainByVendor: Record<string, number>;
  /** Null: the built-in sweep is off. */
  sweepEvery: number | null;
  logMaxBytes: number;
}

/** Defaults and validation of `records`; every error names the option and the value. */
export function resolveRecordsOptions(options: RecordsOptions | true): ResolvedRecordsOptions {
  const records = options === true ? {} : options;
  if (typeof records !== 'object' || records === null) {
    throw new InvalidSchedulerOptionError('records', records, 'expected true or an object of records options');
  }
  if (records.dataSource !== undefined && (typeof records.dataSource !== 'string' || records.dataSource === '')) {
    throw new InvalidSchedulerOptionError('records.dataSource', records.dataSource, 'expected the name of a TypeORM DataSource');
  }
  if (records.database !== undefined && !RECORDS_DATABASES.includes(records.database)) {
    throw new InvalidSchedulerOptionError('records.database', records.database, `expected one of ${RECORDS_DATABASES.map((d) => `'${d}'`).join(', ')}`);
  }
  const retain = records.retain ?? DEFAULT_RETAIN_COUNT;
  assertRetain('records.retain', retain);
  const retainByVendor = records.retainByVendor ?? {};
  if (typeof retainByVendor !== 'object' || retainByVendor === null) {
    throw new InvalidSchedulerOptionError('records.retainByVendor', retainByVendor, 'expected an object of vendor type → count');
  }
  for (const [vendorType, count] of Object.entries(retainByVendor)) assertRetain(`records.retainByVendor.${vendorType}`, count);
  let sweepEvery: number | null = null;
  if (records.sweepEvery !== false) {
    sweepEvery = parseDuration(records.sweepEvery ?? DEFAULT_SWEEP_EVERY) ?? null;
    if (sweepEvery === null || sweepEvery < 1_000 || sweepEvery > MAX_TIMER_DURATION_MS) {
      throw new InvalidSchedulerOptionError('records.sweepEvery', records.sweepEvery, "expected a duration from 1 s to 24 days (such as '1h'), or false");
    }
  }
  const logMaxBytes = records.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
  if (!Number.isInteger(logMaxBytes) || logMaxBytes < 256 || logMaxBytes > MAX_LOG_MAX_BYTES) {
    throw new InvalidSchedulerOptionError('records.logMaxBytes', logMaxBytes, `expected an integer from 256 to ${MAX_LOG_MAX_BYTES}`);
  }
  return { dataSource: records.dataSource, database: records.database, retain, retainByVendor, sweepEvery, logMaxBytes };
}

export function assertRetain(option: string, value: unknown): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new InvalidSchedulerOptionError(option, value, 'expected a whole number of executions to keep, 0 or more');
  }
}
