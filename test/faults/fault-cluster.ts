import { ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { TestRedisServer, uniquePrefix } from '../support/redis-server';
import { EventLog } from '../support/wait';
import { HistoryWriter } from './history';
import { RedisProxy } from '../support/redis-proxy';

const FIXTURE = join(__dirname, '..', 'fixtures', 'fault-replica.main.js');

/** A job of the replicas' app: the library's options, plus how long its handler runs. */
export interface FaultJob {
  name: string;
  /** The period, in ms; for a cron job, the period the checker expects of it. None for a continuous or on-demand job. */
  every?: number;
  /** A cron expression (the library then gets no `every`). */
  cron?: string;
  busyMs?: number;
  overlap?: 'skip' | 'allow' | 'queue-one' | 'cancel-previous';
  /**
   * A checkpointing job: each run counts this many items on from its lastCheckpoint's, one every
   * `itemMs`, calling ctx.checkpoint for each (busyMs is then ignored).
   */
  items?: number;
  /** @default 50 */
  itemMs?: number;
  /** The job's `checkpoint` option (interval in ms). */
  checkpoint?: { maxUpdates?: number; interval?: number };
  /** A continuous job: its handler loops, one tick line every `tickMs`, until ctx.signal aborts. */
  continuous?: { max: number; strategy?: string };
  /** @default 50 */
  tickMs?: number;
  /** An on-demand job, run by tasks the harness has a replica create (`createTasks`). */
  onDemand?: boolean;
  /** The job's `retry` option. */
  retry?: { attempts: number; backoff?: { delay?: number; factor?: number } };
  /** The job's `concurrency` (its tasks at once, cluster-wide). */
  concurrency?: number;
}

/** One task to create: its handler holds `ms`; with `failFirst`, its attempt 1 throws. */
export interface TaskSpec {
  ms: number;
  failFirst?: boolean;
}

/** What the replicas report of tasks over IPC (the history file is the record). */
export type TaskMessage =
  | { type: 'task-created'; task: number }
  | { type: 'task-start'; task: number; instance: string }
  | { type: 'task-end'; task: number; instance: string; outcome: string }
  | { type: 'tasks-created'; count: number };

/** The library's checkpoint defaults, for the history's job lines (lib/checkpoint/checkpoint.constants.ts). */
const CHECKPOINT_DEFAULTS = { maxUpdates: 100, interval: 5_000 };

export interface ReplicaSpec {
  instanceId: string;
  /** The app's jobs, if not the cluster's (a rolling deploy starts replicas with new code). */
  jobs?: FaultJob[];
  /** This replica's clock, ahead (+) or behind (−) by this many ms, by libfaketime. */
  clockOffsetMs?: number;
  /** Connects through a RedisProxy of its own (the network nemeses). */
  viaProxy?: boolean;
  /** ioredis options of its client (e.g. `commandTimeout`). */
  redisOptions?: Record<string, unknown>;
  shutdownTimeout?: number;
}

/** What the replicas report over IPC, for the harness to wait on (the history file is the record). */
export interface RunMessage {
  type: 'start' | 'end';
  job: string;
  due: number;
  token: number;
  instance: string;
  start?: number;
  aborted?: string | null;
}

/** One replica process: the built library in a plain Node process (test/fixtures/fault-replica.main.js). */
export class FaultReplica {
  readonly stderr: string[] = [];
  readonly exited: Promise<void>;

  constructor(
    readonly spec: ReplicaSpec,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr.push(chunk.toString());
      if (this.stderr.length > 200) this.stderr.splice(0, 100);
    });
  }

  get instanceId(): string {
    return this.spec.instanceId;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Asks the replica to create these tasks of `job` (records on), `streams` calls at a time: it
   * reports each over IPC and in the history.
   */
  createTasks(job: string, tasks: TaskSpec[], streams: number): void {
    this.child.send({ type: 'create-tasks', job, tasks, streams });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }
}

export interface FaultClusterOptions {
  name: string;
  seed: number;
  dir: string;
  jobs: FaultJob[];
  lockTtl: number;
  /** The replicas' `sessionTtl` (ms), if not the library's default. */
  sessionTtl?: number;
  /** TypeORM DataSource options of the records' database (tables made): the replicas run with records. */
  database?: Record<string, unknown>;
}

/**
 * The harness of one scenario: its own redis-server on a free port, replica processes on it
 * (directly or through a proxy each), the history file, and the means of the nemeses.
 */
export class FaultCluster {
  readonly events = new EventLog<RunMessage>();
  readonly taskEvents = new EventLog<TaskMessage>();
  readonly replicas = new Map<string, FaultReplica>();
  readonly proxies = new Map<string, RedisProxy>();
  readonly history: HistoryWriter;
  readonly prefix = uniquePrefix('faults');
  private control: Redis | null = null;

  private constructor(
    readonly options: FaultClusterOptions,
    readonly redis: TestRedisServer,
  ) {
    mkdirSync(options.dir, { recursive: true });
    this.history = new HistoryWriter(join(options.dir, 'history.jsonl'));
    // A replay with the same seed starts a new history.
    rmSync(this.history.file, { force: true });
  }

