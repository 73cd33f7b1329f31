/**
 * What durability costs: snapshots (time to write one of 10,000 jobs to a file and to the
 * records' database, the Redis time it takes, its size, and the restore of 10,000 jobs into an
 * empty Redis) and checkpoints (the time `await ctx.checkpoint()` takes in a handler, and how many
 * one handler can record per second). On a redis-server of the bench's own. Run by `npm run bench`
 * after the records; bench/README.md says how each figure is measured.
 *
 * `BENCH_ONLY` selects parts by label, as in run.ts: `snapshot, file store`, `snapshot, database
 * store`, `snapshot, restore`, `checkpoint, defaults`, `checkpoint, maxUpdates 1` (so
 * `BENCH_ONLY=snapshot` or `BENCH_ONLY=checkpoint` selects a whole group).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import Redis from 'ioredis';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { DistributedJob, encodeSnapshot, JobScheduler, SchedulerModule, SnapshotPersister } from 'nestjs-distributed-scheduler';
import type { JobContext, SchedulerModuleExtras, SchedulerModuleOptions } from 'nestjs-distributed-scheduler';
import { TestDatabase } from '../test/support/databases';
import { OwnRedisServer, startRedisServer } from './redis-server';
import { parseCommandStats, percentile } from './stats';
import { printTable } from './table';

const SNAPSHOT_JOBS = 10_000;
/** Long enough that none of the jobs (nor the built-in snapshot job) falls due during the bench. */
const IDLE_EVERY_MS = 3_600_000;
const SNAPSHOT_WRITES = 5;
const CHECKPOINT_WARMUP_CALLS = 2_000;
const CHECKPOINT_LATENCY_CALLS = 10_000;
const CHECKPOINT_TIGHT_CALLS = 100_000;
/** Redis keeps in its slowlog the commands that take at least this long (µs): the longest one a measurement saw. */
const SLOWLOG_THRESHOLD_US = 100;
const DEADLINE_MS = 10 * 60_000;

const ONLY = process.env.BENCH_ONLY?.split(';').map((part) => part.trim()).filter(Boolean);
const selected = (label: string) => !ONLY || ONLY.some((part) => label.includes(part));
const PARTS = {
  file: 'snapshot, file store',
  database: 'snapshot, database store',
  restore: 'snapshot, restore',
  checkpointDefaults: 'checkpoint, defaults',
  checkpointEveryCall: 'checkpoint, maxUpdates 1',
};

const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Redis's side of a measurement
// ---------------------------------------------------------------------------------------------

/** What Redis spent on one measured operation. */
interface RedisUse {
  /** used_cpu_user + used_cpu_sys of redis-server (INFO cpu) over the operation: everything it did, reading, parsing and replying included. */
  cpuMs: number;
  /**
   * INFO commandstats `usec` of the commands the operation sends (listed per operation): their
   * execution only, in wall time (a busy machine that preempts redis-server inflates it).
   */
  commandMs: number;
  /** Every command Redis ran over the operation, the ones scripts call included (as run.ts counts). */
  commands: number;
  /** EVALSHA/EVAL calls: one per script round trip. */
  scripts: number;
  /** The longest single command in the slowlog (≥ SLOWLOG_THRESHOLD_US), ms; null if none reached it. */
  longestCommandMs: number | null;
  /** Every command's calls and usec over the operation (the bench's own INFO/SLOWLOG/CONFIG left out): for the JSON. */
  byCommand?: Record<string, { calls: number; usec: number }>;
  /** The slowlog's entries (command, µs), longest first: for the JSON. */
  slowest?: [string, number][];
}

/** The commands `exportState` sends (pipelined plain reads). */
const EXPORT_COMMANDS = ['smembers', 'get', 'time', 'hgetall', 'zscore'];
/**
 * The scripts a restore sends (one per 500 jobs). Its EXISTS pre-check pipeline is left out: the
 * script calls EXISTS too, and commandstats cannot tell the two apart (the script's own commands
 * are inside EVALSHA's time already).
 */
const SCRIPT_COMMANDS = ['evalsha', 'eval'];

async function sampleRedis(admin: Redis): Promise<{ cpuMs: number; stats: ReturnType<typeof parseCommandStats> }> {
  const info = (await admin.call('INFO', 'cpu', 'commandstats')) as string;
  const cpu = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return { cpuMs: (cpu('used_cpu_user') + cpu('used_cpu_sys')) * 1000, stats: parseCommandStats(info) };
}

