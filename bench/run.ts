/**
 * Benchmark of nestjs-distributed-scheduler: 3 replicas as real Node processes, coordinated on a
 * redis-server of the bench's own. Run with `npm run bench`; bench/README.md says what it measures.
 */
import { ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { startRedisServer } from './redis-server';
import type { ParentMessage, ReplicaMessage } from './replica';
import { analyzeRuns, LoopDelay, parseCommandStats, RedisCost, redisCost, RunFigures, RunRecord, Window } from './stats';

const REPLICAS = 3;
/** Bootstrap, first registration and JIT warm-up happen here and are left out of every figure. */
const WARMUP_MS = 3_000;
/** After the window closes, runs due in it may still be starting: wait for them before stopping. */
const GRACE_MS = 3_000;
/** If anything hangs, the bench stops itself rather than leave processes behind. */
const DEADLINE_MS = 11 * 60_000;

interface Scenario {
  id: string;
  label: string;
  jobs: number;
  everyMs: number;
  /** CPU each handler burns synchronously. */
  busyMs: number;
  measureMs: number;
  /** Comparisons only: the process each replica runs (default replica.ts, our library). */
  script?: string;
  /** Comparisons only: how many processes (default REPLICAS). */
  replicas?: number;
  /** Comparisons only: a longer warm-up, e.g. a poller's first polling period. */
  warmupMs?: number;
  /** Comparisons only: more environment for the processes, e.g. the poller's POLLING_MS. */
  env?: Record<string, string>;
}

const SCENARIOS: Scenario[] = [
  { id: 'a', label: '(a) 10 jobs / 1 s', jobs: 10, everyMs: 1_000, busyMs: 0, measureMs: 25_000 },
  { id: 'b', label: '(b) 1,000 jobs / 1 s', jobs: 1_000, everyMs: 1_000, busyMs: 0, measureMs: 10_000 },
  { id: 'c', label: '(c) 10 jobs / 1 s, 50 ms CPU', jobs: 10, everyMs: 1_000, busyMs: 50, measureMs: 25_000 },
  // Registered but not due before the window ends (first due 60 s after start): the idle cost.
  { id: 'idle', label: 'idle: 1,000 jobs / 60 s', jobs: 1_000, everyMs: 60_000, busyMs: 0, measureMs: 20_000 },
];

interface ScenarioResult {
  scenario: Scenario;
  window: Window;
  figures: RunFigures;
  eventLoop: Record<string, LoopDelay>;
  redis: RedisCost & { perRun: number | null; perReplicaSecond: number };
  replicaLog: { lines: number; head: string[] };
}

// --- child processes ---------------------------------------------------------------------------

/** Every process the bench started, killed whatever way the bench ends. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const LOG_HEAD_LINES = 10;
const READY_TIMEOUT_MS = 60_000;

/** One replica process: collects its runs into the scenario's list and answers loop-delay queries. */
class Replica {
  private logLines = 0;
  private readonly logHead: string[] = [];
  private onLoop?: (loop: LoopDelay) => void;
  private stopping = false;
  /** Set if the process ended before `stop()`: the configuration fails with this instead of a bare IPC error. */
  private crash?: Error;

  private constructor(
    readonly id: string,
    private readonly child: ChildProcess,
  ) {}

  /** The replica's bootstrap time as it measured it (createApplicationContext), if it sent one. */
  bootMs?: number;

  static start(id: string, env: Record<string, string>, runs: RunRecord[], script = 'replica.ts'): Promise<Replica> {
    const child = fork(join(__dirname, script), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      env: { ...process.env, TS_NODE_PROJECT: join(__dirname, 'tsconfig.json'), NO_COLOR: '1', INSTANCE_ID: id, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    track(child);
    const replica = new Replica(id, child);
    // Replicas log warnings and errors only; any line is worth a look, so count them and keep the first.
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => replica.keepLog(chunk.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`replica ${id} was not ready after ${READY_TIMEOUT_MS / 1000} s:\n${replica.logHead.join('\n')}`));
      }, READY_TIMEOUT_MS);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (replica.stopping) return;
        replica.crash = new Error(`replica ${id} exited (${code ?? signal}):\n${replica.logHead.join('\n')}`);
        reject(replica.crash);
      });
      child.on('message', (message: ReplicaMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          replica.bootMs = message.bootMs;
          resolve(replica);
        } else if (message.type === 'runs') for (const run of message.runs) runs.push(run);
        else replica.onLoop?.(message.loop);
      });
    });
  }

  get log() {
    return { lines: this.logLines, head: this.logHead };
  }

  send(message: ParentMessage): void {
    if (this.crash) throw this.crash;
    this.child.send(message);
  }

  /** Flushes the replica's unsent runs, then returns its event-loop delay since `measure`. */
  loopDelay(): Promise<LoopDelay> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica ${this.id} did not report its event-loop delay`)), 10_000);
      this.onLoop = (loop) => {
        clearTimeout(timer);
        resolve(loop);
      };
      this.send({ type: 'report' });
    });
  }

  /** `kill -9`: the failover configuration's crash of the replica running the job. */
  kill(): void {
    this.stopping = true;
    this.child.kill('SIGKILL');
  }

  /** Disconnecting makes the replica close its app (shutdown hooks run); killed if it hangs. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.child.connected) this.child.disconnect();
      else this.child.kill('SIGTERM');
    });
  }

  private keepLog(text: string): void {
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
      this.logLines++;
      if (this.logHead.length < LOG_HEAD_LINES) this.logHead.push(line);
    }
  }
}

// --- one configuration -------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * The window starts half a period away from the jobs' due times, so that it holds whole due
 * instants and the Redis stats read at its edges do not cut a burst of claims in two.
 */
function measurementWindow(runs: RunRecord[], scenario: Scenario, notBefore: number): Window {
  const last = runs.at(-1);
  let start = notBefore;
  if (last) {
    const target = (last.scheduledAt + scenario.everyMs / 2) % scenario.everyMs;
    start += (target - (notBefore % scenario.everyMs) + scenario.everyMs) % scenario.everyMs;
  }
  return { start, end: start + scenario.measureMs };
}

async function runScenario(redisUrl: string, admin: Redis, scenario: Scenario): Promise<ScenarioResult> {
  const runs: RunRecord[] = [];
  const env = {
    REDIS_URL: redisUrl,
    // A fresh prefix per configuration: no state is carried over from the previous one.
    KEY_PREFIX: `bench-${scenario.id}-${Date.now()}`,
    JOB_COUNT: String(scenario.jobs),
    EVERY_MS: String(scenario.everyMs),
    BUSY_MS: String(scenario.busyMs),
    ...scenario.env,
  };
  const replicaCount = scenario.replicas ?? REPLICAS;
  const started = Array.from({ length: replicaCount }, (_, i) => Replica.start(`replica-${i + 1}`, env, runs, scenario.script));
  const replicas: Replica[] = [];
  try {
    replicas.push(...(await Promise.all(started)));
    await sleep(scenario.warmupMs ?? WARMUP_MS);
    const window = measurementWindow(runs, scenario, Date.now());
    await sleep(window.start - Date.now());
    replicas.forEach((replica) => replica.send({ type: 'measure' }));
    await admin.config('RESETSTAT');
    await sleep(window.end - Date.now());
    const cost = redisCost(parseCommandStats(await admin.info('commandstats')));
    await sleep(GRACE_MS);
    const loops = await Promise.all(replicas.map((replica) => replica.loopDelay()));
    const jobNames = Array.from({ length: scenario.jobs }, (_, i) => `job-${i}`);
    const figures = analyzeRuns(runs, window, scenario.everyMs, jobNames);
    const windowSeconds = (window.end - window.start) / 1000;
    const replicaLog = { lines: 0, head: [] as string[] };
    for (const replica of replicas) {
      replicaLog.lines += replica.log.lines;
      replicaLog.head.push(...replica.log.head.map((line) => `${replica.id}: ${line}`));
    }
    return {
      scenario,
      window,
      figures,
      eventLoop: Object.fromEntries(replicas.map((replica, i) => [replica.id, loops[i]])),
      redis: { ...cost, perRun: figures.runs > 0 ? cost.calls / figures.runs : null, perReplicaSecond: cost.calls / (replicaCount * windowSeconds) },
      replicaLog,
    };
  } finally {
    // Stops the replicas that started even if another failed to.
    const settled = await Promise.allSettled(started);
    await Promise.all(settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : [])));
  }
}

// --- output ------------------------------------------------------------------------------------

function cell(value: string | number): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '–';
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const lines = [header, ...rows.map((row) => row.map(cell))];
  const widths = header.map((_, i) => Math.max(...lines.map((line) => line[i].length)));
  const format = (line: string[]) => line.map((text, i) => (i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(format(lines[0]));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  lines.slice(1).forEach((line) => console.log(format(line)));
}

/** Per-replica values in replica order, e.g. "83/84/83". */
const perReplica = (values: number[]) => values.map(cell).join('/');

function printResults(results: ScenarioResult[]): void {
  const active = results.filter((result) => result.scenario.everyMs <= result.scenario.measureMs);
  printTable(
    'Start lag, ms: startedAt (handler entry) − scheduledAt (due time), runs due in the measured window',
    ['configuration', 'runs', 'p50', 'p99', 'max', 'early'],
    active.map(({ scenario, figures: f }) => [scenario.label, f.runs, f.lagMs.p50, f.lagMs.p99, f.lagMs.max, f.early]),
  );
  printTable(
    'Exactly once: duplicate runs, missed due times, fencing order',
    ['configuration', 'runs', 'duplicates', 'missed', 'off-cadence', 'fencing not increasing', 'runs per replica'],
    results.map(({ scenario, figures: f, eventLoop }) => [
      scenario.label,
      f.runs,
      f.duplicates,
      scenario.everyMs <= scenario.measureMs ? f.missed : '–',
      f.offCadence,
      f.fencingNotIncreasing,
      perReplica(Object.keys(eventLoop).map((id) => f.runsPerInstance[id] ?? 0)),
    ]),
  );
  printTable(
    'Event-loop delay per replica, ms (monitorEventLoopDelay over the measured window; replica-1/2/3)',
    ['configuration', 'p99', 'max'],
    results.map(({ scenario, eventLoop }) => [
      scenario.label,
      perReplica(Object.values(eventLoop).map((loop) => loop.p99Ms)),
      perReplica(Object.values(eventLoop).map((loop) => loop.maxMs)),
    ]),
  );
  printTable(
    'Redis cost over the measured window (INFO commandstats; calls include those made inside Lua scripts)',
    ['configuration', 'window s', 'commands', 'EVALSHA/EVAL', 'commands/run', 'scripts/run', 'commands/replica-s'],
    results.map(({ scenario, window, figures, redis }) => [
      scenario.label,
      (window.end - window.start) / 1000,
      redis.calls,
      redis.scriptCalls,
      redis.perRun ?? '–',
      figures.runs > 0 ? redis.scriptCalls / figures.runs : '–',
      redis.perReplicaSecond,
    ]),
  );
  for (const { scenario, replicaLog } of results) {
    if (replicaLog.lines === 0) continue;
    console.log(`\n${scenario.label}: the replicas logged ${replicaLog.lines} line(s); the first:`);
    replicaLog.head.forEach((line) => console.log(`  ${line}`));
  }
}

// --- comparisons (after the four configurations above; bench/README.md, "Comparisons") ---------

/** cronutil-style poller: 3 processes of poller-replica.ts, same jobs and Redis as (a) and idle. */
const POLLER_SCENARIOS: Scenario[] = [1_000, 5_000].flatMap((pollingMs) => {
  const polling = `${pollingMs / 1000} s`;
  const common = { script: 'poller-replica.ts', busyMs: 0, env: { POLLING_MS: String(pollingMs) } };
  return [
    // Warm-up covers the first polling period (the poller's first check) as well as the usual 3 s.
    { ...common, id: `poller-${pollingMs}`, label: `poller, polling ${polling}: 10 jobs / 1 s`, jobs: 10, everyMs: 1_000, measureMs: 20_000, warmupMs: WARMUP_MS + pollingMs },
    { ...common, id: `poller-idle-${pollingMs}`, label: `poller, polling ${polling}: idle, 1,000 jobs / 60 s`, jobs: 1_000, everyMs: 60_000, measureMs: 20_000, warmupMs: WARMUP_MS + pollingMs },
  ];
});

/** @nestjs/schedule: ONE process, 10 × @Interval(1000), no Redis. */
const NEST_SCHEDULE_SCENARIO: Scenario = {
  id: 'nest-schedule',
  label: '@nestjs/schedule, 1 process: 10 jobs / 1 s',
  jobs: 10,
  everyMs: 1_000,
  busyMs: 0,
  measureMs: 20_000,
  script: 'nest-schedule-app.ts',
  replicas: 1,
};

const FAILOVER = { everyMs: 15_000, holdMs: 10_000, lockTtlMs: 3_000, observeAfterMs: 3_000 };

interface FailoverResult {
  settings: typeof FAILOVER;
  killed: { instanceId: string; scheduledAt: number; startedAt: number; fencingToken: number; killedAt: number; killAfterStartMs: number };
  nextDue: number;
  /** The run of the next due time, if one started before the bench stopped waiting. */
  next: (RunRecord & { afterKillMs: number; lagMs: number }) | null;
  withinTarget: boolean;
  /** Runs of a due time that another run had already served. */
  doubled: number;
  /** The killed due time run again (our library does not retry a run whose replica died). */
  killedRerun: number;
  lost: boolean;
  runs: RunRecord[];
  replicaLog: { lines: number; head: string[] };
}

const until = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
};

function collectLogs(replicas: Replica[]): { lines: number; head: string[] } {
  const log = { lines: 0, head: [] as string[] };
  for (const replica of replicas) {
    log.lines += replica.log.lines;
    log.head.push(...replica.log.head.map((line) => `${replica.id}: ${line}`));
  }
  return log;
}

/**
 * Ours: 3 replicas, one job every 15 s whose handler holds for 10 s, lockTtl 3 s. As soon as the
 * first run reports its start (sent at once, not batched), its replica is killed with SIGKILL.
 */
async function runFailover(redisUrl: string): Promise<FailoverResult> {
  const runs: RunRecord[] = [];
  const env = {
    REDIS_URL: redisUrl,
    KEY_PREFIX: `bench-failover-${Date.now()}`,
    JOB_COUNT: '1',
    EVERY_MS: String(FAILOVER.everyMs),
    BUSY_MS: '0',
    HOLD_MS: String(FAILOVER.holdMs),
    LOCK_TTL_MS: String(FAILOVER.lockTtlMs),
    REPORT_AT_ONCE: '1',
  };
  const started = Array.from({ length: REPLICAS }, (_, i) => Replica.start(`replica-${i + 1}`, env, runs));
  try {
    const replicas = await Promise.all(started);
    if (!(await until(() => runs.length > 0, FAILOVER.everyMs + 10_000))) throw new Error('failover: the job never ran');
    const first = runs[0];
    const victim = replicas.find((replica) => replica.id === first.instanceId)!;
    victim.kill();
    const killedAt = Date.now();
    const nextDue = first.scheduledAt + FAILOVER.everyMs;
    // Wait past the target (2 × lockTtl after the next due time) and a little more, then watch for doubles.
    await until(() => runs.some((run) => run.scheduledAt === nextDue), nextDue + 2 * FAILOVER.lockTtlMs + 5_000 - Date.now());
    await sleep(FAILOVER.observeAfterMs);
    const seen = new Map<number, number>();
    for (const run of runs) seen.set(run.scheduledAt, (seen.get(run.scheduledAt) ?? 0) + 1);
    const nextRun = runs.find((run) => run.scheduledAt === nextDue);
    const next = nextRun ? { ...nextRun, afterKillMs: nextRun.startedAt - killedAt, lagMs: nextRun.startedAt - nextDue } : null;
    return {
      settings: FAILOVER,
      killed: { instanceId: victim.id, scheduledAt: first.scheduledAt, startedAt: first.startedAt, fencingToken: first.fencingToken, killedAt, killAfterStartMs: killedAt - first.startedAt },
      nextDue,
      next,
      withinTarget: next !== null && next.lagMs <= 2 * FAILOVER.lockTtlMs && next.instanceId !== victim.id,
      doubled: [...seen.values()].reduce((sum, count) => sum + count - 1, 0),
      killedRerun: (seen.get(first.scheduledAt) ?? 1) - 1,
      lost: next === null,
      runs,
      replicaLog: collectLogs(replicas),
    };
  } finally {
    const settled = await Promise.allSettled(started);
    await Promise.all(settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : [])));
  }
}

const STARTUP = { replicas: 6, jobs: 10_000, everyMs: 60_000 };

interface StartupResult {
  settings: typeof STARTUP;
  /** Spawn (all at once) until each replica's bootstrap returned, ms. */
  readyMs: Record<string, number>;
  allReadyMs: number;
  /** Bootstrap time each replica measured itself (createApplicationContext). */
  bootMs: Record<string, number>;
  /** Spawn until Redis first held every job in both the names set and the due zset (polled every 50 ms). */
  allRegisteredMs: number | null;
  redis: { jobHashes: number; names: number; due: number; liveReplicas: number; runHashes: number; namesWithoutHash: number; hashesNotInNames: number };
  exactlyOnce: boolean;
  replicaLog: { lines: number; head: string[] };
}

async function scanCount(admin: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [nextCursor, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    keys.push(...batch);
    cursor = nextCursor;
  } while (cursor !== '0');
  return [...new Set(keys)];
}

/** Ours: 6 replicas spawned at once, each registering the same 10,000 jobs. */
async function runStartup(redisUrl: string, admin: Redis): Promise<StartupResult> {
  const prefix = `bench-startup-${Date.now()}`;
  const base = `{${prefix}}`; // as lib/coordination/redis/redis-keys.ts wraps it
  const env = { REDIS_URL: redisUrl, KEY_PREFIX: prefix, JOB_COUNT: String(STARTUP.jobs), EVERY_MS: String(STARTUP.everyMs), BUSY_MS: '0' };
  const runs: RunRecord[] = [];
  const spawnAt = Date.now();
  let allRegisteredAt: number | null = null;
  let watching = true;
  const watcher = (async () => {
    while (watching && allRegisteredAt === null) {
      const [names, due] = await Promise.all([admin.scard(`${base}:names`), admin.zcard(`${base}:due`)]);
      if (names >= STARTUP.jobs && due >= STARTUP.jobs) allRegisteredAt = Date.now();
      else await sleep(50);
    }
  })();
  const readyAt: Record<string, number> = {};
  const started = Array.from({ length: STARTUP.replicas }, (_, i) =>
    Replica.start(`replica-${i + 1}`, env, runs).then((replica) => {
      readyAt[replica.id] = Date.now();
      return replica;
    }),
  );
  try {
    const replicas = await Promise.all(started);
    await until(() => allRegisteredAt !== null, 30_000);
    // Let registrations still in flight land before counting.
    await sleep(2_000);
    watching = false;
    await watcher;
    const hashes = await scanCount(admin, `${base}:job:*`);
    const names = await admin.smembers(`${base}:names`);
    const due = await admin.zcard(`${base}:due`);
    const liveReplicas = await admin.zcard(`${base}:replicas`);
    const runHashes = (await scanCount(admin, `${base}:runs:*`)).length;
    const hashNames = new Set(hashes.map((key) => key.slice(`${base}:job:`.length)));
    const nameSet = new Set(names);
    const namesWithoutHash = names.filter((name) => !hashNames.has(name)).length;
    const hashesNotInNames = [...hashNames].filter((name) => !nameSet.has(name)).length;
    const redis = { jobHashes: hashes.length, names: names.length, due, liveReplicas, runHashes, namesWithoutHash, hashesNotInNames };
    return {
      settings: STARTUP,
      readyMs: Object.fromEntries(replicas.map((replica) => [replica.id, readyAt[replica.id] - spawnAt])),
      allReadyMs: Math.max(...Object.values(readyAt)) - spawnAt,
      bootMs: Object.fromEntries(replicas.map((replica) => [replica.id, replica.bootMs ?? NaN])),
      allRegisteredMs: allRegisteredAt === null ? null : allRegisteredAt - spawnAt,
      redis,
      exactlyOnce:
        hashes.length === STARTUP.jobs && names.length === STARTUP.jobs && due === STARTUP.jobs && namesWithoutHash === 0 && hashesNotInNames === 0,
      replicaLog: collectLogs(replicas),
    };
  } finally {
    watching = false;
    const settled = await Promise.allSettled(started);
    await Promise.all(settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : [])));
  }
}

interface Comparisons {
  poller: ScenarioResult[];
  nestSchedule: ScenarioResult;
  failover: FailoverResult;
  startup: StartupResult;
}

function printComparisons(results: ScenarioResult[], c: Comparisons): void {
  const ours = results.find((result) => result.scenario.id === 'a')!;
  const oursIdle = results.find((result) => result.scenario.id === 'idle')!;
  const lagRow = ({ scenario, figures: f, eventLoop }: ScenarioResult, label = scenario.label) => [
    label,
    f.runs,
    f.lagMs.p50,
    f.lagMs.p99,
    f.lagMs.max,
    f.early,
    f.duplicates,
    f.missed,
    perReplica(Object.keys(eventLoop).map((id) => f.runsPerInstance[id] ?? 0)),
  ];
  const pollerActive = c.poller.filter((result) => result.scenario.everyMs <= result.scenario.measureMs);
  printTable(
    'cronutil-style poller vs ours, 3 replicas, 10 jobs / 1 s: lag ms = start − due (poller: stored next time, epoch s × 1000), window 20 s (ours: 25 s)',
    ['configuration', 'runs', 'p50', 'p99', 'max', 'early', 'duplicates', 'missed', 'runs per replica'],
    [lagRow(ours, 'ours (a): 10 jobs / 1 s'), ...pollerActive.map((result) => lagRow(result))],
  );
  const idleRow = ({ scenario, window, redis }: ScenarioResult, label = scenario.label) => [
    label,
    (window.end - window.start) / 1000,
    redis.calls,
    redis.scriptCalls,
    redis.perReplicaSecond,
    // Ours is about 0.001 here: two significant digits rather than the tables' one decimal.
    (redis.perReplicaSecond / scenario.jobs).toPrecision(2),
  ];
  printTable(
    'Idle Redis cost, 3 replicas, 1,000 jobs registered, none due (INFO commandstats; calls include those inside Lua scripts)',
    ['configuration', 'window s', 'commands', 'EVALSHA/EVAL', 'commands/replica-s', 'per job per replica-s'],
    [idleRow(oursIdle, 'ours (idle): 1,000 jobs / 60 s'), ...c.poller.filter((result) => result.scenario.everyMs > result.scenario.measureMs).map((result) => idleRow(result))],
  );
  const ns = c.nestSchedule;
  printTable(
    '@nestjs/schedule reference: lag ms = handler entry − (interval registration + k · 1000), 1 process, no coordination; ours (a) for scale',
    ['configuration', 'runs', 'p50', 'p99', 'max', 'early', 'loop p99', 'loop max'],
    [
      [ns.scenario.label, ns.figures.runs, ns.figures.lagMs.p50, ns.figures.lagMs.p99, ns.figures.lagMs.max, ns.figures.early, ...Object.values(ns.eventLoop).flatMap((loop) => [loop.p99Ms, loop.maxMs])],
      [
        'ours (a), 3 replicas: 10 jobs / 1 s',
        ours.figures.runs,
        ours.figures.lagMs.p50,
        ours.figures.lagMs.p99,
        ours.figures.lagMs.max,
        ours.figures.early,
        perReplica(Object.values(ours.eventLoop).map((loop) => loop.p99Ms)),
        perReplica(Object.values(ours.eventLoop).map((loop) => loop.maxMs)),
      ],
    ],
  );
  const f = c.failover;
  const at = (epochMs: number) => `+${((epochMs - f.killed.scheduledAt) / 1000).toFixed(3)} s`;
  printTable(
    `Failover (ours), 3 replicas, 1 job every 15 s holding 10 s, lockTtl 3 s: kill -9 of the replica running it (times from the killed run's due time)`,
    ['event', 'when', 'ms', 'replica'],
    [
      ['killed run starts', at(f.killed.startedAt), f.killed.startedAt - f.killed.scheduledAt, f.killed.instanceId],
      ['kill -9 sent', at(f.killed.killedAt), f.killed.killAfterStartMs, f.killed.instanceId],
      ['next due time', at(f.nextDue), f.nextDue - f.killed.killedAt, '–'],
      ['next run starts', f.next ? at(f.next.startedAt) : 'never', f.next ? f.next.afterKillMs : '–', f.next?.instanceId ?? '–'],
    ],
  );
  console.log(
    `  next run's lag after its due time: ${f.next ? `${f.next.lagMs} ms` : '–'} (target ≤ 2 × lockTtl = ${2 * FAILOVER.lockTtlMs} ms: ${f.withinTarget ? 'met' : 'MISSED'}); ` +
      `doubled runs: ${f.doubled}; next due time lost: ${f.lost ? 'yes' : 'no'}; killed due time re-run: ${f.killedRerun}` +
      `; fencing ${f.next ? (f.next.fencingToken > f.killed.fencingToken ? 'increased' : 'NOT increased') : '–'}`,
  );
  const s = c.startup;
  printTable(
    'Startup (ours): 6 replica processes spawned at once, each registering the same 10,000 jobs (every 60 s)',
    ['figure', 'value'],
    [
      ['spawn → every replica ready (bootstrap returned), ms', s.allReadyMs],
      ['spawn → ready per replica (replica-1/…/6), ms', perReplica(Object.values(s.readyMs))],
      ['bootstrap per replica (createApplicationContext), ms', perReplica(Object.values(s.bootMs))],
      ['spawn → Redis holds all 10,000 (names and due), ms', s.allRegisteredMs ?? 'never'],
      ['{prefix}:job:* hashes', s.redis.jobHashes],
      ['{prefix}:names members', s.redis.names],
      ['{prefix}:due members', s.redis.due],
      ['names without a hash / hashes not in names', `${s.redis.namesWithoutHash} / ${s.redis.hashesNotInNames}`],
      ['{prefix}:replicas members', s.redis.liveReplicas],
      ['{prefix}:runs:* hashes (nothing should have run)', s.redis.runHashes],
      ['each job exactly once', s.exactlyOnce ? 'yes' : 'NO'],
    ],
  );
  const logs: [string, { lines: number; head: string[] }][] = [
    ...[...c.poller, c.nestSchedule].map((result): [string, { lines: number; head: string[] }] => [result.scenario.label, result.replicaLog]),
    ['failover', f.replicaLog],
    ['startup', s.replicaLog],
  ];
  for (const [label, log] of logs) {
    if (log.lines === 0) continue;
    console.log(`\n${label}: the processes logged ${log.lines} line(s); the first:`);
    log.head.forEach((line) => console.log(`  ${line}`));
  }
}

