/**
 * Benchmark of nestjs-distributed-scheduler beside BullMQ, a cronutil-style poller and
 * @nestjs/schedule: each system runs as real Node processes (3 per system where it coordinates),
 * on a redis-server of the bench's own. Run with `npm run bench`; bench/README.md says what it
 * measures and how each system is set up.
 */
import { ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { ParentMessage, ReplicaMessage } from './child-reporting';
import { startRedisServer } from './redis-server';
import { cell, printTable } from './table';
import { analyzeRuns, LoopDelay, parseCommandStats, RedisCost, redisCost, RunFigures, RunRecord, Window } from './stats';

const REPLICAS = 3;
/** Bootstrap, first registration and JIT warm-up happen here and are left out of every figure. */
const WARMUP_MS = 3_000;
/** After the window closes, runs due in it may still be starting: wait for them before stopping. */
const GRACE_MS = 3_000;
/** If anything hangs, the bench stops itself rather than leave processes behind (a run takes about 24 min). */
const DEADLINE_MS = 35 * 60_000;

type WorkloadId = 'a' | 'b' | 'c' | 'idle';

/** The same jobs for every system: N jobs `job-0 .. job-N-1`, each every `everyMs`. */
interface Workload {
  id: WorkloadId;
  label: string;
  jobs: number;
  everyMs: number;
  /** CPU each handler burns synchronously. */
  busyMs: number;
  measureMs: number;
}

const WORKLOADS: Workload[] = [
  // 200 s: at least 2,000 due times per system for the lag percentiles.
  { id: 'a', label: '(a) 10 jobs / 1 s', jobs: 10, everyMs: 1_000, busyMs: 0, measureMs: 200_000 },
  { id: 'b', label: '(b) 1,000 jobs / 1 s', jobs: 1_000, everyMs: 1_000, busyMs: 0, measureMs: 10_000 },
  { id: 'c', label: '(c) 10 jobs / 1 s, 50 ms CPU', jobs: 10, everyMs: 1_000, busyMs: 50, measureMs: 25_000 },
  // Registered but not due before the window ends (first due 60 s after start): the idle cost.
  { id: 'idle', label: 'idle: 1,000 jobs / 60 s', jobs: 1_000, everyMs: 60_000, busyMs: 0, measureMs: 30_000 },
];

/** A system compared: the process it runs (one per replica) and the workloads it takes part in. */
interface System {
  id: string;
  label: string;
  script: string;
  /** How many processes (default REPLICAS). */
  replicas?: number;
  /** A longer warm-up, e.g. a poller's first polling period. */
  warmupMs?: number;
  /** More environment for the processes, e.g. the poller's POLLING_MS. */
  env?: Record<string, string>;
  workloads: WorkloadId[];
  /** False for @nestjs/schedule, which does not use Redis: it has no row in the Redis cost table. */
  usesRedis: boolean;
}

const poller = (pollingMs: number): System => ({
  id: `poller-${pollingMs / 1000}s`,
  label: `poller, polling ${pollingMs / 1000} s`,
  script: 'poller-replica.ts',
  env: { POLLING_MS: String(pollingMs) },
  // Warm-up covers the first polling period (the poller's first check) as well as the usual 3 s.
  warmupMs: WARMUP_MS + pollingMs,
  workloads: ['a', 'idle'],
  usesRedis: true,
});

const SYSTEMS: System[] = [
  { id: 'ours', label: 'ours', script: 'replica.ts', workloads: ['a', 'b', 'c', 'idle'], usesRedis: true },
  { id: 'bullmq', label: 'BullMQ', script: 'bullmq-replica.ts', workloads: ['a', 'b', 'c', 'idle'], usesRedis: true },
  poller(1_000),
  poller(5_000),
  // ONE process: it has no coordination, so on 3 replicas every job would run three times.
  { id: 'nest-schedule', label: '@nestjs/schedule, 1 process', script: 'nest-schedule-app.ts', replicas: 1, workloads: ['a'], usesRedis: false },
];

/**
 * Workload-major order: the systems of one workload run one after the other, so a change in the
 * machine's load (it is shared) hits one comparison less than if each system ran all its workloads in turn.
 */
interface Scenario {
  system: System;
  workload: Workload;
}

const SCENARIOS: Scenario[] = WORKLOADS.flatMap((workload) =>
  SYSTEMS.filter((system) => system.workloads.includes(workload.id)).map((system) => ({ system, workload })),
);

interface ScenarioResult {
  scenario: Scenario;
  window: Window;
  figures: RunFigures;
  eventLoop: Record<string, LoopDelay>;
  redis: RedisCost & { perRun: number | null; perReplicaSecond: number };
  replicaLog: ProcessLog;
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

interface ProcessLog {
  lines: number;
  head: string[];
}

/** One replica process (of any system): collects its runs into the scenario's list and answers loop-delay queries. */
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
  /** When its `ready` message came (epoch ms). */
  readyAt?: number;

  static start(id: string, env: Record<string, string>, runs: RunRecord[], script: string): Promise<Replica> {
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
          replica.readyAt = Date.now();
          replica.bootMs = message.bootMs;
          resolve(replica);
        } else if (message.type === 'runs') for (const run of message.runs) runs.push(run);
        else replica.onLoop?.(message.loop);
      });
    });
  }

  get log(): ProcessLog {
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

  /** `kill -9`: the failover figure's crash of the replica running the job. */
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

const until = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
};