/** Runs `operation`, timing it, with Redis's CPU, command time and longest command over it. */
async function measured<T>(admin: Redis, commands: string[], operation: () => Promise<T>): Promise<{ ms: number; result: T; redis: RedisUse }> {
  await admin.call('SLOWLOG', 'RESET');
  const before = await sampleRedis(admin);
  const started = performance.now();
  const result = await operation();
  const ms = performance.now() - started;
  const after = await sampleRedis(admin);
  const slow = (await admin.call('SLOWLOG', 'GET', '1000')) as [number, number, number, string[]][];
  const usec = commands.reduce((sum, name) => sum + ((after.stats[name]?.usec ?? 0) - (before.stats[name]?.usec ?? 0)), 0);
  const own = /^(slowlog|info|config)$/i;
  const entries = slow.filter(([, , , args]) => !own.test(String(args[0]))).map(([, , us, args]): [string, number] => [String(args[0]).toLowerCase(), us]);
  const longest = entries.map(([, us]) => us);
  const byCommand: Record<string, { calls: number; usec: number }> = {};
  for (const [name, stat] of Object.entries(after.stats)) {
    const calls = stat.calls - (before.stats[name]?.calls ?? 0);
    if (calls > 0 && !own.test(name.split('|')[0])) byCommand[name] = { calls, usec: stat.usec - (before.stats[name]?.usec ?? 0) };
  }
  return {
    ms,
    result,
    redis: {
      cpuMs: after.cpuMs - before.cpuMs,
      commandMs: usec / 1000,
      commands: Object.values(byCommand).reduce((sum, stat) => sum + stat.calls, 0),
      scripts: (byCommand.evalsha?.calls ?? 0) + (byCommand.eval?.calls ?? 0),
      longestCommandMs: longest.length > 0 ? Math.max(...longest) / 1000 : null,
      byCommand,
      slowest: entries.sort((a, b) => b[1] - a[1]).slice(0, 10),
    },
  };
}

interface Summary {
  runs: number;
  p50Ms: number;
  maxMs: number;
  /** Each run: its time and Redis figures. */
  samples: { ms: number; redis: RedisUse }[];
  /** The p50 of each Redis figure over the runs (the longest command: the max). */
  redis: RedisUse;
}

function summarize(samples: { ms: number; redis: RedisUse }[]): Summary {
  const p50 = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);
  const longest = samples.map((sample) => sample.redis.longestCommandMs).filter((ms): ms is number => ms !== null);
  return {
    runs: samples.length,
    p50Ms: p50(samples.map((sample) => sample.ms)),
    maxMs: Math.max(...samples.map((sample) => sample.ms)),
    samples: samples.map(({ ms, redis }) => ({ ms, redis })),
    redis: {
      cpuMs: p50(samples.map((sample) => sample.redis.cpuMs)),
      commandMs: p50(samples.map((sample) => sample.redis.commandMs)),
      commands: p50(samples.map((sample) => sample.redis.commands)),
      scripts: p50(samples.map((sample) => sample.redis.scripts)),
      longestCommandMs: longest.length > 0 ? Math.max(...longest) : null,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

/** 10,000 jobs `job-0` … `job-9999`, every hour (none falls due during the bench), made at run time as bench/replica.ts does. */
function idleJobs(count: number): Function {
  @Injectable()
  class SnapshotJobs {}
  for (let i = 0; i < count; i++) {
    const key = `job${i}`;
    Object.defineProperty(SnapshotJobs.prototype, key, { value: () => undefined, configurable: true });
    DistributedJob({ name: `job-${i}`, every: IDLE_EVERY_MS })(SnapshotJobs.prototype, key, Object.getOwnPropertyDescriptor(SnapshotJobs.prototype, key)!);
  }
  return SnapshotJobs;
}

const SNAPSHOT_PREFIX = 'bench-snapshot';
const namesKey = (prefix: string) => `{${prefix}}:names`;

/** Snapshots only when the bench asks (`save()`): the periodic job every hour, no snapshot on changes. */
const QUIET_SNAPSHOTS = { every: IDLE_EVERY_MS, maxChanges: 1_000_000, keep: 2 };

/** `expectRestore`: the restore's warning (one line naming the restored jobs) is expected, so only errors are logged. */
async function bootSnapshotApp(
  options: SchedulerModuleOptions & Partial<SchedulerModuleExtras>,
  jobs: Function,
  db?: TestDatabase,
  expectRestore = false,
): Promise<INestApplicationContext> {
  @Module({
    imports: [
      ...(db ? [TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true } as never)] : []),
      SchedulerModule.forRoot({ keyPrefix: SNAPSHOT_PREFIX, instanceId: 'bench', shutdownTimeout: 1_000, ...options }),
    ],
    providers: [jobs as never],
  })
  class BenchSnapshotModule {}
  return NestFactory.createApplicationContext(BenchSnapshotModule, { logger: expectRestore ? ['error'] : ['error', 'warn'] });
}