  static async open(options: FaultClusterOptions): Promise<FaultCluster> {
    const redis = await TestRedisServer.reserve();
    await redis.start();
    const cluster = new FaultCluster(options, redis);
    for (const job of options.jobs) {
      const checkpoint = job.items ? { ...CHECKPOINT_DEFAULTS, ...job.checkpoint } : undefined;
      const kind = job.continuous ? { continuous: { max: job.continuous.max } } : job.onDemand ? { onDemand: true } : undefined;
      cluster.history.append({ type: 'job', at: Date.now(), job: job.name, every: job.every ?? 0, ...(checkpoint && { checkpoint }), ...kind });
    }
    return cluster;
  }

  /** A client of the harness's own on the scenario's Redis (reconnects after a restart). */
  get redisClient(): Redis {
    this.control ??= new Redis(this.redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    return this.control;
  }

  /** Starts a replica and resolves once its app has booted. */
  async startReplica(spec: ReplicaSpec): Promise<FaultReplica> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'test',
      KEY_PREFIX: this.prefix,
      INSTANCE_ID: spec.instanceId,
      LOCK_TTL: String(this.options.lockTtl),
      MIN_PERIOD: '100',
      SHUTDOWN_TIMEOUT: String(spec.shutdownTimeout ?? 5_000),
      JOBS: JSON.stringify(spec.jobs ?? this.options.jobs),
      HISTORY_FILE: this.history.file,
      CLOCK_OFFSET_MS: String(spec.clockOffsetMs ?? 0),
      ...(this.options.sessionTtl && { SESSION_TTL: String(this.options.sessionTtl) }),
      ...(this.options.database && { DB_OPTIONS: JSON.stringify(this.options.database) }),
    };
    let target = { host: '127.0.0.1', port: this.redis.port };
    if (spec.viaProxy) {
      const proxy = this.proxies.get(spec.instanceId) ?? (await RedisProxy.start(target));
      this.proxies.set(spec.instanceId, proxy);
      target = { host: '127.0.0.1', port: proxy.port };
    }
    env.REDIS = spec.redisOptions ? JSON.stringify({ ...target, ...spec.redisOptions }) : `redis://${target.host}:${target.port}`;
    if (spec.clockOffsetMs) {
      env.LD_PRELOAD = libfaketime();
      env.FAKETIME = `${spec.clockOffsetMs > 0 ? '+' : '-'}${Math.abs(spec.clockOffsetMs) / 1000}s`;
      // Timers run on the monotonic clock: only the wall clock is skewed, as on a real machine.
      env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
    }
    const child = fork(FIXTURE, [], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const replica = new FaultReplica(spec, child);
    this.replicas.set(spec.instanceId, replica);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`replica ${spec.instanceId} exited (${code ?? signal}) before it was ready: ${replica.stderr.join('')}`)));
      child.on('message', (message: RunMessage | TaskMessage | { type: 'ready' }) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'start' || message.type === 'end') this.events.push(message as RunMessage);
        else this.taskEvents.push(message as TaskMessage);
      });
    });
    this.history.nemesis('replica-start', { instance: spec.instanceId, detail: spec.clockOffsetMs ? `clock ${spec.clockOffsetMs} ms` : undefined });
    return replica;
  }

  replica(instanceId: string): FaultReplica {
    const replica = this.replicas.get(instanceId);
    if (!replica) throw new Error(`no replica ${instanceId}`);
    return replica;
  }

  /** Replicas still running. */
  live(): FaultReplica[] {
    return [...this.replicas.values()].filter((replica) => replica.alive);
  }

  /** The history's begin line: the scenario's timeline starts once every replica is up. */
  begin(): void {
    const { name, seed, lockTtl, sessionTtl } = this.options;
    this.history.append({ type: 'scenario', phase: 'begin', at: Date.now(), name, seed, lockTtl, ...(sessionTtl && { sessionTtl }) });
  }

  end(): void {
    this.history.append({ type: 'scenario', phase: 'end', at: Date.now(), name: this.options.name, seed: this.options.seed, lockTtl: this.options.lockTtl });
  }

  /** Kills every replica (SIGCONT first, for a stopped one), the proxies, Redis and the harness's client. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.replicas.values()].map(async (replica) => {
        if (!replica.alive) return;
        replica.signal('SIGCONT');
        replica.signal('SIGKILL');
        await replica.exited;
      }),
    );
    await Promise.all([...this.proxies.values()].map((proxy) => proxy.close()));
    this.control?.disconnect();
    await this.redis.stop();
  }

  /** The warnings and errors the replicas logged, for a failure's report. */
  logs(): string {
    return [...this.replicas.values()].map((replica) => `--- ${replica.instanceId}\n${replica.stderr.join('').slice(-4_000)}`).join('\n');
  }
}

let faketimePath: string | undefined;

/** libfaketime's shared object, from Debian's package (`apt-get install faketime`). */
export function libfaketime(): string {
  if (faketimePath) return faketimePath;
  const candidates = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1'];
  try {
    const listed = execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).split('\n');
    candidates.unshift(...listed.filter((path) => path.endsWith('libfaketimeMT.so.1')));
  } catch {
    // Not a Debian system, or the package is missing: try the usual paths.
  }
  faketimePath = candidates.find((path) => existsSync(path));
  if (!faketimePath) throw new Error('libfaketime is not installed: `apt-get install -y faketime` (the clock-skew scenarios need it)');
  return faketimePath;
}