/** Starts `count` processes of `script` at once; `stop` ends the ones that started, even if another failed to. */
function startReplicas(count: number, script: string, env: Record<string, string>, runs: RunRecord[]) {
  const started = Array.from({ length: count }, (_, i) => Replica.start(`replica-${i + 1}`, env, runs, script));
  return {
    ready: Promise.all(started),
    stop: async () => {
      const settled = await Promise.allSettled(started);
      await Promise.all(settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : [])));
    },
  };
}

function collectLogs(replicas: Replica[]): ProcessLog {
  const log: ProcessLog = { lines: 0, head: [] };
  for (const replica of replicas) {
    log.lines += replica.log.lines;
    log.head.push(...replica.log.head.map((line) => `${replica.id}: ${line}`));
  }
  return log;
}

/**
 * The window starts half a period away from the jobs' due times, so that it holds whole due
 * instants and the Redis stats read at its edges do not cut a burst of claims in two.
 */
function measurementWindow(runs: RunRecord[], { everyMs, measureMs }: Workload, notBefore: number): Window {
  const last = runs.at(-1);
  let start = notBefore;
  if (last) {
    const target = (last.scheduledAt + everyMs / 2) % everyMs;
    start += (target - (notBefore % everyMs) + everyMs) % everyMs;
  }
  return { start, end: start + measureMs };
}

async function runScenario(redisUrl: string, admin: Redis, scenario: Scenario): Promise<ScenarioResult> {
  const { system, workload } = scenario;
  const runs: RunRecord[] = [];
  const env = {
    REDIS_URL: redisUrl,
    // A fresh prefix per configuration: no state is carried over from the previous one.
    KEY_PREFIX: `bench-${system.id}-${workload.id}-${Date.now()}`,
    JOB_COUNT: String(workload.jobs),
    EVERY_MS: String(workload.everyMs),
    BUSY_MS: String(workload.busyMs),
    ...system.env,
  };
  const replicaCount = system.replicas ?? REPLICAS;
  const group = startReplicas(replicaCount, system.script, env, runs);
  try {
    const replicas = await group.ready;
    await sleep(system.warmupMs ?? WARMUP_MS);
    const window = measurementWindow(runs, workload, Date.now());
    await sleep(window.start - Date.now());
    replicas.forEach((replica) => replica.send({ type: 'measure' }));
    await admin.config('RESETSTAT');
    await sleep(window.end - Date.now());
    const cost = redisCost(parseCommandStats(await admin.info('commandstats')));
    await sleep(GRACE_MS);
    const loops = await Promise.all(replicas.map((replica) => replica.loopDelay()));
    const jobNames = Array.from({ length: workload.jobs }, (_, i) => `job-${i}`);
    const figures = analyzeRuns(runs, window, workload.everyMs, jobNames);
    const windowSeconds = (window.end - window.start) / 1000;
    return {
      scenario,
      window,
      figures,
      eventLoop: Object.fromEntries(replicas.map((replica, i) => [replica.id, loops[i]])),
      redis: { ...cost, perRun: figures.runs > 0 ? cost.calls / figures.runs : null, perReplicaSecond: cost.calls / (replicaCount * windowSeconds) },
      replicaLog: collectLogs(replicas),
    };
  } finally {
    await group.stop();
  }
}