/** Until Redis holds every job of the app (the 10,000 and the built-in `dsched.snapshot`). */
async function waitForJobs(admin: Redis, count: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await admin.scard(namesKey(SNAPSHOT_PREFIX))) >= count) return performance.now() - started;
    if (performance.now() - started > 120_000) throw new Error(`Redis did not hold ${count} jobs after 120 s`);
    await sleep(50);
  }
}

/**
 * Until the app has stopped sending work after its registration (it re-reads the jobs its own
 * registration announced): two 500 ms spans in a row with at most 20 commands (a heartbeat).
 */
async function waitForQuiet(admin: Redis): Promise<void> {
  const total = async () => {
    const stats = parseCommandStats((await admin.call('INFO', 'commandstats')) as string);
    return Object.entries(stats).reduce((sum, [name, stat]) => (/^(info|slowlog|config)/.test(name) ? sum : sum + stat.calls), 0);
  };
  const started = performance.now();
  let quiet = 0;
  let last = await total();
  while (quiet < 2) {
    if (performance.now() - started > 60_000) throw new Error('Redis did not quieten within 60 s of the registration');
    await sleep(500);
    const now = await total();
    quiet = now - last <= 20 ? quiet + 1 : 0;
    last = now;
  }
}

/** A warm-up write, then SNAPSHOT_WRITES measured ones (Redis: the export's commands). */
async function measureWrites(admin: Redis, persister: SnapshotPersister): Promise<{ ms: number; redis: RedisUse }[]> {
  if (!(await persister.save())) throw new Error(`the warm-up snapshot was not written: ${persister.status().lastSaveError}`);
  const samples = [];
  for (let i = 0; i < SNAPSHOT_WRITES; i++) {
    const sample = await measured(admin, EXPORT_COMMANDS, () => persister.save());
    if (!sample.result) throw new Error(`a snapshot was not written: ${persister.status().lastSaveError}`);
    samples.push(sample);
  }
  return samples;
}

interface SnapshotResults {
  jobs: number;
  registerMs?: number;
  file?: { write: Summary; export: Summary; encodeMs: number; bytes: number };
  database?: { write: Summary; bytes: number; storedBytes: number };
  restore?: { restore: Summary; restoredJobs: number; bootMs: number; jobsInRedisAfterMs: number };
}

