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
const DEADLINE_MS = 6 * 60_000;

interface Scenario {
  id: string;
  label: string;
  jobs: number;
  everyMs: number;
  /** CPU each handler burns synchronously. */
  busyMs: number;
  measureMs: number;
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

  static start(id: string, env: Record<string, string>, runs: RunRecord[]): Promise<Replica> {
    const child = fork(join(__dirname, 'replica.ts'), [], {
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
  };
  const started = Array.from({ length: REPLICAS }, (_, i) => Replica.start(`replica-${i + 1}`, env, runs));
  const replicas: Replica[] = [];
  try {
    replicas.push(...(await Promise.all(started)));
    await sleep(WARMUP_MS);
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
      redis: { ...cost, perRun: figures.runs > 0 ? cost.calls / figures.runs : null, perReplicaSecond: cost.calls / (REPLICAS * windowSeconds) },
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

    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    // Colons are not allowed in file names everywhere: the ISO timestamp uses '-' instead.
    const file = join(dir, `${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const settings = { replicas: REPLICAS, warmupMs: WARMUP_MS, graceMs: GRACE_MS };
    writeFileSync(file, `${JSON.stringify({ date: date.toISOString(), machine, settings, results }, null, 2)}\n`);
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