// --- failover ----------------------------------------------------------------------------------

const FAILOVER = { everyMs: 15_000, holdMs: 10_000, observeAfterMs: 3_000 };
const OUR_LOCK_TTL_MS = 3_000;
/** BullMQ's defaults, which the bench leaves as they are. */
const BULLMQ_LOCK_DURATION_MS = 30_000;
const BULLMQ_STALLED_INTERVAL_MS = 30_000;

interface FailoverSystem {
  id: string;
  label: string;
  script: string;
  settings: string;
  env: Record<string, string>;
  /** How long after the kill to watch for the next due time and for a re-run of the killed one. */
  watchMs: number;
  /** Ours: the next due time should start within this lag of it. */
  targetLagMs?: number;
}

const FAILOVER_SYSTEMS: FailoverSystem[] = [
  {
    id: 'ours',
    label: 'ours',
    script: 'replica.ts',
    settings: `lockTtl ${OUR_LOCK_TTL_MS / 1000} s`,
    env: { LOCK_TTL_MS: String(OUR_LOCK_TTL_MS) },
    // The next due time comes at most one period after the kill; then the target, and 5 s of margin.
    watchMs: FAILOVER.everyMs + 2 * OUR_LOCK_TTL_MS + 5_000,
    targetLagMs: 2 * OUR_LOCK_TTL_MS,
  },
  {
    id: 'bullmq',
    label: 'BullMQ',
    script: 'bullmq-replica.ts',
    settings: `defaults: lockDuration ${BULLMQ_LOCK_DURATION_MS / 1000} s, stalledInterval ${BULLMQ_STALLED_INTERVAL_MS / 1000} s, maxStalledCount 1`,
    env: {},
    // The dead worker's lock expires within lockDuration; a job is re-queued by the first stalled
    // check that finds it without a lock after an earlier check marked it, and the checks of all
    // workers together run at most once per stalledInterval: so 2 intervals after the lock, at most.
    watchMs: BULLMQ_LOCK_DURATION_MS + 2 * BULLMQ_STALLED_INTERVAL_MS + 5_000,
  },
];

interface FailoverResult {
  system: Pick<FailoverSystem, 'id' | 'label' | 'settings' | 'watchMs' | 'targetLagMs'>;
  settings: typeof FAILOVER;
  killed: { instanceId: string; scheduledAt: number; startedAt: number; fencingToken?: number; killedAt: number; killAfterStartMs: number };
  nextDue: number;
  /** The run of the next due time, if one started before the bench stopped waiting. */
  next: (RunRecord & { afterKillMs: number; lagMs: number }) | null;
  /** Whether the next run met the target (ours only), on another replica. */
  withinTarget: boolean | null;
  /** The next run's fencing token is above the killed run's; null without tokens (all but ours). */
  fencingIncreased: boolean | null;
  /** Runs of a due time that another run had already served. */
  doubled: number;
  /** Runs of the killed due time after the killed one: BullMQ retries a stalled job, ours does not by design. */
  killedRerun: number;
  killedRerunAfterKillMs: number | null;
  lost: boolean;
  runs: RunRecord[];
  replicaLog: ProcessLog;
}

/**
 * 3 processes, one job every 15 s whose handler holds for 10 s. As soon as the first run reports
 * its start (sent at once, not batched), its process is killed with SIGKILL.
 */
