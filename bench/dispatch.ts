/**
 * Task dispatch across the cluster, ours beside BullMQ, each as three real Node processes on a
 * redis-server of the bench's own (ours: records on a PostgreSQL database of its own): tasks per
 * second created on one process and run on the three (no-op handler), the lag from create (add)
 * to handler start, the time a task takes to start again elsewhere after `kill -9` of the process
 * running it, and what SIGTERM does to a running task. Run by `npm run bench` after the
 * durability figures; bench/README.md says how each figure is measured.
 *
 * `DISPATCH_TASKS` sets the task count (default 5,000). `BENCH_ONLY` selects parts by label, as in
 * run.ts: `tasks throughput, ours`, `tasks throughput, BullMQ`, `tasks throughput one by one, ours`, `tasks kill -9, ours`,
 * `tasks kill -9, BullMQ`, `tasks SIGTERM, ours`, `tasks SIGTERM, BullMQ` (`BENCH_ONLY=tasks`
 * selects them all; it runs nothing when no label matches).
 */
import { ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { schedulerMigrations } from 'nestjs-distributed-scheduler/records';
import { TestDatabase } from '../test/support/databases';
import type { Created, DispatchChildMessage, DispatchCommand, TaskEnd, TaskStart } from './dispatch-events';
import { startRedisServer } from './redis-server';
import { percentile } from './stats';
import { printTable } from './table';

const PROCESSES = 3;
const TASKS = Number(process.env.DISPATCH_TASKS ?? 5_000);
/** Ours' lockTtl and BullMQ's lockDuration and stalledInterval in the kill -9 part. */
const FAILOVER_LOCK_MS = 3_000;
/** The kill -9 part's task: long enough never to end by itself in the watch. */
const FAILOVER_HOLD_MS = 60_000;
/** The SIGTERM part's task: longer than ours' shutdownTimeout, short enough to see BullMQ's worker.close() end. */
const SIGTERM_HOLD_MS = 10_000;
const SHUTDOWN_TIMEOUT_MS = 1_000;
/** How long after the kill / SIGTERM the bench watches for the task's next start. */
const WATCH_MS = 20_000;
const READY_TIMEOUT_MS = 60_000;
const DEADLINE_MS = 10 * 60_000;

type SystemId = 'ours' | 'bullmq';
const SYSTEMS: { id: SystemId; label: string; script: string }[] = [
  { id: 'ours', label: 'ours', script: 'dispatch-replica.ts' },
  { id: 'bullmq', label: 'BullMQ', script: 'dispatch-bullmq-replica.ts' },
];
const SETTINGS: Record<SystemId, { throughput: string; failover: string; sigterm: string }> = {
  ours: {
    throughput: 'records on PostgreSQL, worker.concurrency 10 per process; 10 loops at once, each an execution of 100 tasks by one TaskManager.createMany (the one-by-one row: 100 TaskManager.create calls in turn)',
    failover: `lockTtl ${FAILOVER_LOCK_MS / 1000} s, retry: { attempts: 2 }`,
    sigterm: `enableShutdownHooks, shutdownTimeout ${SHUTDOWN_TIMEOUT_MS / 1000} s, lockTtl 30 s (default)`,
  },
  bullmq: {
    throughput: 'Worker concurrency 10 per process, one Queue.addBulk, other options default',
    failover: `lockDuration ${FAILOVER_LOCK_MS / 1000} s, stalledInterval ${FAILOVER_LOCK_MS / 1000} s, maxStalledCount 1 (default)`,
    sigterm: 'worker.close() on SIGTERM; lockDuration 30 s, stalledInterval 30 s (defaults)',
  },
};

const ONLY = process.env.BENCH_ONLY?.split(';').map((part) => part.trim()).filter(Boolean);
const selected = (label: string) => !ONLY || ONLY.some((part) => label.includes(part));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- processes ---------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

/** What every process of one part reported: handler starts and ends, in arrival order. */
class Events {
  readonly starts: TaskStart[] = [];
  readonly ends: TaskEnd[] = [];
  private waiters: (() => void)[] = [];

  add(starts: TaskStart[], ends: TaskEnd[]): void {
    this.starts.push(...starts);
    this.ends.push(...ends);
    this.waiters.forEach((wake) => wake());
  }

  /** Resolves with `check()`'s value once it is not undefined; undefined after `timeoutMs`. */
  until<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const done = (value: T | undefined) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((wake) => wake !== test);
        resolve(value);
      };
      const test = () => {
        const value = check();
        if (value !== undefined) done(value);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.waiters.push(test);
      test();
    });
  }
}

