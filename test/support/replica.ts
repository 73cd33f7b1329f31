import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { FixtureJob, ReplicaCommand, ReplicaMessage } from '../fixtures/replica.main';
import type { DataSourceOptions } from 'typeorm';
import { EventLog } from './wait';

const FIXTURE = join(__dirname, '..', 'fixtures', 'replica.main.ts');

export type RunEvent = Extract<ReplicaMessage, { type: 'run' }>;
export type EndEvent = Extract<ReplicaMessage, { type: 'end' }>;

export interface ReplicaOptions {
  redisUrl: string;
  keyPrefix: string;
  instanceId: string;
  jobs: FixtureJob[];
  lockTtl?: number;
  /** The scheduler's `minPeriod` (for jobs faster than its default of 1 s). */
  minPeriod?: number;
  /** The scheduler's `shutdownTimeout` (1 s unless given). */
  shutdownTimeout?: number;
  /** Membership options (`sessionTtl`, `labels`, `worker`); with them, the replica also reports its membership events and log lines. */
  cluster?: { sessionTtl?: number; labels?: Record<string, string>; worker?: boolean | { concurrency?: number } };
  /** With execution records in this database (its tables already made): the task commands. */
  database?: DataSourceOptions;
  /** Extra environment of the process, e.g. `skewedClockEnv('+5s')` to run it on a skewed clock. */
  env?: Record<string, string>;
}

/** A replica as a real Node process, reporting its runs into a log shared by the test. */
export class Replica {
  private nextId = 1;
  private readonly replies = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly stderr: string[] = [];

  private constructor(
    readonly instanceId: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(options: ReplicaOptions, log: EventLog<ReplicaMessage>): Promise<Replica> {
    const child = fork(FIXTURE, [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      env: {
        ...process.env,
        NODE_ENV: 'test',
        REDIS_URL: options.redisUrl,
        KEY_PREFIX: options.keyPrefix,
        INSTANCE_ID: options.instanceId,
        LOCK_TTL: String(options.lockTtl ?? 30_000),
        JOBS: JSON.stringify(options.jobs),
        ...(options.minPeriod !== undefined ? { MIN_PERIOD: String(options.minPeriod) } : {}),
        ...(options.shutdownTimeout !== undefined ? { SHUTDOWN_TIMEOUT: String(options.shutdownTimeout) } : {}),
        ...(options.cluster ? { CLUSTER: JSON.stringify(options.cluster) } : {}),
        ...(options.database ? { DB_OPTIONS: JSON.stringify(options.database) } : {}),
        ...options.env,
      },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const replica = new Replica(options.instanceId, child);
    child.stderr!.on('data', (chunk: Buffer) => replica.stderr.push(chunk.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`replica ${options.instanceId} exited with ${code}: ${replica.stderr.join('')}`)));
      child.on('message', (message: ReplicaMessage) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'reply') replica.settle(message);
        else log.push(message);
      });
    });
    await ready;
    return replica;
  }

  call<T = unknown>(method: ReplicaCommand['method'], ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.replies.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, method, args } satisfies ReplicaCommand);
    });
  }

  /** Kills the process as a crash would: no shutdown hooks, locks left to expire. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }

  /** Pauses the process (SIGSTOP), as a long GC pause or a frozen VM would: its leases expire meanwhile. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** Lets a paused process go on (SIGCONT): a zombie whose runs may have been taken over. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Stops the replica gracefully (its shutdown hooks run); killed if it has not exited after `killAfterMs`. */
  async stop(killAfterMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.disconnect();
    });
  }

  private settle(message: Extract<ReplicaMessage, { type: 'reply' }>): void {
    const pending = this.replies.get(message.id);
    this.replies.delete(message.id);
    if (message.error !== undefined) pending?.reject(new Error(message.error));
    else pending?.resolve(message.result);
  }
}