async function runSnapshots(admin: Redis, url: string, jobs: Function): Promise<SnapshotResults> {
  const dir = mkdtempSync(join(os.tmpdir(), 'dsched-bench-snapshot-'));
  const file = join(dir, 'scheduler.json');
  const expected = SNAPSHOT_JOBS + 1;
  const results: SnapshotResults = { jobs: expected };
  try {
    await admin.flushall();
    if (selected(PARTS.file) || selected(PARTS.restore)) {
      const app = await bootSnapshotApp({ redis: url, snapshot: { ...QUIET_SNAPSHOTS, file } }, jobs);
      try {
        results.registerMs = round(await waitForJobs(admin, expected));
        await waitForQuiet(admin);
        const persister = app.get(SnapshotPersister);
        if (selected(PARTS.file)) {
          console.log(`${PARTS.file}: ${SNAPSHOT_WRITES} writes of ${expected} jobs`);
          const writes = await measureWrites(admin, persister);
          // The Redis part alone: the coordinator's export, which the persister calls first (internal, from the build).
          const { Coordinator } = await import('../dist/coordination/coordinator.interface');
          const coordinator = app.get(Coordinator);
          const exports: { ms: number; redis: RedisUse }[] = [];
          let state: Awaited<ReturnType<typeof coordinator.exportState>> | undefined;
          for (let i = 0; i < SNAPSHOT_WRITES; i++) {
            const { ms, redis, result } = await measured(admin, EXPORT_COMMANDS, () => coordinator.exportState());
            exports.push({ ms, redis });
            state ??= result; // only one kept: five exports of 10,000 jobs held at once would load the GC
          }
          if (!state) throw new Error('no export');
          if (state.jobs.length !== expected) throw new Error(`the export held ${state.jobs.length} jobs, not ${expected}`);
          const encodeStarted = performance.now();
          encodeSnapshot({ writtenAt: state.now, writtenBy: 'bench', prefix: SNAPSHOT_PREFIX, version: state.version, epoch: state.epoch, final: false, jobs: state.jobs });
          const encodeMs = performance.now() - encodeStarted;
          results.file = { write: summarize(writes), export: summarize(exports), encodeMs, bytes: statSync(file).size };
        } else if (!(await app.get(SnapshotPersister).save())) {
          throw new Error('the snapshot for the restore was not written');
        }
      } finally {
        await app.close(); // writes a last snapshot, of the same jobs
      }
    }

    if (selected(PARTS.database)) {
      console.log(`${PARTS.database}: ${SNAPSHOT_WRITES} writes of ${expected} jobs to PostgreSQL`);
      const db = await TestDatabase.create('postgres');
      try {
        const app = await bootSnapshotApp({ redis: url, records: { database: 'postgres', sweepEvery: false }, snapshot: QUIET_SNAPSHOTS }, jobs, db);
        try {
          results.registerMs ??= round(await waitForJobs(admin, expected));
          await waitForQuiet(admin);
          const writes = await measureWrites(admin, app.get(SnapshotPersister));
          const [row] = await app
            .get(DataSource)
            .query('SELECT octet_length(content) AS bytes, pg_column_size(content) AS stored FROM dsched_snapshot ORDER BY id DESC LIMIT 1');
          results.database = { write: summarize(writes), bytes: Number(row.bytes), storedBytes: Number(row.stored) };
        } finally {
          await app.close();
        }
      } finally {
        await db.drop();
      }
    }

    if (selected(PARTS.restore)) {
      console.log(`${PARTS.restore}: ${expected} jobs from the file into an empty Redis, at boot`);
      await admin.flushall();
      // The persister restores inside the first synchronization, before the boot registration: its restoreLost, timed.
      const restores: { ms: number; redis: RedisUse }[] = [];
      const original = SnapshotPersister.prototype.restoreLost;
      SnapshotPersister.prototype.restoreLost = async function (this: SnapshotPersister) {
        const before = this.status().restoredJobs;
        const sample = await measured(admin, SCRIPT_COMMANDS, () => original.call(this));
        if (this.status().restoredJobs > before) restores.push(sample);
      };
      const bootStarted = performance.now();
      let app: INestApplicationContext | undefined;
      try {
        app = await bootSnapshotApp({ redis: url, snapshot: { ...QUIET_SNAPSHOTS, file } }, jobs, undefined, true);
        const bootMs = performance.now() - bootStarted;
        await waitForJobs(admin, expected);
        const jobsInRedisAfterMs = performance.now() - bootStarted;
        const status = app.get(SnapshotPersister).status();
        if (restores.length !== 1 || status.restoredJobs !== expected) {
          throw new Error(`expected one restore of ${expected} jobs; got ${restores.length} restore(s) of ${status.restoredJobs} job(s) in all`);
        }
        results.restore = { restore: summarize(restores), restoredJobs: status.restoredJobs, bootMs, jobsInRedisAfterMs };
      } finally {
        SnapshotPersister.prototype.restoreLost = original;
        await app?.close();
      }
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

/** Counts the Redis writes of checkpoints: the coordinator's saveCheckpoint, wrapped on the app's instance. */
const writes = { started: 0, completed: 0, roundTripsMs: [] as number[] };

interface CheckpointFigures {
  maxUpdates: number;
  /** `await ctx.checkpoint(state)` with a yield to the event loop (setImmediate) after each, as a handler doing I/O between items. */
  latency: {
    calls: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    /** The calls that started a Redis write themselves (the maxUpdates-th since the last write, none in flight). */
    writeCalls: number;
    writeCallP50Ms: number;
    writeCallP99Ms: number;
    callsPerSecond: number;
    /** Writes that reached Redis during the loop, per second. */
    writes: number;
    writesPerSecond: number;
    writeRoundTripP50Ms: number;
    writeRoundTripP99Ms: number;
    /** Peak of process.memoryUsage().heapUsed during the loop (sampled every 100 calls) minus before it, MB. */
    heapGrowthMb: number;
    redis: RedisUse;
  };
  /** `await ctx.checkpoint(state)` back to back, never yielding to the event loop. */
  tight: { calls: number; seconds: number; callsPerSecond: number; writesStarted: number };
}

let checkpointPlan: { admin: Redis; maxUpdates: number; done: (figures: CheckpointFigures) => void; failed: (error: unknown) => void } | null = null;

async function checkpointHandler(ctx: JobContext): Promise<void> {
  const plan = checkpointPlan!;
  try {
    const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
    let cursor = 0;
    for (let i = 0; i < CHECKPOINT_WARMUP_CALLS; i++) {
      await ctx.checkpoint({ cursor: ++cursor, item: `item-${cursor}` });
      await yieldToLoop();
    }
    await sleep(50);

    const durations = new Float64Array(CHECKPOINT_LATENCY_CALLS);
    const startedWrite = new Uint8Array(CHECKPOINT_LATENCY_CALLS);
    const writesBefore = writes.completed;
    const roundTripsBefore = writes.roundTripsMs.length;
    let loopMs = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const { redis } = await measured(plan.admin, ['evalsha', 'eval'], async () => {
      const loopStarted = performance.now();
      for (let i = 0; i < CHECKPOINT_LATENCY_CALLS; i++) {
        const state = { cursor: ++cursor, item: `item-${cursor}` };
        const started = writes.started;
        const before = performance.now();
        await ctx.checkpoint(state);
        durations[i] = performance.now() - before;
        startedWrite[i] = writes.started > started ? 1 : 0;
        if (i % 100 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
        await yieldToLoop();
      }
      loopMs = performance.now() - loopStarted;
    });
    const writesDone = writes.completed - writesBefore;
    const sorted = [...durations].sort((a, b) => a - b);
    const writeCalls = [...durations].filter((_, i) => startedWrite[i] === 1).sort((a, b) => a - b);
    const roundTrips = writes.roundTripsMs.slice(roundTripsBefore).sort((a, b) => a - b);
    await sleep(50);

    const tightWritesBefore = writes.started;
    const tightStarted = performance.now();
    for (let i = 0; i < CHECKPOINT_TIGHT_CALLS; i++) await ctx.checkpoint({ cursor: ++cursor, item: `item-${cursor}` });
    const tightSeconds = (performance.now() - tightStarted) / 1000;

    plan.done({
      maxUpdates: plan.maxUpdates,
      latency: {
        calls: CHECKPOINT_LATENCY_CALLS,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1],
        writeCalls: writeCalls.length,
        writeCallP50Ms: percentile(writeCalls, 50),
        writeCallP99Ms: percentile(writeCalls, 99),
        callsPerSecond: CHECKPOINT_LATENCY_CALLS / (loopMs / 1000),
        writes: writesDone,
        writesPerSecond: writesDone / (loopMs / 1000),
        writeRoundTripP50Ms: percentile(roundTrips, 50),
        writeRoundTripP99Ms: percentile(roundTrips, 99),
        heapGrowthMb: (heapPeak - heapBefore) / 2 ** 20,
        redis,
      },
      tight: { calls: CHECKPOINT_TIGHT_CALLS, seconds: tightSeconds, callsPerSecond: CHECKPOINT_TIGHT_CALLS / tightSeconds, writesStarted: writes.started - tightWritesBefore },
    });
  } catch (error) {
    plan.failed(error);
  }
}

@Injectable()
class CheckpointJobs {
  @DistributedJob({ name: 'checkpoint-defaults' })
  defaults(ctx: JobContext) {
    return checkpointHandler(ctx);
  }

  @DistributedJob({ name: 'checkpoint-every-call', checkpoint: { maxUpdates: 1 } })
  everyCall(ctx: JobContext) {
    return checkpointHandler(ctx);
  }
}

async function runCheckpoints(admin: Redis, url: string): Promise<CheckpointFigures[]> {
  const configs = [
    { label: PARTS.checkpointDefaults, job: 'checkpoint-defaults', maxUpdates: 100 },
    { label: PARTS.checkpointEveryCall, job: 'checkpoint-every-call', maxUpdates: 1 },
  ].filter((config) => selected(config.label));
  if (configs.length === 0) return [];
  @Module({
    imports: [SchedulerModule.forRoot({ redis: url, keyPrefix: 'bench-checkpoint', instanceId: 'bench', shutdownTimeout: 1_000, snapshot: false })],
    providers: [CheckpointJobs],
  })
  class BenchCheckpointModule {}
  const app = await NestFactory.createApplicationContext(BenchCheckpointModule, { logger: ['error', 'warn'] });
  try {
    const { Coordinator } = await import('../dist/coordination/coordinator.interface');
    const coordinator = app.get(Coordinator);
    const save = coordinator.saveCheckpoint.bind(coordinator);
    coordinator.saveCheckpoint = (...args) => {
      writes.started++;
      const started = performance.now();
      return save(...args).finally(() => {
        writes.completed++;
        writes.roundTripsMs.push(performance.now() - started);
      });
    };
    const scheduler = app.get(JobScheduler);
    const figures: CheckpointFigures[] = [];
    for (const config of configs) {
      console.log(`${config.label}: ${CHECKPOINT_LATENCY_CALLS.toLocaleString('en')} calls with a yield between, then ${CHECKPOINT_TIGHT_CALLS.toLocaleString('en')} back to back`);
      const result = new Promise<CheckpointFigures>((resolve, reject) => {
        checkpointPlan = { admin, maxUpdates: config.maxUpdates, done: resolve, failed: reject };
      });
      const receipt = await scheduler.trigger(config.job);
      if (receipt.status !== 'accepted') throw new Error(`the trigger of ${config.job} was ${receipt.status}`);
      let timer: NodeJS.Timeout | undefined;
      figures.push(
        await Promise.race([
          result,
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${config.job} did not report within 120 s`)), 120_000))),
        ]).finally(() => clearTimeout(timer)),
      );
      await sleep(500); // the run ends and writes its last checkpoint
    }
    return figures;
  } finally {
    await app.close();
  }
}

// ---------------------------------------------------------------------------------------------

const ms3 = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(3) : '–');
const ms1 = (ms: number | null) => (ms === null ? `< ${SLOWLOG_THRESHOLD_US / 1000}` : ms.toFixed(1));

function printSnapshots(results: SnapshotResults): void {
  const rows: (string | number)[][] = [];
  const row = (label: string, summary: Summary) => [
    label,
    summary.runs,
    round(summary.p50Ms),
    round(summary.maxMs),
    round(summary.redis.cpuMs),
    summary.redis.commands,
    summary.redis.scripts,
    ms1(summary.redis.longestCommandMs),
  ];
  if (results.file) {
    rows.push(row('write, file store (fsync, rename)', results.file.write));
    rows.push(row('read Redis only (exportState), separate runs', results.file.export));
  }
  if (results.database) rows.push(row('write, database store (PostgreSQL)', results.database.write));
  if (results.restore) rows.push(row('restore into an empty Redis, at boot', results.restore.restore));
  if (rows.length === 0) return;
  printTable(
    `Snapshots of ${results.jobs.toLocaleString('en')} jobs on Redis: time (ms); Redis CPU (ms, INFO used_cpu_user+sys), commands (INFO commandstats, scripts' included) and longest command (ms, slowlog): p50 over the runs, longest: max`,
    ['operation', 'runs', 'p50', 'max', 'Redis CPU', 'commands', 'scripts', 'longest cmd'],
    rows,
  );
  const notes: string[] = [];
  if (results.file) {
    notes.push(
      `size: ${results.file.bytes.toLocaleString('en')} bytes (${Math.round(results.file.bytes / results.jobs)} per job, freshly registered jobs: no last run, no checkpoint); JSON encoding ${round(results.file.encodeMs)} ms`,
    );
  }
  if (results.database) notes.push(`database row: ${results.database.bytes.toLocaleString('en')} bytes of text, ${results.database.storedBytes.toLocaleString('en')} stored (TOAST-compressed)`);
  if (results.restore) notes.push(`restore: ${results.restore.restoredJobs.toLocaleString('en')} jobs restored; boot of the app ${round(results.restore.bootMs)} ms`);
  notes.forEach((note) => console.log(note));
}

function printCheckpoints(figures: CheckpointFigures[]): void {
  if (figures.length === 0) return;
  printTable(
    `Checkpoints: time of await ctx.checkpoint(state) in one handler, Redis coordinator (ms; ${CHECKPOINT_LATENCY_CALLS.toLocaleString('en')} calls, a setImmediate between calls)`,
    ['maxUpdates', 'p50', 'p99', 'max', 'calls that started a write', 'their p50', 'their p99', 'Redis writes', 'write round trip p50', 'p99', 'heap growth MB'],
    figures.map((f) => [
      f.maxUpdates,
      ms3(f.latency.p50Ms),
      ms3(f.latency.p99Ms),
      ms3(f.latency.maxMs),
      f.latency.writeCalls,
      ms3(f.latency.writeCallP50Ms),
      ms3(f.latency.writeCallP99Ms),
      f.latency.writes,
      ms3(f.latency.writeRoundTripP50Ms),
      ms3(f.latency.writeRoundTripP99Ms),
      round(f.latency.heapGrowthMb),
    ]),
  );
  printTable(
    'Checkpoints per second, one handler',
    ['maxUpdates', 'calls/s, yielding', 'Redis writes/s', 'Redis CPU per write (µs)', `calls/s, back to back (${CHECKPOINT_TIGHT_CALLS.toLocaleString('en')} calls)`, 'writes started meanwhile'],
    figures.map((f) => [
      f.maxUpdates,
      Math.round(f.latency.callsPerSecond),
      Math.round(f.latency.writesPerSecond),
      f.latency.writes > 0 ? round((f.latency.redis.cpuMs * 1000) / f.latency.writes) : '–',
      Math.round(f.tight.callsPerSecond),
      f.tight.writesStarted,
    ]),
  );
}

async function main(): Promise<void> {
  setTimeout(() => {
    console.error(`The durability bench did not finish in ${DEADLINE_MS / 60_000} minutes; stopping.`);
    process.exit(1);
  }, DEADLINE_MS).unref();
  const snapshotParts = [PARTS.file, PARTS.database, PARTS.restore].filter(selected);
  const checkpointParts = [PARTS.checkpointDefaults, PARTS.checkpointEveryCall].filter(selected);
  if (snapshotParts.length === 0 && checkpointParts.length === 0) {
    console.log(`\nDurability: no part selected by BENCH_ONLY (${Object.values(PARTS).join(' / ')})`);
    return;
  }
  const date = new Date();
  let server: OwnRedisServer | undefined;
  let spawned: ChildProcess | undefined;
  const killOnExit = () => spawned?.kill('SIGKILL');
  process.once('exit', killOnExit);
  server = await startRedisServer((child) => (spawned = child));
  const admin = new Redis(server.url);
  try {
    await admin.config('SET', 'slowlog-log-slower-than', String(SLOWLOG_THRESHOLD_US));
    await admin.config('SET', 'slowlog-max-len', '1000');
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
    const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, redis: redisVersion, loadAverage: os.loadavg().map((load) => round(load, 2)) };
    console.log(`\nDurability bench, ${date.toISOString()}: own redis-server ${redisVersion} (no persistence), load average ${machine.loadAverage.join(' ')}`);
    const snapshots = snapshotParts.length > 0 ? await runSnapshots(admin, server.url, idleJobs(SNAPSHOT_JOBS)) : undefined;
    const checkpoints = await runCheckpoints(admin, server.url);
    if (snapshots) printSnapshots(snapshots);
    printCheckpoints(checkpoints);
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `durability-${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const settings = { snapshotJobs: SNAPSHOT_JOBS, snapshotWrites: SNAPSHOT_WRITES, checkpointLatencyCalls: CHECKPOINT_LATENCY_CALLS, checkpointTightCalls: CHECKPOINT_TIGHT_CALLS, slowlogThresholdUs: SLOWLOG_THRESHOLD_US };
    writeFileSync(file, `${JSON.stringify({ date: date.toISOString(), machine, settings, snapshots, checkpoints }, null, 2)}\n`);
    console.log(`\nResults: ${file}`);
  } finally {
    admin.disconnect();
    await server.stop();
    process.off('exit', killOnExit);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