async function runFailover(redisUrl: string, system: FailoverSystem): Promise<FailoverResult> {
  const runs: RunRecord[] = [];
  const env = {
    REDIS_URL: redisUrl,
    KEY_PREFIX: `bench-failover-${system.id}-${Date.now()}`,
    JOB_COUNT: '1',
    EVERY_MS: String(FAILOVER.everyMs),
    BUSY_MS: '0',
    HOLD_MS: String(FAILOVER.holdMs),
    REPORT_AT_ONCE: '1',
    ...system.env,
  };
  const group = startReplicas(REPLICAS, system.script, env, runs);
  try {
    const replicas = await group.ready;
    if (!(await until(() => runs.length > 0, FAILOVER.everyMs + 10_000))) throw new Error(`failover (${system.label}): the job never ran`);
    const first = runs[0];
    const victim = replicas.find((replica) => replica.id === first.instanceId)!;
    victim.kill();
    const killedAt = Date.now();
    const nextDue = first.scheduledAt + FAILOVER.everyMs;
    const runsOf = (due: number) => runs.filter((run) => run.scheduledAt === due);
    await until(() => runsOf(nextDue).length > 0 && runsOf(first.scheduledAt).length > 1, killedAt + system.watchMs - Date.now());
    // Then a little more, to catch doubles.
    await sleep(FAILOVER.observeAfterMs);
    const seen = new Map<number, number>();
    for (const run of runs) seen.set(run.scheduledAt, (seen.get(run.scheduledAt) ?? 0) + 1);
    const nextRun = runsOf(nextDue)[0];
    const next = nextRun ? { ...nextRun, afterKillMs: nextRun.startedAt - killedAt, lagMs: nextRun.startedAt - nextDue } : null;
    const rerun = runsOf(first.scheduledAt)[1];
    return {
      system: { id: system.id, label: system.label, settings: system.settings, watchMs: system.watchMs, targetLagMs: system.targetLagMs },
      settings: FAILOVER,
      killed: { instanceId: victim.id, scheduledAt: first.scheduledAt, startedAt: first.startedAt, fencingToken: first.fencingToken, killedAt, killAfterStartMs: killedAt - first.startedAt },
      nextDue,
      next,
      withinTarget: system.targetLagMs === undefined ? null : next !== null && next.lagMs <= system.targetLagMs && next.instanceId !== victim.id,
      fencingIncreased: next?.fencingToken !== undefined && first.fencingToken !== undefined ? next.fencingToken > first.fencingToken : null,
      doubled: [...seen.values()].reduce((sum, count) => sum + count - 1, 0),
      killedRerun: runsOf(first.scheduledAt).length - 1,
      killedRerunAfterKillMs: rerun ? rerun.startedAt - killedAt : null,
      lost: next === null,
      runs,
      replicaLog: collectLogs(replicas),
    };
  } finally {
    await group.stop();
  }
}

// --- startup -----------------------------------------------------------------------------------

const STARTUP = { replicas: 6, jobs: 10_000, everyMs: 60_000 };

interface StoredJobs {
  /** What Redis holds, by name, for the table and the JSON. */
  counts: Record<string, number>;
  exactlyOnce: boolean;
}

interface StartupSystem {
  id: string;
  label: string;
  script: string;
  /** Whether Redis holds every job (polled every 50 ms from the spawn). */
  registered(admin: Redis, prefix: string): Promise<boolean>;
  /** What Redis holds once registration has settled, and whether that is each job exactly once. */
  inspect(admin: Redis, prefix: string): Promise<StoredJobs>;
}

async function scanKeys(admin: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [nextCursor, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    keys.push(...batch);
    cursor = nextCursor;
  } while (cursor !== '0');
  return [...new Set(keys)];
}

/** Ours: keys as lib/coordination/redis/redis-keys.ts names them, under `{prefix}`. */
const OURS_STARTUP: StartupSystem = {
  id: 'ours',
  label: 'ours',
  script: 'replica.ts',
  async registered(admin, prefix) {
    const [names, due] = await Promise.all([admin.scard(`{${prefix}}:names`), admin.zcard(`{${prefix}}:due`)]);
    return names >= STARTUP.jobs && due >= STARTUP.jobs;
  },
  async inspect(admin, prefix) {
    const base = `{${prefix}}`;
    const hashes = await scanKeys(admin, `${base}:job:*`);
    const names = await admin.smembers(`${base}:names`);
    const hashNames = new Set(hashes.map((key) => key.slice(`${base}:job:`.length)));
    const nameSet = new Set(names);
    const counts = {
      'job hashes': hashes.length,
      names: names.length,
      due: await admin.zcard(`${base}:due`),
      'names without hash': names.filter((name) => !hashNames.has(name)).length,
      'hashes not in names': [...hashNames].filter((name) => !nameSet.has(name)).length,
      'live replicas': await admin.zcard(`${base}:replicas`),
      'run hashes': (await scanKeys(admin, `${base}:runs:*`)).length,
    };
    const exactlyOnce =
      counts['job hashes'] === STARTUP.jobs && counts.names === STARTUP.jobs && counts.due === STARTUP.jobs && counts['names without hash'] === 0 && counts['hashes not in names'] === 0;
    return { counts, exactlyOnce };
  },
};

