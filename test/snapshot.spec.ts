import 'reflect-metadata';
import { Injectable, INestApplicationContext } from '@nestjs/common';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DistributedJob,
  FileSnapshotStore,
  InvalidSchedulerOptionError,
  JobScheduler,
  SNAPSHOT_JOB_NAME,
  SnapshotFormatError,
  SnapshotPersister,
  decodeSnapshot,
  encodeSnapshot,
  readableSnapshotFormats,
} from '../lib';
import { resolveSnapshotOptions } from '../lib/snapshot/snapshot.options';
import { bootApp, CapturingLogger } from './support/app';

const FIXTURE = join(__dirname, 'fixtures', 'snapshots', 'format-1.json');

@Injectable()
class HourlyJobs {
  @DistributedJob({ name: 'report', every: '1h' })
  report() {}

  @DistributedJob({ name: 'cleanup', every: '1h' })
  cleanup() {}

  @DistributedJob({ name: 'export', every: '1h' })
  export() {}
}

describe('snapshot format', () => {
  it('reads a snapshot of format 1, as an earlier version wrote it (fixture)', () => {
    const snapshot = decodeSnapshot(readFileSync(FIXTURE, 'utf8'), 'the fixture');
    expect(snapshot).toMatchObject({ format: 1, writtenAt: 1767225600000, writtenBy: 'fixture-writer', prefix: 'fixture', version: '42' });
    expect(snapshot.jobs).toHaveLength(1);
    expect(snapshot.jobs[0]).toMatchObject({
      name: 'report',
      spec: { every: 7200000, jitter: 0 },
      paused: true,
      served: 1767225300000,
      fence: 1767225300012,
      locked: { by: 'ops', until: null },
      checkpoint: { state: '{"page":7}', fence: 1767225300012 },
      lastRun: { status: 'success', finishedAt: 1767225300500 },
    });
  });

  it('writes the current format and reads it back', () => {
    const snapshot = decodeSnapshot(readFileSync(FIXTURE, 'utf8'), 'the fixture');
    const { format, ...rest } = snapshot;
    expect(format).toBe(1);
    expect(decodeSnapshot(encodeSnapshot(rest), 'memory')).toEqual(snapshot);
    expect(readableSnapshotFormats()).toContain(1);
  });

  it('refuses an unknown format with an error naming the format and where the snapshot is', () => {
    const text = JSON.stringify({ ...JSON.parse(readFileSync(FIXTURE, 'utf8')), format: 99 });
    expect(() => decodeSnapshot(text, 'file "/x/sched.json"')).toThrow(SnapshotFormatError);
    expect(() => decodeSnapshot(text, 'file "/x/sched.json"')).toThrow(
      /The snapshot in file "\/x\/sched.json" cannot be read: its format is 99, and this version of nestjs-distributed-scheduler reads format\(s\) 1 .*The jobs start from their code\./,
    );
    expect(() => decodeSnapshot('{"jobs": []}', 'here')).toThrow(/its format is undefined/);
    expect(() => decodeSnapshot('not json', 'here')).toThrow(/it is not JSON/);
    expect(() => decodeSnapshot(JSON.stringify({ format: 1, writtenAt: 1, writtenBy: 'a', prefix: 'p', jobs: [{}] }), 'here')).toThrow(
      /format 1 expects jobs\[0\] to be a job with a name/,
    );
  });
});

describe('snapshot options', () => {
  it('defaults, and errors naming the option and the value', () => {
    expect(resolveSnapshotOptions(undefined)).toEqual({ every: 30_000, maxChanges: 100, file: null, keep: 5, explicit: false });
    expect(resolveSnapshotOptions(false)).toBeNull();
    expect(resolveSnapshotOptions({ every: '1s', maxChanges: 5, file: '/tmp/x.json', keep: 2 })).toEqual({ every: 1_000, maxChanges: 5, file: '/tmp/x.json', keep: 2, explicit: true });
    expect(() => resolveSnapshotOptions({ every: 500 })).toThrow('option "snapshot.every" has an invalid value 500');
    expect(() => resolveSnapshotOptions({ maxChanges: 0 })).toThrow('option "snapshot.maxChanges" has an invalid value 0');
    expect(() => resolveSnapshotOptions({ keep: 1.5 })).toThrow('option "snapshot.keep" has an invalid value 1.5');
    expect(() => resolveSnapshotOptions({ file: '' })).toThrow('option "snapshot.file" has an invalid value');
    expect(() => resolveSnapshotOptions('yes' as never)).toThrow(InvalidSchedulerOptionError);
  });

  it('fails the start when snapshots are asked for without records and without a file', async () => {
    await expect(bootApp({ snapshot: { every: '10s' } }, [HourlyJobs])).rejects.toThrow('option "snapshot.file" has an invalid value undefined: snapshots need a store');
  });
});

