import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import Redis from 'ioredis';

/** The shared Redis the session provides; tests that do not disturb Redis use it with their own prefix. */
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * This test run's id, `<pid of the run>r<random>`: set once by the global setup
 * (`redis-keys.global-setup.ts`) and inherited by every worker and child process, so that the
 * global teardown finds every key the run made. Outside Jest, this process's own id.
 */
export const TEST_RUN_ID = (process.env.DSCHED_TEST_RUN ??= newTestRunId());

export function newTestRunId(): string {
  return `${process.pid}r${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A unique key prefix, so tests never see each other's keys: `test-<run id>-<label>-<random>`.
 * Its keys (`{prefix}:…` on the shared Redis) are deleted when the run ends, by the global
 * teardown; a test needs no cleanup of its own.
 */
export function uniquePrefix(label: string): string {
  return `test-${TEST_RUN_ID}-${label}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of the test's own, on a free port, for tests that stop, restart or flood
 * Redis: they never touch the shared one.
 */
export class TestRedisServer {
  private process: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  static async reserve(): Promise<TestRedisServer> {
    return new TestRedisServer(await freePort());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
  }

  /** Kills the server as a crash would: no shutdown, and no data kept (it has no persistence). */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    this.process = null;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }
}