class Child {
  private nextId = 0;
  private readonly replies = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly output: string[] = [];
  /** When the process exited (epoch ms), once it has. */
  exitedAt?: number;
  readonly exited: Promise<void>;

  private constructor(
    readonly id: string,
    readonly process: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => process.once('exit', () => ((this.exitedAt = Date.now()), resolve())));
  }

  static start(id: string, script: string, env: Record<string, string>, events: Events): Promise<Child> {
    const child = fork(join(__dirname, script), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      env: { ...process.env, TS_NODE_PROJECT: join(__dirname, 'tsconfig.json'), NO_COLOR: '1', INSTANCE_ID: id, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const started = new Child(id, child);
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => started.output.push(chunk.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} was not ready after ${READY_TIMEOUT_MS / 1000} s: ${started.log}`)), READY_TIMEOUT_MS);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${id} exited (${code ?? signal}) before it was ready: ${started.log}`));
      });
      child.on('message', (message: DispatchChildMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(started);
        } else if (message.type === 'events') events.add(message.starts, message.ends);
        else {
          const reply = started.replies.get(message.id);
          started.replies.delete(message.id);
          if (message.error !== undefined) reply?.reject(new Error(`${id}: ${message.error}`));
          else reply?.resolve(message.result);
        }
      });
    });
  }

  get log(): string {
    return this.output.join('').trim();
  }

  call<T>(command: DispatchCommand extends infer C ? (C extends DispatchCommand ? Omit<C, 'id'> : never) : never): Promise<T> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.process.send({ ...command, id });
    });
  }

  /** Disconnects (the process shuts down by itself), then SIGKILL if it has not exited in 15 s. */
  async stop(): Promise<void> {
    if (this.exitedAt !== undefined) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

interface Setup {
  redisUrl: string;
  dbOptions: string;
}

/** Three processes of `system` under a fresh key prefix; ours: once each sees all three members (the claim order depends on it). */
async function startGroup(setup: Setup, system: (typeof SYSTEMS)[number], part: string, env: Record<string, string>, events: Events): Promise<Child[]> {
  const base = { REDIS_URL: setup.redisUrl, KEY_PREFIX: `bench-dispatch-${part}-${system.id}-${Date.now()}`, DB_OPTIONS: setup.dbOptions, ...env };
  const group = await Promise.all(Array.from({ length: PROCESSES }, (_, i) => Child.start(`${system.id}-${i + 1}`, system.script, base, events)));
  if (system.id === 'ours') {
    const deadline = Date.now() + 30_000;
    for (const child of group) {
      while ((await child.call<number>({ method: 'members' })) < PROCESSES) {
        if (Date.now() > deadline) throw new Error(`${child.id} did not see ${PROCESSES} members in 30 s`);
        await sleep(100);
      }
    }
  }
  return group;
}

async function withGroup<T>(setup: Setup, system: (typeof SYSTEMS)[number], part: string, env: Record<string, string>, run: (group: Child[], events: Events) => Promise<T>): Promise<T & { log: string }> {
  const events = new Events();
  const group = await startGroup(setup, system, part, env, events);
  try {
    const result = await run(group, events);
    return { ...result, log: group.map((child) => child.log).filter(Boolean).join('\n').slice(0, 2_000) };
  } finally {
    await Promise.all(group.map((child) => child.stop()));
  }
}

// --- parts -------------------------------------------------------------------------------------

interface Throughput {
  tasks: number;
  /** First create (add) to the last one's return, ms. */
  createMs: number;
  /** First create (add) to the last handler end, ms. */
  totalMs: number;
  tasksPerSecond: number;
  lagMs: { p50: number; p99: number; max: number };
  runsPerProcess: Record<string, number>;
  duplicates: number;
  lost: number;
}

async function runThroughput(setup: Setup, system: (typeof SYSTEMS)[number], env: Record<string, string> = {}) {
  return withGroup(setup, system, 'throughput', env, async (group, events): Promise<Throughput> => {
    const created = await group[0].call<Created>({ method: 'create', count: TASKS, holdMs: 0 });
    // A task that never runs would hold the bench: wait at most 4 min, then report what ran.
    const ids = new Set<string>();
    let counted = 0;
    await events.until(() => {
      for (; counted < events.ends.length; counted++) ids.add(events.ends[counted].id);
      return ids.size >= TASKS ? true : undefined;
    }, 240_000);
    await sleep(500); // a duplicate start, if any, has time to arrive
    const firstStarts = events.starts.filter((start) => start.attempt === 1);
    const lags = firstStarts.map((start) => start.at - start.createdAt).sort((a, b) => a - b);
    const lastEnd = Math.max(...events.ends.map((end) => end.at));
    const runsPerProcess: Record<string, number> = Object.fromEntries(group.map((child) => [child.id, 0]));
    for (const start of events.starts) runsPerProcess[start.instanceId] = (runsPerProcess[start.instanceId] ?? 0) + 1;
    const totalMs = lastEnd - created.firstAt;
    return {
      tasks: TASKS,
      createMs: created.lastAt - created.firstAt,
      totalMs,
      tasksPerSecond: (ids.size / totalMs) * 1000,
      lagMs: { p50: percentile(lags, 50), p99: percentile(lags, 99), max: percentile(lags, 100) },
      runsPerProcess,
      duplicates: events.starts.length - new Set(events.starts.map((start) => start.id)).size,
      lost: TASKS - ids.size,
    };
  });
}

interface Moved {
  /** The process the task ran on when it was killed / sent SIGTERM. */
  victim: string;
  /** From the kill / SIGTERM to the task's next start on another process, ms; null if it did not start in the watch. */
  nextStartMs: number | null;
  nextStartOn: string | null;
  nextAttempt: number | null;
  /** SIGTERM only: when the victim's handler ended (ms after SIGTERM, and why), and when the victim exited. */
  victimEndMs?: number | null;
  victimEndAborted?: string | null;
  victimExitMs?: number | null;
  /**
   * Ours: a replica claimed the task's next attempt but its records refused to start it (logged
   * `Task <id> of job … does not run: …`): the handler never started, so it has no start event.
   */
  refusedBy?: { instanceId: string; attempt: number; line: string } | null;
  watchMs: number;
}

/** One task holding `holdMs`; once it started, `signal` to its process; then watch for its next start elsewhere. */
async function runMove(setup: Setup, system: (typeof SYSTEMS)[number], part: string, env: Record<string, string>, holdMs: number, signal: 'SIGKILL' | 'SIGTERM') {
  return withGroup(setup, system, part, env, async (group, events): Promise<Moved> => {
    await group[0].call<Created>({ method: 'create', count: 1, holdMs });
    const first = await events.until(() => events.starts[0], 30_000);
    if (!first) throw new Error(`${system.label}: the task did not start in 30 s`);
    const victim = group.find((child) => child.id === first.instanceId)!;
    const signalledAt = Date.now();
    victim.process.kill(signal);
    const next = await events.until(() => events.starts.find((start) => start.instanceId !== victim.id), WATCH_MS);
    if (signal === 'SIGTERM') {
      // BullMQ's close() waits for the job: watch until the victim has exited (or the watch ends).
      await Promise.race([victim.exited, sleep(Math.max(0, signalledAt + WATCH_MS - Date.now()))]);
    }
    const victimEnd = events.ends.find((end) => end.instanceId === victim.id);
    const refusal = group
      .filter((child) => child !== victim)
      .map((child) => ({ instanceId: child.id, line: /Task \d+ of job "[^"]+" does not run: [^\n]*/.exec(child.log)?.[0] }))
      .find((found) => found.line !== undefined);
    return {
      victim: victim.id,
      nextStartMs: next ? next.at - signalledAt : null,
      nextStartOn: next?.instanceId ?? null,
      nextAttempt: next?.attempt ?? null,
      ...(signal === 'SIGTERM'
        ? {
            victimEndMs: victimEnd ? victimEnd.at - signalledAt : null,
            victimEndAborted: victimEnd?.aborted ?? null,
            victimExitMs: victim.exitedAt !== undefined ? victim.exitedAt - signalledAt : null,
            refusedBy: !next && refusal ? { instanceId: refusal.instanceId, attempt: first.attempt + 1, line: refusal.line! } : null,
          }
        : {}),
      watchMs: WATCH_MS,
    };
  });
}

const runFailover = (setup: Setup, system: (typeof SYSTEMS)[number]) =>
  runMove(
    setup,
    system,
    'kill',
    system.id === 'ours' ? { LOCK_TTL_MS: String(FAILOVER_LOCK_MS) } : { LOCK_DURATION_MS: String(FAILOVER_LOCK_MS), STALLED_INTERVAL_MS: String(FAILOVER_LOCK_MS) },
    FAILOVER_HOLD_MS,
    'SIGKILL',
  );

const runSigterm = (setup: Setup, system: (typeof SYSTEMS)[number]) =>
  runMove(setup, system, 'sigterm', system.id === 'ours' ? { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) } : {}, SIGTERM_HOLD_MS, 'SIGTERM');

// --- output ------------------------------------------------------------------------------------

interface SystemResult {
  system: SystemId;
  label: string;
  settings: (typeof SETTINGS)[SystemId];
  throughput?: Throughput & { log: string };
  /** Ours only: the same with one `TaskManager.create` per task. */
  throughputOneByOne?: Throughput & { log: string };
  failover?: Moved & { log: string };
  sigterm?: Moved & { log: string };
}

const ms = (value: number | null | undefined) => (value === null || value === undefined ? '–' : `${value}`);

function moved(result: Moved | undefined): string {
  if (!result) return '–';
  if (result.nextStartMs === null) return `did not start elsewhere in ${result.watchMs / 1000} s`;
  return `${result.nextStartMs} ms (attempt ${result.nextAttempt})`;
}

function sigtermCell(result: Moved | undefined): string {
  if (!result) return '–';
  if (result.nextStartMs !== null) return `${moved(result)}; ${result.victim} exited after ${ms(result.victimExitMs)} ms`;
  const end =
    result.victimEndMs === null
      ? 'did not end'
      : result.victimEndAborted
        ? `aborted (${result.victimEndAborted}) there after ${result.victimEndMs} ms`
        : `ran on to its end there after ${result.victimEndMs} ms`;
  const refused = result.refusedBy ? `, attempt ${result.refusedBy.attempt} refused on ${result.refusedBy.instanceId}: "${result.refusedBy.line}"` : '';
  return `not restarted: ${end}${refused}; ${result.victim} exited after ${ms(result.victimExitMs)} ms`;
}

function printResults(results: SystemResult[]): void {
  const rows: (string | number)[][] = [];
  for (const r of results) {
    const t = r.throughput;
    rows.push([
      r.system === 'ours' ? 'ours (records on PostgreSQL)' : 'BullMQ',
      t ? t.tasks : '–',
      t ? t.createMs : '–',
      t ? Math.round(t.tasksPerSecond) : '–',
      t ? t.lagMs.p50 : '–',
      t ? t.lagMs.p99 : '–',
      t ? Object.values(t.runsPerProcess).join('/') : '–',
      t ? `${t.duplicates}/${t.lost}` : '–',
      moved(r.failover),
      sigtermCell(r.sigterm),
    ]);
    const one = r.throughputOneByOne;
    if (one) {
      rows.push(['ours, create one by one', one.tasks, one.createMs, Math.round(one.tasksPerSecond), one.lagMs.p50, one.lagMs.p99, Object.values(one.runsPerProcess).join('/'), `${one.duplicates}/${one.lost}`, '–', '–']);
    }
    if (r.system === 'ours') rows.push(['ours without records', 'n/a', '–', '–', '–', '–', '–', '–', '–', '–']);
  }
  printTable(
    `Task dispatch: ${PROCESSES} processes per system on one redis-server; tasks created (added) on the first, no-op handler; lag = handler start − create (add)`,
    ['system', 'tasks', 'create ms', 'tasks/s', 'lag p50 ms', 'lag p99 ms', 'runs per process', 'dup/lost', `kill -9 → next start elsewhere`, 'SIGTERM → restart elsewhere'],
    rows,
  );
  console.log('\nNotes:');
  console.log('  tasks/s = tasks / (last handler end − first create); "create ms" = first create (add) until the last one returned.');
  console.log('  ours without records: not measurable; tasks are dispatched across the cluster only through TaskManager.create, which needs the records');
  console.log('    (JobScheduler.trigger dispatches a fire of a job, without parameters, at most 100 pending per job).');
  for (const r of results) {
    console.log(`  ${r.label}: throughput: ${r.settings.throughput}`);
    console.log(`  ${r.label}: kill -9 (task holding ${FAILOVER_HOLD_MS / 1000} s, killed once started): ${r.settings.failover}`);
    console.log(`  ${r.label}: SIGTERM (task holding ${SIGTERM_HOLD_MS / 1000} s, signalled once started): ${r.settings.sigterm}`);
  }
  for (const r of results) {
    for (const [part, figure] of Object.entries({ throughput: r.throughput, 'kill -9': r.failover, SIGTERM: r.sigterm })) {
      if (figure?.log) console.log(`\n${r.label}, ${part}: the processes logged:\n${figure.log.split('\n').slice(0, 10).map((line) => `  ${line}`).join('\n')}`);
    }
  }
}

// --- main --------------------------------------------------------------------------------------

async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  const began = Date.now();
  process.stdout.write(`Running ${label} ... `);
  const result = await run();
  console.log(`done in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  return result;
}

async function main(): Promise<void> {
  setTimeout(() => {
    console.error(`The dispatch bench did not finish in ${DEADLINE_MS / 60_000} minutes; stopping.`);
    process.exit(1);
  }, DEADLINE_MS).unref();
  const parts = [...SYSTEMS.flatMap((system) => ['throughput', 'kill -9', 'SIGTERM'].map((part) => `tasks ${part}, ${system.label}`)), 'tasks throughput one by one, ours'];
  if (!parts.some(selected)) {
    console.log(`\nTask dispatch: no part selected by BENCH_ONLY (${parts.join(' / ')})`);
    return;
  }
  const date = new Date();
  const server = await startRedisServer((child) => {
    children.add(child);
    child.once('exit', () => children.delete(child));
  });
  const db = await TestDatabase.create('postgres');
  const admin = new Redis(server.url);
  try {
    const tables = new DataSource({ ...db.options, migrations: schedulerMigrations('postgres') });
    await tables.initialize();
    await tables.runMigrations();
    await tables.destroy();
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
    const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, redis: redisVersion, loadAverage: os.loadavg().map((load) => Number(load.toFixed(2))) };
    console.log(`\nTask dispatch bench, ${date.toISOString()}: ${TASKS.toLocaleString('en')} tasks, own redis-server ${redisVersion} (no persistence), PostgreSQL database ${(db.options as { database: string }).database}, load average ${machine.loadAverage.join(' ')}`);
    const setup: Setup = { redisUrl: server.url, dbOptions: JSON.stringify(db.options) };
    const results: SystemResult[] = SYSTEMS.map((system) => ({ system: system.id, label: system.label, settings: SETTINGS[system.id] }));
    // Part-major order, as run.ts: a change in the (shared) machine's load hits one comparison less.
    for (const system of SYSTEMS) {
      const label = `tasks throughput, ${system.label}`;
      if (selected(label)) results.find((r) => r.system === system.id)!.throughput = await timed(label, () => runThroughput(setup, system));
    }
    // Ours again, each task by its own TaskManager.create: what an app that creates them in a loop gets.
    const oneByOne = 'tasks throughput one by one, ours';
    if (selected(oneByOne)) results.find((r) => r.system === 'ours')!.throughputOneByOne = await timed(oneByOne, () => runThroughput(setup, SYSTEMS[0], { CREATE_MODE: 'one' }));
    for (const system of SYSTEMS) {
      const label = `tasks kill -9, ${system.label}`;
      if (selected(label)) results.find((r) => r.system === system.id)!.failover = await timed(label, () => runFailover(setup, system));
    }
    for (const system of SYSTEMS) {
      const label = `tasks SIGTERM, ${system.label}`;
      if (selected(label)) results.find((r) => r.system === system.id)!.sigterm = await timed(label, () => runSigterm(setup, system));
    }
    printResults(results);
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `dispatch-${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const settings = { processes: PROCESSES, tasks: TASKS, failoverLockMs: FAILOVER_LOCK_MS, failoverHoldMs: FAILOVER_HOLD_MS, sigtermHoldMs: SIGTERM_HOLD_MS, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS, watchMs: WATCH_MS };
    writeFileSync(file, `${JSON.stringify({ date: date.toISOString(), machine, settings, results, durationMs: Date.now() - date.getTime() }, null, 2)}\n`);
    console.log(`\nResults: ${file}`);
  } finally {
    admin.disconnect();
    await server.stop();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
