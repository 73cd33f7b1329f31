import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { RecordsReplicaCommand, RecordsReplicaMessage } from '../fixtures/records-replica.main';
import { EventLog } from './wait';

const FIXTURE = join(__dirname, '..', 'fixtures', 'records-replica.main.ts');

/** The options of the fixture's `recoverable` job, which every replica process of a test declares alike. */
export const RECOVERABLE_JOB = { name: 'recoverable', vendorType: 'recoverable', overlap: 'allow', retry: { attempts: 2 } } as const;

/**
 * A replica with records as a real process, whose runs never end: see the fixture. `env` gives
 * DB_OPTIONS, and REDIS_URL, KEY_PREFIX, LOCK_TTL as wanted.
 */
export class RecordsReplica {
  private nextId = 1;
  private readonly replies = new Map<number, (message: Extract<RecordsReplicaMessage, { type: 'reply' }>) => void>();
  readonly runs = new EventLog<Extract<RecordsReplicaMessage, { type: 'run' }>>();
  private readonly stderr: string[] = [];

  private constructor(private readonly child: ChildProcess) {}

  static async start(env: Record<string, string>): Promise<RecordsReplica> {
    const child = fork(FIXTURE, [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      env: { ...process.env, NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const replica = new RecordsReplica(child);
    child.stderr!.on('data', (chunk: Buffer) => replica.stderr.push(chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the replica exited with ${code}: ${replica.stderr.join('')}`)));
      child.on('message', (message: RecordsReplicaMessage) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'run') replica.runs.push(message);
        else replica.replies.get(message.id)?.(message);
      });
    });
    return replica;
  }

  call(method: RecordsReplicaCommand['method']): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.replies.set(id, (reply) => (reply.error !== undefined ? reject(new Error(reply.error)) : resolve(reply.result)));
      this.child.send({ id, method } satisfies RecordsReplicaCommand);
    });
  }

  /** Stops the process gracefully (its shutdown hooks run: runs still going are handed back). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.disconnect();
    });
  }

  /** Kills the process as a crash would: nothing reported, its leases left to expire. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

