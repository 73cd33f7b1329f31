/**
 * One replica of a cronutil-style poller, run as its own Node process by run.ts: the baseline our
 * library is compared with. It is a small TypeScript reading of the algorithm cronutil documents
 * (see bench/README.md, "cronutil-style poller"), not cronutil itself, which is a Go package.
 *
 * Per job there are two keys: a lock (`SET NX PX`) and the next execution time in epoch SECONDS.
 * Every replica polls every job every POLLING_MS: it tries the lock (no wait: a held lock means
 * another replica is checking or running the job), reads the next time, and if that time has come
 * runs the action and writes next = now + period (in seconds, truncated), then releases the lock.
 * It speaks the same IPC protocol as replica.ts, so run.ts drives both the same way.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { send, startReporting, unsent } from './child-reporting';

const jobCount = Number(process.env.JOB_COUNT ?? 0);
const periodMs = Number(process.env.EVERY_MS ?? 1_000);
const pollingMs = Number(process.env.POLLING_MS ?? 5_000);
/** cronutil's ActionTimeout default (30 s); used as the lock's expiry, so a dead holder frees the job. */
const actionTimeoutMs = Number(process.env.ACTION_TIMEOUT_MS ?? 30_000);
const prefix = process.env.KEY_PREFIX ?? 'cronutil';
const instanceId = process.env.INSTANCE_ID ?? `poller-${process.pid}`;

/** Epoch seconds, truncated as Go's `time.Time.Unix()` does. */
const epochSeconds = (ms: number) => Math.floor(ms / 1000);

interface ReleasingRedis extends Redis {
  /** Deletes the lock only if this holder still owns it (the usual SET NX PX release). */
  releaseLock(key: string, token: string): Promise<number>;
}

class PolledJob {
  private readonly lockKey: string;
  private readonly nextKey: string;
  private polling = false;

  constructor(
    private readonly redis: ReleasingRedis,
    private readonly name: string,
  ) {
    this.lockKey = `${prefix}:lock:${name}`;
    this.nextKey = `${prefix}:${name}`;
  }

  /**
   * The first replica to start a job writes its first next time (now + period); the others keep
   * it. Like cronutil's Start, nothing runs at once: the first check is one polling period later.
   */
  async start(): Promise<void> {
    await this.redis.set(this.nextKey, epochSeconds(Date.now() + periodMs), 'NX');
    setInterval(() => void this.poll(), pollingMs);
  }

  /** One tick. A tick that comes while the previous poll is still in flight is dropped, as a Go ticker drops it. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const token = randomUUID();
    try {
      const locked = await this.redis.set(this.lockKey, token, 'PX', actionTimeoutMs, 'NX');
      if (locked !== 'OK') return;
      try {
        const next = Number(await this.redis.get(this.nextKey));
        const claimedAt = Date.now();
        if (claimedAt < next * 1000) return;
        this.action(next * 1000, claimedAt);
        await this.redis.set(this.nextKey, epochSeconds(Date.now() + periodMs));
      } finally {
        await this.redis.releaseLock(this.lockKey, token);
      }
    } catch (error) {
      console.error(`${this.name}: ${(error as Error).message}`);
    } finally {
      this.polling = false;
    }
  }

  private action(dueAt: number, claimedAt: number): void {
    const startedAt = Date.now(); // the action's entry: lag is measured to it
    // No fencing token in this algorithm.
    unsent.push({ name: this.name, scheduledAt: dueAt, startedAt, claimedAt, instanceId });
  }
}

async function main(): Promise<void> {
  startReporting();
  const redis = new Redis(process.env.REDIS_URL!) as ReleasingRedis;
  redis.defineCommand('releaseLock', {
    numberOfKeys: 1,
    lua: "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
  });
  await redis.ping();
  const jobs = Array.from({ length: jobCount }, (_, i) => new PolledJob(redis, `job-${i}`));
  await Promise.all(jobs.map((job) => job.start()));
  process.on('disconnect', () => {
    redis.disconnect();
    process.exit(0);
  });
  send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