async function runComparisons(redisUrl: string, admin: Redis): Promise<Comparisons> {
  const timed = async <T>(label: string, run: () => Promise<T>): Promise<T> => {
    const began = Date.now();
    process.stdout.write(`\nRunning ${label} ... `);
    const result = await run();
    process.stdout.write(`done in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    return result;
  };
  const poller: ScenarioResult[] = [];
  for (const scenario of POLLER_SCENARIOS) poller.push(await timed(scenario.label, () => runScenario(redisUrl, admin, scenario)));
  const nestSchedule = await timed(NEST_SCHEDULE_SCENARIO.label, () => runScenario(redisUrl, admin, NEST_SCHEDULE_SCENARIO));
  const failover = await timed('failover (ours)', () => runFailover(redisUrl));
  const startup = await timed('startup (ours): 6 replicas × 10,000 jobs', () => runStartup(redisUrl, admin));
  console.log();
  return { poller, nestSchedule, failover, startup };
}

// --- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  setTimeout(() => {
    console.error(`The bench did not finish in ${DEADLINE_MS / 60_000} minutes; stopping.`);
    process.exit(1);
  }, DEADLINE_MS).unref();

  const date = new Date();
  const server = await startRedisServer(track);
  const admin = new Redis(server.url);
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
    const cpus = os.cpus();
    const machine = {
      cpu: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      redis: redisVersion,
    };
    console.log(`nestjs-distributed-scheduler bench, ${date.toISOString()}`);
    console.log(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, Node ${machine.node}, ${machine.platform}`);
    console.log(`Redis: own redis-server ${redisVersion} on port ${server.port}, no persistence`);
    console.log(`Setup: ${REPLICAS} replica processes, warm-up ${WARMUP_MS / 1000} s excluded, grace ${GRACE_MS / 1000} s after each window`);

    const results: ScenarioResult[] = [];
    for (const scenario of SCENARIOS) {
      const began = Date.now();
      process.stdout.write(`\nRunning ${scenario.label} ... `);
      results.push(await runScenario(server.url, admin, scenario));
      process.stdout.write(`done in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    }
    console.log();
    printResults(results);

    const comparisons = await runComparisons(server.url, admin);
    printComparisons(results, comparisons);

    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    // Colons are not allowed in file names everywhere: the ISO timestamp uses '-' instead.
    const file = join(dir, `${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const settings = { replicas: REPLICAS, warmupMs: WARMUP_MS, graceMs: GRACE_MS };
    writeFileSync(file, `${JSON.stringify({ date: date.toISOString(), machine, settings, results, comparisons }, null, 2)}\n`);
    console.log(`\nResults written to ${file}`);
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