/** BullMQ: the queue is named after the prefix, under BullMQ's default key prefix `bull`. */
const BULLMQ_STARTUP: StartupSystem = {
  id: 'bullmq',
  label: 'BullMQ',
  script: 'bullmq-replica.ts',
  async registered(admin, prefix) {
    const [schedulers, delayed] = await Promise.all([admin.zcard(`bull:${prefix}:repeat`), admin.zcard(`bull:${prefix}:delayed`)]);
    return schedulers >= STARTUP.jobs && delayed >= STARTUP.jobs;
  },
  async inspect(admin, prefix) {
    const base = `bull:${prefix}`;
    // Each pending fire is `repeat:<scheduler id>:<due time>`: one per scheduler is exactly once.
    const fires = await admin.zrange(`${base}:delayed`, 0, -1);
    const counts = {
      schedulers: await admin.zcard(`${base}:repeat`),
      'pending fires': fires.length,
      'schedulers with a pending fire': new Set(fires.map((id) => id.split(':')[1])).size,
      'waiting/active/completed/failed': (await Promise.all([admin.llen(`${base}:wait`), admin.llen(`${base}:active`), admin.zcard(`${base}:completed`), admin.zcard(`${base}:failed`)])).reduce((a, b) => a + b, 0),
    };
    const exactlyOnce = counts.schedulers === STARTUP.jobs && counts['pending fires'] === STARTUP.jobs && counts['schedulers with a pending fire'] === STARTUP.jobs;
    return { counts, exactlyOnce };
  },
};

interface StartupResult extends StoredJobs {
  system: Pick<StartupSystem, 'id' | 'label'>;
  settings: typeof STARTUP;
  /** Spawn (all at once) until each replica's `ready` message, ms. */
  readyMs: Record<string, number>;
  allReadyMs: number;
  /** Ours: bootstrap time each replica measured itself (createApplicationContext). */
  bootMs: Record<string, number>;
  /** Spawn until Redis first held every job (polled every 50 ms). */
  allRegisteredMs: number | null;
  replicaLog: ProcessLog;
}

/** 6 processes spawned at once, each registering the same 10,000 jobs (every 60 s, so none runs). */
async function runStartup(redisUrl: string, admin: Redis, system: StartupSystem): Promise<StartupResult> {
  const prefix = `bench-startup-${system.id}-${Date.now()}`;
  const env = { REDIS_URL: redisUrl, KEY_PREFIX: prefix, JOB_COUNT: String(STARTUP.jobs), EVERY_MS: String(STARTUP.everyMs), BUSY_MS: '0' };
  const spawnAt = Date.now();
  let allRegisteredAt: number | null = null;
  let watching = true;
  const watcher = (async () => {
    while (watching && allRegisteredAt === null) {
      if (await system.registered(admin, prefix)) allRegisteredAt = Date.now();
      else await sleep(50);
    }
  })();
  const group = startReplicas(STARTUP.replicas, system.script, env, []);
  try {
    const replicas = await group.ready;
    await until(() => allRegisteredAt !== null, 30_000);
    // Let registrations still in flight land before counting.
    await sleep(2_000);
    watching = false;
    await watcher;
    const readyMs = Object.fromEntries(replicas.map((replica) => [replica.id, replica.readyAt! - spawnAt]));
    return {
      system: { id: system.id, label: system.label },
      settings: STARTUP,
      readyMs,
      allReadyMs: Math.max(...Object.values(readyMs)),
      bootMs: Object.fromEntries(replicas.flatMap((replica) => (replica.bootMs === undefined ? [] : [[replica.id, replica.bootMs]]))),
      allRegisteredMs: allRegisteredAt === null ? null : allRegisteredAt - spawnAt,
      ...(await system.inspect(admin, prefix)),
      replicaLog: collectLogs(replicas),
    };
  } finally {
    watching = false;
    await group.stop();
  }
}

