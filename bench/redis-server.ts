import { ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../test/support/redis-server';

/** A redis-server of the bench's own, so that no other client's traffic lands in its figures. */
export interface OwnRedisServer {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/**
 * Starts `redis-server` on a free port, without persistence (no fork for RDB/AOF during the
 * measurements), and resolves once it accepts connections. `onSpawn` sees the process at once, so
 * the caller can kill it even if it never becomes ready.
 */
export async function startRedisServer(onSpawn: (child: ChildProcess) => void): Promise<OwnRedisServer> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawn(child);
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`redis-server ${why}: ${output}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.stdout!.resume();
      resolve();
    };
    const onExit = (code: number | null) => fail(`exited with ${code}`);
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', onExit);
    child.once('error', (error) => fail(`could not start (${error.message})`));
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