describe('file snapshot store', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'dsched-snap-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the newest in the file and the older ones as file.1, file.2, …, up to keep', async () => {
    const file = join(dir, 'state', 'sched.json');
    const store = new FileSnapshotStore(file, 3);
    expect(await store.readNewest('p')).toBeNull();
    const meta = { prefix: 'p', format: 1, writtenAt: 0, writtenBy: 'me', jobCount: 0 };
    for (let i = 1; i <= 5; i++) await store.save(`snapshot ${i}`, meta);
    expect(await store.readNewest('p')).toEqual({ text: 'snapshot 5', location: `file "${file}"` });
    expect(readFileSync(`${file}.1`, 'utf8')).toBe('snapshot 4');
    expect(readFileSync(`${file}.2`, 'utf8')).toBe('snapshot 3');
    expect(existsSync(`${file}.3`)).toBe(false);
  });
});

describe('snapshots on the embedded coordinator with snapshot.file', () => {
  jest.setTimeout(30_000);
  let dir: string;
  let file: string;
  let app: INestApplicationContext | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsched-snap-'));
    file = join(dir, 'scheduler.json');
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('brings paused, rescheduled and locked jobs back after the app restarts', async () => {
    app = await bootApp({ snapshot: { file } }, [HourlyJobs]);
    const first = app.get(JobScheduler);
    await first.pause('report');
    await first.updateSchedule('cleanup', { every: '2h' });
    await first.lock('export', { holder: 'ops' });
    const fenceBefore = (await first.describe('report')).lastRun;
    expect(fenceBefore).toBeNull();
    // Closing writes a last snapshot.
    await app.close();
    app = undefined;
    expect(existsSync(file)).toBe(true);

    const logger = new CapturingLogger();
    app = await bootApp({ snapshot: { file } }, [HourlyJobs], logger);
    const scheduler = app.get(JobScheduler);
    expect(await scheduler.describe('report')).toMatchObject({ paused: true, nextRunAt: null });
    expect(await scheduler.describe('cleanup')).toMatchObject({ schedule: { every: 7_200_000 }, scheduleOverridden: true, paused: false });
    expect((await scheduler.describe('export')).locked).toEqual({ by: 'ops', until: null });
    expect(logger.count('warn', /^Restored 4 job\(s\) that the coordinator had lost from the snapshot written at .* \(file ".*scheduler.json"\): .*"cleanup" \(schedule overridden: every 7200000 ms/)).toBe(1);
    const status = app.get(SnapshotPersister).status();
    expect(status).toMatchObject({ enabled: true, restores: 1, restoredJobs: 4, readFailures: 0, store: `file "${file}"` });
    expect((await scheduler.list()).map((job) => job.name)).toContain(SNAPSHOT_JOB_NAME);
  });

  it('restores a snapshot of format 1 written by an earlier version (fixture)', async () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...fixture, prefix: 'dsched' }));
    app = await bootApp({ snapshot: { file } }, [HourlyJobs]);
    const scheduler = app.get(JobScheduler);
    // The fixture's definition differs from the code's (its hash is not the code's): the boot applies what changed
    // in the code (nothing of the schedule or the pause: the fixture's definition has the same ones), the runtime state stays.
    expect(await scheduler.describe('report')).toMatchObject({ paused: true, schedule: { every: 7_200_000 }, locked: { by: 'ops', until: null } });
    expect(await scheduler.checkpoint('report')).toMatchObject({ state: { page: 7 } });
    expect(app.get(SnapshotPersister).status()).toMatchObject({ restores: 1, restoredJobs: 1 });
  });

  it('refuses a snapshot of an unknown format: counted, one clear error, and the app starts from code', async () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...fixture, prefix: 'dsched', format: 99 }));
    const logger = new CapturingLogger();
    app = await bootApp({ snapshot: { file } }, [HourlyJobs], logger);
    const scheduler = app.get(JobScheduler);
    expect(await scheduler.describe('report')).toMatchObject({ paused: false, schedule: { every: 3_600_000 }, locked: null });
    expect(app.get(SnapshotPersister).status()).toMatchObject({ readFailures: 1, restores: 0, lastReadError: expect.stringContaining('its format is 99') });
    expect(logger.count('error', /Reading the newest snapshot failed: The snapshot in file ".*scheduler.json" cannot be read: its format is 99/)).toBe(1);
  });

  it('keeps the unreadable snapshot among the older ones when it writes a new one', async () => {
    copyFileSync(FIXTURE, file);
    app = await bootApp({ snapshot: { file, keep: 3 } }, [HourlyJobs]);
    // Of another prefix ("fixture"): refused, counted.
    expect(app.get(SnapshotPersister).status()).toMatchObject({ readFailures: 1, lastReadError: expect.stringContaining('key prefix "fixture"') });
    expect(await app.get(SnapshotPersister).save()).toBe(true);
    expect(readFileSync(`${file}.1`, 'utf8')).toBe(readFileSync(FIXTURE, 'utf8'));
  });
});
