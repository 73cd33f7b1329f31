import { InvalidSchedulerOptionError } from '../../lib';
import { deriveExecutionStatus } from '../../lib/execution/execution-status';
import { isTransient } from '../../lib/execution/records-outbox';
import { resolveRecordsOptions } from '../../lib/execution/records.resolver';
import { TaskLogBuffer } from '../../lib/execution/task-log.buffer';

describe('deriveExecutionStatus', () => {
  it.each([
    [{ Success: 3, Running: 1 }, 'Running'],
    [{ Pending: 1, Error: 2 }, 'Running'],
    [{ Success: 3, Error: 1, Stopped: 1 }, 'Error'],
    [{ Success: 3, Stopped: 1 }, 'Stopped'],
    [{ Success: 4 }, 'Success'],
  ] as const)('%j → %s', (counts, status) => {
    expect(deriveExecutionStatus(counts).status).toBe(status);
  });

  it('counts the tasks by status', () => {
    expect(deriveExecutionStatus({ Success: 2, Error: 1 }).metrics).toEqual({
      taskCount: 3,
      pendingTaskCount: 0,
      runningTaskCount: 0,
      successTaskCount: 2,
      errorTaskCount: 1,
      stoppedTaskCount: 0,
    });
  });
});

describe('TaskLogBuffer', () => {
  it('keeps the newest lines within its bound and says how many it dropped', () => {
    const log = new TaskLogBuffer(300);
    for (let i = 0; i < 50; i++) log.append('log', `line ${i}`);
    const { content, droppedLines } = log.take();
    const lines = content.split('\n');
    expect(lines[0]).toBe(`[${droppedLines} earlier line(s) dropped to keep the log within 300 bytes]`);
    expect(lines[lines.length - 1]).toMatch(/LOG line 49$/);
    expect(Buffer.byteLength(lines.slice(1).join('\n'))).toBeLessThanOrEqual(300);
    expect(droppedLines + lines.length - 1).toBe(50);
  });

  it('stays dirty until a write of its newest lines succeeded', () => {
    const log = new TaskLogBuffer(1_000);
    log.append('log', 'one');
    const first = log.take();
    log.append('log', 'two');
    log.written(first.version);
    expect(log.dirty).toBe(true); // 'two' came after what was written
    log.written(log.take().version);
    expect(log.dirty).toBe(false);
  });

  it('truncates a single line longer than the bound', () => {
    const log = new TaskLogBuffer(256);
    log.append('error', 'x'.repeat(1_000));
    const { content } = log.take();
    expect(Buffer.byteLength(content)).toBeLessThanOrEqual(256);
    expect(content).toMatch(/\[truncated\]$/);
  });
});

describe('isTransient', () => {
  it('retries errors of reaching the database, not errors the database answered', () => {
    expect(isTransient(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('role "app" is not permitted to log in'), { code: '28000' }))).toBe(true);
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransient(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isTransient(Object.assign(new Error('relation "dsched_task" does not exist'), { code: '42P01' }))).toBe(false);
    expect(isTransient(Object.assign(new Error('Duplicate entry'), { code: 'ER_DUP_ENTRY' }))).toBe(false);
    expect(isTransient(Object.assign(new Error('Connection lost'), { code: 'PROTOCOL_CONNECTION_LOST' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }))).toBe(false);
    expect(isTransient(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(true);
    // A bug would fail the same way again: it must not hold up the writes queued behind it.
    expect(isTransient(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
  });
});

describe('resolveRecordsOptions', () => {
  it('applies the defaults', () => {
    expect(resolveRecordsOptions(true)).toEqual({ dataSource: undefined, database: undefined, retain: 50, retainByVendor: {}, sweepEvery: 3_600_000, logMaxBytes: 32_768 });
  });

  it.each([
    [{ retain: -1 }, 'records.retain', '-1'],
    [{ retainByVendor: { reports: 1.5 } }, 'records.retainByVendor.reports', '1.5'],
    [{ sweepEvery: 'sometimes' }, 'records.sweepEvery', "'sometimes'"],
    [{ logMaxBytes: 10 }, 'records.logMaxBytes', '10'],
    [{ dataSource: '' }, 'records.dataSource', "''"],
    [{ database: 'mariadb' }, 'records.database', "'mariadb'"],
  ])('rejects %j naming the option and the value', (records, option, value) => {
    expect(() => resolveRecordsOptions(records as never)).toThrow(InvalidSchedulerOptionError);
    expect(() => resolveRecordsOptions(records as never)).toThrow(`option "${option}" has an invalid value ${value}`);
  });
});