// --- output ------------------------------------------------------------------------------------

/** Per-process values in process order, e.g. "83/84/83". */
const perReplica = (values: number[]) => values.map(cell).join('/');

const hasDueTimes = ({ scenario: { workload } }: ScenarioResult) => workload.everyMs <= workload.measureMs;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function printScenarios(results: ScenarioResult[]): void {
  const active = results.filter(hasDueTimes);
  const label = ({ scenario }: ScenarioResult) => [scenario.workload.label, scenario.system.label];
  printTable(
    'Start lag, ms = handler entry − due time (bench/README.md: how each system\'s due time is taken), runs due in the measured window; event-loop delay per process, ms',
    ['workload', 'system', 'runs', 'p50', 'p99', 'max', 'early', 'dup', 'missed', 'loop p99', 'loop max'],
    active.map((result) => {
      const { figures: f, eventLoop } = result;
      const loops = Object.values(eventLoop);
      return [...label(result), f.runs, f.lagMs.p50, f.lagMs.p99, f.lagMs.max, f.early, f.duplicates, f.missed, perReplica(loops.map((loop) => loop.p99Ms)), perReplica(loops.map((loop) => loop.maxMs))];
    }),
    2,
  );
  printTable(
    'Spread and order: runs per process, due times off the period\'s cadence, fencing tokens not increasing (ours only)',
    ['workload', 'system', 'runs per process', 'off-cadence', 'fencing not increasing'],
    active.map((result) => {
      const { figures: f, eventLoop } = result;
      return [...label(result), perReplica(Object.keys(eventLoop).map((id) => f.runsPerInstance[id] ?? 0)), f.offCadence, f.fencingNotIncreasing ?? '–'];
    }),
    2,
  );
  printTable(
    'Redis cost over the measured window (INFO commandstats; calls include those made inside Lua scripts; replica-s = processes × window)',
    ['workload', 'system', 'window s', 'commands', 'EVALSHA/EVAL', 'commands/run', 'scripts/run', 'commands/replica-s', 'per job per replica-s'],
    results
      .filter((result) => result.scenario.system.usesRedis)
      .map((result) => {
        const { scenario, window, figures, redis } = result;
        return [
          ...label(result),
          (window.end - window.start) / 1000,
          redis.calls,
          redis.scriptCalls,
          redis.perRun ?? '–',
          figures.runs > 0 ? redis.scriptCalls / figures.runs : '–',
          redis.perReplicaSecond,
          // Idle only, where it is about 0.001 for ours: two significant digits.
          hasDueTimes(result) ? '–' : (redis.perReplicaSecond / scenario.workload.jobs).toPrecision(2),
        ];
      }),
    2,
  );
}

function printFailover(results: FailoverResult[]): void {
  printTable(
    `Failover: ${REPLICAS} processes, 1 job every ${FAILOVER.everyMs / 1000} s whose handler holds ${FAILOVER.holdMs / 1000} s; kill -9 of the process running it once its run has started`,
    ['system', 'settings', 'kill after start ms', 'next due after kill ms', 'next run after kill ms', 'next run lag ms', 'next run on', 'doubled', 'next lost', 'killed due time re-run'],
    results.map((f) => [
      f.system.label,
      f.system.settings,
      f.killed.killAfterStartMs,
      f.nextDue - f.killed.killedAt,
      f.next?.afterKillMs ?? '–',
      f.next?.lagMs ?? '–',
      f.next ? `${f.next.instanceId} (killed: ${f.killed.instanceId})` : '–',
      f.doubled,
      f.lost ? 'yes' : 'no',
      f.killedRerun === 0 ? `no (watched ${seconds(f.system.watchMs)})` : `${f.killedRerun}×, ${seconds(f.killedRerunAfterKillMs!)} after the kill`,
    ]),
  );
  for (const f of results.filter((result) => result.system.targetLagMs !== undefined)) {
    const fencing = f.fencingIncreased === null ? '' : `; fencing ${f.fencingIncreased ? 'increased' : 'NOT increased'}`;
    console.log(`  ${f.system.label}: next run's lag ≤ ${f.system.targetLagMs} ms on another process: ${f.withinTarget ? 'met' : 'MISSED'}${fencing}`);
  }
}

function printStartup(results: StartupResult[]): void {
  printTable(
    `Startup: ${STARTUP.replicas} processes spawned at once, each registering the same ${STARTUP.jobs.toLocaleString('en')} jobs (every ${STARTUP.everyMs / 1000} s, so none runs)`,
    ['system', 'spawn → all ready ms', 'spawn → ready per process ms', 'spawn → Redis holds all ms', 'what Redis holds 2 s later', 'each job exactly once'],
    results.map((s) => [
      s.system.label,
      s.allReadyMs,
      perReplica(Object.values(s.readyMs)),
      s.allRegisteredMs ?? 'never',
      Object.entries(s.counts)
        .map(([name, count]) => `${name} ${count}`)
        .join(', '),
      s.exactlyOnce ? 'yes' : 'NO',
    ]),
  );
}

function printLogs(logs: [string, ProcessLog][]): void {
  for (const [label, log] of logs) {
    if (log.lines === 0) continue;
    console.log(`\n${label}: the processes logged ${log.lines} line(s); the first:`);
    log.head.forEach((line) => console.log(`  ${line}`));
  }
}

// --- main --------------------------------------------------------------------------------------

async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  const began = Date.now();
  process.stdout.write(`\nRunning ${label} ... `);
  const result = await run();
  process.stdout.write(`done in ${seconds(Date.now() - began)}`);
  return result;
}

/**
 * `BENCH_ONLY='(b) 1,000 jobs / 1 s, ours;failover, ours'` runs only the parts whose label
 * contains one of these (`;`-separated), for working on one figure; the full bench runs them all.
 */
const ONLY = process.env.BENCH_ONLY?.split(';').map((part) => part.trim()).filter(Boolean);
const selected = (label: string) => !ONLY || ONLY.some((part) => label.includes(part));

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
    console.log(`Setup: ${REPLICAS} processes per system (@nestjs/schedule: 1), warm-up ${WARMUP_MS / 1000} s excluded, grace ${GRACE_MS / 1000} s after each window`);

    const scenarios: ScenarioResult[] = [];
    for (const scenario of SCENARIOS) {
      const label = `${scenario.workload.label}, ${scenario.system.label}`;
      if (selected(label)) scenarios.push(await timed(label, () => runScenario(server.url, admin, scenario)));
    }
    const failover: FailoverResult[] = [];
    for (const system of FAILOVER_SYSTEMS) {
      if (selected(`failover, ${system.label}`)) failover.push(await timed(`failover, ${system.label}`, () => runFailover(server.url, system)));
    }
    const startup: StartupResult[] = [];
    for (const system of [OURS_STARTUP, BULLMQ_STARTUP]) {
      if (selected(`startup, ${system.label}`)) startup.push(await timed(`startup, ${system.label}`, () => runStartup(server.url, admin, system)));
    }
    const durationMs = Date.now() - date.getTime();
    console.log();

    printScenarios(scenarios);
    printFailover(failover);
    printStartup(startup);
    printLogs([
      ...scenarios.map((result): [string, ProcessLog] => [`${result.scenario.workload.label}, ${result.scenario.system.label}`, result.replicaLog]),
      ...failover.map((result): [string, ProcessLog] => [`failover, ${result.system.label}`, result.replicaLog]),
      ...startup.map((result): [string, ProcessLog] => [`startup, ${result.system.label}`, result.replicaLog]),
    ]);

    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    // Colons are not allowed in file names everywhere: the ISO timestamp uses '-' instead.
    const file = join(dir, `${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const settings = { replicas: REPLICAS, warmupMs: WARMUP_MS, graceMs: GRACE_MS, durationMs };
    writeFileSync(file, `${JSON.stringify({ date: date.toISOString(), machine, settings, scenarios, failover, startup }, null, 2)}\n`);
    console.log(`\nBench finished in ${Math.floor(durationMs / 60_000)} min ${Math.round((durationMs % 60_000) / 1000)} s (build not included)`);
    console.log(`Results written to ${file}`);
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
